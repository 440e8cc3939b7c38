"""Checkpoints: pysot ``model.pth`` files as published, and our own safetensors format.

Loading is safe only: safetensors, or pickles through ``torch.load(weights_only=True)``.

pysot files are plain state dicts under pysot's key names, possibly wrapped in
``{"state_dict": ...}`` (training snapshots), possibly with DataParallel's ``module.`` prefix,
possibly without BatchNorm's ``num_batches_tracked`` (older releases); all of that is accepted.

Our format is a safetensors file whose metadata holds the model's config as JSON
(``siam_core.config``), so a file rebuilds its own model: ``load_checkpoint(path)``. Half
precision files load as float32.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from siam_core.config import Config
from siam_core.models.model import SiameseRPN, build_model

FORMAT = "siam_core"
FORMAT_VERSION = "1"
_SAFETENSORS_SUFFIXES = (".safetensors", ".st")


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    if not p.is_file():
        raise ValueError(f"checkpoint path is not a file: {p}")
    return p


def _is_safetensors(p: Path) -> bool:
    """Safetensors files start with an 8-byte header length followed by a JSON '{'."""
    if p.suffix in _SAFETENSORS_SUFFIXES:
        return True
    with p.open("rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**27


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, keys normalised (``module.`` stripped), floats as float32."""
    p = _check_file(path)
    if _is_safetensors(p):
        try:
            raw: Any = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ValueError(f"{p}: not a readable safetensors file ({exc})") from exc
    else:
        try:
            with warnings.catch_warnings():  # its pickle-protocol warnings reach no user
                warnings.simplefilter("ignore")
                raw = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ValueError(
                f"{p}: not a safe checkpoint: only plain tensors are loaded, and this file holds "
                f"something else or is damaged ({_short(exc)})"
            ) from exc
        except Exception as exc:  # torch.load fails in many ways on a damaged file
            raise ValueError(f"{p}: not a loadable torch checkpoint ({_short(exc)})") from exc
    return normalize_state_dict(raw, str(p))


def _short(exc: Exception) -> str:
    """The informative part of a (long) torch.load error, without its advice on loading the
    file unsafely (``weights_only=False``, allow-listing globals)."""
    text = " ".join(str(exc).split())
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    for advice in (" Please use", " Check the documentation", " Re-running"):
        text = text.split(advice)[0]
    text = text.strip(" .")
    if not text or "weights_only" in text:
        return type(exc).__name__
    return text


def _listing(keys: list[str], limit: int = 30) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... (+{len(keys) - limit} more)' if len(keys) > limit else ''}]"


def normalize_state_dict(raw: object, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}``, strip ``module.``, cast floating tensors to float32."""
    if isinstance(raw, Mapping) and "state_dict" in raw and isinstance(raw["state_dict"], Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError(f"{where}: expected a non-empty mapping of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: entry '{key}' is a {type(value).__name__}, not a tensor")
        name = key[len("module.") :] if key.startswith("module.") else key
        out[name] = value.float() if value.is_floating_point() else value
    return out


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor] | str | Path) -> None:
    """Load a state dict (or file) into ``model``; every key and shape must match.

    Missing ``num_batches_tracked`` buffers keep the model's values. Anything else missing,
    unexpected or of the wrong shape raises ``ValueError`` listing all the offending keys.
    """
    sd = read_state_dict(state) if isinstance(state, str | Path) else normalize_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    wrong = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [f"checkpoint does not match {type(model).__name__}"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if wrong:
            parts.append(f"shape mismatches ({len(wrong)}): {_listing(wrong)}")
        raise ValueError("; ".join(parts))
    full = {k: sd.get(k, own[k]) for k in own}
    model.load_state_dict(full, strict=True)


def save_checkpoint(model: nn.Module, cfg: Config, path: str | Path, fp16: bool = False) -> Path:
    """Write ``model``'s weights and ``cfg`` to a safetensors file (floats as fp16 if asked)."""
    tensors = {}
    for key, value in model.state_dict().items():
        t = value.detach().to("cpu")
        if fp16 and t.is_floating_point():
            t = t.half()
        tensors[key] = t.contiguous()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(cfg.to_dict()),
    }
    p = Path(path)
    save_file(tensors, str(p), metadata=meta)
    # safetensors creates the file mode 0600; give it the permissions any new file gets (umask),
    # so that a node running as another user can read the weights.
    umask = os.umask(0)
    os.umask(umask)
    p.chmod(0o666 & ~umask)
    return p


def read_config(path: str | Path) -> Config | None:
    """The config embedded in one of our safetensors files; None for files without one."""
    p = _check_file(path)
    if not _is_safetensors(p):
        return None
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{p}: not a readable safetensors file ({exc})") from exc
    if "config" not in meta:
        return None
    try:
        data = json.loads(meta["config"])
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{p}: embedded config is not valid JSON ({exc})") from exc
    try:
        return Config.from_dict(data)
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        raise ValueError(f"{p}: embedded config is not usable: {exc}") from exc


def load_checkpoint(
    path: str | Path, cfg: Config | None = None, device: str | torch.device = "cpu"
) -> tuple[SiameseRPN, Config]:
    """Build and load the model of a checkpoint; returns ``(model in eval mode, config)``.

    Our files carry their config. pysot files (and safetensors without one) need ``cfg``; a
    given ``cfg`` overrides an embedded one (e.g. to change tracker settings).
    DaSiamRPN's official files (``featureExtract.*``, ``conv_cls1``, ...) load too, under
    ``dasiamrpn_vot`` / ``dasiamrpn_otb`` / ``dasiamrpn_big`` (the last recognised by its
    tensors when ``cfg`` is None).
    """
    # local import: the DaSiamRPN key mapping builds on this module's readers
    from siam_core.models.dasiamrpn_compat import is_official, load_dasiamrpn

    embedded = read_config(path)
    config = cfg or embedded
    state = read_state_dict(path)
    if is_official(state):
        return load_dasiamrpn(state, config, device)
    if config is None:
        raise ValueError(
            f"{path} has no embedded config (a pysot or foreign file); say which model it is, "
            f"e.g. --model siamrpn_alex_dwxcorr"
        )
    model = build_model(config)
    load_weights(model, state)
    return model.to(device).eval(), config
