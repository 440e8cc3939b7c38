"""The exported search branch with its linear layers composed (``siam_core.deploy.fold``).

Folding must not change what a network computes: checked on real crops for the default model
(two of three levels folded), pysot's MobileNetV2 config (two folded; its 448-channel level
is not worth it) and AlexNet (no neck: stacked cls/loc only), with BatchNorm statistics
randomised so that a wrong composition shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _siamrpn_data import BAG, INIT, need, read_video, steps_from_reference
from torch import nn

from siam_core import zoo
from siam_core.checkpoint import load_checkpoint
from siam_core.config import load_config
from siam_core.deploy import cache, quantize
from siam_core.deploy.export import export_onnx, inference_net, read_manifest
from siam_core.deploy.fold import FoldedSearch, foldable
from siam_core.deploy.runtime import OnnxNet
from siam_core.models.model import build_model
from siam_core.tracker.siamrpn import SiamRPNTracker

pytest.importorskip("onnxruntime", reason="onnxruntime missing: run `make setup`")

CLIP = 21


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_video(need(BAG), CLIP)


def _crops(model: nn.Module, cfg, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    z, x = SiamRPNTracker(model, cfg, optimize=False).patches(frame, INIT)
    return tuple(torch.from_numpy(p).permute(2, 0, 1)[None].float() for p in (z, x))


def _randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Seeded non-trivial BN statistics and affine terms: folding an identity BN proves
    nothing."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize(
    ("config", "folded"),
    [
        ("default", [True, True, False]),
        ("siamrpn_mobilev2_l234_dwxcorr", [True, True, False]),
        ("siamrpn_alex_dwxcorr", [False]),
    ],
)
def test_folding_keeps_the_head_outputs(config: str, folded: list[bool], clip) -> None:
    if config == "default":
        model, cfg = load_checkpoint(zoo.DEFAULT_WEIGHTS)
    else:
        cfg = load_config(config)
        model = _randomise_batchnorm(build_model(cfg))
    net = inference_net(model)
    z, x = _crops(net, cfg, clip[0])
    fold = FoldedSearch(net)
    assert fold.folded == folded
    with torch.no_grad():
        kernels = net.template(z)
        ref = net.rpn_head.track(kernels, net.features(x))
        got = fold.head(kernels, fold.features(x))
    # a search crop so small that its maps are narrower than 20: the neck's (pysot's) centre
    # crop applies, folded level or not
    small = torch.nn.functional.interpolate(x, size=(135, 135), mode="bilinear")
    with torch.no_grad():
        assert net.features(small)[0].shape[-1] < 20 <= net.features(x)[0].shape[-1]
        ref_small = net.rpn_head.track(kernels, net.features(small))
        got_small = fold.head(kernels, fold.features(small))
    for r, g in zip([*ref, *ref_small], [*got, *got_small], strict=True):
        assert r.shape == g.shape
        rel = float((r - g).abs().max() / r.abs().max())
        assert rel < 1e-5, f"{config}: folded head off by {rel:.1e} (relative)"
    # the folded levels' maps are the backbone's: the neck's channels are not computed
    with torch.no_grad():
        maps = fold.features(x)
    for level, is_folded in enumerate(folded):
        neck_channels = net.features(x)[level].shape[1]
        assert (maps[level].shape[1] != neck_channels) == is_folded, level


def test_networks_without_a_depthwise_rpn_are_exported_as_they_are() -> None:
    for config in ("siamrpn_alex_upchannel", "siamrpnplus_ciresnet22_otb"):
        net = inference_net(build_model(load_config(config)))
        assert not foldable(net)
        with pytest.raises(ValueError, match="not a depth-wise RPN"):
            FoldedSearch(net)


def test_folded_export_tracks_as_pytorch_and_int8_starts_unfolded(clip, tmp_path: Path) -> None:
    """The default model's folded graphs on ONNX Runtime follow PyTorch within 0.05 px on
    every frame from its state (measured: under 1e-3 px); the quantiser refuses them."""
    model, cfg = load_checkpoint(zoo.DEFAULT_WEIGHTS)
    fp32 = SiamRPNTracker(model, cfg, optimize=False)
    z, x = fp32.patches(clip[0], INIT)
    manifest = export_onnx(model, cfg, tmp_path / "folded", z, x)
    assert manifest["folded_levels"] == [True, True, False]
    # the features graph gives the backbone's 32 and 96 channels where the neck folded
    shapes = manifest["graphs"]["features"]["outputs"]
    assert [s[1] for s in shapes.values()] == [32, 96, 128]
    assert max(manifest["check"]["max_relative_error"].values()) < 1e-4
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, runtime=OnnxNet(tmp_path / "folded", threads=1))
    for i, err, score_err in steps_from_reference(ref, got, clip, INIT):
        assert err < 0.05, f"frame {i}: folded graphs' box off by {err:.4f} px"
        assert score_err < 1e-4
    # a plain tracker runs the merged search graph in one call; the classifier reads maps
    runtime = got.runtime
    assert runtime.fused and got.fused_search
    assert "network" in got.track(clip[1]).timings
    x_t = torch.from_numpy(x).permute(2, 0, 1)[None].float()
    kernels = runtime.template(torch.from_numpy(z).permute(2, 0, 1)[None].float())
    one = runtime.search(x_t, kernels)
    two = runtime.run_head([*kernels, *runtime.features(x_t)])
    for a, b in zip(one, two, strict=True):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-5
    with pytest.raises(ValueError, match="unfolded export"):
        quantize.quantize_export(tmp_path / "folded", tmp_path / "int8", fp32, pairs=2)
    unfolded = export_onnx(model, cfg, tmp_path / "unfolded", z, x, fold=False)
    assert unfolded["folded_levels"] == []
    assert read_manifest(tmp_path / "unfolded")["graphs"]["features"]["outputs"]["feat_0"][1] == 128


def test_the_cache_key_follows_the_export_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graphs cached before a change of recipe are not reused (they would still run, slower)."""
    _, cfg = load_checkpoint(zoo.DEFAULT_WEIGHTS)
    before = cache._key(zoo.DEFAULT_WEIGHTS, cfg)
    monkeypatch.setattr(cache.export, "RECIPE", "another recipe")
    assert cache._key(zoo.DEFAULT_WEIGHTS, cfg) != before
