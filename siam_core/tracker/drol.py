"""DROL: any RPN-family tracker, and DROL's SiamFC, with DROL's online classifier (§6.9).

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
overrides the score hook and the per-frame bookkeeping. ``DROLSiamFCTracker`` is DROL's
``siamfc_tracker.py`` on ``SiamFCTracker``'s steps (the ``drol_siamfc_*`` presets).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from siam_core.config import Config, OnlineConfig
from siam_core.models.heads import Kernels
from siam_core.models.model import SiameseFC, SiameseRPN
from siam_core.online.classifier import HARD_NEGATIVE, OnlineClassifier
from siam_core.online.fusion import OnlineModule, normalise_sum, resize_linear
from siam_core.tracker.base import Box, TrackResult, TrackState
from siam_core.tracker.siamfc import SiamFCResponse, SiamFCTracker, relative_prominence
from siam_core.tracker.siamrpn import (
    SearchPatch,
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


def crop_float_side(
    image: np.ndarray,
    centre: tuple[float, float],
    out_size: int,
    side: float,
    pad_value: tuple[float, float, float],
) -> np.ndarray:
    """pysot's ``get_subwindow`` given an unrounded side, as DROL crops the short-term template
    (``s_z`` as computed): it starts at ``floor(c - (side + 1) / 2 + 0.5)`` and spans
    ``int(side)`` pixels; ``crop_patch`` with the centre moved by the fractional part."""
    whole = max(1, int(side))
    shift = (side - whole) / 2
    moved = (centre[0] - shift, centre[1] - shift)
    return crop_patch(image, moved, out_size, whole, pad_value)[0]


class _OnlineParts:
    """What DROL adds to a Siamese tracker of either family beside the score fusion: the
    classifier's input, its update after each frame, the short-term template bookkeeping and
    the long-term gate. The tracker provides ``online``, ``online_cfg``, ``net``, ``cfg``,
    ``_template_kernels`` and the state (``_frame``, ``_temp_max``, ``_z_st``, ...)."""

    online: OnlineModule
    online_cfg: OnlineConfig
    device: torch.device
    channels_last: bool
    channel_average: tuple[float, float, float]
    _kernels_st: Kernels | None
    _z_st: np.ndarray | None
    _temp_max: float
    _frame: int
    _frame_side: float

    def _setup_online(
        self, cfg: Config, online: OnlineConfig, worker: ThreadPoolExecutor | None = None
    ) -> None:
        """The classifier for ``cfg``'s search and exemplar sizes, and empty DROL state;
        ``worker``: a background worker shared with other targets' classifiers."""
        self.online_cfg = online
        t = cfg.tracker
        self.online = OnlineModule(
            OnlineClassifier(
                online, t.instance_size, t.exemplar_size, t.context_amount, self._features, worker
            )
        )
        self._kernels_st = None
        self._z_st = None
        self._temp_max = 0.0
        self._frame = 0
        self._frame_side = 0.0

    def _start_online(self, image: np.ndarray, box: Box, template_side: int) -> None:
        """DROL ``init``'s tail: train on a crop of 2x the search size (side
        ``round(template_side · 2 · instance / exemplar)``), z_s = z_1."""
        self._frame = 1
        self._temp_max = 0.0
        self._init_s = self.online.start(
            image,
            box,
            self._centre(),  # type: ignore[attr-defined]
            template_side,
            self.channel_average,
            crop_patch,
        )
        kernels = self._kernels  # type: ignore[attr-defined]
        self._kernels_st = kernels if self.online_cfg.template_update else None
        self._z_st = None

    def _report_worker_failure(self) -> None:
        """Raise, once, what a training on the worker thread failed with (nobody waits on its
        result); the classifier stays unready after it, so the Siamese score alone tracks."""
        failure = self.online.classifier.take_failure()
        if failure is not None:
            raise RuntimeError(
                f"{self.name}: the online classifier failed on its worker "  # type: ignore[attr-defined]
                f"({type(failure).__name__}: {failure}); tracking goes on without it"
            ) from failure

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self.online.close()
        self._kernels_st = None

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        """Classifier features of a batch of search-size crops (first-frame training)."""
        with torch.inference_mode():
            x = batch.to(self.device)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            feats = self.online.select(self.net.features(x))  # type: ignore[attr-defined]
        return feats.detach().cpu().float().clone()

    def _template_kernels(self, patch: np.ndarray) -> Kernels:
        raise NotImplementedError

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
            self._z_st = crop_float_side(
                image,
                self._centre(),  # type: ignore[attr-defined]
                self.cfg.tracker.exemplar_size,  # type: ignore[attr-defined]
                self._frame_side,
                self.channel_average,
            )
        if (self._frame - 1) % oc.target_update_skipping == 0:
            self._temp_max = 0.0
            if self._z_st is not None:
                with torch.inference_mode():
                    self._kernels_st = self._template_kernels(self._z_st)

    def wait_background(self) -> None:
        """The classifier's jobs on its worker (asynchronous mode): the first-frame training
        and any update queued."""
        self.online.classifier.wait()

    def close(self) -> None:
        """Stop the classifier's update worker (asynchronous mode)."""
        self.online.close()


class DROLTracker(_OnlineParts, SiamRPNTracker):
    """An RPN-family tracker with DROL's online classifier, fusion and template update."""

    def __init__(
        self,
        model: SiameseRPN,
        cfg: Config,
        online: OnlineConfig | None = None,
        device: str | torch.device = "cpu",
        optimize: bool = True,
        runtime: Any = None,
    ) -> None:
        if runtime is not None and any(runtime.manifest.get("folded_levels", [])):
            raise ValueError(
                f"{runtime.dir}: folded graphs give backbone maps where the classifier reads "
                "the neck's; export with fold=False (zoo.build does for online trackers)"
            )
        super().__init__(model, cfg, device=device, optimize=optimize, runtime=runtime)
        self._setup_online(cfg, online or cfg.online_settings())
        self.name = f"{cfg.name}+online" if cfg.online is None else cfg.name

    def _template_kernels(self, patch: np.ndarray) -> Kernels:
        return self.net.template(self._to_tensor(patch))

    def _init(self, image: np.ndarray, box: Box) -> None:
        super()._init(image, box)
        self._start_online(image, box, max(1, round(self._context_side())))

    reads_features = True  # the classifier scores the search's maps

    def _fuse_scores(self, pscore: np.ndarray, score_size: int) -> np.ndarray:
        return self.online.fuse(pscore)

    def _score_features(self, sp: SearchPatch) -> None:
        """The classifier scores this search's features; ``_fuse_scores`` blends its map in
        (z_1's search; ``_track`` adds z_s's on the same features)."""
        self._report_worker_failure()
        # DROL crops z_s with this frame's context side, taken before the state changes
        self._frame_side = self._context_side()
        t0 = time.perf_counter()
        # the classifier runs on the CPU whatever the network's device
        features = [f.detach().float().cpu() for f in sp.features]
        self.online.localize(features, self.cfg.score_size(sp.size))
        self._last_patch = sp
        sp.timings["online"] = time.perf_counter() - t0

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


class DROLSiamFCTracker(_OnlineParts, SiamFCTracker):
    """DROL's SiamFC tracker (``pysot/tracker/siamfc_tracker.py``) with its online classifier:
    the ``drol_siamfc_alex_upxcorr_*`` presets.

    DROL's SiamFC procedure is pysot's, not SiamDW's, so these steps differ from
    ``SiamFCTracker``'s (everything else is that class's, fusion through its
    ``adjust_response`` hook):

    * the centre of (x, y, w, h) is (x + (w − 1)/2, y + (h − 1)/2); crops start at
      ``floor(c − (side + 1)/2 + 0.5)`` (``crop_patch``'s default);
    * each frame ``s_x = s_z · instance / exemplar`` from the current size, and each scale is
      cropped from the frame with side ``round(s_x · scale)`` (no pyramid, no ``s_x`` state);
    * maps and the classifier's score map are resized to 17·16 = 272 *bilinearly*: DROL writes
      ``cv2.resize(x, (272, 272), cv2.INTER_CUBIC)``, which passes the flag as ``dst``;
    * scale maxima times the penalty in float64, a float32 window normalised to sum 1;
    * the peak's offset from ``(272 − 1)/2`` moves the target by
      ``offset · stride / up · s_x · scale / instance``; size ``size · (1 − lr + lr · scale)``;
      box ``(cx − w/2, cy − h/2, w, h)``, not clipped at 0;
    * fusion: the chosen scale's features feed the classifier, its map (255×255) is resized
      and normalised like the response, ``(x − min)/sum`` (DROL ``normalize2``), and blended
      ``resp·(1 − λ) + conf·λ`` before the window;
    * template update (OTB preset): z_s's maps get their own scale choice, no fusion; its
      candidate moves by the z_1 scale's ``s_x · scale`` and sizes by its own scale (as DROL);
      it wins on IoU ≥ υ_r and a windowed peak higher by ≥ υ_c.

    DROL's code calls ``classifier.update(bbox, flag)`` against the signature
    ``update(state, scale_z, flag)`` (a TypeError as released); the intended call, the RPN
    tracker's, is made. ``TrackResult.score`` is the SiamFC family's relative prominence of the
    chosen response (see ``siam_core.tracker.siamfc``), its reference taken on the first frame
    with DROL's crops.
    """

    upsample_interpolation = cv2.INTER_LINEAR
    peak_dtype = np.float64
    window_dtype = np.float32

    def __init__(
        self,
        model: SiameseFC,
        cfg: Config,
        online: OnlineConfig | None = None,
        device: str | torch.device = "cpu",
        optimize: bool = False,
    ) -> None:
        super().__init__(model, cfg, device=device, optimize=optimize)
        settings = online or cfg.online
        if settings is None:
            raise ValueError(f"'{cfg.name}' has no online section; use a drol_siamfc_* preset")
        self._setup_online(cfg, settings)

    def _template_kernels(self, patch: np.ndarray) -> Kernels:
        return self.net.template(self._to_batch([patch]))

    def _context_side(self) -> float:
        w, h = self.size
        pad = self.cfg.tracker.context_amount * (w + h)
        return math.sqrt((w + pad) * (h + pad))

    def _init(self, image: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        self.center_pos = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        self.size = np.array([w, h], dtype=np.float64)
        s_z = max(1, round(self._context_side()))
        mean = image.mean(axis=(0, 1))
        self.channel_average = tuple(float(int(v)) for v in mean)  # uint8 padding truncates
        patch, _ = crop_patch(
            image, self._centre(), self.cfg.tracker.exemplar_size, s_z, self.channel_average
        )
        with torch.inference_mode():
            self._kernels = self._template_kernels(patch)
        # the confidence's reference: the target's own peak on the first frame's search
        reference = self.responses(image).maps[..., len(self.scales) // 2]
        self.reference_prominence = float(reference.max()) - float(reference.mean(dtype=np.float64))
        self._start_online(image, box, s_z)

    def _search_sides(self) -> np.ndarray:
        self._report_worker_failure()
        # DROL crops z_s with this frame's context side, taken before the state changes
        self._frame_side = self._context_side()
        t = self.cfg.tracker
        return self._frame_side * (t.instance_size / t.exemplar_size) * self.scales

    def _scale_patches(
        self, image: np.ndarray, sides: np.ndarray, instance_size: int
    ) -> tuple[list[np.ndarray], Box]:
        crops = [
            crop_patch(
                image,
                self._centre(),
                instance_size,
                max(1, round(float(side))),
                self.channel_average,
            )
            for side in sides
        ]
        return [patch for patch, _ in crops], crops[-1][1]

    def adjust_response(self, response: np.ndarray, scale: int, resp: SiamFCResponse) -> np.ndarray:
        """Eq. 5 on the chosen scale: the classifier scores that scale's features."""
        t0 = time.perf_counter()
        feats = resp.features[-1][scale : scale + 1].detach().float().cpu()  # type: ignore[index]
        self.online.localize(feats, response.shape[0], resize_linear, normalise_sum)
        resp.timings["online"] = time.perf_counter() - t0
        return self.online.fuse(response.ravel()).reshape(response.shape)

    def _track(self, image: np.ndarray) -> TrackResult:
        oc = self.online_cfg
        resp = self.responses(image)
        t0 = time.perf_counter()
        best, response = self._best_scale(resp.maps)
        pscore = self._windowed(self.adjust_response(response, best, resp))
        side = float(resp.sides[best])
        cand, peak = self._candidate(pscore, side, float(self.scales[best]), image.shape)
        chosen = resp.maps[..., best]
        if oc.template_update and self._kernels_st is not None:
            with torch.inference_mode():
                out = self.net.respond(resp.features, self._kernels_st)
            maps_st = self.upsampled(out)
            best_st, response_st = self._best_scale(maps_st)
            pscore_st = self._windowed(response_st)
            cand_st, peak_st = self._candidate(
                pscore_st, side, float(self.scales[best_st]), image.shape
            )
            if (
                box_iou(_corner(cand_st), _corner(cand)) >= oc.tau_regression
                and pscore_st.max() - pscore.max() >= oc.tau_classification
            ):
                cand, peak, chosen = cand_st, peak_st, maps_st[..., best_st]
        cx, cy, width, height = cand
        self.center_pos = np.array([cx, cy])
        self.size = np.array([width, height])
        box = (cx - width / 2, cy - height / 2, width, height)
        score = relative_prominence(
            float(chosen[peak]), float(chosen.mean(dtype=np.float64)), self.reference_prominence
        )
        resp.timings["post"] = time.perf_counter() - t0
        resp.timings["learn"] = self.learn(image, box)
        return TrackResult(box, score, TrackState.TRACKING, resp.region, resp.timings)

    def _candidate(
        self, pscore: np.ndarray, side: float, scale: float, shape: tuple[int, ...]
    ) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
        """The clipped (cx, cy, w, h) a windowed map's peak gives, and the peak (row, col)."""
        t, oc = self.cfg.tracker, self.online_cfg
        row, col = (int(v) for v in np.unravel_index(pscore.argmax(), pscore.shape))
        disp = np.array([col, row]) - (pscore.shape[0] - 1) / 2.0
        disp = disp * self.cfg.anchor.stride / int(t.response_up)  # type: ignore[arg-type]
        disp = disp * side / t.instance_size
        if oc.short_term_drift and self.online.not_found_run >= oc.drift_lost_frames:
            disp = disp * oc.drift_factor
        lr = float(t.scale_lr)  # type: ignore[arg-type]
        factor = (1 - lr) + lr * scale
        cand = clip_box(
            float(disp[0] + self.center_pos[0]),
            float(disp[1] + self.center_pos[1]),
            float(self.size[0] * factor),
            float(self.size[1] * factor),
            shape,
        )
        return cand, (row, col)


def _corner(c: tuple[float, float, float, float]) -> Box:
    cx, cy, w, h = c
    return (cx - w / 2, cy - h / 2, w, h)


def online_tracker(tracker: SiamRPNTracker, overrides: dict[str, Any] | None = None) -> DROLTracker:
    """The same model and config with the online classifier: the config's ``online``
    section, or the paper's RPN settings with the model's tuned λ
    (``tracker.online_fusion_weight``) if it has one, single fields replaced by ``overrides``."""
    if isinstance(tracker, DROLTracker):
        if not overrides:
            return tracker
        base = tracker.online_cfg
    else:
        base = tracker.cfg.online_settings()
    online = base.replace(**overrides) if overrides else base
    return DROLTracker(
        tracker.model, tracker.cfg, online, device=tracker.device, runtime=tracker.runtime
    )


def build_drol_tracker(
    name_or_cfg: str | Path | Config | dict[str, Any] | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> DROLTracker:
    """A DROL tracker for a model named as ``build_tracker`` takes it (a ``drol_*`` preset
    carries DROL's settings; any other RPN-family config gets the paper's)."""
    return online_tracker(build_tracker(name_or_cfg, weights, device=device), overrides)
