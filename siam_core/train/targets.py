"""Anchor labels and regression targets for one search patch (seeds-spec §5.4).

An anchor is positive when its IoU with the target is >= ``pos_iou`` (0.6) and negative when it
is <= ``neg_iou`` (0.3); at most ``max_pos`` (16) positives are kept and the negatives fill the
budget of ``total`` (64) sampled anchors, as the SiamRPN paper says. pysot instead keeps a fixed
``total - max_pos`` negatives; set ``neg_num`` to get that. In a negative pair no anchor is
positive: negatives are drawn from the cells within ``neg_radius`` of the (other) object's
position (pysot: a 7x7 window, 16 anchors), which teaches the head to reject look-alikes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siam_core.models.anchors import AnchorSpec, anchor_grid_centered, encode


@dataclass(frozen=True)
class TargetConfig:
    """Label-assignment options; defaults are the SiamRPN paper's."""

    pos_iou: float = 0.6
    neg_iou: float = 0.3
    total: int = 64
    max_pos: int = 16
    neg_num: int | None = None
    neg_pair_num: int = 16
    neg_radius: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.neg_iou < self.pos_iou <= 1.0:
            raise ValueError(
                f"targets need 0 <= neg_iou < pos_iou <= 1, got {self.neg_iou}, {self.pos_iou}"
            )
        if not 0 < self.max_pos <= self.total:
            raise ValueError(f"targets need 0 < max_pos <= total, got {self.max_pos}, {self.total}")
        if self.neg_num is not None and not 0 < self.neg_num <= self.total:
            raise ValueError(f"targets.neg_num must be in (0, total], got {self.neg_num}")
        if self.neg_pair_num <= 0 or self.neg_radius < 0:
            raise ValueError("targets.neg_pair_num must be > 0 and neg_radius >= 0")


def iou_xyxy(anchors: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of (..., 4) corner boxes with one (4,) corner box."""
    ix1 = np.maximum(anchors[..., 0], box[0])
    iy1 = np.maximum(anchors[..., 1], box[1])
    ix2 = np.minimum(anchors[..., 2], box[2])
    iy2 = np.minimum(anchors[..., 3], box[3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (anchors[..., 2] - anchors[..., 0]) * (anchors[..., 3] - anchors[..., 1])
    area_b = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area_a + area_b - inter)


@dataclass
class AnchorLabels:
    """Labels of one pair: ``cls`` (k, S, S) in {-1 ignore, 0 neg, 1 pos}, ``delta`` (4, k, S, S)
    normalised offsets (seeds-spec §4.6), ``weight`` (k, S, S) = 1 / #positives on positives."""

    cls: np.ndarray
    delta: np.ndarray
    weight: np.ndarray


class AnchorTargets:
    """Assigns labels on the anchor grid of a ``search_size`` patch with a ``score_size`` map."""

    def __init__(
        self, spec: AnchorSpec, score_size: int, search_size: int, cfg: TargetConfig
    ) -> None:
        self.spec = spec
        self.score_size = score_size
        self.search_size = search_size
        self.cfg = cfg
        # pysot: anchors centred on SEARCH_SIZE // 2, where the crop puts the target centre.
        self.anchors = anchor_grid_centered(spec, score_size, float(search_size // 2))
        half = self.anchors[..., 2:] / 2.0
        self.corners = np.concatenate(
            [self.anchors[..., :2] - half, self.anchors[..., :2] + half], axis=-1
        )

    def __call__(self, box: np.ndarray, negative: bool, rng: np.random.Generator) -> AnchorLabels:
        k, size = self.spec.num, self.score_size
        cls = np.full((k, size, size), -1, dtype=np.int64)
        weight = np.zeros((k, size, size), dtype=np.float32)
        box = np.asarray(box, dtype=np.float32)
        if negative:
            delta = np.zeros((4, k, size, size), dtype=np.float32)
            cx, cy = self._cell_of(box)
            r = self.cfg.neg_radius
            window = np.zeros((k, size, size), dtype=bool)
            window[:, max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1] = True
            chosen = _pick(np.flatnonzero(window), self.cfg.neg_pair_num, rng)
            cls.reshape(-1)[chosen] = 0
            return AnchorLabels(cls, delta, weight)

        centre = np.array(
            [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]],
            dtype=np.float32,
        )
        delta = np.moveaxis(encode(centre, self.anchors), -1, 0).astype(np.float32)
        overlap = iou_xyxy(self.corners, box)
        pos = _pick(np.flatnonzero(overlap >= self.cfg.pos_iou), self.cfg.max_pos, rng)
        neg_budget = self.cfg.neg_num if self.cfg.neg_num is not None else self.cfg.total - pos.size
        neg = _pick(np.flatnonzero(overlap <= self.cfg.neg_iou), neg_budget, rng)
        cls.reshape(-1)[pos] = 1
        cls.reshape(-1)[neg] = 0
        if pos.size:
            weight.reshape(-1)[pos] = 1.0 / pos.size
        return AnchorLabels(cls, delta, weight)

    def _cell_of(self, box: np.ndarray) -> tuple[int, int]:
        """Output cell nearest the box centre (clamped to the map)."""
        size, stride, mid = self.score_size, self.spec.stride, self.search_size // 2
        cx = size // 2 + round(((box[0] + box[2]) / 2 - mid) / stride)
        cy = size // 2 + round(((box[1] + box[3]) / 2 - mid) / stride)
        return int(np.clip(cx, 0, size - 1)), int(np.clip(cy, 0, size - 1))


class ResponseTargets:
    """SiamFC's logistic labels on the response map (DW Eq. 2): 1 on the cells within L1
    distance ``radius`` of the cell holding the target centre, 0 elsewhere; negative pairs are
    all 0 (SiamDW ``lib/dataset/siamfc.py``: ``_create_dynamic_logisticloss_label``, rPos 2
    cells, block metric, the centre cell following the search shift). The loss balances the
    two classes itself (``losses.cls_loss``), so ``weight`` stays 0 (no regression)."""

    def __init__(self, score_size: int, search_size: int, stride: int, radius: int = 2) -> None:
        self.score_size, self.search_size, self.stride = score_size, search_size, stride
        self.radius = radius
        mid = float(search_size // 2)
        offsets = (np.arange(score_size) - score_size // 2) * stride + mid
        cy, cx = np.meshgrid(offsets, offsets, indexing="ij")
        side = np.full_like(cx, float(stride))
        # (1, S, S, 4) cell centres as (cx, cy, w, h): the anchor-grid layout pair images use
        self.anchors = np.stack([cx, cy, side, side], axis=-1)[None].astype(np.float32)

    def __call__(self, box: np.ndarray, negative: bool, rng: np.random.Generator) -> AnchorLabels:
        size = self.score_size
        cls = np.zeros((1, size, size), dtype=np.int64)
        if not negative:
            mid = self.search_size // 2
            col = size // 2 + round((box[0] + box[2]) / 2 - mid) // self.stride
            row = size // 2 + round((box[1] + box[3]) / 2 - mid) // self.stride
            yy, xx = np.mgrid[0:size, 0:size]
            cls[0] = (np.abs(xx - col) + np.abs(yy - row)) <= self.radius
        delta = np.zeros((4, 1, size, size), dtype=np.float32)
        return AnchorLabels(cls, delta, np.zeros((1, size, size), dtype=np.float32))


def _pick(indices: np.ndarray, keep: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``keep`` of ``indices``, chosen uniformly without replacement."""
    if indices.size <= keep:
        return indices
    return rng.choice(indices, size=keep, replace=False)
