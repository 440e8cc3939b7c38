"""Outputs a control loop can use: bearing from a camera model and a motion estimate.

ROS-free (NumPy and OpenCV only), so the maths is tested on its own; ``siam_tracker_ros`` turns
it into messages. See ``camera`` (pixels to rays and angles) and ``estimator`` (Kalman filter).
"""

from siam_core.control.camera import Bearing, CameraModel, angles_to_rays, rays_to_angles
from siam_core.control.estimator import Estimate, EstimatorSettings, Prediction, TargetEstimator
from siam_core.control.kalman import ConstantVelocityKalman

__all__ = [
    "Bearing",
    "CameraModel",
    "ConstantVelocityKalman",
    "Estimate",
    "EstimatorSettings",
    "Prediction",
    "TargetEstimator",
    "angles_to_rays",
    "rays_to_angles",
]
