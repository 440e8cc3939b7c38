"""The tracking loop behind the node, free of rclpy so that it can be tested on its own.

A camera outruns a tracker, so the node must never build a backlog: the executor thread only
drops the raw message into a one-slot mailbox (O(1), no conversion); a worker thread takes the
newest frame, converts and tracks it, and hands the outcome to a publish callback. A frame that
is replaced before the worker took it is counted as dropped. Recent raw frames are kept by stamp,
so an init box drawn on an older image is applied to that image, and an init naming an image
that has not arrived yet waits a moment for it.

Targets: an init without an id replaces every target by one new target (the single-target
behaviour); an init with an id adds that target, or replaces the one of that id. A plain
SiamRPN-family tracker (long-term, online (DROL) or not) tracks all of them in one batched
network pass (:class:`~siam_core.tracker.multi.MultiTracker`; an online target has a classifier
of its own); other families (SiamFC/SiamDW and DROL-FC, DaSiamRPN's official conventions,
distractor-aware) keep one target at a time.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
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
class TargetOutcome:
    """One target's result on one frame."""

    target_id: str
    label: str
    result: TrackResult

    @property
    def state(self) -> TrackState:
        return self.result.state


@dataclass(frozen=True)
class Outcome:
    """What the worker made of one frame; ``result`` is None while no target is set.

    ``result``, ``state``, ``target_id`` and ``label`` describe the primary target (the first
    of ``targets``, the oldest one still tracked), what the single-target outputs report;
    ``targets`` holds every target in the order they were added. ``image`` is the converted
    BGR frame (shared, not copied) for whoever draws on it.
    """

    frame: Frame
    image: np.ndarray
    result: TrackResult | None
    state: TrackState
    target_id: str
    label: str
    latency_ms: float
    counters: Counters
    targets: tuple[TargetOutcome, ...] = ()

    def all_targets(self) -> tuple[TargetOutcome, ...]:
        """Every target's result; an outcome built with the primary fields only gives those."""
        if self.targets or self.result is None:
            return self.targets
        return (TargetOutcome(self.target_id, self.label, self.result),)


@dataclass(frozen=True)
class _Target:
    """What the worker keeps beside the tracker for one target."""

    label: str
    shape: tuple[int, ...]  # of the image it was initialised on


class SoloTargets:
    """One tracker that cannot batch, behind the interface of ``MultiTracker`` (one target)."""

    capacity = 1

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self._id: str | None = None

    @property
    def ids(self) -> list[str]:
        return [self._id] if self._id is not None and self.tracker.initialized else []

    def add(self, target_id: str, image: np.ndarray, box: Sequence[float]) -> None:
        self.tracker.init(image, box)  # a failed init keeps the current target
        self._id = target_id

    def remove(self, target_id: str) -> bool:
        if target_id not in self.ids:
            return False
        self.clear()
        return True

    def clear(self) -> None:
        self.tracker.reset()
        self._id = None

    def close(self) -> None:
        """Forget the target (``MultiTracker.close`` also stops its classifier worker)."""
        self.clear()

    def track(self, image: np.ndarray) -> dict[str, TrackResult]:
        return {self._id: self.tracker.track(image)} if self.ids else {}


def target_set(tracker: Tracker) -> Any:
    """The targets' container for ``tracker``: a ``MultiTracker`` sharing its network when it
    is a plain SiamRPN-family tracker (long-term or not, online or not), else ``SoloTargets``."""
    from siam_core.tracker.drol import DROLTracker  # torch: not needed for --help
    from siam_core.tracker.longterm import LongTermTracker
    from siam_core.tracker.multi import MultiTracker
    from siam_core.tracker.siamrpn import SiamRPNTracker

    inner = tracker.tracker if isinstance(tracker, LongTermTracker) else tracker
    # other subclasses keep state or rules of their own; DROL's is per target in MultiTracker
    if type(inner) not in (SiamRPNTracker, DROLTracker):
        return SoloTargets(tracker)
    long_term = asdict(tracker.config) if isinstance(tracker, LongTermTracker) else None
    return MultiTracker.from_tracker(inner, long_term)


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
        max_targets: int = 10,
        init_wait_s: float = 1.0,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.tracker = tracker
        self._set = target_set(tracker)
        self._meta: dict[str, _Target] = {}
        self.max_targets = max_targets
        self.init_wait_s = init_wait_s
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
        self._next_number = 1  # of the next generated target id
        self.init_frame: Frame | None = None
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
            self._wake.notify_all()  # the worker loop, and an init waiting for this stamp

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
        """Serve with ``tracker`` from the next frame; every target is dropped."""
        with self._tracker_lock:
            self._set.close()
            self.tracker.reset()
            self.tracker = tracker
            self._set = target_set(tracker)
            self._meta.clear()

    def set_long_term(self, config: Any) -> None:
        """New long-term settings (a ``LongTermConfig``) for every target, live."""
        with self._tracker_lock:
            self.tracker.config = self.tracker.machine.config = config
            if hasattr(self._set, "configure_long_term"):
                self._set.configure_long_term(config)

    @property
    def target_ids(self) -> list[str]:
        """The targets being tracked, oldest first."""
        with self._tracker_lock:
            return list(self._meta)

    @property
    def target_id(self) -> str:
        """The primary target's id (the oldest still tracked); empty without targets."""
        return next(iter(self.target_ids), "")

    @property
    def capacity(self) -> int:
        """How many targets may be tracked at once with this tracker and ``max_targets``."""
        return min(self.max_targets, getattr(self._set, "capacity", self.max_targets))

    def init_target(
        self,
        box: Sequence[float],
        stamp_ns: int = 0,
        image: Any = None,
        label: str = "",
        target_id: str = "",
    ) -> tuple[bool, str, str]:
        """Track ``box`` on ``image``, else on the buffered frame stamped ``stamp_ns`` (0: the
        newest). Without ``target_id`` the new target replaces every target; with one it is
        added, or replaces the target of that id. Returns (success, message, target id);
        never raises for bad input, and a refused request leaves every target as it was."""
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
                replacing = target_id in self._meta
                new_id = self._start(target_id, bgr, box, label)
                self.init_frame = frame  # which buffered frame it was (None: the request's)
        except (ValueError, RuntimeError) as exc:
            return False, f"init failed: {exc}", ""
        except Exception as exc:  # a bug, not bad input: reported, the request refused
            self._report("init_target", exc)
            return False, f"init failed: internal error ({type(exc).__name__}: {exc})", ""
        done = "replaced" if replacing else "tracking"
        return True, f"{done} {new_id} from {where}", new_id

    def _start(self, target_id: str, bgr: np.ndarray, box: Sequence[float], label: str) -> str:
        """Add or replace one target, return its id (the tracker lock held); raises
        ValueError to refuse."""
        replacing = target_id in self._meta
        if target_id and not replacing and len(self._meta) >= self.capacity:
            if self.capacity < self.max_targets:
                raise ValueError(
                    f"{self.tracker.name} tracks one target at a time (several targets need "
                    "a SiamRPN-family model without distractor-aware tracking); "
                    f"reset {next(iter(self._meta))!r} first, or init without a target_id to "
                    "replace it"
                )
            raise ValueError(
                f"already tracking {len(self._meta)} targets (max_targets={self.max_targets}): "
                f"{', '.join(self._meta)}; reset one first"
            )
        number = self._next_number  # a generated id is only used up by a successful init
        new_id = target_id
        while not new_id or (not target_id and new_id in self._meta):
            new_id, number = f"{label or 'target'}-{number}", number + 1
        self._set.add(new_id, bgr, box)  # a bad box raises here: nothing has changed
        self._next_number = number
        if not target_id:  # the single-target call: the new target replaces all the others
            for other in [tid for tid in self._meta if tid != new_id]:
                self._set.remove(other)
                del self._meta[other]
        self._meta[new_id] = _Target(label, bgr.shape)
        return new_id

    def reset(self, target_id: str = "") -> tuple[bool, str]:
        """Forget ``target_id``, or every target when it is empty: (success, message)."""
        with self._tracker_lock:
            if not target_id:
                self._set.clear()
                self.tracker.reset()
                count, _ = len(self._meta), self._meta.clear()
                return True, f"{count} target(s) forgotten; state IDLE"
            if target_id not in self._meta:
                known = ", ".join(self._meta) or "none"
                return False, f"no target {target_id!r} (tracking: {known})"
            self._set.remove(target_id)
            del self._meta[target_id]
            left = ", ".join(self._meta) or "none"
            return True, f"target {target_id} forgotten (tracking: {left})"

    def _find(self, stamp_ns: int) -> Frame | str:
        """The buffered frame stamped ``stamp_ns`` (0: the newest). A request can overtake the
        image it names (a client that saw the image first calls at once), so a stamp newer than
        every buffered frame waits up to ``init_wait_s`` for it to arrive."""
        with self._wake:
            if stamp_ns:
                self._wake.wait_for(
                    lambda: bool(self._buffer) and self._buffer[-1].stamp_ns >= stamp_ns,
                    timeout=self.init_wait_s,
                )
            frames = list(self._buffer)
        waited = f" (waited {self.init_wait_s:g} s for it)" if stamp_ns else ""
        if not frames:
            return f"no image received yet{waited}: publish images before calling init"
        if stamp_ns == 0:
            return frames[-1]
        for frame in reversed(frames):
            if frame.stamp_ns == stamp_ns:
                return frame
        if stamp_ns < frames[-1].stamp_ns:
            waited = ""
        return (
            f"no buffered image with stamp {stamp_ns} ns{waited} (buffer holds "
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
            for tid, meta in list(self._meta.items()):
                if bgr.shape != meta.shape:
                    old = "x".join(map(str, meta.shape[1::-1]))
                    self._warn(
                        f"image size changed from {old} to {bgr.shape[1]}x{bgr.shape[0]}: "
                        f"target {tid} dropped; call init_target again"
                    )
                    self._set.remove(tid)
                    del self._meta[tid]
            try:
                results = self._set.track(bgr) if self._meta else {}
            except (ValueError, RuntimeError) as exc:
                self._warn(f"tracking failed on this frame: {exc}")
                return None
            targets = tuple(
                TargetOutcome(tid, meta.label, results[tid]) for tid, meta in self._meta.items()
            )
        with self._wake:
            self._processed += 1
        latency_ms = (time.monotonic() - frame.received) * 1e3
        counters = self.counters()
        first = targets[0] if targets else None
        outcome = Outcome(
            frame,
            bgr,
            first.result if first else None,
            first.state if first else TrackState.IDLE,
            first.target_id if first else "",
            first.label if first else "",
            latency_ms,
            counters,
            targets,
        )
        self._publish(outcome)
        return outcome
