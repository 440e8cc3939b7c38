"""Backbones against the facts of pysot's published checkpoints (shared/design/pysot-compat.md).

Key names and shapes must match pysot's exactly so its ``model.pth`` files load as they are;
feature sizes must be 15×15 at 127 and 31×31 at 255 (stride 8). Inputs are crops of real
frames from ``../shared/data/sequences``.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siam_core.models.resnet import ResNet50
from siam_core.registry import BACKBONES

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str) -> set[str]:
    return {f"{prefix}.{k}" for k in BN_KEYS}


def real_crop(size: int, seq: str = "otb/MotorRolling", frame: int = 1) -> torch.Tensor:
    """A (1, 3, size, size) BGR 0..255 float crop around the ground-truth box, as pysot feeds.

    The side is SiamRPN's context square (spec §1.4) scaled by size/127, so a 127 crop is the
    template and a 255 crop the matching search region.
    """
    root = DATA / "sequences" / seq
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    gt_line = (root / "groundtruth_rect.txt").read_text().splitlines()[frame - 1]
    x, y, w, h = (float(v) for v in gt_line.replace(",", " ").replace("\t", " ").split())
    image = cv2.imread(str(root / "img" / f"{frame:04d}.jpg"))
    assert image is not None
    p = (w + h) / 2
    side = math.sqrt((w + p) * (h + p)) * size / 127
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    scale = size / side
    affine = np.array(
        [[scale, 0, size / 2 - 0.5 - scale * cx], [0, scale, size / 2 - 0.5 - scale * cy]]
    )
    mean = [float(c) for c in image.reshape(-1, 3).mean(0)]
    crop = cv2.warpAffine(image, affine, (size, size), borderValue=mean)
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def pysot_neck_params(in_ch: list[int], out_ch: list[int]) -> int:
    """pysot-compat: ``neck.downsample{i}`` = conv (Cout, Cin, 1, 1) no bias + BN(Cout)."""
    return sum(o * i + 2 * o for i, o in zip(in_ch, out_ch, strict=True))


def pysot_dw_head_params(channels: list[int], anchors: int = 5, weighted: bool = False) -> int:
    """Parameters of pysot's multi-level depth-wise RPN head from the pysot-compat key shapes.

    Per level and branch: ``conv_kernel.0`` and ``conv_search.0`` (C, C, 3, 3) + BN(C),
    ``head.0`` (C, C, 1, 1) + BN(C), ``head.3`` (out, C, 1, 1) with bias; out = 2k (cls) or
    4k (loc). A weighted head adds ``cls_weight`` and ``loc_weight`` (levels,).
    """
    total = 0
    for c in channels:
        for out in (2 * anchors, 4 * anchors):
            total += 2 * (9 * c * c + 2 * c) + (c * c + 2 * c) + (out * c + out)
    return total + (2 * len(channels) if weighted else 0)


# --------------------------------------------------------------------------- ResNet-50


def pysot_r50_keys() -> set[str]:
    """The backbone key set pysot-compat lists for siamrpn_r50_l234_dwxcorr (prefix removed)."""
    keys = {"conv1.weight"} | _bn("bn1")
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for i in range(blocks):
            p = f"layer{layer}.{i}"
            for j in (1, 2, 3):
                keys |= {f"{p}.conv{j}.weight"} | _bn(f"{p}.bn{j}")
        keys |= {f"layer{layer}.0.downsample.0.weight"} | _bn(f"layer{layer}.0.downsample.1")
    return keys


@pytest.fixture(scope="module")
def r50() -> ResNet50:
    torch.manual_seed(0)
    return ResNet50(used_layers=[2, 3, 4]).eval()


def test_r50_keys_and_shapes_match_pysot(r50: ResNet50) -> None:
    sd = r50.state_dict()
    assert set(sd) == pysot_r50_keys()
    assert len(sd) == 318  # 458 model keys - 18 neck - 122 head (pysot-compat)
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer2.0.downsample.0.weight": (512, 256, 3, 3),
        "layer3.0.downsample.0.weight": (1024, 512, 3, 3),
        "layer4.0.downsample.0.weight": (2048, 1024, 3, 3),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key


def test_r50_parameter_totals_match_pysot(r50: ResNet50) -> None:
    """Backbone + pysot neck + pysot head must give pysot-compat's 53.95 M and 60.0 M (LT)."""
    backbone = n_params(r50)
    full = (
        backbone
        + pysot_neck_params([512, 1024, 2048], [256] * 3)
        + pysot_dw_head_params([256] * 3, weighted=True)
    )
    assert round(full / 1e6, 2) == 53.95
    lt = (
        backbone
        + pysot_neck_params([512, 1024, 2048], [128, 256, 512])
        + pysot_dw_head_params([128, 256, 512], weighted=True)
    )
    assert round(lt / 1e6, 1) == 60.0


def test_r50_feature_sizes_on_real_crops(r50: ResNet50) -> None:
    assert r50.out_channels == [512, 1024, 2048]
    with torch.inference_mode():
        z = r50(real_crop(127))
        x = r50(real_crop(255))
    assert [tuple(f.shape) for f in z] == [(1, c, 15, 15) for c in (512, 1024, 2048)]
    assert [tuple(f.shape) for f in x] == [(1, c, 31, 31) for c in (512, 1024, 2048)]
    for f in z + x:
        assert torch.isfinite(f).all()
        assert (f >= 0).all() and f.abs().sum() > 0  # ReLU outputs, not all dead


def test_r50_stride_is_8() -> None:
    """Eight more input pixels give exactly one more output cell at every used level."""
    net = ResNet50(used_layers=[2, 3, 4]).eval()
    with torch.inference_mode():
        for size, cells in ((127, 15), (135, 16), (255, 31), (271, 33)):
            feats = net(torch.zeros(1, 3, size, size))
            assert all(f.shape[-2:] == (cells, cells) for f in feats), size


def test_r50_padding_and_dilation_follow_pysot(r50: ResNet50) -> None:
    """pysot resnet_atrous: (stride, padding, dilation) of each stage's 3×3 convs."""
    # layer: (first block conv2, other blocks' conv2, shortcut conv)
    table = {
        1: ((1, 1, 1), (1, 1, 1), (1, 0, 1)),  # 1×1 projection
        2: ((2, 0, 1), (1, 1, 1), (2, 0, 1)),
        3: ((1, 1, 1), (1, 2, 2), (1, 1, 1)),
        4: ((1, 2, 2), (1, 4, 4), (1, 2, 2)),
    }
    for k, (first, rest, shortcut) in table.items():
        layer = getattr(r50, f"layer{k}")

        def spd(conv: torch.nn.Conv2d) -> tuple[int, int, int]:
            return conv.stride[0], conv.padding[0], conv.dilation[0]

        assert spd(layer[0].conv2) == first, k
        assert all(spd(block.conv2) == rest for block in layer[1:]), k
        assert spd(layer[0].downsample[0]) == shortcut, k
    assert (r50.conv1.stride[0], r50.conv1.padding[0]) == (2, 0)


def test_r50_builds_only_the_used_layers_like_pysot() -> None:
    """pysot builds layer3/layer4 only when used; early layers are conv1 and layer1 outputs."""
    net = ResNet50(used_layers=[0, 1, 2]).eval()
    assert not any(k.startswith(("layer3.", "layer4.")) for k in net.state_dict())
    with torch.inference_mode():
        feats = net(real_crop(127))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 61, 61), (1, 256, 31, 31), (1, 512, 15, 15)]
    assert net.out_channels == [64, 256, 512]
    only4 = ResNet50(used_layers=[4])
    assert tuple(only4.state_dict()["layer4.0.downsample.0.weight"].shape) == (2048, 512, 3, 3)


def test_r50_registry_and_coexistence() -> None:
    a = BACKBONES.build({"type": "ResNet50", "used_layers": [2, 3, 4]})
    b = BACKBONES.build({"type": "ResNet50", "used_layers": [3]})
    assert a.out_channels == [512, 1024, 2048] and b.out_channels == [1024]
    assert "layer4.0.conv1.weight" in a.state_dict()
    assert "layer4.0.conv1.weight" not in b.state_dict()


def test_r50_rejects_bad_config_and_input() -> None:
    for bad in ([], [5], [2, 2], [-1]):
        with pytest.raises(ValueError, match="used_layers"):
            ResNet50(used_layers=bad)
    net = ResNet50(used_layers=[2])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.zeros(3, 127, 127))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.zeros(1, 4, 127, 127))
