"""Every metric on hand-computed cases; region IoU against a brute-force rasterisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from siam_core.eval import metrics as M

# --------------------------------------------------------------------------- IoU


def test_box_iou_hand_cases() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 0, 0], [0, 0, 4, 4]])
    b = np.array([[5, 5, 10, 10], [10, 0, 5, 5], [0, 0, 10, 10], [1, 1, 0, 0], [1, 1, 2, 2]])
    np.testing.assert_allclose(M.box_iou(a, b), [25 / 175, 0.0, 1.0, 0.0, 4 / 16])
    nan = M.box_iou(np.array([[np.nan] * 4]), np.array([[0, 0, 1, 1]]))
    assert np.isnan(nan[0])
    with pytest.raises(ValueError, match="paired"):
        M.box_iou(a, b[:2])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        M.box_iou(np.zeros((2, 3)), np.zeros((2, 3)))


def test_centers_follow_the_pixel_convention() -> None:
    np.testing.assert_allclose(M.box_centers(np.array([[10, 20, 5, 7]])), [[12, 23]])
    np.testing.assert_allclose(
        M.center_error(np.array([[0, 0, 5, 5]]), np.array([[3, 4, 5, 5]])), [5]
    )


def test_polygon_iou_hand_cases() -> None:
    square = np.array([0, 0, 2, 2])
    diamond = np.array([1, 0, 2, 1, 1, 2, 0, 1])  # area 2, inside the square
    assert M.polygon_iou(square, diamond) == pytest.approx(0.5)
    assert M.polygon_iou(diamond, square) == pytest.approx(0.5)
    chevron = np.array([0, 0, 4, 0, 1, 1, 0, 4])  # concave, area 4, contains the unit square
    assert M.polygon_iou(chevron, np.array([0, 0, 1, 1])) == pytest.approx(0.25)
    assert M.polygon_iou(chevron, chevron) == pytest.approx(1.0)
    # Clipping to the image, as VOT: [-1, 1]^2 becomes [0, 1]^2.
    assert M.polygon_iou(np.array([-1, -1, 2, 2]), np.array([0, 0, 1, 1]), (10, 10)) == 1.0
    assert M.polygon_iou(np.array([-1, -1, 2, 2]), np.array([0, 0, 1, 1])) == pytest.approx(0.25)
    # Wholly outside the image: nothing left, overlap 0.
    assert M.polygon_iou(np.array([20, 20, 5, 5]), np.array([20, 20, 5, 5]), (10, 10)) == 0.0
    assert math.isnan(M.polygon_iou(np.array([np.nan] * 4), square))
    with pytest.raises(ValueError, match="4 values"):
        M.polygon_iou(np.array([1, 2, 3]), square)
    with pytest.raises(ValueError, match="self-intersecting"):
        M.polygon_iou(np.array([0, 0, 2, 2, 2, 0, 0, 2]), square)  # a bow-tie


def _raster_iou(a: np.ndarray, b: np.ndarray, bounds=None, step: float = 0.02) -> float:
    """Brute force: count sample points (cell centres of a fine grid) inside each region."""
    pa, pb = M._as_polygon(a), M._as_polygon(b)
    lo = np.minimum(pa.min(0), pb.min(0)) - 1
    hi = np.maximum(pa.max(0), pb.max(0)) + 1
    xs = np.arange(lo[0] + step / 2, hi[0], step)
    ys = np.arange(lo[1] + step / 2, hi[1], step)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    ina = MplPath(pa).contains_points(grid)
    inb = MplPath(pb).contains_points(grid)
    if bounds is not None:
        frame = (grid[:, 0] >= 0) & (grid[:, 0] <= bounds[0]) & (grid[:, 1] >= 0)
        frame &= grid[:, 1] <= bounds[1]
        ina &= frame
        inb &= frame
    union = np.sum(ina | inb)
    return float(np.sum(ina & inb) / union) if union else 0.0


def _random_quad(rng: np.random.Generator, concave: bool) -> np.ndarray:
    c = rng.uniform(3, 7, 2)
    # One vertex per quadrant around the centre: star-shaped, hence a simple polygon.
    angles = np.arange(4) * np.pi / 2 + rng.uniform(-0.6, 0.6, 4)
    radii = rng.uniform(1.5, 3.5, 4)
    if concave:
        radii[1] = 0.3  # pull one vertex towards the centre: a reflex angle
    return np.column_stack([c[0] + radii * np.cos(angles), c[1] + radii * np.sin(angles)]).ravel()


@pytest.mark.parametrize("concave", [False, True])
def test_polygon_iou_matches_rasterisation(concave: bool) -> None:
    rng = np.random.default_rng(7 + concave)
    for _ in range(12):
        a, b = _random_quad(rng, concave), _random_quad(rng, concave)
        bounds = (6.0, 6.5) if rng.uniform() < 0.5 else None
        assert M.polygon_iou(a, b, bounds) == pytest.approx(_raster_iou(a, b, bounds), abs=0.01)


def test_box_iou_matches_rasterisation() -> None:
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0, 4, 10), rng.uniform(0, 4, 10), rng.uniform(1, 5, (10, 2))])
    b = a + rng.uniform(-2, 2, a.shape) * [1, 1, 0.3, 0.3]
    ious = M.box_iou(a, b)
    for i in range(10):
        assert ious[i] == pytest.approx(_raster_iou(a[i], b[i]), abs=0.01)
        assert M.polygon_iou(a[i], b[i]) == pytest.approx(ious[i], abs=1e-9)


# --------------------------------------------------------------------------- OPE


def _ope_case():
    gt = np.array([[10, 10, 10, 10]] * 5, dtype=float)
    gt[3] = [0, 10, 10, 10]  # x = 0: not all-positive, so not scored (OTB/LaSOT toolkits)
    pred = np.array(
        [
            [100, 100, 5, 5],  # frame 0 is replaced by the ground truth
            [10, 10, 10, 10],  # IoU 1, error 0
            [15, 10, 10, 10],  # IoU 1/3, error 5, normalised error 0.5
            [40, 40, 10, 10],  # unscored frame: IoU -1, error -1
            [np.nan] * 4,  # invalid: the previous box [40, 40, 10, 10] is used: IoU 0
        ],
        dtype=float,
    )
    return pred, gt


def test_ope_curves_hand_case() -> None:
    pred, gt = _ope_case()
    c = M.ope_curves(pred, gt)
    np.testing.assert_allclose(c.ious, [1, 1, 1 / 3, -1, 0])
    expected = np.array([0.6] * 7 + [0.4] * 13 + [0.0])  # IoU 1/3 beats thresholds 0 … 0.30
    np.testing.assert_allclose(c.success, expected)
    summary = M.ope_summary([c])
    assert summary["auc"] == pytest.approx((7 * 0.6 + 13 * 0.4) / 21)
    assert summary["precision"] == pytest.approx(4 / 5)  # 0, 0, 5, -1 (unscored) <= 20 px
    assert summary["norm_precision"] == pytest.approx(3 / 5)  # 0, 0, -1 <= 0.2
    assert summary["op50"] == pytest.approx(2 / 5)
    assert summary["norm_precision_auc"] == pytest.approx(c.norm_precision.mean())


def test_ope_absent_frames_are_dropped_but_counted() -> None:
    pred, gt = _ope_case()
    c = M.ope_curves(pred, gt, absent=np.array([0, 0, 1, 0, 0], bool))
    np.testing.assert_allclose(c.ious, [1, 1, -1, 0])
    assert c.success[0] == pytest.approx(2 / 5)  # still divided by all 5 frames


def test_ope_summary_averages_sequence_curves() -> None:
    pred, gt = _ope_case()
    perfect = M.ope_curves(gt.copy(), gt)
    both = M.ope_summary([M.ope_curves(pred, gt), perfect])
    np.testing.assert_allclose(
        both["success_curve"], (M.ope_curves(pred, gt).success + perfect.success) / 2
    )
    with pytest.raises(ValueError, match="no sequences"):
        M.ope_summary([])
    with pytest.raises(ValueError, match="results have 4 rows, ground truth 5"):
        M.ope_curves(pred[:4], gt)


# --------------------------------------------------------------------------- VOT


def _run(codes: list, widths: dict[int, float], gt_box=(100, 100, 100, 100)) -> VotRunT:
    """Regions with IoU = width / 100 against the ground-truth box (same x, y, h)."""
    regions = np.full((len(codes), 4), np.nan)
    for i, w in widths.items():
        regions[i] = [gt_box[0], gt_box[1], w, gt_box[3]]
    return M.VotRun(np.array(codes), regions)


VotRunT = M.VotRun
R = M.VOT_REGION


def test_vot_accuracy_robustness_hand_case() -> None:
    codes = [1, R, R, R, 2, 0, 0, 0, 0, 1, R, R]
    run = _run(codes, {1: 50, 2: 50, 3: 50, 10: 100, 11: 100})
    gt = np.array([[100, 100, 100, 100]] * 12, float)
    np.testing.assert_array_equal(run.failures, [4])
    ov = M.vot_overlaps(run, gt, (1000, 1000), burnin=2)
    assert np.isnan(ov[[0, 1, 4, 5, 6, 7, 8, 9, 10]]).all()
    np.testing.assert_allclose(ov[[2, 3, 11]], [0.5, 0.5, 1.0])
    ar = M.vot_accuracy_robustness([run], [gt], [(1000, 1000)], burnin=2)
    assert ar["accuracy"] == pytest.approx(2 / 3)
    assert ar["failures"] == 1 and ar["failures_per_sequence"] == 1.0
    assert ar["robustness"] == pytest.approx(100 / 12)


def test_vot_default_burnin_skips_ten_frames() -> None:
    widths = {i: (80 if i >= 10 else 20) for i in range(1, 15)}
    run = _run([1] + [R] * 14, widths)
    gt = np.array([[100, 100, 100, 100]] * 15, float)
    ar = M.vot_accuracy_robustness([run], [gt], [(1000, 1000)])
    assert ar["accuracy"] == pytest.approx(0.8)  # frames 0 … 9 are the burn-in


def _eao_case():
    a = _run([1, R, R, R], {1: 90, 2: 90, 3: 90})
    b = _run([1, R, 2, 0, 0, 0, 0, 1, R, R], {1: 60, 8: 50, 9: 70})
    gts = [np.array([[100, 100, 100, 100]] * n, float) for n in (4, 10)]
    return [a, b], gts, [(1000, 1000), (1000, 1000)]


def test_eao_curve_hand_case() -> None:
    runs, gts, sizes = _eao_case()
    curve = M.eao_curve(runs, gts, sizes)
    # Fragments: A = [-, .9, .9, .9]; B1 = [-, .6, 0, 0, …, 0] (failed: zeros to the longest
    # sequence); B2 = [-, .5, .7] (restarted at frame 7, runs to the end).
    expected = [1.0, (0.9 + 0.6 + 0.5) / 3, (0.9 + 0.3 + 0.6) / 3, (0.9 + 0.2) / 2]
    expected += [0.6 / n for n in range(4, 10)]
    np.testing.assert_allclose(curve, expected)
    assert M.eao_score(curve, (2, 4)) == pytest.approx(np.mean(expected[1:4]))
    assert M.eao_score(curve, (5, 356)) == pytest.approx(np.mean(expected[4:]))
    with pytest.raises(ValueError, match="beyond the longest"):
        M.eao_score(curve, (100, 356))
    with pytest.raises(ValueError, match="low <= high"):
        M.eao_score(curve, (5, 2))


def test_eao_tag_weights() -> None:
    runs, gts, sizes = _eao_case()
    weights = [np.zeros(4), np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], float)]
    curve = M.eao_curve(runs, gts, sizes, weights=weights)
    # Fragment weights: A 0, B1 8/8 = 1, B2 1/3.
    assert curve[1] == pytest.approx((0.6 + 0.5 / 3) / (1 + 1 / 3))
    assert curve[3] == pytest.approx(0.6 / 3)


def test_vot_run_validation() -> None:
    with pytest.raises(ValueError, match="unknown VOT codes"):
        M.VotRun(np.array([1, 7]), np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="one region row per code"):
        M.VotRun(np.array([1, 0]), np.full((3, 4), np.nan))


# --------------------------------------------------------------------------- long-term


def test_lt_precision_recall_hand_case() -> None:
    overlaps = [np.array([0, 0.8, 0.6, 0.0]), np.array([0, 0.5, 0.7])]
    scores = [np.array([np.nan, 0.9, 0.4, 0.2]), np.array([np.nan, 0.3, 0.8])]
    out = M.lt_precision_recall(overlaps, scores, [3, 3])
    # Best threshold 0.3: seq 1 keeps frames 1, 2 (Pr .7, Re 1.4/3), seq 2 frames 1, 2
    # (Pr .6, Re 1.2/3); averaged Pr .65, Re 13/30.
    assert out["threshold"] == pytest.approx(0.3)
    assert out["precision"] == pytest.approx(0.65)
    assert out["recall"] == pytest.approx(13 / 30)
    assert out["f_score"] == pytest.approx(2 * 0.65 * (13 / 30) / (0.65 + 13 / 30))
    # At +inf nothing is reported: precision 1, recall 0 (pysot's convention).
    assert out["precision_curve"][0] == 1.0 and out["recall_curve"][0] == 0.0


def test_lt_thresholds_span_the_scores() -> None:
    th = M.lt_thresholds(np.arange(1000, dtype=float))
    assert th[0] == -np.inf and th[-1] == np.inf and len(th) == 100
    assert np.all(np.diff(th[1:-1]) > 0)
    with pytest.raises(ValueError, match="no confidence"):
        M.lt_thresholds(np.array([np.nan]))


# --------------------------------------------------------------------------- GOT-10k, speed


def test_got10k_hand_case() -> None:
    gt = np.array(
        [[0, 0, 5, 5], [10, 10, 20, 20], [90, 90, 20, 20], [5, 5, 5, 5], [10, 10, 20, 20]]
    )
    pred = np.array(
        [[50, 50, 5, 5], [10, 10, 20, 20], [90, 90, 10, 10], [60, 60, 5, 5], [20, 10, 20, 20]]
    )
    absent = np.array([0, 0, 0, 1, 0], bool)
    ious = M.got10k_ious(pred, gt, absent, (100, 100))
    np.testing.assert_allclose(ious, [1, 1, 1 / 3])  # frame 0 and the absent frame dropped
    s = M.got10k_summary([ious])
    assert s["ao"] == pytest.approx(7 / 9)
    assert s["sr50"] == pytest.approx(2 / 3) and s["sr75"] == pytest.approx(2 / 3)


def test_fps_from_times() -> None:
    assert M.fps_from_times(np.array([0.01, 0.02, np.nan, 0.0, -1.0])) == pytest.approx(75.0)
    assert math.isnan(M.fps_from_times(np.array([np.nan])))
