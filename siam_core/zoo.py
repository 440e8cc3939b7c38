"""One place that turns what a user names (model, weights, device) into a ready tracker.

Shared by ``siam-track`` and the ROS node so both resolve defaults the same way: with neither a
model nor weights named, the embedded default model (``siam_core/weights/default.safetensors``,
config embedded) is used; ``device="auto"`` picks CUDA when PyTorch sees a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from siam_core.tracker.base import Tracker
from siam_core.tracker.drol import online_tracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import build_tracker

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "default.safetensors"


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; an unusable CUDA request fails."""
    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but PyTorch sees no CUDA device")
    return device


def load_tracker(
    model: str = "",
    weights: str = "",
    device: str = "auto",
    long_term: Mapping[str, Any] | None = None,
    online: Mapping[str, Any] | None = None,
) -> Tracker:
    """Build a tracker; empty ``model`` and ``weights`` mean the embedded default model.

    ``long_term`` (a mapping, possibly empty) wraps it in the long-term state machine with the
    model config's settings (or the paper's), single fields replaced by the mapping's values.
    ``online`` (a mapping, possibly empty) adds DROL's online classifier with the config's
    ``online`` settings (or the paper's), single fields replaced by the mapping's values; the
    ``drol_*`` presets have it without asking.
    """
    if not model and not weights:
        if not DEFAULT_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"no default model at {DEFAULT_WEIGHTS}; name a model and weights "
                "(e.g. model=siamrpn_alex_dwxcorr weights=/path/model.pth)"
            )
        weights = str(DEFAULT_WEIGHTS)
    if not weights:
        raise ValueError(f"model '{model}' named without weights: its network would be random")
    if not Path(weights).is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    tracker = build_tracker(model or None, weights, device=resolve_device(device))
    if online is not None:
        tracker = online_tracker(tracker, dict(online))
    if long_term is None:
        return tracker
    return LongTermTracker(tracker, LongTermConfig.from_config(tracker.cfg, **long_term))
