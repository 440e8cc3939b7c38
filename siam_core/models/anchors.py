"""RPN anchors, shared by inference (proposal decoding) and training (label assignment).

Facts from pysot (STVIR/pysot, ``pysot/utils/anchor.py`` and ``SiamRPNTracker.generate_anchor``),
restated in ``shared/design/seeds-spec.md`` §4.5 and ``pysot-compat.md``: base side
``stride * scale``, ``ws = int(sqrt(stride**2 / r))``, ``hs = int(ws * r)`` with r = h / w; the
grid is centred on the search-patch centre with origin ``-(S // 2) * stride``; flattened order is
anchor-major, ``index = a * S**2 + y * S + x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorSpec:
    """Anchor shapes of an RPN head: k = len(ratios) * len(scales) anchors per cell."""

    stride: int = 8
    ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    scales: tuple[float, ...] = (8.0,)

    @classmethod
    def from_config(cls, cfg: dict | None) -> AnchorSpec:
        cfg = dict(cfg or {})
        unknown = set(cfg) - {"stride", "ratios", "scales"}
        if unknown:
            raise ValueError(f"unknown anchor keys: {sorted(unknown)}")
        try:
            return cls(
                stride=int(cfg.get("stride", cls.stride)),
                ratios=tuple(float(r) for r in cfg.get("ratios", cls.ratios)),
                scales=tuple(float(s) for s in cfg.get("scales", cls.scales)),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"anchor settings must be numbers: {cfg} ({exc})") from exc

    @property
    def num(self) -> int:
        return len(self.ratios) * len(self.scales)

    def sizes(self) -> np.ndarray:
        """(k, 2) anchor widths and heights, ratio-major then scale, as pysot orders them."""
        area = self.stride * self.stride
        out = []
        for r in self.ratios:
            ws = int(math.sqrt(area / r))
            hs = int(ws * r)
            for s in self.scales:
                out.append((ws * s, hs * s))
        return np.asarray(out, dtype=np.float32)


def anchor_grid(spec: AnchorSpec, score_size: int) -> np.ndarray:
    """(k * S * S, 4) anchors as (cx, cy, w, h) relative to the search-patch centre.

    Row ``a * S * S + y * S + x`` is anchor ``a`` at output cell (y, x): the same flattening as
    the head's (2k | 4k, S, S) outputs after reshaping to (k, S, S).
    """
    sizes = spec.sizes()
    offsets = (np.arange(score_size, dtype=np.float32) - (score_size // 2)) * spec.stride
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    k, cells = len(sizes), score_size * score_size
    grid = np.empty((k, cells, 4), dtype=np.float32)
    grid[:, :, 0] = xx.reshape(1, -1)
    grid[:, :, 1] = yy.reshape(1, -1)
    grid[:, :, 2] = sizes[:, 0:1]
    grid[:, :, 3] = sizes[:, 1:2]
    return grid.reshape(-1, 4)


def anchor_grid_centered(spec: AnchorSpec, score_size: int, centre: float) -> np.ndarray:
    """(k, S, S, 4) anchors (cx, cy, w, h) in search-patch pixels for training targets.

    ``centre`` is the patch centre in pixels (e.g. 255 // 2); the grid sits where
    :func:`anchor_grid` puts it, shifted from the centre to absolute patch coordinates.
    """
    rel = anchor_grid(spec, score_size).reshape(spec.num, score_size, score_size, 4).copy()
    rel[..., 0] += centre
    rel[..., 1] += centre
    return rel


def decode(deltas: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Apply (dx, dy, dw, dh) rows to (cx, cy, w, h) anchors (seeds-spec §4.6)."""
    out = np.empty_like(anchors)
    out[:, 0] = deltas[:, 0] * anchors[:, 2] + anchors[:, 0]
    out[:, 1] = deltas[:, 1] * anchors[:, 3] + anchors[:, 1]
    out[:, 2] = np.exp(deltas[:, 2]) * anchors[:, 2]
    out[:, 3] = np.exp(deltas[:, 3]) * anchors[:, 3]
    return out


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode`: regression targets of (cx, cy, w, h) boxes on anchors."""
    out = np.empty(np.broadcast_shapes(boxes.shape, anchors.shape), dtype=np.float32)
    out[..., 0] = (boxes[..., 0] - anchors[..., 0]) / anchors[..., 2]
    out[..., 1] = (boxes[..., 1] - anchors[..., 1]) / anchors[..., 3]
    out[..., 2] = np.log(boxes[..., 2] / anchors[..., 2])
    out[..., 3] = np.log(boxes[..., 3] / anchors[..., 3])
    return out
