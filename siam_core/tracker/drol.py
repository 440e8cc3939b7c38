"""DROL-RPN: any RPN-family tracker with DROL's online classifier (seeds-spec §6.9).

Step for step as DROL's ``pysot/tracker/siamrpn_tracker.py`` (commit 4aebe57): the classifier
trains on a 2×-instance crop of the first frame; each frame, its map on the search features is
fused into the penalised Siamese score before the cosine window (Eq. 5), the box comes from the
Siamese regression as usual, and the classifier then stores the sample and trains by its flag.
With ``template_update`` a short-term template z_s is kept beside z_1: the frame of highest
classifier peak (≥ τ_c, not a hard negative) in each T-frame interval becomes z_s, and z_s's
candidate replaces z_1's when their boxes overlap by IoU ≥ υ_r and its score is higher by
≥ υ_c (Eqs. 6–7). ``short_term_drift`` (DROL's OTB configs) moves the box only a quarter of
the way after ``drift_lost_frames`` frames in which the classifier found nothing.

The crop, penalty, window and box smoothing are ``SiamRPNTracker``'s own: this class only
overrides the score hook and the per-frame bookkeeping.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siam_core.config import Config, OnlineConfig
from siam_core.models.heads import Kernels
from siam_core.models.model import SiameseRPN
from siam_core.online.classifier import HARD_NEGATIVE, OnlineClassifier
from siam_core.online.fusion import OnlineModule
from siam_core.tracker.base import Box, TrackResult, TrackState
from siam_core.tracker.siamrpn import (
    SearchResult,
    SiamRPNTracker,
    build_tracker,
    clip_box,
    crop_patch,
)


def box_iou(a: Box, b: Box) -> float:
    """IoU of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class DROLTracker(SiamRPNTracker):
    """An RPN-family tracker with DROL's online classifier, fusion and template update."""

    def __init__(
        self,
        model: SiameseRPN,
        cfg: Config,
        online: OnlineConfig | None = None,
        device: str | torch.device = "cpu",
        optimize: bool = True,
    ) -> None:
        super().__init__(model, cfg, device=device, optimize=optimize)
        self.online_cfg = online or cfg.online or OnlineConfig()
        self.name = f"{cfg.name}+online" if cfg.online is None else cfg.name
        t = cfg.tracker
        self.online = OnlineModule(
            OnlineClassifier(
                self.online_cfg, t.instance_size, t.exemplar_size, t.context_amount, self._features
            )
        )
        self._kernels_st: Kernels | None = None
        self._z_st: np.ndarray | None = None
        self._temp_max = 0.0
        self._frame = 0
        self._frame_side = 0.0

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        """Classifier features of a batch of search-size crops (first-frame training)."""
        with torch.inference_mode():
            x = batch.to(self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            feats = self.online.select(self.net.features(x))
        return feats.detach().cpu().float().clone()

    def _init(self, image: np.ndarray, box: Box) -> None:
        super()._init(image, box)
        self._frame = 1
        self._temp_max = 0.0
        side = max(1, round(self._context_side()))
        self._init_s = self.online.start(
            image, box, self._centre(), side, self.channel_average, crop_patch
        )
        self._kernels_st = self._kernels if self.online_cfg.template_update else None
        self._z_st = None

    def reset(self) -> None:
        super().reset()
        self.online.close()
        self._kernels_st = None

    def _fuse_scores(self, pscore: np.ndarray, score_size: int) -> np.ndarray:
        return self.online.fuse(pscore)

    def search(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> SearchResult:
        """Search with the classifier's map fused in (z_1 only; ``_track`` adds z_s)."""
        # DROL crops z_s with this frame's context side, taken before the state changes
        self._frame_side = self._context_side()
        sp = self._search_patch(image, instance_size, window_influence)
        t0 = time.perf_counter()
        # the classifier runs on the CPU whatever the network's device
        features = [f.detach().float().cpu() for f in sp.features]
        self.online.localize(features, self.cfg.score_size(sp.size))
        online_s = time.perf_counter() - t0
        self._last_patch = sp
        res = self._search_with(self._kernels, sp)
        res.timings["online"] = online_s
        return res

    def gate_score(self, score: float) -> float:
        """The score a long-term state machine should see: the Siamese score, or 0 once the
        classifier has not found the target for ``lost_after_not_found`` frames."""
        n = self.online_cfg.lost_after_not_found
        return 0.0 if n and self.online.not_found_run >= n else score

    def learn(self, image: np.ndarray, box: Box) -> float:
        """After a frame's box is final: the classifier's update and the short-term template
        bookkeeping (DROL ``track``'s tail); returns seconds spent."""
        t0 = time.perf_counter()
        self._frame += 1
        self.online.learn(box)
        if self.online_cfg.template_update:
            self._update_template(image)
        return time.perf_counter() - t0

    def _update_template(self, image: np.ndarray) -> None:
        oc = self.online_cfg
        last = self.online.last
        peak = math.nan if last is None else last.peak
        if (
            last is not None
            and last.flag != HARD_NEGATIVE
            and peak >= oc.target_update_threshold
            and peak > self._temp_max
        ):
            self._temp_max = peak
            mean = image.mean(axis=(0, 1))
            self.channel_average = tuple(float(int(v)) for v in mean)
            side = max(1, int(self._frame_side))
            self._z_st, _ = crop_patch(
                image,
                self._centre(),
                self.cfg.tracker.exemplar_size,
                side,
                self.channel_average,
            )
        if (self._frame - 1) % oc.target_update_skipping == 0:
            self._temp_max = 0.0
            if self._z_st is not None:
                with torch.inference_mode():
                    self._kernels_st = self.net.template(self._to_tensor(self._z_st))

    def _track(self, image: np.ndarray) -> TrackResult:
        oc = self.online_cfg
        res = self.search(image)
        centre = self._centre()
        cand = self._candidate(res, centre, image.shape)
        score = res.score
        if oc.template_update and self._kernels_st is not None:
            res_st = self._search_with(self._kernels_st, self._last_patch)
            cand_st = self._candidate(res_st, centre, image.shape)
            if (
                box_iou(_corner(cand_st), _corner(cand)) >= oc.tau_regression
                and res_st.score - res.score >= oc.tau_classification
            ):
                cand, score = cand_st, res_st.score
        cx, cy, width, height = cand
        self.center_pos = np.array([cx, cy])
        self.size = np.array([width, height])
        box = (cx - width / 2, cy - height / 2, width, height)
        timings = dict(res.timings)
        timings["learn"] = self.learn(image, box)
        return TrackResult(box, score, TrackState.TRACKING, res.search_region, timings)

    def _candidate(
        self, res: SearchResult, centre: tuple[float, float], shape: tuple[int, ...]
    ) -> tuple[float, float, float, float]:
        cx, cy = res.cx, res.cy
        oc = self.online_cfg
        if oc.short_term_drift and self.online.not_found_run >= oc.drift_lost_frames:
            cx = (cx - centre[0]) * oc.drift_factor + centre[0]
            cy = (cy - centre[1]) * oc.drift_factor + centre[1]
        return clip_box(cx, cy, res.width, res.height, shape)

    def close(self) -> None:
        """Stop the classifier's update worker (asynchronous mode)."""
        self.online.close()


def _corner(c: tuple[float, float, float, float]) -> Box:
    cx, cy, w, h = c
    return (cx - w / 2, cy - h / 2, w, h)


def online_tracker(tracker: SiamRPNTracker, overrides: dict[str, Any] | None = None) -> DROLTracker:
    """The same model and config with the online classifier: the config's ``online``
    section, or the paper's RPN settings, single fields replaced by ``overrides``."""
    if isinstance(tracker, DROLTracker):
        if not overrides:
            return tracker
        base = tracker.online_cfg
    else:
        base = tracker.cfg.online or OnlineConfig()
    online = base.replace(**overrides) if overrides else base
    return DROLTracker(tracker.model, tracker.cfg, online, device=tracker.device)


def build_drol_tracker(
    name_or_cfg: str | Path | Config | dict[str, Any] | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> DROLTracker:
    """A DROL tracker for a model named as ``build_tracker`` takes it (a ``drol_*`` preset
    carries DROL's settings; any other RPN-family config gets the paper's)."""
    return online_tracker(build_tracker(name_or_cfg, weights, device=device), overrides)
