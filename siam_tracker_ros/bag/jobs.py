"""The units of work of ``siam-bag eval``: one tracker replayed on one bag, or the recording.

Each job opens its bag itself, streams it and writes ``<results>/<bag>/<tracker>.csv`` (per
frame) and ``.json`` (counters, skipped items, errors), so jobs run in parallel processes (as
``siam-eval`` does), a finished job is never redone, and a failing bag costs only its own job.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from vision_msgs.msg import Detection2DArray

from siam_core.eval.runner import make_tracker
from siam_core.tracker import Tracker
from siam_core.zoo import load_tracker
from siam_tracker_ros.bag.bagfile import (
    BagError,
    RecordedInit,
    cdr_stamp_ns,
    frames,
    image_connection,
    open_bag,
    recorded_inits,
)
from siam_tracker_ros.bag.groundtruth import GroundTruth, find_ground_truth, read_ground_truth
from siam_tracker_ros.bag.replay import FrameTable, RunInfo, replay
from siam_tracker_ros.bag.scoring import Run
from siam_tracker_ros.conversions import bbox_to_box, stamp_ns
from siam_tracker_ros.msg import TrackerStatus

RECORDED = "recorded"


def build_tracker(spec: str, device: str = "cpu") -> Tracker:
    """``default`` (the node's default model), ``node:<model>:<weights>`` (as the node loads
    them), or any ``siam-eval`` spec (``KCF``, ``CSRT``, ``siamrpn:<config>:<weights>``...)."""
    if spec == "default":
        return load_tracker("", "", device)
    if spec.startswith("node:"):
        model, _, weights = spec[len("node:") :].partition(":")
        return load_tracker(model, weights, device)
    return make_tracker(spec)


@dataclass(frozen=True)
class Job:
    bag: str
    topic: str
    tracker: str  # name in the report
    spec: str  # RECORDED: the node's own outputs recorded in the bag
    mode: str
    rate: float
    gt: str  # ground-truth file or ""
    results: str
    max_frames: int
    device: str
    mono16_max: float = 65535.0  # the node's parameter of that name

    @property
    def files(self) -> tuple[Path, Path]:
        folder = Path(self.results) / Path(self.bag).name
        return folder / f"{self.tracker}.csv", folder / f"{self.tracker}.json"


def bag_ground_truth(bag: Path, topic: str, gt_file: str, stamps: list[int]) -> GroundTruth | None:
    """The bag's GT (``gt_file``, else the file stored in the bag) or None."""
    path = Path(gt_file) if gt_file else find_ground_truth(bag)
    if path is None:
        return None
    return read_ground_truth(path, stamps, topic)


def run_job(job: Job) -> str:
    """Run ``job`` and write its files; returns "" or the error that stopped it."""
    table_file, info_file = job.files
    table_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        reader = open_bag(job.bag)
    except BagError as exc:
        return str(exc)
    try:
        connection = image_connection(reader, job.topic)
        n = connection.msgcount if not job.max_frames else min(job.max_frames, connection.msgcount)
        if job.spec == RECORDED:
            table, info = recorded_run(reader, connection, n)
        else:
            inits = recorded_inits(reader)
            if not inits:
                inits = _ground_truth_init(reader, connection, job)
            tracker = build_tracker(job.spec, job.device)
            stream = frames(reader, connection, n)
            table, info = replay(
                tracker,
                job.tracker,
                stream,
                n,
                inits,
                job.mode,
                job.rate,
                mono16_max=job.mono16_max,
            )
        table.write_csv(table_file)
        info.write(info_file)
        return info.error
    except (BagError, ValueError, RuntimeError, FileNotFoundError) as exc:
        return f"{Path(job.bag).name} / {job.tracker}: {exc}"
    finally:
        reader.close()


def _ground_truth_init(reader, connection, job: Job) -> list[RecordedInit]:
    """Without a recorded init: start on the first frame the ground truth shows the target."""
    raw = [(log_ns, cdr_stamp_ns(data)) for _, log_ns, data in reader.messages([connection])]
    gt = bag_ground_truth(Path(job.bag), connection.topic, job.gt, [s for _, s in raw])
    if gt is None:
        raise BagError(
            f"{job.bag}: no init recorded on init_accepted and no ground truth: nothing says "
            "what the target is (label it with `siam-bag label`)"
        )
    shown = np.flatnonzero(np.isfinite(gt.boxes).all(axis=1))
    if shown.size == 0:
        raise BagError(f"{gt.source}: no frame of {connection.topic} shows the target")
    first = int(shown[0])
    box = tuple(float(v) for v in gt.boxes[first])
    # Logged just after its frame, so a real-time replay applies it to the buffered frame.
    return [RecordedInit(raw[first][0] + 1, raw[first][1], box, "target")]


def recorded_run(reader, connection, n: int) -> tuple[FrameTable, RunInfo]:
    """What the node did during the recording, from its ``status`` and ``detections`` topics.

    Latency is the bag's log time of the detections minus that of the image (both stamped
    by the recorder's clock); dropped frames come from the node's own counters. With several
    targets the box is the detection of the target ``status`` reports (the primary one).
    """
    status = [c for c in reader.connections if c.msgtype == "siam_tracker_ros/msg/TrackerStatus"]
    dets = [c for c in reader.connections if c.msgtype == "vision_msgs/msg/Detection2DArray"]
    if not status:
        raise BagError(f"{reader.path}: no TrackerStatus topic: the node's run was not recorded")
    table, info = FrameTable.empty(n), RunInfo(RECORDED, "recorded")
    index: dict[int, int] = {}
    for i, (_, log_ns, data) in enumerate(reader.messages([connection])):
        if i >= n:
            break
        table.stamp_ns[i], table.log_ns[i] = cdr_stamp_ns(data), log_ns
        index[int(table.stamp_ns[i])] = i
    last = None
    primary: dict[int, str] = {}  # frame index -> the target id status reports
    for _, log_ns, data in reader.messages(status):
        msg = deserialize_message(bytes(data), TrackerStatus)
        i = index.get(stamp_ns(msg.header.stamp))
        last = msg if last is None or msg.frames_received >= last.frames_received else last
        if i is None:
            continue
        table.processed[i], table.state[i] = True, msg.state
        table.score[i] = msg.score if msg.target_id else np.nan
        primary[i] = msg.target_id
        table.latency_ms[i] = (log_ns - table.log_ns[i]) / 1e6
    for _, log_ns, data in reader.messages(dets):
        msg = deserialize_message(bytes(data), Detection2DArray)
        i = index.get(stamp_ns(msg.header.stamp))
        if i is None:
            continue
        table.latency_ms[i] = (log_ns - table.log_ns[i]) / 1e6
        wanted = primary.get(i)
        found = [d for d in msg.detections if wanted is None or d.id == wanted]
        if found:
            table.boxes[i] = bbox_to_box(found[0].bbox)
    for init in recorded_inits(reader):
        i = index.get(init.stamp_ns)
        if i is None:
            info.inits_failed.append(f"init at stamp {init.stamp_ns}: no frame with that stamp")
            continue
        table.init[i], table.boxes[i] = True, init.box
        info.inits_applied += 1
    info.frames, info.processed = n, int(table.processed.sum())
    if last is not None:
        info.dropped = int(last.frames_dropped)
    info.seconds = (table.log_ns[-1] - table.log_ns[0]) / 1e9 if n > 1 else 0.0
    return table, info


def load_run(job: Job) -> Run:
    table_file, info_file = job.files
    return Run(Path(job.bag).name, FrameTable.read_csv(table_file), RunInfo.read(info_file))


def run_jobs(
    jobs: list[Job], workers: int, fresh: bool, on_done: Callable[[Job, str], None]
) -> list[str]:
    """Run the jobs not done yet (all with ``fresh``) in ``workers`` processes; errors back."""
    todo = [j for j in jobs if fresh or not all(f.is_file() for f in j.files)]
    errors = []
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            error = run_job(job)
            errors += [error] if error else []
            on_done(job, error)
        return errors
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_job, job): job for job in todo}
        for future in as_completed(futures):
            error = future.result()
            errors += [error] if error else []
            on_done(futures[future], error)
    return errors
