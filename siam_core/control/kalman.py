"""A constant-velocity Kalman filter over n independent axes (state: n positions, n rates).

Process noise is the continuous white-noise-acceleration model: over a step ``dt`` an axis with
acceleration spectral density ``q`` gains covariance ``q * [[dt^3/3, dt^2/2], [dt^2/2, dt]]``
(Bar-Shalom, Li, Kirubarajan, "Estimation with Applications to Tracking and Navigation",
section 6.2.2). Measurements observe the positions only.
"""

from __future__ import annotations

import numpy as np


class ConstantVelocityKalman:
    """State ``x = [p_1..p_n, v_1..v_n]`` with covariance ``P`` (2n x 2n)."""

    def __init__(self, axes: int) -> None:
        if axes < 1:
            raise ValueError(f"axes must be >= 1, got {axes}")
        self.axes = axes
        self.x = np.zeros(2 * axes)
        self.P = np.eye(2 * axes)
        self._H = np.hstack([np.eye(axes), np.zeros((axes, axes))])

    def initialize(
        self, position: np.ndarray, position_var: np.ndarray, velocity_var: np.ndarray
    ) -> None:
        """Start at ``position`` with zero velocity and diagonal variances."""
        n = self.axes
        self.x = np.concatenate([np.asarray(position, np.float64), np.zeros(n)])
        self.P = np.diag(np.concatenate([position_var, velocity_var]).astype(np.float64))

    def transition(self, dt: float, accel_density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The transition matrix F and process noise Q of a step of ``dt`` seconds."""
        n = self.axes
        eye = np.eye(n)
        F = np.block([[eye, dt * eye], [np.zeros((n, n)), eye]])
        q = np.diag(np.asarray(accel_density, np.float64) * np.ones(n))
        Q = np.block([[q * dt**3 / 3.0, q * dt**2 / 2.0], [q * dt**2 / 2.0, q * dt]])
        return F, Q

    def predicted(self, dt: float, accel_density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State and covariance ``dt`` seconds ahead, leaving the filter as it is."""
        F, Q = self.transition(dt, accel_density)
        return F @ self.x, F @ self.P @ F.T + Q

    def predict(self, dt: float, accel_density: np.ndarray) -> None:
        self.x, self.P = self.predicted(dt, accel_density)

    def innovation(self, z: np.ndarray, meas_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Innovation y = z - Hx and its covariance S = HPH' + R."""
        y = np.asarray(z, np.float64) - self._H @ self.x
        S = self._H @ self.P @ self._H.T + np.diag(np.asarray(meas_var, np.float64))
        return y, S

    def mahalanobis2(self, z: np.ndarray, meas_var: np.ndarray) -> float:
        """Squared Mahalanobis distance of a measurement from the prediction."""
        y, S = self.innovation(z, meas_var)
        return float(y @ np.linalg.solve(S, y))

    def update(self, z: np.ndarray, meas_var: np.ndarray) -> None:
        """Fuse a position measurement with diagonal variance ``meas_var`` (Joseph form)."""
        y, S = self.innovation(z, meas_var)
        K = np.linalg.solve(S, self._H @ self.P).T  # P H' S^-1 (S and P symmetric)
        self.x = self.x + K @ y
        I_KH = np.eye(2 * self.axes) - K @ self._H
        R = np.diag(np.asarray(meas_var, np.float64))
        self.P = I_KH @ self.P @ I_KH.T + K @ R @ K.T
