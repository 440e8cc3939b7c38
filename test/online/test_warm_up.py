"""``Tracker.warm_up``: a first target's one-off costs paid before any target, and nothing of
the synthetic target left behind (the node warms its tracker when it loads the model)."""

from __future__ import annotations

import numpy as np
import pytest
from test_drol_tracker import BAG
from test_drol_tracker import QUICK as DROL_QUICK

from siam_core.io.frames import read_frames
from siam_core.tracker.base import Tracker
from siam_core.tracker.longterm import LongTermTracker
from siam_core.zoo import DEFAULT_WEIGHTS, load_tracker

BOX = (315.0, 140.0, 112.0, 112.0)
# DROL's plumbing at test cost; synchronous, so two runs can be compared frame by frame
QUICK = {**DROL_QUICK, "async_update": False}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("no embedded default model")
    if not BAG.is_file():
        pytest.skip(f"shared data not found: {BAG}")
    return read_frames(BAG, 6)


def run(tracker: Tracker, frames: list[np.ndarray]) -> list[tuple]:
    tracker.init(frames[0], BOX)
    results = [tracker.track(frame) for frame in frames[1:]]
    return [(r.box, r.score, r.state) for r in results]


def test_the_node_runtime_compiles_its_graphs_in_the_warm_up_and_tracks_as_a_fresh_one(
    frames: list[np.ndarray],
) -> None:
    """The default runtime (int8 graphs) opens its per-batch head graph on first use: 0.2 s
    on a first live frame before warm-ups existed. After the warm-up it is open, and the real
    target is tracked exactly as by a tracker that never saw the synthetic one."""
    pytest.importorskip("onnxruntime", reason="onnxruntime missing: run `make setup`")
    fresh = load_tracker(backend="onnxruntime", precision="int8", online=QUICK)
    warmed = load_tracker(backend="onnxruntime", precision="int8", online=QUICK)
    net = warmed.runtime
    assert net is not None and not net._per_batch  # nothing opened yet
    warmed.warm_up()
    assert net._per_batch and not warmed.initialized
    assert run(warmed, frames) == run(fresh, frames)


@pytest.mark.parametrize("long_term", [None, {}])
def test_the_warm_up_waits_for_the_background_training_and_scores_with_the_classifier(
    frames: list[np.ndarray], long_term: dict | None
) -> None:
    """The node's classifier trains on a worker: the warm-up waits for that training so that
    its frames run the classifier too (a process's first classifier scores cost 76 ms, and
    its first solve held a frame 120-170 ms), and leaves no job behind."""
    tracker = load_tracker(long_term=long_term, online={**QUICK, "async_update": True})
    inner = tracker.tracker if isinstance(tracker, LongTermTracker) else tracker
    cls = inner.online.classifier
    scored = []
    localize = cls.localize

    def counted(features):
        scored.append(cls.ready)
        return localize(features)

    cls.localize = counted
    tracker.warm_up()
    assert scored and all(scored)  # every warm-up frame scored with a trained classifier
    assert cls._job is None and not tracker.initialized
    assert run(tracker, frames)  # and it tracks a real target afterwards


def test_a_long_term_tracker_warms_up_and_forgets_the_synthetic_target(
    frames: list[np.ndarray],
) -> None:
    fresh = load_tracker(long_term={})
    warmed = load_tracker(long_term={})
    assert isinstance(warmed, LongTermTracker)
    warmed.warm_up(frames=5)
    assert not warmed.initialized
    assert run(warmed, frames) == run(fresh, frames)


def test_warm_up_refuses_a_tracker_with_a_target_and_keeps_it(
    frames: list[np.ndarray],
) -> None:
    tracker, twin = load_tracker(), load_tracker()
    for t in (tracker, twin):
        t.init(frames[0], BOX)
    with pytest.raises(RuntimeError, match="target being tracked"):
        tracker.warm_up()
    assert tracker.initialized
    assert tracker.track(frames[1]).box == twin.track(frames[1]).box
