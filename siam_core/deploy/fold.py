"""The search branch with its linear layers composed, for export only.

Two compositions cut the per-frame work of depth-wise RPN heads (SiamRPN++ and its lighter
relatives) without changing what they compute, up to float32 summation order:

* **cls and loc share one search convolution.** Each level's two ``DepthwiseXCorr`` branches
  start with a 3x3 conv-BN-ReLU on the same map; their weights are stacked into one
  convolution with twice the output channels (one larger GEMM where there were two).
* **The neck folds into that convolution.** The neck's ``AdjustLayer`` is a 1x1 convolution
  and BatchNorm, both linear, and the search convolution has no padding, so every output
  pixel sees whole 1x1 inputs: the two compose into one kxk convolution from the backbone's
  channels, with the neck's shift carried into the bias (``W' = s3 * W3 . W1``,
  ``b' = s3 * sum(W3 . b1) + t3``). It is done on a level only where it needs fewer
  multiply-adds: for C backbone channels, H neck channels and k x k taps, when
  ``C * 2H * k^2 < C * H + 2H * H * k^2`` (the default model's 32- and 96-channel levels;
  not its 320-channel one).

``FoldedSearch`` gives ``features`` (the maps the head takes: the neck's for unfolded levels,
the backbone's for folded ones) and ``head`` (kernels and those maps to ``cls``, ``loc``). The
template branch is not touched: it runs once per target. PyTorch's own tracker keeps the
modules as trained (pysot parity); only the exported graphs are folded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from siam_core.models.heads import (
    DepthwiseRPN,
    DepthwiseXCorr,
    MultiRPN,
    weighted_sum,
    xcorr_depthwise,
)
from siam_core.models.model import SiameseRPN
from siam_core.models.neck import AdjustAllLayer, AdjustLayer


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _plain_conv(conv: nn.Module) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and conv.bias is None
        and conv.groups == 1
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.dilation) == (1, 1)
        and tuple(conv.padding) == (0, 0)
    )


class _FoldedLevel(nn.Module):
    """One level of a depth-wise RPN: one search convolution for cls and loc (with the neck
    composed into it when ``adjust`` is given), the two correlations and heads as trained."""

    def __init__(self, rpn: DepthwiseRPN, adjust: AdjustLayer | None) -> None:
        super().__init__()
        weights, biases = [], []
        for branch in (rpn.cls, rpn.loc):
            conv, bn = branch.conv_search[0], branch.conv_search[1]
            scale, shift = _bn_affine(bn)
            w = conv.weight * scale[:, None, None, None]
            b = shift
            if adjust is not None:
                s1, t1 = _bn_affine(adjust.downsample[1])
                w1 = adjust.downsample[0].weight[:, :, 0, 0] * s1[:, None]  # (H, C)
                b = b + torch.einsum("omyx,m->o", w, t1)
                w = torch.einsum("omyx,mc->ocyx", w, w1)
            weights.append(w)
            biases.append(b)
        self.hidden = int(weights[0].shape[0])
        self.search = nn.Conv2d(
            int(weights[0].shape[1]), 2 * self.hidden, tuple(weights[0].shape[2:]), bias=True
        )
        self.search.weight.data.copy_(torch.cat(weights))
        self.search.bias.data.copy_(torch.cat(biases))
        self.cls_head, self.loc_head = rpn.cls.head, rpn.loc.head

    def forward(
        self, kernels: Sequence[torch.Tensor], x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s = F.relu(self.search(x))
        cls = self.cls_head(xcorr_depthwise(s[:, : self.hidden], kernels[0]))
        loc = self.loc_head(xcorr_depthwise(s[:, self.hidden :], kernels[1]))
        return cls, loc


def _fold_pays(adjust: AdjustLayer, branch: DepthwiseXCorr) -> bool:
    """Fewer multiply-adds per output pixel with the neck composed in (module doc)."""
    conv = adjust.downsample[0]
    c, h = int(conv.in_channels), int(conv.out_channels)
    taps = int(branch.conv_search[0].kernel_size[0] * branch.conv_search[0].kernel_size[1])
    return c * 2 * h * taps < c * h + 2 * h * h * taps


def _levels(head: nn.Module) -> list[nn.Module]:
    """A head's per-level RPNs (one for a single-level head)."""
    return [head._rpn(i) for i in range(head.levels)] if isinstance(head, MultiRPN) else [head]


def foldable(net: nn.Module) -> bool:
    """Whether ``net`` has the structure this module composes: a depth-wise RPN head (one or
    several levels) whose search convolutions are plain kxk conv-BN-ReLU, behind no neck or
    an ``AdjustAllLayer``/``AdjustLayer`` neck."""
    if not isinstance(net, SiameseRPN):
        return False
    levels = _levels(net.rpn_head)
    if not all(isinstance(r, DepthwiseRPN) for r in levels):
        return False
    for rpn in levels:
        for branch in (rpn.cls, rpn.loc):
            seq = branch.conv_search
            if not (_plain_conv(seq[0]) and isinstance(seq[1], nn.BatchNorm2d)):
                return False
            if not isinstance(seq[2], nn.ReLU):
                return False
    neck = getattr(net, "neck", None)
    return neck is None or isinstance(neck, AdjustAllLayer | AdjustLayer)


class FoldedSearch(nn.Module):
    """The search branch of a ``foldable`` eval-mode network, composed (module doc)."""

    def __init__(self, net: SiameseRPN) -> None:
        super().__init__()
        if not foldable(net):
            raise ValueError(f"{type(net).__name__}: not a depth-wise RPN network to fold")
        head = net.rpn_head
        rpns = _levels(head)
        neck = getattr(net, "neck", None)
        adjusts: list[AdjustLayer | None]
        if neck is None:
            adjusts = [None] * len(rpns)
        elif isinstance(neck, AdjustLayer):
            adjusts = [neck]
        else:
            adjusts = [getattr(neck, name) for name in neck.names]
        if len(adjusts) != len(rpns):
            raise ValueError(f"{len(adjusts)} neck levels for {len(rpns)} head levels")
        self.backbone = net.backbone
        # per level: the neck as trained (Identity without one); on a folded level only its
        # centre crop runs in the features graph, the 1x1 convolution is in the head's
        self.necks = nn.ModuleList(a if a is not None else nn.Identity() for a in adjusts)
        self.folded: list[bool] = []
        levels = []
        with torch.no_grad():
            for rpn, adjust in zip(rpns, adjusts, strict=True):
                fold = adjust is not None and _fold_pays(adjust, rpn.cls)
                self.folded.append(fold)
                levels.append(_FoldedLevel(rpn, adjust if fold else None))
        self.levels = nn.ModuleList(levels)
        self.weights: tuple[torch.Tensor, torch.Tensor] | None = None
        if isinstance(head, MultiRPN):
            self.multi, self.weighted = True, head.weighted
            if head.weighted:
                self.weights = (
                    F.softmax(head.cls_weight.detach(), 0),
                    F.softmax(head.loc_weight.detach(), 0),
                )
        else:
            self.multi, self.weighted = False, False

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The maps the folded head takes, one per level; a map narrower than 20 (a search
        crop not much larger than the exemplar) is cropped as the neck crops it, pysot's rule."""
        feats = self.backbone(x)
        maps = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        out = []
        for neck, folded, m in zip(self.necks, self.folded, maps, strict=True):
            if isinstance(neck, AdjustLayer):
                m = neck.centre_crop(m) if folded else neck.adjust(m)
            out.append(m)
        return out

    def head(
        self, kernels: Sequence[torch.Tensor], feats: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``cls``, ``loc`` as the network's ``rpn_head.track`` gives them."""
        outs = [
            level(kernels[2 * i : 2 * i + 2], x)
            for i, (level, x) in enumerate(zip(self.levels, feats, strict=True))
        ]
        if not self.multi:
            return outs[0]
        cls_maps, loc_maps = [o[0] for o in outs], [o[1] for o in outs]
        if self.weights is not None:
            return weighted_sum(cls_maps, self.weights[0]), weighted_sum(loc_maps, self.weights[1])
        n = len(outs)
        return weighted_sum(cls_maps, None) / n, weighted_sum(loc_maps, None) / n
