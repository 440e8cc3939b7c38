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

An optional ``online:`` section (``OnlineConfig`` fields) turns on DROL's online classifier.

Long-term configs add ``lost_instance_size``, ``confidence_low``, ``confidence_high`` and
``lost_window_influence`` to ``tracker``. SiamFC-family configs (``head: XCorrHead``) replace
``penalty_k`` and ``lr`` by ``scale_num``, ``scale_step``, ``scale_penalty``, ``scale_lr`` and
``response_up`` (SiamDW's names, seeds-spec §6.6).
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

_TOP_KEYS = {"name", "source", "model", "anchor", "tracker", "online"}
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


# SiamFC-family settings (SiamDW ``FCConfig``, seeds-spec §6.6); a config that sets
# ``scale_num`` is a SiamFC config and needs all of them, an RPN config none.
_SIAMFC_KEYS = ("scale_num", "scale_step", "scale_penalty", "scale_lr", "response_up")
_RPN_KEYS = ("penalty_k", "lr")
# Largest network input side a config may ask for (pysot's largest, the long-term 831, fits
# easily); it bounds the memory of a crop and of the network's activations.
MAX_INPUT_SIDE = 2048
# OnlineConfig field -> the TrackerConfig field in which a model carries its own value of it
# (Config.online_settings reads them; tools/tune_tracker.py search --write writes them)
ONLINE_TUNED = (
    ("fusion_weight", "online_fusion_weight"),
    ("sample_memory_size", "online_sample_memory_size"),
    ("train_skipping", "online_train_skipping"),
)


@dataclass(frozen=True)
class TrackerConfig:
    """Inference hyperparameters: SiamRPN's (pysot ``cfg.TRACK``, seeds-spec §6.4-6.5) or, with
    ``scale_num`` set, SiamFC's (SiamDW ``FCConfig``, §6.6): ``scale_num`` scales
    ``scale_step ** (i - scale_num // 2)``, non-centre scales' peaks times ``scale_penalty``,
    size damping ``scale_lr``, response upsampled ``response_up`` times."""

    window_influence: float
    penalty_k: float = 0.0
    lr: float = 0.0
    exemplar_size: int = 127
    instance_size: int = 255
    base_size: int = 0
    context_amount: float = 0.5
    lost_instance_size: int | None = None
    confidence_low: float | None = None
    confidence_high: float | None = None
    lost_window_influence: float | None = None
    # this model's λ (Eq. 5) when DROL's classifier is added to it (``--online``, the node's
    # default); None: the paper's. A preset's ``online:`` section and explicit overrides win.
    online_fusion_weight: float | None = None
    # this model's long-term thresholds when DROL's classifier runs: the fused choice often
    # lands on a proposal whose Siamese score is lower, so LOST belongs lower than
    # confidence_low (tools/tune_tracker.py calibration --online). None: confidence_low/high.
    online_confidence_low: float | None = None
    online_confidence_high: float | None = None
    # this model's classifier memory (samples kept) and update interval (frames) when DROL's
    # classifier is added to it: an update costs in proportion to the samples it goes over, so
    # these set the classifier's CPU beside the frame path (tools/tune_tracker.py search
    # --online). None: the paper's 250 and 10.
    online_sample_memory_size: int | None = None
    online_train_skipping: int | None = None
    # long-term mode's appearance check (SiamRPNTracker.appearance: similarity of the box's
    # template kernels to the first frame's): LOST below appearance_low, RECOVERED only above
    # appearance_high (tools/tune_tracker.py appearance). None: no check.
    appearance_low: float | None = None
    appearance_high: float | None = None
    scale_num: int | None = None
    scale_step: float | None = None
    scale_penalty: float | None = None
    scale_lr: float | None = None
    response_up: int | None = None

    @property
    def is_siamfc(self) -> bool:
        """Whether these are SiamFC-family (multi-scale response map) settings."""
        return self.scale_num is not None

    def __post_init__(self) -> None:
        for name in ("exemplar_size", "instance_size"):
            value = getattr(self, name)
            _check_positive_int(name, value)
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
        for name in (
            "confidence_low",
            "confidence_high",
            "lost_window_influence",
            "online_fusion_weight",
            "online_confidence_low",
            "online_confidence_high",
            "appearance_low",
            "appearance_high",
        ):
            if getattr(self, name) is not None:
                _check_float(name, getattr(self, name), 0.0, 1.0)
        for name in ("online_sample_memory_size", "online_train_skipping"):
            if getattr(self, name) is not None:
                _check_positive_int(name, getattr(self, name))
        for prefix in ("confidence", "online_confidence", "appearance"):
            low, high = getattr(self, f"{prefix}_low"), getattr(self, f"{prefix}_high")
            if low is not None and high is not None and low > high:
                name = f"tracker.{prefix}"
                raise ValueError(f"{name}_low must not exceed {name}_high")
        if self.is_siamfc:
            self._check_siamfc()

    def _check_siamfc(self) -> None:
        for name in ("scale_num", "response_up"):
            _check_positive_int(name, getattr(self, name))
        if self.scale_num % 2 != 1:  # type: ignore[operator]
            raise ValueError(
                f"tracker.scale_num must be odd (a centre scale), got {self.scale_num}"
            )
        _check_float("scale_step", self.scale_step, 1.0, 2.0)
        _check_float("scale_penalty", self.scale_penalty, 0.0, 1.0)
        _check_float("scale_lr", self.scale_lr, 0.0, 1.0)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrackerConfig:
        if not isinstance(data, Mapping):
            raise ValueError(f"tracker must be a mapping, got {data!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        _reject_unknown("tracker", data, fields)
        siamfc = "scale_num" in data
        required = ["window_influence", *(_SIAMFC_KEYS if siamfc else _RPN_KEYS)]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"tracker: missing required key(s) {missing}")
        misplaced = [k for k in (_RPN_KEYS if siamfc else _SIAMFC_KEYS[1:]) if k in data]
        if misplaced:
            family = "SiamFC (scale_num set)" if siamfc else "RPN (no scale_num)"
            raise ValueError(f"tracker: key(s) {misplaced} do not apply to a {family} config")
        kwargs = dict(data)
        for name in (
            "penalty_k",
            "window_influence",
            "lr",
            "context_amount",
            "scale_step",
            "scale_penalty",
            "scale_lr",
        ):
            if (
                name in kwargs
                and isinstance(kwargs[name], int)
                and not isinstance(kwargs[name], bool)
            ):
                kwargs[name] = float(kwargs[name])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        skip = _RPN_KEYS if self.is_siamfc else ()
        return {
            k: v for k, v in dataclasses.asdict(self).items() if v is not None and k not in skip
        }


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"tracker.{name} must be a positive integer, got {value!r}")


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
    online: OnlineConfig | None = None  # DROL's online classifier (section ``online:``)

    def online_settings(self) -> OnlineConfig:
        """DROL's settings for this model: its ``online:`` section (the presets), else the
        paper's with the model's tuned λ, memory size and update interval (``tracker.online_*``)
        where it has them."""
        if self.online is not None:
            return self.online
        tuned = {key: getattr(self.tracker, field) for key, field in ONLINE_TUNED}
        return OnlineConfig(**{k: v for k, v in tuned.items() if v is not None})

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
            online=None if data.get("online") is None else OnlineConfig.from_dict(data["online"]),
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
        if self.online is not None:
            out["online"] = self.online.to_dict()
        return out

    def score_size(self, instance_size: int | None = None) -> int:
        """Side of the head output for a search size (pysot: (x - z) // stride + 1 + base)."""
        t = self.tracker
        size = t.instance_size if instance_size is None else instance_size
        return (size - t.exemplar_size) // self.anchor.stride + 1 + t.base_size

    def replace_tracker(self, **changes: Any) -> Config:
        """A copy with some tracker hyperparameters changed (validated)."""
        return dataclasses.replace(self, tracker=dataclasses.replace(self.tracker, **changes))


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; a missing or malformed file is a ``ValueError`` naming ``what``."""
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {path} is not valid YAML: {exc}") from exc


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
    data = read_yaml(path, "config file")
    try:
        return Config.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


# -- DROL online classifier ----------------------------------------------------------------

_ACTIVATIONS = ("none", "relu", "elu", "mlu")


@dataclass(frozen=True)
class OnlineConfig:
    """DROL's online classifier, fusion and template update (seeds-spec §6.9).

    Defaults are DROL's (``pysot/core/config.py`` ``cfg.TRACK`` at commit 4aebe57, the paper's
    settings); the DROL presets' YAML ``online:`` sections change only what their official
    ``experiments/*/config.yaml`` changes. Field names follow DROL's keys in lower case.
    """

    fusion_weight: float = 0.8  # λ of Eq. 5 (COEE_CLASS): 0.8 RPN, 0.6 FC
    seed: int = 12  # TRACK.SEED, reseeded before every init (DROL tools/test.py)
    # compression, attention and filter
    compressed_dim: int = 64
    projection_reg: float = 1e-4
    use_attention: bool = False  # USE_ATTENTION_LAYER
    channel_attention: bool = True
    spatial_attention: str = "pool"  # 'pool' (channel-mean -> sigmoid) or 'none'
    attention_activation: str = "relu"
    projection_activation: str = "none"
    response_activation: tuple[str, float] = ("mlu", 0.05)
    filter_reg: float = 0.1
    kernel_size: tuple[int, int] = (4, 4)
    # which search-feature level feeds the classifier: None = mean of all (pysot FUSE 'avg'),
    # i = level i (0-based; DROL's ADJUST.LAYER = i + 1)
    feature_level: int | None = None
    # first-frame augmentation (crop of expansion_factor x instance size)
    augment_fliplr: bool = True
    augment_rotate: tuple[float, ...] = (5, -5, 10, -10, 20, -20, 30, -30, 45, -45, -60, 60)
    augment_blur: tuple[tuple[float, float], ...] = ((2, 0.2), (0.2, 2), (3, 1), (1, 3), (2, 2))
    augment_relative_shift: tuple[tuple[float, float], ...] = (
        (0.6, 0.6),
        (-0.6, 0.6),
        (0.6, -0.6),
        (-0.6, -0.6),
    )
    augment_dropout: tuple[int, float] = (7, 0.2)
    augment_expansion_factor: int = 2
    random_shift_factor: float = 1 / 3
    # memory and optimisation
    learning_rate: float = 0.01
    init_samples_minimum_weight: float = 0.25
    sample_memory_size: int = 250
    output_sigma_factor: float = 0.25
    init_cg_iter: int = 60
    init_gn_iter: int = 6
    train_skipping: int = 10
    cg_iter: int = 5
    post_init_cg_iter: int = 0
    fletcher_reeves: bool = False
    # filter updates over every memory slot, the empty ones included, as DROL trains: the same
    # result up to rounding, and DROL's rounding to the bit (parity test); off, an update costs
    # only what the stored samples cost (much faster while the memory fills)
    train_empty_slots: bool = False
    # the classifier's projection and filter computed in DROL's order, F.conv2d for the filter
    # (to the bit, parity test); off, one matmul per kernel tap with a linear projection
    # folded in, then shifted sums: the same sums in another order, and a first-frame training
    # several times faster on a CPU (mkldnn's conv with one output map is slow, and slower
    # still differentiated twice)
    drol_order: bool = False
    # localisation states (spec §6.9.3)
    target_not_found_threshold: float = 0.25
    distractor_threshold: float = 0.8
    hard_negative_threshold: float = 0.5
    target_neighborhood_scale: float = 2.2
    displacement_scale: float = 0.8
    hard_negative_learning_rate: float = 0.02
    hard_negative_cg_iter: int = 5
    # short-term template update (Eqs. 6-7)
    template_update: bool = False
    target_update_threshold: float = 0.75  # τ_c
    target_update_skipping: int = 5  # T
    tau_regression: float = 0.6  # υ_r (IoU)
    tau_classification: float = 0.5  # υ_c (score gap)
    # OTB configs: after drift_lost_frames 'not_found' frames move only a quarter of the way
    short_term_drift: bool = False
    drift_lost_frames: int = 8
    drift_factor: float = 0.25
    # long-term mode: this many consecutive 'not_found' frames declare the target lost even
    # when the Siamese score stays high (0 = the Siamese score alone, as DROL)
    lost_after_not_found: int = 0
    # run filter updates on a worker thread so no frame waits for one (the ROS node does)
    async_update: bool = False

    def __post_init__(self) -> None:
        for name in (
            "fusion_weight",
            "random_shift_factor",
            "learning_rate",
            "init_samples_minimum_weight",
            "target_not_found_threshold",
            "distractor_threshold",
            "hard_negative_threshold",
            "hard_negative_learning_rate",
            "target_update_threshold",
            "tau_regression",
            "drift_factor",
        ):
            _check_online_float(name, getattr(self, name), 0.0, 1.0)
        for name in (
            "projection_reg",
            "filter_reg",
            "output_sigma_factor",
            "target_neighborhood_scale",
            "displacement_scale",
            "tau_classification",
        ):
            _check_online_float(name, getattr(self, name), 0.0, math.inf)
        positive = (
            "compressed_dim",
            "sample_memory_size",
            "train_skipping",
            "target_update_skipping",
            "augment_expansion_factor",
        )
        counts = (
            "seed",
            "init_cg_iter",
            "init_gn_iter",
            "cg_iter",
            "post_init_cg_iter",
            "hard_negative_cg_iter",
            "drift_lost_frames",
            "lost_after_not_found",
        )
        for names, low in ((positive, 1), (counts, 0)):
            for name in names:
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < low:
                    raise ValueError(f"online.{name} must be an integer >= {low}, got {value!r}")
        if self.init_gn_iter and self.init_cg_iter % self.init_gn_iter:
            raise ValueError("online.init_cg_iter must be a multiple of init_gn_iter")
        for name in ("attention_activation", "projection_activation"):
            if getattr(self, name) not in _ACTIVATIONS:
                raise ValueError(f"online.{name} must be one of {_ACTIVATIONS}")
        act = self.response_activation
        if act[0] not in _ACTIVATIONS or not isinstance(act[1], int | float) or act[1] <= 0:
            raise ValueError(f"online.response_activation must be (name, param > 0), got {act}")
        if self.spatial_attention not in ("pool", "none"):
            raise ValueError("online.spatial_attention must be 'pool' or 'none'")
        if len(self.kernel_size) != 2 or min(self.kernel_size) < 1:
            raise ValueError(f"online.kernel_size must be two positive ints: {self.kernel_size}")
        n, p = self.augment_dropout
        if n < 0 or not 0.0 <= p < 1.0:
            raise ValueError("online.augment_dropout must be (count >= 0, p in [0, 1))")
        if self.sample_memory_size < self.initial_samples():
            raise ValueError(
                f"online.sample_memory_size ({self.sample_memory_size}) must hold the "
                f"{self.initial_samples()} first-frame samples"
            )
        if self.feature_level is not None and (
            isinstance(self.feature_level, bool)
            or not isinstance(self.feature_level, int)
            or self.feature_level < 0
        ):
            raise ValueError("online.feature_level must be null or an index >= 0")

    def initial_samples(self) -> int:
        """First-frame training samples: identity, shifts, flip, blurs, rotations, dropouts."""
        return (
            1
            + len(self.augment_relative_shift)
            + int(self.augment_fliplr)
            + len(self.augment_blur)
            + len(self.augment_rotate)
            + self.augment_dropout[0]
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OnlineConfig:
        """From a YAML ``online:`` section or ROS parameters; unknown keys raise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"online must be a mapping, got {data!r}")
        _reject_unknown("online", data, {f.name for f in dataclasses.fields(cls)})
        values = dict(data)
        for name in ("augment_rotate",):
            if name in values:
                values[name] = tuple(float(v) for v in values[name])
        for name in ("augment_blur", "augment_relative_shift"):
            if name in values:
                values[name] = tuple(tuple(float(x) for x in v) for v in values[name])
        for name in ("response_activation", "augment_dropout", "kernel_size"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> OnlineConfig:
        """A copy with single fields changed, validated like ``from_dict``."""
        return OnlineConfig.from_dict({**self.to_dict(), **changes})


def _check_online_float(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"online.{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"online.{name} must lie in [{low}, {high}], got {value}")
