"""Frames with the target taken out of view, built from the real frame itself.

Used to measure what a tracker's score does when its target is gone (long-term thresholds,
``tools/siamfc_thresholds.py``) and by the long-term tests: the target's box is covered by the
frame's own background from beside it, so nothing in the frame looks artificial except the seam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def hide_target(frame: np.ndarray, box: Sequence[float], margin: int = 6) -> np.ndarray:
    """``frame`` with the target's box (plus ``margin``) replaced by the frame's own background:
    the same-sized region right next to it (right, left, below or above, the first that fits
    inside the frame). Raises ``ValueError`` when none fits."""
    out = frame.copy()
    height, width = frame.shape[:2]
    x, y, w, h = box
    x0, y0 = max(0, int(x) - margin), max(0, int(y) - margin)
    x1 = min(width, math.ceil(x + w) + margin)
    y1 = min(height, math.ceil(y + h) + margin)
    bw, bh = x1 - x0, y1 - y0
    for sx, sy in ((x1, y0), (x0 - bw, y0), (x0, y1), (x0, y0 - bh)):
        if sx >= 0 and sy >= 0 and sx + bw <= width and sy + bh <= height:
            out[y0:y1, x0:x1] = frame[sy : sy + bh, sx : sx + bw]
            return out
    raise ValueError(f"no background region beside {box} inside the frame")
