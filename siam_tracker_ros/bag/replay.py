"""Replay a bag's images through the node's own code: its conversion and its worker.

Frames go, in bag order with their recorded stamps, through the node's ``_convert`` (the same
functions for every encoding and for compressed images) into a
:class:`~siam_tracker_ros.worker.TrackingWorker`, the class that runs inside the node. Modes:

* ``every-frame``: lockstep; each frame is submitted once the previous one is done, so no
  frame is dropped and the run is deterministic;
* ``realtime``: frames are submitted at their recorded rate (bag log times, ``rate`` speeds
  up or slows down), and the worker drops what it cannot keep up with, exactly as in the node.

Inits recorded in the bag (``init_accepted``) are applied at their stamps: in lockstep right
after the frame they were drawn on, in real time at their log time on the buffered frame, as
the node's service does. Per frame the result holds the box the node would have published (NaN
when none: IDLE, LOST, dropped), the state, the score, the latency and whether it was processed.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from siam_core.tracker import Tracker, TrackState
from siam_tracker_ros.bag.bagfile import BagError, BagFrame, RecordedInit
from siam_tracker_ros.conversions import message_to_bgr
from siam_tracker_ros.worker import Outcome, TrackingWorker

MODES = ("every-frame", "realtime")
NOT_PROCESSED = -1
REPORTED = (int(TrackState.TRACKING), int(TrackState.RECOVERED))
COLUMNS = ["frame", "stamp_ns", "log_ns", "processed", "state", "x", "y", "w", "h", "score"]
COLUMNS += ["latency_ms", "init"]


@dataclass
class FrameTable:
    """Per-frame outputs of one run, in preallocated arrays (bounded memory for long bags)."""

    stamp_ns: np.ndarray
    log_ns: np.ndarray
    processed: np.ndarray
    state: np.ndarray
    boxes: np.ndarray
    score: np.ndarray
    latency_ms: np.ndarray
    init: np.ndarray

    @classmethod
    def empty(cls, n: int) -> FrameTable:
        return cls(
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, bool),
            np.full(n, NOT_PROCESSED, np.int8),
            np.full((n, 4), np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.zeros(n, bool),
        )

    def __len__(self) -> int:
        return len(self.stamp_ns)

    def head(self, n: int) -> FrameTable:
        return FrameTable(*(getattr(self, f)[:n] for f in self.__dataclass_fields__))

    def write_csv(self, path: Path) -> None:
        """Written whole to a temporary name, then renamed: never a partial file."""
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with tmp.open("w", newline="") as handle:
            rows = csv.writer(handle)
            rows.writerow(COLUMNS)
            for i in range(len(self)):
                head = [i, self.stamp_ns[i], self.log_ns[i], int(self.processed[i]), self.state[i]]
                box = [f"{v:.2f}" for v in self.boxes[i]]
                tail = [f"{self.score[i]:.5f}", f"{self.latency_ms[i]:.3f}", int(self.init[i])]
                rows.writerow([*head, *box, *tail])
        os.replace(tmp, path)

    @classmethod
    def read_csv(cls, path: Path) -> FrameTable:
        """Streamed twice (count, then fill): no per-row objects kept for a long bag."""
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
            n = sum(1 for _ in handle)
        if header != COLUMNS:
            raise BagError(f"{path}: not a siam-bag frame table (header {header})")
        t = cls.empty(n)
        with path.open(newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            for i, row in enumerate(rows):
                t.stamp_ns[i], t.log_ns[i] = int(row[1]), int(row[2])
                t.processed[i], t.state[i] = row[3] == "1", int(row[4])
                t.boxes[i] = [float(v) for v in row[5:9]]
                t.score[i], t.latency_ms[i] = float(row[9]), float(row[10])
                t.init[i] = row[11] == "1"
        return t


@dataclass
class RunInfo:
    """What a frame table does not say: counters, skipped items and errors of one run."""

    tracker: str
    mode: str
    frames: int = 0
    processed: int = 0
    dropped: int = 0
    bad_frames: int = 0
    inits_applied: int = 0
    inits_failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> RunInfo:
        return cls(**json.loads(path.read_text()))


class _Recorder:
    """The worker's publish/warn callbacks: each outcome goes into the table at its frame."""

    def __init__(self, table: FrameTable, info: RunInfo) -> None:
        self.table, self.info = table, info
        self.inflight: collections.deque[tuple[Any, int]] = collections.deque()
        self.resolved = 0  # frames processed or rejected by the worker
        self.changed = threading.Condition()

    def submitted(self, frame: BagFrame) -> None:
        with self.changed:
            self.inflight.append((frame.msg, frame.index))

    def publish(self, outcome: Outcome) -> None:
        with self.changed:
            index = None
            while self.inflight:  # frames before this one were dropped or rejected
                msg, i = self.inflight.popleft()
                if msg is outcome.frame.msg:
                    index = i
                    break
            if index is not None:
                t = self.table
                t.processed[index] = True
                t.state[index] = int(outcome.state)
                t.latency_ms[index] = outcome.latency_ms
                if outcome.result is not None:
                    t.score[index] = float(outcome.result.score)
                    if int(outcome.state) in REPORTED:
                        t.boxes[index] = outcome.result.box
            self.resolved += 1
            self.changed.notify_all()

    def warn(self, text: str) -> None:
        with self.changed:
            self.info.bad_frames += 1
            if len(self.info.warnings) < 20:
                self.info.warnings.append(text)
            self.resolved += 1
            self.changed.notify_all()

    def wait(self, target: int, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.resolved >= target, timeout):
                raise RuntimeError(f"the tracker gave no result within {timeout:.0f} s")


def _apply_init(
    worker: TrackingWorker, init: RecordedInit, table: FrameTable, info: RunInfo, index: int | None
) -> None:
    ok, message, _ = worker.init_target(init.box, init.stamp_ns, None, init.label)
    if ok:
        info.inits_applied += 1
        if index is not None:
            table.init[index] = True
            table.boxes[index] = init.box
    else:
        info.inits_failed.append(f"init at stamp {init.stamp_ns}: {message}")


def replay(
    tracker: Tracker,
    name: str,
    frames: Iterable[BagFrame],
    n: int,
    inits: list[RecordedInit],
    mode: str = "every-frame",
    rate: float = 1.0,
    buffer_size: int = 30,
    frame_timeout: float = 120.0,
    mono16_max: float = 65535.0,
) -> tuple[FrameTable, RunInfo]:
    """Replay ``n`` frames (a stream) through a worker around ``tracker``; see the module doc.

    A stream that breaks off (:class:`BagError`) ends the run: the frames so far are kept and
    ``RunInfo.error`` says what happened.
    """
    if mode not in MODES:
        raise ValueError(f"unknown replay mode {mode!r}; choose {MODES}")
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    table, info = FrameTable.empty(n), RunInfo(name, mode)
    rec = _Recorder(table, info)
    worker = TrackingWorker(
        tracker,
        lambda msg: message_to_bgr(msg, mono16_max),  # the node's conversion
        rec.publish,
        rec.warn,
        buffer_size=buffer_size,
    )
    by_stamp: dict[int, list[RecordedInit]] = collections.defaultdict(list)
    for init in inits:
        by_stamp[init.stamp_ns].append(init)
    pending_inits = collections.deque(sorted(inits, key=lambda i: i.log_ns))
    stamp_index: dict[int, int] = {}
    count = 0
    start = time.perf_counter()
    worker.start()
    try:
        clock: tuple[float, int] | None = None
        for frame in _guard(frames, info):
            if frame.index >= n:
                break
            table.stamp_ns[frame.index], table.log_ns[frame.index] = frame.stamp_ns, frame.log_ns
            if mode == "every-frame":
                rec.submitted(frame)
                worker.submit(frame.msg, frame.stamp_ns)
                rec.wait(count + 1, frame_timeout)
                for init in by_stamp.pop(frame.stamp_ns, []):
                    _apply_init(worker, init, table, info, frame.index)
            else:
                clock = clock or (time.monotonic(), frame.log_ns)
                stamp_index[frame.stamp_ns] = frame.index
                while pending_inits and pending_inits[0].log_ns <= frame.log_ns:
                    init = pending_inits.popleft()
                    _sleep_until(clock, init.log_ns, rate)
                    _apply_init(worker, init, table, info, stamp_index.get(init.stamp_ns))
                _sleep_until(clock, frame.log_ns, rate)
                rec.submitted(frame)
                worker.submit(frame.msg, frame.stamp_ns)
            count += 1
        if mode == "realtime":
            for init in pending_inits:  # logged after the last image
                _apply_init(worker, init, table, info, stamp_index.get(init.stamp_ns))
            deadline = time.monotonic() + frame_timeout
            while True:
                c = worker.counters()
                if c.processed + c.dropped + info.bad_frames >= c.received:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the tracker gave no result within {frame_timeout:.0f} s")
                time.sleep(0.005)
        else:
            info.inits_failed += [
                f"init at stamp {s} ns: no frame with that stamp" for s in by_stamp
            ]
    finally:
        worker.stop()
    counters = worker.counters()
    info.frames, info.processed, info.dropped = count, counters.processed, counters.dropped
    info.seconds = time.perf_counter() - start
    return (table if count == n else table.head(count)), info


def _guard(frames: Iterable[BagFrame], info: RunInfo) -> Iterator[BagFrame]:
    """The frames until the stream breaks; the break is noted in ``info`` (results kept)."""
    try:
        yield from frames
    except BagError as exc:
        info.error = str(exc)


def _sleep_until(clock: tuple[float, int], log_ns: int, rate: float) -> None:
    wall, first = clock
    delay = wall + (log_ns - first) / 1e9 / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
