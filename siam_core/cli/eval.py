"""``siam-eval``: run trackers on a benchmark and report their scores.

    siam-eval run    --dataset otb2015 --root data/OTB100 --tracker KCF --tracker CSRT
    siam-eval report --dataset otb2015 --root data/OTB100 --tracker KCF --tracker CSRT
    siam-eval all    --paths seqs/Crossing seqs/book --tracker MIL --out out/eval

``run`` writes result files (pysot layout) under ``--results``, skipping sequences already
done; ``report`` scores them and writes tables and plots to ``--out``; ``all`` does both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from siam_core.baselines import BASELINES
from siam_core.data.sequences import Dataset, SequenceList, open_dataset
from siam_core.eval.report import evaluate, markdown_table, write_report
from siam_core.eval.runner import Job, run_benchmark

PROTOCOLS = ("ope", "vot", "vot-lt", "got10k")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siam-eval", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "run trackers and write result files"),
        ("report", "score result files, write tables and plots"),
        ("all", "run, then report"),
    ):
        p = sub.add_parser(name, help=help_text)
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument(
            "--dataset",
            help="otb2013, otb2015, tb50, vot2018, vot2018-lt, "
            "uav123, uav20l, lasot, got10k-val, got10k-test, trackingnet, nfs30, "
            "folder, ...",
        )
        src.add_argument("--paths", nargs="+", type=Path, help="sequence folders/files")
        p.add_argument("--root", type=Path, help="dataset root (with --dataset)")
        p.add_argument("--name", default="sequences", help="dataset name for --paths")
        p.add_argument(
            "--tracker",
            action="append",
            required=True,
            help="MIL, KCF, CSRT, siamrpn:<config>[:<weights>], siamfc:<config>[:<weights>], "
            "drol:<config>[:<weights>] (with DROL's online classifier), any of these with "
            "@onnxruntime/@openvino, or <module>:<function>; repeat for several; NAME=SPEC renames",
        )
        p.add_argument("--results", type=Path, default=Path("out/results"))
        p.add_argument("--sequences", nargs="+", help="only these sequences")
        p.add_argument("--max-frames", type=int, help="truncate sequences (quick runs)")
        p.add_argument("--protocol", choices=PROTOCOLS, help="override the dataset's protocol")
        p.add_argument(
            "--eao-interval",
            type=int,
            nargs=2,
            metavar=("LOW", "HIGH"),
            help="EAO sequence-length interval (VOT)",
        )
        if name != "report":
            p.add_argument("--workers", type=int, default=1, help="parallel processes")
        if name != "run":
            p.add_argument("--out", type=Path, default=Path("out/report"))
            p.add_argument("--title", help="report title")
    return parser


def _dataset(args: argparse.Namespace) -> Dataset:
    if args.paths:
        dataset: Dataset = SequenceList(args.paths, args.name)
    else:
        if args.root is None:
            raise ValueError("--dataset needs --root")
        dataset = open_dataset(args.dataset, args.root)
    if args.protocol:
        dataset.protocol = args.protocol
    if args.eao_interval:
        dataset.eao_interval = tuple(args.eao_interval)
    return dataset


def _trackers(specs: list[str]) -> dict[str, str]:
    """``NAME=SPEC`` or ``SPEC``; the default name is the baseline's (``KCF``), the config of
    a ``siamrpn:<config>`` / ``siamfc:<config>`` spec, or the spec itself."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            value = spec
            if spec.upper() in BASELINES:
                name = spec.upper()
            elif spec.startswith(("siamrpn:", "siamfc:")):
                name = spec.split(":")[1]
            elif spec.startswith("drol:"):
                name = f"{spec.split(':')[1] or Path(spec.split(':', 2)[2]).stem}+online"
            else:
                name = spec.replace(":", ".")
        if name in out:
            raise ValueError(f"tracker name {name!r} given twice; rename one with NAME=SPEC")
        out[name] = value
    return out


def _print_job(job: Job) -> None:
    if job.status == "skipped":
        print(f"{job.tracker:>12} {job.sequence:<24} skipped (result exists)")
    else:
        fps = job.frames / job.seconds if job.seconds > 0 else float("nan")
        print(f"{job.tracker:>12} {job.sequence:<24} {job.frames:5d} frames  {fps:7.1f} frames/s")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        dataset = _dataset(args)
        trackers = _trackers(args.tracker)
        if args.command in ("run", "all"):
            run_benchmark(
                dataset,
                trackers,
                args.results,
                workers=args.workers,
                max_frames=args.max_frames,
                sequences=args.sequences,
                on_job=_print_job,
            )
        if args.command in ("report", "all"):
            ev = evaluate(
                dataset,
                args.results,
                list(trackers),
                sequences=args.sequences,
                max_frames=args.max_frames,
            )
            written = write_report(ev, args.out, args.title)
            print(markdown_table(ev))
            print(f"report: {written[0]}")
    except (ValueError, RuntimeError) as exc:
        print(f"siam-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
