"""The tracking loop behind the node, free of rclpy so that it can be tested on its own.

A camera outruns a tracker, so the node must never build a backlog: the executor thread only
drops the raw message into a one-slot mailbox (O(1), no conversion); a worker thread takes the
newest frame, converts and tracks it, and hands the outcome to a publish callback. A frame that
is replaced before the worker took it is counted as dropped. Recent raw frames are kept by stamp,
so an init box drawn on an older image is applied to that image.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from siam_core.tracker import Tracker, TrackResult, TrackState


@dataclass(frozen=True)
class Frame:
    """A received message, its stamp (ns) and when it arrived (``time.monotonic()``)."""

    msg: Any
    stamp_ns: int
    received: float


@dataclass(frozen=True)
class Counters:
    """Frames received, tracked (processed), replaced before tracking (dropped) and refused
    as malformed or too large (rejected)."""

    received: int
    processed: int
    dropped: int
    rejected: int = 0


@dataclass(frozen=True)
class Outcome:
    """What the worker made of one frame; ``result`` is None while no target is set.

    ``image`` is the converted BGR frame (shared, not copied) for whoever draws on it.
    """

    frame: Frame
    image: np.ndarray
    result: TrackResult | None
    state: TrackState
    target_id: str
    label: str
    latency_ms: float
    counters: Counters


class TrackingWorker:
    """Tracks the newest frame on a thread of its own; see the module docstring.

    ``convert`` turns a message into a BGR uint8 array (raising ``ValueError`` for bad ones),
    ``publish`` receives every :class:`Outcome`, ``warn`` gets one line per problem and
    ``report`` (default: ``warn``) every unexpected exception, with where it happened.

    A frame whose size differs from the one the target was initialised on drops the target
    (state IDLE, warned): a box in other pixel coordinates would be meaningless. A change of
    encoding at the same size keeps it.
    """

    def __init__(
        self,
        tracker: Tracker,
        convert: Callable[[Any], np.ndarray],
        publish: Callable[[Outcome], None],
        warn: Callable[[str], None],
        buffer_size: int = 30,
        report: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.tracker = tracker
        self._convert = convert
        self._publish = publish
        self._warn = warn
        self._report = report or (lambda where, exc: warn(f"{where}: {type(exc).__name__}: {exc}"))
        self._buffer: collections.deque[Frame] = collections.deque(maxlen=buffer_size)
        self._pending: Frame | None = None
        self._wake = threading.Condition()
        self._tracker_lock = threading.Lock()  # init/reset vs. track
        self._thread: threading.Thread | None = None
        self._running = False
        self._ids = itertools.count(1)
        self.target_id = ""
        self.label = ""
        self.init_frame: Frame | None = None
        self._target_shape: tuple[int, ...] = ()
        self._received = self._processed = self._dropped = self._rejected = 0

    # -- executor side ---------------------------------------------------------------------
    def submit(self, msg: Any, stamp_ns: int) -> None:
        """Offer a new frame; replaces (and counts as dropped) one the worker has not taken."""
        frame = Frame(msg, stamp_ns, time.monotonic())
        with self._wake:
            self._received += 1
            self._buffer.append(frame)
            if self._pending is not None:
                self._dropped += 1
            self._pending = frame
            self._wake.notify()

    def counters(self) -> Counters:
        with self._wake:
            return Counters(self._received, self._processed, self._dropped, self._rejected)

    def resize_buffer(self, size: int) -> None:
        """Keep the ``size`` most recent frames from now on (the newest are kept)."""
        if size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {size}")
        with self._wake:
            self._buffer = collections.deque(self._buffer, maxlen=size)

    def locked(self) -> threading.Lock:
        """The lock ``track``/``init`` run under: hold it to change the tracker in place."""
        return self._tracker_lock

    def replace_tracker(self, tracker: Tracker) -> None:
        """Serve with ``tracker`` from the next frame; the current target is dropped."""
        with self._tracker_lock:
            self.tracker.reset()
            self.tracker = tracker
            self.target_id = self.label = ""

    def init_target(
        self, box: Sequence[float], stamp_ns: int = 0, image: Any = None, label: str = ""
    ) -> tuple[bool, str, str]:
        """Start tracking ``box`` on ``image``, else on the buffered frame stamped ``stamp_ns``
        (0: the newest). Returns (success, message, target id); never raises for bad input."""
        frame: Frame | str | None = None
        if image is not None:
            source, where = image, "the image sent with the request"
        else:
            frame = self._find(stamp_ns)
            if isinstance(frame, str):
                return False, frame, ""
            source, where = frame.msg, f"the frame stamped {frame.stamp_ns} ns"
        try:
            bgr = self._convert(source)
            with self._tracker_lock:
                self.tracker.init(bgr, box)  # on failure the current target is kept
                self.target_id = f"{label or 'target'}-{next(self._ids)}"
                self.label = label
                self.init_frame = frame  # which buffered frame it was (None: the request's)
                self._target_shape = bgr.shape
        except (ValueError, RuntimeError) as exc:
            return False, f"init failed: {exc}", ""
        except Exception as exc:  # a bug, not bad input: reported, the request refused
            self._report("init_target", exc)
            return False, f"init failed: internal error ({type(exc).__name__}: {exc})", ""
        return True, f"tracking {self.target_id} from {where}", self.target_id

    def reset(self) -> None:
        with self._tracker_lock:
            self.tracker.reset()
            self.target_id = ""
            self.label = ""

    def _find(self, stamp_ns: int) -> Frame | str:
        with self._wake:
            frames = list(self._buffer)
        if not frames:
            return "no image received yet: publish images before calling init"
        if stamp_ns == 0:
            return frames[-1]
        for frame in reversed(frames):
            if frame.stamp_ns == stamp_ns:
                return frame
        return (
            f"no buffered image with stamp {stamp_ns} ns (buffer holds "
            f"{frames[0].stamp_ns}..{frames[-1].stamp_ns} ns, {len(frames)} frames)"
        )

    # -- worker thread -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="siam-tracking", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after the frame in hand; frames still pending are discarded."""
        with self._wake:
            self._running = False
            self._pending = None
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._running and self._pending is None:
                    self._wake.wait()
                if not self._running:
                    return
                frame, self._pending = self._pending, None
            try:
                self.process(frame)
            except Exception as exc:  # the thread must outlive any one frame
                self._report("tracking a frame", exc)

    def process(self, frame: Frame) -> Outcome | None:
        """Convert, track and publish one frame; a bad frame is reported and skipped (it shows
        in the counters as received but neither processed nor dropped)."""
        try:
            bgr = self._convert(frame.msg)
        except ValueError as exc:
            with self._wake:
                self._rejected += 1
            self._warn(f"dropping a bad image: {exc}")
            return None
        with self._tracker_lock:
            result: TrackResult | None = None
            state = TrackState.IDLE
            if self.tracker.initialized and bgr.shape != self._target_shape:
                old = "x".join(map(str, self._target_shape[1::-1]))
                self._warn(
                    f"image size changed from {old} to {bgr.shape[1]}x{bgr.shape[0]}: target "
                    f"{self.target_id} dropped; call init_target again"
                )
                self.tracker.reset()
                self.target_id = self.label = ""
            if self.tracker.initialized:
                try:
                    result = self.tracker.track(bgr)
                    state = result.state
                except (ValueError, RuntimeError) as exc:
                    self._warn(f"tracking failed on this frame: {exc}")
                    return None
            target_id, label = self.target_id, self.label
        with self._wake:
            self._processed += 1
        latency_ms = (time.monotonic() - frame.received) * 1e3
        counters = self.counters()
        outcome = Outcome(frame, bgr, result, state, target_id, label, latency_ms, counters)
        self._publish(outcome)
        return outcome
