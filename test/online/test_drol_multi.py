"""Several online (DROL) targets in one batched Siamese pass (``MultiTracker`` with ``online``).

Each target has a classifier of its own; with synchronous updates a batched target must follow
exactly the track its own ``DROLTracker`` follows alone (real frames, the embedded default
model), long-term mode included. Asynchronous classifiers share one low-priority worker, and
removing a target cancels its queued or running training.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from test_drol_tracker import BAG, QUICK, default_plain, read_video  # noqa: F401  (fixture)

from siam_core.tracker.base import TrackState
from siam_core.tracker.drol import DROLTracker, online_tracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.multi import MultiTracker
from siam_core.tracker.siamrpn import SiamRPNTracker

BOXES = {"bag": (315.0, 140.0, 112.0, 112.0), "left": (60.0, 150.0, 90.0, 120.0)}


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_video(BAG, 13)


def _alone(plain: SiamRPNTracker, **more) -> DROLTracker:
    return online_tracker(plain, {**QUICK, **more})


def test_batched_online_targets_follow_their_own_drol_tracks(
    default_plain: SiamRPNTracker,  # noqa: F811
    frames,
) -> None:
    """Two online targets, batched, against one ``DROLTracker`` per target run alone: boxes
    within 0.01 px, the same classifier flags and peaks, updates (train_skipping 2) included;
    every target's classifier is its own."""
    multi = MultiTracker.from_tracker(_alone(default_plain))
    alone = {tid: _alone(default_plain) for tid in BOXES}
    for tid, box in BOXES.items():
        multi.add(tid, frames[0], box)
        alone[tid].init(frames[0], box)
    inner = {tid: multi._targets[tid] for tid in BOXES}
    assert all(isinstance(t, DROLTracker) for t in inner.values())
    assert inner["bag"].online.classifier is not inner["left"].online.classifier
    for i, frame in enumerate(frames[1:], 1):
        results = multi.track(frame)
        for tid, single in alone.items():
            ref = single.track(frame)
            err = float(np.abs(np.subtract(results[tid].box, ref.box)).max())
            assert err < 1e-2, f"frame {i}, target {tid}: batched box off by {err:.4f} px"
            mine, theirs = inner[tid].online.last, single.online.last
            assert mine.flag == theirs.flag and mine.peak == pytest.approx(theirs.peak, abs=1e-3)
    for tid, single in alone.items():  # the same samples stored, by the same rules
        assert torch.equal(
            inner[tid].online.classifier.sample_weights > 0,
            single.online.classifier.sample_weights > 0,
        )
        single.close()
    multi.close()


def test_long_term_online_targets_learn_only_outside_lost(
    default_plain: SiamRPNTracker,  # noqa: F811
    frames,
) -> None:
    """Long-term wrapping per target: with a classifier that never finds its target
    (lost_after_not_found), each batched target goes LOST on its own as its single
    ``LongTermTracker(DROLTracker)`` does, and stores no sample while lost."""
    more = {"target_not_found_threshold": 1.0, "lost_after_not_found": 2}
    lt = {"enter_threshold": 0.1, "leave_threshold": 0.2}
    multi = MultiTracker.from_tracker(_alone(default_plain, **more), long_term=lt)
    single = LongTermTracker(
        _alone(default_plain, **more), LongTermConfig.from_config(default_plain.cfg, **lt)
    )
    for tid, box in BOXES.items():
        multi.add(tid, frames[0], box)
    single.init(frames[0], BOXES["bag"])
    for frame in frames[1:4]:
        results = multi.track(frame)
        ref = single.track(frame)
        assert results["bag"].state == ref.state
        assert np.abs(np.subtract(results["bag"].box, ref.box)).max() < 1e-2
    assert multi.state("bag") is TrackState.LOST and multi.state("left") is TrackState.LOST
    for tid in BOXES:
        clf = multi._targets[tid].tracker.online.classifier
        assert int(torch.count_nonzero(clf.sample_weights)) == clf.num_init
    single.tracker.close()
    multi.close()


def test_async_targets_share_one_worker_and_removal_cancels_their_training(
    default_plain: SiamRPNTracker,  # noqa: F811
    frames,
) -> None:
    """Asynchronous online targets: init returns at once, frames follow the Siamese score until
    a target's classifier is ready, one worker thread serves every target in order, and
    removing a target cancels its queued training (never started) or its running one (stopped
    at its next CG iteration: without that, 1500 iterations would run to the end)."""
    multi = MultiTracker.from_tracker(
        _alone(default_plain, async_update=True, init_cg_iter=1500, init_gn_iter=1)
    )
    plain = MultiTracker.from_tracker(default_plain)
    solving, release = threading.Event(), threading.Event()
    multi.add("bag", frames[0], BOXES["bag"])
    first = multi._targets["bag"].online.classifier
    train_joint = first._train_joint

    def held(*args) -> None:  # the first target's training starts, then waits
        solving.set()
        assert release.wait(60)
        train_joint(*args)

    first._train_joint = held
    assert solving.wait(60)  # running on the shared worker
    multi.add("left", frames[0], BOXES["left"])  # queued behind it on the same thread
    second = multi._targets["left"].online.classifier
    assert first._executor is second._executor is multi._worker
    queued = second._job
    assert queued is not None and not queued.running()
    for tid, box in BOXES.items():
        plain.add(tid, frames[0], box)
    # no frame waits: both classifiers are still training, the Siamese tracks go on alone
    res, ref = multi.track(frames[1]), plain.track(frames[1])
    for tid in BOXES:
        assert res[tid].box == pytest.approx(ref[tid].box)
        assert multi._targets[tid].online.last is None
    assert multi.remove("left") and queued.cancelled()
    running = first._job
    release.set()
    assert multi.remove("bag")  # returns at once; the running 1500-iteration solve stops
    assert first._job is None and multi.ids == []
    running.result(timeout=60)  # ended by the cancellation, not by 1500 iterations
    assert not first.ready and not second.ready
    multi.close()
    assert multi._worker is None


def test_online_is_refused_where_it_would_change_the_tracker() -> None:
    """The node turns online on by default and falls back to the plain tracker, with a
    warning, on this refusal: DaSiamRPN's official conventions are not pysot's procedure that
    ``DROLTracker`` follows, so wrapping them would silently change their boxes."""
    from siam_core.zoo import OnlineUnsupported, build

    with pytest.raises(OnlineUnsupported, match=r"online learning.*official conventions"):
        build("dasiamrpn_vot", online={})


def test_a_failed_worker_job_is_reported_once_and_tracking_goes_on(
    default_plain: SiamRPNTracker,  # noqa: F811
    frames,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A training that fails on the worker thread (here: made to raise) is not lost in its
    future: the next frame raises it, naming the classifier, and later frames track on the
    Siamese score alone (the node logs the one failed frame and goes on)."""
    from siam_core.online.classifier import OnlineClassifier

    def broken(*args) -> None:
        raise FloatingPointError("CG diverged")

    monkeypatch.setattr(OnlineClassifier, "_train_joint", broken)
    tracker = _alone(default_plain, async_update=True)
    tracker.init(frames[0], BOXES["bag"])
    classifier = tracker.online.classifier
    with pytest.raises(FloatingPointError):
        classifier.wait()
    with pytest.raises(RuntimeError, match=r"online classifier failed.*CG diverged"):
        tracker.track(frames[1])
    plain = MultiTracker.from_tracker(default_plain)
    plain.add("bag", frames[0], BOXES["bag"])
    for frame in frames[1:4]:  # the Siamese tracker alone from here, as if never online
        assert tracker.track(frame).box == pytest.approx(plain.track(frame)["bag"].box)
    assert not classifier.ready
    tracker.close()
