"""DROL on real frames: parity with the official DROL tracker, the classifier finding the target
on real video with the embedded default model, asynchronous updates, the template update, the
long-term integration and the command lines."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from siam_core.checkpoint import load_checkpoint
from siam_core.cli import eval as eval_cli
from siam_core.cli import track as track_cli
from siam_core.config import Config, OnlineConfig, load_config
from siam_core.data.sequences import load_sequence
from siam_core.eval.runner import make_tracker
from siam_core.io.frames import read_frames
from siam_core.online.classifier import NOT_FOUND
from siam_core.tracker.base import TrackState
from siam_core.tracker.drol import DROLTracker, build_drol_tracker, online_tracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import SiamRPNTracker, build_tracker
from siam_core.zoo import DEFAULT_WEIGHTS, load_tracker

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
PARITY = DATA / "parity" / "drol_siamrpn_alex_dwxcorr_vot"
BAG = DATA / "bag.avi"
CROSSING = DATA / "sequences" / "otb" / "Crossing"
# cheap settings for the tests that check plumbing, not DROL's numbers
QUICK = {
    "init_cg_iter": 4,
    "init_gn_iter": 2,
    "augment_rotate": [10],
    "augment_blur": [[1, 1]],
    "augment_relative_shift": [[0.6, 0.6]],
    "augment_dropout": [1, 0.2],
    "sample_memory_size": 12,
    "train_skipping": 2,
}


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


def read_video(path: Path, limit: int) -> list[np.ndarray]:
    return read_frames(need(path), limit)


def iou(a, b) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(iw, 0) * max(ih, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module")
def default_plain() -> SiamRPNTracker:
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("no embedded default model")
    return build_tracker(None, DEFAULT_WEIGHTS)


# -- parity -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_parity_with_official_drol() -> None:
    """The official DROL tracker's output (``reference.json``, all 120 frames): boxes within
    0.5 px (the acceptance standard), and in fact to the bit, as are the best scores, the
    classifier's states and its peaks, on a CPU whose float32 kernels round as the reference
    machine's did (see below for one that does not).

    The classifier's first-frame Gauss-Newton training is chaotic in float32 (one ulp in the
    label's σ moves the frame-1 peak by 1.2e-3), so it matches only because every step is
    DROL's to the bit, quirks included: the target scale is ``s_z.reciprocal() * 127``, as
    torch computes DROL's ``127 / s_z``; the Fourier interpolation multiplies (re, im) pairs as
    DROL's ``complex.mult``; updates train over all 250 memory slots (``train_empty_slots``);
    pysot's softmax runs over the last axis of (N, 2) and its aspect ratio is a float64.
    Without ``train_empty_slots`` (the default, faster) the peaks stay within 1e-4; the filter
    is applied with ``F.conv2d`` as DROL does (``drol_order``; the default's per-tap matmuls
    are the same sums in another order).
    """
    reference = json.loads((need(PARITY) / "reference.json").read_text())
    count = len(reference["frames"])
    frames = read_video(BAG, count)
    model, cfg = load_checkpoint(
        PARITY / "weights.safetensors", load_config("drol_" + reference["config"])
    )
    # the unfused network, as pysot runs it; filter updates over all 250 slots, as DROL's
    online = cfg.online.replace(train_empty_slots=True, drol_order=True)
    tracker = DROLTracker(model, cfg, online, optimize=False)
    torch.set_num_threads(1)  # as the reference (DROL tools/test.py + set_num_threads(1))
    tracker.init(frames[0], reference["init"])
    first = tracker.track(frames[1])
    same_kernels = tuple(first.box) == tuple(reference["frames"][1]["bbox"]) and (
        tracker.online.last.peak == reference["frames"][1]["classifier_max"]
    )
    # Where this CPU's float32 kernels round differently from the reference machine's the
    # chaotic training amplifies the ulps. An AVX-512 AMD EPYC: frame 1 off by 7e-6 px, within
    # 7e-5 px to frame 60, past 0.5 px from frame 70. An AVX2 one (family 25): frame 1 off by
    # 6e-5 px, 9.4e-4 px at frame 30, 1.3e-3 at 40, past 0.5 px at 47; peaks within 0.011 and
    # the same flags until then. An Intel Xeon with AMX (2026-12-03): boxes and scores to the
    # bit for all 120 frames, but the classifier's peak off by 3.9e-4 from frame 1 (up to 0.0097
    # later), so the frame-1 peak is checked too. There the first 30 frames are checked to 2e-3
    # px.
    count = count if same_kernels else 31
    tol_box, tol_score, tol_peak = (1e-6, 1e-7, 1e-6) if same_kernels else (2e-3, 1e-5, 0.05)
    flags, peaks = [], []
    for index in range(1, count):
        result = first if index == 1 else tracker.track(frames[index])
        expected = reference["frames"][index]
        assert np.allclose(result.box, expected["bbox"], atol=0.5), (index, result.box)
        assert np.allclose(result.box, expected["bbox"], rtol=0, atol=tol_box), index
        assert result.score == pytest.approx(expected["best_score"], abs=tol_score)
        last = tracker.online.last
        flags.append((index, last.flag, expected["flag"]))
        peaks.append(abs(last.peak - expected["classifier_max"]))
    assert len(reference["frames"]) == 120
    assert all(ours == theirs for _, ours, theirs in flags), flags
    assert max(peaks) < tol_peak


def test_config_matches_drols_settings() -> None:
    reference = json.loads((need(PARITY) / "reference.json").read_text())
    t = reference["track_cfg"]
    cfg = load_config("drol_" + reference["config"])
    o = cfg.online
    assert (cfg.tracker.penalty_k, cfg.tracker.window_influence, cfg.tracker.lr) == (
        t["PENALTY_K"],
        t["WINDOW_INFLUENCE"],
        t["LR"],
    )
    assert cfg.tracker.instance_size == t["INSTANCE_SIZE"]
    pairs = {
        "fusion_weight": "COEE_CLASS",
        "seed": "SEED",
        "compressed_dim": "COMPRESSED_DIM",
        "projection_reg": "PROJECTION_REG",
        "use_attention": "USE_ATTENTION_LAYER",
        "channel_attention": "CHANNEL_ATTENTION",
        "spatial_attention": "SPATIAL_ATTENTION",
        "attention_activation": "ATT_ACTIVATION",
        "projection_activation": "PROJECTION_ACTIVATION",
        "filter_reg": "FILTER_REG",
        "augment_fliplr": "AUGMENTATION_FLIPLR",
        "augment_expansion_factor": "AUGMENTATION_EXPANSION_FACTOR",
        "random_shift_factor": "RANDOM_SHIFT_FACTOR",
        "learning_rate": "LEARNING_RATE",
        "init_samples_minimum_weight": "INIT_SAMPLES_MINIMUM_WEIGHT",
        "sample_memory_size": "SAMPLE_MEMORY_SIZE",
        "output_sigma_factor": "OUTPUT_SIGMA_FACTOR",
        "init_cg_iter": "INIT_CG_ITER",
        "init_gn_iter": "INIT_GN_ITER",
        "train_skipping": "TRAIN_SKIPPING",
        "cg_iter": "CG_ITER",
        "post_init_cg_iter": "POST_INIT_CG_ITER",
        "fletcher_reeves": "FLETCHER_REEVES",
        "target_not_found_threshold": "TARGET_NOT_FOUND_THRESHOLD",
        "distractor_threshold": "DISTRACTOR_THRESHOLD",
        "hard_negative_threshold": "HARD_NEGATIVE_THRESHOLD",
        "target_neighborhood_scale": "TARGET_NEIGHBORHOOD_SCALE",
        "displacement_scale": "DISPLACEMENT_SCALE",
        "hard_negative_learning_rate": "HARD_NEGATIVE_LEARNING_RATE",
        "hard_negative_cg_iter": "HARD_NEGATIVE_CG_ITER",
        "template_update": "TEMPLATE_UPDATE",
        "target_update_threshold": "TARGET_UPDATE_THRESHOLD",
        "target_update_skipping": "TARGET_UPDATE_SKIPPING",
        "tau_regression": "TAU_REGRESSION",
        "tau_classification": "TAU_CLASSIFICATION",
        "short_term_drift": "SHORT_TERM_DRIFT",
    }
    for ours, theirs in pairs.items():
        assert (
            getattr(o, ours) == pytest.approx(t[theirs])
            if isinstance(t[theirs], float)
            else (getattr(o, ours) == t[theirs])
        ), ours
    assert list(o.kernel_size) == t["KERNEL_SIZE"]
    assert list(o.response_activation) == t["RESPONSE_ACTIVATION"]
    assert [list(v) for v in o.augment_blur] == t["AUGMENTATION_BLUR"]
    assert [list(v) for v in o.augment_relative_shift] == t["AUGMENTATION_RELATIVESHIFT"]
    assert list(o.augment_rotate) == t["AUGMENTATION_ROTATE"]
    assert list(o.augment_dropout) == t["AUGMENTATION_DROUPOUT"]
    assert t["OPTIMIZER"] == "GaussNewtonCG" and t["ADVANCED_LOCALIZATION"]
    assert t["PROJ_INIT_METHOD"] == "randn" and t["FILTER_INIT_METHOD"] == "randn"


# -- the default model on real frames -------------------------------------------------------------


@pytest.mark.slow
def test_classifier_peaks_on_the_target_and_fused_tracking_follows_it(
    default_plain: SiamRPNTracker,
) -> None:
    """Paper settings on the embedded default model, on real frames of Crossing."""
    seq = load_sequence(need(CROSSING))
    tracker = online_tracker(default_plain)
    tracker.init(seq.read(0), seq.init_box)
    assert tracker.online.classifier.num_init == 30  # augmented first-frame samples
    for index in range(1, 31):
        result = tracker.track(seq.read(index))
        gt = seq.gt[index]
        centre_error = np.hypot(
            result.box[0] + result.box[2] / 2 - gt[0] - gt[2] / 2,
            result.box[1] + result.box[3] / 2 - gt[1] - gt[3] / 2,
        )
        assert centre_error < 0.5 * np.hypot(gt[2], gt[3]), (index, result.box, gt)
        loc = tracker.online.last
        if index == 1:  # right after initialisation: one clear peak
            assert loc.flag is None and loc.peak > 0.5
        if index in (1, 10, 20, 30) and loc.flag is None:
            # the peak lies on the target: the ground-truth centre in crop pixels, within
            # the 4x4 filter's resolution (8 model px per feature cell)
            size = loc.scores.shape[0]
            region = result.search_region
            scale = size / region[2]
            gx = (gt[0] + gt[2] / 2 - region[0]) * scale
            gy = (gt[1] + gt[3] / 2 - region[1]) * scale
            r, c = divmod(int(torch.argmax(loc.scores)), size)
            assert abs(r - gy) < 16 and abs(c - gx) < 16, (index, (r, c), (gy, gx))


def _quick(tracker: SiamRPNTracker, **more) -> DROLTracker:
    return online_tracker(tracker, {**QUICK, **more})


def test_close_cancels_a_first_frame_training_in_progress(default_plain: SiamRPNTracker) -> None:
    """A node's shutdown or a new target must not wait for a whole first-frame training (it
    takes seconds on a busy CPU): ``close`` stops the solve at its next CG iteration. Without
    the cancellation this run of 1500 CG iterations would finish, and ``ready`` turn true."""
    frames = read_video(BAG, 2)
    box = (315.0, 140.0, 112.0, 112.0)
    asyn = _quick(default_plain, async_update=True, init_cg_iter=1500, init_gn_iter=1)
    cls = asyn.online.classifier
    solving = threading.Event()
    train_joint = cls._train_joint

    def signalled(*args) -> None:
        solving.set()
        train_joint(*args)

    cls._train_joint = signalled
    asyn.init(frames[0], box)
    assert solving.wait(60)
    asyn.close()
    assert not cls.ready and cls._job is None
    default_plain.init(frames[0], box)
    # the Siamese tracker goes on alone, as before the classifier is ready
    assert asyn.track(frames[1]).box == pytest.approx(default_plain.track(frames[1]).box)


@pytest.mark.parametrize("async_update", [False, True])
def test_the_worker_takes_first_frame_features_one_crop_at_a_time(
    default_plain: SiamRPNTracker, async_update: bool
) -> None:
    """On the worker the augmented crops go through the network one by one: the frame path
    shares the runtime (one OpenVINO stream serves one request at a time), so a batched pass
    held a frame 0.4 s behind it on 2 cores; between crops a frame gets its turn, and ``close``
    stops the training. Synchronous training (on the frame path anyway) keeps DROL's batch."""
    frames = read_video(BAG, 1)
    tracker = _quick(default_plain, async_update=async_update)
    cls = tracker.online.classifier
    sizes: list[int] = []
    second, go_on = threading.Event(), threading.Event()
    extract = cls.extract

    def counted(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(int(batch.shape[0]))
        if async_update and len(sizes) == 2:
            second.set()
            assert go_on.wait(30)
        return extract(batch)

    cls.extract = counted
    tracker.init(frames[0], (315.0, 140.0, 112.0, 112.0))
    crops = 1 + 1 + len(QUICK["augment_rotate"]) + len(QUICK["augment_blur"]) + 1  # +flip, shift
    if not async_update:
        assert sizes == [crops] and cls.ready
        return
    assert second.wait(60)
    closing = threading.Thread(target=tracker.close)
    closing.start()
    deadline = time.monotonic() + 30
    while not cls._cancel.is_set() and time.monotonic() < deadline:  # close() has asked
        time.sleep(0.01)
    go_on.set()
    closing.join(30)
    assert not closing.is_alive()
    assert sizes == [1, 1] and not cls.ready  # stopped after the crop in hand


def test_asynchronous_update_never_blocks_a_frame_and_matches_the_synchronous_one(
    default_plain: SiamRPNTracker,
) -> None:
    frames = read_video(BAG, 4)
    box = (315.0, 140.0, 112.0, 112.0)
    sync = _quick(default_plain)
    asyn = _quick(default_plain, async_update=True)
    cls = asyn.online.classifier
    # the first-frame training too runs off the frame path: init returns at once and frames
    # follow the Siamese score alone until it is done
    first_gate = threading.Event()
    train_first = cls._initialize

    def held_init(*args) -> None:
        assert first_gate.wait(30)
        train_first(*args)

    cls._initialize = held_init
    asyn.init(frames[0], box)
    assert not cls.ready
    default_plain.init(frames[0], box)
    plain_result = default_plain.track(frames[1])
    early = asyn.track(frames[1])
    assert asyn.online.last is None and early.box == pytest.approx(plain_result.box)
    first_gate.set()
    cls.wait()
    cls._initialize = train_first
    assert cls.ready
    asyn.init(frames[0], box)  # again, unhindered, to compare with the synchronous run
    cls.wait()
    for tr in (sync, asyn):
        if tr is sync:
            tr.init(frames[0], box)
        tr.track(frames[1])  # frame_num 2: no training yet (train_skipping 2 -> frame 3)
    gate, entered = threading.Event(), threading.Event()
    original = cls._train_filter

    def held(iters: int) -> None:
        entered.set()
        assert gate.wait(30)
        original(iters)

    cls._train_filter = held
    try:
        before = cls.filter
        sync.track(frames[2])
        asyn.track(frames[2])  # queues the update and returns while the worker is held
        assert entered.wait(30)
        assert cls.filter is before  # the frame path kept the old filter
        asyn.track(frames[3])  # a further frame while the update is still running
        assert cls.filter is before
    finally:
        gate.set()
        cls.wait()
        cls._train_filter = original
    # the worker stored both frames' samples and trained: same memory as the synchronous run
    # after its two updates, modulo the one frame the filter lagged behind
    sync.track(frames[3])
    assert torch.count_nonzero(cls.sample_weights) == torch.count_nonzero(
        sync.online.classifier.sample_weights
    )
    assert cls.filter is not before
    asyn.close()
    sync.close()


def test_template_update_replaces_the_short_term_template(default_plain: SiamRPNTracker) -> None:
    frames = read_video(BAG, 7)
    tracker = _quick(default_plain, template_update=True, target_update_threshold=0.0)
    tracker.init(frames[0], (315.0, 140.0, 112.0, 112.0))
    first = tracker._kernels_st
    assert first is tracker._kernels  # z_s starts as z_1
    for frame in frames[1:6]:
        tracker.track(frame)
    # frame 6 ((6 - 1) % T == 0): z_s becomes the best-classified crop of the interval
    assert tracker._z_st is not None and tracker._kernels_st is not first
    off = _quick(default_plain)
    off.init(frames[0], (315.0, 140.0, 112.0, 112.0))
    off.track(frames[1])
    assert off._kernels_st is None


def test_long_term_mode_with_the_classifier_vetoing_the_siamese_score(
    default_plain: SiamRPNTracker,
) -> None:
    frames = read_video(BAG, 5)
    # a classifier that never finds the target: 'not_found' on every frame
    inner = _quick(default_plain, target_not_found_threshold=1.0, lost_after_not_found=2)
    lt = LongTermTracker(inner, LongTermConfig(enter_threshold=0.1, leave_threshold=0.2))
    lt.init(frames[0], (315.0, 140.0, 112.0, 112.0))
    states = [lt.track(frame).state for frame in frames[1:]]
    assert inner.online.last.flag == NOT_FOUND
    assert states[0] is TrackState.TRACKING and TrackState.LOST in states[1:]
    stored = int(torch.count_nonzero(inner.online.classifier.sample_weights))
    assert stored == inner.online.classifier.num_init  # no samples while not found / lost


def test_builders_cli_and_eval_spec(
    default_plain: SiamRPNTracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(build_tracker("drol_siamrpn_alex_dwxcorr_vot"), DROLTracker)
    built = build_drol_tracker("siamrpn_alex_dwxcorr", overrides={"fusion_weight": 0.5})
    assert built.online_cfg.fusion_weight == 0.5 and built.name == "siamrpn_alex_dwxcorr+online"
    with pytest.raises(ValueError, match="fusion_weight"):
        online_tracker(default_plain, {"fusion_weight": 2.0})
    tr = load_tracker("", "", "cpu", online={"async_update": True})
    assert isinstance(tr, DROLTracker) and tr.online_cfg.async_update
    spec = f"drol::{DEFAULT_WEIGHTS}"
    assert isinstance(make_tracker(spec), DROLTracker)
    assert eval_cli._trackers([spec]) == {"default+online": spec}
    # the flag's plumbing, with cheap settings in place of the paper's (their cost is below)
    monkeypatch.setattr(Config, "online_settings", lambda self: OnlineConfig.from_dict(QUICK))
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, frame in enumerate(read_video(BAG, 3)):
        cv2.imwrite(str(clip / f"{i + 1:04d}.jpg"), frame)
    out = tmp_path / "track.json"
    code = track_cli.main(
        [str(clip), "--init", "315,140,112,112", "--online", "--out", str(out), "--quiet"]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 3 and doc["frames"][2]["state"] == "TRACKING"
    assert OnlineConfig().fusion_weight == 0.8


def test_the_models_tuned_fusion_weight_is_used_unless_a_preset_or_override_says_otherwise(
    default_plain: SiamRPNTracker,
) -> None:
    """``tracker.online_fusion_weight`` (tools/tune_tracker.py search --online --write) is the
    λ a model gets when the classifier is added to it; a preset's own ``online:`` section and
    explicit overrides come first, and a model without it gets the paper's 0.8."""
    tuned = default_plain.cfg.replace_tracker(online_fusion_weight=0.55)
    plain = SiamRPNTracker(default_plain.model, tuned)
    assert online_tracker(plain).online_cfg.fusion_weight == 0.55
    assert DROLTracker(plain.model, tuned).online_cfg.fusion_weight == 0.55
    assert online_tracker(plain, {"fusion_weight": 0.7}).online_cfg.fusion_weight == 0.7
    untuned = default_plain.cfg.replace_tracker(
        online_fusion_weight=None, online_sample_memory_size=None, online_train_skipping=None
    )
    assert untuned.online_settings() == OnlineConfig()
    preset = load_config("drol_siamfc_alex_upxcorr_vot")  # DROL's λ for FC: 0.6
    assert preset.replace_tracker(online_fusion_weight=0.9).online_settings() == preset.online
    with pytest.raises(ValueError, match="online_fusion_weight"):
        default_plain.cfg.replace_tracker(online_fusion_weight=1.5)


def test_the_models_classifier_memory_and_update_interval_come_from_its_config(
    default_plain: SiamRPNTracker,
) -> None:
    """``tracker.online_sample_memory_size`` / ``online_train_skipping`` (tools/tune_tracker.py
    search --online --write) set what the classifier's updates cost; unset, the paper's 250 and
    10; anything but a positive integer is refused by name."""
    tuned = default_plain.cfg.replace_tracker(
        online_sample_memory_size=120, online_train_skipping=20
    )
    settings = tuned.online_settings()
    assert (settings.sample_memory_size, settings.train_skipping) == (120, 20)
    weight = tuned.tracker.online_fusion_weight
    assert settings.fusion_weight == (0.8 if weight is None else weight)
    plain = SiamRPNTracker(default_plain.model, tuned)
    assert online_tracker(plain).online_cfg.train_skipping == 20
    assert online_tracker(plain, {"train_skipping": 5}).online_cfg.train_skipping == 5
    untuned = default_plain.cfg.replace_tracker(
        online_sample_memory_size=None, online_train_skipping=None
    )
    paper = untuned.online_settings()
    assert (paper.sample_memory_size, paper.train_skipping) == (250, 10)
    for bad in (0, -3, 2.5, True, "60"):
        with pytest.raises(ValueError, match="online_train_skipping must be a positive integer"):
            default_plain.cfg.replace_tracker(online_train_skipping=bad)
    with pytest.raises(ValueError, match="sample_memory_size"):  # fewer than the first frame's
        default_plain.cfg.replace_tracker(online_sample_memory_size=5).online_settings()


def _girl_and_tune_tracker() -> tuple[Path, Any]:
    """A short training sequence and ``tools/tune_tracker.py`` as a module."""
    seq = DATA / "train_extra" / "kcfdp_Girl"
    if not seq.is_dir():
        pytest.skip(f"no training sequence at {seq}")
    spec = importlib.util.spec_from_file_location("tune", REPO / "tools" / "tune_tracker.py")
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    return seq, tune


def test_tune_tracker_online_search_embeds_the_chosen_fusion_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tools/tune_tracker.py search --online`` runs the trackers with the classifier and
    writes the best λ into the model's config (cheap classifier settings: plumbing only)."""
    seq, tune = _girl_and_tune_tracker()
    monkeypatch.setattr(Config, "online_settings", lambda self: OnlineConfig.from_dict(QUICK))
    out, report = tmp_path / "tuned.safetensors", tmp_path / "tune.json"
    grid = ["penalty_k=", "window_influence=", "lr=", "fusion_weight=0.3"]
    args = ["search", str(DEFAULT_WEIGHTS), "--online", "--paths", str(seq), "--max-frames", "4"]
    assert tune.main([*args, "--grid", *grid, "--json", str(report), "--write", str(out)]) == 0
    doc = json.loads(report.read_text())
    assert doc["online"] and len(doc["tried"]) == 2  # QUICK's λ 0.8, then 0.3
    assert [t["settings"]["fusion_weight"] for t in doc["tried"]] == [0.8, 0.3]
    assert set(doc["tried"][0]["per_sequence"]) == {"kcfdp_Girl"}
    _, cfg = load_checkpoint(out)
    assert cfg.tracker.online_fusion_weight == doc["best"]["settings"]["fusion_weight"]
    assert cfg.online is None  # the model still builds a plain tracker by default


def test_tune_tracker_online_search_keeps_a_cheaper_classifier_within_the_allowance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``--grid sample_memory_size=... train_skipping=...`` the search also tries cheaper
    classifier updates, keeps one whose AUC is within ``--cheaper-within`` of the best before
    it, records each configuration's seconds and embeds the choice in the model's config."""
    seq, tune = _girl_and_tune_tracker()
    monkeypatch.setattr(Config, "online_settings", lambda self: OnlineConfig.from_dict(QUICK))
    out, report = tmp_path / "tuned.safetensors", tmp_path / "tune.json"
    grid = ["penalty_k=", "window_influence=", "lr=", "fusion_weight="]
    grid += ["sample_memory_size=8", "train_skipping=4"]  # QUICK's: 12 and 2
    args = ["search", str(DEFAULT_WEIGHTS), "--online", "--paths", str(seq), "--max-frames", "6"]
    args += ["--grid", *grid, "--cheaper-within", "1.0", "--json", str(report)]
    assert tune.main([*args, "--write", str(out)]) == 0
    doc = json.loads(report.read_text())
    tried = [t["settings"] for t in doc["tried"]]
    memory = [(t["sample_memory_size"], t["train_skipping"]) for t in tried]
    assert memory == [(12, 2), (8, 2), (8, 4)]
    assert all(t["seconds"] > 0 for t in doc["tried"])
    assert doc["best"]["settings"]["sample_memory_size"] == 8  # an allowance of 1.0 AUC: any
    _, cfg = load_checkpoint(out)
    assert (cfg.tracker.online_sample_memory_size, cfg.tracker.online_train_skipping) == (8, 4)
    assert cfg.online is None
    bad = ["search", str(DEFAULT_WEIGHTS), "--online", "--paths", str(seq)]
    assert tune.main([*bad, "--grid", "sample_memory_size=8.5"]) == 2  # the cost keys are counts
    assert "sample_memory_size takes whole numbers" in capsys.readouterr().err


def test_tune_tracker_workers_give_the_same_tracks(tmp_path: Path) -> None:
    """``--workers 2`` runs the sequences in spawned processes; every sequence starts a fresh
    tracker, so the report is the same as in one process. Run as the command line (the
    spawned workers import the script as the main module, which a test's import is not)."""
    seq, tune = _girl_and_tune_tracker()
    other = DATA / "train_extra" / "siamfc_ball2"
    if not other.is_dir():
        pytest.skip(f"no training sequence at {other}")
    docs = []
    for workers in ("1", "2"):
        report = tmp_path / f"cal{workers}.json"
        args = ["calibration", str(DEFAULT_WEIGHTS), "--paths", str(seq), str(other)]
        args += ["--max-frames", "8", "--workers", workers, "--json", str(report)]
        script = REPO / "tools" / "tune_tracker.py"
        subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True)
        docs.append(json.loads(report.read_text()))
    assert docs[0] == docs[1] and list(docs[0]["per_sequence_auc"]) == [seq.name, other.name]
    with pytest.raises(ValueError, match="at least 1"):
        tune.run(str(DEFAULT_WEIGHTS), load_checkpoint(DEFAULT_WEIGHTS)[1], [], workers=0)


def test_tune_tracker_calibration_sweeps_lost_thresholds(tmp_path: Path) -> None:
    """``tools/tune_tracker.py calibration --sweep`` reports LOST precision and recall at each
    threshold from the same tracks: the counts agree with the default threshold's report and
    the reported frames can only grow with the threshold."""
    seq, tune = _girl_and_tune_tracker()
    report = tmp_path / "cal.json"
    args = ["calibration", str(DEFAULT_WEIGHTS), "--paths", str(seq), "--max-frames", "12"]
    assert tune.main([*args, "--sweep", "0.2", "0.8", "1.01", "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    sweep = {row["threshold"]: row for row in doc["sweep"]}
    assert doc["threshold"] == 0.8 and doc["frames"] == 11  # frames after the first
    assert sweep[0.8]["reported_lost"] == doc["reported_lost"]
    assert sweep[0.8]["lost_recall"] == doc["lost_recall"]
    counts = [sweep[t]["reported_lost"] for t in (0.2, 0.8, 1.01)]
    assert counts == sorted(counts) and counts[-1] == doc["frames"]  # every score is below 1.01
    lost = doc["iou_below_0.1"]["frames"]
    assert sweep[1.01]["lost_recall"] == (1.0 if lost else 0.0)
    # the report-only machine on the same scores: LOST on at least the frames below 0.8 (it
    # stays LOST until a score passes 0.95), its counts split over the IoU classes
    machine = doc["report_lost"]
    assert (machine["enter_threshold"], machine["leave_threshold"]) == (0.8, 0.95)
    assert machine["reported_lost"] >= doc["reported_lost"]
    parts = ("lost_reported", "partly_on_reported", "on_target_reported_lost")
    assert sum(machine[k] for k in parts) == machine["reported_lost"]
    assert machine["lost_frames"] == lost
    assert machine["on_target_frames"] == doc["iou_above_0.5"]["frames"]
    swept = {row["enter_threshold"]: row for row in doc["report_lost_sweep"]}
    assert list(swept) == [0.2, 0.8] and swept[0.8] == machine  # 1.01: no machine
    assert swept[0.2]["reported_lost"] <= machine["reported_lost"]


def test_reported_lost_follows_the_machine_with_hysteresis() -> None:
    """``reported_lost`` is the state machine's verdict frame by frame: a dip below the enter
    threshold stays LOST until a score passes the leave threshold (0.9 in between stays LOST)."""
    _, tune = _girl_and_tune_tracker()
    config = tune.LongTermConfig(enter_threshold=0.8, leave_threshold=0.95)
    scores = np.array([np.nan, 0.99, 0.5, 0.9, 0.97, 0.85, 0.7])
    got = tune.reported_lost(scores, config)
    assert got.tolist() == [False, False, True, True, False, False, True]


def test_tune_tracker_calibration_leaves_out_frames_without_the_target(tmp_path: Path) -> None:
    """A training sequence whose target leaves the view (NaN rows) is read, and its score
    distributions pair each score with its own frame's IoU: the absent frames are left out of
    both, not the whole sequence (which once happened silently, or failed with one sequence)."""
    _, tune = _girl_and_tune_tracker()
    seq = DATA / "train_extra" / "pbbat_group3_2"  # frames 15-17: NaN, the target absent
    if not seq.is_dir():
        pytest.skip(f"no training sequence at {seq}")
    report = tmp_path / "cal.json"
    args = ["calibration", str(DEFAULT_WEIGHTS), "--paths", str(seq), "--max-frames", "18"]
    assert tune.main([*args, "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["frames"] == 14  # 17 after the first, less the 3 absent ones
    counted = doc["iou_below_0.1"]["frames"] + doc["iou_above_0.5"]["frames"]
    assert 0 < counted <= 14


def test_tune_tracker_calibration_writes_the_online_lost_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``calibration --online --sweep ... --write OUT`` embeds the swept threshold with the best
    LOST F1 as ``tracker.online_confidence_low``, which long-term mode then takes whenever the
    classifier runs (cheap classifier settings: plumbing only)."""
    from siam_core.tracker.longterm import LongTermConfig

    seq, tune = _girl_and_tune_tracker()
    monkeypatch.setattr(Config, "online_settings", lambda self: OnlineConfig.from_dict(QUICK))
    out, report = tmp_path / "lt.safetensors", tmp_path / "cal.json"
    args = ["calibration", str(DEFAULT_WEIGHTS), "--paths", str(seq), "--max-frames", "6"]
    assert tune.main([*args, "--sweep", "0.9", "1.01", "--write", str(out)]) == 2
    assert "needs --online and --sweep" in capsys.readouterr().err
    sweep = ["--sweep", "0.05", "0.9", "1.01"]
    assert tune.main([*args, "--online", *sweep, "--json", str(report), "--write", str(out)]) == 0
    doc = json.loads(report.read_text())
    f1 = [tune._f1(row) for row in doc["sweep"]]
    chosen = doc["chosen_online_confidence_low"]
    assert chosen["threshold"] == doc["sweep"][f1.index(max(f1))]["threshold"]
    _, cfg = load_checkpoint(out)
    assert cfg.tracker.online_confidence_low == chosen["threshold"]
    assert LongTermConfig.from_config(cfg, online=True).enter_threshold == chosen["threshold"]
    assert LongTermConfig.from_config(cfg).enter_threshold == 0.8  # plain: unchanged
    # the entry points: a long-term tracker with the classifier takes it, one without does not
    with_online = load_tracker(weights=str(out), device="cpu", long_term={}, online={})
    assert with_online.config.enter_threshold == chosen["threshold"]
    assert load_tracker(weights=str(out), device="cpu", long_term={}).config.enter_threshold == 0.8


def test_tune_tracker_appearance_embeds_thresholds_chosen_on_ground_truth(tmp_path: Path) -> None:
    """``appearance`` measures the check at the true boxes, at moved boxes and at the other
    sequence's true boxes, and embeds ``appearance_low`` (Youden's J) and ``appearance_high``;
    long-term mode takes them from the file, and ``calibration --appearance-sweep`` reports the
    LOST rule they give."""
    seq, tune = _girl_and_tune_tracker()
    other = DATA / "train_extra" / "siamfc_ball2"
    if not other.is_dir():
        pytest.skip(f"no training sequence at {other}")
    positive, negative = np.array([0.4, 0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.5, 0.6, 0.65])
    assert tune.youden_threshold(positive, negative) == 0.7  # 3 of 4 kept, all 5 refused
    out, report = tmp_path / "app.safetensors", tmp_path / "app.json"
    args = ["appearance", str(DEFAULT_WEIGHTS), "--paths", str(seq), str(other)]
    args += ["--max-frames", "20", "--step", "2", "--json", str(report), "--write", str(out)]
    assert tune.main(args) == 0
    doc = json.loads(report.read_text())
    assert doc["target"]["frames"] == doc["other_objects"]["frames"] == 20  # 10 per sequence
    low, high = doc["appearance_low"], doc["appearance_high"]
    assert 0 < low <= high < 1
    assert doc["target"]["median"] > max(
        doc["other_objects"]["median"], doc["background"]["median"]
    )
    _, cfg = load_checkpoint(out)
    assert (cfg.tracker.appearance_low, cfg.tracker.appearance_high) == (
        round(low, 3),
        round(high, 3),
    )
    assert load_tracker(weights=str(out), device="cpu", long_term={}).config.appearance_low == (
        round(low, 3)
    )
    cal = tmp_path / "cal.json"
    args = ["calibration", str(out), "--paths", str(seq), "--max-frames", "12"]
    assert tune.main([*args, "--appearance-sweep", "0", "1.01", "--json", str(cal)]) == 0
    doc = json.loads(cal.read_text())
    check = doc["appearance"]
    assert check["appearance_low"] == round(low, 3)
    nothing, everything = check["sweep"]
    assert nothing["reported_lost"] == doc["reported_lost"]  # similarity below 0: none
    assert everything["reported_lost"] == doc["frames"] == 11  # every similarity below 1.01
    assert check["with_score"]["reported_lost"] >= doc["reported_lost"]
