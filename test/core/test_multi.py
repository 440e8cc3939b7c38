"""Several targets in one batched pass (``MultiTracker``) on real frames.

Each target of a batched pass must follow exactly the track its own single-target tracker
follows (same network, same frames); targets come and go at any frame, a bad box leaves the
others as they were, and long-term targets widen their search on their own.
"""

from __future__ import annotations

import numpy as np
import pytest
from _siamrpn_data import BAG, PARITY, need, read_video

from siam_core.checkpoint import load_checkpoint
from siam_core.config import load_config
from siam_core.tracker.base import TrackState
from siam_core.tracker.longterm import REPORT_ONLY, LongTermConfig, LongTermTracker
from siam_core.tracker.multi import MultiTracker
from siam_core.tracker.siamrpn import SiamRPNTracker

BOXES = {"bag": (315.0, 140.0, 112.0, 112.0), "left": (60.0, 150.0, 90.0, 120.0)}
BOXES["top"] = (200.0, 20.0, 70.0, 60.0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_video(need(BAG), limit=40)


@pytest.fixture(scope="module")
def alex():
    return load_checkpoint(
        need(PARITY) / "weights.safetensors", load_config("siamrpn_alex_dwxcorr")
    )


def test_batched_targets_follow_their_single_target_tracks(alex, frames) -> None:
    model, cfg = alex
    multi = MultiTracker(model, cfg)
    singles = {tid: SiamRPNTracker(model, cfg) for tid in BOXES}
    for tid, box in BOXES.items():
        multi.add(tid, frames[0], box)
        singles[tid].init(frames[0], box)
    for i, frame in enumerate(frames[1:25], 1):
        results = multi.track(frame)
        assert set(results) == set(BOXES)
        for tid, single in singles.items():
            ref = single.track(frame)
            err = float(np.abs(np.subtract(results[tid].box, ref.box)).max())
            assert err < 1e-2, f"frame {i}, target {tid}: batched box off by {err:.4f} px"
            assert abs(results[tid].score - ref.score) < 1e-4


def test_targets_added_replaced_and_removed_at_any_frame(alex, frames) -> None:
    model, cfg = alex
    multi = MultiTracker(model, cfg)
    multi.add(1, frames[0], BOXES["bag"])
    multi.track(frames[1])
    multi.add(2, frames[2], BOXES["left"])  # joins at frame 2
    late = SiamRPNTracker(model, cfg)
    late.init(frames[2], BOXES["left"])
    for frame in frames[3:8]:
        res = multi.track(frame)
        ref = late.track(frame)
        assert np.abs(np.subtract(res[2].box, ref.box)).max() < 1e-2
    before = multi.track(frames[8])[1].box
    with pytest.raises(ValueError, match=r"non-finite|positive|outside"):
        multi.add(1, frames[8], (float("nan"), 0, 10, 10))
    assert multi.ids == [1, 2]  # the failed replacement left target 1 as it was
    assert np.abs(np.subtract(multi.track(frames[9])[1].box, before)).max() < 60
    multi.add(1, frames[10], BOXES["top"])  # replaced
    assert multi.remove(2) and not multi.remove(2)
    assert list(multi.track(frames[11])) == [1]
    multi.clear()
    assert multi.track(frames[12]) == {} and len(multi) == 0


def test_long_term_targets_widen_their_own_search(alex, frames) -> None:
    """A target whose score is below the lost threshold searches wider while the others keep
    the normal search; each matches its own single-target long-term tracker."""
    model, cfg = alex
    lt = {"enter_threshold": 0.99, "leave_threshold": 0.999}  # seeded weights: lost at once
    multi = MultiTracker(model, cfg, long_term=lt)
    single = LongTermTracker(SiamRPNTracker(model, cfg), LongTermConfig.from_config(cfg, **lt))
    multi.add("a", frames[0], BOXES["bag"])
    multi.add("b", frames[0], BOXES["left"])
    single.init(frames[0], BOXES["bag"])
    sizes = set()
    for frame in frames[1:12]:
        res = multi.track(frame)
        ref = single.track(frame)
        assert res["a"].state == ref.state
        assert np.abs(np.subtract(res["a"].box, ref.box)).max() < 1e-2
        sizes.add(res["a"].search_region[2])
    assert multi.state("a") is TrackState.LOST
    assert len(sizes) > 1  # the lost target's search region grew


def test_report_only_targets_keep_their_short_term_tracks_in_one_pass(
    alex, frames, monkeypatch
) -> None:
    """Reporting-only targets (the node's default) follow their plain single-target tracks
    and report LOST by score, and the batched pass serves their step: one crop per target per
    frame, none cut again because the prefetched search did not match what the step asked."""
    model, cfg = alex
    lt = {"enter_threshold": 0.99, "leave_threshold": 0.999, **REPORT_ONLY}
    multi = MultiTracker(model, cfg, long_term=lt)
    singles = {tid: SiamRPNTracker(model, cfg) for tid in ("a", "b")}
    for tid, box in zip(singles, (BOXES["bag"], BOXES["left"]), strict=True):
        multi.add(tid, frames[0], box)
        singles[tid].init(frames[0], box)
    crops = []
    cut = SiamRPNTracker._search_patch

    def counted(self, *args, **kwargs):
        crops.append(1)
        return cut(self, *args, **kwargs)

    monkeypatch.setattr(SiamRPNTracker, "_search_patch", counted)
    states = set()
    for frame in frames[1:12]:
        res = multi.track(frame)
        for tid, single in singles.items():
            ref = single.track(frame)
            assert np.abs(np.subtract(res[tid].box, ref.box)).max() < 1e-2
            assert np.abs(np.subtract(res[tid].search_region, ref.search_region)).max() < 1e-2
            states.add(res[tid].state)
    assert len(crops) == 11 * 2 * 2  # 11 frames, 2 targets: the batch's and each single's
    assert TrackState.LOST in states  # seeded weights score below 0.99
