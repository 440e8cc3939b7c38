"""Bearing from a camera model: hand-computed cases and round trips through OpenCV's projection."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from siam_core.control import CameraModel, angles_to_rays, rays_to_angles

F, CX, CY = 500.0, 319.5, 239.5
K = [F, 0.0, CX, 0.0, F, CY, 0.0, 0.0, 1.0]


def box_at(u: float, v: float, w: float = 20.0, h: float = 10.0) -> tuple[float, ...]:
    """A siam_core box (continuous pixels) whose centre falls on camera-matrix pixel (u, v)."""
    return (u + 0.5 - w / 2, v + 0.5 - h / 2, w, h)


def test_pinhole_bearings_by_hand() -> None:
    camera = CameraModel.create(640, 480, K)
    on_axis = camera.box_bearing(box_at(CX, CY))
    assert on_axis.azimuth == pytest.approx(0.0, abs=1e-12)
    assert on_axis.elevation == pytest.approx(0.0, abs=1e-12)
    assert on_axis.ray == pytest.approx((0.0, 0.0, 1.0))
    # One focal length to the right: x/z = 1, 45 degrees; right is NEGATIVE azimuth (REP 103).
    right = camera.box_bearing(box_at(CX + F, CY))
    assert math.degrees(right.azimuth) == pytest.approx(-45.0)
    assert right.elevation == pytest.approx(0.0, abs=1e-12)
    # One focal length up (smaller v): positive elevation.
    up = camera.box_bearing(box_at(CX, CY - F))
    assert math.degrees(up.elevation) == pytest.approx(45.0)
    assert up.ray == pytest.approx((0.0, -math.sqrt(0.5), math.sqrt(0.5)))
    # Down and right: ray (1, 1, 1)/sqrt(3): elevation -atan(1/sqrt(2)) = -35.264 degrees.
    corner = camera.box_bearing(box_at(CX + F, CY + F))
    assert math.degrees(corner.azimuth) == pytest.approx(-45.0)
    assert math.degrees(corner.elevation) == pytest.approx(-35.26438968)


def test_angular_size_by_hand() -> None:
    camera = CameraModel.create(640, 480, K)
    bearing = camera.box_bearing(box_at(CX, CY, w=100.0, h=50.0))
    assert bearing.angular_width == pytest.approx(2 * math.atan(50.0 / F))
    assert bearing.angular_height == pytest.approx(2 * math.atan(25.0 / F))


def test_plumb_bob_k1_by_hand() -> None:
    """Normalised x = 0.5 distorts to 0.5 (1 + k1 r^2) = 0.5125 with k1 = 0.1."""
    camera = CameraModel.create(640, 480, K, [0.1, 0.0, 0.0, 0.0, 0.0], "plumb_bob")
    bearing = camera.box_bearing(box_at(CX + F * 0.5125, CY))
    assert math.degrees(bearing.azimuth) == pytest.approx(-math.degrees(math.atan(0.5)), abs=1e-9)
    assert bearing.elevation == pytest.approx(0.0, abs=1e-12)


def test_equidistant_by_hand() -> None:
    """Fisheye: a ray 30 degrees right lands at theta_d = theta (1 + k1 theta^2) focal lengths."""
    theta = math.radians(30.0)
    camera = CameraModel.create(640, 480, K, [0.05, 0.0, 0.0, 0.0], "equidistant")
    bearing = camera.box_bearing(box_at(CX + F * theta * (1 + 0.05 * theta**2), CY))
    assert math.degrees(bearing.azimuth) == pytest.approx(-30.0, abs=1e-9)


@pytest.mark.parametrize(
    ("model", "d"),
    [
        ("plumb_bob", [-0.28, 0.09, 0.001, -0.0015, -0.012]),
        ("rational_polynomial", [0.6, -0.2, 0.0008, 0.0012, 0.05, 0.9, -0.1, 0.12]),
        ("equidistant", [0.08, -0.03, 0.01, -0.002]),
    ],
)
def test_round_trip_through_opencv_projection(model: str, d: list[float]) -> None:
    """Rays projected by OpenCV's own functions come back as the same rays and angles."""
    k = np.array([[612.0, 0.0, 330.2], [0.0, 608.5, 236.9], [0.0, 0.0, 1.0]])
    camera = CameraModel.create(640, 480, k.ravel(), d, model)
    rng = np.random.default_rng(7)
    az = rng.uniform(-0.45, 0.45, 200)
    el = rng.uniform(-0.35, 0.35, 200)
    rays = angles_to_rays(az, el)
    zero = np.zeros(3)
    if model == "equidistant":
        pixels, _ = cv2.fisheye.projectPoints(rays.reshape(1, -1, 3), zero, zero, k, np.array(d))
    else:
        pixels, _ = cv2.projectPoints(rays, zero, zero, k, np.array(d))
    pixels = pixels.reshape(-1, 2)
    back = camera.rays(pixels)
    np.testing.assert_allclose(back, rays, atol=1e-9)
    got_az, got_el = rays_to_angles(back)
    np.testing.assert_allclose(got_az, az, atol=1e-9)
    np.testing.assert_allclose(got_el, el, atol=1e-9)
    np.testing.assert_allclose(camera.project(back), pixels, atol=1e-6)


def test_binning_and_roi_map_to_calibration_pixels() -> None:
    """REP 104: a 2x2-binned ROI at (100, 40) of a 1280x960 calibration."""
    full = CameraModel.create(1280, 960, [1000.0, 0, 640, 0, 1000.0, 480, 0, 0, 1])
    binned = CameraModel.from_camera_info(
        1280, 960, full.k.ravel(), [], "plumb_bob", binning=(2, 2), roi=(100, 40, 800, 600)
    )
    assert (binned.width, binned.height) == (400, 300)
    pixel = np.array([[123.0, 77.0]])
    np.testing.assert_allclose(binned.rays(pixel), full.rays([[346.0, 194.0]]))


def test_rectified_images_use_the_projection_matrix() -> None:
    p = [400.0, 0, 300.0, 0, 0, 400.0, 200.0, 0, 0, 0, 1, 0]
    camera = CameraModel.from_camera_info(
        640, 480, K, [-0.3, 0.1, 0, 0, 0], "plumb_bob", p=p, rectified=True
    )
    bearing = camera.box_bearing(box_at(700.0, 200.0))
    assert math.degrees(bearing.azimuth) == pytest.approx(-45.0)


@pytest.mark.parametrize(
    ("k", "d", "model", "message"),
    [
        (K, [0.1, 0, 0, 0, 0], "kannala_brandt", "unsupported distortion model"),
        (K, [0.1, 0, 0], "plumb_bob", "plumb_bob needs"),
        (K, [0.1, 0, 0, 0, 0], "equidistant", "equidistant needs 4"),
        ([0.0] * 9, [], "plumb_bob", "fx, fy > 0"),
        (K[:8], [], "plumb_bob", "9 finite numbers"),
        (K, [float("nan")] * 5, "plumb_bob", "finite"),
    ],
)
def test_bad_calibrations_are_refused(k, d, model, message) -> None:
    with pytest.raises(ValueError, match=message):
        CameraModel.create(640, 480, k, d, model)


def test_zero_distortion_needs_no_model_name() -> None:
    """Drivers publish D = [0, 0, 0, 0, 0] or D = [] with any model name: that is no distortion."""
    for d, model in (([0.0] * 5, "plumb_bob"), ([], ""), ([0.0] * 4, "whatever")):
        camera = CameraModel.create(640, 480, K, d, model)
        assert camera.box_bearing(box_at(CX + F, CY)).azimuth == pytest.approx(-math.pi / 4)
