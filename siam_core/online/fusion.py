"""The glue between DROL's classifier and a Siamese tracker, for any tracker family.

A tracker needs three things (seeds-spec §6.9.4): its search features, a hook on its score map
before the cosine window, and λ. ``OnlineModule`` crops and trains the classifier on the first
frame, turns one search's features into a confidence map on the tracker's score grid (cubic
resize, min-max normalisation) and blends it in: ``λ · conf + (1 − λ) · penalised score``,
the map broadcast over the anchors (DROL ``siamrpn_tracker.py``).

The cubic resize is Pillow's ``Image.resize`` of a float ('F') image with its default filter
(bicubic, a = −0.5, support scaled by the reduction factor, weights normalised per output
pixel, horizontal pass first, float32 between passes) as DROL calls it, written out here so the
core does not depend on Pillow (facts: Pillow ``libImaging/Resample.c``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

from siam_core.online.classifier import NOT_FOUND, Localisation, OnlineClassifier

CropFn = Callable[..., tuple[np.ndarray, tuple[float, float, float, float]]]


def _bicubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    out = np.zeros_like(x)
    near = x < 1
    far = (x >= 1) & (x < 2)
    out[near] = ((a + 2) * x[near] - (a + 3)) * x[near] * x[near] + 1
    out[far] = (((x[far] - 5) * x[far] + 8) * x[far] - 4) * a
    return out


def _resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) float64 weights of Pillow's bicubic resampling along one axis."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 2.0 * filter_scale
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        taps = _bicubic((np.arange(lo, hi) - centre + 0.5) / filter_scale)
        total = taps.sum()
        weights[i, lo:hi] = taps / total if total != 0 else taps
    return weights


_WEIGHTS: dict[tuple[int, int], np.ndarray] = {}


def resize_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """A float32 (H, W) map resized to (size, size) as Pillow's default ``resize`` does."""
    h, w = image.shape
    key_w, key_h = (w, size), (h, size)
    for key in (key_w, key_h):
        if key not in _WEIGHTS:
            _WEIGHTS[key] = _resize_weights(*key)
    rows = (image.astype(np.float64) @ _WEIGHTS[key_w].T).astype(np.float32)
    return (_WEIGHTS[key_h] @ rows.astype(np.float64)).astype(np.float32)


def normalise(conf: np.ndarray) -> np.ndarray:
    """Min-max normalisation (DROL ``normalize``); a flat map becomes zeros, not NaN."""
    lo, hi = np.min(conf), np.max(conf)
    if not hi > lo:
        return np.zeros_like(conf)
    return (conf - lo) / (hi - lo)


def normalise_sum(conf: np.ndarray) -> np.ndarray:
    """``(x - min) / sum`` (DROL ``normalize2``, the SiamFC trackers' normalisation of their own
    response); a flat map becomes zeros, not NaN."""
    out = conf - conf.min()
    total = out.sum()
    return out / total if total > 0 else out


def resize_linear(image: np.ndarray, size: int) -> np.ndarray:
    """A float32 (H, W) map resized to (size, size) by OpenCV's default (bilinear): what DROL's
    SiamFC tracker's ``cv2.resize(s, (U, U), cv2.INTER_CUBIC)`` does, since that call passes the
    flag as the ``dst`` argument, not as ``interpolation`` (checked with OpenCV 5.0)."""
    return cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (size, size))


class OnlineModule:
    """One target's classifier plus its fusion with a tracker's score map; ``select`` picks
    the classifier's input out of what the tracker's backbone returns for one search."""

    def __init__(self, classifier: OnlineClassifier) -> None:
        self.classifier = classifier
        self.cfg = classifier.cfg
        self.sample_size = classifier.sample_size
        self.exemplar_size = classifier.exemplar_size
        self.last: Localisation | None = None
        self.confidence: np.ndarray | None = None
        self.not_found_run = 0

    def select(self, features: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """The classifier's input among a search's feature levels (``feature_level``)."""
        if isinstance(features, torch.Tensor):
            return features
        level = self.cfg.feature_level
        if level is None:
            total = 0
            for f in features:  # pysot ModelBuilder.avg: sum(...) / len(...)
                total = total + f
            return total / len(features)
        if level >= len(features):
            raise ValueError(f"online.feature_level {level} but the model has {len(features)}")
        return features[level]

    def start(
        self,
        image: np.ndarray,
        box: Sequence[float],
        centre: tuple[float, float],
        template_side: int,
        pad_value: tuple[float, float, float],
        crop: CropFn,
    ) -> float:
        """Train on the first frame: crop E·S pixels of model scale around ``centre``
        (side ``round(template_side · E·S / exemplar)``, DROL ``init``); returns seconds."""
        t0 = time.perf_counter()
        big = self.sample_size * self.cfg.augment_expansion_factor
        side = max(1, round(template_side * (big / self.exemplar_size)))
        patch, _ = crop(image, centre, big, side, pad_value)
        x = torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float()[None]
        self.classifier.initialize(x, tuple(float(v) for v in box))  # type: ignore[arg-type]
        self.last, self.confidence, self.not_found_run = None, None, 0
        return time.perf_counter() - t0

    def localize(
        self,
        features: Sequence[torch.Tensor] | torch.Tensor,
        score_size: int,
        resize: Callable[[np.ndarray, int], np.ndarray] = resize_bicubic,
        norm: Callable[[np.ndarray], np.ndarray] = normalise,
    ) -> None:
        """Score one search; keeps the flag and the normalised map on the score grid (none
        while an asynchronous first-frame training is still running). ``resize`` and
        ``norm`` are DROL's RPN steps by default (Pillow bicubic, min-max); its SiamFC tracker
        uses ``resize_linear`` and ``normalise_sum``."""
        if not self.classifier.ready:
            self.last, self.confidence = None, None
            return
        loc = self.classifier.localize(self.select(features))
        conf = resize(loc.scores.numpy(), score_size).ravel()
        self.last, self.confidence = loc, norm(conf)
        self.not_found_run = self.not_found_run + 1 if loc.flag == NOT_FOUND else 0

    def fuse(self, pscore: np.ndarray) -> np.ndarray:
        """Eq. 5 on anchor-major (A·S·S,) penalised scores."""
        if self.confidence is None:
            return pscore
        lam = self.cfg.fusion_weight
        anchors = pscore.size // self.confidence.size
        if anchors * self.confidence.size != pscore.size:
            raise ValueError(
                f"score map of {pscore.size} values is not a multiple of the classifier's "
                f"{self.confidence.size}"
            )
        fused = pscore.reshape(anchors, -1) * (1 - lam) + self.confidence * lam
        return fused.ravel()

    def learn(self, box: Sequence[float]) -> bool:
        """Store the frame's sample and train as DROL's rules say (after ``localize``)."""
        if self.last is None:
            return False
        return self.classifier.update(tuple(float(v) for v in box), self.last.flag)  # type: ignore[arg-type]

    @property
    def peak(self) -> float:
        return math.nan if self.last is None else self.last.peak

    def close(self) -> None:
        self.classifier.close()
