"""Tracking metrics, each as its benchmark's toolkit defines it (spec §7.2).

Boxes are (N, 4) ``x, y, w, h`` arrays, polygons (N, 8) ``x1, y1, ..., x4, y4``. Sources of
each convention are named where it is implemented:

* OTB / UAV123 / LaSOT one-pass evaluation: the OTB toolkit's ``calcSeqErrRobust.m`` and the
  LaSOT toolkit's ``calc_seq_err_robust.m`` / ``eval_tracker.m`` (same rules): the first
  frame's result is replaced by the ground truth, an invalid result (NaN, w or h <= 0) by the
  previous one, absent frames (LaSOT) are dropped but still counted in the denominator, and a
  frame whose ground truth is not all-positive scores IoU -1 (never a success) and centre
  error -1 (always within the precision threshold).
* VOT reset-based A/R and EAO, VOT long-term Pr/Re/F: pysot's toolkit
  (``toolkit/utils/statistics.py``, ``evaluation/{ar,eao,f1}_benchmark.py``), which reads and
  writes the same result files as this project's runner.
* GOT-10k AO/SR: the got10k toolkit (``experiments/got10k.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# OTB toolkit: thresholdSetOverlap = 0:0.05:1, thresholdSetError = 0:50.
SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64)
# LaSOT toolkit (norm_dst): 0:50 / 100; ranked at index 21 (0.20) in MATLAB, 20 here.
NORM_PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64) / 100.0
PRECISION_INDEX = 20

VOT_SKIP, VOT_INIT, VOT_FAILURE = 0, 1, 2
VOT_REGION = -1
VOT_SKIP_FRAMES = 5  # re-initialise 5 frames after a failure (spec §7.2)
VOT_BURNIN = 10  # frames ignored by accuracy from each (re)initialisation (pysot, VOT toolkit)


# --------------------------------------------------------------------------- boxes


def _as_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{what} must be (N, 4) boxes x, y, w, h; got shape {arr.shape}")
    return arr


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of paired boxes on the continuous plane (a box covers [x, x + w) x [y, y + h)).

    This equals the OTB toolkit's ``calcRectInt`` (which uses x + w - 1 and adds 1 back) and
    pysot's ``overlap_ratio``. NaN where either box has a NaN; 0 where the union is empty.
    """
    a, b = _as_boxes(a, "a"), _as_boxes(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"box_iou needs paired boxes, got {a.shape} and {b.shape}")
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    iou = np.clip(iou, 0.0, 1.0)
    iou[np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1)] = np.nan
    return iou


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """Centres ``x + (w - 1) / 2`` (OTB toolkit and pysot convention for pixel boxes)."""
    boxes = _as_boxes(boxes, "boxes")
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between paired box centres, in pixels."""
    return np.linalg.norm(box_centers(a) - box_centers(b), axis=1)


# --------------------------------------------------------------------------- polygons


def _as_polygon(region: np.ndarray) -> np.ndarray:
    """4 values (a box) or 2k values (a polygon) -> (k, 2) vertices."""
    r = np.asarray(region, dtype=np.float64).ravel()
    if r.size == 4:
        x, y, w, h = r
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    if r.size < 6 or r.size % 2:
        raise ValueError(f"a region is 4 values (box) or 2k >= 6 values (polygon), got {r.size}")
    return r.reshape(-1, 2)


def _signed_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _is_convex(poly: np.ndarray) -> bool:
    signs = set()
    n = len(poly)
    for i in range(n):
        c = _cross(poly[i], poly[(i + 1) % n], poly[(i + 2) % n])
        if abs(c) > 1e-12:
            signs.add(c > 0)
    return len(signs) <= 1


def _is_simple(poly: np.ndarray) -> bool:
    """No two non-adjacent edges cross (a bow-tie has no well-defined area)."""
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        for j in range(i + 2, n):
            if (j + 1) % n == i:
                continue
            c, d = poly[j], poly[(j + 1) % n]
            d1, d2 = _cross(a, b, c), _cross(a, b, d)
            d3, d4 = _cross(c, d, a), _cross(c, d, b)
            if d1 * d2 < 0 and d3 * d4 < 0:
                return False
    return True


def _clip_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: ``subject`` (any simple polygon) clipped by a convex ``clip``.

    The area of the result is exact; a concave subject may leave zero-width bridges, which
    add no area.
    """
    if _signed_area(clip) < 0:
        clip = clip[::-1]
    out = list(subject)
    for i in range(len(clip)):
        if not out:
            break
        a, b = clip[i], clip[(i + 1) % len(clip)]
        points, out = out, []
        for j in range(len(points)):
            cur, prev = points[j], points[j - 1]
            cur_in, prev_in = _cross(a, b, cur) >= 0, _cross(a, b, prev) >= 0
            if cur_in != prev_in:
                d1, d2 = _cross(a, b, prev), _cross(a, b, cur)
                t = d1 / (d1 - d2)
                out.append(prev + t * (cur - prev))
            if cur_in:
                out.append(cur)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _triangulate(poly: np.ndarray) -> list[np.ndarray]:
    """Ear-clipping triangulation of a simple polygon."""
    if _signed_area(poly) < 0:
        poly = poly[::-1]
    idx = list(range(len(poly)))
    triangles = []
    while len(idx) > 3:
        for k in range(len(idx)):
            i0, i1, i2 = idx[k - 1], idx[k], idx[(k + 1) % len(idx)]
            a, b, c = poly[i0], poly[i1], poly[i2]
            if _cross(a, b, c) <= 0:
                continue
            tri = np.array([a, b, c])
            others = (poly[j] for j in idx if j not in (i0, i1, i2))
            if any(all(_cross(tri[m], tri[(m + 1) % 3], p) >= 0 for m in range(3)) for p in others):
                continue
            triangles.append(tri)
            idx.pop(k)
            break
        else:
            raise ValueError(f"polygon is self-intersecting or degenerate: {poly.tolist()}")
    triangles.append(poly[idx])
    return triangles


def _intersection_area(p: np.ndarray, q: np.ndarray) -> float:
    if _is_convex(q):
        return abs(_signed_area(_clip_convex(p, q)))
    if _is_convex(p):
        return abs(_signed_area(_clip_convex(q, p)))
    return sum(abs(_signed_area(_clip_convex(p, t))) for t in _triangulate(q))


def polygon_iou(a: np.ndarray, b: np.ndarray, bounds: tuple[float, float] | None = None) -> float:
    """Exact IoU of two regions (boxes or polygons), optionally clipped to the image.

    ``bounds`` = (width, height) clips both regions to [0, width] x [0, height] first, as the
    VOT toolkit does (it rasterises on the pixel grid; this computes the same areas exactly).
    NaN if either region has a NaN; 0 if the union is empty.
    """
    pa, pb = _as_polygon(a), _as_polygon(b)
    if np.isnan(pa).any() or np.isnan(pb).any():
        return float("nan")
    for poly in (pa, pb):
        if not _is_simple(poly):
            raise ValueError(f"self-intersecting polygon: {poly.ravel().tolist()}")
    if bounds is not None:
        w, h = bounds
        frame = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
        pa, pb = _clip_convex(pa, frame), _clip_convex(pb, frame)
    area_a, area_b = abs(_signed_area(pa)), abs(_signed_area(pb))
    if area_a == 0.0 or area_b == 0.0:
        return 0.0
    inter = _intersection_area(pa, pb)
    union = area_a + area_b - inter
    return float(min(max(inter / union, 0.0), 1.0)) if union > 0 else 0.0


# --------------------------------------------------------------------------- OPE (OTB, UAV, LaSOT)


@dataclass(frozen=True)
class OPECurves:
    """One sequence's success, precision and normalised-precision curves (fractions of frames)."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray
    ious: np.ndarray


def ope_curves(
    pred: np.ndarray,
    gt: np.ndarray,
    absent: np.ndarray | None = None,
    select: np.ndarray | None = None,
) -> OPECurves:
    """Per-sequence OPE curves under the OTB/LaSOT toolkit rules (module docstring).

    ``select`` (a frame mask) scores only those frames, after the rules that look along the
    sequence (first frame, invalid results) were applied: a per-frame attribute (VOT tags)."""
    pred, gt = _as_boxes(pred, "results").copy(), _as_boxes(gt, "ground truth")
    if len(pred) != len(gt):
        raise ValueError(f"results have {len(pred)} rows, ground truth {len(gt)}")
    n = len(gt)
    gt_nan = np.isnan(gt).any(axis=1)
    for i in range(1, n):
        r = pred[i]
        if (np.isnan(r).any() or r[2] <= 0 or r[3] <= 0) and not gt_nan[i]:
            pred[i] = pred[i - 1]
    pred[0] = gt[0]
    keep = np.ones(n, dtype=bool) if absent is None else ~np.asarray(absent, dtype=bool)
    if select is not None:
        select = np.asarray(select, dtype=bool)
        pred, gt, keep, n = pred[select], gt[select], keep[select], int(select.sum())
        if n == 0:
            raise ValueError("select names no frame")
    p, g = pred[keep], gt[keep]
    with np.errstate(invalid="ignore"):
        valid = (g > 0).all(axis=1)
    ious = np.full(len(g), -1.0)
    ious[valid] = box_iou(p[valid], g[valid])
    ious = np.nan_to_num(ious, nan=-1.0)
    cp, cg = box_centers(p), box_centers(g)
    err = np.linalg.norm(cp - cg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm_err = np.linalg.norm(cp / g[:, 2:] - cg / g[:, 2:], axis=1)
    err[~valid] = -1.0
    norm_err[~valid] = -1.0
    err = np.nan_to_num(err, nan=np.inf)
    norm_err = np.nan_to_num(norm_err, nan=np.inf)
    return OPECurves(
        success=(ious[:, None] > SUCCESS_THRESHOLDS[None]).sum(axis=0) / n,
        precision=(err[:, None] <= PRECISION_THRESHOLDS[None]).sum(axis=0) / n,
        norm_precision=(norm_err[:, None] <= NORM_PRECISION_THRESHOLDS[None]).sum(axis=0) / n,
        ious=ious,
    )


def ope_summary(curves: Sequence[OPECurves]) -> dict[str, float | np.ndarray]:
    """Benchmark scores from per-sequence curves: curves are averaged over sequences.

    ``auc`` is the mean of the averaged success curve (the OTB ranking score), ``precision``
    its value at 20 px, ``op50`` the success rate at IoU 0.5 (DaSiamRPN's OP),
    ``norm_precision`` the normalised precision at 0.2 (LaSOT toolkit), and
    ``norm_precision_auc`` the mean of the normalised curve over 0 … 0.5 (TrackingNet).
    """
    if not curves:
        raise ValueError("no sequences to summarise")
    success = np.mean([c.success for c in curves], axis=0)
    precision = np.mean([c.precision for c in curves], axis=0)
    norm = np.mean([c.norm_precision for c in curves], axis=0)
    return {
        "auc": float(success.mean()),
        "precision": float(precision[PRECISION_INDEX]),
        "op50": float(success[10]),
        "norm_precision": float(norm[PRECISION_INDEX]),
        "norm_precision_auc": float(norm.mean()),
        "success_curve": success,
        "precision_curve": precision,
        "norm_precision_curve": norm,
    }


# --------------------------------------------------------------------------- VOT short-term


@dataclass
class VotRun:
    """One reset-based run: per frame a region or a code (1 init, 2 failure, 0 skipped).

    ``codes[i]`` is ``VOT_REGION`` (-1) where ``regions[i]`` holds the tracker's box or
    polygon, else the code; ``regions`` rows of coded frames are NaN.
    """

    codes: np.ndarray
    regions: np.ndarray

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes, dtype=np.int64)
        self.regions = np.asarray(self.regions, dtype=np.float64)
        if self.regions.ndim != 2 or len(self.regions) != len(self.codes):
            raise ValueError(
                f"VotRun needs one region row per code: {self.regions.shape} vs {self.codes.shape}"
            )
        bad = set(np.unique(self.codes).tolist()) - {VOT_REGION, VOT_SKIP, VOT_INIT, VOT_FAILURE}
        if bad:
            raise ValueError(f"unknown VOT codes {sorted(bad)}")

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def failures(self) -> np.ndarray:
        """Frame indices (0-based) where the tracker failed."""
        return np.flatnonzero(self.codes == VOT_FAILURE)


def vot_overlaps(
    run: VotRun, gt: np.ndarray, bounds: tuple[float, float] | None, burnin: int = 0
) -> np.ndarray:
    """Per-frame overlaps; NaN on coded frames and, with ``burnin``, on the ``burnin`` frames
    starting at each (re)initialisation (the VOT toolkit's convolution mask; pysot's)."""
    gt = np.asarray(gt, dtype=np.float64)
    if len(gt) != len(run):
        raise ValueError(f"VOT run has {len(run)} frames, ground truth {len(gt)}")
    unknown = run.codes != VOT_REGION
    if burnin > 0:
        for i in np.flatnonzero(run.codes == VOT_INIT):
            unknown[i : i + burnin] = True
    out = np.full(len(run), np.nan)
    for i in np.flatnonzero(~unknown):
        out[i] = polygon_iou(run.regions[i], gt[i], bounds)
    return out


def vot_accuracy_robustness(
    runs: Sequence[VotRun],
    gts: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    burnin: int = VOT_BURNIN,
) -> dict[str, float]:
    """Accuracy and robustness of one tracker over a VOT dataset (one run per sequence).

    Accuracy: mean overlap over all frames of all sequences, burn-in and coded frames
    excluded (pysot pools frames). Robustness in both conventions of spec §7.2:
    ``failures_per_sequence`` (SiamRPN tables) and ``robustness`` = failures per 100 frames
    (pysot's R, used by DaSiamRPN, SiamRPN++, DROL); ``failures`` is pysot's "lost number".
    """
    if not runs or not (len(runs) == len(gts) == len(sizes)):
        raise ValueError("need one run, ground truth and frame size per sequence")
    overlaps = np.concatenate(
        [vot_overlaps(r, g, s, burnin) for r, g, s in zip(runs, gts, sizes, strict=True)]
    )
    failures = int(sum(len(r.failures) for r in runs))
    frames = int(sum(len(r) for r in runs))
    valid = overlaps[~np.isnan(overlaps)]
    return {
        "accuracy": float(valid.mean()) if valid.size else 0.0,
        "failures": failures,
        "failures_per_sequence": failures / len(runs),
        "robustness": 100.0 * failures / frames,
        "frames": frames,
    }


def eao_curve(
    runs: Sequence[VotRun],
    gts: Sequence[np.ndarray],
    sizes: Sequence[tuple[int, int]],
    skipping: int = VOT_SKIP_FRAMES,
    weights: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Expected-overlap curve: entry L is the expected average overlap over sequences of L
    frames (index 0, the initialisation frame alone, is 1).

    Fragments start at frame 0 and at each re-initialisation (failure + ``skipping``); a
    fragment that ends in a failure counts overlap 0 up to the longest sequence, the last
    fragment of a sequence stops at its end. Overlaps are clipped to (width - 1, height - 1)
    and coded frames count 0, as pysot's ``EAOBenchmark``. ``weights`` (optional, one
    per-frame 0/1 array per sequence) weight each fragment by the share of its frames that
    carry a VOT tag, for per-attribute EAO; by default every fragment weighs 1.
    """
    overlaps = [
        np.nan_to_num(vot_overlaps(r, g, (s[0] - 1, s[1] - 1)), nan=0.0)
        for r, g, s in zip(runs, gts, sizes, strict=True)
    ]
    max_len = max(len(o) for o in overlaps)
    rows: list[np.ndarray] = []
    row_weights: list[float] = []
    for k, (run, ov) in enumerate(zip(runs, overlaps, strict=True)):
        tag = np.ones(len(ov)) if weights is None else np.asarray(weights[k], dtype=np.float64)
        starts = [0] + [int(f) + skipping for f in run.failures if f + skipping <= len(ov)]
        for j, start in enumerate(starts):
            row = np.full(max_len, np.nan)
            if j < len(starts) - 1:
                stop = starts[j + 1] + 1
                row[:] = 0.0
                segment = ov[start:stop]
                row[: len(segment)] = segment
                row_weights.append(tag[start:stop].sum() / (stop - start))
            else:
                row[: len(ov) - start] = ov[start:]
                row_weights.append(tag[start:].sum() / max(len(ov) - start, 1e-16))
            rows.append(row)
    fragments = np.asarray(rows)
    fw = np.asarray(row_weights)
    curve = np.zeros(max_len)
    curve[0] = 1.0
    for length in range(1, max_len):
        alive = ~np.isnan(fragments[:, length])
        if alive.any() and fw[alive].sum() > 0:
            means = fragments[alive, 1 : length + 1].mean(axis=1)
            curve[length] = float(np.sum(means * fw[alive]) / fw[alive].sum())
    return curve


def eao_score(curve: np.ndarray, interval: tuple[int, int]) -> float:
    """Mean of the expected-overlap curve over sequence lengths ``interval`` = [low, high]
    (indices low-1 … high-1 as pysot; lengths beyond the longest sequence do not exist)."""
    low, high = interval
    if not 1 <= low <= high:
        raise ValueError(f"EAO interval must be 1 <= low <= high, got {interval}")
    part = curve[low - 1 : high]
    if part.size == 0:
        raise ValueError(f"EAO interval {interval} starts beyond the longest sequence")
    return float(part.mean())


# --------------------------------------------------------------------------- VOT long-term


def lt_thresholds(scores: np.ndarray, resolution: int = 100) -> np.ndarray:
    """Confidence thresholds from all scores, as pysot's ``determine_thresholds``: -inf, then
    ``resolution - 2`` scores at evenly spaced ranks, then +inf. With fewer scores than
    ``resolution - 2`` the ranks are clipped to the valid range (pysot indexes out of range)."""
    s = np.sort(scores[~np.isnan(scores)])
    if s.size == 0:
        raise ValueError("no confidence scores")
    delta = np.floor(len(s) / (resolution - 2))
    idx = np.floor(np.linspace(delta - 1, len(s) - delta, resolution - 2) + 0.5).astype(int)
    idx = np.clip(idx, 0, len(s) - 1)
    return np.concatenate([[-np.inf], s[idx], [np.inf]])


def lt_precision_recall(
    overlaps: Sequence[np.ndarray], scores: Sequence[np.ndarray], visible: Sequence[int]
) -> dict[str, float | np.ndarray]:
    """VOT long-term precision, recall and F-score (spec §7.2, pysot ``F1Benchmark``).

    Per sequence: ``overlaps`` per frame (0 where the target is absent or the tracker gave no
    box), ``scores`` the tracker's confidences, ``visible`` the number of frames with the
    target in view. For each threshold θ: Pr = mean overlap over frames with score >= θ,
    Re = summed overlap over those frames / visible frames. Pr and Re are averaged over
    sequences; F = 2·Pr·Re / (Pr + Re) and the reported values are at the θ maximising F.
    """
    if not overlaps or not (len(overlaps) == len(scores) == len(visible)):
        raise ValueError("need overlaps, scores and a visible count per sequence")
    thresholds = lt_thresholds(np.concatenate([np.asarray(s, float) for s in scores]))[::-1]
    precisions, recalls = [], []
    for ov, sc, n in zip(overlaps, scores, visible, strict=True):
        ov = np.nan_to_num(np.asarray(ov, dtype=np.float64), nan=0.0)
        sc = np.nan_to_num(np.asarray(sc, dtype=np.float64), nan=0.0)
        pr, re = np.zeros(len(thresholds)), np.zeros(len(thresholds))
        for i, th in enumerate(thresholds):
            sel = sc > 0 if th == -np.inf else sc >= th
            if not sel.any():
                pr[i], re[i] = 1.0, 0.0
            else:
                pr[i] = ov[sel].mean()
                re[i] = ov[sel].sum() / max(n, 1)
        precisions.append(pr)
        recalls.append(re)
    pr_curve, re_curve = np.mean(precisions, axis=0), np.mean(recalls, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f_curve = np.nan_to_num(2 * pr_curve * re_curve / (pr_curve + re_curve), nan=0.0)
    best = int(np.argmax(f_curve))
    return {
        "precision": float(pr_curve[best]),
        "recall": float(re_curve[best]),
        "f_score": float(f_curve[best]),
        "threshold": float(thresholds[best]),
        "precision_curve": pr_curve,
        "recall_curve": re_curve,
        "f_curve": f_curve,
    }


# --------------------------------------------------------------------------- GOT-10k


def clip_boxes(boxes: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Clip boxes to the image as the got10k toolkit's ``rect_iou(bound=...)`` does."""
    b = _as_boxes(boxes, "boxes").copy()
    w, h = bounds
    b[:, 0] = np.clip(b[:, 0], 0, w)
    b[:, 1] = np.clip(b[:, 1], 0, h)
    b[:, 2] = np.clip(b[:, 2], 0, w - b[:, 0])
    b[:, 3] = np.clip(b[:, 3], 0, h - b[:, 1])
    return b


def got10k_ious(
    pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None, bounds: tuple[float, float]
) -> np.ndarray:
    """Frame IoUs scored by GOT-10k: the first frame and absent (cover 0) frames dropped,
    boxes clipped to the image; a NaN result scores 0."""
    pred, gt = _as_boxes(pred, "results"), _as_boxes(gt, "ground truth")
    if len(pred) != len(gt):
        raise ValueError(f"results have {len(pred)} rows, ground truth {len(gt)}")
    keep = np.ones(len(gt), dtype=bool) if absent is None else ~np.asarray(absent, bool)
    keep[0] = False
    ious = box_iou(clip_boxes(pred[keep], bounds), clip_boxes(gt[keep], bounds))
    return np.nan_to_num(ious, nan=0.0)


def got10k_summary(ious: Sequence[np.ndarray]) -> dict[str, float | np.ndarray]:
    """AO, SR0.5, SR0.75 over all scored frames of all sequences pooled (got10k toolkit)."""
    pooled = np.concatenate([np.asarray(i, dtype=np.float64) for i in ious])
    if pooled.size == 0:
        raise ValueError("no scored frames")
    thresholds = np.linspace(0, 1, 101)
    return {
        "ao": float(pooled.mean()),
        "sr50": float(np.mean(pooled > 0.5)),
        "sr75": float(np.mean(pooled > 0.75)),
        "success_curve": (pooled[:, None] > thresholds[None]).mean(axis=0),
    }


def fps_from_times(times: np.ndarray) -> float:
    """Frames per second from per-frame seconds: mean of 1/t over positive, finite times
    (got10k toolkit); NaN when no frame was timed."""
    t = np.asarray(times, dtype=np.float64)
    t = t[np.isfinite(t) & (t > 0)]
    return float(np.mean(1.0 / t)) if t.size else float("nan")
