"""Pixels to bearing: undistortion with a calibrated camera model, unit rays, azimuth/elevation.

Frames and signs (REP 103/105, the same as ``sensor_msgs/CameraInfo`` and image_geometry):

* the **optical frame** (``*_optical_frame``): x right, y down, z forward along the optical axis;
  a ray is a unit vector in it;
* **azimuth** = atan2(-x, z): the yaw angle of the target about the camera's up axis, positive
  to the LEFT (counter-clockwise seen from above, as REP 103 turns positive yaw), zero on axis;
* **elevation** = atan2(-y, hypot(x, z)): positive ABOVE the optical axis (that is minus the
  REP 103 pitch of the target, whose positive pitch points down).

So ``ray = (-sin(az) cos(el), -sin(el), cos(az) cos(el))``. Pixel coordinates follow the camera
matrix convention (pixel centres at integers); ``siam_core`` boxes are continuous (pixel i spans
[i, i+1)), so a box centre is shifted by half a pixel before it meets the camera matrix.

Distortion models are the ROS ones: ``plumb_bob`` (k1 k2 p1 p2 k3), ``rational_polynomial``
(k1 k2 p1 p2 k3 k4 k5 k6), ``equidistant`` (fisheye k1..k4), or none (all-zero or empty ``D``).
OpenCV's models are exactly these, so undistortion is OpenCV's, iterated to convergence (its
default of 5 fixed-point steps leaves pixel-sized errors at strong distortion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PINHOLE_MODELS = {"plumb_bob": (4, 5, 8, 12, 14), "rational_polynomial": (8, 12, 14)}
FISHEYE_MODEL = "equidistant"
NO_DISTORTION = ""
# Iterate until the reprojection moves less than 1e-12 (normalised units) or 200 steps.
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)


@dataclass(frozen=True)
class Bearing:
    """Where a box is as angles (radians) and as a unit ray in the optical frame."""

    azimuth: float
    elevation: float
    ray: tuple[float, float, float]
    angular_width: float
    angular_height: float


def rays_to_angles(rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) rays in the optical frame -> (azimuth, elevation) arrays, radians (see module)."""
    rays = np.asarray(rays, np.float64).reshape(-1, 3)
    x, y, z = rays[:, 0], rays[:, 1], rays[:, 2]
    return np.arctan2(-x, z), np.arctan2(-y, np.hypot(x, z))


def angles_to_rays(azimuth: np.ndarray | float, elevation: np.ndarray | float) -> np.ndarray:
    """Azimuth/elevation (radians) -> (N, 3) unit rays in the optical frame."""
    az = np.atleast_1d(np.asarray(azimuth, np.float64))
    el = np.atleast_1d(np.asarray(elevation, np.float64))
    cos_el = np.cos(el)
    return np.stack([-np.sin(az) * cos_el, -np.sin(el), np.cos(az) * cos_el], axis=1)


def _matrix(values: Sequence[float], shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(values, np.float64)
    if array.size != shape[0] * shape[1] or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold {shape[0] * shape[1]} finite numbers, got {values!r}")
    return array.reshape(shape)


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera: image size, camera matrix ``k``, distortion ``d`` of ``model``.

    ``scale``/``offset`` map the published image's pixels to the calibration's (binning and
    region of interest, REP 104): ``calibration = image * scale + offset``.
    """

    width: int
    height: int
    k: np.ndarray
    d: np.ndarray
    model: str
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def create(
        cls,
        width: int,
        height: int,
        k: Sequence[float],
        d: Sequence[float] = (),
        model: str = "plumb_bob",
    ) -> CameraModel:
        """Validated model; raises ``ValueError`` naming what is wrong."""
        if width <= 0 or height <= 0:
            raise ValueError(f"camera image size must be positive, got {width}x{height}")
        matrix = _matrix(k, (3, 3), "camera matrix K")
        if matrix[0, 0] <= 0 or matrix[1, 1] <= 0 or matrix[2, 2] != 1.0:
            raise ValueError(f"camera matrix K needs fx, fy > 0 and K[2][2] = 1, got {list(k)}")
        coeffs = np.asarray(d, np.float64).ravel()
        if not np.all(np.isfinite(coeffs)):
            raise ValueError(f"distortion coefficients must be finite, got {list(d)}")
        if not np.any(coeffs):
            model, coeffs = NO_DISTORTION, np.zeros(0)
        elif model == FISHEYE_MODEL:
            if coeffs.size != 4:
                raise ValueError(f"equidistant needs 4 coefficients (k1..k4), got {coeffs.size}")
        elif model in PINHOLE_MODELS:
            if coeffs.size not in PINHOLE_MODELS[model]:
                raise ValueError(
                    f"{model} needs {PINHOLE_MODELS[model]} coefficients, got {coeffs.size}"
                )
        else:
            known = [*PINHOLE_MODELS, FISHEYE_MODEL]
            raise ValueError(f"unsupported distortion model '{model}'; supported: {known}")
        return cls(int(width), int(height), matrix, coeffs, model)

    @classmethod
    def from_camera_info(
        cls,
        width: int,
        height: int,
        k: Sequence[float],
        d: Sequence[float],
        model: str,
        p: Sequence[float] = (),
        binning: tuple[int, int] = (0, 0),
        roi: tuple[int, int, int, int] = (0, 0, 0, 0),
        rectified: bool = False,
    ) -> CameraModel:
        """From the fields of a ``sensor_msgs/CameraInfo``, as plain values.

        ``rectified``: the images are already rectified (``image_rect``): the projection matrix
        P (no distortion) describes them instead of K and D. A monocular P has no translation;
        a stereo pair's right P (Tx != 0) still gives the right rays, the baseline aside.
        ``roi`` is (x_offset, y_offset, width, height) in full-resolution pixels.
        """
        if rectified:
            projection = _matrix(p, (3, 4), "projection matrix P")
            k, d, model = projection[:, :3].ravel(), (), NO_DISTORTION
        camera = cls.create(width, height, k, d, model)
        bx, by = (max(1, int(b)) for b in binning)
        x0, y0, roi_w, roi_h = (int(v) for v in roi)
        if roi_w <= 0 or roi_h <= 0:  # REP 104: an all-zero ROI means the full image
            x0, y0, roi_w, roi_h = 0, 0, camera.width, camera.height
        return cls(
            roi_w // bx,
            roi_h // by,
            camera.k,
            camera.d,
            camera.model,
            (float(bx), float(by)),
            (float(x0), float(y0)),
        )

    @property
    def focal(self) -> tuple[float, float]:
        return float(self.k[0, 0]), float(self.k[1, 1])

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) image pixels -> (N, 2) undistorted normalised coordinates (x/z, y/z)."""
        pts = np.asarray(pixels, np.float64).reshape(-1, 2)
        pts = pts * np.asarray(self.scale) + np.asarray(self.offset)
        if self.model == FISHEYE_MODEL:
            out = cv2.fisheye.undistortPoints(
                pts.reshape(1, -1, 2), self.k, self.d, criteria=_CRITERIA
            )
        elif self.model == NO_DISTORTION:
            homogeneous = np.column_stack([pts, np.ones(len(pts))])
            out = np.linalg.solve(self.k, homogeneous.T).T[:, :2]
        else:
            out = _undistort_iter(pts.reshape(-1, 1, 2), self.k, self.d)
        return np.asarray(out, np.float64).reshape(-1, 2)

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) image pixels -> (N, 3) unit rays in the optical frame."""
        xy = self.normalized(pixels)
        rays = np.column_stack([xy, np.ones(len(xy))])
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def project(self, rays: np.ndarray) -> np.ndarray:
        """(N, 3) rays in front of the camera (z > 0) -> (N, 2) image pixels (distorted)."""
        rays = np.asarray(rays, np.float64).reshape(-1, 3)
        if np.any(rays[:, 2] <= 0):
            raise ValueError("project() needs rays in front of the camera (z > 0)")
        zero = np.zeros(3)
        if self.model == FISHEYE_MODEL:
            pts, _ = cv2.fisheye.projectPoints(rays.reshape(1, -1, 3), zero, zero, self.k, self.d)
        else:
            pts, _ = cv2.projectPoints(rays, zero, zero, self.k, self.d)
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        return (pts - np.asarray(self.offset)) / np.asarray(self.scale)

    def box_bearing(self, box: Sequence[float]) -> Bearing:
        """Bearing of a siam_core box (x, y, w, h; continuous pixels) and its angular size.

        The angular size is the angle between the rays through the middles of opposite edges.
        """
        x, y, w, h = (float(v) for v in box)
        cx, cy = x + w / 2.0 - 0.5, y + h / 2.0 - 0.5  # continuous -> camera-matrix pixels
        points = np.array([[cx, cy], [cx - w / 2, cy], [cx + w / 2, cy], [cx, cy - h / 2]])
        points = np.vstack([points, [[cx, cy + h / 2]]])
        centre, left, right, top, bottom = self.rays(points)
        az, el = rays_to_angles(centre)
        return Bearing(
            azimuth=float(az[0]),
            elevation=float(el[0]),
            ray=(float(centre[0]), float(centre[1]), float(centre[2])),
            angular_width=_angle_between(left, right),
            angular_height=_angle_between(top, bottom),
        )


def _undistort_iter(points: np.ndarray, k: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Iterated pinhole undistortion: ``undistortPointsIter`` in OpenCV 4, a keyword in 5."""
    if hasattr(cv2, "undistortPointsIter"):
        return cv2.undistortPointsIter(points, k, d, None, None, _CRITERIA)
    return cv2.undistortPoints(points, k, d, criteria=_CRITERIA)


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between unit vectors, accurate for small angles too (atan2 of cross and dot)."""
    return math.atan2(float(np.linalg.norm(np.cross(a, b))), float(np.dot(a, b)))
