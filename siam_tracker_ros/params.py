"""The tracker node's parameters: one table for the node, the config files, launch and docs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from siam_core.deploy import BACKENDS

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class Param:
    name: str
    default: ParamValue
    description: str


PARAMETERS: tuple[Param, ...] = (
    Param("model", "", "model config name or YAML path; empty with empty weights: default model"),
    Param("weights", "", "weights file (.safetensors or pysot .pth); ours embed their config"),
    Param("device", "auto", "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"),
    Param("backend", "torch", "network runtime: torch, onnxruntime or openvino (CPU)"),
    Param("image_topic", "image_raw", "camera topic (sensor_msgs/Image), relative to namespace"),
    Param("compressed", False, "subscribe to <image_topic>/compressed (CompressedImage) instead"),
    Param("qos_reliability", "best_effort", "image subscription reliability: best_effort|reliable"),
    Param("qos_depth", 1, "image subscription queue depth (keep last)"),
    Param("buffer_size", 30, "recent frames kept so /init_target can name an older stamp"),
    Param("target_label", "target", "class label of detections when init gives none"),
    Param("long_term", False, "lost/recovered handling with a widening search while lost"),
    Param("lost_threshold", -1.0, "long-term: LOST below this score; -1: model/paper default"),
    Param("recover_threshold", -1.0, "long-term: RECOVERED above this score; -1: default"),
    Param("online", False, "DROL online classifier; its updates run off the frame path"),
    Param("publish_debug_image", False, "publish debug_image: the frame with box and state"),
    Param("mono16_max", 65535.0, "value that maps to 255 for mono16 images (4095: 12-bit)"),
    Param("torch_threads", 0, "CPU threads for PyTorch; 0: auto (siam_core.threads)"),
    # Control outputs (topic `target`, README "Control outputs"): bearing, Kalman, latency.
    Param("camera_info_topic", "camera_info", "CameraInfo for bearings; empty: pixels only"),
    Param("camera_info_latched", False, "subscribe CameraInfo reliable + transient local"),
    Param("rectified", False, "images are rectified: bearings from CameraInfo P, no distortion"),
    Param("depth_topic", "", "aligned depth image (16UC1 mm, 32FC1 m) for target_point"),
    Param("depth_core", 0.5, "fraction of the box (centred) whose median depth is used"),
    Param("depth_sync_s", 0.05, "largest stamp difference between an image and its depth"),
    Param("latency_compensation", "processing", "predict to stamp+latency: processing|clock|none"),
    Param("lookahead_s", 0.0, "predict this much further ahead (the controller's own delay)"),
    Param("max_prediction_s", 0.5, "bound on how far ahead the prediction reaches"),
    Param("kf_meas_noise", 0.05, "Kalman: centre noise at score 1, in target sizes"),
    Param("kf_size_noise", 0.1, "Kalman: size noise at score 1, relative"),
    Param("kf_accel_noise", 3.0, "Kalman: centre acceleration noise, target sizes/s^1.5"),
    Param("kf_size_accel_noise", 1.0, "Kalman: size acceleration noise, target sizes/s^1.5"),
    Param("kf_min_score", 0.2, "Kalman: boxes scored below this only predict"),
    Param("kf_max_coast_s", 1.0, "Kalman: predict at most this long without a box, then drop"),
)
DEFAULTS: dict[str, ParamValue] = {p.name: p.default for p in PARAMETERS}
QOS_RELIABILITY = ("best_effort", "reliable")
LATENCY_COMPENSATION = ("processing", "clock", "none")


def validate(values: dict[str, Any]) -> dict[str, ParamValue]:
    """Check names, types and ranges; returns the full set with defaults filled in."""
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown tracker parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    merged = {**DEFAULTS, **values}
    for name, default in DEFAULTS.items():
        value = merged[name]
        expected = float if isinstance(default, float) else type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            merged[name] = value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(f"parameter {name} must be {expected.__name__}, got {value!r}")
    if merged["backend"] not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {merged['backend']!r}")
    if merged["backend"] != "torch" and merged["device"] not in ("", "auto", "cpu"):
        raise ValueError(f"backend {merged['backend']} runs on the CPU; device must be auto or cpu")
    if merged["qos_reliability"] not in QOS_RELIABILITY:
        raise ValueError(f"qos_reliability must be one of {QOS_RELIABILITY}")
    for name in ("qos_depth", "buffer_size"):
        if merged[name] < 1:
            raise ValueError(f"{name} must be >= 1, got {merged[name]}")
    for name in ("lost_threshold", "recover_threshold"):
        if merged[name] != -1.0 and not 0.0 <= merged[name] <= 1.0:
            raise ValueError(f"{name} must be -1 (default) or lie in [0, 1], got {merged[name]}")
    if merged["mono16_max"] <= 0 or merged["torch_threads"] < 0:
        raise ValueError("mono16_max must be > 0 and torch_threads >= 0")
    if merged["latency_compensation"] not in LATENCY_COMPENSATION:
        raise ValueError(f"latency_compensation must be one of {LATENCY_COMPENSATION}")
    if not 0.0 < merged["depth_core"] <= 1.0:
        raise ValueError(f"depth_core must lie in (0, 1], got {merged['depth_core']}")
    for name in ("depth_sync_s", "lookahead_s", "max_prediction_s"):
        if merged[name] < 0:
            raise ValueError(f"{name} must be >= 0, got {merged[name]}")
    return merged


def load_params_file(path: str | Path, node_name: str = "tracker_node") -> dict[str, ParamValue]:
    """Read a ROS 2 parameters YAML (``node: {ros__parameters: ...}`` or ``/**``) and validate."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    values: dict[str, Any] = {}
    for key, section in data.items():
        if key in ("/**", node_name, f"/{node_name}") or key.endswith(f"/{node_name}"):
            values.update((section or {}).get("ros__parameters", {}))
    return validate(values)
