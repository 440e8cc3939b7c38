"""Adjust necks of SiamRPN++: a 1×1 conv + BN per level, and the template centre crop.

SiamRPN++ (spec §2.2) keeps padding in its deep backbones, so a 127 template yields 15×15
maps whose border cells saw padding; the neck keeps only the centre 7×7, which still covers
the whole target. Module and key names are pysot's (``pysot/models/neck/neck.py``):
``downsample`` for one level, ``downsample2``, ``downsample3``, … for several.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from siam_core.registry import NECKS

# pysot AdjustLayer: maps narrower than this are templates and get centre-cropped; search
# maps (31×31 at 255) are not.
CROP_BELOW = 20


def _check_levels(features: Sequence[Tensor], levels: int, owner: str) -> None:
    if isinstance(features, Tensor) or len(features) != levels:
        got = "a tensor" if isinstance(features, Tensor) else f"{len(features)} maps"
        raise ValueError(f"{owner} expects a list of {levels} feature maps, got {got}")


@NECKS.register("AdjustLayer")
class AdjustLayer(nn.Module):
    """One level: 1×1 conv (no bias) + BN to ``out_channels``, then the template centre crop.

    As a neck on its own it takes and returns a one-element list, like every neck here.
    """

    def __init__(self, in_channels: int, out_channels: int, center_size: int = 7) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"AdjustLayer channels must be positive, got {in_channels} -> {out_channels}"
            )
        if not 1 <= center_size < CROP_BELOW:
            raise ValueError(f"AdjustLayer center_size must be in 1..{CROP_BELOW - 1}")
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.in_channels = in_channels
        self.center_size = center_size

    def adjust(self, x: Tensor) -> Tensor:
        """Project one map; crop the centre ``center_size`` square of a template map.

        pysot decides by the width alone (``x.size(3) < 20``) and uses the same offset
        ``(width - center_size) // 2`` for rows and columns; 15 → rows/cols 4…10.
        The decision depends only on the static shape, so traced/exported graphs stay valid.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"AdjustLayer expects (N, {self.in_channels}, H, W) maps, got {tuple(x.shape)}"
            )
        return self.centre_crop(self.downsample(x))

    def centre_crop(self, x: Tensor) -> Tensor:
        """``adjust``'s crop alone: the centre ``center_size`` square of a map narrower than
        20, else the map (a 1x1 convolution commutes with it, ``siam_core.deploy.fold``)."""
        width = x.shape[3]
        if width < CROP_BELOW:
            if width < self.center_size:
                raise ValueError(
                    f"template map {width} wide is smaller than center_size {self.center_size}"
                )
            left = (width - self.center_size) // 2
            x = x[:, :, left : left + self.center_size, left : left + self.center_size]
        return x

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        _check_levels(features, 1, "AdjustLayer")
        return [self.adjust(features[0])]


@NECKS.register("AdjustAllLayer")
class AdjustAllLayer(nn.Module):
    """One ``AdjustLayer`` per backbone level; lists in, lists out.

    pysot names a single level ``downsample`` and several ``downsample{i + 2}`` (i from 0),
    so its checkpoints' ``neck.downsample2.downsample.0.weight`` … load as they are.
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: Sequence[int], center_size: int = 7
    ) -> None:
        super().__init__()
        if len(in_channels) == 0 or len(in_channels) != len(out_channels):
            raise ValueError(
                "AdjustAllLayer needs one out channel count per in channel count, got "
                f"in {list(in_channels)} and out {list(out_channels)}"
            )
        self.names = (
            ["downsample"]
            if len(in_channels) == 1
            else [f"downsample{i + 2}" for i in range(len(in_channels))]
        )
        for name, cin, cout in zip(self.names, in_channels, out_channels, strict=True):
            self.add_module(name, AdjustLayer(int(cin), int(cout), center_size))
        self.out_channels = [int(c) for c in out_channels]

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        _check_levels(features, len(self.names), "AdjustAllLayer")
        return [getattr(self, name).adjust(f) for name, f in zip(self.names, features, strict=True)]
