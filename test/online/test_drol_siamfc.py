"""DROL's SiamFC presets (``drol_siamfc_alex_upxcorr_{vot,otb}``): DROL's settings, weights in
DROL's key layout, the Siamese procedure against a literal transcription of DROL's
``siamfc_tracker.py`` (λ = 0), the fusion hook changing decisions (λ > 0), the template
update and ``siam-track`` end to end, on real frames of ``bag.avi``.

There is no official DROL-FC reference output (DROL's released SiamFC tracker cannot run with
its classifier: ``classifier.update(bbox, flag)`` misses an argument), so the procedure is
checked against the transcription, and the classifier against the DROL-RPN parity test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_drol_tracker import QUICK  # cheap classifier settings for the plumbing tests

from siam_core.cli import track as track_cli
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.online.fusion import normalise_sum, resize_linear
from siam_core.tracker.base import TrackState
from siam_core.tracker.drol import DROLSiamFCTracker
from siam_core.tracker.longterm import REPORT_ONLY, LongTermTracker
from siam_core.tracker.siamfc import SiamFCTracker
from siam_core.tracker.siamrpn import crop_patch
from siam_core.zoo import build, load_tracker

REPO = Path(__file__).resolve().parents[2]
BAG = REPO.parent / "shared" / "data" / "bag.avi"
BOX = (315.0, 140.0, 112.0, 112.0)
# DROL's backbone keys (experiments/siamfc_alex_upxcorr_*/convert_model.py name_map)
DROL_KEYS = (
    {f"backbone.features.{i}.{p}" for i in (0, 4, 8, 11, 14) for p in ("weight", "bias")}
    | {
        f"backbone.features.{i}.{p}"
        for i in (1, 5, 9, 12)
        for p in ("weight", "bias", "running_mean", "running_var")
    }
    | {"backbone.corr_bias"}
)


def frames(n: int) -> list[np.ndarray]:
    if not BAG.is_file():
        pytest.skip(f"shared data not found: {BAG}")
    cap = cv2.VideoCapture(str(BAG))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return out


@pytest.fixture(scope="module")
def official_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random weights saved as DROL's converted ``model.pth`` is: a plain dict of
    tensors under DROL's keys, no ``num_batches_tracked``."""
    torch.manual_seed(5)
    model = build_model(load_config("drol_siamfc_alex_upxcorr_vot"))
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                t.normal_(0.0, 0.1)
    state = {k: v for k, v in model.state_dict().items() if "num_batches" not in k}
    state["backbone.corr_bias"] = torch.tensor([-2.5])
    assert set(state) == DROL_KEYS
    path = tmp_path_factory.mktemp("drolfc") / "model.pth"
    torch.save(state, path)
    return path


def quick(weights: Path, name: str = "drol_siamfc_alex_upxcorr_vot", **more) -> DROLSiamFCTracker:
    tracker = build(name, weights, online={**QUICK, **more})
    assert isinstance(tracker, DROLSiamFCTracker)
    return tracker


def test_presets_carry_drols_siamfc_settings() -> None:
    """Every value of DROL's ``experiments/siamfc_alex_upxcorr_{vot,otb}/config.yaml``."""
    for suffix, lam, attention, update in (("vot", 0.6, False, False), ("otb", 0.8, True, True)):
        cfg = load_config(f"drol_siamfc_alex_upxcorr_{suffix}")
        t, o = cfg.tracker, cfg.online
        assert cfg.model.backbone == {"type": "AlexNetLegacy2"}
        assert cfg.model.head == {"type": "XCorrHead", "out_scale": 1.0, "bias": False}
        assert (t.scale_num, t.scale_step, t.scale_penalty, t.window_influence, t.scale_lr) == (
            3,
            1.0375,
            0.9745,
            0.15,
            0.59,
        )
        assert (t.exemplar_size, t.instance_size, t.base_size, t.context_amount) == (
            127,
            255,
            0,
            0.5,
        )
        assert (cfg.anchor.stride, t.response_up, cfg.score_size()) == (8, 16, 17)
        assert (o.fusion_weight, o.seed, o.use_attention, o.template_update) == (
            lam,
            12345,
            attention,
            update,
        )
        assert (o.channel_attention, o.spatial_attention) == (True, "pool")
        assert (o.tau_regression, o.tau_classification) == (0.6, 0.1)
        assert not o.short_term_drift


def test_drols_cubic_resize_call_is_bilinear() -> None:
    """DROL's ``cv2.resize(x, (U, U), cv2.INTER_CUBIC)`` passes the flag as ``dst``: the
    resize is OpenCV's default, bilinear, which is what the presets do."""
    x = np.random.default_rng(0).normal(size=(17, 17)).astype(np.float32)
    drols_call = cv2.resize(x, (272, 272), cv2.INTER_CUBIC)
    np.testing.assert_array_equal(resize_linear(x, 272), drols_call)
    cubic = cv2.resize(x, (272, 272), interpolation=cv2.INTER_CUBIC)
    assert np.abs(cubic - drols_call).max() > 1e-3


def drol_plain_boxes(model: torch.nn.Module, images: list[np.ndarray], cfg) -> list[list[float]]:
    """A literal transcription of DROL's ``SiamFCTracker.init`` / ``track`` without the
    classifier (``USE_CLASSIFIER`` False), with DROL's model calls (``ModelBuilder.template`` /
    ``track`` for a non-RPN config: three template copies, a grouped correlation)."""
    t = cfg.tracker

    def pysot_subwindow(im, pos, model_sz, original_sz, avg_chans):
        # pysot get_subwindow: crop_patch, checked bit-exact against pysot (test_parity)
        patch = crop_patch(im, (pos[0], pos[1]), model_sz, original_sz, tuple(avg_chans))[0]
        return torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32))

    interp = 17 * 16
    hanning = np.hanning(interp)[:, np.newaxis].dot(np.hanning(interp)[np.newaxis, :])
    window = hanning.astype(np.float32)
    window /= np.sum(window)
    x, y, w, h = BOX
    center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
    size = np.array([w, h])
    w_z = size[0] + t.context_amount * np.sum(size)
    h_z = size[1] + t.context_amount * np.sum(size)
    s_z = round(np.sqrt(w_z * h_z))
    avg = [float(int(v)) for v in np.mean(images[0], axis=(0, 1))]  # uint8 canvas truncates
    with torch.no_grad():
        zf = model.backbone(pysot_subwindow(images[0], center, 127, s_z, avg))[0]
    zf = torch.cat([zf for _ in range(3)], dim=0)
    penalty = np.ones(3) * t.scale_penalty
    penalty[1] = 1
    scales = t.scale_step ** np.arange(math.ceil(3 / 2) - 3, math.floor(3 / 2) + 1)
    boxes = []
    for img in images[1:]:
        w_z = size[0] + t.context_amount * np.sum(size)
        h_z = size[1] + t.context_amount * np.sum(size)
        s_z = np.sqrt(w_z * h_z)
        s_x = s_z * (255 / 127)
        pyramid = torch.cat(
            [pysot_subwindow(img, center, 255, round(s), avg) for s in s_x * scales], dim=0
        )
        with torch.no_grad():
            xf = model.backbone(pyramid)[0]
            b, _, fh, fw = xf.size()
            cls = F.conv2d(xf.view(1, -1, fh, fw), zf, groups=b).transpose(0, 1)
        score = [cv2.resize(m.numpy(), (interp, interp), cv2.INTER_CUBIC) for m in cls.squeeze()]
        best = (np.array([m.max() for m in score]) * penalty).argmax()
        pscore = score[best]
        pscore -= pscore.min()
        pscore /= pscore.sum()
        pscore = pscore * (1 - t.window_influence) + window * t.window_influence
        r, c = np.unravel_index(pscore.argmax(), pscore.shape)
        disp = np.array([c, r]) - (interp - 1) / 2.0
        disp = disp * 8 / 16 * (s_x * scales[best]) / 255
        cx, cy = disp[0] + center[0], disp[1] + center[1]
        width = size[0] * ((1 - t.scale_lr) + t.scale_lr * scales[best])
        height = size[1] * ((1 - t.scale_lr) + t.scale_lr * scales[best])
        cx, cy = max(0, min(cx, img.shape[1])), max(0, min(cy, img.shape[0]))
        width, height = max(10, min(width, img.shape[1])), max(10, min(height, img.shape[0]))
        center, size = np.array([cx, cy]), np.array([width, height])
        boxes.append([cx - width / 2, cy - height / 2, width, height])
    return boxes


class _Plain(DROLSiamFCTracker):
    """DROL's SiamFC tracker with the classifier's map never fused (the base class's hook)."""

    adjust_response = SiamFCTracker.adjust_response


def test_siamese_procedure_is_drols_and_fusion_changes_decisions(official_weights: Path) -> None:
    """λ = 0 reproduces the transcription of DROL's tracker box for box; with the preset's λ
    the classifier's map is blended in exactly as Eq. 5 says and moves the track."""
    images = frames(9)
    zero = quick(official_weights, fusion_weight=0.0)
    plain = _Plain(zero.model, zero.cfg, zero.online_cfg)
    fused = quick(official_weights)
    expected = drol_plain_boxes(zero.model, images, zero.cfg)
    for tracker in (zero, plain, fused):
        tracker.init(images[0], BOX)
    moved = 0
    for index, image in enumerate(images[1:]):
        box0 = zero.track(image).box
        assert plain.track(image).box == box0  # λ = 0: exactly plain
        np.testing.assert_allclose(box0, expected[index], atol=1e-3)
        seen = {}
        hook = DROLSiamFCTracker.adjust_response

        def spy(self, response, scale, resp, seen=seen, hook=hook):
            seen["in"], seen["scale"] = response.copy(), scale
            seen["out"] = hook(self, response, scale, resp)
            return seen["out"]

        fused.adjust_response = spy.__get__(fused)
        box = fused.track(image).box
        conf = normalise_sum(resize_linear(fused.online.last.scores.numpy(), 272))
        np.testing.assert_allclose(seen["out"], seen["in"] * 0.4 + conf * 0.6, rtol=1e-6, atol=1e-9)
        assert fused.online.classifier.frame_num == index + 2  # one classifier pass a frame
        moved += int(not np.allclose(box, box0, atol=1e-6))
    assert moved > 0


def test_otb_preset_keeps_a_short_term_template(official_weights: Path) -> None:
    images = frames(8)
    tracker = quick(official_weights, "drol_siamfc_alex_upxcorr_otb", target_update_threshold=0.0)
    assert tracker.online_cfg.use_attention and tracker.online_cfg.template_update
    tracker.init(images[0], BOX)
    first = tracker._kernels_st
    assert first is tracker._kernels
    for image in images[1:6]:
        result = tracker.track(image)
        assert all(math.isfinite(v) for v in result.box) and 0.0 <= result.score <= 1.0
    # frame 6: the best frame of the interval became z_s
    assert tracker._kernels_st is not first
    assert not torch.equal(tracker._kernels_st[0], first[0])
    tracker.track(images[6])


def test_online_on_other_siamfc_models_is_refused(official_weights: Path) -> None:
    with pytest.raises(ValueError, match="drol_siamfc_alex_upxcorr"):
        build("siamfcplus_ciresnet22_vot", online={})
    with pytest.raises(ValueError, match="short-term"):
        build("drol_siamfc_alex_upxcorr_vot", official_weights, long_term={})


def test_report_only_wraps_drols_siamfc_step_unchanged(official_weights: Path) -> None:
    """The node's default reporting (``REPORT_ONLY``) also takes DROL's SiamFC presets, which
    long-term mode refuses: the boxes are the preset's own, the state from its score."""
    images = frames(4)
    reporting = build("drol_siamfc_alex_upxcorr_vot", official_weights, long_term=REPORT_ONLY)
    plain = build("drol_siamfc_alex_upxcorr_vot", official_weights)
    assert isinstance(reporting, LongTermTracker)
    assert isinstance(reporting.tracker, DROLSiamFCTracker) and not reporting.config.redetect
    for tracker in (reporting, plain):
        tracker.init(images[0], (315.0, 140.0, 112.0, 112.0))
    for image in images[1:]:
        got, ref = reporting.track(image), plain.track(image)
        assert got.box == ref.box and got.score == ref.score
        assert got.state in (TrackState.TRACKING, TrackState.LOST, TrackState.RECOVERED)


def test_siam_track_runs_the_vot_preset(official_weights: Path, tmp_path: Path) -> None:
    """``siam-track --model drol_siamfc_alex_upxcorr_vot --weights model.pth``, DROL's full
    classifier settings, on real frames."""
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, frame in enumerate(frames(3)):
        cv2.imwrite(str(clip / f"{i + 1:04d}.png"), frame)
    out = tmp_path / "track.json"
    argv = [str(clip), "--model", "drol_siamfc_alex_upxcorr_vot", "--weights"]
    argv += [str(official_weights), "--init", "315,140,112,112", "--out", str(out), "--quiet"]
    assert track_cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 3
    assert all(f["state"] == "TRACKING" for f in doc["frames"][1:])
    tracker = load_tracker("drol_siamfc_alex_upxcorr_vot", str(official_weights), "cpu")
    assert isinstance(tracker, DROLSiamFCTracker) and tracker.online_cfg.init_cg_iter == 60
