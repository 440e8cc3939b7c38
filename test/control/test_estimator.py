"""The constant-velocity Kalman filter and the target estimator on synthetic tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from siam_core.control import (
    CameraModel,
    ConstantVelocityKalman,
    EstimatorSettings,
    TargetEstimator,
    angles_to_rays,
)

FPS = 30.0


def test_transition_and_process_noise_by_hand() -> None:
    kf = ConstantVelocityKalman(1)
    F, Q = kf.transition(0.1, np.array([2.0]))
    np.testing.assert_allclose(F, [[1.0, 0.1], [0.0, 1.0]])
    np.testing.assert_allclose(Q, 2.0 * np.array([[1e-3 / 3, 1e-2 / 2], [1e-2 / 2, 0.1]]))


def test_scalar_update_by_hand() -> None:
    """Prior N(0, 4), measurement 3 with variance 1: posterior mean 2.4, variance 0.8."""
    kf = ConstantVelocityKalman(1)
    kf.initialize(np.array([0.0]), np.array([4.0]), np.array([1.0]))
    kf.update(np.array([3.0]), np.array([1.0]))
    assert kf.x[0] == pytest.approx(2.4)
    assert kf.P[0, 0] == pytest.approx(0.8)
    assert kf.x[1] == pytest.approx(0.0)  # uncorrelated velocity is not moved


def synthetic_boxes(velocity, size_rate=(0.0, 0.0), seconds=2.0, noise=1.0, seed=3):
    """A 40x30 box starting at centre (200, 150) moving at ``velocity`` px/s, with pixel noise."""
    rng = np.random.default_rng(seed)
    for k in range(round(seconds * FPS)):
        t = k / FPS
        cx, cy = 200 + velocity[0] * t, 150 + velocity[1] * t
        w, h = 40 + size_rate[0] * t, 30 + size_rate[1] * t
        cx, cy = cx + rng.normal(0, noise), cy + rng.normal(0, noise)
        yield t, (cx - w / 2, cy - h / 2, w, h), (cx, cy, w, h)


def test_known_velocity_is_recovered_and_predicted() -> None:
    estimator = TargetEstimator()
    velocity, size_rate = (90.0, -45.0), (6.0, 3.0)
    rates = []
    for t, box, _ in synthetic_boxes(velocity, size_rate):
        estimate = estimator.update(t, box, score=0.95)
        assert estimate.valid and estimate.measured
        rates.append(estimate.now.pixel[4:8])
    rates = np.array(rates[-30:])  # the last second, once the filter has settled
    np.testing.assert_allclose(rates.mean(axis=0), [*velocity, *size_rate], atol=5.0)
    np.testing.assert_allclose(rates[:, :2], np.tile(velocity, (30, 1)), atol=25.0)
    # 0.2 s ahead, where the true (noise-free) target will be.
    ahead = estimator.at(t + 0.2)
    truth = np.array([200 + velocity[0] * (t + 0.2), 150 + velocity[1] * (t + 0.2)])
    np.testing.assert_allclose(ahead.pixel[:2], truth, atol=5.0)
    assert ahead.stamp_s == pytest.approx(t + 0.2)
    # Uncertainty grows with the horizon and the covariance stays symmetric positive definite.
    assert np.all(np.diag(ahead.pixel_cov)[:2] > np.diag(estimate.now.pixel_cov)[:2])
    np.testing.assert_allclose(ahead.pixel_cov, ahead.pixel_cov.T)
    assert np.all(np.linalg.eigvalsh(ahead.pixel_cov) > 0)


def test_filter_smooths_measurement_noise() -> None:
    estimator = TargetEstimator()
    errors_raw, errors_kf = [], []
    for k, (t, box, truth) in enumerate(synthetic_boxes((60.0, 20.0), noise=3.0, seconds=3.0)):
        estimate = estimator.update(t, box, score=0.9)
        if k >= 30:
            clean = np.array([200 + 60.0 * t, 150 + 20.0 * t])
            errors_raw.append(np.linalg.norm(np.array(truth[:2]) - clean))
            errors_kf.append(np.linalg.norm(estimate.now.pixel[:2] - clean))
    assert np.sqrt(np.mean(np.square(errors_kf))) < 0.75 * np.sqrt(np.mean(np.square(errors_raw)))


def test_low_scores_move_the_estimate_less() -> None:
    moved = {}
    for score in (0.95, 0.3):
        estimator = TargetEstimator()
        for t, box, _ in synthetic_boxes((0.0, 0.0), noise=0.0, seconds=1.0):
            estimator.update(t, box, score=0.95)
        jumped = (box[0] + 6.0, *box[1:])
        moved[score] = estimator.update(t + 1 / FPS, jumped, score=score).now.pixel[0] - 200.0
    assert 0.0 < moved[0.3] < 0.5 * moved[0.95]
    # Below min_score the box is not used at all: a prediction only.
    estimator = TargetEstimator(EstimatorSettings(min_score=0.4))
    estimator.update(0.0, (100, 100, 40, 40), 0.9)
    estimate = estimator.update(1 / FPS, (130, 100, 40, 40), 0.35)
    assert not estimate.measured and estimate.now.pixel[0] == pytest.approx(120.0)


def test_lost_target_coasts_then_expires_then_restarts() -> None:
    settings = EstimatorSettings(max_coast_s=0.51)
    estimator = TargetEstimator(settings)
    for t, box, _ in synthetic_boxes((120.0, 0.0), noise=0.0, seconds=1.0):
        estimator.update(t, box, score=0.95)
    last_x, last_var = estimator.at(t).pixel[0], estimator.at(t).pixel_cov[0, 0]
    coasting = []
    for k in range(1, 30):
        estimate = estimator.update(t + k / FPS, None, 0.0)
        coasting.append(estimate)
        if not estimate.valid:
            break
    kept = [e for e in coasting if e.valid]
    assert len(kept) == 15  # 15 frames of 1/30 s fit in 0.51 s
    xs = [e.now.pixel[0] for e in kept]
    variances = [e.now.pixel_cov[0, 0] for e in kept]
    assert xs[0] > last_x and np.all(np.diff(xs) > 0)  # keeps moving at the estimated velocity
    assert xs[-1] == pytest.approx(last_x + 120.0 * 15 / FPS, abs=5.0)
    assert variances[0] > last_var and np.all(np.diff(variances) > 0)
    assert all(not e.measured and not e.expired for e in kept)
    assert coasting[-1].expired and not coasting[-1].valid and coasting[-1].coast_s > 0.5
    assert not estimator.update(t + 1.0, None, 0.0).expired  # said once
    restarted = estimator.update(t + 1.1, (10, 10, 40, 30), 0.9)
    assert restarted.valid and restarted.now.pixel[:2] == pytest.approx([30.0, 25.0])
    assert restarted.now.pixel[4:] == pytest.approx([0.0] * 4)


def test_a_jump_the_filter_cannot_explain_restarts_it() -> None:
    estimator = TargetEstimator()
    for t, box, _ in synthetic_boxes((30.0, 0.0), noise=0.5, seconds=1.0):
        estimator.update(t, box, score=0.95)
    estimate = estimator.update(t + 1 / FPS, (500, 400, 40, 30), 0.8)
    assert estimate.now.pixel[:2] == pytest.approx([520.0, 415.0])
    assert estimate.now.pixel[4:6] == pytest.approx([0.0, 0.0])


def test_out_of_order_frames_change_nothing() -> None:
    estimator = TargetEstimator()
    estimator.update(1.0, (100, 100, 40, 40), 0.9)
    before = estimator.at(1.0).pixel.copy()
    estimate = estimator.update(0.5, (300, 300, 40, 40), 0.9)
    assert estimate.now is None and not estimate.measured
    np.testing.assert_array_equal(estimator.at(1.0).pixel, before)


def test_bearing_filter_recovers_a_known_angular_rate() -> None:
    """A target sweeping at known azimuth/elevation rates through a distorted camera."""
    camera = CameraModel.create(
        640, 480, [520.0, 0, 322.0, 0, 518.0, 241.0, 0, 0, 1], [-0.25, 0.07, 0, 0, 0]
    )
    rate_az, rate_el = math.radians(12.0), math.radians(-5.0)
    estimator = TargetEstimator()
    rng = np.random.default_rng(11)
    for k in range(60):
        t = k / FPS
        ray = angles_to_rays(0.15 + rate_az * t, 0.05 + rate_el * t)
        (u, v) = camera.project(ray)[0] + rng.normal(0, 0.5, 2)
        box = (u + 0.5 - 15, v + 0.5 - 15, 30.0, 30.0)
        estimate = estimator.update(t, box, 0.95, camera.box_bearing(box))
    bearing = estimate.now.bearing
    assert bearing[0] == pytest.approx(0.15 + rate_az * t, abs=math.radians(0.2))
    assert bearing[1] == pytest.approx(0.05 + rate_el * t, abs=math.radians(0.2))
    assert bearing[4] == pytest.approx(rate_az, abs=math.radians(1.5))
    assert bearing[5] == pytest.approx(rate_el, abs=math.radians(1.5))
    assert estimate.now.bearing_cov.shape == (8, 8)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_coast_s"):
        EstimatorSettings(max_coast_s=0.0)
    with pytest.raises(ValueError, match="min_score"):
        EstimatorSettings(min_score=1.5)
