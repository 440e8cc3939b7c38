"""Paths to the shared real data for the SiamRPN tests (``../shared/data`` from the repo root)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
PARITY = DATA / "parity" / "pysot_siamrpn_alex_dwxcorr"
BAG = DATA / "bag.avi"
SEQUENCES = DATA / "sequences"
INIT = (315.0, 140.0, 112.0, 112.0)  # shared/data/README.md: the parity references' box on bag


def need(path: Path) -> Path:
    """Return ``path``, or skip the test saying which shared file is absent."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


def read_video(path: Path, limit: int | None = None) -> list:
    """Frames of a video as BGR uint8 arrays (OpenCV), at most ``limit``."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if not frames:
        pytest.fail(f"OpenCV read no frames from {path}")
    return frames


def steps_from_reference(ref, got, frames: list, box) -> Iterator[tuple[int, float, float]]:
    """Both trackers started on ``frames[0]`` at ``box``; every later frame tracked by ``got``
    from ``ref``'s state (one step's difference): (frame index, largest box difference in px,
    score difference)."""
    ref.init(frames[0], box)
    got.init(frames[0], box)
    for i, frame in enumerate(frames[1:], 1):
        got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        a, b = ref.track(frame), got.track(frame)
        yield i, float(np.abs(np.subtract(a.box, b.box)).max()), abs(a.score - b.score)


def parity_alex():
    """(model, config) of pysot's seeded ``siamrpn_alex_dwxcorr`` parity weights."""
    from siam_core.checkpoint import load_checkpoint
    from siam_core.config import load_config

    return load_checkpoint(
        need(PARITY) / "weights.safetensors", load_config("siamrpn_alex_dwxcorr")
    )
