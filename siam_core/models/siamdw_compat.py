"""SiamDW's official checkpoints (``SiamFCRes22``, ``SiamFCIncep22``, ``SiamFCNext22``,
``SiamRPNRes22`` of researchmm/SiamDW) in our models.

The official models (``lib/models/models.py``) hold the backbone as ``features.features`` (a
wrapper around the CIR network) and the head as ``connect_model``: ``Corr_Up`` has no
parameters, ``RPN_Up`` has ``template_cls`` / ``template_reg`` (template lifted to k * 256 and
4k * 256 channels), ``search_cls`` / ``search_reg`` and the 1x1 ``adjust``
(``lib/models/connect.py``). Our CIR backbones keep the official module names
(``siam_core.models.cir``), so only these prefixes change.

Files are read safely only (``torch.load(weights_only=True)`` or safetensors) through
``siam_core.checkpoint``, which also strips ``module.`` and unwraps ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from siam_core.checkpoint import load_weights, normalize_state_dict, read_config, read_state_dict
from siam_core.config import Config, load_config
from siam_core.models.model import SiameseFC, SiameseRPN, build_model

# official prefix -> ours
OFFICIAL_TO_OURS = {
    "features.features.": "backbone.",
    "connect_model.template_cls.": "rpn_head.template_cls_conv.",
    "connect_model.template_reg.": "rpn_head.template_loc_conv.",
    "connect_model.search_cls.": "rpn_head.search_cls_conv.",
    "connect_model.search_reg.": "rpn_head.search_loc_conv.",
    "connect_model.adjust.": "rpn_head.loc_adjust.",
}

# official architecture (models.py class) -> our preset names, VOT and OTB settings (and
# SiamFCRes22 in long-term mode)
PRESETS = {
    "SiamFCRes22": (
        "siamfcplus_ciresnet22_vot",
        "siamfcplus_ciresnet22_otb",
        "siamfcplus_ciresnet22_lt",
    ),
    "SiamFCIncep22": ("siamfcplus_ciresinception22_vot", "siamfcplus_ciresinception22_otb"),
    "SiamFCNext22": ("siamfcplus_ciresnext22_vot", "siamfcplus_ciresnext22_otb"),
    "SiamRPNRes22": ("siamrpnplus_ciresnet22_vot", "siamrpnplus_ciresnet22_otb"),
}


def is_siamdw_config(cfg: Config) -> bool:
    """Whether a config is one of the SiamDW presets (official conventions apply)."""
    return cfg.name in _all_presets()


def is_official(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a (normalised) state dict uses SiamDW's key names."""
    return any(k.startswith("features.features.") for k in state)


def official_to_ours(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official SiamDW state dict to our keys; unknown keys raise ``ValueError``."""
    out, unknown = {}, []
    for key, value in normalize_state_dict(state, "SiamDW state dict").items():
        prefix = next((p for p in OFFICIAL_TO_OURS if key.startswith(p)), None)
        if prefix is None:
            unknown.append(key)
        else:
            out[OFFICIAL_TO_OURS[prefix] + key[len(prefix) :]] = value
    if unknown:
        raise ValueError(f"SiamDW: key(s) outside the official layout: {unknown[:8]}")
    return out


def guess_architecture(state: Mapping[str, torch.Tensor]) -> str:
    """The official class a state dict (official or our keys) belongs to, from its tensors."""
    keys = set(state)
    if any("template_cls" in k for k in keys):
        return "SiamRPNRes22"
    if any(".branch1x1." in k for k in keys):
        return "SiamFCIncep22"
    if any(".basic.conv3_0." in k for k in keys):
        return "SiamFCNext22"
    if any(k.endswith("layer2.0.conv2.weight") for k in keys):
        return "SiamFCRes22"
    raise ValueError("not a SiamDW state dict (no CIResNet / Inception / NeXt backbone keys)")


def load_siamdw_model(
    cfg: Config | str | None,
    source: str | Path | Mapping[str, torch.Tensor] | None,
    device: str | torch.device = "cpu",
) -> SiameseFC | SiameseRPN:
    """Our model from an official SiamDW checkpoint, one of our files, or random (no source).

    ``cfg`` names the preset (it carries the tracker settings; an official file alone cannot
    say whether VOT or OTB settings are wanted); for our files it may be omitted. Every key and
    shape must match; mismatches raise ``ValueError`` naming them.
    """
    if cfg is None:
        embedded = read_config(source) if isinstance(source, str | Path) else None
        if embedded is None:
            raise ValueError(f"name the model for {source}: one of {sorted(_all_presets())}")
        cfg = embedded
    config = load_config(cfg)
    model = build_model(config)
    if source is not None:
        raw = (
            read_state_dict(source)
            if isinstance(source, str | Path)
            else normalize_state_dict(source, "SiamDW state dict")
        )
        if is_official(raw):
            arch = guess_architecture(raw)
            if config.name in _all_presets() and config.name not in PRESETS[arch]:
                raise ValueError(
                    f"{source if isinstance(source, str | Path) else 'state dict'} is an "
                    f"official {arch} checkpoint; name one of {list(PRESETS[arch])}, "
                    f"not '{config.name}'"
                )
            raw = official_to_ours(raw)
        load_weights(model, raw)
    return model.to(device).eval()


def _all_presets() -> list[str]:
    return [name for names in PRESETS.values() for name in names]
