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

from siam_core.models import mobilenet
from siam_core.models.mobilenet import (
    MobileNetV2,
    MobileNetV2TV,
    imagenet_weights_path,
    load_imagenet_weights,
)
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


# --------------------------------------------------------------------------- MobileNetV2 (pysot)


def pysot_mobilev2_keys() -> set[str]:
    """pysot-compat: ``layer0.{0,1}``; ``layer{1..7}.{i}.conv.{0,1,3,4,6,7}``, 1/2/3/4/3/3/1."""
    keys = {"layer0.0.weight"} | _bn("layer0.1")
    for layer, blocks in enumerate((1, 2, 3, 4, 3, 3, 1), start=1):
        for i in range(blocks):
            p = f"layer{layer}.{i}.conv"
            for conv, bn in ((0, 1), (3, 4), (6, 7)):
                keys |= {f"{p}.{conv}.weight"} | _bn(f"{p}.{bn}")
    return keys


@pytest.fixture(scope="module")
def mobilev2() -> MobileNetV2:
    torch.manual_seed(0)
    return MobileNetV2(width_mult=1.4, used_layers=[3, 5, 7]).eval()


def test_mobilev2_keys_and_shapes_match_pysot(mobilev2: MobileNetV2) -> None:
    sd = mobilev2.state_dict()
    assert set(sd) == pysot_mobilev2_keys()
    assert len(sd) == 312  # 450 model keys - 18 neck - 120 head (pysot-compat)
    assert tuple(sd["layer0.0.weight"].shape) == (44, 3, 3, 3)
    assert tuple(sd["layer1.0.conv.0.weight"].shape) == (44, 44, 1, 1)  # expand by 1 kept
    # output channels 22, 33, 44, 89, 134, 224, 448 (pysot-compat, width 1.4)
    last_block = {1: 0, 2: 1, 3: 2, 4: 3, 5: 2, 6: 2, 7: 0}
    for layer, ch in zip(range(1, 8), (22, 33, 44, 89, 134, 224, 448), strict=True):
        assert sd[f"layer{layer}.{last_block[layer]}.conv.6.weight"].shape[0] == ch
    assert tuple(sd["layer4.0.conv.3.weight"].shape) == (264, 1, 3, 3)  # depth-wise, 44·6
    assert mobilev2.out_channels == [44, 134, 448]


def test_mobilev2_parameter_total_matches_pysot(mobilev2: MobileNetV2) -> None:
    full = (
        n_params(mobilev2)
        + pysot_neck_params([44, 134, 448], [256] * 3)
        + pysot_dw_head_params([256] * 3, weighted=False)
    )
    assert round(full / 1e6, 2) == 11.15


def test_mobilev2_feature_sizes_and_stride(mobilev2: MobileNetV2) -> None:
    with torch.inference_mode():
        z = mobilev2(real_crop(127))
        x = mobilev2(real_crop(255))
        wider = mobilev2(torch.zeros(1, 3, 263, 263))
    assert [tuple(f.shape) for f in z] == [(1, c, 15, 15) for c in (44, 134, 448)]
    assert [tuple(f.shape) for f in x] == [(1, c, 31, 31) for c in (44, 134, 448)]
    assert all(f.shape[-1] == 32 for f in wider)  # +8 px -> +1 cell: stride 8
    assert all(torch.isfinite(f).all() for f in z + x)


def test_mobilev2_padding_and_dilation_follow_pysot(mobilev2: MobileNetV2) -> None:
    """pysot mobile_v2: depth-wise (stride, padding, dilation) per layer, first block then rest."""
    table = {
        1: [(1, 1, 1)],
        2: [(2, 0, 1), (1, 1, 1)],
        3: [(2, 0, 1), (1, 1, 1), (1, 1, 1)],
        4: [(1, 1, 1)] + [(1, 2, 2)] * 3,  # dilation 2 from layer4, first block halved
        5: [(1, 2, 2)] * 3,
        6: [(1, 2, 2)] + [(1, 4, 4)] * 2,
        7: [(1, 4, 4)],
    }
    for layer, blocks in table.items():
        got = [
            (b.conv[3].stride[0], b.conv[3].padding[0], b.conv[3].dilation[0])
            for b in getattr(mobilev2, f"layer{layer}")
        ]
        assert got == blocks, layer
    stem = mobilev2.layer0[0]
    assert (stem.stride[0], stem.padding[0]) == (2, 0)


def test_mobilev2_used_layers_registry_and_errors() -> None:
    a = BACKBONES.build({"type": "MobileNetV2", "width_mult": 1.4, "used_layers": [3, 5, 7]})
    b = BACKBONES.build({"type": "MobileNetV2", "width_mult": 1.0, "used_layers": [7]})
    assert a.out_channels == [44, 134, 448] and b.out_channels == [320]
    with torch.inference_mode():
        (only,) = b.eval()(real_crop(127))
    assert tuple(only.shape) == (1, 320, 15, 15)
    for bad in ([], [8], [3, 3]):
        with pytest.raises(ValueError, match="used_layers"):
            MobileNetV2(used_layers=bad)
    with pytest.raises(ValueError, match="width_mult"):
        MobileNetV2(width_mult=0)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        b(torch.zeros(1, 1, 127, 127))


# --------------------------------------------------------------------------- MobileNetV2TV


def needs_imagenet_weights() -> Path:
    try:
        return imagenet_weights_path()
    except RuntimeError as exc:
        pytest.skip(f"ImageNet MobileNetV2 weights unavailable: {exc}")


def test_tv_layout_matches_torchvision_keys() -> None:
    """Every key of torchvision's ImageNet file but the classifier exists with its shape."""
    path = needs_imagenet_weights()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MobileNetV2TV(used_layers=[3, 5, 7, 8])
    own = model.state_dict()
    assert set(state) - set(own) == {"classifier.1.weight", "classifier.1.bias"}
    assert set(own) <= set(state)
    assert all(own[k].shape == state[k].shape for k in own)
    assert model.out_channels == [32, 96, 320, 1280]
    tracking = MobileNetV2TV()  # layers 3, 5, 7: features.18 is not built
    assert not any(k.startswith("features.18.") for k in tracking.state_dict())
    assert len(tracking.state_dict()) == len(state) - 2 - 6


def test_tv_geometry() -> None:
    """Stride 8: pysot's sizes (15 at 127, 31 at 255); stride 32: torchvision's classifier."""
    net8 = MobileNetV2TV(used_layers=[3, 5, 7], output_stride=8).eval()
    net32 = MobileNetV2TV(used_layers=[3, 5, 7], output_stride=32).eval()
    with torch.inference_mode():
        z = net8(real_crop(127))
        x = net8(real_crop(255))
        c = net32(torch.zeros(1, 3, 224, 224))
    assert [tuple(f.shape) for f in z] == [(1, ch, 15, 15) for ch in (32, 96, 320)]
    assert [tuple(f.shape) for f in x] == [(1, ch, 31, 31) for ch in (32, 96, 320)]
    assert [f.shape[-1] for f in c] == [28, 14, 7]
    # torchvision pads every 3×3 by its dilation and never dilates
    convs = [m for m in net32.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] == 3]
    assert all(m.padding[0] == 1 and m.dilation[0] == 1 for m in convs)
    dilations = [m.dilation[0] for m in net8.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(dilations) == 4


def _imagenet_input(rgb: np.ndarray) -> torch.Tensor:
    """torchvision's ImageNet preprocessing: shorter side 256, centre 224, RGB, mean/std."""
    h, w = rgb.shape[:2]
    s = 256 / min(h, w)
    img = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    y0, x0 = (img.shape[0] - 224) // 2, (img.shape[1] - 224) // 2
    img = img[y0 : y0 + 224, x0 : x0 + 224].astype(np.float32) / 255
    img = (img - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize("output_stride", [32, 8])
def test_imagenet_weights_classify_real_photos(output_stride: int) -> None:
    """The loaded weights are real: backbone + global pool + the file's classifier.1 name the
    photos right (Egyptian cat 285, espresso 967), also with the dilated tracking geometry."""
    skdata = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos")
    path = needs_imagenet_weights()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = MobileNetV2TV(used_layers=[8], output_stride=output_stride).eval()
    assert load_imagenet_weights(model) == ["classifier.1.bias", "classifier.1.weight"]
    for photo, label in (("chelsea", 285), ("coffee", 967)):
        with torch.inference_mode():
            (features,) = model(_imagenet_input(getattr(skdata, photo)()))
            logits = features.mean((2, 3)) @ state["classifier.1.weight"].T
            probs = torch.softmax(logits + state["classifier.1.bias"], dim=1)[0]
        assert int(probs.argmax()) == label, photo
        assert float(probs[label]) > 0.5, photo


def _normalised_crop(
    image: np.ndarray, cx: float, cy: float, side: float, size: int
) -> torch.Tensor:
    """A crop like ``real_crop`` but RGB with ImageNet normalisation, as the ImageNet net wants."""
    scale = size / side
    affine = np.array(
        [[scale, 0, size / 2 - 0.5 - scale * cx], [0, scale, size / 2 - 0.5 - scale * cy]]
    )
    mean = [float(c) for c in image.reshape(-1, 3).mean(0)]
    crop = cv2.warpAffine(image, affine, (size, size), borderValue=mean)
    rgb = crop[:, :, ::-1].astype(np.float32) / 255
    rgb = (rgb - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize("frame", [10, 20])
@pytest.mark.parametrize("shift", [(40, -24), (-56, 32)])
def test_imagenet_tv_features_locate_a_real_target(frame: int, shift: tuple[int, int]) -> None:
    """Stride-8 ImageNet features find the Crossing pedestrian in a later frame.

    The template (frame 1, 127) is centre-cropped 15→7 as the neck does and correlated with
    a 255 search of a later frame placed so the target sits ``shift`` pixels off centre; the
    peak cell × 8 must land within one cell of the shift, which only holds if stride, padding
    and dilation keep the feature grid aligned with the image.
    """
    path = needs_imagenet_weights()
    root = DATA / "sequences" / "otb" / "Crossing"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    gts = [
        [float(v) for v in line.split()]
        for line in (root / "groundtruth_rect.txt").read_text().splitlines()
    ]
    model = MobileNetV2TV(used_layers=[3, 5]).eval()
    load_imagenet_weights(model, path)
    x, y, w, h = gts[0]
    p = (w + h) / 2
    side = math.sqrt((w + p) * (h + p))
    first = cv2.imread(str(root / "img" / "0001.jpg"))
    later = cv2.imread(str(root / "img" / f"{frame:04d}.jpg"))
    z = _normalised_crop(first, x + (w - 1) / 2, y + (h - 1) / 2, side, 127)
    x2, y2, w2, h2 = gts[frame - 1]
    px_per_image_px = 127 / side  # same scale for template and search
    cx = x2 + (w2 - 1) / 2 - shift[0] / px_per_image_px
    cy = y2 + (h2 - 1) / 2 - shift[1] / px_per_image_px
    search = _normalised_crop(later, cx, cy, side * 255 / 127, 255)
    with torch.inference_mode():
        for zf, xf in zip(model(z), model(search), strict=True):
            kernel = zf[:, :, 4:11, 4:11]
            kernel = kernel - kernel.mean((2, 3), keepdim=True)
            response = torch.nn.functional.conv2d(xf, kernel)[0, 0]
            assert response.shape == (25, 25)
            row, col = divmod(int(response.argmax()), 25)
            found = ((col - 12) * 8, (row - 12) * 8)
            assert abs(found[0] - shift[0]) <= 8 and abs(found[1] - shift[1]) <= 8, found


def test_load_imagenet_weights_reports_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = needs_imagenet_weights()
    with pytest.raises(ValueError, match="MobileNetV2TV"):
        load_imagenet_weights(MobileNetV2(), path)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not found"):
        load_imagenet_weights(MobileNetV2TV(), tmp_path / "absent.pth")
    state = torch.load(path, map_location="cpu", weights_only=True)
    del state["features.3.conv.1.0.weight"]
    state["features.3.conv.9.weight"] = torch.zeros(1)
    state["features.0.0.weight"] = torch.zeros(16, 3, 3, 3)
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(RuntimeError) as info:
        load_imagenet_weights(MobileNetV2TV(), broken)
    message = str(info.value)
    assert "features.3.conv.1.0.weight" in message  # missing
    assert "features.3.conv.9.weight" in message  # unexpected
    assert "features.0.0.weight: file (16, 3, 3, 3)" in message  # mis-shaped
    pickled = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a pickled object, refused by weights_only
    with pytest.raises(RuntimeError, match="plain state dict"):
        load_imagenet_weights(MobileNetV2TV(), pickled)
    monkeypatch.setattr(mobilenet, "IMAGENET_PACKAGE", "no_such_weights_package")
    with pytest.raises(RuntimeError, match="--no-deps"):
        load_imagenet_weights(MobileNetV2TV())


def test_tv_registry_and_errors() -> None:
    net = BACKBONES.build({"type": "MobileNetV2TV", "used_layers": [3, 5, 7]})
    assert net.out_channels == [32, 96, 320]
    with pytest.raises(ValueError, match="output_stride"):
        MobileNetV2TV(output_stride=16)
    with pytest.raises(ValueError, match="used_layers"):
        MobileNetV2TV(used_layers=[9])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.zeros(1, 3, 127))
