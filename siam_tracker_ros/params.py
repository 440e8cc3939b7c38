"""The tracker node's parameters: one table for the node, the config files, launch and docs.

Each parameter carries its range (or choices) and whether it can change while the node runs;
:func:`validate` is the one check, used at start-up, by the node's set-parameters callback and
for parameter files. It raises :class:`ParamError`, whose text is ``<name>=<value>: <why>``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from siam_core.deploy import (
    AUTO,
    BACKEND_PRECISIONS,
    BACKENDS,
    CPU_ONLY_BACKENDS,
    CUDA_ONLY_BACKENDS,
    GRAPH_MODES,
    PRECISIONS,
)

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One parameter; ``minimum``/``maximum`` bound numbers, ``choices`` strings, and
    ``read_only`` ones are fixed once the node has started."""

    name: str
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    read_only: bool = False


class ParamError(ValueError):
    """A parameter value the node cannot use; ``str()`` is ``<name>=<value>: <why>``."""

    def __init__(self, name: str, value: Any, why: str) -> None:
        super().__init__(
            f"{name}={value!r}: {why}" if isinstance(value, str) else f"{name}={value}: {why}"
        )
        self.name, self.value, self.why = name, value, why


MAX_IMAGE_PIXELS = 1 << 28  # hard ceiling of max_image_pixels (16384 x 16384)
PARAMETERS: tuple[Param, ...] = (
    Param("model", "", "model config name or YAML path; empty with empty weights: default model"),
    Param("weights", "", "weights file (.safetensors or pysot .pth); ours embed their config"),
    Param("device", "auto", "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"),
    Param(
        "backend",
        "auto",
        "network runtime: auto (OpenVINO int8 on the CPU where the model ships int8 graphs, "
        "else torch), torch, onnxruntime (CPU or CUDA), openvino (CPU), tensorrt (CUDA)",
        None,
        None,
        True,
    ),
    Param(
        "precision",
        "auto",
        "auto (int8 where an ONNX runtime on the CPU has shipped graphs, else fp32); torch: "
        "fp32, fp16/bf16 autocast (bf16: AMX on CPU); onnxruntime: int8; openvino: bf16, int8; "
        "tensorrt: fp16",
    ),
    Param("graph_mode", "eager", "torch: eager, cuda_graph (CUDA) or compile (torch.compile)"),
    Param("image_topic", "image_raw", "camera topic (sensor_msgs/Image), relative to namespace"),
    Param("compressed", False, "subscribe to <image_topic>/compressed (CompressedImage) instead"),
    Param("qos_reliability", "best_effort", "image subscription reliability: best_effort|reliable"),
    Param("qos_depth", 1, "image subscription queue depth (keep last)", 1, 100),
    Param("buffer_size", 30, "recent frames kept so /init_target can name an older stamp", 1, 300),
    Param("target_label", "target", "class label of detections when init gives none"),
    Param("max_targets", 10, "most targets tracked at once (init_target with a target_id)", 1, 100),
    Param("long_term", False, "lost/recovered handling with a widening search while lost"),
    Param(
        "report_lost",
        True,
        "long_term off: report LOST (no detection) while the score is below lost_threshold, "
        "the short-term track itself unchanged; false: always TRACKING",
    ),
    Param(
        "lost_threshold",
        -1.0,
        "LOST below this score (long_term or report_lost); -1: the model config's (with "
        "online on, its online_confidence_low first), else 0.8 (SiamFC: 0.3)",
        -1,
        1,
    ),
    Param(
        "recover_threshold",
        -1.0,
        "RECOVERED above this score (long_term or report_lost); -1: the model's, else 0.95 "
        "(SiamFC: 0.45)",
        -1,
        1,
    ),
    Param(
        "appearance_low",
        -1.0,
        "long_term only: LOST below this similarity of the box to the first frame's target; "
        "-1: the model config's, else 0 (no check)",
        -1,
        1,
    ),
    Param(
        "appearance_high",
        -1.0,
        "long_term only: RECOVERED needs more than this similarity; -1: the model's, else 0",
        -1,
        1,
    ),
    Param(
        "online", True, "DROL online classifier per target; its training runs off the frame path"
    ),
    Param("publish_debug_image", False, "publish debug_image: the frame with box and state"),
    Param(
        "mono16_max", 65535.0, "value that maps to 255 for mono16 images (4095: 12-bit)", 1, 65535
    ),
    Param(
        "torch_threads",
        0,
        "CPU threads of the network (any backend); 0: auto (siam_core.threads)",
        0,
        256,
        True,
    ),
    Param(
        "max_image_pixels",
        4096 * 4096,
        "largest image (width x height) accepted, compressed ones checked before decoding",
        1,
        MAX_IMAGE_PIXELS,
    ),
    # Control outputs (topic `target`, README "Control outputs"): bearing, Kalman, latency.
    # Read-only: the target output is set up at start (restart the node to change them).
    Param(
        "camera_info_topic",
        "camera_info",
        "CameraInfo for bearings; empty: pixels only",
        None,
        None,
        True,
    ),
    Param(
        "camera_info_latched",
        False,
        "subscribe CameraInfo reliable + transient local",
        None,
        None,
        True,
    ),
    Param(
        "rectified",
        False,
        "images are rectified: bearings from CameraInfo P, no distortion",
        None,
        None,
        True,
    ),
    Param(
        "depth_topic",
        "",
        "aligned depth image (16UC1 mm, 32FC1 m) for target_point",
        None,
        None,
        True,
    ),
    Param(
        "depth_core",
        0.5,
        "fraction of the box (centred) whose median depth is used",
        None,
        None,
        True,
    ),
    Param(
        "depth_sync_s",
        0.05,
        "largest stamp difference between an image and its depth",
        None,
        None,
        True,
    ),
    Param(
        "latency_compensation",
        "processing",
        "predict to stamp+latency: processing|clock|none",
        None,
        None,
        True,
    ),
    Param(
        "lookahead_s",
        0.0,
        "predict this much further ahead (the controller's own delay)",
        None,
        None,
        True,
    ),
    Param(
        "max_prediction_s", 0.5, "bound on how far ahead the prediction reaches", None, None, True
    ),
    Param(
        "kf_meas_noise", 0.05, "Kalman: centre noise at score 1, in target sizes", None, None, True
    ),
    Param("kf_size_noise", 0.1, "Kalman: size noise at score 1, relative", None, None, True),
    Param(
        "kf_accel_noise",
        3.0,
        "Kalman: centre acceleration noise, target sizes/s^1.5",
        None,
        None,
        True,
    ),
    Param(
        "kf_size_accel_noise",
        1.0,
        "Kalman: size acceleration noise, target sizes/s^1.5",
        None,
        None,
        True,
    ),
    Param("kf_min_score", 0.2, "Kalman: boxes scored below this only predict", None, None, True),
    Param(
        "kf_max_coast_s",
        1.0,
        "Kalman: predict at most this long without a box, then drop",
        None,
        None,
        True,
    ),
)
BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}
DEFAULTS: dict[str, ParamValue] = {p.name: p.default for p in PARAMETERS}
QOS_RELIABILITY = ("best_effort", "reliable")
LATENCY_COMPENSATION = ("processing", "clock", "none")
MAX_LABEL = 256
# A ROS 2 topic name without substitutions: tokens of letters, digits and underscores that do
# not start with a digit, separated by single slashes; optionally absolute or private (~/).
_TOPIC = re.compile(r"(~/|/)?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")


def _typed(name: str, value: Any) -> ParamValue:
    """``value`` as the parameter's type (ints accepted for floats), else ParamError."""
    default = DEFAULTS[name]
    expected = float if isinstance(default, float) else type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ParamError(name, value, f"must be {expected.__name__}, got {type(value).__name__}")
    return value


def _ranged(p: Param, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(p.name, value, "must be a finite number")
    if p.minimum is not None and not p.minimum <= value <= p.maximum:
        raise ParamError(p.name, value, f"must lie in [{p.minimum:g}, {p.maximum:g}]")


def _check_gpu_options(merged: dict[str, Any]) -> None:
    """The GPU path's options: known values, and only where the backend and device take them
    (whether ``auto`` finds CUDA is checked when the tracker is built)."""
    backend, precision, mode = merged["backend"], merged["precision"], merged["graph_mode"]
    if precision not in (AUTO, *PRECISIONS):
        raise ParamError("precision", precision, f"must be one of {(AUTO, *PRECISIONS)}")
    if mode not in GRAPH_MODES:
        raise ParamError("graph_mode", mode, f"must be one of {GRAPH_MODES}")
    if backend not in ("torch", AUTO) and mode != "eager":
        raise ParamError("graph_mode", mode, f"an option of the torch backend, not of {backend}")
    allowed = BACKEND_PRECISIONS.get(backend, PRECISIONS)
    if precision != AUTO and precision not in allowed:
        raise ParamError("precision", precision, f"backend {backend} takes {allowed}")
    if mode == "cuda_graph" and merged["device"] == "cpu":
        raise ParamError("graph_mode", mode, "CUDA graphs need device auto (with a GPU) or cuda")


def validate(values: dict[str, Any]) -> dict[str, ParamValue]:
    """Check names, types and ranges; returns the full set with defaults filled in."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        name = sorted(unknown)[0]
        raise ParamError(
            name, values[name], f"unknown tracker parameter; known: {sorted(DEFAULTS)}"
        )
    merged = {**DEFAULTS, **values}
    for p in PARAMETERS:
        merged[p.name] = _typed(p.name, merged[p.name])
        _ranged(p, merged[p.name])
    if merged["backend"] not in (AUTO, *BACKENDS):
        raise ParamError("backend", merged["backend"], f"must be one of {(AUTO, *BACKENDS)}")
    backend, device = merged["backend"], merged["device"]
    if backend in CPU_ONLY_BACKENDS and device not in ("", "auto", "cpu"):
        raise ParamError("device", device, f"backend {backend} runs on the CPU; use auto or cpu")
    if backend in CUDA_ONLY_BACKENDS and device == "cpu":
        raise ParamError("device", device, f"backend {backend} runs on CUDA; use auto or cuda")
    _check_gpu_options(merged)
    if merged["qos_reliability"] not in QOS_RELIABILITY:
        raise ParamError(
            "qos_reliability", merged["qos_reliability"], f"must be one of {QOS_RELIABILITY}"
        )
    if not _TOPIC.fullmatch(merged["image_topic"]):
        raise ParamError(
            "image_topic", merged["image_topic"], "not a ROS topic name (letters, digits, _ and /)"
        )
    if not _DEVICE.fullmatch(merged["device"]):
        raise ParamError("device", merged["device"], "must be auto, cpu, cuda or cuda:N")
    if len(merged["target_label"]) > MAX_LABEL:
        raise ParamError(
            "target_label",
            merged["target_label"][:20] + "...",
            f"longer than {MAX_LABEL} characters",
        )
    for name in ("lost_threshold", "recover_threshold", "appearance_low", "appearance_high"):
        if merged[name] != -1.0 and not 0.0 <= merged[name] <= 1.0:
            raise ParamError(name, merged[name], "must be -1 (model default) or lie in [0, 1]")
    lost, recover = merged["lost_threshold"], merged["recover_threshold"]
    if lost != -1.0 and recover != -1.0 and lost >= recover:
        raise ParamError("lost_threshold", lost, f"must be below recover_threshold={recover}")
    low, high = merged["appearance_low"], merged["appearance_high"]
    if low != -1.0 and high != -1.0 and low > high:
        raise ParamError("appearance_low", low, f"must not exceed appearance_high={high}")
    if merged["latency_compensation"] not in LATENCY_COMPENSATION:
        raise ParamError(
            "latency_compensation",
            merged["latency_compensation"],
            f"must be one of {LATENCY_COMPENSATION}",
        )
    if not 0.0 < merged["depth_core"] <= 1.0:
        raise ParamError("depth_core", merged["depth_core"], "must lie in (0, 1]")
    for name in ("depth_sync_s", "lookahead_s", "max_prediction_s"):
        if merged[name] < 0:
            raise ParamError(name, merged[name], "must be >= 0")
    return merged


def load_params_file(path: str | Path, node_name: str = "tracker_node") -> dict[str, ParamValue]:
    """Read a ROS 2 parameters YAML (``node: {ros__parameters: ...}`` or ``/**``) and validate."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    values: dict[str, Any] = {}
    for key, section in data.items():
        if key in ("/**", node_name, f"/{node_name}") or key.endswith(f"/{node_name}"):
            values.update((section or {}).get("ros__parameters", {}))
    return validate(values)
