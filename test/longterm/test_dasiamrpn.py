"""DaSiamRPN's official checkpoints and tracker conventions.

No official file exists here, so state dicts in the official layout are made from random
tensors of the official shapes (pysot-compat.md, foolwood/DaSiamRPN ``net.py``), loaded through
the key mapping and checked against a functional restatement of the official network and of
the official tracking procedure (``run_SiamRPN.py``) on real frames."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _doubles import BAG, need, sequence
from safetensors.torch import save_file

from siam_core.cli.convert import main as convert_main
from siam_core.config import load_config
from siam_core.eval.runner import make_tracker
from siam_core.io.frames import read_frames
from siam_core.models.dasiamrpn_compat import (
    CONFIGS,
    guess_name,
    load_dasiamrpn,
    official_to_ours,
    ours_to_official,
)
from siam_core.models.model import calibrate_untrained
from siam_core.tracker.dasiamrpn import (
    DaSiamRPNTracker,
    OfficialSettings,
    OfficialSiamRPNTracker,
    build_dasiamrpn_tracker,
)
from siam_core.tracker.distractor import DistractorConfig
from siam_core.tracker.longterm import LongTermTracker
from siam_core.tracker.siamrpn import SiamRPNTracker, round_half_up
from siam_core.zoo import load_tracker

# official per-model settings (foolwood/DaSiamRPN code/net.py)
SETTINGS = {
    "dasiamrpn_big": (0.295, 0.42, 0.055),
    "dasiamrpn_vot": (0.45, 0.44, 0.04),
    "dasiamrpn_otb": (0.30, 0.40, 0.22),
}


def official_shapes(big: bool) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of the official SiamRPN module (net.py): AlexNet x1 or x2, F = 256 / 512."""
    c = [3] + [v * (2 if big else 1) for v in (96, 256, 384, 384, 256)]
    f, k = (512 if big else 256), 5
    shapes: dict[str, tuple[int, ...]] = {}
    for (conv, bn), cin, cout, ks in zip(
        ((0, 1), (4, 5), (8, 9), (11, 12), (14, 15)), c[:-1], c[1:], (11, 5, 3, 3, 3), strict=True
    ):
        shapes[f"featureExtract.{conv}.weight"] = (cout, cin, ks, ks)
        shapes[f"featureExtract.{conv}.bias"] = (cout,)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"featureExtract.{bn}.{name}"] = (cout,)
    for name, out in (
        ("conv_r1", f * 4 * k),
        ("conv_r2", f),
        ("conv_cls1", f * 2 * k),
        ("conv_cls2", f),
    ):
        shapes[f"{name}.weight"] = (out, c[-1], 3, 3)
        shapes[f"{name}.bias"] = (out,)
    shapes["regress_adjust.weight"] = (4 * k, 4 * k, 1, 1)
    shapes["regress_adjust.bias"] = (4 * k,)
    return shapes


def official_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the official layout, scaled so outputs are in a trained range."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in official_shapes(name == "dasiamrpn_big").items():
        if key.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(".weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif key.endswith(".weight"):
            t = torch.rand(shape, generator=g) + 0.5
        else:
            t = torch.randn(shape, generator=g) * 0.1
        out[key] = t
    return out


@pytest.fixture(scope="module")
def bag():
    return sequence("vot/bag")


def _patch(frame, centre, size, side, avg) -> torch.Tensor:
    from siam_core.tracker.siamrpn import crop_patch

    patch, _ = crop_patch(frame, centre, size, side, avg)
    return torch.from_numpy(patch).permute(2, 0, 1)[None].float()


@pytest.fixture(scope="module")
def vot_state(bag) -> dict[str, torch.Tensor]:
    """Official-layout vot weights, calibrated on real bag crops (via our model) so scores
    and box deltas are in a trained network's range."""
    model, _ = load_dasiamrpn(official_state("dasiamrpn_vot"), "dasiamrpn_vot")
    frame = bag.read(0)
    avg = tuple(float(v) for v in frame.mean(axis=(0, 1)).astype(int))
    z = _patch(frame, (365, 194), 127, 278, avg)
    x = _patch(frame, (365, 194), 271, 593, avg)
    with torch.no_grad():
        calibrate_untrained(model, z, x)
    return ours_to_official(model.state_dict())


# --- the official network and tracker, restated from net.py / run_SiamRPN.py / utils.py


def official_features(sd, x):
    def conv(i, t, stride=1):
        return F.conv2d(t, sd[f"featureExtract.{i}.weight"], sd[f"featureExtract.{i}.bias"], stride)

    def bn(i, t):
        p = f"featureExtract.{i}."
        return F.batch_norm(
            t, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"]
        )

    x = F.relu(F.max_pool2d(bn(1, conv(0, x, 2)), 3, 2))
    x = F.relu(F.max_pool2d(bn(5, conv(4, x)), 3, 2))
    x = F.relu(bn(9, conv(8, x)))
    x = F.relu(bn(12, conv(11, x)))
    return bn(15, conv(14, x))


class OfficialNet:
    def __init__(self, sd):
        self.sd = sd

    def temple(self, z):
        zf = official_features(self.sd, z)
        r1 = F.conv2d(zf, self.sd["conv_r1.weight"], self.sd["conv_r1.bias"])
        c1 = F.conv2d(zf, self.sd["conv_cls1.weight"], self.sd["conv_cls1.bias"])
        ks, fo = r1.shape[-1], self.sd["conv_r2.weight"].shape[0]
        self.r1_kernel = r1.view(20, fo, ks, ks)
        self.cls1_kernel = c1.view(10, fo, ks, ks)

    def __call__(self, x):
        xf = official_features(self.sd, x)
        r = F.conv2d(
            F.conv2d(xf, self.sd["conv_r2.weight"], self.sd["conv_r2.bias"]), self.r1_kernel
        )
        r = F.conv2d(r, self.sd["regress_adjust.weight"], self.sd["regress_adjust.bias"])
        c = F.conv2d(
            F.conv2d(xf, self.sd["conv_cls2.weight"], self.sd["conv_cls2.bias"]), self.cls1_kernel
        )
        return r, c


def py2_round(v: float) -> float:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def official_subwindow(im, pos, model_sz, original_sz, avg):
    c = (original_sz + 1) / 2
    xmin, ymin = py2_round(pos[0] - c), py2_round(pos[1] - c)
    xmax, ymax = xmin + original_sz - 1, ymin + original_sz - 1
    left, top = int(max(0.0, -xmin)), int(max(0.0, -ymin))
    right = int(max(0.0, xmax - im.shape[1] + 1))
    bottom = int(max(0.0, ymax - im.shape[0] + 1))
    r, cc, k = im.shape
    te = np.zeros((r + top + bottom, cc + left + right, k), np.uint8)
    te[top : top + r, left : left + cc] = im
    te[:top, left : left + cc] = avg
    te[r + top :, left : left + cc] = avg
    te[:, :left] = avg
    te[:, cc + left :] = avg
    patch = te[int(ymin + top) : int(ymax + top + 1), int(xmin + left) : int(xmax + left + 1)]
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return torch.from_numpy(patch.transpose(2, 0, 1)[None].astype(np.float32))


class OfficialTracker:
    def __init__(self, net, lr, wi, pk, instance=271):
        self.net, self.lr, self.wi, self.pk, self.inst = net, lr, wi, pk, instance

    def init(self, im, rect):
        x, y, w, h = rect
        self.pos = np.array([x + w / 2, y + h / 2])  # rect_2_cxy_wh
        self.sz = np.array([w, h], dtype=np.float64)
        score_size = (self.inst - 127) // 8 + 1
        anchors = []
        for ratio in (0.33, 0.5, 1, 2, 3):
            ws = int(np.sqrt(64 / ratio))
            anchors.append([0, 0, ws * 8, int(ws * ratio) * 8])
        anchor = np.tile(np.array(anchors, np.float32), score_size * score_size).reshape(-1, 4)
        ori = -(score_size // 2) * 8  # Python 2: -(19 / 2) * 8 = -72
        xx, yy = np.meshgrid(
            [ori + 8 * d for d in range(score_size)], [ori + 8 * d for d in range(score_size)]
        )
        anchor[:, 0] = np.tile(xx.flatten(), (5, 1)).flatten()
        anchor[:, 1] = np.tile(yy.flatten(), (5, 1)).flatten()
        self.anchor = anchor
        self.window = np.tile(np.outer(np.hanning(score_size), np.hanning(score_size)).flatten(), 5)
        self.avg = np.mean(im, axis=(0, 1))
        wc, hc = self.sz[0] + 0.5 * sum(self.sz), self.sz[1] + 0.5 * sum(self.sz)
        s_z = py2_round(np.sqrt(wc * hc))
        with torch.no_grad():
            self.net.temple(official_subwindow(im, self.pos, 127, s_z, self.avg))

    def track(self, im):
        wc, hc = self.sz[1] + 0.5 * sum(self.sz), self.sz[0] + 0.5 * sum(self.sz)
        s_z = np.sqrt(wc * hc)
        scale_z = 127 / s_z
        s_x = s_z + 2 * ((self.inst - 127) / 2 / scale_z)
        self.side = py2_round(s_x)
        x = official_subwindow(im, self.pos, self.inst, self.side, self.avg)
        with torch.no_grad():
            delta, score = self.net(x)
        delta = delta.permute(1, 2, 3, 0).reshape(4, -1).numpy().copy()
        score = F.softmax(score.permute(1, 2, 3, 0).reshape(2, -1), dim=0)[1].numpy()
        a = self.anchor
        delta[0] = delta[0] * a[:, 2] + a[:, 0]
        delta[1] = delta[1] * a[:, 3] + a[:, 1]
        delta[2] = np.exp(delta[2]) * a[:, 2]
        delta[3] = np.exp(delta[3]) * a[:, 3]
        tsz = self.sz * scale_z

        def sz(w, h):
            pad = (w + h) * 0.5
            return np.sqrt((w + pad) * (h + pad))

        s_c = np.maximum(r := sz(delta[2], delta[3]) / sz(*tsz), 1 / r)
        r_c = np.maximum(q := (tsz[0] / tsz[1]) / (delta[2] / delta[3]), 1 / q)
        penalty = np.exp(-(r_c * s_c - 1) * self.pk)
        pscore = penalty * score * (1 - self.wi) + self.window * self.wi
        best = np.argmax(pscore)
        target = delta[:, best] / scale_z
        lr = penalty[best] * score[best] * self.lr
        res = self.pos + target[:2]
        size = self.sz * (1 - lr) + target[2:] * lr
        self.pos = np.array([max(0, min(im.shape[1], res[0])), max(0, min(im.shape[0], res[1]))])
        self.sz = np.array([max(10, min(im.shape[1], size[0])), max(10, min(im.shape[0], size[1]))])
        return [*(self.pos - self.sz / 2), *self.sz], float(score[best])


# --- tests


@pytest.mark.parametrize("name", list(SETTINGS))
def test_configs_carry_the_official_settings(name: str) -> None:
    cfg = load_config(name)
    t = cfg.tracker
    assert (t.lr, t.window_influence, t.penalty_k) == SETTINGS[name]
    assert (t.instance_size, t.exemplar_size, t.base_size, t.context_amount) == (271, 127, 0, 0.5)
    assert cfg.score_size() == 19 and cfg.model.head["type"] == "UPChannelRPN"
    assert cfg.anchor.ratios == (0.33, 0.5, 1.0, 2.0, 3.0) and cfg.anchor.scales == (8.0,)
    assert name in CONFIGS.values()


def test_anchor_origin_is_the_python2_integer_one() -> None:
    from siam_core.models.anchors import anchor_grid

    grid = anchor_grid(load_config("dasiamrpn_vot").anchor, 19)
    assert grid[0, 0] == grid[0, 1] == -72.0 and grid[18, 0] == 72.0


@pytest.mark.parametrize("name", ["dasiamrpn_big", "dasiamrpn_vot"])
def test_mapping_round_trips_and_outputs_19x19(name: str, bag) -> None:
    state = official_state(name, seed=3)
    model, cfg = load_dasiamrpn(state, name if name != "dasiamrpn_big" else None)
    assert cfg.name == name
    back = ours_to_official(model.state_dict())
    assert back.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(back[key], value), key
    frame = bag.read(0)
    avg = tuple(float(v) for v in frame.mean(axis=(0, 1)).astype(int))
    z = _patch(frame, (365, 194), 127, 278, avg)
    x = _patch(frame, (365, 194), 271, 593, avg)
    with torch.no_grad():
        cls, loc = model(z, x)
        official = OfficialNet(state)
        official.temple(z)
        ref_loc, ref_cls = official(x)
    assert tuple(cls.shape) == (1, 10, 19, 19) and tuple(loc.shape) == (1, 20, 19, 19)
    torch.testing.assert_close(cls, ref_cls, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loc, ref_loc, rtol=1e-4, atol=1e-4)


def test_files_load_safely_in_both_formats(tmp_path, vot_state) -> None:
    pth, st = tmp_path / "SiamRPNVOT.model", tmp_path / "SiamRPNVOT.safetensors"
    torch.save({f"module.{k}": v for k, v in vot_state.items()}, pth)  # DataParallel prefix
    save_file({k: v.contiguous() for k, v in vot_state.items()}, str(st))
    a, _ = load_dasiamrpn(pth, "dasiamrpn_vot")
    b, _ = load_dasiamrpn(st, "dasiamrpn_vot")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    evil = tmp_path / "evil.model"
    torch.save({"x": object()}, evil)  # a pickle that is not plain tensors
    with pytest.raises(ValueError, match="not a safe checkpoint"):
        load_dasiamrpn(evil, "dasiamrpn_vot")


def test_bad_checkpoints_are_named(vot_state) -> None:
    with pytest.raises(ValueError, match="same tensors; name the model"):
        guess_name(vot_state)
    with pytest.raises(ValueError, match="same tensors"):
        load_dasiamrpn(vot_state)
    with pytest.raises(ValueError, match="other architecture"):
        load_dasiamrpn(vot_state, "dasiamrpn_big")
    extra = {**vot_state, "conv_extra.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"outside the DaSiamRPN layout: \['conv_extra.weight'\]"):
        official_to_ours(extra)
    missing = {k: v for k, v in vot_state.items() if not k.startswith("regress_adjust")}
    with pytest.raises(ValueError, match="missing keys"):
        load_dasiamrpn(missing, "dasiamrpn_vot")
    wrong = {**vot_state, "conv_r2.weight": torch.zeros(128, 256, 3, 3)}
    with pytest.raises(ValueError, match="shape mismatches"):
        load_dasiamrpn(wrong, "dasiamrpn_otb")
    pysot_like = {
        k.replace("featureExtract.", "backbone.features."): v for k, v in vot_state.items()
    }
    with pytest.raises(ValueError, match="DaSiamRPN's key names"):
        load_dasiamrpn(pysot_like, "dasiamrpn_vot")


def test_official_tracker_matches_the_official_procedure(bag, vot_state) -> None:
    """Same boxes as run_SiamRPN.py restated (x + w / 2 centres, 271 search, vot settings) on
    real frames, and a different track from pysot's (x + (w - 1) / 2) convention."""
    model, cfg = load_dasiamrpn(vot_state, "dasiamrpn_vot")
    ours = OfficialSiamRPNTracker(model, cfg)
    ref = OfficialTracker(OfficialNet(vot_state), *SETTINGS["dasiamrpn_vot"])
    pysot_style = SiamRPNTracker(model, cfg)
    box = tuple(bag.gt[0])
    for t in (ours, ref, pysot_style):
        t.init(bag.read(0), box)
    differs = False
    for i in range(1, 12):
        frame = bag.read(i)
        got = ours.track(frame)
        want, score = ref.track(frame)
        np.testing.assert_allclose(got.box, want, atol=1e-3)
        assert abs(got.score - score) < 1e-4
        differs |= pysot_style.track(frame).box != got.box
        assert got.search_region[2] == ref.side
    assert differs


def test_big_searches_wider_for_small_targets(bag) -> None:
    state = official_state("dasiamrpn_big", seed=5)
    model, cfg = load_dasiamrpn(state)
    tracker = OfficialSiamRPNTracker(model, cfg)
    frame = bag.read(0)  # 480 x 360: 0.4 % of it is 691 px^2
    tracker.init(frame, (200, 150, 20, 30))  # 600 px^2 < 691
    assert tracker.cfg.tracker.instance_size == 287 and tracker.cfg.score_size() == 21
    tracker.init(frame, (200, 150, 30, 30))  # 900 px^2
    assert tracker.cfg.tracker.instance_size == 271
    assert cfg.tracker.instance_size == 271  # the loaded config itself is unchanged
    vot = OfficialSiamRPNTracker(*load_dasiamrpn(official_state("dasiamrpn_vot"), "dasiamrpn_vot"))
    vot.init(frame, (200, 150, 20, 30))
    assert vot.cfg.tracker.instance_size == 271  # only SiamRPNBIG is adaptive
    with pytest.raises(ValueError, match="small_target_area"):
        OfficialSettings(small_target_area=2.0)
    with pytest.raises(ValueError, match="centre_offset"):
        OfficialSettings(centre_offset=float("nan"))
    with pytest.raises(ValueError, match="small_target_instance_size"):
        OfficialSettings(small_target_instance_size=0)


def test_distractor_aware_and_long_term_on_official_weights(tmp_path, bag, vot_state) -> None:
    path = tmp_path / "SiamRPNOTB.model"
    torch.save(vot_state, path)
    plain = build_dasiamrpn_tracker(path, "dasiamrpn_otb", distractor=False)
    assert type(plain) is OfficialSiamRPNTracker
    da = build_dasiamrpn_tracker(path, "dasiamrpn_otb", distractor=DistractorConfig(top_k=3))
    assert isinstance(da, DaSiamRPNTracker) and da.distractor.top_k == 3
    lt = LongTermTracker(build_dasiamrpn_tracker(path, "dasiamrpn_otb"))
    assert lt.config.lost_instance_sizes == (767,)  # on the 271 grid: (767 - 127) % 8 == 0
    box = tuple(bag.gt[0])
    plain.init(bag.read(0), box)
    da.init(bag.read(0), box)
    lt.init(bag.read(0), box)
    for i in range(1, 4):
        frame = bag.read(i)
        a, b = plain.track(frame), da.track(frame)
        if i == 1:  # nothing learned yet: the same choice
            assert a.box == b.box
        assert np.isfinite(lt.track(frame).box).all()


# --- every entry point, official files, the official procedure from the box


@pytest.fixture(scope="module")
def big_state(bag) -> dict[str, torch.Tensor]:
    """Official-layout SiamRPNBIG weights, calibrated like ``vot_state``."""
    model, _ = load_dasiamrpn(official_state("dasiamrpn_big", seed=7))
    frame = bag.read(0)
    avg = tuple(float(v) for v in frame.mean(axis=(0, 1)).astype(int))
    with torch.no_grad():
        calibrate_untrained(
            model,
            _patch(frame, (365, 194), 127, 278, avg),
            _patch(frame, (365, 194), 271, 593, avg),
        )
    return ours_to_official(model.state_dict())


BOX = (315.0, 140.0, 112.0, 112.0)  # the box on bag.avi: centre (371, 196)
FRAMES = 4


def _siam_track(weights: Path, out: Path, model: str | None) -> list[dict]:
    cmd = [
        str(Path(sys.executable).parent / "siam-track"),
        str(need(BAG)),
        "--weights",
        str(weights),
    ]
    cmd += [*(["--model", model] if model else []), "--init", ",".join(map(str, BOX))]
    cmd += ["--out", str(out), "--max-frames", str(FRAMES), "--device", "cpu", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())["frames"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "fmt"),
    [("dasiamrpn_vot", "model"), ("dasiamrpn_otb", "safetensors"), ("dasiamrpn_big", "model")],
)
def test_siam_track_loads_official_files_and_runs_the_official_procedure(
    name: str, fmt: str, tmp_path: Path, vot_state, big_state
) -> None:
    """``siam-track --model dasiamrpn_* --weights <official file>`` (a ``.model`` pickle read
    with ``weights_only=True``, or safetensors under the official keys) follows the official
    procedure restated above from the issue's box. Its first search crop reaches past the top
    border from y = 196 - 239.5 = -43.5: Python 2 rounds that to -44, pysot's floor(v + 0.5) to
    -43, and the pysot-rounded track parts from the official one at once."""
    state = big_state if name == "dasiamrpn_big" else vot_state
    weights = tmp_path / f"official.{fmt}"
    if fmt == "model":
        torch.save(state, weights)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    got = _siam_track(weights, tmp_path / "t.json", name)
    frames = read_frames(need(BAG), FRAMES)
    ref = OfficialTracker(OfficialNet(state), *SETTINGS[name])
    ref.init(frames[0], BOX)
    side = py2_round(224 + 2 * 72 * 224 / 127)  # s_z + 2 * pad of run_SiamRPN.py at 271
    assert (side, ref.pos[1] - (side + 1) / 2) == (478, -43.5)
    assert (py2_round(-43.5), round_half_up(-43.5)) == (-44, -43)
    for i in range(1, FRAMES):
        box, score = ref.track(frames[i])
        np.testing.assert_allclose(got[i]["box"], box, atol=2e-3, err_msg=f"frame {i}")
        assert abs(got[i]["score"] - score) < 1e-4
    pysot_rounding = OfficialSiamRPNTracker(*load_dasiamrpn(state, name))
    pysot_rounding.round_origin = round_half_up
    pysot_rounding.init(frames[0], BOX)
    assert np.abs(np.subtract(pysot_rounding.track(frames[1]).box, got[1]["box"])).max() > 1e-2


def test_every_entry_point_builds_the_official_tracker(tmp_path, bag, vot_state, big_state) -> None:
    """siam-convert turns an official file into ours; siam-track and the node's ``weights``
    parameter (both ``zoo.load_tracker``) and siam-eval's ``siamrpn:`` spec build the official
    tracker from the official file or the converted one, with identical tracks."""
    official = tmp_path / "SiamRPNVOT.model"
    torch.save(vot_state, official)
    ours = tmp_path / "vot.safetensors"
    assert convert_main([str(official), str(ours), "--model", "dasiamrpn_vot"]) == 0
    trackers = [
        load_tracker("dasiamrpn_vot", str(official), "cpu"),
        load_tracker("", str(ours), "cpu"),  # the converted file names its config
        make_tracker(f"siamrpn:dasiamrpn_vot:{official}"),
        make_tracker(f"siamrpn::{ours}"),
    ]
    frames = read_frames(need(BAG), 3)
    boxes = []
    for tracker in trackers:
        assert type(tracker) is OfficialSiamRPNTracker and tracker.cfg.name == "dasiamrpn_vot"
        tracker.init(frames[0], BOX)
        boxes.append([tracker.track(f).box for f in frames[1:]])
    assert all(b == boxes[0] for b in boxes)
    big = tmp_path / "SiamRPNBIG.model"
    torch.save(big_state, big)
    assert load_tracker("", str(big), "cpu").cfg.name == "dasiamrpn_big"  # told by its tensors
    # vot and otb files have the same tensors: without a name they are refused, saying why
    assert convert_main([str(official), str(tmp_path / "x.safetensors")]) == 1
    with pytest.raises(ValueError, match="same tensors; name the model"):
        load_tracker("", str(official), "cpu")
    with pytest.raises(ValueError, match="other architecture"):
        load_tracker("dasiamrpn_big", str(official), "cpu")
