"""SiamFC / SiamFC+ inference, step for step as SiamDW's tracker does it (seeds-spec §6.6).

Facts from researchmm/SiamDW ``lib/tracker/siamfc.py`` and ``lib/utils/utils.py``
(``get_subwindow_tracking``, ``make_scale_pyramid``, ``cxy_wh_2_rect``) and
``siamese_tracking/run_video.py``:

* a box (x, y, w, h) is centred at (x + w / 2, y + h / 2); the reported box is
  (max(0, cx - w / 2), max(0, cy - h / 2), w, h): x and y clipped at 0, w and h not;
* template side ``s_z = round(sqrt((w + a(w+h)) (h + a(w+h))))``; search side
  ``s_x = s_z + (instance - exemplar) / scale_z``, kept within [0.2, 5] x its first value;
* a crop of side ``sz`` starts at ``round(c - (sz + 1) / 2)`` (Python 3 rounding, half to even);
  outside pixels take the first frame's mean colour, truncated to uint8;
* the scales ``s_x * scale_step ** (i - n // 2)`` are cut in two resampling steps: one crop at
  the largest (rounded) side resized so that the smallest side maps to the instance size, then
  each scale cropped from that region and resized (OpenCV bilinear);
* the (S, S, n) responses are upsampled ``response_up`` times with OpenCV bicubic; the best
  scale is the one whose maximum, times ``scale_penalty`` for non-centre scales, is largest;
  its map, ``(map - min) / sum``, is blended with a Hann window normalised to sum 1;
* the peak's offset from the map centre ``ceil(S * up / 2)`` moves the target by
  ``offset * stride / up * s_x / instance``; ``s_x`` and the size are damped with
  ``scale_lr``; the centre is clipped to the image, the size to [10, image size].

The crop, clipping and window code is the RPN family's (``siam_core.tracker.siamrpn``). The
arithmetic follows the official code's dtypes (float32 maps, float64 window), because the
upsampled peak beats its neighbour by as little as 1e-6 relative (the parity reference's
``peak_gap_rel``): a different summation order can move the box by one upsampled pixel.

``TrackResult.score`` is a bounded confidence, the chosen position's *relative prominence*
(:func:`relative_prominence`): how far its raw response stands above the mean of the chosen
scale's map, as a fraction of how far the first frame's own peak stood above its map's mean
(measured in ``init`` on the first frame's search crop), clipped to [0, 1]. A raw SiamFC
response is an unbounded correlation whose scale and offset depend on the weights (the seeded
parity weights give a standard deviation of about 4.5e3; SiamFC's own BatchNorm adjust adds an
offset), so neither the response nor its sigmoid can be thresholded across models; the
prominence ratio is unchanged by any positive scale and any offset of the response. It is about
1 while the target looks as it did on the first frame and falls towards 0 when nothing in the
search region stands out more than average background does (the target occluded or gone):
this is what drives long-term mode (``siam_core.tracker.longterm``; its SiamFC thresholds are
``SIAMFC_ENTER`` / ``SIAMFC_LEAVE`` there, see the README).

:meth:`SiamFCTracker.search` runs one frame at any search size without changing the state (the
long-term tracker widens the search while lost); the scale pyramid, window and map centre follow
the size, and the displacement and damping stay in units of the configured search side.

Hooks for online modules (DROL's ``drol_siamfc_*``, ``siam_core.tracker.drol``):
:meth:`SiamFCTracker.responses` computes the upsampled maps of all scales and keeps the
backbone features; :meth:`SiamFCTracker.adjust_response` receives the chosen scale's normalised
map just before the cosine window is blended in and may return a fused map. ``_search_sides``,
``_scale_patches``, ``upsample_interpolation``, ``peak_dtype`` and ``window_dtype`` are the
steps another official SiamFC procedure (DROL's pysot-based one) replaces.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from siam_core.config import Config
from siam_core.models.heads import Kernels
from siam_core.models.model import SiameseFC
from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState
from siam_core.tracker.siamrpn import (
    SearchResult,
    clip_box,
    cosine_window,
    crop_patch,
    inference_network,
)


def crop_rounded(
    image: np.ndarray,
    centre: tuple[float, float],
    out_size: int,
    crop_size: int,
    pad_value: tuple[float, float, float],
) -> tuple[np.ndarray, Box]:
    """SiamDW's ``get_subwindow_tracking``: ``crop_patch`` with the crop's first pixel at
    ``round(c - (sz + 1) / 2)`` (half to even) instead of pysot's ``floor(... + 0.5)``."""
    return crop_patch(image, centre, out_size, crop_size, pad_value, round_origin=round)


def scale_pyramid(
    image: np.ndarray,
    centre: tuple[float, float],
    sides: np.ndarray,
    out_size: int,
    pad_value: tuple[float, float, float],
) -> tuple[list[np.ndarray], Box]:
    """SiamDW's ``make_scale_pyramid``: the patches of all scales (ascending ``sides``) and
    the image region the largest one covers."""
    rounded = [round(float(s)) for s in sides]
    beta = out_size / rounded[0]
    search_side = round(beta * rounded[-1])
    search, region = crop_rounded(image, centre, int(search_side), int(rounded[-1]), pad_value)
    middle = (1 + search_side) / 2
    patches = [
        crop_rounded(search, (middle, middle), out_size, round(beta * side), pad_value)[0]
        for side in rounded
    ]
    return patches, region


def relative_prominence(value: float, mean: float, reference: float) -> float:
    """``(value - mean) / reference`` clipped to [0, 1]: the chosen response's height above its
    map's mean as a fraction of the first frame's (``reference``); 0 when that reference is not
    positive (a first frame whose response has no peak gives no confidence to compare with)."""
    if not reference > 0.0 or not math.isfinite(reference):
        return 0.0
    ratio = (value - mean) / reference
    if not math.isfinite(ratio):
        raise RuntimeError(
            f"non-finite SiamFC response ({value}, mean {mean}); are the weights valid?"
        )
    return min(1.0, max(0.0, ratio))


@dataclass
class SiamFCResponse:
    """One frame's multi-scale response: ``maps`` (U, U, n) float32 upsampled responses,
    ``sides`` the n unrounded search sides cropped, the region searched, the search size,
    stage timings and the backbone features the maps came from."""

    maps: np.ndarray
    sides: np.ndarray
    region: Box
    timings: dict[str, float]
    instance_size: int
    features: list[torch.Tensor] | None = None  # the backbone's maps of the n patches


@dataclass(frozen=True)
class SiamFCSearchResult(SearchResult):
    """A SiamFC search (``SearchResult``: the new centre and size, already clipped as SiamFC
    clips its state, and the confidence) plus the damped search side ``s_x`` at the configured
    search size: the state :meth:`SiamFCTracker.adopt` takes over."""

    s_x: float = field(kw_only=True)


class SiamFCTracker(Tracker):
    """SiamFC-family tracker (SiamDW ``SiamFC``) on the ``Tracker`` API.

    ``optimize`` folds BatchNorm into the convolutions and runs channels-last on CPU: faster,
    but the different float32 rounding can move the box by one upsampled pixel (about 1 px)
    where the official map has a near-tie, so it is off by default; the parity test runs the
    default, and the benchmark measures both.
    """

    name = "siamfc"
    upsample_interpolation: int = cv2.INTER_CUBIC
    peak_dtype: type = np.float32  # SiamDW scales its float32 maxima in place
    window_dtype: type = np.float64

    def __init__(
        self,
        model: SiameseFC,
        cfg: Config,
        device: str | torch.device = "cpu",
        optimize: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(model, SiameseFC) or not cfg.tracker.is_siamfc:
            raise ValueError(
                f"SiamFCTracker needs a SiamFC model and config; '{cfg.name}' is an RPN config"
            )
        self.device, self.model, self.net, self.channels_last = inference_network(
            model, cfg, device, optimize
        )
        self.cfg = cfg
        self.name = cfg.name
        t = cfg.tracker
        self.score_size = cfg.score_size()
        self._windows: dict[int, np.ndarray] = {}
        self.window = self._window(t.instance_size)
        n = int(t.scale_num)  # type: ignore[arg-type]
        self.scales = float(t.scale_step) ** (np.arange(n) - math.ceil(n // 2))  # type: ignore[arg-type]
        self.scale_penalties = np.where(np.arange(n) == n // 2, 1.0, float(t.scale_penalty))  # type: ignore[arg-type]
        self._kernels: Kernels | None = None
        self.center_pos = np.zeros(2)
        self.size = np.zeros(2)
        self.s_x = 0.0
        self.s_x_bounds = (0.0, 0.0)
        self.channel_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.reference_prominence = 0.0

    def _window(self, instance_size: int) -> np.ndarray:
        """The Hann window of the upsampled map for a search size, normalised to sum 1."""
        if instance_size not in self._windows:
            up = self.cfg.score_size(instance_size) * int(self.cfg.tracker.response_up)  # type: ignore[arg-type]
            window = cosine_window(up).astype(self.window_dtype)
            self._windows[instance_size] = window / window.sum()
        return self._windows[instance_size]

    def _to_batch(self, patches: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack(patches)).permute(0, 3, 1, 2).float().to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _init(self, image: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        t = self.cfg.tracker
        self.center_pos = np.array([x + w / 2, y + h / 2])
        self.size = np.array([w, h], dtype=np.float64)
        mean = np.mean(image, axis=(0, 1))
        self.channel_average = tuple(float(int(v)) for v in mean)
        pad = t.context_amount * (w + h)
        s_z = round(math.sqrt((w + pad) * (h + pad)))
        s_z = max(1, s_z)
        scale_z = t.exemplar_size / s_z
        self.s_x = s_z + 2 * ((t.instance_size - t.exemplar_size) / 2 / scale_z)
        self.s_x_bounds = (0.2 * self.s_x, 5 * self.s_x)
        patch, _ = crop_rounded(image, self._centre(), t.exemplar_size, s_z, self.channel_average)
        with torch.inference_mode():
            self._kernels = self.net.template(self._to_batch([patch]))
        # the confidence's reference: the target's own peak on the first frame's search
        reference = self.responses(image).maps[..., len(self.scales) // 2]
        self.reference_prominence = float(reference.max()) - float(reference.mean(dtype=np.float64))

    def _centre(self) -> tuple[float, float]:
        return float(self.center_pos[0]), float(self.center_pos[1])

    def responses(self, image: np.ndarray, instance_size: int | None = None) -> SiamFCResponse:
        """Crop every scale around the current target and compute the upsampled responses;
        the state is not changed. ``instance_size`` (default: the config's) widens the search:
        the sides grow with it, so the target keeps its size in the patch."""
        if self._kernels is None:
            raise RuntimeError(f"{self.name}: responses() called before init()")
        t = self.cfg.tracker
        inst = t.instance_size if instance_size is None else int(instance_size)
        t0 = time.perf_counter()
        sides = self._search_sides()
        if inst != t.instance_size:
            sides = sides * (inst / t.instance_size)
        patches, region = self._scale_patches(image, sides, inst)
        with torch.inference_mode():
            x = self._to_batch(patches)
            t1 = time.perf_counter()
            feats = self.net.features(x)
            out = self.net.respond(feats, self._kernels)
        t2 = time.perf_counter()
        maps_up = self.upsampled(out, inst)
        timings = {"crop": t1 - t0, "network": t2 - t1, "upsample": time.perf_counter() - t2}
        return SiamFCResponse(maps_up, sides, region, timings, inst, feats)

    def _search_sides(self) -> np.ndarray:
        """The n search sides of this frame at the configured search size (SiamDW: the damped
        ``s_x`` times the scales)."""
        return self.s_x * self.scales

    def _scale_patches(
        self, image: np.ndarray, sides: np.ndarray, instance_size: int
    ) -> tuple[list[np.ndarray], Box]:
        """The n search patches and the image region they cover (SiamDW's pyramid)."""
        centre = self._centre()
        return scale_pyramid(image, centre, sides, instance_size, self.channel_average)

    def upsampled(self, out: torch.Tensor, instance_size: int | None = None) -> np.ndarray:
        """(n, 1, S, S) responses -> (U, U, n) float32 maps upsampled ``response_up`` times."""
        t = self.cfg.tracker
        inst = t.instance_size if instance_size is None else int(instance_size)
        score_size = self.cfg.score_size(inst)
        if out.shape[-1] != score_size or out.shape[-2] != score_size:
            raise RuntimeError(
                f"{self.name}: response is {tuple(out.shape[-2:])}, the config expects "
                f"{score_size}x{score_size} for search size {inst}"
            )
        with torch.inference_mode():
            maps = out.reshape(out.shape[0], score_size, score_size)
            maps = maps.permute(1, 2, 0).cpu().numpy()
        up = score_size * int(t.response_up)  # type: ignore[operator]
        maps_up = cv2.resize(maps, (up, up), interpolation=self.upsample_interpolation)
        if maps_up.ndim == 2:  # one scale: OpenCV drops the channel axis
            maps_up = maps_up[:, :, None]
        return maps_up

    def adjust_response(self, response: np.ndarray, scale: int, resp: SiamFCResponse) -> np.ndarray:
        """The chosen scale's map, ``(map - min) / sum``, just before the cosine window is
        blended in. Returns it unchanged; an online module overrides this to fuse its own
        confidence map (same shape) into it."""
        return response

    def _best_scale(self, maps: np.ndarray) -> tuple[int, np.ndarray]:
        """The scale whose maximum, times ``scale_penalty`` off-centre, is largest, and its map
        as ``(map - min) / sum``. The product is rounded to ``peak_dtype``, as the official
        code's dtypes do (dtype matters for ties)."""
        peaks = (np.max(maps, axis=(0, 1)) * self.scale_penalties).astype(self.peak_dtype)
        best = int(np.argmax(peaks))
        response = maps[..., best]
        response = response - response.min()
        return best, response / response.sum()

    def _windowed(
        self,
        response: np.ndarray,
        window_influence: float | None = None,
        instance_size: int | None = None,
    ) -> np.ndarray:
        """The map with the cosine window blended in (the config's influence and search size
        by default)."""
        t = self.cfg.tracker
        wi = t.window_influence if window_influence is None else float(window_influence)
        window = self._window(t.instance_size if instance_size is None else instance_size)
        return (1 - wi) * response + wi * window

    def search(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> SiamFCSearchResult:
        """One frame's choice of scale and position, the damped side and size and the
        confidence, without changing the state (``adopt`` takes a result over).
        ``instance_size`` and ``window_influence`` default to the config's."""
        t = self.cfg.tracker
        resp = self.responses(image, instance_size)
        t0 = time.perf_counter()
        maps = resp.maps
        best, response = self._best_scale(maps)
        response = self.adjust_response(response, best, resp)
        response = self._windowed(response, window_influence, resp.instance_size)
        row, col = np.unravel_index(response.argmax(), response.shape)
        up = int(t.response_up)  # type: ignore[arg-type]
        centre_index = math.ceil(self.cfg.score_size(resp.instance_size) * up / 2)
        disp = (np.array([col, row]) - centre_index) * self.cfg.anchor.stride / up
        # at any search size the patch keeps s_x / instance_size image px per patch px
        pos = self.center_pos + disp * self.s_x / t.instance_size
        lr = float(t.scale_lr)  # type: ignore[arg-type]
        low, high = self.s_x_bounds
        side = self.s_x * self.scales[best]  # the chosen side at the configured search size
        s_x = max(low, min(high, (1 - lr) * self.s_x + lr * side))
        size = (1 - lr) * self.size + lr * (self.size * self.scales[best])
        cx, cy, w, h = (float(v) for v in clip_box(pos[0], pos[1], size[0], size[1], image.shape))
        score = relative_prominence(
            float(maps[row, col, best]),
            float(maps[..., best].mean(dtype=np.float64)),
            self.reference_prominence,
        )
        resp.timings["post"] = time.perf_counter() - t0
        return SiamFCSearchResult(cx, cy, w, h, score, resp.region, resp.timings, s_x=s_x)

    def adopt(self, result: SearchResult) -> None:
        """Make a search's centre, size and search side the tracker's state."""
        self.center_pos = np.array([result.cx, result.cy])
        self.size = np.array([result.width, result.height])
        if isinstance(result, SiamFCSearchResult):
            self.s_x = result.s_x

    @staticmethod
    def report(cx: float, cy: float, w: float, h: float) -> Box:
        """SiamDW's ``cxy_wh_2_rect``: x and y clipped at 0, w and h as tracked."""
        return (max(0.0, cx - w / 2), max(0.0, cy - h / 2), w, h)

    def _track(self, image: np.ndarray) -> TrackResult:
        res = self.search(image)
        self.adopt(res)
        box = self.report(res.cx, res.cy, res.width, res.height)
        return TrackResult(box, res.score, TrackState.TRACKING, res.search_region, res.timings)

    def reset(self) -> None:
        super().reset()
        self._kernels = None
