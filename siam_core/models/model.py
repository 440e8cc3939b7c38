"""The Siamese RPN model: backbone -> optional neck -> RPN head, split for tracking.

Submodules are named ``backbone``, ``neck`` (only when configured) and ``rpn_head`` exactly as
pysot's ``ModelBuilder`` names them, so its state dicts load key for key. Inference is split as
the tracker needs it (seeds-spec §1.5): ``template(z)`` once per target returns the head's
precomputed kernels, ``track(x, kernels)`` runs per frame. ``forward(z, x)`` does both, for
export. Training losses live elsewhere; this module only computes head outputs.

Inputs are float BGR patches in 0..255, (B, 3, H, W), as pysot feeds them (no normalisation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Importing the part modules fills the registries.
from siam_core.models import alexnet, cir, heads, mobilenet, resnet  # noqa: F401
from siam_core.models import neck as _neck  # noqa: F401
from siam_core.models.heads import Kernels
from siam_core.registry import BACKBONES, HEADS, NECKS


def _check_patch(t: object, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"{what} must be (B, 3, H, W), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{what} must be a floating-point tensor, got {t.dtype}")
    return t


class SiameseRPN(nn.Module):
    """Siamese network with an RPN head (SiamRPN, SiamRPN++)."""

    def __init__(self, backbone: nn.Module, rpn_head: nn.Module, neck: nn.Module | None = None):
        super().__init__()
        self.backbone = backbone
        if neck is not None:
            self.neck = neck
        self.rpn_head = rpn_head

    @property
    def anchor_num(self) -> int:
        return int(self.rpn_head.anchor_num)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone (and neck) feature maps, one per level."""
        return self.adjust(self.backbone(x))

    def adjust(self, feats: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
        """The neck on backbone output (identity without one), one map per level.

        Separate from :meth:`features` so training on cached backbone maps (frozen backbone)
        runs exactly the layers after the backbone.
        """
        if hasattr(self, "neck"):
            feats = self.neck(feats)
        return [feats] if isinstance(feats, torch.Tensor) else list(feats)

    def forward_backbone_maps(
        self, zf: list[torch.Tensor], xf: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` from the backbone's maps of template and search patches onwards."""
        return self.rpn_head.track(self.rpn_head.template(self.adjust(zf)), self.adjust(xf))

    def template(self, z: torch.Tensor) -> Kernels:
        """Run the template branch once: the head's kernels for exemplar patches ``z``."""
        return self.rpn_head.template(self.features(_check_patch(z, "template patch")))

    def track(self, x: torch.Tensor, kernels: Kernels) -> tuple[torch.Tensor, torch.Tensor]:
        """Head outputs (cls (B, 2k, S, S), loc (B, 4k, S, S)) for search patches ``x``."""
        return self.rpn_head.track(kernels, self.features(_check_patch(x, "search patch")))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.track(x, self.template(z))


class SiameseFC(nn.Module):
    """Siamese network with a cross-correlation head (SiamFC, SiamFC+): one response channel.

    The same ``template`` / ``track`` split as ``SiameseRPN``; ``track`` returns the
    (B, 1, S, S) response map (the head's ``out_scale`` applied, no sigmoid).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.backbone(x)
        return [feats] if isinstance(feats, torch.Tensor) else list(feats)

    def template(self, z: torch.Tensor) -> Kernels:
        return self.head.template(self.features(_check_patch(z, "template patch")))

    def track(self, x: torch.Tensor, kernels: Kernels) -> torch.Tensor:
        """Response maps for search patches ``x``; several patches may share one template."""
        return self.respond(self.features(_check_patch(x, "search patch")), kernels)

    def respond(self, feats: list[torch.Tensor], kernels: Kernels) -> torch.Tensor:
        """``track`` from the search patches' backbone maps onwards (an online classifier
        reads the same maps)."""
        if kernels[0].shape[0] == 1 and feats[-1].shape[0] > 1:
            # one template, a batch of scales: one plain convolution, as SiamDW's Corr_Up does
            # in eval mode (``0.1 * F.conv2d(x_f, z_f)``)
            out = F.conv2d(feats[-1], kernels[0]) * self.head.out_scale
            return out if self.head.bias is None else out + self.head.bias
        return self.head.track(kernels, feats)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.track(x, self.template(z))


def build_model(cfg: Any) -> SiameseRPN | SiameseFC:
    """Build an (untrained) model from a ``Config``, a full config mapping or its ``model`` part.

    A config whose tracker settings are SiamFC's (``scale_num``) gives a ``SiameseFC``, any
    other an RPN ``SiameseRPN``. Weights are loaded separately (``siam_core.checkpoint``).
    """
    from siam_core.config import Config, ModelConfig

    if isinstance(cfg, Config):
        model_cfg = cfg.model
    elif isinstance(cfg, ModelConfig):
        model_cfg = cfg
    elif isinstance(cfg, Mapping):
        model_cfg = Config.from_dict(cfg).model if "model" in cfg else ModelConfig.from_dict(cfg)
    else:
        raise ValueError(f"build_model needs a Config or a mapping, got {type(cfg).__name__}")
    if _is_siamfc(cfg):
        head = HEADS.build(model_cfg.head)
        if hasattr(head, "anchor_num") or not hasattr(head, "out_scale"):
            raise ValueError(f"head '{model_cfg.head['type']}' is not a SiamFC correlation head")
        return SiameseFC(BACKBONES.build(model_cfg.backbone), head)
    head = HEADS.build(model_cfg.head)
    if not hasattr(head, "anchor_num"):
        raise ValueError(f"head '{model_cfg.head['type']}' is not an RPN head")
    return SiameseRPN(
        backbone=BACKBONES.build(model_cfg.backbone),
        neck=NECKS.build(model_cfg.neck) if model_cfg.neck is not None else None,
        rpn_head=head,
    )


def _is_siamfc(cfg: Any) -> bool:
    from siam_core.config import Config

    if isinstance(cfg, Mapping) and "model" in cfg:
        cfg = Config.from_dict(cfg)
    return isinstance(cfg, Config) and cfg.tracker.is_siamfc


@torch.no_grad()
def calibrate_untrained(
    model: SiameseRPN,
    z: torch.Tensor,
    x: torch.Tensor,
    cls_std: float = 1.0,
    loc_std: float = 0.1,
) -> None:
    """Rescale the last layer of every RPN branch of an untrained model so that, on patches
    ``z`` / ``x``, cls logits have spread ``cls_std`` and loc deltas ``loc_std``.

    Random weights give huge deltas whose ``exp`` overflows in box decoding; timing runs and
    tests with untrained networks need outputs in a trained model's range. Scaling a branch's
    last linear layer (weight and bias) scales its output exactly.
    """
    cls, loc = model(z, x)
    cls_layers: list[nn.Conv2d] = []
    loc_layers: list[nn.Conv2d] = []
    for module in model.rpn_head.modules():
        if isinstance(module, heads.DepthwiseXCorr):
            last = module.head[-1]
            is_cls = last.out_channels == 2 * model.anchor_num
            (cls_layers if is_cls else loc_layers).append(last)
        elif isinstance(module, heads.UPChannelRPN):
            cls_layers.append(module.template_cls_conv)
            loc_layers.append(module.loc_adjust)
    if not cls_layers or not loc_layers:
        raise ValueError(f"calibrate_untrained: no RPN branches in {type(model.rpn_head).__name__}")
    for layers, out, target in ((cls_layers, cls, cls_std), (loc_layers, loc, loc_std)):
        spread = float(out.std())
        if not spread > 0 or not torch.isfinite(out).all():
            raise ValueError("calibrate_untrained: the model's outputs are constant or non-finite")
        for layer in layers:
            layer.weight.mul_(target / spread)
            if layer.bias is not None:
                layer.bias.mul_(target / spread)
