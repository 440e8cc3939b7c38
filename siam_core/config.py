"""Model + tracker configuration: YAML files validated into frozen dataclasses.

A config names a model's parts by their registered types (``siam_core.registry``) and carries
the tracker hyperparameters that belong to those weights. Built-in configs live in
``siam_core/configs/<name>.yaml``; ``load_config`` takes such a name or a YAML path. Nothing here
is global: every model and tracker gets its own ``Config`` object.

Schema::

    name: siamrpn_alex_dwxcorr
    source: where the settings come from (optional, free text)
    model:
      backbone: {type: AlexNetLegacy, width_mult: 1.0}
      neck: null
      head: {type: DepthwiseRPN, anchor_num: 5, in_channels: 256, out_channels: 256}
    anchor: {stride: 8, ratios: [0.33, 0.5, 1, 2, 3], scales: [8]}
    tracker: {exemplar_size: 127, instance_size: 287, base_size: 0, context_amount: 0.5,
              penalty_k: 0.16, window_influence: 0.40, lr: 0.30}

Long-term configs add ``lost_instance_size``, ``confidence_low``, ``confidence_high`` and
``lost_window_influence`` to ``tracker``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from siam_core.models.anchors import AnchorSpec

_TOP_KEYS = {"name", "source", "model", "anchor", "tracker"}
_MODEL_KEYS = {"backbone", "neck", "head"}


def _reject_unknown(where: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _part(where: str, spec: object, optional: bool = False) -> dict[str, Any] | None:
    if spec is None and optional:
        return None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise ValueError(f"{where} must be a mapping with a string 'type', got {spec!r}")
    return copy.deepcopy(dict(spec))


@dataclass(frozen=True)
class ModelConfig:
    """Registered part specs: ``{"type": name, **kwargs}`` each; ``neck`` may be None."""

    backbone: dict[str, Any]
    head: dict[str, Any]
    neck: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        if not isinstance(data, Mapping):
            raise ValueError(f"model must be a mapping, got {data!r}")
        _reject_unknown("model", data, _MODEL_KEYS)
        for key in ("backbone", "head"):
            if key not in data:
                raise ValueError(f"model: missing '{key}'")
        return cls(
            backbone=_part("model.backbone", data["backbone"]) or {},
            head=_part("model.head", data["head"]) or {},
            neck=_part("model.neck", data.get("neck"), optional=True),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone": copy.deepcopy(self.backbone),
            "neck": copy.deepcopy(self.neck),
            "head": copy.deepcopy(self.head),
        }


# Largest network input side a config may ask for (pysot's largest, the long-term 831, fits
# easily); it bounds the memory of a crop and of the network's activations.
MAX_INPUT_SIDE = 2048


@dataclass(frozen=True)
class TrackerConfig:
    """SiamRPN inference hyperparameters (pysot ``cfg.TRACK``, seeds-spec §6.4-6.5)."""

    penalty_k: float
    window_influence: float
    lr: float
    exemplar_size: int = 127
    instance_size: int = 255
    base_size: int = 0
    context_amount: float = 0.5
    lost_instance_size: int | None = None
    confidence_low: float | None = None
    confidence_high: float | None = None
    lost_window_influence: float | None = None

    def __post_init__(self) -> None:
        for name in ("exemplar_size", "instance_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"tracker.{name} must be a positive integer, got {value!r}")
            if value > MAX_INPUT_SIDE:
                raise ValueError(f"tracker.{name} must be <= {MAX_INPUT_SIDE}, got {value}")
        if isinstance(self.base_size, bool) or not isinstance(self.base_size, int):
            raise ValueError(f"tracker.base_size must be an integer, got {self.base_size!r}")
        if self.instance_size < self.exemplar_size:
            raise ValueError(
                f"tracker.instance_size ({self.instance_size}) must be >= exemplar_size "
                f"({self.exemplar_size})"
            )
        for name in ("penalty_k", "context_amount"):
            _check_float(name, getattr(self, name), 0.0, math.inf)
        for name in ("window_influence", "lr"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        lost = self.lost_instance_size
        if lost is not None and (
            isinstance(lost, bool) or not isinstance(lost, int) or lost < self.instance_size
        ):
            raise ValueError(
                f"tracker.lost_instance_size must be an integer >= instance_size, got {lost!r}"
            )
        if lost is not None and lost > MAX_INPUT_SIDE:
            raise ValueError(f"tracker.lost_instance_size must be <= {MAX_INPUT_SIDE}, got {lost}")
        for name in ("confidence_low", "confidence_high", "lost_window_influence"):
            if getattr(self, name) is not None:
                _check_float(name, getattr(self, name), 0.0, 1.0)
        if (
            self.confidence_low is not None
            and self.confidence_high is not None
            and self.confidence_low > self.confidence_high
        ):
            raise ValueError("tracker.confidence_low must not exceed tracker.confidence_high")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackerConfig:
        if not isinstance(data, Mapping):
            raise ValueError(f"tracker must be a mapping, got {data!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        _reject_unknown("tracker", data, fields)
        missing = [f.name for f in dataclasses.fields(cls) if _required(f) and f.name not in data]
        if missing:
            raise ValueError(f"tracker: missing required key(s) {missing}")
        kwargs = dict(data)
        for name in ("penalty_k", "window_influence", "lr", "context_amount"):
            if (
                name in kwargs
                and isinstance(kwargs[name], int)
                and not isinstance(kwargs[name], bool)
            ):
                kwargs[name] = float(kwargs[name])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _check_float(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"tracker.{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"tracker.{name} must lie in [{low}, {high}], got {value}")


@dataclass(frozen=True)
class Config:
    """A complete model + tracker configuration."""

    name: str
    model: ModelConfig
    anchor: AnchorSpec
    tracker: TrackerConfig
    source: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Validate a config mapping (as read from YAML); unknown keys raise ``ValueError``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"config must be a mapping, got {type(data).__name__}")
        _reject_unknown("config", data, _TOP_KEYS)
        for key in ("name", "model", "tracker"):
            if key not in data:
                raise ValueError(f"config: missing '{key}'")
        if not isinstance(data["name"], str) or not data["name"]:
            raise ValueError(f"config: 'name' must be a non-empty string, got {data['name']!r}")
        anchor = AnchorSpec.from_config(data.get("anchor"))
        if anchor.stride <= 0 or not anchor.ratios or not anchor.scales:
            raise ValueError(f"anchor: need a positive stride, ratios and scales, got {anchor}")
        cfg = cls(
            name=data["name"],
            model=ModelConfig.from_dict(data["model"]),
            anchor=anchor,
            tracker=TrackerConfig.from_dict(data["tracker"]),
            source=str(data.get("source") or ""),
        )
        head_anchors = cfg.model.head.get("anchor_num")
        if head_anchors is not None and head_anchors != anchor.num:
            raise ValueError(
                f"model.head.anchor_num ({head_anchors}) differs from the {anchor.num} anchors "
                f"that anchor.ratios x anchor.scales define"
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that ``from_dict`` accepts (JSON/YAML serialisable)."""
        out: dict[str, Any] = {"name": self.name}
        if self.source:
            out["source"] = self.source
        out["model"] = self.model.to_dict()
        out["anchor"] = {
            "stride": self.anchor.stride,
            "ratios": list(self.anchor.ratios),
            "scales": list(self.anchor.scales),
        }
        out["tracker"] = self.tracker.to_dict()
        return out

    def score_size(self, instance_size: int | None = None) -> int:
        """Side of the head output for a search size (pysot: (x - z) // stride + 1 + base)."""
        t = self.tracker
        size = t.instance_size if instance_size is None else instance_size
        return (size - t.exemplar_size) // self.anchor.stride + 1 + t.base_size

    def replace_tracker(self, **changes: Any) -> Config:
        """A copy with some tracker hyperparameters changed (validated)."""
        return dataclasses.replace(self, tracker=dataclasses.replace(self.tracker, **changes))


def _builtin_dir() -> Path:
    return Path(str(resources.files("siam_core") / "configs"))


def list_configs() -> list[str]:
    """Names of the built-in configs."""
    return sorted(p.stem for p in _builtin_dir().glob("*.yaml"))


def load_config(name_or_path: str | Path | Mapping[str, Any] | Config) -> Config:
    """A built-in config by name, a YAML file by path, or a mapping / ``Config`` validated."""
    if isinstance(name_or_path, Config):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return Config.from_dict(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        path = _builtin_dir() / f"{text}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown config '{text}'; built-in: {list_configs()}")
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    try:
        return Config.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
