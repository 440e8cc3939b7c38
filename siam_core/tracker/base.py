"""The one tracker interface every tracker in the project implements.

A tracker is initialised on a frame and a box, then fed frames one by one. Images are
OpenCV-style BGR ``uint8`` arrays (H, W, 3); grayscale and BGRA frames are converted here so
every tracker sees the same input. Boxes are ``(x, y, w, h)`` in pixels, (x, y) the top-left
corner, 0-based.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

Box = tuple[float, float, float, float]


class TrackState(enum.IntEnum):
    """Tracker state; the values equal the ``TrackerStatus.msg`` constants of the ROS layer."""

    IDLE = 0
    TRACKING = 1
    LOST = 2
    RECOVERED = 3


@dataclass(frozen=True)
class TrackResult:
    """What a tracker says about one frame.

    ``search_region`` is the square image region (x, y, w, h) that the tracker searched, so a
    user can see how far a lost tracker is looking; ``timings`` holds per-stage seconds;
    ``appearance`` the long-term appearance check's similarity where it ran, else None.
    """

    box: Box
    score: float
    state: TrackState
    search_region: Box
    timings: dict[str, float] = field(default_factory=dict)
    appearance: float | None = None


def check_image(image: object) -> np.ndarray:
    """Validate a frame and return it as a contiguous BGR uint8 (H, W, 3) array.

    Grayscale (H, W) or (H, W, 1) and BGRA (H, W, 4) are converted; anything else raises a
    ``ValueError`` that names the problem, so bad frames fail here and not deep in a network.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        if image.size == 0:
            raise ValueError(f"image is empty: shape {image.shape}")
        return cv2.cvtColor(
            np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2BGR
        )
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


# Box bounds shared by every entry point (core, ROS services and topics, CLI). A side below
# MIN_BOX_SIDE makes the template scale degenerate (1e-200 px overflows to inf); a side above
# MAX_BOX_SCALE times the image's is no object in that image, and would only make crops huge.
MIN_BOX_SIDE = 1.0
MAX_BOX_SCALE = 2.0


def check_box(box: Sequence[float], image_shape: tuple[int, ...] | None = None) -> Box:
    """Validate an (x, y, w, h) box: four finite numbers, ``w`` and ``h`` >= ``MIN_BOX_SIDE``
    px; with ``image_shape`` also overlapping the image, each side at most ``MAX_BOX_SCALE``
    times the image's."""
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"box must be four numbers (x, y, w, h), got {box!r}") from exc
    if len(values) != 4:
        raise ValueError(f"box must have 4 values (x, y, w, h), got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box has a non-finite value: {values}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be positive, got w={w}, h={h}")
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise ValueError(f"box is smaller than {MIN_BOX_SIDE:g} px: w={w:g}, h={h:g}")
    if image_shape is not None:
        ih, iw = image_shape[:2]
        if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
            raise ValueError(f"box {values} lies wholly outside the {iw}x{ih} image")
        if w > MAX_BOX_SCALE * iw or h > MAX_BOX_SCALE * ih:
            raise ValueError(
                f"box {w:g}x{h:g} px is too large for the {iw}x{ih} image (at most "
                f"{MAX_BOX_SCALE:g} times the image's width and height)"
            )
    return x, y, w, h


def synthetic_frame() -> tuple[np.ndarray, Box]:
    """A seeded, textured 480x360 BGR frame (a flat one could take cheaper paths) and a box on
    it: for running a tracker where no real image is at hand (warm-up, export checks)."""
    rng = np.random.default_rng(0)
    frame = cv2.resize(rng.integers(0, 256, (45, 60, 3), dtype=np.uint8), (480, 360))
    return frame, (200.0, 140.0, 80.0, 80.0)


class Tracker(ABC):
    """Single-object tracker: ``init`` once on a frame and box, then ``track`` each frame.

    The public methods validate input once for every tracker; subclasses implement
    ``_init`` and ``_track`` on clean BGR frames and boxes.
    """

    name: str = "tracker"

    def __init__(self) -> None:
        self._initialized = False

    @property
    def initialized(self) -> bool:
        """Whether ``init`` has succeeded and ``reset`` has not been called since."""
        return self._initialized

    def init(self, image: np.ndarray, box: Sequence[float]) -> None:
        """Start tracking the object in ``box`` of ``image``; replaces any previous target.

        Raises ``ValueError`` for a bad frame or box; on any failure the previous target (if
        any) is kept, so a rejected request never costs the target being tracked."""
        frame = check_image(image)
        target = check_box(box, frame.shape)
        # A failed init must leave the current target as it was: restore every attribute.
        saved = dict(self.__dict__)
        try:
            self._initialized = False
            self._init(frame, target)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        self._initialized = True

    def track(self, image: np.ndarray) -> TrackResult:
        """Locate the target in the next frame."""
        if not self._initialized:
            raise RuntimeError(f"{self.name}: track() called before init()")
        return self._track(check_image(image))

    def reset(self) -> None:
        """Forget the target; the next call must be ``init``."""
        self._initialized = False

    def warm_up(self, frames: int = 3) -> None:
        """Init and track on a synthetic frame, then reset: the one-off costs of a first
        target (graphs a runtime compiles on first use, a process's first solve and first
        classifier scores; 0.2-0.4 s of frames on 2 cores with the int8 default) are paid
        here, so a live target's first frames are not dropped behind them. Waits for work
        ``init`` started in the background (the online classifier's training: about 2 s) so
        that the frames use it too. For an idle tracker only: a target would be lost."""
        if self._initialized:
            raise RuntimeError(f"{self.name}: warm_up() would replace the target being tracked")
        image, box = synthetic_frame()
        try:
            self.init(image, box)
            self.wait_background()
            for _ in range(frames):
                self.track(image)
        finally:
            self.reset()

    def wait_background(self) -> None:
        """Block until what ``init`` or ``track`` started off the frame path has finished;
        nothing, for a tracker that starts nothing there."""
        return None

    @abstractmethod
    def _init(self, image: np.ndarray, box: Box) -> None:
        """Initialise on a validated BGR frame and a validated box."""

    @abstractmethod
    def _track(self, image: np.ndarray) -> TrackResult:
        """Track on a validated BGR frame."""
