"""Shared data paths and an honest test double for "the network" on real frames.

The double (``cosine_double``) is a real ``SiameseRPN`` with a real ``UPChannelRPN`` head whose
weights are set by hand, on ImageNet MobileNetV2 features (torchvision's weights, the only
pretrained CNN here): its foreground logit is ``gain * (mean cosine similarity - offset)``
between the template's and a search window's per-position L2-normalised layer-4 features, its
box regression returns the first frame's target size. It is a stand-in for a trained tracker,
so the state machine, search growth, distractor module and re-acquisition run on real frames
before a trained model exists; it is not a tracker anyone would deploy. ``gain`` and ``offset``
were fixed once from bag frames 76-130 (visible target ~0.5-0.9 mean cosine, best background
match ~0.2) so that its probabilities span the range a trained network's do.

``cosine_fc_double`` is the SiamFC-family counterpart: the same features in a real
``SiameseFC`` with a real ``XCorrHead`` whose response is the mean cosine similarity (plus the
constant channel's 1), the only SiamFC network here whose response means similarity (the SiamDW
parity weights are random).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siam_core.config import Config, load_config
from siam_core.data import Sequence, load_sequence
from siam_core.eval.occlusion import hide_target as hide_target  # the tests' name for it
from siam_core.models.heads import UPChannelRPN, XCorrHead
from siam_core.models.mobilenet import MobileNetV2TV, load_imagenet_weights
from siam_core.models.model import SiameseFC, SiameseRPN
from siam_core.tracker.siamfc import SiamFCTracker

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
SEQUENCES = DATA / "sequences"
PARITY = DATA / "parity" / "pysot_siamrpn_alex_dwxcorr"
BAG = DATA / "bag.avi"
DEFAULT_WEIGHTS = REPO / "siam_core" / "weights" / "default.safetensors"

# torchvision's ImageNet normalisation (RGB, 0..1 scale)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_LAYER = 4  # MobileNetV2 stage 4: 64 channels, stride 8 with pysot's dilation
_CHANNELS = 64


def need(path: Path) -> Path:
    """Return ``path``, or skip the test saying which shared file is absent."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


def sequence(name: str) -> Sequence:
    """A shared sequence by its path under ``sequences/`` (e.g. ``vot/bag``)."""
    return load_sequence(need(SEQUENCES / name))


def iou(a, b) -> float:
    """IoU of two (x, y, w, h) boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


class ImageNetCosineBackbone(nn.Module):
    """ImageNet MobileNetV2 layer-4 features, L2-normalised per position, plus a constant
    channel (lets the head add an offset); template maps are centre-cropped 15 -> 7 as
    pysot's neck does."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MobileNetV2TV(used_layers=(_LAYER,))
        load_imagenet_weights(self.net)
        self.net.eval()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        rgb = x.flip(1)  # patches are BGR
        f = self.net((rgb - self.mean) / self.std)[0]
        f = F.normalize(f, dim=1, eps=1e-6)
        f = torch.cat([f, torch.ones_like(f[:, :1])], dim=1)
        if f.shape[-1] < 20:
            lo = (f.shape[-1] - 7) // 2
            f = f[..., lo : lo + 7, lo : lo + 7]
        return [f]


def _cosine_head(target_wh: tuple[float, float], cfg: Config, gain: float, offset: float):
    """An ``UPChannelRPN`` computing ``gain * (mean cosine - offset)`` as the foreground logit
    (background logit 0) and regressing every anchor to ``target_wh`` (search-patch pixels)."""
    channels = _CHANNELS + 1
    k = cfg.anchor.num
    head = UPChannelRPN(anchor_num=k, feature_in=channels)
    positions = 25  # 5 x 5 kernel after the 3 x 3 template conv on the 7 x 7 template map
    sizes = cfg.anchor.sizes()
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        for conv in (head.search_cls_conv, head.search_loc_conv):
            for c in range(channels):
                conv.weight[c, c, 1, 1] = 1.0  # identity: search features pass unchanged
        for a in range(k, 2 * k):  # foreground kernels; kernel n holds channels n*C..(n+1)*C-1
            for c in range(_CHANNELS):
                head.template_cls_conv.weight[a * channels + c, c, 1, 1] = gain / positions
            head.template_cls_conv.bias[a * channels + _CHANNELS] = -gain * offset / positions
        # regression kernels are zero; the 1x1 adjust's bias gives dx = dy = 0 and the sizes
        for a in range(k):
            head.loc_adjust.bias[2 * k + a] = math.log(target_wh[0] / sizes[a, 0])
            head.loc_adjust.bias[3 * k + a] = math.log(target_wh[1] / sizes[a, 1])
    return head


def double_config(**tracker: float) -> Config:
    """Config of the double: pysot's SiamRPN++ geometry (255 -> 25 x 25, base size 8)."""
    settings = {
        "exemplar_size": 127,
        "instance_size": 255,
        "base_size": 8,
        "context_amount": 0.5,
        "penalty_k": 0.05,
        "window_influence": 0.40,
        "lr": 0.30,
    }
    settings.update(tracker)
    return Config.from_dict(
        {
            "name": "imagenet_cosine_double",
            "source": "test double: ImageNet MobileNetV2 features, hand-set up-channel head",
            "model": {
                "backbone": {"type": "MobileNetV2TV", "used_layers": [_LAYER]},
                "head": {"type": "UPChannelRPN", "anchor_num": 5, "feature_in": _CHANNELS + 1},
            },
            "anchor": {"stride": 8, "ratios": [0.33, 0.5, 1, 2, 3], "scales": [8]},
            "tracker": settings,
        }
    )


def cosine_double(
    box, cfg: Config | None = None, gain: float = 40.0, offset: float = 0.3
) -> tuple[SiameseRPN, Config]:
    """The double for a target whose first box is ``box`` (its size sets the regression)."""
    cfg = cfg or double_config()
    w, h = float(box[2]), float(box[3])
    pad = cfg.tracker.context_amount * (w + h)
    scale = cfg.tracker.exemplar_size / math.sqrt((w + pad) * (h + pad))
    head = _cosine_head((w * scale, h * scale), cfg, gain, offset)
    return SiameseRPN(ImageNetCosineBackbone(), head).eval(), cfg


def fc_double_config() -> Config:
    """SiamFC config of the double: the SiamFC+ settings of DW §5.1 (the
    ``siamfcplus_ciresnet16`` preset's: 3 scales 1.0482, damping 0.3629, penalty 0.9745,
    window 0.35) on the double's 255 -> 25 x 25 geometry (base size 8)."""
    tracker = {**load_config("siamfcplus_ciresnet16").tracker.to_dict(), "base_size": 8}
    return Config.from_dict(
        {
            "name": "imagenet_cosine_fc_double",
            "source": "test double: ImageNet MobileNetV2 features, mean-cosine correlation",
            "model": {
                "backbone": {"type": "MobileNetV2TV", "used_layers": [_LAYER]},
                "head": {"type": "XCorrHead", "out_scale": 1 / 49, "bias": False},
            },
            "anchor": {"stride": 8},
            "tracker": tracker,
        }
    )


def cosine_fc_double() -> tuple[SiameseFC, Config]:
    """The SiamFC double: response = mean over the 7 x 7 template positions of the cosine
    similarity, plus 1 (the constant channel)."""
    head = XCorrHead(out_scale=1 / 49, bias=False)
    return SiameseFC(ImageNetCosineBackbone(), head).eval(), fc_double_config()


def cosine_fc_tracker() -> SiamFCTracker:
    """The SiamFC double as a tracker: a zero-argument builder for tracker specs
    (``_doubles:cosine_fc_tracker``, e.g. for ``tools/siamfc_thresholds.py``)."""
    return SiamFCTracker(*cosine_fc_double())
