"""Shared fixtures for the training tests: real frames from ../shared/data/sequences."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

SEQUENCES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sequences"


def need_sequences() -> Path:
    if not SEQUENCES.is_dir():
        pytest.skip(f"shared data not found at {SEQUENCES}")
    return SEQUENCES


@pytest.fixture
def sequences() -> Path:
    return need_sequences()


def tiny_model() -> dict:
    """A quarter-width AlexNet with a depth-wise RPN: a real SiamRPN++ head, small enough
    to train for a few dozen steps on two CPU cores."""
    return {
        "name": "tiny_alex_dw",
        "model": {
            "backbone": {"type": "AlexNetLegacy", "width_mult": 0.25},
            "head": {
                "type": "DepthwiseRPN",
                "anchor_num": 5,
                "in_channels": 64,
                "out_channels": 64,
            },
        },
        "anchor": {"stride": 8, "ratios": [0.33, 0.5, 1, 2, 3], "scales": [8]},
        "tracker": {"penalty_k": 0.16, "window_influence": 0.4, "lr": 0.3},
    }


def frame_and_box(seq_root: Path, which: str, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A real frame and its ground-truth box as (x1, y1, x2, y2), via the project loader."""
    from siam_core.data.sequences import load_sequence

    seq = load_sequence(seq_root / which)
    x, y, w, h = seq.gt[index]
    image = cv2.imread(str(seq.frames[index]))
    assert image is not None
    return image, np.array([x, y, x + w, y + h], np.float32)


def assert_same_weights(a, b) -> None:
    """Two models hold bit-identical state (parameters and buffers), key by key."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f"{key} differs after resume"
