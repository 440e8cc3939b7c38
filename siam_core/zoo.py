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

from siam_core.checkpoint import load_checkpoint, read_config
from siam_core.config import Config, load_config
from siam_core.deploy import AUTO, CPU_ONLY_BACKENDS, CUDA_ONLY_BACKENDS, check_precision
from siam_core.deploy.cache import cached_export
from siam_core.deploy.runtime import BACKENDS, OnnxNet
from siam_core.models.model import build_model
from siam_core.threads import parse_threads
from siam_core.tracker.base import Tracker
from siam_core.tracker.dasiamrpn import OFFICIAL, OfficialSiamRPNTracker
from siam_core.tracker.drol import online_tracker
from siam_core.tracker.longterm import REPORT_ONLY, LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import SiamRPNTracker

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "default.safetensors"


class OnlineUnsupported(ValueError):
    """DROL's online classifier cannot wrap this model or backend; the node, where online is
    on by default, then tracks without it."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; an unusable CUDA request fails."""
    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but PyTorch sees no CUDA device")
    return device


def resolve_runtime(
    backend: str,
    precision: str,
    device: str = "auto",
    model: str = "",
    weights: str | Path = "",
    graph_mode: str = "eager",
) -> tuple[str, str]:
    """The ``(backend, precision)`` that ``auto`` stands for (concrete values pass through).

    backend ``auto``: PyTorch on CUDA and for PyTorch's own options (fp16/bf16 autocast, graph
    modes); int8 on OpenVINO (ONNX Runtime without it); with precision ``auto`` or unnamed,
    OpenVINO int8 where the model file ships int8 graphs for this CPU
    (``siam_core.deploy.quantize.ship``; 8-bit weights with an int8 dot-product instruction,
    7-bit ones without: ``weight_bits_for_cpu``; the embedded default model ships both) and
    OpenVINO is installed, else PyTorch fp32. On the default model that is 18 against 68 ms a
    frame on one core at 0.439 against 0.440 AUC on a VNNI CPU (README "Deployment").
    precision ``auto``: int8 on an ONNX runtime on the CPU where those graphs ship, else fp32.
    Shipped graphs are what make int8 a safe default: calibrating needs training data a
    user's machine may lack, and takes minutes on first use."""
    import functools
    import importlib.util

    from siam_core.deploy.quantize import shipped_int8, weight_bits_for_cpu

    if AUTO not in (backend, precision):
        return backend, precision
    path = Path(weights) if weights else DEFAULT_WEIGHTS if not model else None

    @functools.cache
    def ships() -> bool:
        if path is None or not path.is_file():
            return False
        try:
            cfg = load_config(model) if model else read_config(path)
        except (ValueError, OSError):
            return False  # an unreadable model or file fails where it loads, blamed there
        bits = weight_bits_for_cpu()
        return cfg is not None and shipped_int8(path, cfg.to_dict(), bits) is not None

    openvino = importlib.util.find_spec("openvino") is not None
    if backend == AUTO:
        torch_only = precision in ("fp16", "bf16") or graph_mode != "eager"
        if torch_only or precision == "fp32" or resolve_device(device) != "cpu":
            backend = "torch"
        elif precision == "int8":
            backend = "openvino" if openvino else "onnxruntime"
        else:
            backend = "openvino" if openvino and ships() else "torch"
    if precision == AUTO:
        on_cpu = backend in ("onnxruntime", "openvino") and backend_device(backend, device) == "cpu"
        precision = "int8" if on_cpu and ships() else "fp32"
    return backend, precision


def load_tracker(
    model: str = "",
    weights: str = "",
    device: str = "auto",
    long_term: Mapping[str, Any] | None = None,
    backend: str = "torch",
    threads: int = 0,
    online: Mapping[str, Any] | None = None,
    precision: str = "fp32",
    graph_mode: str = "eager",
) -> Tracker:
    """Build a tracker; empty ``model`` and ``weights`` mean the embedded default model.

    ``long_term`` (a mapping, possibly empty) wraps it in the long-term state machine with the
    model config's settings (or the paper's), single fields replaced by the mapping's values.
    ``backend`` ``onnxruntime`` or ``openvino`` runs the network as exported ONNX graphs
    (exported once into the cache, see ``siam_core.deploy.cache``; ``threads`` for them, 0 the
    project's ``auto`` rule of ``siam_core.threads``, never the runtime's all-cores default).
    ``online`` (a mapping, possibly empty) adds DROL's online classifier with the config's
    ``online`` settings (or the paper's), single fields replaced by the mapping's values; the
    ``drol_*`` presets have it without asking. ``precision`` and ``graph_mode`` are the GPU
    path's options (``build``). ``onnxruntime`` runs on CUDA when asked for ``cuda`` (or, with
    ``auto``, when its CUDA execution provider and a GPU are there); ``tensorrt`` on CUDA only.
    ``auto`` for ``backend`` or ``precision``: ``resolve_runtime``'s choice.
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
    backend, precision = resolve_runtime(backend, precision, device, model, weights, graph_mode)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    dev = backend_device(backend, device)
    return build(
        model or None, weights, dev, long_term, backend, threads, online, precision, graph_mode
    )


def backend_device(backend: str, device: str) -> str:
    """The device a backend runs on for a requested ``device`` (``auto``, ``cpu``, ``cuda[:N]``).

    torch: ``resolve_device``; openvino: the CPU only; tensorrt: CUDA only (``auto`` ->
    ``cuda``); onnxruntime: as asked, ``auto`` -> ``cuda`` when PyTorch sees a GPU and ONNX
    Runtime has its CUDA execution provider. The ONNX runtimes check their providers
    themselves (PyTorch need not be a CUDA build for them)."""
    if backend == "torch":
        return resolve_device(device)
    auto = device in ("", "auto")
    if backend in CPU_ONLY_BACKENDS:
        if auto or device == "cpu":
            return "cpu"
        raise ValueError(f"backend '{backend}' runs on the CPU; use device=cpu (got {device!r})")
    if backend in CUDA_ONLY_BACKENDS:
        if device == "cpu":
            raise ValueError(f"backend '{backend}' runs on CUDA; use device=cuda (got 'cpu')")
        return "cuda" if auto else device
    if not auto:
        return device
    try:
        import onnxruntime as ort
    except ImportError:
        return "cpu"
    gpu = "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()
    return "cuda" if gpu else "cpu"


def build(
    model: str | Path | Config | None = None,
    weights: str | Path | None = None,
    device: str = "cpu",
    long_term: Mapping[str, Any] | None = None,
    backend: str = "torch",
    threads: int = 0,
    online: Mapping[str, Any] | None = None,
    precision: str = "fp32",
    graph_mode: str = "eager",
    device_crops: bool | None = None,
) -> Tracker:
    """The tracker a config names, of any family, with its weights (a pysot, official
    DaSiamRPN, official SiamDW or our file; ``model`` may be None for ours, whose config is
    embedded). Without weights the network keeps its random initialisation (timing only).
    SiamFC configs give a ``SiamFCTracker``, the SiamRPN+ presets SiamDW's RPN tracker.

    ``long_term`` (a mapping, possibly empty) forces the long-term state machine and replaces
    single fields of its settings; long-term configs get it without asking. ``backend`` other
    than ``torch`` runs the network as exported ONNX graphs (``load_tracker``). ``online``
    adds DROL's classifier (``load_tracker``); a config with an ``online:`` section (the
    ``drol_*`` presets) builds a ``DROLTracker`` without asking.

    GPU path (RPN family; ``SiamRPNTracker.accelerate``): ``precision`` ``fp32|fp16|bf16``
    autocast, ``graph_mode`` ``eager|cuda_graph|compile``, ``device_crops`` (None: on for
    CUDA; on CPU, ``bf16`` runs on AMX/AVX512-BF16 units). With an ONNX backend the tracker
    runs on the CPU and the runtime on ``device``; there ``precision`` is the runtime's
    (``siam_core.deploy.BACKEND_PRECISIONS``): ``int8`` quantised graphs (onnxruntime,
    openvino; quantised into the cache on first use), ``bf16`` (openvino), ``fp16``
    (tensorrt's fp16 kernels).
    """
    from siam_core.models.siamdw_compat import is_siamdw_config

    if backend != "torch" and (graph_mode != "eager" or device_crops):
        raise ValueError(f"graph_mode and device_crops are torch-backend options, not {backend}'s")
    check_precision(backend, precision)
    gpu = (precision if backend == "torch" else "fp32", graph_mode, device_crops)
    tracker_device = device if backend == "torch" else "cpu"
    cfg = load_config(model) if model is not None else None
    named = cfg if cfg is not None or weights is None else read_config(weights)
    if named is not None and named.tracker.is_siamfc and (named.online or online is not None):
        tracker = _build_drol_siamfc(named, weights, device, long_term, backend, online)
        return _gpu_options(tracker, *gpu)
    if named is not None and (named.tracker.is_siamfc or is_siamdw_config(named)):
        return _gpu_options(_build_siamdw(named, weights, device, long_term, backend), *gpu)
    if weights is None:
        if cfg is None:
            raise ValueError("name a model config or a weights file")
        net = build_model(cfg)
    else:
        net, cfg = load_checkpoint(weights, cfg)
    runtime = None
    if cfg.name in OFFICIAL and online is not None:
        # DROLTracker follows pysot's procedure: it would drop DaSiamRPN's official conventions
        raise OnlineUnsupported(
            f"online learning (DROL) wraps pysot-procedure RPN models, not '{cfg.name}' "
            "(DaSiamRPN's official conventions)"
        )
    if backend != "torch":
        if weights is None:
            raise ValueError(f"backend '{backend}' exports a trained network: name the weights")
        # DROL's classifier reads the neck's maps, which folded graphs do not all give
        drol = cfg.online is not None or online is not None
        export = cached_export(
            net, cfg, weights, "int8" if precision == "int8" else "fp32", fold=not drol
        )
        runtime = OnnxNet(export, backend, parse_threads(threads), device, precision)
    if cfg.online is not None:  # a DROL preset
        from siam_core.tracker.drol import DROLTracker

        tracker: Tracker = DROLTracker(net, cfg, device=device, runtime=runtime)
    else:
        kind = OfficialSiamRPNTracker if cfg.name in OFFICIAL else SiamRPNTracker
        tracker = kind(net, cfg, device=tracker_device, runtime=runtime)
    if online is not None:
        tracker = online_tracker(tracker, dict(online))  # type: ignore[arg-type]
    _gpu_options(tracker, *gpu)
    settings = long_term_settings(cfg, long_term)
    if settings is None:
        return tracker
    return LongTermTracker(tracker, LongTermConfig.for_tracker(tracker, **settings))


def long_term_settings(
    cfg: Config, long_term: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """The long-term overrides a tracker of ``cfg`` gets, None for none. A long-term config
    (``lost_instance_size``, e.g. pysot's ``_lt``) always tracks long-term, as pysot runs it with
    ``SiamRPNLTTracker``: asked to report only (``REPORT_ONLY``, the node's default), it keeps
    its held box, wider search and appearance check, with the thresholds asked for."""
    if cfg.tracker.lost_instance_size is None:
        return long_term
    given = dict(long_term or {})
    if _reports_only(long_term):
        given = {key: value for key, value in given.items() if key not in REPORT_ONLY}
    return given


def _reports_only(long_term: Mapping[str, Any] | None) -> bool:
    """Whether ``long_term`` asks for reporting only (``redetect`` false, as ``REPORT_ONLY``)."""
    return long_term is not None and long_term.get("redetect") is False


def _build_drol_siamfc(
    cfg: Config,
    weights: str | Path | None,
    device: str,
    long_term: Mapping[str, Any] | None,
    backend: str,
    online: Mapping[str, Any] | None,
) -> Tracker:
    """DROL's SiamFC tracker (the ``drol_siamfc_*`` presets), single online fields replaced by
    ``online``'s values."""
    from siam_core.models.siamdw_compat import load_siamdw_model
    from siam_core.tracker.drol import DROLSiamFCTracker

    if cfg.online is None:
        raise OnlineUnsupported(
            f"online learning on a SiamFC model follows DROL's SiamFC procedure: use a "
            f"drol_siamfc_alex_upxcorr_* preset, not '{cfg.name}' (--online wraps RPN models)"
        )
    # its own step only: long-term mode's held box and wider search are not DROL's SiamFC
    # procedure, but reporting the state of that step (``REPORT_ONLY``) changes nothing in it
    if backend != "torch" or (long_term is not None and not _reports_only(long_term)):
        raise ValueError(
            f"'{cfg.name}' runs on the torch backend, in short-term mode only (its state "
            "reported, or not)"
        )
    settings = cfg.online.replace(**online) if online else cfg.online
    net = load_siamdw_model(cfg, weights)
    tracker = DROLSiamFCTracker(net, cfg, settings, device=device)  # type: ignore[arg-type]
    if long_term is None:
        return tracker
    return LongTermTracker(tracker, LongTermConfig.for_tracker(tracker, **long_term))


def _gpu_options(
    tracker: Tracker, precision: str, graph_mode: str, device_crops: bool | None
) -> Tracker:
    """Apply the GPU path's options to ``tracker`` (or the tracker a long-term one wraps);
    trackers outside the RPN family (SiamFC) refuse any but the defaults."""
    inner = tracker.tracker if isinstance(tracker, LongTermTracker) else tracker
    if isinstance(inner, SiamRPNTracker):
        inner.accelerate(precision, graph_mode, device_crops)
    elif precision != "fp32" or graph_mode != "eager" or device_crops:
        raise ValueError(
            f"precision, graph_mode and device_crops apply to the RPN family; '{inner.name}' "
            "crops and runs its network its own way"
        )
    return tracker


def _build_siamdw(
    cfg: Config,
    weights: str | Path | None,
    device: str,
    long_term: Mapping[str, Any] | None,
    backend: str,
) -> Tracker:
    """SiamDW's trackers: SiamFC+ (``SiamFCTracker``) and SiamRPN+ (``SiamDWRPNTracker``), in
    long-term mode as the RPN family is (a SiamFC config gets the SiamFC thresholds)."""
    from siam_core.models.siamdw_compat import load_siamdw_model
    from siam_core.tracker.siamdw import SiamDWRPNTracker
    from siam_core.tracker.siamfc import SiamFCTracker

    if backend != "torch":
        raise ValueError(f"backend '{backend}': SiamDW models run on the torch backend only")
    net = load_siamdw_model(cfg, weights)
    tracker: SiamFCTracker | SiamDWRPNTracker
    if cfg.tracker.is_siamfc:
        tracker = SiamFCTracker(net, cfg, device=device)  # type: ignore[arg-type]
    else:
        tracker = SiamDWRPNTracker(net, cfg, device=device)
    settings = long_term_settings(cfg, long_term)
    if settings is None:
        return tracker
    return LongTermTracker(tracker, LongTermConfig.from_config(cfg, **settings))
