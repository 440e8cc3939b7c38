"""SiamRPN / SiamRPN++ inference, step for step as pysot's ``SiamRPNTracker`` does it.

Facts from pysot (``pysot/tracker/siamrpn_tracker.py``, ``base_tracker.py``), restated in
seeds-spec §6.1-6.4 and pysot-compat.md:

* centre of a box (x, y, w, h) is (x + (w - 1) / 2, y + (h - 1) / 2); the output box's left edge
  is centre - w / 2;
* template side ``s_z = round(sqrt((w + a(w+h)) (h + a(w+h))))`` with a = context_amount; search
  side ``round(s_z_float * instance / exemplar)`` (Python rounding, half to even);
* a crop of side ``sz`` starts at ``floor(c - (sz + 1) / 2 + 0.5)``; pixels outside the frame
  take the first frame's mean colour, truncated to uint8; OpenCV bilinear resize to the model
  size unless the side already equals it;
* softmax over (background, foreground), anchor decoding, scale/ratio penalty
  ``exp(-k (r_c s_c - 1))``, Hanning window blend, argmax, size smoothing with
  ``lr = penalty * score * LR``, centre clipped to [0, image size], size to [10, image size].

Speed (none of it changes results beyond float rounding): the template branch, including the
head's template-side convolutions, runs once in ``init``; the network runs as a channels-last
copy on CPU (oneDNN), under ``torch.inference_mode``; anchors and windows are cached per search
size; the search patch is cropped with slicing + ``cv2.copyMakeBorder`` + ``cv2.resize`` into a
reused float buffer. BatchNorm is deliberately not folded into the convolutions: in a deep
backbone folding moves the outputs by ~1e-4 relative, the centre drifts a few hundredths of a
pixel over a clip, and the first time it crosses a rounding boundary of the crop origin the
crop shifts by a whole pixel and the track parts from pysot's (MobileNetV2 parity clip, frame
38). Unfolded, our arithmetic is pysot's and the drift stays below 0.01 px.

The search size and window influence are per-call arguments of :meth:`SiamRPNTracker.search`, so
a long-term tracker can widen the search while lost (pysot ``SiamRPNLTTracker``).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from siam_core.checkpoint import load_checkpoint, read_config
from siam_core.config import MAX_INPUT_SIDE, Config, load_config
from siam_core.models.anchors import anchor_grid
from siam_core.models.heads import Kernels
from siam_core.models.model import SiameseRPN, build_model
from siam_core.tracker.accel import AcceleratedNet, check_options
from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState

MIN_SIZE = 10.0  # pysot _bbox_clip: width and height never below 10 px
# Memory bounds of a crop, whatever the box or config: a patch side above MAX_INPUT_SIDE is
# refused; a crop square above MAX_DIRECT_CROP px (27 MB of padding) is resized piecewise (only
# the in-image part, straight to the output size) instead of padded at full size.
MAX_DIRECT_CROP = 3000


@dataclass(frozen=True)
class SearchResult:
    """The best proposal of one search, before clipping and before the state is updated.

    ``cx, cy`` is the proposal centre and ``width, height`` the smoothed size (pysot's values
    before ``_bbox_clip``), all in image pixels; ``score`` the raw foreground probability.
    """

    cx: float
    cy: float
    width: float
    height: float
    score: float
    search_region: Box
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchPatch:
    """One search before its head: size, window influence, ``scale_z`` (model px per image
    px), the image region searched, the backbone features (or the crop, when cropped for a
    batched pass: the host's uint8 patch or the device crop's tensor) and the timings."""

    size: int
    window: float
    scale_z: float
    region: Box
    features: Any
    timings: dict[str, float]


def round_half_up(value: float) -> int:
    """pysot's crop origin rounding, ``floor(v + 0.5)`` (``base_tracker.get_subwindow``)."""
    return math.floor(value + 0.5)


def round_half_away(value: float) -> int:
    """Python 2's ``round``: halves away from zero (-43.5 -> -44), as DaSiamRPN's released
    code, written for Python 2, rounds its crop origins and sides."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def crop_window(
    centre: tuple[float, float],
    out_size: int,
    crop_size: int,
    round_origin: Callable[[float], int] = round_half_up,
) -> tuple[int, int, int]:
    """The square a crop of side ``crop_size`` around ``centre`` covers: (x0, y0, side), its
    first pixel at ``round_origin(c - (side + 1) / 2)``. Shared by the host crop
    (``crop_patch``) and the device crop (``crop_patch_torch``), so both cut the same
    pixels; sizes out of bounds raise ``ValueError``."""
    sz = int(crop_size)
    if sz < 1:
        raise ValueError(f"crop size must be >= 1, got {crop_size}")
    if not 1 <= out_size <= MAX_INPUT_SIDE:
        raise ValueError(f"patch size must lie in [1, {MAX_INPUT_SIDE}], got {out_size}")
    half = (sz + 1) / 2
    return round_origin(centre[0] - half), round_origin(centre[1] - half), sz


def crop_patch(
    image: np.ndarray,
    centre: tuple[float, float],
    out_size: int,
    crop_size: int,
    pad_value: tuple[float, float, float],
    round_origin: Callable[[float], int] = round_half_up,
) -> tuple[np.ndarray, Box]:
    """pysot's ``get_subwindow``: the ``crop_size`` square around ``centre``, resized to
    ``out_size``, outside pixels set to ``pad_value``. Returns (uint8 patch, region x, y, w, h).

    The square starts at ``round_origin(c - (crop_size + 1) / 2)`` (pysot: half up;
    DaSiamRPN: ``round_half_away``). Only the part of the frame inside the square is copied and
    padded, not the whole frame.
    """
    x0, y0, sz = crop_window(centre, out_size, crop_size, round_origin)
    x1, y1 = x0 + sz, y0 + sz  # exclusive
    ih, iw = image.shape[:2]
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(iw, x1), min(ih, y1)
    if sz > MAX_DIRECT_CROP:
        patch = _scaled_crop(image, (x0, y0, sz), (ix0, iy0, ix1, iy1), out_size, pad_value)
        return patch, (float(x0), float(y0), float(sz), float(sz))
    if ix0 >= ix1 or iy0 >= iy1:
        patch = np.empty((sz, sz, 3), np.uint8)
        patch[:] = pad_value
    else:
        patch = image[iy0:iy1, ix0:ix1]
        top, bottom, left, right = iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1
        if top or bottom or left or right:
            patch = cv2.copyMakeBorder(
                patch, top, bottom, left, right, cv2.BORDER_CONSTANT, value=pad_value
            )
    if sz != out_size:
        patch = cv2.resize(patch, (out_size, out_size))
    return patch, (float(x0), float(y0), float(sz), float(sz))


def _scaled_crop(
    image: np.ndarray,
    square: tuple[int, int, int],
    inside: tuple[int, int, int, int],
    out_size: int,
    pad_value: tuple[float, float, float],
) -> np.ndarray:
    """``crop_patch`` for a huge square (x0, y0, side): the in-image part ``inside`` (ix0,
    iy0, ix1, iy1) is resized straight into its place on an ``out_size`` canvas of
    ``pad_value``, so memory stays O(image + patch) whatever the square's side."""
    x0, y0, sz = square
    ix0, iy0, ix1, iy1 = inside
    patch = np.empty((out_size, out_size, 3), np.uint8)
    patch[:] = pad_value
    if ix0 >= ix1 or iy0 >= iy1:
        return patch
    scale = out_size / sz
    px0, py0 = round((ix0 - x0) * scale), round((iy0 - y0) * scale)
    px1 = min(out_size, max(px0 + 1, round((ix1 - x0) * scale)))
    py1 = min(out_size, max(py0 + 1, round((iy1 - y0) * scale)))
    px0, py0 = min(px0, px1 - 1), min(py0, py1 - 1)
    part = image[iy0:iy1, ix0:ix1]
    patch[py0:py1, px0:px1] = cv2.resize(part, (px1 - px0, py1 - py0), interpolation=cv2.INTER_AREA)
    return patch


def crop_patch_torch(
    frame: torch.Tensor,
    centre: tuple[float, float],
    out_size: int,
    crop_size: int,
    pad_value: tuple[float, float, float],
    round_origin: Callable[[float], int] = round_half_up,
) -> tuple[torch.Tensor, Box]:
    """``crop_patch`` on whatever device the (H, W, 3) uint8 ``frame`` tensor lives on, so on
    a GPU the camera frame is uploaded once and the patch never visits the host. Returns a
    (3, out_size, out_size) float32 tensor of the patch's uint8 values there, and the region.

    Same square (``crop_window``), outside pixels ``pad_value``, and OpenCV's uint8 bilinear
    resize reproduced in integer arithmetic (``_resize_taps``), so the values equal
    ``crop_patch``'s bit for bit (tested on real frames): a network whose boxes follow pysot's
    to 0.01 px would part from them over a one-grey-level difference. Only the two rows and
    two columns each output pixel reads are gathered; nothing of the square's size is built.
    Squares above ``MAX_DIRECT_CROP`` px, which ``crop_patch`` resizes by area, are resized
    bilinearly here (the tracker crops those on the host).
    """
    x0, y0, sz = crop_window(centre, out_size, crop_size, round_origin)
    ih, iw = frame.shape[:2]
    n = out_size
    taps, weights = _resize_taps(sz, n, frame.device)  # the same along both axes
    rows, cols = taps + y0, taps + x0
    inside = ((rows >= 0) & (rows < ih))[:, None] & ((cols >= 0) & (cols < iw))[None, :]
    pixels = frame.index_select(0, rows.clamp(0, ih - 1)).index_select(1, cols.clamp(0, iw - 1))
    pad = torch.tensor([int(v) for v in pad_value], dtype=torch.int32, device=frame.device)
    pixels = torch.where(inside[..., None], pixels.to(torch.int32), pad)  # (2n, 2n, 3)
    if weights is None:  # exactly half the side: OpenCV averages 2x2 blocks (INTER_AREA)
        across = pixels[:, :n] + pixels[:, n:]
        patch = (across[:n] + across[n:] + 2) >> 2
    else:  # 11-bit weights across, then down as OpenCV's VResizeLinear for uint8
        first, second = weights[0], weights[1]
        across = pixels[:, :n] * first[None, :, None] + pixels[:, n:] * second[None, :, None]
        up = (first[:, None, None] * (across[:n] >> 4)) >> 16
        down = (second[:, None, None] * (across[n:] >> 4)) >> 16
        patch = (up + down + 2) >> 2
    return patch.permute(2, 0, 1).float(), (float(x0), float(y0), float(sz), float(sz))


@functools.lru_cache(maxsize=512)  # sides repeat from frame to frame; tensors are never changed
def _resize_taps(
    side: int, out_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Source indices (2 out_size: first taps, then second taps, within the square) and the
    (2, out_size) int32 weights (scale 2048) of OpenCV's INTER_LINEAR uint8 resize of
    ``side`` pixels to ``out_size``; weights None for an exact halving, which OpenCV
    averages instead (opencv ``resize.cpp``: source ``(i + 0.5) * side / out - 0.5`` in
    float32, weights ``round((1 - f) * 2048)``, ``round(f * 2048)``; indices clamped into
    the square, weights kept)."""
    i = torch.arange(out_size, device=device)
    if side == 2 * out_size:
        return torch.cat([2 * i, 2 * i + 1]), None
    src = ((i.double() + 0.5) * (1.0 / (out_size / side)) - 0.5).float()
    first = src.floor()
    frac = src - first
    weights = torch.stack([(1 - frac) * 2048, frac * 2048]).round().to(torch.int32)
    first = first.long()
    taps = torch.cat([first, first + 1]).clamp(0, side - 1)
    return taps, weights


class SiamRPNTracker(Tracker):
    """Short-term SiamRPN-family tracker (pysot ``SiamRPNTracker``) on the ``Tracker`` API.

    The model holds no per-target state (kernels live in the tracker), so one model may serve
    several trackers, each with its own config. With ``optimize`` (the default) the tracker
    runs ``net``, on CPU a channels-last copy of ``model`` made here; later changes to
    ``model``'s weights do not reach it.

    ``round_size`` rounds the template and search sides and ``round_origin`` the crop origins;
    pysot (Python 3) rounds sides half to even and origins half up. ``runtime``
    (``siam_core.deploy.runtime.OnnxNet``) replaces ``net`` by exported graphs in another
    inference runtime; the tracker calls them exactly as it calls ``net``.

    The GPU path (:meth:`accelerate`, README "GPU path"): ``device_crops`` cuts the patches
    with ``crop_patch_torch`` on the device from the frame uploaded once (default: on for a
    CUDA device), ``precision`` (``fp32``, ``fp16``, ``bf16``) autocasts the network calls
    and ``graph_mode`` (``eager``, ``cuda_graph``, ``compile``) captures or compiles them
    (``siam_core.tracker.accel``).
    """

    name = "siamrpn"
    round_size: Callable[[float], int] = staticmethod(round)
    round_origin: Callable[[float], int] = staticmethod(round_half_up)
    # pysot's softmax runs over the last axis of the (N, 2) logits, DaSiamRPN's over the first
    # of (2, N): different CPU kernels, at times one ulp apart (DROL parity clip, frame 42)
    softmax_last_axis: bool = True

    def __init__(
        self,
        model: SiameseRPN,
        cfg: Config,
        device: str | torch.device = "cpu",
        optimize: bool = True,
        runtime: Any = None,
        *,
        precision: str = "fp32",
        graph_mode: str = "eager",
        device_crops: bool | None = None,
    ) -> None:
        super().__init__()
        if cfg.anchor.num != model.anchor_num:
            raise ValueError(
                f"config '{cfg.name}' has {cfg.anchor.num} anchors, the model's head "
                f"{model.anchor_num}"
            )
        self.device, self.model, self.net, self.channels_last = inference_network(
            model, cfg, device, optimize and runtime is None
        )
        if runtime is not None:  # exported graphs answering the same three network calls
            self.net = runtime
        self._plain_net, self._runtime = self.net, runtime
        self.cfg = cfg
        self.name = cfg.name
        self._grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._buffers: dict[int, torch.Tensor] = {}
        self._kernels: Kernels | None = None
        self._reference: torch.Tensor | None = None
        self._prefetched: tuple[tuple[int, int | None, float | None], SearchResult] | None = None
        self.center_pos = np.zeros(2)
        self.size = np.zeros(2)
        self.channel_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._shared_frame: tuple[np.ndarray, torch.Tensor] | None = None
        self.accelerate(precision, graph_mode, device_crops)

    @property
    def runtime(self) -> Any:
        """The exported graphs this tracker's network calls go to (``OnnxNet``), or None."""
        return self._runtime

    def accelerate(
        self, precision: str = "fp32", graph_mode: str = "eager", device_crops: bool | None = None
    ) -> None:
        """Set the GPU path's options (class doc); ``device_crops=None``: on for CUDA.

        Precision and graph mode are options of the PyTorch network: with an exported
        ``runtime`` anything but ``fp32``/``eager`` raises ``ValueError``, as does
        ``cuda_graph`` off CUDA."""
        check_options(self.device, precision, graph_mode)
        if (precision, graph_mode) != ("fp32", "eager") and self._runtime is not None:
            raise ValueError(
                "precision and graph_mode are options of the torch backend, not of an "
                "exported runtime"
            )
        self.device_crops = self.device.type == "cuda" if device_crops is None else device_crops
        self.precision, self.graph_mode = precision, graph_mode
        if (precision, graph_mode) == ("fp32", "eager"):
            self.net = self._plain_net
        else:
            self.net = AcceleratedNet(self._plain_net, self.device, precision, graph_mode)

    # -- geometry ---------------------------------------------------------------------------

    def _context_side(self, size: Sequence[float] | None = None) -> float:
        """Side of the template context square for ``size`` (default: the current size),
        before rounding."""
        w, h = self.size if size is None else size
        pad = self.cfg.tracker.context_amount * (w + h)
        return math.sqrt((w + pad) * (h + pad))

    def _grid(self, score_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(anchors as (4, N) float32 rows cx, cy, w, h; Hanning window (N,)) for a size."""
        if score_size not in self._grids:
            anchors = np.ascontiguousarray(anchor_grid(self.cfg.anchor, score_size).T)
            window = np.tile(cosine_window(score_size).ravel(), self.cfg.anchor.num)
            self._grids[score_size] = (anchors, window)
        return self._grids[score_size]

    def _to_tensor(self, patch: np.ndarray) -> torch.Tensor:
        """uint8 (S, S, 3) patch -> float (1, 3, S, S) on the device, in a reused buffer; a
        device crop (already that tensor) as it is."""
        if isinstance(patch, torch.Tensor):
            return patch
        size = patch.shape[0]
        if self.device.type != "cpu":
            t = torch.from_numpy(patch).to(self.device, non_blocking=False)
            x = t.permute(2, 0, 1).unsqueeze(0).float()
            return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        buf = self._buffers.get(size)
        if buf is None:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            buf = torch.empty((1, 3, size, size), dtype=torch.float32).contiguous(memory_format=fmt)
            self._buffers[size] = buf
        buf[0].copy_(torch.from_numpy(patch).permute(2, 0, 1))
        return buf

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- Tracker API ------------------------------------------------------------------------

    def _init(self, image: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        self.center_pos = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        self.size = np.array([w, h], dtype=np.float64)
        s_z = max(1, self.round_size(self._context_side()))
        mean = image.mean(axis=(0, 1))
        # pysot assigns the float mean into a uint8 array: truncation
        self.channel_average = tuple(float(int(v)) for v in mean)
        exemplar = self.cfg.tracker.exemplar_size
        patch, _ = self._crop_input(image, exemplar, s_z)
        with torch.inference_mode():
            self._kernels = self.net.template(self._to_tensor(patch))
        self._reference = _unit(self._kernels)  # the first frame's appearance

    def appearance(self, image: np.ndarray, box: Box) -> float:
        """How much ``box`` of ``image`` looks like the first frame's target: the cosine
        similarity of the template branch's kernels of an exemplar crop at ``box`` (the init's
        context rule) with the first frame's. A re-identification check that the detection
        score is not: that score says "an object like the template is here", and saturates on
        a look-alike (another pedestrian in dark clothes) as much as on the target."""
        if self._reference is None:
            raise RuntimeError(f"{self.name}: appearance() before init()")
        x, y, w, h = box
        side = max(1, self.round_size(self._context_side((w, h))))
        centre = (x + (w - 1) / 2, y + (h - 1) / 2)
        patch, _ = self._crop(image, self.cfg.tracker.exemplar_size, side, centre)
        with torch.inference_mode():
            kernels = self.net.template(self._to_tensor(patch))
        return float(torch.dot(_unit(kernels), self._reference))

    def _centre(self) -> tuple[float, float]:
        return float(self.center_pos[0]), float(self.center_pos[1])

    def patches(self, image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """The exemplar and search crops (uint8) this tracker cuts for ``box`` of ``image``, the
        real patch pair an ONNX export is checked on; the tracker is left uninitialised."""
        self.init(image, box)
        s_z = max(1, self.round_size(self._context_side()))
        z, _ = self._crop(image, self.cfg.tracker.exemplar_size, s_z)
        x = self._search_patch(image, with_features=False).features
        self.reset()
        if isinstance(x, torch.Tensor):  # a device crop: back to the host's uint8 layout
            x = x[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()
        return z, x

    def _crop(
        self,
        image: np.ndarray,
        out_size: int,
        side: int,
        centre: tuple[float, float] | None = None,
    ) -> tuple[np.ndarray, Box]:
        """The ``side`` square around ``centre`` (default: the current centre), resized to
        ``out_size``."""
        return crop_patch(
            image,
            self._centre() if centre is None else centre,
            out_size,
            side,
            self.channel_average,
            self.round_origin,
        )

    def share_frame(self, image: np.ndarray, frame: torch.Tensor) -> None:
        """Hand in ``image`` already uploaded as ``frame`` (H, W, 3 uint8 on the device), for
        the next device crop of ``image`` only: several targets crop one upload."""
        self._shared_frame = (image, frame)

    def _crop_input(
        self, image: np.ndarray, out_size: int, side: int
    ) -> tuple[np.ndarray | torch.Tensor, Box]:
        """The crop as the network takes it: with ``device_crops`` a float (1, 3, S, S) tensor
        cut on the device (squares above ``MAX_DIRECT_CROP`` px, resized by area on the host,
        excepted), else the host's uint8 patch (``_to_tensor`` uploads it)."""
        shared, self._shared_frame = self._shared_frame, None  # good for this crop only
        if not self.device_crops or side > MAX_DIRECT_CROP:
            return self._crop(image, out_size, side)
        if shared is not None and shared[0] is image:
            frame = shared[1]
        else:
            frame = torch.from_numpy(image).to(self.device)
        patch, region = crop_patch_torch(
            frame, self._centre(), out_size, side, self.channel_average, self.round_origin
        )
        x = patch.unsqueeze(0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, region

    def _foreground(self, cls: torch.Tensor) -> np.ndarray:
        """Foreground probability per anchor: softmax over pysot's 2k (background, foreground)
        logits, or the sigmoid of SiamDW's one logit per anchor (``RPN_Up``, k channels)."""
        if cls.shape[1] == self.cfg.anchor.num:
            return torch.sigmoid(cls.reshape(-1)).cpu().numpy()
        pairs = cls.reshape(2, -1)
        if self.softmax_last_axis:
            return torch.softmax(pairs.t().contiguous(), dim=1)[:, 1].cpu().numpy()
        return torch.softmax(pairs, dim=0)[1].cpu().numpy()

    def _search_patch(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
        with_features: bool = True,
    ) -> SearchPatch:
        """Settings, crop and backbone features of one search: the part every RPN-family
        search shares before its head (``instance_size``/``window_influence``: config's).
        Without ``with_features`` the patch holds the uint8 crop instead (for a batched pass)."""
        if self._kernels is None:
            raise RuntimeError(f"{self.name}: search() called before init()")
        t = self.cfg.tracker
        inst = t.instance_size if instance_size is None else int(instance_size)
        if inst < t.exemplar_size:
            raise ValueError(f"instance_size {inst} is smaller than the exemplar {t.exemplar_size}")
        wi = t.window_influence if window_influence is None else float(window_influence)
        t0 = time.perf_counter()
        s_z = self._context_side()
        s_x = max(1, self.round_size(s_z * (inst / t.exemplar_size)))
        patch, region = self._crop_input(image, inst, s_x)
        if not with_features:
            timings = {"crop": time.perf_counter() - t0}
            return SearchPatch(inst, wi, t.exemplar_size / s_z, region, patch, timings)
        with torch.inference_mode():
            x = self._to_tensor(patch)
            self._sync()
            t1 = time.perf_counter()
            feats = self.net.features(x)
            self._sync()
        timings = {"crop": t1 - t0, "backbone": time.perf_counter() - t1}
        return SearchPatch(inst, wi, t.exemplar_size / s_z, region, feats, timings)

    def _score_size_of(self, cls: torch.Tensor, instance_size: int) -> int:
        """The head's output size, checked against what the config expects for this search."""
        expected = self.cfg.score_size(instance_size)
        if cls.shape[-1] != expected or cls.shape[-2] != expected:
            raise RuntimeError(
                f"{self.name}: head output is {tuple(cls.shape[-2:])} for search size "
                f"{instance_size}, the config expects {expected}x{expected} (check base_size)"
            )
        return expected

    def search(
        self,
        image: np.ndarray,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> SearchResult:
        """Search ``image`` around the current target; the state is not changed.

        ``instance_size`` and ``window_influence`` default to the config's; a long-term
        tracker passes its lost-mode values. A result handed in by :meth:`prefetch` for the
        same frame and settings is returned instead of running the network again.
        """
        pre, self._prefetched = self._prefetched, None
        if pre is not None and pre[0] == (id(image), instance_size, window_influence):
            return pre[1]
        if self.fused_search:  # exported graphs, and no classifier reading the features
            sp = self._search_patch(image, instance_size, window_influence, with_features=False)
            with torch.inference_mode():
                t0 = time.perf_counter()
                cls, loc = self._runtime.search(self._to_tensor(sp.features), self._kernels)
            sp.timings["network"] = time.perf_counter() - t0
            return self.select(cls, loc, sp)
        sp = self._search_patch(image, instance_size, window_influence)
        self._score_features(sp)
        return self._search_with(self._kernels, sp)

    @property
    def fused_search(self) -> bool:
        """Whether a search runs as one call of the runtime's merged graph: exported graphs
        that have it, and no hook on the features (``reads_features``: DROL's classifier)."""
        return self._runtime is not None and self._runtime.fused and not self.reads_features

    # a tracker whose ``_score_features`` uses the maps sets this, so they are computed apart
    reads_features = False

    def _score_features(self, sp: SearchPatch) -> None:
        """Hook on one search's backbone features (batch 1) before its head outputs are
        selected, whether this tracker ran the backbone or a batched pass did
        (``MultiTracker``): DROL's classifier scores them here for ``_fuse_scores``."""

    def _fuse_scores(self, pscore: np.ndarray, score_size: int) -> np.ndarray:
        """Hook between the shape penalty and the cosine window (anchor-major (A·S·S,)
        penalised scores); an online classifier blends its map in here (DROL Eq. 5)."""
        return pscore

    def _search_with(self, kernels: Kernels | None, sp: SearchPatch) -> SearchResult:
        """The head, penalty, (hooked) fusion, window and choice of one search with
        ``kernels`` (a second template's kernels give DROL's short-term candidate)."""
        with torch.inference_mode():
            t2 = time.perf_counter()
            cls, loc = self.net.rpn_head.track(kernels, sp.features)
            self._sync()
        sp.timings["head"] = time.perf_counter() - t2
        return self.select(cls, loc, sp)

    def prefetch(
        self,
        image: np.ndarray,
        result: SearchResult,
        instance_size: int | None = None,
        window_influence: float | None = None,
    ) -> None:
        """Hand in the result of a search made elsewhere (a batched pass over several
        targets) so the next ``search`` of ``image`` with these settings returns it: wrappers
        such as the long-term tracker then run unchanged on batched network outputs."""
        self._prefetched = ((id(image), instance_size, window_influence), result)

    def select(self, cls: torch.Tensor, loc: torch.Tensor, sp: SearchPatch) -> SearchResult:
        """The best proposal of one target's head outputs (batch 1): softmax, decoding,
        scale/ratio penalty, window, argmax and size smoothing, as pysot does them."""
        t, inst, wi, scale_z, region = self.cfg.tracker, sp.size, sp.window, sp.scale_z, sp.region
        t3 = time.perf_counter()
        with torch.inference_mode():
            expected = self._score_size_of(cls, inst)
            score = self._foreground(cls)
            delta = loc.reshape(4, -1).cpu().numpy()

        anchors, window = self._grid(expected)
        # proposals far off may overflow exp(); only the chosen one is checked, below
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            # decode (float32, as pysot's _convert_bbox)
            pw = np.exp(delta[2]) * anchors[2]
            ph = np.exp(delta[3]) * anchors[3]
            w_prev, h_prev = float(self.size[0]), float(self.size[1])
            s_c = _change(_sz(pw, ph) / _sz(w_prev * scale_z, h_prev * scale_z))
            # the ratio as a float64 scalar, as pysot's ``self.size[0] / self.size[1]``: a Python
            # float would round r_c to float32 (NumPy 2 promotion), 1e-7 px off pysot's boxes
            r_c = _change(np.float64(w_prev / h_prev) / (pw / ph))
            penalty = np.exp(-(r_c * s_c - 1) * t.penalty_k)
            pscore = self._fuse_scores(penalty * score, expected)
            pscore = pscore * (1 - wi) + window * wi
        best = int(np.argmax(pscore))

        dx = float(delta[0, best] * anchors[2, best] + anchors[0, best]) / scale_z
        dy = float(delta[1, best] * anchors[3, best] + anchors[1, best]) / scale_z
        bw, bh = float(pw[best]) / scale_z, float(ph[best]) / scale_z
        best_score = float(score[best])
        lr = float(penalty[best]) * best_score * t.lr
        result = SearchResult(
            cx=dx + float(self.center_pos[0]),
            cy=dy + float(self.center_pos[1]),
            width=w_prev * (1 - lr) + bw * lr,
            height=h_prev * (1 - lr) + bh * lr,
            score=best_score,
            search_region=region,
            timings=sp.timings,
        )
        if not all(
            math.isfinite(v) for v in (result.cx, result.cy, result.width, result.height, lr)
        ):
            raise RuntimeError(
                f"{self.name}: the model produced non-finite outputs (score {best_score}); "
                "are the weights valid?"
            )
        sp.timings["post"] = time.perf_counter() - t3
        return result

    def reset(self) -> None:
        """Forget the target and its kernels; the next call must be ``init``."""
        super().reset()
        self._kernels = None
        self._reference = None
        self._prefetched = None

    def _track(self, image: np.ndarray) -> TrackResult:
        res = self.search(image)
        cx, cy, width, height = clip_box(res.cx, res.cy, res.width, res.height, image.shape)
        self.center_pos = np.array([cx, cy])
        self.size = np.array([width, height])
        box = (cx - width / 2, cy - height / 2, width, height)
        return TrackResult(box, res.score, TrackState.TRACKING, res.search_region, res.timings)


def clip_box(
    cx: float, cy: float, width: float, height: float, shape: tuple[int, ...]
) -> tuple[float, float, float, float]:
    """pysot ``_bbox_clip``: centre into [0, W] x [0, H], size into [10, W] x [10, H]."""
    ih, iw = shape[:2]
    return (
        max(0.0, min(cx, iw)),
        max(0.0, min(cy, ih)),
        max(MIN_SIZE, min(width, iw)),
        max(MIN_SIZE, min(height, ih)),
    )


def _unit(kernels: Kernels) -> torch.Tensor:
    """Every kernel of a template pass as one float32 vector of unit length."""
    flat = torch.cat([k.detach().float().flatten().cpu() for k in kernels])
    return flat / flat.norm().clamp_min(1e-12)


def cosine_window(size: int) -> np.ndarray:
    """The (size, size) Hann window every Siamese tracker blends into its scores (float64)."""
    hanning = np.hanning(size)
    return np.outer(hanning, hanning)


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _sz(w: Any, h: Any) -> Any:
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def inference_network(
    model: Any, cfg: Config, device: str | torch.device, optimize: bool
) -> tuple[torch.device, Any, Any, bool]:
    """(device, model in eval mode there, the network to run, channels-last?) for a tracker:
    with ``optimize`` on CPU a channels-last copy (oneDNN then runs the convolutions without
    layout conversions); else the model itself. BatchNorm is not folded: folding changed
    outputs by ~1e-4 and moved pysot parity (issue 10)."""
    dev = _device(device)
    model = model.to(dev).eval()
    channels_last = optimize and dev.type == "cpu"
    net = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model
    return dev, model, net, channels_last


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"bad device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def build_tracker(
    name_or_cfg: str | Path | Config | dict[str, Any] | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    optimize: bool = True,
) -> SiamRPNTracker:
    """A tracker from a config (built-in name, YAML path, mapping or ``Config``) and weights.

    ``weights`` may be a pysot ``model.pth``, a pysot-keyed safetensors file or one of ours;
    ours carry their config, so ``name_or_cfg`` may then be omitted. Without ``weights`` the
    network keeps its random initialisation (useful only for timing). A config with an
    ``online:`` section (the ``drol_*`` presets) gives a ``DROLTracker``.
    """
    if name_or_cfg is None:
        if weights is None:
            raise ValueError("build_tracker needs a config name or a weights file")
        cfg = read_config(weights)
        if cfg is None:
            raise ValueError(f"{weights} has no embedded config; name the model as well")
    else:
        cfg = load_config(name_or_cfg)
    if weights is None:
        model = build_model(cfg)
    else:
        model, cfg = load_checkpoint(weights, cfg)
    if cfg.online is not None:  # a DROL preset (``online:`` section): DROL's tracker
        from siam_core.tracker.drol import DROLTracker  # drol builds on this module

        return DROLTracker(model, cfg, device=device, optimize=optimize)
    return SiamRPNTracker(model, cfg, device=device, optimize=optimize)
