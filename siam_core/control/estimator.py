"""The target's motion estimate: constant-velocity Kalman filters on box centre and size.

Two filters see the same measurements, one in pixels ``[cx, cy, w, h]`` and, when a camera
model is known, one in bearing ``[azimuth, elevation, angular width, angular height]`` (the
frames of :mod:`siam_core.control.camera`). Each axis is a position and its rate.

Noise is scale-free, in units of the target's own size ``s = sqrt(w * h)`` (pixels or radians),
so one set of settings serves both filters and any image size:

* measurement: centre std ``meas_noise * s / score``, size std ``size_noise * size / score``, so
  a doubtful box (low tracker score) moves the estimate less; below ``min_score`` no update;
* process: white acceleration with spectral density ``(accel_noise * s)^2`` on the centre and
  ``(size_accel_noise * s)^2`` on the size.

While no measurement comes (LOST, or a score below ``min_score``) the filters keep predicting
with growing covariance for at most ``max_coast_s``; then the estimate is dropped and marked
invalid. A measurement the prediction cannot explain (squared Mahalanobis distance above
``reinit_gate``, e.g. the tracker re-acquired elsewhere) restarts the filters there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siam_core.control.camera import Bearing
from siam_core.control.kalman import ConstantVelocityKalman

AXES = 4  # centre x, centre y, width, height (or their angles)


@dataclass(frozen=True)
class EstimatorSettings:
    meas_noise: float = 0.05
    size_noise: float = 0.1
    accel_noise: float = 3.0
    size_accel_noise: float = 1.0
    min_score: float = 0.2
    max_coast_s: float = 1.0
    reinit_gate: float = 40.0
    init_velocity: float = 5.0  # initial rate std, target sizes per second

    def __post_init__(self) -> None:
        for name in ("meas_noise", "size_noise", "accel_noise", "size_accel_noise", "max_coast_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_score < 1.0:
            raise ValueError(f"min_score must lie in [0, 1), got {self.min_score}")
        if not self.reinit_gate > 0 or not self.init_velocity > 0:
            raise ValueError("reinit_gate and init_velocity must be > 0")


@dataclass(frozen=True)
class Prediction:
    """Filter states ``[pos(4), rate(4)]`` and covariances (8x8) at ``stamp_s``.

    ``bearing`` and ``bearing_cov`` are None without a camera model.
    """

    stamp_s: float
    pixel: np.ndarray
    pixel_cov: np.ndarray
    bearing: np.ndarray | None
    bearing_cov: np.ndarray | None


@dataclass(frozen=True)
class Estimate:
    """The estimate after one frame; ``now`` is None while there is none (``valid`` False)."""

    valid: bool
    measured: bool  # this frame's box updated the filters
    coast_s: float  # seconds since the last measurement
    expired: bool  # the coasting bound ran out on this very frame
    now: Prediction | None


class _Filter:
    """One constant-velocity filter with the scale-free noise of the module docstring."""

    def __init__(self, settings: EstimatorSettings) -> None:
        self.settings = settings
        self.kf = ConstantVelocityKalman(AXES)

    def _scale(self) -> float:
        w, h = self.kf.x[2], self.kf.x[3]
        return math.sqrt(max(w, 1e-9) * max(h, 1e-9))

    def accel_density(self) -> np.ndarray:
        s = self._scale()
        st = self.settings
        centre, size = (st.accel_noise * s) ** 2, (st.size_accel_noise * s) ** 2
        return np.array([centre, centre, size, size])

    def meas_var(self, z: np.ndarray, score: float) -> np.ndarray:
        st = self.settings
        s = math.sqrt(max(z[2], 1e-9) * max(z[3], 1e-9))
        doubt = 1.0 / max(score, 0.05)
        centre = (st.meas_noise * s * doubt) ** 2
        return np.array(
            [
                centre,
                centre,
                (st.size_noise * z[2] * doubt) ** 2,
                (st.size_noise * z[3] * doubt) ** 2,
            ]
        )

    def start(self, z: np.ndarray, score: float) -> None:
        s = math.sqrt(max(z[2], 1e-9) * max(z[3], 1e-9))
        velocity = np.full(AXES, (self.settings.init_velocity * s) ** 2)
        self.kf.initialize(z, self.meas_var(z, score), velocity)

    def step(self, dt: float, z: np.ndarray | None, score: float) -> None:
        """Predict over ``dt``; fuse ``z`` if given, restarting on a gross mismatch."""
        if dt > 0:
            self.kf.predict(dt, self.accel_density())
        if z is None:
            return
        var = self.meas_var(z, score)
        if self.kf.mahalanobis2(z, var) > self.settings.reinit_gate:
            self.start(z, score)
        else:
            self.kf.update(z, var)
        # A box never has a negative size; keep the filter where boxes live.
        self.kf.x[2:4] = np.maximum(self.kf.x[2:4], 1e-6)

    def predicted(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        return self.kf.predicted(max(dt, 0.0), self.accel_density())


class TargetEstimator:
    """Feeds tracker boxes (and bearings) through the filters; see the module docstring."""

    def __init__(self, settings: EstimatorSettings | None = None) -> None:
        self.settings = settings or EstimatorSettings()
        self.reset()

    def reset(self) -> None:
        """Forget the target (new target, or IDLE)."""
        self._pixel: _Filter | None = None
        self._bearing: _Filter | None = None
        self._stamp = 0.0
        self._last_measured = 0.0

    @property
    def valid(self) -> bool:
        return self._pixel is not None

    def update(
        self,
        stamp_s: float,
        box: Sequence[float] | None,
        score: float,
        bearing: Bearing | None = None,
    ) -> Estimate:
        """One frame at ``stamp_s``: ``box`` (x, y, w, h) from the tracker, or None (LOST).

        ``bearing`` is the box's bearing when a camera model is known. A frame older than the
        last one (out of order) changes nothing.
        """
        st = self.settings
        usable = box is not None and score >= st.min_score
        if not self.valid:
            if not usable:
                return Estimate(False, False, 0.0, False, None)
            self._start(stamp_s, box, score, bearing)
            return Estimate(True, True, 0.0, False, self.at(stamp_s))
        dt = stamp_s - self._stamp
        if dt < 0:
            return Estimate(True, False, self._stamp - self._last_measured, False, None)
        coast = stamp_s - self._last_measured
        if not usable and coast > st.max_coast_s:
            self.reset()
            return Estimate(False, False, coast, True, None)
        if usable and coast > st.max_coast_s:  # too long without a measurement: start afresh
            self._start(stamp_s, box, score, bearing)
            return Estimate(True, True, 0.0, False, self.at(stamp_s))
        z_pixel = _pixel_vector(box) if usable else None
        self._pixel.step(dt, z_pixel, score)
        if self._bearing is not None:
            self._bearing.step(dt, _bearing_vector(bearing) if usable and bearing else None, score)
        elif usable and bearing is not None:  # the camera model arrived later
            self._bearing = _Filter(st)
            self._bearing.start(_bearing_vector(bearing), score)
        self._stamp = stamp_s
        if usable:
            self._last_measured = stamp_s
        return Estimate(True, usable, stamp_s - self._last_measured, False, self.at(stamp_s))

    def at(self, stamp_s: float) -> Prediction | None:
        """The estimate extrapolated to ``stamp_s`` (not before the last frame), or None."""
        if self._pixel is None:
            return None
        dt = stamp_s - self._stamp
        pixel, pixel_cov = self._pixel.predicted(dt)
        bearing = bearing_cov = None
        if self._bearing is not None:
            bearing, bearing_cov = self._bearing.predicted(dt)
        return Prediction(max(stamp_s, self._stamp), pixel, pixel_cov, bearing, bearing_cov)

    def _start(
        self, stamp_s: float, box: Sequence[float], score: float, bearing: Bearing | None
    ) -> None:
        self._pixel = _Filter(self.settings)
        self._pixel.start(_pixel_vector(box), score)
        self._bearing = None
        if bearing is not None:
            self._bearing = _Filter(self.settings)
            self._bearing.start(_bearing_vector(bearing), score)
        self._stamp = self._last_measured = stamp_s


def _pixel_vector(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2.0, y + h / 2.0, w, h])


def _bearing_vector(bearing: Bearing) -> np.ndarray:
    return np.array(
        [bearing.azimuth, bearing.elevation, bearing.angular_width, bearing.angular_height]
    )
