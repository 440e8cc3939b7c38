"""SiamDW (SiamFC+ / SiamRPN+) against the official code on real video.

``shared/data/parity/siamdw_siamfcres22`` holds seeded weights under SiamDW's key names and the
official tracker's output on ``bag.avi``: every box must match within 0.5 px. The models no
reference file covers are held to the same standard against ``_siamdw_official``, a
restatement of the official code: CIResInception-22 / CIResNeXt-22 features against the
official modules' computation on real crops, SiamRPN+ boxes against the official procedure.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _siamdw_official import (
    OfficialSiamRPN,
    incep22_features,
    next22_features,
    seeded_weights,
)
from _siamrpn_data import BAG, DATA, need, read_video
from safetensors.torch import save_file

from siam_core import zoo
from siam_core.checkpoint import read_config, read_state_dict
from siam_core.cli.convert import main as convert_main
from siam_core.cli.track import main as track_main
from siam_core.config import Config, load_config
from siam_core.eval.runner import make_tracker
from siam_core.models import siamdw_compat
from siam_core.models.model import SiameseFC, build_model, calibrate_untrained
from siam_core.tracker.siamdw import SiamDWRPNTracker
from siam_core.tracker.siamfc import SiamFCTracker, crop_rounded

REF = DATA / "parity" / "siamdw_siamfcres22"
WEIGHTS = REF / "weights.safetensors"
INIT = (315.0, 140.0, 112.0, 112.0)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((need(REF) / "reference.json").read_text())


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_video(need(BAG), limit=120)


def test_preset_carries_the_official_settings(reference: dict) -> None:
    t = load_config("siamfcplus_ciresnet22_vot").tracker
    p = reference["tracker_params"]
    assert (t.scale_step, t.scale_lr, t.scale_penalty) == (
        p["scale_step"],
        p["scale_lr"],
        p["scale_penalty"],
    )
    assert t.window_influence == p["w_influence"]
    assert (t.scale_num, t.response_up, t.exemplar_size, t.instance_size) == (
        p["num_scale"],
        p["response_up"],
        p["exemplar_size"],
        p["instance_size"],
    )
    assert t.context_amount == p["context_amount"]
    assert load_config("siamfcplus_ciresnet22_vot").score_size() == p["score_size"]


def test_official_layout_maps_onto_ours(reference: dict) -> None:
    official = read_state_dict(need(WEIGHTS))
    assert {k: list(v.shape) for k, v in official.items()} == reference["state_dict_shapes"]
    assert siamdw_compat.guess_architecture(official) == "SiamFCRes22"
    ours = build_model(load_config("siamfcplus_ciresnet22_vot")).state_dict()
    renamed = siamdw_compat.official_to_ours(official)
    assert {k: v.shape for k, v in renamed.items()} == {k: v.shape for k, v in ours.items()}
    with pytest.raises(ValueError, match="outside the official layout"):
        siamdw_compat.official_to_ours({**official, "extra.weight": torch.zeros(1)})


@pytest.mark.slow
def test_siamfcplus_reproduces_the_official_boxes_on_every_frame(
    reference: dict, frames: list[np.ndarray]
) -> None:
    expected = reference["frames"]
    tracker = zoo.build("siamfcplus_ciresnet22_vot", need(WEIGHTS))
    assert isinstance(tracker, SiamFCTracker)
    tracker.init(frames[0], reference["init"])
    errors = []
    for frame, exp in zip(frames[1:], expected[1:], strict=True):
        result = tracker.track(frame)
        errors.append(float(np.abs(np.subtract(result.box, exp["bbox"])).max()))
        assert 0.0 < result.score <= 1.0
    worst = int(np.argmax(errors)) + 1
    assert max(errors) < 0.5, f"frame {worst}: box off by {errors[worst - 1]:.3f} px"
    assert len(errors) == reference["frames_tracked"] - 1


def test_official_crop_rounding_is_half_to_even() -> None:
    """371 - (224 + 1) / 2 = 258.5 starts the official crop at 258 (pysot's would at 259)."""
    image = np.arange(480 * 360 * 3, dtype=np.uint32).reshape(360, 480, 3).astype(np.uint8)
    _, region = crop_rounded(image, (371.0, 196.0), 127, 224, (0.0, 0.0, 0.0))
    assert region[:2] == (258.0, 84.0)
    _, region = crop_rounded(image, (371.0, 196.0), 127, 226, (0.0, 0.0, 0.0))
    assert region[:2] == (258.0, 82.0)  # 257.5 -> 258, 82.5 -> 82


@pytest.mark.parametrize(
    ("preset", "official"),
    [
        ("siamfcplus_ciresinception22_vot", incep22_features),
        ("siamfcplus_ciresnext22_otb", next22_features),
    ],
)
def test_wide_backbones_compute_what_the_official_modules_compute(
    preset: str, official, frames: list[np.ndarray]
) -> None:
    """Our CIResInception-22 / CIResNeXt-22 with official-keyed seeded weights give the
    official modules' features on real crops (to float32 rounding)."""
    cfg = load_config(preset)
    model = build_model(cfg)
    z, x = _real_crops(frames[0], cfg)
    seeded_weights(model, z, x, seed=3)
    official_sd = {
        "features.features." + k[len("backbone.") :]: v for k, v in model.state_dict().items()
    }
    assert siamdw_compat.guess_architecture(official_sd) == (
        "SiamFCIncep22" if "inception" in preset else "SiamFCNext22"
    )
    ours = siamdw_compat.load_siamdw_model(cfg, official_sd)
    with torch.no_grad():
        for patch in (z, x):
            want = official(official_sd, patch)
            got = ours.backbone(patch)
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize(
    "preset", ["siamfcplus_ciresinception22_otb", "siamfcplus_ciresnext22_vot"]
)
def test_wide_siamfcplus_models_track(preset: str, frames: list[np.ndarray]) -> None:
    cfg = load_config(preset)
    model = build_model(cfg)
    seeded_weights(model, *_real_crops(frames[0], cfg), seed=4)
    tracker = SiamFCTracker(model, cfg)
    tracker.init(frames[0], INIT)
    for frame in frames[1:4]:
        result = tracker.track(frame)
        assert all(np.isfinite(result.box)) and result.box[2] > 0


def _real_crops(frame: np.ndarray, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    t = cfg.tracker
    avg = tuple(float(int(v)) for v in frame.mean(axis=(0, 1)))
    z, _ = crop_rounded(frame, (371.0, 196.0), t.exemplar_size, 224, avg)
    x, _ = crop_rounded(frame, (371.0, 196.0), t.instance_size, 450, avg)
    return (
        torch.from_numpy(z).permute(2, 0, 1)[None].float(),
        torch.from_numpy(x).permute(2, 0, 1)[None].float(),
    )


@pytest.fixture(scope="module")
def rpnplus(frames: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """SiamRPN+ (official ``SiamRPNRes22``) seeded weights under the official key names."""
    cfg = load_config("siamrpnplus_ciresnet22_otb")
    model = build_model(cfg)
    z, x = _real_crops(frames[0], cfg)
    seeded_weights(model, z, x, seed=5)
    calibrate_untrained(model, z, x, cls_std=1.0, loc_std=0.1)
    ours_to_official = {v: k for k, v in siamdw_compat.OFFICIAL_TO_OURS.items()}
    out = {}
    for key, value in model.state_dict().items():
        prefix = next(p for p in ours_to_official if key.startswith(p))
        out[ours_to_official[prefix] + key[len(prefix) :]] = value.clone()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["siamrpnplus_ciresnet22_vot", "siamrpnplus_ciresnet22_otb"])
def test_siamrpnplus_reproduces_the_official_procedure(
    preset: str, rpnplus: dict[str, torch.Tensor], frames: list[np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "SiamRPNRes22.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in rpnplus.items()}}, path)
    tracker = zoo.build(preset, path)
    assert isinstance(tracker, SiamDWRPNTracker)
    cfg = load_config(preset)
    backbone = siamdw_compat.load_siamdw_model(cfg, rpnplus).backbone
    t = cfg.tracker
    official = OfficialSiamRPN(
        backbone, rpnplus, t.penalty_k, t.window_influence, t.lr, vot2017=preset.endswith("vot")
    )
    box = (300.0, 141.0, 112.0, 113.0)  # a .5 centre: the official rounding conventions matter
    tracker.init(frames[0], box)
    official.init(frames[0], box)
    errors = []
    for frame in frames[1:9]:
        got = tracker.track(frame)
        errors.append(float(np.abs(np.subtract(got.box, official.track(frame))).max()))
        assert 0.0 <= got.score <= 1.0
    assert max(errors) < 0.5, errors
    if preset.endswith("vot"):
        assert tracker.cfg.tracker.instance_size == official.instance_size == 271


def test_pickled_official_checkpoints_load_only_as_tensors(tmp_path: Path) -> None:
    weights = read_state_dict(need(WEIGHTS))
    good = tmp_path / "SiamFCRes22.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in weights.items()}}, good)
    a = siamdw_compat.load_siamdw_model("siamfcplus_ciresnet22_vot", good)
    b = siamdw_compat.load_siamdw_model("siamfcplus_ciresnet22_vot", need(WEIGHTS))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    bad = tmp_path / "evil.pth"
    with bad.open("wb") as fh:
        pickle.dump({"state_dict": weights, "hook": print}, fh)
    with pytest.raises(ValueError, match="not a safe checkpoint"):
        siamdw_compat.load_siamdw_model("siamfcplus_ciresnet22_vot", bad)
    with pytest.raises(ValueError, match=r"official SiamFCRes22 checkpoint; name one of"):
        siamdw_compat.load_siamdw_model("siamfcplus_ciresnext22_vot", good)
    with pytest.raises(ValueError, match="unexpected keys"):  # a config of our own, CIResNet-16
        siamdw_compat.load_siamdw_model(
            load_config("siamfcplus_ciresnet16").to_dict() | {"name": "mine"}, good
        )
    with pytest.raises(ValueError, match="name the model"):
        siamdw_compat.load_siamdw_model(None, good)


def test_siam_convert_writes_our_form_of_an_official_file(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    dst = tmp_path / "siamfcres22_vot.safetensors"
    assert convert_main([str(need(WEIGHTS)), str(dst), "--model", "siamfcplus_ciresnet22_vot"]) == 0
    assert read_config(dst).name == "siamfcplus_ciresnet22_vot"
    assert not siamdw_compat.is_official(read_state_dict(dst))
    ours = zoo.build(None, dst)  # the file names its model
    official = zoo.build("siamfcplus_ciresnet22_vot", need(WEIGHTS))
    for tracker in (ours, official):
        tracker.init(frames[0], INIT)
    for frame in frames[1:3]:
        assert ours.track(frame).box == official.track(frame).box


def test_every_spec_form_reaches_the_siamfc_family(tmp_path: Path) -> None:
    weights = str(need(WEIGHTS))
    for spec in (
        f"siamfc:siamfcplus_ciresnet22_otb:{weights}",
        f"siamrpn:siamfcplus_ciresnet22_otb:{weights}",
    ):
        tracker = make_tracker(spec)
        assert isinstance(tracker, SiamFCTracker) and tracker.name == "siamfcplus_ciresnet22_otb"
    plain = zoo.load_tracker("siamfcplus_ciresnet22_vot", weights)
    assert isinstance(plain, SiamFCTracker)
    # long-term mode: test/longterm/test_siamfc_longterm.py


def test_siamrpnplus_runs_in_long_term_mode(
    rpnplus: dict[str, torch.Tensor], frames: list[np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "rpnplus.safetensors"
    save_file({k: v.contiguous() for k, v in rpnplus.items()}, str(path))
    tracker = zoo.load_tracker("siamrpnplus_ciresnet22_otb", str(path), long_term={})
    tracker.init(frames[0], INIT)
    for frame in frames[1:3]:
        result = tracker.track(frame)
        assert 0.0 <= result.score <= 1.0 and result.box[2] > 0


def test_siamfc_config_validation() -> None:
    data = load_config("siamfcplus_ciresnet22_vot").to_dict()
    assert Config.from_dict(data) == load_config("siamfcplus_ciresnet22_vot")
    assert "penalty_k" not in data["tracker"] and "lr" not in data["tracker"]
    bad = json.loads(json.dumps(data))
    del bad["tracker"]["scale_lr"]
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['scale_lr'\]"):
        Config.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["tracker"]["penalty_k"] = 0.1
    with pytest.raises(ValueError, match="do not apply to a SiamFC"):
        Config.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["tracker"]["scale_num"] = 2
    with pytest.raises(ValueError, match="must be odd"):
        Config.from_dict(bad)
    rpn = load_config("siamrpn_alex_dwxcorr").to_dict()
    rpn["tracker"]["scale_step"] = 1.05
    with pytest.raises(ValueError, match="do not apply to a RPN"):
        Config.from_dict(rpn)
    model = build_model(load_config("siamfcplus_ciresnet43"))
    assert isinstance(model, SiameseFC)
    with pytest.raises(ValueError, match="SiamFC model and config"):
        SiamFCTracker(model, load_config("siamrpn_alex_dwxcorr"))


def test_siam_track_runs_siamfcplus_with_official_weights(tmp_path: Path, reference: dict) -> None:
    out = tmp_path / "t.json"
    argv = [str(need(BAG)), "--model", "siamfcplus_ciresnet22_vot", "--weights", str(WEIGHTS)]
    argv += ["--init", "315,140,112,112", "--out", str(out), "--max-frames", "3", "--quiet"]
    assert track_main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "siamfcplus_ciresnet22_vot"
    for got, exp in zip(doc["frames"][1:], reference["frames"][1:3], strict=True):
        assert np.abs(np.subtract(got["box"], exp["bbox"])).max() < 0.5
        assert 0.0 < got["score"] <= 1.0
