"""DROL's online classification subnet (seeds-spec §4.7, §6.9): compression, attention, filter,
its first-frame training, sample memory, filter updates and localisation states.

Facts (shapes, formulas, order of operations and of random draws) come from DROL's
``pysot/tracker/classifier/base_classifier.py`` and ``optim.py`` (commit 4aebe57), which
follow ATOM (pytracking). The quirks that decide the parity with the official tracker are kept:

* positions and sizes are (y, x) float32 tensors; the classifier's position is its box's
  ``x + (w − 1)/2`` with the *output* box (``cx − w/2``), so it sits half a pixel off the
  tracker's centre; its ``scale`` (model px per image px) is fixed at the first frame;
* labels are Gaussians with σ = sqrt(Π feature/sample · target · scale) · 0.25, centred at
  ``feature_size · (pos − sample_pos) / sample_size + 0.5`` (the offset in image pixels, not
  rescaled to the crop, as DROL computes it);
* the score map is the 4×4 filter's response ('same' padding, last row/column dropped),
  brought to the S × S crop grid by zero-padding its Fourier series (built with the Nyquist
  row repeated at both ends and shifted by π), then rolled by (S + 1)/2 to centre it;
* the memory's sample weights follow ATOM's learning-rate rule with first-frame samples kept
  at ≥ 25 % of the total weight; the oldest (lowest-weight) slot is replaced.

All random draws (augmentation shifts, dropout, initial projection, attention and filter) come
from a private generator seeded with ``seed`` at every ``initialize`` in DROL's order, which
equals DROL's ``seed_torch(TRACK.SEED)`` before ``init`` with one thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from siam_core.config import OnlineConfig
from siam_core.online.augment import Augmentation, build_augmentations
from siam_core.online.optim import Cancelled, L2Problem, gauss_newton, gauss_newton_step

NOT_FOUND = "not_found"
UNCERTAIN = "uncertain"
HARD_NEGATIVE = "hard_negative"


def _lower_priority() -> None:
    """Run the worker thread (and the threads it starts) at the lowest CPU priority, so the
    frame path keeps the CPU on a small machine; a no-op where threads cannot be reniced."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def background_worker() -> ThreadPoolExecutor:
    """One thread at the lowest CPU priority for classifier jobs. Several classifiers (the
    targets of a ``MultiTracker``) may share it: their first-frame trainings and filter updates
    then run one after another, in the order asked for, on one core's worth of spare CPU."""
    return ThreadPoolExecutor(1, thread_name_prefix="drol-update", initializer=_lower_priority)


def activation(name: str, param: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """DROL's activations; 'mlu' is ``elu(leaky_relu(x, 1/p), p)``."""
    if name == "none":
        return lambda x: x
    if name == "relu":
        return F.relu
    if name == "elu":
        return F.elu
    if name == "mlu":
        return lambda x: F.elu(F.leaky_relu(x, 1 / param), param)
    raise ValueError(f"unknown activation {name!r}")


def conv_same(
    x: torch.Tensor,
    w: torch.Tensor,
    drol_order: bool = True,
    projection: torch.Tensor | None = None,
) -> torch.Tensor:
    """'same' convolution; an even kernel's extra last row/column is dropped (DROL).

    ``projection`` (C', C, 1, 1): convolve its 1x1 projection of ``x`` (``conv1x1``) instead.
    ``drol_order`` False (``OnlineConfig.drol_order``): each kernel tap's channel sum as one
    matmul, with the projection folded into the taps' matrix, then the taps' maps summed at
    their offsets; the same sums in another order."""
    o, _, kh, kw = w.shape
    ph, pw = kh // 2, kw // 2
    if drol_order:
        if projection is not None:
            x = conv1x1(x, projection)
        out = F.conv2d(x, w, padding=(ph, pw))
        rows = slice(-1) if kh % 2 == 0 else slice(None)
        cols = slice(-1) if kw % 2 == 0 else slice(None)
        return out[:, :, rows, cols]
    n, c, h, wd = x.shape
    matrix = w.permute(2, 3, 0, 1).reshape(kh * kw * o, -1)
    if projection is not None:  # (taps x C') @ (C' x C): a 4x smaller product per pixel
        matrix = matrix @ projection.view(projection.shape[0], c)
    taps = torch.matmul(matrix, x.reshape(n, c, h * wd)).view(n, kh * kw, o, h, wd)
    # output (i, j) takes tap (a, b) at input (i + a - ph, j + b - pw), zero outside: each
    # tap's map shifted by a padding that crops one side and pads the other (unbind and pad
    # differentiate into small maps; slicing one padded tensor zero-filled all of it per tap)
    out = torch.zeros(n, o, h, wd, dtype=taps.dtype, device=taps.device)
    for k, tap in enumerate(taps.unbind(1)):
        da, db = k // kw - ph, k % kw - pw
        out = out + F.pad(tap, (-db, db, -da, da))
    return out


def conv1x1(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """1×1 convolution as a matmul (DROL's ``operation.conv1x1``, used inside the solver)."""
    n, _, h, wd = x.shape
    return torch.matmul(w.view(w.shape[0], w.shape[1]), x.view(n, x.shape[1], -1)).view(
        n, w.shape[0], h, wd
    )


def gauss_label(size: int, sigma: float, center: torch.Tensor) -> torch.Tensor:
    """(1, 1, size, size) Gaussian, origin in the middle of the map (DROL ``dcf``)."""
    k = torch.arange(-(size - 1) / 2, (size + 1) / 2)
    gy = torch.exp(-1.0 / (2 * sigma**2) * (k - center[0]) ** 2)
    gx = torch.exp(-1.0 / (2 * sigma**2) * (k - center[1]) ** 2)
    return gy.reshape(1, 1, -1, 1) * gx.reshape(1, 1, 1, -1)


def _cmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex product of (..., 2) real views, rounded as DROL's ``complex.mult`` rounds it
    (each product rounded, then one subtraction / addition); torch's complex product rounds
    differently (one ulp on the parity clip's frame 8)."""
    c = a[..., :1] * b
    c[..., 0] -= a[..., 1] * b[..., 1]
    c[..., 1] += a[..., 1] * b[..., 0]
    return c


def _exp_imag(x: torch.Tensor) -> torch.Tensor:
    return torch.stack((torch.cos(x), torch.sin(x)), -1)


def upsample_scores(raw: torch.Tensor, output_size: int, kernel: tuple[int, int]) -> torch.Tensor:
    """(1, 1, h, w) filter response -> (S, S) map on the crop grid, centred (see module doc).
    The spectrum is handled as DROL's ``fourier`` does, as real (re, im) pairs."""
    h, w = raw.shape[-2:]
    spec = torch.view_as_real(torch.fft.rfft2(raw))[0, 0]
    # centred rows, always odd: the Nyquist row of an even size appears at both ends
    spec = torch.cat((spec[(h + 1) // 2 :], spec[: h // 2 + 1]), 0) / (h * w)
    rows, cols = spec.shape[0], 2 * spec.shape[1] - 1
    shift = [
        float(torch.tensor(math.pi * (1 - (k % 2) / n), dtype=torch.float32))
        for k, n in zip(kernel, (h, w), strict=True)
    ]
    ky = torch.arange(-((rows - 1) // 2), rows // 2 + 1, dtype=torch.float32).view(-1, 1)
    kx = torch.arange(0, cols // 2 + 1, dtype=torch.float32).view(1, -1)
    if shift[0] or shift[1]:
        spec = _cmul(_cmul(spec, _exp_imag(shift[0] * ky)), _exp_imag(shift[1] * kx))
    if rows > output_size or cols > output_size:
        raise ValueError(f"score map {h}x{w} is finer than the output grid {output_size}")
    pad = output_size - rows
    top = (pad + 1) // 2 if rows % 2 == 0 else pad // 2
    full = torch.zeros((output_size, output_size // 2 + 1, 2), dtype=spec.dtype)
    full[top : top + rows, : spec.shape[1]] = spec
    mid = (output_size - 1) // 2
    full = torch.view_as_complex(torch.cat((full[mid:], full[:mid]), 0))
    scores = torch.fft.irfft2(full, s=(output_size, output_size)) * float(output_size**2)
    half = (output_size + 1) // 2
    return torch.roll(scores, (-half, -half), (0, 1))


def max2d(a: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(max, (row, col) as float32) of a 2-d map, first occurrence (DROL ``dcf.max2d``)."""
    row_max, row_arg = torch.max(a, dim=-2)
    value, col = torch.max(row_max, dim=-1)
    return float(value), torch.stack((row_arg[col], col)).float()


@dataclass(frozen=True)
class Localisation:
    """One frame's classifier output: the (S, S) score map, its peak and DROL's state flag
    (None, 'not_found', 'uncertain' or 'hard_negative') with the second peak that set it."""

    scores: torch.Tensor
    peak: float
    second_peak: float
    flag: str | None


class OnlineClassifier:
    """The classifier for one target. ``initialize`` trains it on the first frame,
    ``localize`` scores one search's features, ``update`` stores the sample and trains.

    ``extract`` maps a (N, 3, S, S) float batch of crops to the (N, C, h, w) features the
    tracker's search uses; ``sample_size`` is S, the tracker's search size.
    """

    def __init__(
        self,
        cfg: OnlineConfig,
        sample_size: int,
        exemplar_size: int,
        context_amount: float,
        extract: Callable[[torch.Tensor], torch.Tensor],
        worker: ThreadPoolExecutor | None = None,
    ) -> None:
        """``worker``: a shared ``background_worker`` for the asynchronous jobs (not shut
        down by :meth:`close`); without one the classifier starts its own when needed."""
        self.cfg = cfg
        self.sample_size = int(sample_size)
        self.exemplar_size = exemplar_size
        self.context_amount = context_amount
        self.extract = extract
        act = cfg.response_activation
        self.response_act = activation(act[0], act[1])
        self.projection_act = activation(cfg.projection_activation)
        self.attention_act = activation(cfg.attention_activation)
        self._lock = threading.Lock()  # guards the filter swap and the pending samples
        self._executor: ThreadPoolExecutor | None = worker
        self._own_executor = worker is None
        self._job: Future | None = None
        self._scheduled = False  # an update job is queued or running and will read _pending
        self._ready = threading.Event()
        self._failure: BaseException | None = None  # of a worker job, until taken
        self._cancel = threading.Event()  # set by close(): the running solve stops early
        self._pending: list[tuple[torch.Tensor | None, torch.Tensor | None, float, int]] = []
        self.frame_num = 0

    # -- features ----------------------------------------------------------------------

    def _compress(
        self,
        x: torch.Tensor,
        use_matmul: bool = False,
        blocks: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Compression (1×1 conv + activation) and dual attention of (N, C, h, w) features;
        ``blocks`` = (projection, fc1, fc2), the stored ones by default. DROL projects with
        ``conv2d`` outside the solver and with a matmul inside it; both are kept."""
        proj, fc1, fc2 = (self.projection, self.fc1, self.fc2) if blocks is None else blocks
        c = conv1x1(x, proj) if use_matmul else F.conv2d(x, proj)
        c = self.projection_act(c)
        if not self.cfg.use_attention:
            return c
        if self.cfg.channel_attention:
            pooled = F.adaptive_avg_pool2d(c, 1)
            hidden = self.attention_act(conv1x1(pooled, fc1))
            channel = torch.sigmoid(conv1x1(hidden, fc2))
        else:
            channel = torch.zeros(c.shape[0], c.shape[1], 1, 1)
        if self.cfg.spatial_attention == "pool":
            spatial = torch.sigmoid(torch.mean(c, 1, keepdim=True))
        else:
            spatial = torch.zeros(c.shape[0], 1, c.shape[2], c.shape[3])
        return c * spatial.expand_as(c) + c * channel.expand_as(c)

    # -- first frame -----------------------------------------------------------------------

    def initialize(self, crop: torch.Tensor, box: tuple[float, float, float, float]) -> None:
        """Train on the first frame: ``crop`` is the (1, 3, E·S, E·S) float crop centred on
        the target (E = ``augment_expansion_factor``), ``box`` the (x, y, w, h) init box.

        With ``async_update`` the training runs on the worker thread and ``ready`` stays
        False until it is done: the tracker follows the Siamese score alone meanwhile."""
        self.close()
        self._ready.clear()
        if not self.cfg.async_update:
            self._initialize(crop, box)
            return
        with self._lock:
            self._job = self._submit(self._initialize, crop, box)

    @property
    def ready(self) -> bool:
        """Whether the first-frame training has finished (always, in synchronous mode)."""
        return self._ready.is_set()

    def _initialize(self, crop: torch.Tensor, box: tuple[float, float, float, float]) -> None:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        s = self.sample_size
        self.frame_num = 1
        x, y, w, h = (float(v) for v in box)
        self.pos = torch.tensor([y + (h - 1) / 2, x + (w - 1) / 2], dtype=torch.float32)
        self.target_sz = torch.tensor([h, w], dtype=torch.float32)
        ctx = self.context_amount * self.target_sz.sum()
        s_z = torch.sqrt((self.target_sz[1] + ctx) * (self.target_sz[0] + ctx))
        # DROL's ``EXEMPLAR_SIZE / s_z`` divides an int by a float32 tensor, which torch
        # computes as ``s_z.reciprocal() * EXEMPLAR_SIZE``: one ulp off the quotient at times,
        # enough to change the chaotic first-frame training (parity test, frame 1)
        self.scale = torch.reciprocal(s_z) * self.exemplar_size
        self.img_sample_sz = torch.tensor([float(s), float(s)])

        # augmented samples, in DROL's order of random draws
        transforms = build_augmentations(s, cfg, gen)
        with torch.no_grad():
            batch = torch.cat([t(crop, s) for t in transforms])
            feats = self._extract(batch)
            n_drop, p_drop = cfg.augment_dropout
            if n_drop:
                first = feats[0:1].expand(n_drop, -1, -1, -1)
                noise = torch.empty((n_drop, feats.shape[1], 1, 1)).bernoulli_(
                    1 - p_drop, generator=gen
                )
                noise.div_(1 - p_drop)
                feats = torch.cat([feats, first * noise])
                transforms = transforms + [Augmentation("identity")] * n_drop
        self.feature_sz = torch.tensor([float(feats.shape[2]), float(feats.shape[3])])
        in_dim = feats.shape[1]
        cdim = cfg.compressed_dim
        self.projection = feats.new_zeros(cdim, in_dim, 1, 1).normal_(
            0, 1 / math.sqrt(in_dim), generator=gen
        )
        self.sigma = (
            (self.feature_sz / self.img_sample_sz * self.target_sz * self.scale).prod().sqrt()
            * cfg.output_sigma_factor
            * torch.ones(2)
        )
        num = feats.shape[0]
        mem = cfg.sample_memory_size
        self.y = feats.new_zeros(mem, 1, feats.shape[2], feats.shape[3])
        centre = self._label_centre(self.pos.round())
        for i, t in enumerate(transforms):
            shifted = centre + torch.tensor(t.shift, dtype=torch.float32) / self.img_sample_sz * (
                self.feature_sz
            )
            self.y[i, 0] = gauss_label(feats.shape[2], float(self.sigma[0]), shifted)[0, 0]
        self.num_init = num
        self.sample_weights = feats.new_zeros(mem)
        self.sample_weights[:num] = 1.0 / num
        self.previous_replace: int | None = None
        self.samples = feats.new_zeros(mem, cdim, feats.shape[2], feats.shape[3])
        self.fc1 = self.fc2 = None
        if cfg.use_attention:
            self.fc1 = feats.new_zeros(cdim // 2, cdim, 1, 1).normal_(
                0, 1 / math.sqrt(cdim), generator=gen
            )
            self.fc2 = feats.new_zeros(cdim, cdim // 2, 1, 1).normal_(
                0, 1 / math.sqrt(cdim), generator=gen
            )
        kh, kw = cfg.kernel_size
        self.filter = feats.new_zeros(1, cdim, kh, kw)
        self.filter.normal_(0, 1 / self.filter.numel(), generator=gen)

        self._train_joint(feats, self.y[:num], num)
        with torch.no_grad():
            self.samples[:num] = self._compress(feats)
        self._pending = []
        if cfg.post_init_cg_iter:
            self._train_filter(cfg.post_init_cg_iter)
        self._ready.set()

    def _extract(self, batch: torch.Tensor) -> torch.Tensor:
        """Features of the augmented crops. On the worker they are taken one crop at a time:
        the frame path shares the network's runtime (one OpenVINO stream runs one request at a
        time), so one batched pass would hold a frame behind it for ~0.4 s on 2 cores; between
        crops a frame's request gets its turn, and ``close`` its stop."""
        if not self.cfg.async_update:
            return self.extract(batch).float().contiguous()
        parts = []
        for i in range(batch.shape[0]):
            if self._cancel.is_set():
                raise Cancelled
            parts.append(self.extract(batch[i : i + 1]).float())
        return torch.cat(parts).contiguous()

    def _label_centre(self, sample_pos: torch.Tensor) -> torch.Tensor:
        norm = (self.pos - sample_pos) / self.img_sample_sz
        odd = torch.tensor([(k + 1) % 2 for k in self.cfg.kernel_size], dtype=torch.float32)
        return self.feature_sz * norm + 0.5 * odd

    def _train_joint(self, feats: torch.Tensor, y: torch.Tensor, num: int) -> None:
        """Gauss-Newton on projection (+ attention) and filter together (first frame)."""
        cfg = self.cfg
        sqrt_w = (torch.ones(1) / num).sqrt().view(-1, 1, 1, 1)
        reg_f, reg_p = math.sqrt(cfg.filter_reg), math.sqrt(cfg.projection_reg)

        # a linear compression folds into the filter's taps (``conv_same``)
        linear = not cfg.use_attention and cfg.projection_activation == "none"

        def residuals(v: list[torch.Tensor]) -> list[torch.Tensor]:
            filt, proj = v[0], v[-1]
            if linear:
                response = conv_same(feats, filt, cfg.drol_order, proj)
            else:
                fc2, fc1 = (v[1], v[2]) if cfg.use_attention else (None, None)
                c = self._compress(feats, True, (proj, fc1, fc2))
                response = conv_same(c, filt, cfg.drol_order)
            r = sqrt_w * (self.response_act(response) - y)
            return [r, reg_f * filt] + [reg_p * t for t in v[1:]]

        if cfg.use_attention:
            variable = [self.filter, self.fc2, self.fc1, self.projection]
            diag = [cfg.filter_reg] + [cfg.projection_reg] * 3
        else:
            variable = [self.filter, self.projection]
            diag = [cfg.filter_reg, cfg.projection_reg]
        problem = L2Problem(residuals, diag, self._cancel.is_set)
        if cfg.init_gn_iter:
            gauss_newton(problem, variable, cfg.init_cg_iter // cfg.init_gn_iter, cfg.init_gn_iter)

    # -- per frame -----------------------------------------------------------------------

    def localize(self, features: torch.Tensor) -> Localisation:
        """Score one search's (1, C, h, w) features; remembers them for ``update``."""
        cfg = self.cfg
        self.frame_num += 1
        self.sample_pos = self.pos.round()
        with torch.no_grad():
            self.feat_x = self._compress(
                features.float().clone(memory_format=torch.contiguous_format)
            )
            with self._lock:
                filt = self.filter
            raw = conv_same(self.feat_x, filt, cfg.drol_order)
            scores = upsample_scores(raw, self.sample_size, cfg.kernel_size)
        return self._states(scores)

    def _states(self, scores: torch.Tensor) -> Localisation:
        """DROL ``localize_advanced``: peak, masked second peak and the flag they imply."""
        cfg = self.cfg
        size = scores.shape
        max1, disp1 = max2d(scores)
        centre = self.img_sample_sz // 2
        if max1 < cfg.target_not_found_threshold:
            return Localisation(scores, max1, float("nan"), NOT_FOUND)
        neigh = cfg.target_neighborhood_scale * self.target_sz * self.scale
        top = max(round(float(disp1[0]) - float(neigh[0]) / 2), 0)
        bottom = min(round(float(disp1[0]) + float(neigh[0]) / 2 + 1), size[0])
        left = max(round(float(disp1[1]) - float(neigh[1]) / 2), 0)
        right = min(round(float(disp1[1]) + float(neigh[1]) / 2 + 1), size[1])
        masked = scores.clone()
        masked[top:bottom, left:right] = 0
        max2, disp2 = max2d(masked)
        flag: str | None = None
        if max2 > cfg.distractor_threshold * max1:
            norm1 = float(torch.sqrt(torch.sum((disp1 - centre) ** 2)))
            norm2 = float(torch.sqrt(torch.sum((disp2 - centre) ** 2)))
            limit = cfg.displacement_scale * math.sqrt(size[0] * size[1]) / 2
            if (norm2 > limit) != (norm1 > limit) and norm1 != limit and norm2 != limit:
                flag = HARD_NEGATIVE
            else:
                flag = UNCERTAIN
        elif max2 > cfg.hard_negative_threshold * max1 and max2 > cfg.target_not_found_threshold:
            flag = HARD_NEGATIVE
        return Localisation(scores, max1, max2, flag)

    def update(self, box: tuple[float, float, float, float], flag: str | None) -> bool:
        """After a frame: move to its output ``box`` (x, y, w, h), store the sample unless the
        flag forbids it, and train (now on a hard negative, else every ``train_skipping``
        frames). Returns whether training ran or was queued."""
        cfg = self.cfg
        if flag != NOT_FOUND:
            x, y, w, h = box
            self.pos = torch.tensor([y + (h - 1) / 2.0, x + (w - 1) / 2.0], dtype=torch.float32)
            self.target_sz = torch.tensor([h, w], dtype=torch.float32)
        hard = flag == HARD_NEGATIVE
        rate = cfg.hard_negative_learning_rate if hard else cfg.learning_rate
        sample = None
        if flag not in (NOT_FOUND, UNCERTAIN):
            label = gauss_label(
                int(self.feature_sz[0]), float(self.sigma[0]), self._label_centre(self.sample_pos)
            )
            sample = (self.feat_x, label, rate)
        if hard:
            iters = cfg.hard_negative_cg_iter
        elif (self.frame_num - 1) % cfg.train_skipping == 0:
            iters = cfg.cg_iter
        else:
            iters = 0
        if not cfg.async_update:
            if sample is not None:
                self._store(*sample)
            self._train_filter(iters)
            return iters > 0
        return self._queue(sample, iters)

    def _store(self, x: torch.Tensor, label: torch.Tensor, rate: float) -> None:
        """Put one sample in memory with ATOM's weight rule (DROL ``update_sample_weights``)."""
        sw = self.sample_weights
        floor = self.cfg.init_samples_minimum_weight
        n_init = self.num_init
        start = n_init if floor > 0 else 0
        if rate == 1:
            sw[:] = 0
            sw[0] = 1
            ind = 0
        else:
            ind = int(torch.min(sw[start:], 0)[1]) + start
            if self.previous_replace is None:
                sw /= 1 - rate
                sw[ind] = rate
            else:
                sw[ind] = sw[self.previous_replace] / (1 - rate)
        sw /= sw.sum()
        if floor > 0 and sw[:n_init].sum() < floor:
            sw /= floor + sw[n_init:].sum()
            sw[:n_init] = floor / n_init
        self.previous_replace = ind
        self.samples[ind : ind + 1] = x
        self.y[ind : ind + 1] = label

    def _train_filter(self, iters: int) -> None:
        """Polak-Ribière CG on the filter alone over the whole memory (DROL ``ConvProblem``)."""
        if iters <= 0:
            return
        cfg = self.cfg
        # slots of weight 0 (memory not yet full) only add exact zeros: leave them out, unless
        # DROL's rounding is wanted (``train_empty_slots``)
        used = torch.nonzero(self.sample_weights > 0).view(-1)
        if cfg.train_empty_slots or used.numel() == self.sample_weights.numel():
            samples, y, w = self.samples, self.y, self.sample_weights
        else:
            samples, y, w = self.samples[used], self.y[used], self.sample_weights[used]
        sqrt_w = w.sqrt().view(-1, 1, 1, 1)
        reg = math.sqrt(cfg.filter_reg)

        def residuals(v: list[torch.Tensor]) -> list[torch.Tensor]:
            r = sqrt_w * (self.response_act(conv_same(samples, v[0], cfg.drol_order)) - y)
            return [r, reg * v[0]]

        filt = self.filter.clone()
        gauss_newton_step(
            L2Problem(residuals, stop=self._cancel.is_set), [filt], iters, cfg.fletcher_reeves
        )
        with self._lock:
            self.filter = filt

    # -- asynchronous updates ----------------------------------------------------------------

    def _submit(self, fn: Callable[..., None], *args: object) -> Future:
        """Queue ``fn`` on the worker (the lock held)."""
        if self._executor is None:
            self._executor = background_worker()
        return self._executor.submit(self._cancellable, fn, *args)

    def _queue(self, sample: tuple | None, iters: int) -> bool:
        """Hand the sample and the training to the worker; training requests made while a job
        is queued or running are merged into its next run, so frames never wait for the
        optimiser."""
        with self._lock:
            if sample is not None:
                self._pending.append((*sample, iters))
            elif iters:
                self._pending.append((None, None, 0.0, iters))
            if self._scheduled or not any(p[3] for p in self._pending):
                return bool(iters)
            self._scheduled = True
            self._job = self._submit(self._update)
        return True

    def _update(self) -> None:
        """One update job: store the samples waiting and train once; samples that arrive
        meanwhile are stored too. A training request that arrived meanwhile goes to the back
        of the worker's queue as a new job, so on a shared worker one target's updates cannot
        starve another target's training."""
        trained = False
        while True:
            with self._lock:
                if trained and any(p[3] for p in self._pending) and not self._cancel.is_set():
                    self._job = self._submit(self._update)
                    return
                pending, self._pending = self._pending, []
                if not pending:
                    self._scheduled = False
                    return
            iters = 0
            for x, label, rate, it in pending:
                if x is not None:
                    self._store(x, label, rate)
                iters = max(iters, it)
            self._train_filter(iters)  # 0 after the first round: returns at once
            trained = True

    def wait(self) -> None:
        """Block until this classifier's asynchronous jobs have finished, a follow-up job it
        queued included (tests, shutdown)."""
        while (job := self._job) is not None:
            job.result()
            if self._job is job:
                return

    def _cancellable(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn`` on the worker; a solve stopped by :meth:`close` just ends the job, any
        other failure is kept for :meth:`take_failure` (nobody waits on the job's result)."""
        try:
            fn(*args)
        except Cancelled:
            pass
        except Exception as exc:
            self._failure = exc
            raise

    def take_failure(self) -> BaseException | None:
        """The exception a worker job ended with, once (the frame path reports it)."""
        failure, self._failure = self._failure, None
        return failure

    def close(self, wait: bool = True) -> None:
        """Stop this classifier's jobs: a queued one never starts, a running training is
        cancelled at its next CG iteration (a first-frame training can take seconds on a busy
        CPU, and neither shutdown, a removed target nor a new one should wait for it); queued
        samples are dropped. Its own worker thread is shut down, a shared one keeps serving
        the other classifiers.

        ``wait=False`` for a classifier that is being discarded (a removed target): the call
        returns at once and a running job ends on its own at its next check (one crop's
        backbone pass, or one CG iteration); the classifier must not be used again."""
        self._cancel.set()
        with self._lock:
            job, self._job = self._job, None
            self._pending = []
        if job is not None and not job.cancel() and wait:
            # running: stops at its next CG iteration; a failure is the frame path's to report
            futures_wait([job])
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=wait)
            self._executor = None
        if not wait:
            return  # cancelled for good: a job still running must keep seeing it
        with self._lock:
            self._pending = []
            self._scheduled = False
        self._cancel.clear()
