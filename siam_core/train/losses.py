"""RPN losses: cross-entropy on sampled anchors, L1-type loss on normalised offsets, optional IoU.

Head outputs follow the pysot layout (pysot-compat.md): cls (B, 2k, S, S) with background for
anchors 0..k-1 then foreground; loc (B, 4k, S, S) with dx for all anchors, then dy, dw, dh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossConfig:
    """Loss options. Defaults are pysot's (seeds-spec §5.4, T1): balanced CE, weighted L1, 1.2.

    ``loc_type`` is ``l1`` (pysot) or ``smooth_l1`` (SiamRPN Eq. 4 with ``sigma``); ``cls_balance``
    averages positives and negatives separately and weights them 0.5 each (pysot) instead of one
    mean over all sampled anchors (paper). ``iou_weight`` > 0 adds ``1 - IoU`` on positives.
    """

    cls_weight: float = 1.0
    loc_weight: float = 1.2
    loc_type: str = "l1"
    sigma: float = 3.0
    cls_balance: bool = True
    iou_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.loc_type not in ("l1", "smooth_l1"):
            raise ValueError(f"loss.loc_type must be 'l1' or 'smooth_l1', got {self.loc_type!r}")
        if self.sigma <= 0:
            raise ValueError(f"loss.sigma must be > 0, got {self.sigma}")
        if min(self.cls_weight, self.loc_weight, self.iou_weight) < 0:
            raise ValueError("loss weights must be >= 0")


def split_cls(cls: torch.Tensor) -> torch.Tensor:
    """(B, 2k, S, S) -> (B, k, S, S, 2) logits (background, foreground) per anchor."""
    b, c, h, w = cls.shape
    return cls.view(b, 2, c // 2, h, w).permute(0, 2, 3, 4, 1)


def split_loc(loc: torch.Tensor) -> torch.Tensor:
    """(B, 4k, S, S) -> (B, 4, k, S, S), the layout of the regression targets."""
    b, c, h, w = loc.shape
    return loc.view(b, 4, c // 4, h, w)


def cls_loss(cls: torch.Tensor, label: torch.Tensor, balance: bool = True) -> torch.Tensor:
    """Cross-entropy over anchors labelled 0 or 1; label -1 is ignored. ``cls`` holds 2k
    softmax logits (pysot) or, with as many channels as ``label``, one sigmoid logit per
    anchor (SiamDW's ``RPN_Up``) or per response cell (SiamFC's logistic loss, DW Eq. 2)."""
    if cls.shape[1] == label.shape[1]:
        x = cls.float()
        logp = torch.stack([F.logsigmoid(-x), F.logsigmoid(x)], dim=-1)
    else:
        logp = F.log_softmax(split_cls(cls).float(), dim=-1)
    pos = label == 1
    neg = label == 0
    zero = logp.sum() * 0.0
    if not balance:
        sel = pos | neg
        if not sel.any():
            return zero
        return -(logp[..., 1][pos].sum() + logp[..., 0][neg].sum()) / sel.sum()
    loss_pos = -logp[..., 1][pos].mean() if pos.any() else zero
    loss_neg = -logp[..., 0][neg].mean() if neg.any() else zero
    return 0.5 * loss_pos + 0.5 * loss_neg


def smooth_l1(diff: torch.Tensor, sigma: float) -> torch.Tensor:
    """SiamRPN Eq. 4: 0.5 s^2 x^2 for |x| < 1/s^2, else |x| - 1/(2 s^2)."""
    s2 = sigma * sigma
    ad = diff.abs()
    return torch.where(ad < 1.0 / s2, 0.5 * s2 * diff * diff, ad - 0.5 / s2)


def loc_loss(
    loc: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    loc_type: str = "l1",
    sigma: float = 3.0,
) -> torch.Tensor:
    """Per-anchor sum over (dx, dy, dw, dh), weighted (1/#pos on positives), summed, / batch."""
    diff = split_loc(loc).float() - target
    per = diff.abs() if loc_type == "l1" else smooth_l1(diff, sigma)
    return (per.sum(dim=1) * weight).sum() / loc.shape[0]


def _deltas_to_boxes(delta: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """(B, 4, k, S, S) offsets on (4, k, S, S) anchors (cx, cy, w, h) -> corner boxes."""
    cx = delta[:, 0] * anchors[2] + anchors[0]
    cy = delta[:, 1] * anchors[3] + anchors[1]
    w = torch.exp(delta[:, 2].clamp(max=10.0)) * anchors[2]
    h = torch.exp(delta[:, 3].clamp(max=10.0)) * anchors[3]
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def iou_loss(
    loc: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, anchors: torch.Tensor
) -> torch.Tensor:
    """``1 - IoU`` of decoded predictions and targets on positives, weighted like ``loc_loss``.

    ``anchors`` is (4, k, S, S): centre x, centre y, width, height in patch pixels.
    """
    pred = _deltas_to_boxes(split_loc(loc).float(), anchors)
    gt = _deltas_to_boxes(target, anchors)
    iw = (torch.minimum(pred[:, 2], gt[:, 2]) - torch.maximum(pred[:, 0], gt[:, 0])).clamp(min=0)
    ih = (torch.minimum(pred[:, 3], gt[:, 3]) - torch.maximum(pred[:, 1], gt[:, 1])).clamp(min=0)
    inter = iw * ih
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    iou = inter / (area_p + area_g - inter).clamp(min=1e-6)
    return ((1.0 - iou) * weight).sum() / loc.shape[0]


def rpn_loss(
    cls: torch.Tensor,
    loc: torch.Tensor,
    label_cls: torch.Tensor,
    label_loc: torch.Tensor,
    label_weight: torch.Tensor,
    cfg: LossConfig,
    anchors: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """All loss terms and their weighted ``total``; ``anchors`` is needed when iou_weight > 0."""
    out = {
        "cls": cls_loss(cls, label_cls, cfg.cls_balance),
        "loc": loc_loss(loc, label_loc, label_weight, cfg.loc_type, cfg.sigma),
    }
    total = cfg.cls_weight * out["cls"] + cfg.loc_weight * out["loc"]
    if cfg.iou_weight > 0:
        if anchors is None:
            raise ValueError("the IoU loss needs the anchor grid")
        out["iou"] = iou_loss(loc, label_loc, label_weight, anchors)
        total = total + cfg.iou_weight * out["iou"]
    out["total"] = total
    return out


def response_loss(
    response: torch.Tensor, label: torch.Tensor, cfg: LossConfig
) -> dict[str, torch.Tensor]:
    """SiamFC's logistic loss on the (B, 1, S, S) response, positives and negatives weighted
    0.5 each when ``cls_balance`` (SiamDW ``_weighted_BCE``); ``total`` = cls_weight x it."""
    cls = cls_loss(response, label, cfg.cls_balance)
    return {"cls": cls, "total": cfg.cls_weight * cls}
