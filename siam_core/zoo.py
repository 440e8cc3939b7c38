"""One place that turns what a user names (model, weights, device) into a ready tracker.

Shared by ``siam-track``, ``siam-eval``'s ``siamrpn:`` specs and the ROS node so all resolve a
model the same way: with neither a model nor weights named, the embedded default model
(``siam_core/weights/default.safetensors``, config embedded) is used; ``device="auto"`` picks
CUDA when PyTorch sees a GPU. The config decides the tracker, as the official code's tracker
type does: a long-term config (pysot ``SiamRPNLTTracker``: ``lost_instance_size`` set) tracks
with the long-term state machine, a DaSiamRPN config (``dasiamrpn_vot|otb|big``) with the
official DaSiamRPN conventions; official DaSiamRPN files (``featureExtract.*``) load as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from siam_core.checkpoint import load_checkpoint
from siam_core.config import Config, load_config
from siam_core.deploy.cache import cached_export
from siam_core.deploy.runtime import BACKENDS, OnnxNet
from siam_core.models.model import build_model
from siam_core.tracker.base import Tracker
from siam_core.tracker.dasiamrpn import OFFICIAL, OfficialSiamRPNTracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import SiamRPNTracker

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
    backend: str = "torch",
    threads: int = 0,
) -> Tracker:
    """Build a tracker; empty ``model`` and ``weights`` mean the embedded default model.

    ``long_term`` (a mapping, possibly empty) wraps it in the long-term state machine with the
    model config's settings (or the paper's), single fields replaced by the mapping's values.
    ``backend`` ``onnxruntime`` or ``openvino`` runs the network as exported ONNX graphs
    (exported once into the cache, see ``siam_core.deploy.cache``; ``threads`` for them).
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
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        dev = resolve_device(device)
    elif device in ("", "auto", "cpu"):
        dev = "cpu"
    else:
        raise ValueError(f"backend '{backend}' runs on the CPU; use device=cpu (got {device!r})")
    return build(model or None, weights, dev, long_term, backend, threads)


def build(
    model: str | Path | Config | None = None,
    weights: str | Path | None = None,
    device: str = "cpu",
    long_term: Mapping[str, Any] | None = None,
    backend: str = "torch",
    threads: int = 0,
) -> Tracker:
    """The tracker a config names, with its weights (a pysot, official DaSiamRPN or our file;
    ``model`` may be None for ours, whose config is embedded). Without weights the network
    keeps its random initialisation (useful for timing only).

    ``long_term`` (a mapping, possibly empty) forces the long-term state machine and replaces
    single fields of its settings; long-term configs get it without asking. ``backend`` other
    than ``torch`` runs the network as exported ONNX graphs (``load_tracker``).
    """
    cfg = load_config(model) if model is not None else None
    if weights is None:
        if cfg is None:
            raise ValueError("name a model config or a weights file")
        net = build_model(cfg)
    else:
        net, cfg = load_checkpoint(weights, cfg)
    runtime = None
    if backend != "torch":
        if weights is None:
            raise ValueError(f"backend '{backend}' exports a trained network: name the weights")
        runtime = OnnxNet(cached_export(net, cfg, weights), backend, threads)
    kind = OfficialSiamRPNTracker if cfg.name in OFFICIAL else SiamRPNTracker
    tracker = kind(net, cfg, device=device, runtime=runtime)
    if long_term is None and cfg.tracker.lost_instance_size is None:
        return tracker
    return LongTermTracker(tracker, LongTermConfig.from_config(cfg, **(long_term or {})))
