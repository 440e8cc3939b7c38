"""``siam-bag``: record runs, label them, replay them through the node's code and score them.

siam-bag record out/run1 --topics image_raw detections status init_accepted
siam-bag label out/run1 --topic image_raw --keyframes keys.csv
siam-bag import-gt out/run1 boxes.txt --topic image_raw
siam-bag eval out/run1 --tracker default --tracker CSRT --replay realtime --out out/report
siam-bag from-sequence ../shared/data/sequences/vot/bag out/bag_as_rosbag --fps 25
siam-bag to-frames out/run1 out/run1_frames --topic image_raw
siam-bag repair out/cut_run out/run1     # a bag whose recorder died
siam-bag info out/run1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from siam_tracker_ros.bag.bagfile import (
    BagError,
    frame_stamps,
    frames,
    image_connection,
    open_bag,
)
from siam_tracker_ros.bag.replay import MODES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siam-bag", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("record", help="record live topics into a bag (SIGINT ends it)")
    p.add_argument("out", type=Path, help="new bag directory")
    p.add_argument("--topics", nargs="+", help="topics (default: the node's, raw and compressed)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--duration", type=float, default=0.0, help="seconds; 0: until SIGINT")

    p = sub.add_parser("label", help="boxes on keyframes, interpolated, saved in the bag")
    p.add_argument("bag", type=Path)
    p.add_argument("--topic", default="image_raw")
    p.add_argument("--keyframes", type=Path, help="headless: keyframe CSV (frame|stamp_ns,x,y,w,h)")
    p.add_argument("--step", type=int, default=10, help="GUI: frames between shown keyframes")
    p.add_argument("--out", type=Path, help="default: <bag>/groundtruth.csv")

    p = sub.add_parser("import-gt", help="check a GT file against the bag, store it in the bag")
    p.add_argument("bag", type=Path)
    p.add_argument("gt", type=Path, help="CSV (frame|stamp_ns,x,y,w,h[,absent]) or OTB/VOT text")
    p.add_argument("--topic", default="image_raw")

    p = sub.add_parser("eval", help="replay bags through trackers and write a report")
    p.add_argument("bags", nargs="+", type=Path)
    p.add_argument(
        "--tracker",
        action="append",
        required=True,
        help="default, node:<model>:"
        "<weights>, KCF, CSRT, siamrpn:<config>:<weights>...; NAME=SPEC renames",
    )
    p.add_argument("--topic", default="image_raw")
    p.add_argument("--replay", choices=MODES, default="every-frame")
    p.add_argument("--rate", type=float, default=1.0, help="realtime: speed factor")
    p.add_argument("--gt", type=Path, help="GT file (one bag); default: the one in the bag")
    p.add_argument("--no-recorded", action="store_true", help="do not score the recorded run")
    p.add_argument("--out", type=Path, default=Path("out/bag_report"))
    p.add_argument("--workers", type=int, default=1, help="parallel processes")
    p.add_argument("--fresh", action="store_true", help="redo runs whose results exist")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mono16-max", type=float, default=65535.0, help="as the node's parameter")
    p.add_argument("--title")

    p = sub.add_parser("from-sequence", help="a benchmark sequence as a bag (with its GT)")
    p.add_argument("sequence", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--topic", default="image_raw")
    p.add_argument("--compressed", action="store_true", help="JPEG CompressedImage")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--max-frames", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1, help="loop the frames (long bags)")

    p = sub.add_parser("to-frames", help="a bag's images as an OTB-layout frame folder")
    p.add_argument("bag", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--topic", default="image_raw")
    p.add_argument("--gt", type=Path)

    p = sub.add_parser("repair", help="rescue the messages of a cut mcap bag into a new bag")
    p.add_argument("bag", type=Path, help="bag directory or .mcap file")
    p.add_argument("out", type=Path, help="new bag directory")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")

    p = sub.add_parser("info", help="topics, types and message counts")
    p.add_argument("bag", type=Path)
    return parser


def _label(args: argparse.Namespace) -> int:
    from siam_tracker_ros.bag.groundtruth import (
        find_ground_truth,
        has_display,
        interpolate,
        label_gui,
        read_keyframes,
        write_ground_truth,
    )

    out = args.out or (args.bag / "groundtruth.csv" if args.bag.is_dir() else None)
    if out is None:
        raise BagError(f"{args.bag}: a single-file bag: name the GT file with --out")
    reader = open_bag(args.bag)
    try:
        connection = image_connection(reader, args.topic)
        stamps = frame_stamps(reader, connection)
        n = len(stamps)

        def save(keys: dict) -> None:
            gt = interpolate(keys, n, str(out))
            write_ground_truth(out, gt, stamps)
            print(f"{out}: {int(gt.labelled.sum())} of {n} frames labelled from {len(keys)} keys")

        if args.keyframes:
            keys = read_keyframes(args.keyframes, stamps, connection.topic)
        else:
            if not has_display():
                raise BagError(
                    "no display, or OpenCV without HighGUI (the headless wheel): label "
                    "headless with --keyframes FILE"
                )
            existing = find_ground_truth(args.bag)
            keys = read_keyframes(existing, stamps, connection.topic) if existing else {}
            keys = label_gui(frames(reader, connection), n, keys, max(1, args.step), save)
            if keys is None:
                print("quit without saving")
                return 0
        save(keys)
    finally:
        reader.close()
    return 0


def _import_gt(args: argparse.Namespace) -> int:
    from siam_tracker_ros.bag.groundtruth import read_ground_truth, write_ground_truth

    if not args.bag.is_dir():
        raise BagError(f"{args.bag}: import needs a bag directory to store the GT in")
    reader = open_bag(args.bag)
    try:
        connection = image_connection(reader, args.topic)
        stamps = frame_stamps(reader, connection)
    finally:
        reader.close()
    gt = read_ground_truth(args.gt, stamps, connection.topic)
    target = args.bag / "groundtruth.csv"
    write_ground_truth(target, gt, stamps)
    print(
        f"{target}: {int(gt.labelled.sum())} of {len(stamps)} frames labelled "
        f"({int(gt.absent.sum())} absent); {gt.unmatched_rows} rows matched no frame (skipped)"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from siam_core.cli.eval import _trackers
    from siam_tracker_ros.bag.jobs import RECORDED, Job, bag_ground_truth, load_run, run_jobs
    from siam_tracker_ros.bag.scoring import write_bag_report

    names = [b.name for b in args.bags]
    if len(set(names)) != len(names):
        raise BagError(f"two bags share a name: {names}; rename one")
    if args.gt and len(args.bags) != 1:
        raise BagError("--gt names the GT of one bag; store GT in each bag for several")
    trackers = _trackers(args.tracker)
    if not args.no_recorded:
        trackers = {RECORDED: RECORDED, **trackers}
    results = args.out / "results" / args.replay
    jobs = [
        Job(
            str(bag),
            args.topic,
            name,
            spec,
            args.replay,
            args.rate,
            str(args.gt or ""),
            str(results),
            args.max_frames,
            args.device,
            args.mono16_max,
        )
        for bag in args.bags
        for name, spec in trackers.items()
    ]
    recorded_absent = "no TrackerStatus topic"

    def done(job: Job, error: str) -> None:
        if error and not (job.spec == RECORDED and recorded_absent in error):
            print(f"{job.tracker:>12} {Path(job.bag).name:<24} FAILED: {error}", file=sys.stderr)
        elif not error:
            print(f"{job.tracker:>12} {Path(job.bag).name:<24} done", flush=True)

    errors = run_jobs(jobs, args.workers, args.fresh, done)
    failures = [e for e in errors if recorded_absent not in e]
    runs: dict[str, list] = {}
    gts = {}
    for job in jobs:
        if all(f.is_file() for f in job.files):
            run = load_run(job)
            runs.setdefault(job.tracker, []).append(run)
            if run.bag not in gts:
                stamps = [int(s) for s in run.table.stamp_ns]
                try:
                    gts[run.bag] = bag_ground_truth(Path(job.bag), job.topic, job.gt, stamps)
                except BagError as exc:
                    failures.append(f"ground truth of {run.bag}: {exc}")
                    gts[run.bag] = None
    if not runs:
        raise BagError("no run finished; see the errors above")
    report = write_bag_report(runs, gts, args.out, failures, args.title)
    print(f"report: {report}")
    return 1 if failures else 0


def _info(args: argparse.Namespace) -> int:
    reader = open_bag(args.bag)
    try:
        print(f"{args.bag}: {reader.message_count} messages, {reader.duration / 1e9:.2f} s")
        for c in reader.connections:
            print(f"  {c.topic:<32} {c.msgtype:<40} {c.msgcount}")
    finally:
        reader.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "record":
            from siam_tracker_ros.bag.recorder import DEFAULT_TOPICS, record

            return record(
                args.out, args.topics or list(DEFAULT_TOPICS), args.storage, args.duration
            )
        if args.command == "label":
            return _label(args)
        if args.command == "import-gt":
            return _import_gt(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "from-sequence":
            from siam_tracker_ros.bag.convert import sequence_to_bag

            n = sequence_to_bag(
                args.sequence,
                args.out,
                args.fps,
                args.topic,
                args.compressed,
                args.storage,
                args.max_frames,
                repeat=args.repeat,
            )
            print(f"{args.out}: {n} frames at {args.fps:g} fps")
            return 0
        if args.command == "to-frames":
            from siam_tracker_ros.bag.convert import bag_to_frames

            n = bag_to_frames(args.bag, args.out, args.topic, str(args.gt or ""))
            print(f"{args.out}: {n} frames")
            return 0
        if args.command == "repair":
            from siam_tracker_ros.bag.repair import repair

            for topic, count in repair(args.bag, args.out, args.storage).items():
                print(f"  {topic:<40} {count} messages rescued")
            print(f"{args.out}: a closed bag (copy any groundtruth file over)")
            return 0
        return _info(args)
    except (BagError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"siam-bag: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
