"""DaSiamRPN's official checkpoints (``SiamRPNBIG.model``, ``SiamRPNVOT.model``,
``SiamRPNOTB.model`` of foolwood/DaSiamRPN) in our up-channel ``SiameseRPN``.

The official ``SiamRPN`` module maps 1:1 onto ours (pysot-compat.md; the official ``net.py``):
``featureExtract.*`` is the legacy AlexNet (``backbone.features.*``), ``conv_cls1`` / ``conv_r1``
lift the template into the classification / regression kernels, ``conv_cls2`` / ``conv_r2``
adjust the search features, ``regress_adjust`` is the 1x1 regression adjust. Its kernel layout
(``view(2k, F, h, w)`` of the lifted template) is the one ``UPChannelRPN`` uses.

Files are read safely only (``torch.load(weights_only=True)`` or safetensors), through
``siam_core.checkpoint``, which also strips ``module.`` prefixes and unwraps ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from siam_core.checkpoint import load_weights, normalize_state_dict, read_state_dict
from siam_core.config import Config, load_config
from siam_core.models.model import SiameseRPN, build_model

# official prefix -> ours (foolwood/DaSiamRPN code/net.py attribute names)
OFFICIAL_TO_OURS = {
    "featureExtract.": "backbone.features.",
    "conv_cls1.": "rpn_head.template_cls_conv.",
    "conv_r1.": "rpn_head.template_loc_conv.",
    "conv_cls2.": "rpn_head.search_cls_conv.",
    "conv_r2.": "rpn_head.search_loc_conv.",
    "regress_adjust.": "rpn_head.loc_adjust.",
}
OURS_TO_OFFICIAL = {ours: official for official, ours in OFFICIAL_TO_OURS.items()}

# official class -> our config; SiamRPNvot and SiamRPNotb share one architecture
CONFIGS = {
    "SiamRPNBIG": "dasiamrpn_big",
    "SiamRPNvot": "dasiamrpn_vot",
    "SiamRPNotb": "dasiamrpn_otb",
}


def _rename(state: Mapping[str, torch.Tensor], table: dict[str, str], what: str) -> dict:
    out, unknown = {}, []
    for key, value in state.items():
        prefix = next((p for p in table if key.startswith(p)), None)
        if prefix is None:
            unknown.append(key)
        else:
            out[table[prefix] + key[len(prefix) :]] = value
    if unknown:
        raise ValueError(
            f"{what}: key(s) outside the DaSiamRPN layout: {unknown[:8]}"
            + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        )
    return out


def official_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official DaSiamRPN state dict to our keys; unknown keys raise ``ValueError``."""
    return _rename(
        normalize_state_dict(state, "DaSiamRPN state dict"), OFFICIAL_TO_OURS, "DaSiamRPN"
    )


def ours_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our up-channel model's state dict under the official names (BatchNorm's
    ``num_batches_tracked``, which the official files predate, is dropped)."""
    kept = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    return _rename(kept, OURS_TO_OFFICIAL, "our up-channel model")


def to_our_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A normalised state dict under our keys: official DaSiamRPN names renamed, others kept."""
    return official_to_ours(state) if is_official(state) else dict(state)


def is_official(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a (normalised) state dict uses the official DaSiamRPN names."""
    return any(k.startswith("featureExtract.") for k in state)


def guess_name(state: Mapping[str, torch.Tensor]) -> str:
    """``dasiamrpn_big`` from the 192-channel first conv; the 96-channel files (vot and otb)
    cannot be told apart by their tensors, so they need a name."""
    first = state.get("featureExtract.0.weight", state.get("backbone.features.0.weight"))
    if first is None:
        raise ValueError("not a DaSiamRPN state dict: no featureExtract.0.weight")
    if first.shape[0] == 192:
        return "dasiamrpn_big"
    raise ValueError(
        "SiamRPNvot and SiamRPNotb have the same tensors; name the model "
        "(dasiamrpn_vot or dasiamrpn_otb) to get its tracker settings"
    )


def load_dasiamrpn(
    source: str | Path | Mapping[str, torch.Tensor],
    name: str | Config | None = None,
    device: str | torch.device = "cpu",
) -> tuple[SiameseRPN, Config]:
    """Build our model from an official DaSiamRPN checkpoint (file or state dict).

    ``name`` is ``dasiamrpn_big`` / ``dasiamrpn_vot`` / ``dasiamrpn_otb`` (or a ``Config`` for
    the same architecture with other settings); for SiamRPNBIG files it may be omitted. Every
    key and shape must match; mismatches raise ``ValueError`` naming them.
    """
    if isinstance(source, str | Path):
        raw = read_state_dict(source)
        where = str(source)
    else:
        raw = normalize_state_dict(source, "DaSiamRPN state dict")
        where = "state dict"
    if not is_official(raw):
        raise ValueError(
            f"{where} does not use DaSiamRPN's key names (featureExtract.*, conv_cls1)"
        )
    cfg = load_config(name if name is not None else guess_name(raw))
    big = raw["featureExtract.0.weight"].shape[0] == 192
    if big != (cfg.model.backbone.get("width_mult", 1.0) == 2.0):
        raise ValueError(
            f"{where} is a {'SiamRPNBIG' if big else 'SiamRPNvot/otb'} checkpoint but the "
            f"config '{cfg.name}' describes the other architecture"
        )
    model = build_model(cfg)
    load_weights(model, official_to_ours(raw))
    return model.to(device).eval(), cfg
