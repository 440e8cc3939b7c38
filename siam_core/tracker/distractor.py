"""Distractor-aware inference (DaSiamRPN §3.3, seeds-spec §6.7) for every RPN-family head.

Per frame:

1. every anchor's proposal is scored as SiamRPN scores it (softmax, shape penalty, cosine
   window), with the *learned* target template;
2. NMS over the proposals ordered by that score; the ``top_k`` survivors form the set P;
3. P is re-ranked by the distractor-aware similarity (paper Eq. 2-4)
   ``f(z, p) - alpha_hat * sum_i alpha_i f(d_i, p) / sum_i alpha_i``, evaluated as one
   correlation with the averaged distractor kernels (Eq. 3; linearity of correlation), so the
   cost does not grow with the number of distractors;
4. the other proposals scoring above ``distractor_threshold`` (after NMS, not overlapping the
   chosen one) are this frame's distractors;
5. ``learn``: the template kernels of the chosen target and of the distractors enter running
   weighted averages (Eq. 4) with rate ``eta``. Their embeddings phi(z_t), phi(d_i) are by
   default (``template_source="search"``) the template-sized windows of the search features
   under each proposal's anchor cell, so learning needs no extra backbone pass (exact for
   unpadded backbones such as AlexNet, close for padded ones); ``"crop"`` runs the template
   branch on 127 crops at the target's updated box and at the distractors instead.

Similarity ``f`` is the foreground-minus-background logit of the classification branch. For
the up-channel head (SiamRPN / DaSiamRPN) the logits are linear in the kernels, so the averaged
kernel gives exactly the averaged similarity. For depth-wise heads (SiamRPN++) the correlation
map is linear in the kernel but a 1x1 conv-BN-ReLU follows, so the distractor term is the
similarity to the *mean distractor kernel*; it is still one extra correlation. Only the
classification kernels are learned; regression keeps the first frame's (spec I7).

The paper gives alpha_hat = 0.5, alpha_i = 1 and eta = 0.01 and leaves the NMS threshold, the
distractor threshold h and k of the top-k unstated; those defaults are ours (NMS IoU 0.3 was
compared with 0 on vot/basketball, a tuning sequence, with a stand-in network: started from 6
frames, 0.3 lost the player from 3 of them, 0 from all 6, as did plain SiamRPN). With one alpha_i
for every distractor, as the paper sets it, alpha_i cancels out of Eq. 2-4 (the distractor term
is their plain mean), so it is not a parameter. Eq. 4's beta_t = sum_{i<t} (eta / (1 - eta))^i,
as printed, gives a near-uniform average over all past frames; ``weighting="ema"`` (default,
spec I7) reads eta as the rate of an exponential moving average seeded with the first frame's
template (and with the first distractors seen), ``weighting="printed"`` uses the formula as
printed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from siam_core.config import Config
from siam_core.models.heads import (
    DepthwiseRPN,
    Kernels,
    MultiRPN,
    UPChannelRPN,
    xcorr_depthwise,
    xcorr_fast,
)
from siam_core.models.model import SiameseRPN
from siam_core.tracker.base import Box, TrackResult, TrackState
from siam_core.tracker.siamrpn import SearchResult, SiamRPNTracker, clip_box, crop_patch

WEIGHTINGS = ("ema", "printed")
TEMPLATE_SOURCES = ("search", "crop")


@dataclass(frozen=True)
class DistractorConfig:
    """Distractor-aware inference settings; every constant of the method is here."""

    alpha_hat: float = 0.5  # DA §4.1: overall distractor weight
    eta: float = 0.01  # DA §4.1: incremental learning rate
    distractor_threshold: float = 0.5  # h; not in the paper: the net calls it foreground
    top_k: int = 5  # |P|; not in the paper
    nms_iou: float = 0.3  # not in the paper
    max_distractors: int = 4  # ours: bounds the templates learned per frame
    weighting: str = "ema"
    template_source: str = "search"

    def __post_init__(self) -> None:
        _number("alpha_hat", self.alpha_hat, 0.0, math.inf)
        _number("eta", self.eta, 0.0, 1.0)
        if not 0.0 < self.eta < 0.5:
            # the printed beta_t is a geometric series in eta / (1 - eta): it needs eta < 0.5
            raise ValueError(f"distractor.eta must lie in (0, 0.5), got {self.eta}")
        _number("distractor_threshold", self.distractor_threshold, 0.0, 1.0)
        _number("nms_iou", self.nms_iou, 0.0, 1.0)
        for name, low in (("top_k", 1), ("max_distractors", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"distractor.{name} must be an integer >= {low}, got {value!r}")
        if self.template_source not in TEMPLATE_SOURCES:
            raise ValueError(
                f"distractor.template_source must be one of {TEMPLATE_SOURCES}: "
                f"{self.template_source!r}"
            )
        if self.weighting not in WEIGHTINGS:
            raise ValueError(
                f"distractor.weighting must be one of {WEIGHTINGS}, got {self.weighting!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistractorConfig:
        """From a mapping (a YAML section, ROS parameters); unknown keys are rejected."""
        if not isinstance(data, Mapping):
            raise ValueError(f"distractor settings must be a mapping, got {data!r}")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"distractor: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)


def _number(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"distractor.{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"distractor.{name} must lie in [{low}, {high}], got {value}")


# --- head access -----------------------------------------------------------------------------


class HeadOps:
    """How the distractor module reaches one head type's classification kernels.

    ``cls_part`` picks the classification kernels out of ``head.template``'s list,
    ``cls_templates`` computes them alone for a batch of template crops (one kernel set per
    crop), and ``scores`` runs the classification branch for several kernel sets in one pass
    plus the regression branch once: ``(cls (N, 2k, S, S), loc (1, 4k, S, S))``.
    """

    def cls_part(self, kernels: Kernels) -> Kernels:
        raise NotImplementedError

    def template_sizes(self, head: torch.nn.Module, kernels: Kernels) -> list[int]:
        """Side of the template feature map per level: the kernel's plus what the head's
        unpadded template conv removed."""
        raise NotImplementedError

    def cls_templates(self, head: torch.nn.Module, zfs: Sequence[torch.Tensor]) -> list[Kernels]:
        raise NotImplementedError

    def scores(
        self,
        head: torch.nn.Module,
        kernels: Kernels,
        cls_sets: Sequence[Kernels],
        xfs: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class UpChannelOps(HeadOps):
    """SiamRPN / DaSiamRPN up-channel head: kernels ``[cls (2k, C, h, w), loc (4k, C, h, w)]``."""

    def cls_part(self, kernels: Kernels) -> Kernels:
        return [kernels[0]]

    def template_sizes(self, head, kernels):
        return [kernels[0].shape[-1] + head.template_cls_conv.kernel_size[0] - 1]

    def cls_templates(self, head: torch.nn.Module, zfs: Sequence[torch.Tensor]) -> list[Kernels]:
        z = zfs[0]
        cls_k = head.template_cls_conv(z)
        per = cls_k.reshape(z.shape[0], -1, z.shape[1], cls_k.shape[2], cls_k.shape[3])
        return [[per[b]] for b in range(z.shape[0])]

    def scores(self, head, kernels, cls_sets, xfs):
        x = xfs[0]
        stacked = torch.cat([s[0] for s in cls_sets])  # one grouped conv for every set
        cls = xcorr_fast(head.search_cls_conv(x), stacked)
        cls = cls.reshape(len(cls_sets), -1, cls.shape[2], cls.shape[3])
        loc = head.loc_adjust(xcorr_fast(head.search_loc_conv(x), kernels[1]))
        return cls, loc


def _depthwise_cls(branch: torch.nn.Module, x: torch.Tensor, ks: Sequence[torch.Tensor]):
    """One depth-wise cls branch for N kernels: the search conv runs once."""
    xs = branch.conv_search(x)
    stacked = torch.cat(list(ks))
    corr = xcorr_depthwise(xs.expand(stacked.shape[0], -1, -1, -1), stacked)
    return branch.head(corr)


class DepthwiseOps(HeadOps):
    """SiamRPN++ single-level depth-wise head: kernels ``[cls (1, C, h, w), loc (1, C, h, w)]``."""

    def cls_part(self, kernels: Kernels) -> Kernels:
        return [kernels[0]]

    def template_sizes(self, head, kernels):
        return [kernels[0].shape[-1] + head.cls.conv_kernel[0].kernel_size[0] - 1]

    def cls_templates(self, head, zfs):
        k = head.cls.kernel(zfs[0])
        return [[k[b : b + 1]] for b in range(k.shape[0])]

    def scores(self, head, kernels, cls_sets, xfs):
        x = xfs[0]
        cls = _depthwise_cls(head.cls, x, [s[0] for s in cls_sets])
        return cls, head.loc.search(kernels[1], x)


class MultiOps(HeadOps):
    """SiamRPN++ multi-level head: kernels ``[cls2, loc2, cls3, loc3, ...]``; levels fused as
    the head fuses them (softmax weights when ``weighted``, else the mean; RPN++ Eq. 2)."""

    def cls_part(self, kernels: Kernels) -> Kernels:
        return list(kernels[0::2])

    @staticmethod
    def _level(head: torch.nn.Module, i: int) -> torch.nn.Module:
        return getattr(head, f"rpn{i + 2}")  # pysot numbers the levels from 2

    def template_sizes(self, head, kernels):
        return [
            k.shape[-1] + self._level(head, i).cls.conv_kernel[0].kernel_size[0] - 1
            for i, k in enumerate(kernels[0::2])
        ]

    def cls_templates(self, head, zfs):
        ks = [self._level(head, i).cls.kernel(z) for i, z in enumerate(zfs)]
        return [[k[b : b + 1] for k in ks] for b in range(ks[0].shape[0])]

    def scores(self, head, kernels, cls_sets, xfs):
        cls_maps, loc_maps = [], []
        for i, x in enumerate(xfs):
            rpn = self._level(head, i)
            cls_maps.append(_depthwise_cls(rpn.cls, x, [s[i] for s in cls_sets]))
            loc_maps.append(rpn.loc.search(kernels[2 * i + 1], x))
        if head.weighted:
            cw, lw = F.softmax(head.cls_weight, 0), F.softmax(head.loc_weight, 0)
            cls = sum(m * cw[i] for i, m in enumerate(cls_maps))
            loc = sum(m * lw[i] for i, m in enumerate(loc_maps))
        else:
            cls = sum(cls_maps) / len(cls_maps)
            loc = sum(loc_maps) / len(loc_maps)
        return cls, loc


_OPS: dict[type, HeadOps] = {
    UPChannelRPN: UpChannelOps(),
    DepthwiseRPN: DepthwiseOps(),
    MultiRPN: MultiOps(),
}


def head_ops(head: torch.nn.Module) -> HeadOps:
    """The ``HeadOps`` of one of the RPN heads; other heads raise ``ValueError``."""
    for kind, ops in _OPS.items():
        if isinstance(head, kind):
            return ops
    raise ValueError(
        f"distractor-aware inference supports the RPN heads {[k.__name__ for k in _OPS]}, "
        f"not {type(head).__name__}"
    )


# --- proposals -------------------------------------------------------------------------------


def nms(
    boxes: np.ndarray,
    order: np.ndarray,
    iou: float,
    limit: int,
    suppress: np.ndarray | None = None,
) -> list[int]:
    """Greedy NMS over ``boxes`` (N, 4) as (cx, cy, w, h), visiting ``order``; stops after
    ``limit`` kept boxes. Boxes overlapping ``suppress`` (one box) more than ``iou`` are
    dropped first."""
    half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
    x0, x1 = boxes[:, 0] - half_w, boxes[:, 0] + half_w
    y0, y1 = boxes[:, 1] - half_h, boxes[:, 1] + half_h
    area = boxes[:, 2] * boxes[:, 3]

    def overlap(ax0, ay0, ax1, ay1, a_area, idx: np.ndarray) -> np.ndarray:
        iw = np.clip(np.minimum(ax1, x1[idx]) - np.maximum(ax0, x0[idx]), 0, None)
        ih = np.clip(np.minimum(ay1, y1[idx]) - np.maximum(ay0, y0[idx]), 0, None)
        inter = iw * ih
        with np.errstate(invalid="ignore", divide="ignore"):
            return inter / (a_area + area[idx] - inter)

    rest = np.asarray(order)
    if suppress is not None and rest.size:
        cx, cy, w, h = (float(v) for v in suppress)
        keep_mask = overlap(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, w * h, rest) <= iou
        rest = rest[keep_mask]
    kept: list[int] = []
    while rest.size and len(kept) < limit:
        i = int(rest[0])
        kept.append(i)
        rest = rest[1:]
        if rest.size:
            rest = rest[overlap(x0[i], y0[i], x1[i], y1[i], area[i], rest) <= iou]
    return kept


@dataclass(frozen=True)
class Proposals:
    """Every anchor's proposal of one search, in search-patch pixels relative to its centre."""

    boxes: np.ndarray  # (N, 4) cx, cy, w, h
    score: np.ndarray  # (N,) foreground probability with the learned target template
    penalty: np.ndarray  # (N,) shape/scale change penalty
    pscore: np.ndarray  # (N,) penalised, window-blended score (SiamRPN's selection score)
    da_score: np.ndarray | None  # (N,) sigmoid of the distractor-aware logit, None without
    window: np.ndarray  # (N,) cosine window
    window_influence: float
    scale_z: float
    search_region: Box
    timings: dict[str, float]
    features: list[torch.Tensor]  # the search patch's feature maps, one per level


class DistractorAwareTracker(SiamRPNTracker):
    """SiamRPN-family tracker with DaSiamRPN's distractor-aware re-ranking and incremental
    template learning. Before any distractor is learned it selects exactly what
    ``SiamRPNTracker`` selects. Extra keyword arguments go to ``SiamRPNTracker``."""

    name = "dasiamrpn"

    def __init__(
        self,
        model: SiameseRPN,
        cfg: Config,
        config: DistractorConfig | None = None,
        **kwargs: Any,
    ) -> None:
        self._ops = head_ops(model.rpn_head)  # before the inference copy: fail fast
        super().__init__(model, cfg, **kwargs)
        self.distractor = config if config is not None else DistractorConfig()
        self.name = f"{cfg.name}+distractor"
        self._target: Kernels = []
        self._target_weight = 0.0
        self._distractors: Kernels | None = None
        self._distractor_weight = 0.0
        self._beta = 1.0
        self._qpow = 1.0
        self._pending: list[tuple[float, float]] | None = None  # crop centres
        self._pending_windows: list[torch.Tensor] | None = None  # template maps, per level
        self.last_distractors: list[Box] = []

    # -- state ------------------------------------------------------------------------------

    def _init(self, image: np.ndarray, box: Box) -> None:
        super()._init(image, box)
        assert self._kernels is not None
        self._target = [k.clone() for k in self._ops.cls_part(self._kernels)]
        self._target_weight = 1.0
        self._distractors = None
        self._distractor_weight = 0.0
        self._beta, self._qpow = 1.0, 1.0
        self._pending = None
        self.last_distractors = []

    def reset(self) -> None:
        super().reset()
        self._target, self._distractors = [], None
        self._pending, self._pending_windows = None, None

    @property
    def has_distractors(self) -> bool:
        """Whether a distractor template has been learned (re-ranking is active)."""
        return self._distractors is not None

    def discard_sample(self) -> None:
        """Forget the last search's target and distractors without learning from them."""
        self._pending, self._pending_windows = None, None

    # -- search -----------------------------------------------------------------------------

    def proposals(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> Proposals:
        """Score every proposal of one search around the current target; no state changes."""
        sp = self._search_patch(image, instance_size, window_influence)
        t, inst, wi, scale_z, feats = self.cfg.tracker, sp.size, sp.window, sp.scale_z, sp.features
        sets = [self._target] if self._distractors is None else [self._target, self._distractors]
        with torch.inference_mode():
            t2 = time.perf_counter()
            cls, loc = self._ops.scores(self.net.rpn_head, self._kernels, sets, feats)
            self._sync()
            t3 = time.perf_counter()
            expected = self._score_size_of(cls, inst)
            logits = cls.reshape(len(sets), 2, -1)
            score = torch.softmax(logits[0], dim=0)[1].cpu().numpy()
            da_score = None
            if len(sets) == 2:
                margin = logits[:, 1] - logits[:, 0]
                da_logit = margin[0] - self.distractor.alpha_hat * margin[1]
                da_score = torch.sigmoid(da_logit).cpu().numpy()
            delta = loc.reshape(4, -1).cpu().numpy()
        anchors, window = self._grid(expected)
        w_prev, h_prev = float(self.size[0]), float(self.size[1])
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            # pysot's decoding and penalty (seeds-spec §6.4), float32 as pysot computes them
            boxes = np.empty((delta.shape[1], 4), dtype=np.float32)
            boxes[:, 0] = delta[0] * anchors[2] + anchors[0]
            boxes[:, 1] = delta[1] * anchors[3] + anchors[1]
            boxes[:, 2] = np.exp(delta[2]) * anchors[2]
            boxes[:, 3] = np.exp(delta[3]) * anchors[3]
            pw, ph = boxes[:, 2], boxes[:, 3]
            s_c = _change(_scale(pw, ph) / _scale(w_prev * scale_z, h_prev * scale_z))
            r_c = _change(np.float64(w_prev / h_prev) / (pw / ph))  # float64, as the official
            penalty = np.exp(-(r_c * s_c - 1) * t.penalty_k)
            pscore = penalty * score * (1 - wi) + window * wi
        timings = {**sp.timings, "head": t3 - t2}
        return Proposals(
            boxes, score, penalty, pscore, da_score, window, wi, scale_z, sp.region, timings, feats
        )

    def search(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> SearchResult:
        """Distractor-aware selection; records this frame's target and distractors for
        ``learn`` but changes no other state."""
        props = self.proposals(image, instance_size, window_influence)
        t0 = time.perf_counter()
        d = self.distractor
        order = np.argsort(-props.pscore, kind="stable")
        ranked = nms(props.boxes, order, d.nms_iou, d.top_k)
        best = ranked[0]
        if props.da_score is not None:  # re-rank P the way SiamRPN ranks, on Eq. 3's score
            wi = props.window_influence
            da = props.penalty[ranked] * props.da_score[ranked] * (1 - wi)
            best = ranked[int(np.argmax(da + props.window[ranked] * wi))]
        chosen = props.boxes[best]
        distractors: list[int] = []
        if d.max_distractors:
            above = np.flatnonzero(props.score > d.distractor_threshold)
            above = above[above != best]
            by_score = above[np.argsort(-props.score[above], kind="stable")]
            distractors = nms(props.boxes, by_score, d.nms_iou, d.max_distractors, chosen)
        scale_z = props.scale_z
        cx0, cy0 = float(self.center_pos[0]), float(self.center_pos[1])
        self._pending = [
            (cx0 + float(props.boxes[i, 0]) / scale_z, cy0 + float(props.boxes[i, 1]) / scale_z)
            for i in distractors
        ]
        self._pending_windows = None
        if d.template_source == "search":
            self._pending_windows = self._windows(props, [best, *distractors])
        self.last_distractors = [
            (
                cx0 + float(props.boxes[i, 0] - props.boxes[i, 2] / 2) / scale_z,
                cy0 + float(props.boxes[i, 1] - props.boxes[i, 3] / 2) / scale_z,
                float(props.boxes[i, 2]) / scale_z,
                float(props.boxes[i, 3]) / scale_z,
            )
            for i in distractors
        ]
        best_score = float(props.score[best])
        lr = float(props.penalty[best]) * best_score * self.cfg.tracker.lr
        w_prev, h_prev = float(self.size[0]), float(self.size[1])
        result = SearchResult(
            cx=cx0 + float(chosen[0]) / scale_z,
            cy=cy0 + float(chosen[1]) / scale_z,
            width=w_prev * (1 - lr) + float(chosen[2]) / scale_z * lr,
            height=h_prev * (1 - lr) + float(chosen[3]) / scale_z * lr,
            score=best_score,
            search_region=props.search_region,
            timings={**props.timings, "post": time.perf_counter() - t0},
        )
        if not all(
            math.isfinite(v) for v in (result.cx, result.cy, result.width, result.height, lr)
        ):
            raise RuntimeError(
                f"{self.name}: the model produced non-finite outputs (score {best_score}); "
                "are the weights valid?"
            )
        return result

    # -- learning ---------------------------------------------------------------------------

    def _windows(self, props: Proposals, indices: list[int]) -> list[torch.Tensor]:
        """Template-sized windows of the search features under the given proposals' anchor
        cells: the embedding of what each proposal covers, without another backbone pass
        (exact for unpadded backbones such as AlexNet, close for padded ones)."""
        assert self._kernels is not None
        side = math.isqrt(len(props.score) // self.cfg.anchor.num)
        cells = [divmod(i % (side * side), side) for i in indices]
        sizes = self._ops.template_sizes(self.net.rpn_head, self._kernels)
        return [
            torch.stack([f[0, :, y : y + n, x : x + n] for y, x in cells])
            for f, n in zip(props.features, sizes, strict=True)
        ]

    def learn(self, image: np.ndarray) -> None:
        """Add the current target and the last search's distractors to the running templates
        (paper Eq. 4): their windows of the search features, or (``template_source="crop"``)
        127 crops at the target's updated box and at the distractors with the target's context
        size. Without a pending search it does nothing."""
        if self._pending is None:
            return
        if self._pending_windows is not None:
            windows, self._pending, self._pending_windows = self._pending_windows, None, None
            with torch.inference_mode():
                self._update(self._ops.cls_templates(self.net.rpn_head, windows))
            return
        t = self.cfg.tracker
        s_z = max(1, self.round_size(self._context_side()))
        centres = [self._centre(), *self._pending]
        self._pending = None
        avg, origin = self.channel_average, self.round_origin
        patches = np.stack(
            [crop_patch(image, c, t.exemplar_size, s_z, avg, origin)[0] for c in centres]
        )
        batch = torch.from_numpy(patches).to(self.device).permute(0, 3, 1, 2).float()
        if getattr(self, "channels_last", False):
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            sets = self._ops.cls_templates(self.net.rpn_head, self.net.features(batch))
            self._update(sets)

    def _update(self, sets: list[Kernels]) -> None:
        """Eq. 4 as running weighted means: ``sets[0]`` is the target, the rest distractors."""
        d = self.distractor
        n = len(sets) - 1
        mean = [sum(s[i] for s in sets[1:]) / n for i in range(len(sets[0]))] if n else None
        if d.weighting == "ema":
            self._target = _toward(self._target, sets[0], d.eta)
            if mean is not None:
                self._distractors = (
                    mean if self._distractors is None else _toward(self._distractors, mean, d.eta)
                )
            return
        # printed: beta_t = sum_{i<t} q^i with q = eta / (1 - eta); beta_1 = 1 is the init frame
        self._qpow *= d.eta / (1.0 - d.eta)
        self._beta += self._qpow
        self._target_weight += self._beta
        self._target = _toward(self._target, sets[0], self._beta / self._target_weight)
        if mean is not None:
            self._distractor_weight += self._beta * n
            rate = self._beta * n / self._distractor_weight
            self._distractors = (
                mean if self._distractors is None else _toward(self._distractors, mean, rate)
            )

    def _track(self, image: np.ndarray) -> TrackResult:
        res = self.search(image)
        t0 = time.perf_counter()
        cx, cy, width, height = clip_box(res.cx, res.cy, res.width, res.height, image.shape)
        self.center_pos = np.array([cx, cy])
        self.size = np.array([width, height])
        self.learn(image)
        timings = {**res.timings, "learn": time.perf_counter() - t0}
        box = (cx - width / 2, cy - height / 2, width, height)
        return TrackResult(box, res.score, TrackState.TRACKING, res.search_region, timings)


def _toward(mean: Kernels, sample: Kernels, rate: float) -> Kernels:
    """mean + rate * (sample - mean), level by level."""
    return [m + rate * (s - m) for m, s in zip(mean, sample, strict=True)]


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _scale(w: Any, h: Any) -> Any:
    """Overall scale s of a box, (w + p)(h + p) = s^2 with p = (w + h) / 2 (RPN Eq. 14)."""
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))
