"""Correlation heads: SiamFC cross-correlation, SiamRPN up-channel RPN, SiamRPN++ depth-wise RPN.

Every head takes lists of template / search feature maps (one per level) and splits its work in
two, as tracking needs it (seeds-spec §1.5): ``template(zfs)`` runs once per target and returns
the precomputed kernels; ``track(kernels, xfs)`` runs per frame. ``forward(zfs, xfs)`` chains
both, for export and training. Module and parameter names follow pysot
(``pysot/models/head/rpn.py``) so its checkpoints load unchanged.

RPN heads return ``(cls, loc)`` with 2k and 4k channels in pysot's blocked layout: channels
0..k-1 background, k..2k-1 foreground; dx for all anchors, then dy, dw, dh (pysot-compat.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siam_core.registry import HEADS

Kernels = list[torch.Tensor]


def xcorr_fast(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Batched full cross-correlation as one grouped convolution.

    ``x`` is (B, C, H, W); ``kernel`` is (B * N, C, h, w): N kernels of C channels per sample.
    Returns (B, N, H - h + 1, W - w + 1); each sample is correlated only with its own kernels.
    """
    batch, channels = x.shape[0], x.shape[1]
    if kernel.shape[1] != channels or kernel.shape[0] % batch:
        raise ValueError(
            f"xcorr_fast: kernel {tuple(kernel.shape)} does not fit search {tuple(x.shape)}"
        )
    out = F.conv2d(x.reshape(1, batch * channels, x.shape[2], x.shape[3]), kernel, groups=batch)
    return out.reshape(batch, -1, out.shape[2], out.shape[3])


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depth-wise cross-correlation: channel c of ``x`` with channel c of ``kernel`` only.

    ``x`` is (B, C, H, W), ``kernel`` (B, C, h, w); one grouped convolution with B * C groups.
    """
    if kernel.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"xcorr_depthwise: kernel {tuple(kernel.shape)} does not fit search {tuple(x.shape)}"
        )
    # sizes from the kernel (equal to x's, checked above): an exported graph then knows the
    # grouped convolution's weight shape even when the search size is dynamic
    batch, channels = kernel.shape[0], kernel.shape[1]
    out = F.conv2d(
        x.reshape(1, batch * channels, x.shape[2], x.shape[3]),
        kernel.reshape(batch * channels, 1, kernel.shape[2], kernel.shape[3]),
        groups=batch * channels,
    )
    return out.reshape(batch, channels, out.shape[2], out.shape[3])


def _one_level(feats: Sequence[torch.Tensor], head: str) -> torch.Tensor:
    if len(feats) != 1:
        raise ValueError(f"{head} takes one feature level, got {len(feats)}")
    return feats[0]


@HEADS.register("XCorrHead")
class XCorrHead(nn.Module):
    """SiamFC head: ``out_scale * (phi(z) * phi(x)) + bias``, a one-channel response map.

    Correlates the last feature level. ``out_scale`` keeps initial responses small (SiamFC /
    SiamDW use 0.001 for AlexNet, 0.1 for CIR backbones, seeds-spec §4.1). SiamDW's
    ``Corr_Up`` has no bias (``bias: false``).
    """

    def __init__(self, out_scale: float = 0.001, bias: bool = True) -> None:
        super().__init__()
        self.out_scale = float(out_scale)
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def template(self, zfs: Sequence[torch.Tensor]) -> Kernels:
        z = zfs[-1]
        return [z.reshape(-1, z.shape[1], z.shape[2], z.shape[3])]

    def track(self, kernels: Kernels, xfs: Sequence[torch.Tensor]) -> torch.Tensor:
        out = xcorr_fast(xfs[-1], kernels[0]) * self.out_scale
        return out if self.bias is None else out + self.bias

    def forward(self, zfs: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.track(self.template(zfs), xfs)


@HEADS.register("UPChannelRPN")
class UPChannelRPN(nn.Module):
    """SiamRPN's up-channel head (RPN §3.2): the template is lifted to 2k*C and 4k*C channels and
    reshaped into 2k / 4k correlation kernels of C channels; a 1x1 conv adjusts the regression.

    The lifted kernels are the expensive part of this head (18 M of its ~19 M parameters), so
    ``template`` computes them once per target, not per frame.
    """

    def __init__(
        self,
        anchor_num: int = 5,
        feature_in: int = 256,
        out_channels: int | None = None,
        cls_per_anchor: int = 2,
    ) -> None:
        """``out_channels`` (default ``feature_in``) is the kernels' width: SiamDW's SiamRPN+
        lifts 512 backbone channels into 256-channel kernels; ``cls_per_anchor`` 1 gives its
        one sigmoid logit per anchor (``RPN_Up``) instead of background/foreground logits."""
        super().__init__()
        if cls_per_anchor not in (1, 2):
            raise ValueError(f"UPChannelRPN cls_per_anchor must be 1 or 2, got {cls_per_anchor}")
        self.anchor_num = int(anchor_num)
        width = int(out_channels or feature_in)
        self.kernel_channels = width
        cls_out, loc_out = cls_per_anchor * self.anchor_num, 4 * self.anchor_num
        self.template_cls_conv = nn.Conv2d(feature_in, width * cls_out, kernel_size=3)
        self.template_loc_conv = nn.Conv2d(feature_in, width * loc_out, kernel_size=3)
        self.search_cls_conv = nn.Conv2d(feature_in, width, kernel_size=3)
        self.search_loc_conv = nn.Conv2d(feature_in, width, kernel_size=3)
        self.loc_adjust = nn.Conv2d(loc_out, loc_out, kernel_size=1)

    def template(self, zfs: Sequence[torch.Tensor]) -> Kernels:
        z = _one_level(zfs, "UPChannelRPN")
        channels = self.kernel_channels
        cls_k = self.template_cls_conv(z)
        loc_k = self.template_loc_conv(z)
        # (B, N*C, h, w) -> (B*N, C, h, w): kernel n of sample b is channels n*C..(n+1)*C-1
        return [
            cls_k.reshape(-1, channels, cls_k.shape[2], cls_k.shape[3]),
            loc_k.reshape(-1, channels, loc_k.shape[2], loc_k.shape[3]),
        ]

    def track(
        self, kernels: Kernels, xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = _one_level(xfs, "UPChannelRPN")
        cls = xcorr_fast(self.search_cls_conv(x), kernels[0])
        loc = self.loc_adjust(xcorr_fast(self.search_loc_conv(x), kernels[1]))
        return cls, loc

    def forward(
        self, zfs: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.track(self.template(zfs), xfs)


def _conv_bn_relu(cin: int, cout: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=kernel_size, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DepthwiseXCorr(nn.Module):
    """One SiamRPN++ branch (RPN++ §3.4, Fig. 4c): non-shared 3x3 conv-BN-ReLU on template and
    search, depth-wise correlation, 1x1 conv-BN-ReLU, 1x1 conv to ``out_channels``."""

    def __init__(
        self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        """The template's correlation kernel; fixed for a target, so computed once."""
        return self.conv_kernel(z)

    def search(self, kernel: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(xcorr_depthwise(self.conv_search(x), kernel))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.search(self.kernel(z), x)


@HEADS.register("DepthwiseRPN")
class DepthwiseRPN(nn.Module):
    """Depth-wise RPN on one feature level: a ``cls`` (2k) and a ``loc`` (4k) branch."""

    def __init__(self, anchor_num: int = 5, in_channels: int = 256, out_channels: int = 256):
        super().__init__()
        self.anchor_num = int(anchor_num)
        self.cls = DepthwiseXCorr(in_channels, out_channels, 2 * self.anchor_num)
        self.loc = DepthwiseXCorr(in_channels, out_channels, 4 * self.anchor_num)

    def template(self, zfs: Sequence[torch.Tensor]) -> Kernels:
        z = _one_level(zfs, "DepthwiseRPN")
        return [self.cls.kernel(z), self.loc.kernel(z)]

    def track(
        self, kernels: Kernels, xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = _one_level(xfs, "DepthwiseRPN")
        return self.cls.search(kernels[0], x), self.loc.search(kernels[1], x)

    def forward(
        self, zfs: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.track(self.template(zfs), xfs)


def weighted_sum(maps: list[torch.Tensor], weights: torch.Tensor | None) -> torch.Tensor:
    """Sum the maps in level order, each times its weight when weights are given."""
    total = maps[0] if weights is None else maps[0] * weights[0]
    for i in range(1, len(maps)):
        total = total + (maps[i] if weights is None else maps[i] * weights[i])
    return total


@HEADS.register("MultiRPN")
class MultiRPN(nn.Module):
    """One depth-wise RPN per level (``rpn2``, ``rpn3``, ... as pysot numbers them), fused by a
    softmax-weighted sum with separate cls / loc weights when ``weighted`` (RPN++ §3.3, Eq. 2),
    else by a plain average (pysot's MobileNetV2 model)."""

    def __init__(
        self,
        anchor_num: int = 5,
        in_channels: Sequence[int] = (256, 256, 256),
        weighted: bool = False,
    ) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError("MultiRPN needs at least one level in in_channels")
        self.anchor_num = int(anchor_num)
        self.levels = len(in_channels)
        self.weighted = bool(weighted)
        for i, channels in enumerate(in_channels):
            # pysot: levels are named from 2 (conv3 = layer2)
            self.add_module(f"rpn{i + 2}", DepthwiseRPN(anchor_num, channels, channels))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.levels))
            self.loc_weight = nn.Parameter(torch.ones(self.levels))

    def _rpn(self, level: int) -> DepthwiseRPN:
        return getattr(self, f"rpn{level + 2}")

    def template(self, zfs: Sequence[torch.Tensor]) -> Kernels:
        if len(zfs) != self.levels:
            raise ValueError(f"MultiRPN has {self.levels} levels, got {len(zfs)} template maps")
        kernels: Kernels = []
        for level, z in enumerate(zfs):
            kernels.extend(self._rpn(level).template([z]))
        return kernels

    def track(
        self, kernels: Kernels, xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if len(xfs) != self.levels or len(kernels) != 2 * self.levels:
            raise ValueError(
                f"MultiRPN has {self.levels} levels, got {len(xfs)} search maps and "
                f"{len(kernels)} kernels"
            )
        outs = [
            self._rpn(level).track(kernels[2 * level : 2 * level + 2], [x])
            for level, x in enumerate(xfs)
        ]
        cls_maps = [o[0] for o in outs]
        loc_maps = [o[1] for o in outs]
        if self.weighted:
            return (
                weighted_sum(cls_maps, F.softmax(self.cls_weight, 0)),
                weighted_sum(loc_maps, F.softmax(self.loc_weight, 0)),
            )
        return weighted_sum(cls_maps, None) / self.levels, weighted_sum(
            loc_maps, None
        ) / self.levels

    def forward(
        self, zfs: Sequence[torch.Tensor], xfs: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.track(self.template(zfs), xfs)
