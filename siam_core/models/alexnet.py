"""The legacy AlexNet of SiamRPN / DaSiamRPN / pysot: no padding, BatchNorm, total stride 8.

Layout (pysot ``pysot/models/backbone/alexnet.py``, seeds-spec §2.1): conv 11/2 -> BN -> max-pool
3/2 -> ReLU, conv 5 -> BN -> max-pool 3/2 -> ReLU, conv 3 -> BN -> ReLU (twice), conv 3 -> BN with
no ReLU. Widths 96/256/384/384/256 times ``width_mult`` (the input stays 3 channels). The layers
live in one ``features`` Sequential so the state-dict keys are pysot's
``backbone.features.{0,1,4,5,8,9,11,12,14,15}``.
"""

from __future__ import annotations

import torch
from torch import nn

from siam_core.registry import BACKBONES

# pysot: AlexNetLegacy.configs = [3, 96, 256, 384, 384, 256]
_WIDTHS = (96, 256, 384, 384, 256)


@BACKBONES.register("AlexNetLegacy")
class AlexNetLegacy(nn.Module):
    """Padding-free AlexNet; 127 -> 6x6 and 255 -> 22x22 feature maps (stride 8)."""

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        if not width_mult > 0:
            raise ValueError(f"AlexNetLegacy: width_mult must be positive, got {width_mult}")
        c1, c2, c3, c4, c5 = (int(w * width_mult) for w in _WIDTHS)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, kernel_size=11, stride=2),
            nn.BatchNorm2d(c1),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.BatchNorm2d(c2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, kernel_size=3),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, kernel_size=3),
            nn.BatchNorm2d(c4),
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, kernel_size=3),
            nn.BatchNorm2d(c5),
        )
        self.out_channels = [c5]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the conv5 map as a one-element list (backbones return one map per level)."""
        return [self.features(x)]


@BACKBONES.register("AlexNetLegacy2")
class AlexNetLegacy2(nn.Module):
    """The original SiamFC AlexNet as DROL holds it (``alexnetlegacy2``, the network of
    SiamFC's 2016 MatConvNet release): conv 11/2 -> BN -> ReLU -> max-pool 3/2, conv 5
    (2 groups) -> BN -> ReLU -> max-pool 3/2, conv 3 -> BN -> ReLU, conv 3 (2 groups) -> BN ->
    ReLU, conv 3 (2 groups) with a bias and no BN. 127 -> 6x6 and 255 -> 22x22, 256 channels.

    Keys are DROL's: ``backbone.features.{0,1,4,5,8,9,11,12,14}`` and ``backbone.corr_bias``,
    the response bias of DROL's training loss (``conv * 1e-3 + corr_bias``; DROL's tracker does
    not add it: facts from DROL ``pysot/models/backbone/alexnet.py``, ``model_builder.py``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, 2),
            nn.BatchNorm2d(96),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, 1, groups=2),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, 1),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, 1, groups=2),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, 1, groups=2),
        )
        self.corr_bias = nn.Parameter(torch.zeros(1))
        self.out_channels = [256]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The conv5 map as a one-element list."""
        return [self.features(x)]
