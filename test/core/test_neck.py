"""Adjust necks against pysot's layout (shared/design/pysot-compat.md, pysot neck.py)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siam_core.models.mobilenet import MobileNetV2
from siam_core.models.neck import AdjustAllLayer, AdjustLayer
from siam_core.registry import NECKS

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def real_crop(size: int, frame: int = 1) -> torch.Tensor:
    """(1, 3, size, size) BGR 0..255 crop of the bag sequence around its ground-truth polygon."""
    root = DATA / "sequences" / "vot" / "bag"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    poly = [
        float(v) for v in (root / "groundtruth.txt").read_text().splitlines()[frame - 1].split(",")
    ]
    xs, ys = poly[0::2], poly[1::2]
    x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    image = cv2.imread(str(root / "color" / f"{frame:08d}.jpg"))
    assert image is not None
    p = (w + h) / 2
    scale = size / (math.sqrt((w + p) * (h + p)) * size / 127)
    cx, cy = x + (w - 1) / 2, y + (h - 1) / 2
    affine = np.array(
        [[scale, 0, size / 2 - 0.5 - scale * cx], [0, scale, size / 2 - 0.5 - scale * cy]]
    )
    mean = [float(c) for c in image.reshape(-1, 3).mean(0)]
    crop = cv2.warpAffine(image, affine, (size, size), borderValue=mean)
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float()


def test_keys_and_shapes_match_pysot() -> None:
    neck = AdjustAllLayer([512, 1024, 2048], [256, 256, 256])
    sd = neck.state_dict()
    expected = set()
    for level, cin in zip((2, 3, 4), (512, 1024, 2048), strict=True):
        expected.add(f"downsample{level}.downsample.0.weight")
        expected |= {f"downsample{level}.downsample.1.{k}" for k in BN_KEYS}
        assert tuple(sd[f"downsample{level}.downsample.0.weight"].shape) == (256, cin, 1, 1)
    assert set(sd) == expected and len(sd) == 18
    single = AdjustAllLayer([1024], [256])
    assert "downsample.downsample.0.weight" in single.state_dict()  # pysot: one level
    assert set(AdjustLayer(1024, 256).state_dict()) == {"downsample.0.weight"} | {
        f"downsample.1.{k}" for k in BN_KEYS
    }


@pytest.mark.parametrize(
    ("cin", "cout", "params"),
    [
        # pysot-compat: conv (Cout, Cin, 1, 1) + BN(Cout) per level
        ([512, 1024, 2048], [256] * 3, 256 * 3584 + 2 * 768),  # r50
        ([512, 1024, 2048], [128, 256, 512], 128 * 512 + 256 * 1024 + 512 * 2048 + 2 * 896),
        ([44, 134, 448], [256] * 3, 256 * 626 + 2 * 768),  # mobilev2
    ],
)
def test_parameter_counts(cin: list[int], cout: list[int], params: int) -> None:
    neck = AdjustAllLayer(cin, cout)
    assert sum(p.numel() for p in neck.parameters()) == params
    assert neck.out_channels == cout


def _identity_adjust(center_size: int = 7) -> AdjustLayer:
    layer = AdjustLayer(1, 1, center_size).eval()
    with torch.no_grad():
        layer.downsample[0].weight.fill_(1.0)
        layer.downsample[1].eps = 0.0
    return layer


def test_template_crop_takes_pysot_indices() -> None:
    """A map whose values encode their position shows which cells survive: 15 → rows/cols 4…10."""
    layer = _identity_adjust()
    rows = torch.arange(15.0).view(15, 1).expand(15, 15)
    pos = (100 * rows + rows.T)[None, None]
    with torch.inference_mode():
        out = layer.adjust(pos)
    assert out.shape == (1, 1, 7, 7)
    idx = torch.arange(4.0, 11.0)
    assert torch.equal(out[0, 0], 100 * idx.view(7, 1) + idx.view(1, 7))
    five = _identity_adjust(center_size=5)
    with torch.inference_mode():
        out5 = five.adjust(pos)
    assert torch.equal(out5[0, 0, 0], torch.arange(505.0, 510.0))  # (15 - 5) // 2 = 5


def test_crop_is_decided_by_width_like_pysot() -> None:
    """pysot tests ``x.size(3) < 20`` only and uses the width's offset for rows too."""
    layer = _identity_adjust()
    with torch.inference_mode():
        wide = layer.adjust(torch.zeros(1, 1, 15, 31))
        narrow = layer.adjust(torch.arange(25.0 * 15).view(1, 1, 25, 15))
    assert wide.shape == (1, 1, 15, 31)
    assert narrow.shape == (1, 1, 7, 7)
    assert float(narrow[0, 0, 0, 0]) == 4 * 15 + 4
    with torch.inference_mode():
        assert layer.adjust(torch.zeros(1, 1, 19, 19)).shape[-1] == 7
        assert layer.adjust(torch.zeros(1, 1, 20, 20)).shape[-1] == 20


def test_on_real_backbone_features() -> None:
    """pysot's mobilev2 levels through the neck: templates 7×7, searches 31×31, values equal
    to the uncropped projection's centre."""
    torch.manual_seed(0)
    backbone = MobileNetV2(width_mult=1.4, used_layers=[3, 5, 7]).eval()
    neck = NECKS.build(
        {"type": "AdjustAllLayer", "in_channels": [44, 134, 448], "out_channels": [256] * 3}
    ).eval()
    with torch.inference_mode():
        zf = backbone(real_crop(127))
        xf = backbone(real_crop(255, frame=2))
        z = neck(zf)
        x = neck(xf)
        full = [getattr(neck, f"downsample{i + 2}").downsample(f) for i, f in enumerate(zf)]
    assert [tuple(t.shape) for t in z] == [(1, 256, 7, 7)] * 3
    assert [tuple(t.shape) for t in x] == [(1, 256, 31, 31)] * 3
    for cropped, uncropped in zip(z, full, strict=True):
        assert torch.equal(cropped, uncropped[:, :, 4:11, 4:11])
        assert cropped.abs().sum() > 0


def test_single_level_neck_and_coexistence() -> None:
    a = NECKS.build({"type": "AdjustLayer", "in_channels": 1024, "out_channels": 256})
    b = NECKS.build({"type": "AdjustAllLayer", "in_channels": [1024], "out_channels": [128]})
    feats = [torch.zeros(2, 1024, 15, 15)]
    with torch.inference_mode():
        assert [tuple(t.shape) for t in a.eval()(feats)] == [(2, 256, 7, 7)]
        assert [tuple(t.shape) for t in b.eval()(feats)] == [(2, 128, 7, 7)]


def test_bad_config_and_input() -> None:
    with pytest.raises(ValueError, match="one out channel count"):
        AdjustAllLayer([512, 1024], [256])
    with pytest.raises(ValueError, match="one out channel count"):
        AdjustAllLayer([], [])
    with pytest.raises(ValueError, match="positive"):
        AdjustLayer(0, 256)
    with pytest.raises(ValueError, match="center_size"):
        AdjustLayer(8, 8, center_size=20)
    neck = AdjustAllLayer([8, 16], [4, 4]).eval()
    with pytest.raises(ValueError, match="list of 2 feature maps, got 1 maps"):
        neck([torch.zeros(1, 8, 15, 15)])
    with pytest.raises(ValueError, match="got a tensor"):
        neck(torch.zeros(1, 8, 15, 15))
    with pytest.raises(ValueError, match=r"\(N, 16, H, W\)"):
        neck([torch.zeros(1, 8, 15, 15), torch.zeros(1, 8, 15, 15)])
    with pytest.raises(ValueError, match="smaller than center_size"):
        neck([torch.zeros(1, 8, 5, 5), torch.zeros(1, 16, 5, 5)])
