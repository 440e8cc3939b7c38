"""Classical OpenCV trackers (MIL, KCF, CSRT) behind the project's ``Tracker`` interface.

They give every evaluation report a reference row. All three come from one wheel,
``opencv-contrib-python-headless``: MIL is in OpenCV's main modules, KCF and CSRT in the
contrib ``tracking`` module, and the contrib wheel contains the main modules too, so the plain
``opencv-python`` wheel is not installed alongside it (both would provide the same ``cv2``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState

_FACTORIES: dict[str, Callable[[], cv2.Tracker]] = {
    "MIL": cv2.TrackerMIL.create,
    "KCF": cv2.TrackerKCF.create,
    "CSRT": cv2.TrackerCSRT.create,
}

BASELINES = tuple(_FACTORIES)


def _to_cv_rect(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer rectangle inside the image; OpenCV's trackers reject boxes that leave it."""
    x0 = min(max(round(box[0]), 0), width - 1)
    y0 = min(max(round(box[1]), 0), height - 1)
    x1 = min(max(round(box[0] + box[2]), x0 + 1), width)
    y1 = min(max(round(box[1] + box[3]), y0 + 1), height)
    return x0, y0, x1 - x0, y1 - y0


class OpenCVTracker(Tracker):
    """One of OpenCV's MIL, KCF or CSRT trackers.

    OpenCV reports success or failure per frame but no confidence: ``score`` is 1.0 while
    tracking and 0.0 when OpenCV reports failure, and then ``state`` is LOST and the last box
    is kept. OpenCV does not expose the window it searched, so ``search_region`` is the whole
    frame. The initial box is rounded to integer pixels and clipped to the image, as OpenCV
    requires.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        key = kind.upper()
        if key not in _FACTORIES:
            raise ValueError(f"unknown OpenCV tracker {kind!r}; known: {list(_FACTORIES)}")
        self.name = key
        self._cv: cv2.Tracker | None = None
        self._box: Box = (0.0, 0.0, 0.0, 0.0)

    def _init(self, image: np.ndarray, box: Box) -> None:
        h, w = image.shape[:2]
        rect = _to_cv_rect(box, w, h)
        self._cv = _FACTORIES[self.name]()
        self._cv.init(image, rect)
        self._box = box

    def _track(self, image: np.ndarray) -> TrackResult:
        assert self._cv is not None
        start = time.perf_counter()
        ok, rect = self._cv.update(image)
        elapsed = time.perf_counter() - start
        ok = bool(ok) and rect[2] > 0 and rect[3] > 0
        if ok:
            x, y, w, h = (float(v) for v in rect)
            self._box = (x, y, w, h)
        height, width = image.shape[:2]
        return TrackResult(
            box=self._box,
            score=1.0 if ok else 0.0,
            state=TrackState.TRACKING if ok else TrackState.LOST,
            search_region=(0.0, 0.0, float(width), float(height)),
            timings={"update": elapsed},
        )


def build_baseline(name: str) -> OpenCVTracker:
    """``MIL``, ``KCF`` or ``CSRT`` (any case)."""
    return OpenCVTracker(name)
