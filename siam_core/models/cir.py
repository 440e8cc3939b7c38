"""SiamDW's cropping-inside residual (CIR) backbones (seeds-spec §2.4, DW §4, Table 3).

The units remove every feature that zero padding touched, so template and search features stay
consistent (seeds-spec §1.3):

* **CIR**: bottleneck 1x1 -> 3x3 (pad 1) -> 1x1, identity or 1x1 projection shortcut, added,
  ReLU (not in the last unit of the network), then one pixel cropped from every border;
* **CIR-D**: the same unit at stride 1 (body and shortcut), then a 2x2/2 max-pool;
* **CIR-Inception**: a 1x1 conv branch beside the bottleneck, the two concatenated, cropped;
* **CIR-NeXt**: the 3x3 split into 32 groups of width 4 (8 in the second stage), the sum
  normalised once after the addition, cropped.

Module and parameter names are those of the official code (researchmm/SiamDW
``lib/models/modules.py``, ``ResNet``, ``Inception``, ``ResNeXt``), so its checkpoints load after
the ``features.features.`` prefix is replaced by ``backbone.``. Where the paper and that code
differ, the code wins (the README lists where): CIResInception-22 and CIResNeXt-22 open with an
unpadded 7x7 conv and a 3x3/2 max-pool (receptive field 95, not Table 3's 93), the 1x1 branch
of the Inception unit normalises with eps 1e-3, and CIResNeXt-22's stem conv has a bias.

CIResNet-16/19/43 have no official code; they follow Table 3 with the CIResNet-22 stem
(7x7/2 pad 3, 2-pixel crop, 2x2/2 max-pool) and its CIR-D rule. CIResNet-43 is a two-stage
network without the stem max-pool (stride 4), its CIR-D being the 4th of 14 units (spec §2.4.3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from siam_core.registry import BACKBONES

_EXPANSION = 4


def crop_border(x: Tensor, pixels: int = 1) -> Tensor:
    """Drop ``pixels`` from every border: the features zero padding reached. The copy is
    contiguous, as the official ``center_crop`` makes it, so convolutions see the same layout."""
    return x[:, :, pixels:-pixels, pixels:-pixels].contiguous()


class CIRUnit(nn.Module):
    """CIR bottleneck (DW Fig. 3b); with ``pool`` after it, it is the CIR-D unit (Fig. 3c)."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool = True) -> None:
        super().__init__()
        out = planes * _EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, bias=False), nn.BatchNorm2d(out)
            )
        self.last_relu = last_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        if self.last_relu:
            out = self.relu(out)
        return crop_border(out)


def _check_input(x: Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} expects a (N, 3, H, W) tensor, got {tuple(x.shape)}")


def _he_init(module: nn.Module) -> None:
    """The official init: He-normal over fan-out for convs, BN scale 1 and shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@BACKBONES.register("CIResNet")
class CIResNet(nn.Module):
    """CIResNet-16/19/22/43: a 7x7/2 stem, a 2-pixel crop, then stages of CIR units.

    ``blocks[i]`` units of width ``widths[i]`` form stage i (``layer{i+1}``); the unit with
    index ``downsample_at[i]`` (or none, for -1) is a CIR-D: a 2x2/2 max-pool follows it inside
    the stage, as in the official ``_make_layer(stride2pool=True)``. ``stem_pool`` puts the
    2x2/2 max-pool after the stem crop. The last unit of the network has no ReLU.
    """

    def __init__(
        self,
        blocks: Sequence[int] = (3, 4),
        widths: Sequence[int] = (64, 128),
        downsample_at: Sequence[int] = (-1, 0),
        stem_pool: bool = True,
    ) -> None:
        super().__init__()
        if not blocks or not len(blocks) == len(widths) == len(downsample_at):
            raise ValueError("CIResNet: blocks, widths and downsample_at need one entry per stage")
        if len(blocks) > 2:
            raise ValueError(f"CIResNet has at most two stages, got {len(blocks)}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        self.stem_pool = bool(stem_pool)
        inplanes = 64
        for stage, (n, width, at) in enumerate(zip(blocks, widths, downsample_at, strict=True)):
            if n < 1 or not -1 <= at < n:
                raise ValueError(f"CIResNet stage {stage + 1}: bad unit count {n} or CIR-D {at}")
            last_stage = stage == len(blocks) - 1
            units: list[nn.Module] = []
            for i in range(n):
                units.append(CIRUnit(inplanes, width, last_relu=not (last_stage and i == n - 1)))
                inplanes = width * _EXPANSION
                if i == at:
                    units.append(self.maxpool)
            setattr(self, f"layer{stage + 1}", nn.Sequential(*units))
        self.stages = len(blocks)
        self.out_channels = inplanes
        _he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, "CIResNet")
        x = crop_border(self.relu(self.bn1(self.conv1(x))), 2)
        if self.stem_pool:
            x = self.maxpool(x)
        for stage in range(self.stages):
            x = getattr(self, f"layer{stage + 1}")(x)
        return x


class _Conv1x1Branch(nn.Module):
    """The Inception unit's shortcut: 1x1 conv + BN (eps 1e-3, as the official code)."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn = nn.BatchNorm2d(planes, eps=0.001)
        self.last_relu = last_relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.last_relu else x


class _Bottleneck(nn.Module):
    """The Inception unit's 1x1 -> 3x3 -> 1x1 branch (no shortcut of its own)."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * _EXPANSION, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * _EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        self.last_relu = last_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out) if self.last_relu else out


class CIRInceptionUnit(nn.Module):
    """CIR-Inception (DW Fig. 3d): bottleneck and 1x1 branch concatenated, then cropped."""

    def __init__(self, inplanes: int, planes: int, last_relu: bool = True) -> None:
        super().__init__()
        self.branch3x3 = _Bottleneck(inplanes, planes, last_relu)
        self.branch1x1 = _Conv1x1Branch(inplanes, planes, last_relu)

    def forward(self, x: Tensor) -> Tensor:
        return crop_border(torch.cat([self.branch3x3(x), self.branch1x1(x)], 1))


def _stem_pool_stage(units: list[nn.Module], pool: nn.Module) -> nn.Sequential:
    """Stage 2 of the wide networks: the CIR-D pool after the first unit."""
    return nn.Sequential(units[0], pool, *units[1:])


@BACKBONES.register("CIResInception")
class CIResInception(nn.Module):
    """CIResInception-22 (official ``Incep22``): 3 + 4 CIR-Inception units, 320 / 640 channels."""

    def __init__(self, blocks: Sequence[int] = (3, 4)) -> None:
        super().__init__()
        if len(blocks) != 2 or min(blocks) < 1:
            raise ValueError(f"CIResInception needs two positive stage sizes, got {blocks}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        n1, n2 = blocks
        self.layer1 = nn.Sequential(
            *[CIRInceptionUnit(64 if i == 0 else 320, 64) for i in range(n1)]
        )
        units = [
            CIRInceptionUnit(320 if i == 0 else 640, 128, last_relu=i < n2 - 1) for i in range(n2)
        ]
        self.layer2 = _stem_pool_stage(units, self.maxpool)
        self.out_channels = 640
        _he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, "CIResInception")
        x = self.maxpool1(self.relu(self.bn1(self.conv1(x))))
        return self.layer2(self.layer1(x))


class CIRNeXtUnit(nn.Module):
    """CIR-NeXt (DW Fig. 3e, official ``BasicBlock_C``): 1x1 -> grouped 3x3 -> 1x1 plus a
    (projection) shortcut, added, one BatchNorm (``bn0``) on the sum, ReLU, cropped."""

    def __init__(
        self,
        inplanes: int,
        width: int,
        cardinality: int = 32,
        expansion: int = 2,
        last_relu: bool = True,
    ) -> None:
        super().__init__()
        inner = cardinality * width
        out = inner * expansion
        self.basic = nn.Sequential()
        self.basic.add_module("conv1_0", nn.Conv2d(inplanes, inner, 1, bias=False))
        self.basic.add_module("bn1", nn.BatchNorm2d(inner))
        self.basic.add_module("act0", nn.ReLU())
        self.basic.add_module(
            "conv3_0", nn.Conv2d(inner, inner, 3, padding=1, groups=cardinality, bias=False)
        )
        self.basic.add_module("bn2", nn.BatchNorm2d(inner))
        self.basic.add_module("act1", nn.ReLU())
        self.basic.add_module("conv1_1", nn.Conv2d(inner, out, 1, bias=False))
        self.basic.add_module("bn3", nn.BatchNorm2d(out))
        self.shortcut = nn.Sequential()
        if inplanes != out:
            self.shortcut.add_module("0", nn.Conv2d(inplanes, out, 1, bias=False))
        self.bn0 = nn.BatchNorm2d(out)
        self.last_relu = last_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn0(self.basic(x) + self.shortcut(x))
        return crop_border(torch.relu(out) if self.last_relu else out)


@BACKBONES.register("CIResNeXt")
class CIResNeXt(nn.Module):
    """CIResNeXt-22 (official ``ResNeXt22``): 32 groups, width 4 then 8, 256 / 512 channels."""

    def __init__(
        self, blocks: Sequence[int] = (3, 4), cardinality: int = 32, width: int = 4
    ) -> None:
        super().__init__()
        if len(blocks) != 2 or min(blocks) < 1:
            raise ValueError(f"CIResNeXt needs two positive stage sizes, got {blocks}")
        self.conv0 = nn.Conv2d(3, 64, 7, stride=2, padding=0)
        self.bn0 = nn.BatchNorm2d(64)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        n1, n2 = blocks
        inplanes, units1 = 64, []
        for _ in range(n1):
            units1.append(CIRNeXtUnit(inplanes, width, cardinality))
            inplanes = 2 * cardinality * width
        self.layer1 = nn.Sequential(*units1)
        units2 = []
        for i in range(n2):
            units2.append(CIRNeXtUnit(inplanes, 2 * width, cardinality, last_relu=i < n2 - 1))
            inplanes = 4 * cardinality * width
        self.layer2 = _stem_pool_stage(units2, self.maxpool)
        self.out_channels = inplanes
        _he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, "CIResNeXt")
        x = self.maxpool1(torch.relu(self.bn0(self.conv0(x))))
        return self.layer2(self.layer1(x))
