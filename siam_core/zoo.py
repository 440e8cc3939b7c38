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

from siam_core.checkpoint import read_config
from siam_core.config import Config, load_config
from siam_core.tracker.base import Tracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import SiamRPNTracker, build_tracker

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
) -> Tracker:
    """Build a tracker; empty ``model`` and ``weights`` mean the embedded default model.

    ``long_term`` (a mapping, possibly empty) wraps it in the long-term state machine with the
    model config's settings (or the paper's), single fields replaced by the mapping's values.
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
    tracker = build_named_tracker(model or None, weights, device=resolve_device(device))
    if long_term is None:
        return tracker
    if not isinstance(tracker, SiamRPNTracker):
        raise ValueError(
            f"long-term mode needs an RPN-family model; '{tracker.name}' is a SiamFC model "
            "(its response map has no anchor scores to drive LOST/RECOVERED; see the README)"
        )
    return LongTermTracker(tracker, LongTermConfig.from_config(tracker.cfg, **long_term))


def build_named_tracker(
    model: str | Path | Config | None, weights: str | Path | None, device: str = "cpu"
) -> Tracker:
    """The tracker of any family for a model (config name, YAML path or ``Config``; None for
    our files, which embed theirs) and weights (ours, pysot's or SiamDW's official layout).

    SiamFC configs give a ``SiamFCTracker``, the SiamRPN+ presets SiamDW's RPN tracker, any
    other config the RPN family's ``build_tracker``.
    """
    from siam_core.models.siamdw_compat import is_siamdw_config, load_siamdw_model

    if model is not None:
        cfg = load_config(model)
    elif weights is not None:
        cfg = read_config(weights)
        if cfg is None:
            raise ValueError(f"{weights} has no embedded config; name the model as well")
    else:
        raise ValueError("name a model or a weights file")
    if cfg.tracker.is_siamfc:
        from siam_core.tracker.siamfc import SiamFCTracker

        return SiamFCTracker(load_siamdw_model(cfg, weights), cfg, device=device)  # type: ignore[arg-type]
    if is_siamdw_config(cfg):
        from siam_core.tracker.siamdw import SiamDWRPNTracker

        return SiamDWRPNTracker(load_siamdw_model(cfg, weights), cfg, device=device)
    return build_tracker(cfg, weights, device=device)
