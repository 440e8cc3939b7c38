"""OpenCV MIL / KCF / CSRT behind the Tracker interface, on real frames."""

from __future__ import annotations

import numpy as np
import pytest
from _evaldata import seqdir

from siam_core.baselines import BASELINES, OpenCVTracker, build_baseline
from siam_core.data import load_sequence
from siam_core.eval.metrics import box_iou
from siam_core.tracker.base import TrackState


@pytest.fixture(scope="module")
def crossing():
    return load_sequence(seqdir() / "otb" / "Crossing").head(30)


def _track(tracker, seq) -> list:
    tracker.init(seq.read(0), seq.init_box)
    return [tracker.track(seq.read(i)) for i in range(1, len(seq))]


@pytest.mark.parametrize(("kind", "min_mean_iou"), [("MIL", 0.55), ("KCF", 0.3), ("CSRT", 0.7)])
def test_baselines_follow_the_target(crossing, kind: str, min_mean_iou: float) -> None:
    results = _track(build_baseline(kind.lower()), crossing)
    boxes = np.array([r.box for r in results])
    ious = box_iou(boxes, crossing.gt[1:])
    assert ious[:5].min() > 0.5  # all three hold the pedestrian for the first frames
    assert ious.mean() > min_mean_iou
    h, w = crossing.read(0).shape[:2]
    for r in results:
        assert r.search_region == (0.0, 0.0, float(w), float(h))
        assert "update" in r.timings and r.timings["update"] > 0
        assert (r.state, r.score) in ((TrackState.TRACKING, 1.0), (TrackState.LOST, 0.0))


def test_lost_keeps_the_last_box(crossing) -> None:
    tracker = build_baseline("KCF")
    first = _track(tracker, crossing.head(3))[-1]
    lost = tracker.track(np.zeros_like(crossing.read(0)))
    assert first.state == TrackState.TRACKING
    assert lost.state == TrackState.LOST and lost.score == 0.0 and lost.box == first.box


def test_two_trackers_coexist() -> None:
    root = seqdir()
    a = load_sequence(root / "otb" / "Crossing").head(8)
    b = load_sequence(root / "otb" / "MotorRolling").head(8)
    alone_a = [r.box for r in _track(OpenCVTracker("CSRT"), a)]
    alone_b = [r.box for r in _track(OpenCVTracker("CSRT"), b)]
    ta, tb = OpenCVTracker("CSRT"), OpenCVTracker("CSRT")
    ta.init(a.read(0), a.init_box)
    tb.init(b.read(0), b.init_box)
    interleaved_a, interleaved_b = [], []
    for i in range(1, 8):
        interleaved_a.append(ta.track(a.read(i)).box)
        interleaved_b.append(tb.track(b.read(i)).box)
    assert interleaved_a == alone_a and interleaved_b == alone_b


def test_box_partly_outside_the_image_is_clipped(crossing) -> None:
    tracker = build_baseline("CSRT")
    tracker.init(crossing.read(0), (-10.0, 140.0, 40.0, 60.0))
    assert tracker.track(crossing.read(1)).state in (TrackState.TRACKING, TrackState.LOST)


def test_bad_use() -> None:
    assert BASELINES == ("MIL", "KCF", "CSRT")
    with pytest.raises(ValueError, match="unknown OpenCV tracker 'boosting'"):
        OpenCVTracker("boosting")
    tracker = OpenCVTracker("MIL")
    with pytest.raises(RuntimeError, match="before init"):
        tracker.track(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="outside"):
        tracker.init(np.zeros((10, 10, 3), np.uint8), (20, 20, 5, 5))
