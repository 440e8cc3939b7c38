"""The node's control outputs: ``target`` (TargetState) and ``target_point`` (PointStamped).

The tracker node calls :meth:`TargetOutput.publish` once per processed frame (on its worker
thread). The maths lives in :mod:`siam_core.control`; this module only matches each image with
its ``CameraInfo`` (same stamp, else the newest: calibrations rarely change) and its aligned
depth image (nearest stamp within ``depth_sync_s``), runs the estimator and fills messages.
Without any CameraInfo the node publishes the pixel fields only and says so once.
"""

from __future__ import annotations

import collections
import math
import threading
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped, Vector3
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from siam_core.control import (
    CameraModel,
    EstimatorSettings,
    Prediction,
    TargetEstimator,
    angles_to_rays,
)
from siam_core.tracker import TrackState
from siam_tracker_ros.conversions import depth_to_metres, stamp_ns
from siam_tracker_ros.msg import TargetState
from siam_tracker_ros.worker import Outcome

NAN = float("nan")
MEASURED_STATES = (TrackState.TRACKING, TrackState.RECOVERED)


def estimator_settings(params: dict[str, Any]) -> EstimatorSettings:
    return EstimatorSettings(
        meas_noise=params["kf_meas_noise"],
        size_noise=params["kf_size_noise"],
        accel_noise=params["kf_accel_noise"],
        size_accel_noise=params["kf_size_accel_noise"],
        min_score=params["kf_min_score"],
        max_coast_s=params["kf_max_coast_s"],
    )


def camera_from_info(msg: CameraInfo, rectified: bool) -> CameraModel:
    roi = msg.roi
    return CameraModel.from_camera_info(
        int(msg.width),
        int(msg.height),
        list(msg.k),
        list(msg.d),
        msg.distortion_model,
        p=list(msg.p),
        binning=(int(msg.binning_x), int(msg.binning_y)),
        roi=(int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)),
        rectified=rectified,
    )


def _ray(x: float, y: float, z: float) -> Vector3:
    return Vector3(x=float(x), y=float(y), z=float(z))


def _time(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


class TargetOutput:
    """Publishers, CameraInfo/depth subscriptions and the estimator of one tracker node."""

    def __init__(self, node: Node, params: dict[str, Any]) -> None:
        self._node = node
        self._params = params
        self._estimator = TargetEstimator(estimator_settings(params))
        self._pub = node.create_publisher(TargetState, "target", 10)
        self._point_pub = None
        if params["depth_topic"]:
            self._point_pub = node.create_publisher(PointStamped, "target_point", 10)
        self._lock = threading.Lock()
        self._infos: collections.deque[tuple[int, CameraInfo]] = collections.deque(maxlen=30)
        self._depths: collections.deque[tuple[int, Image]] = collections.deque(maxlen=10)
        self._camera_key: tuple | None = None
        self._camera: CameraModel | None = None
        self._camera_error = ""
        self._target_id = ""
        self._said: set[str] = set()

    # -- subscriptions (made on activate, destroyed by the node on deactivate) ----------------
    def subscribe(self) -> list:
        made = []
        topic = self._params["camera_info_topic"]
        if topic:
            qos: QoSProfile | int = qos_profile_sensor_data
            if self._params["camera_info_latched"]:
                qos = QoSProfile(
                    depth=1,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.TRANSIENT_LOCAL,
                )
            made.append(self._node.create_subscription(CameraInfo, topic, self._on_info, qos))
        if self._params["depth_topic"]:
            made.append(
                self._node.create_subscription(
                    Image, self._params["depth_topic"], self._on_depth, qos_profile_sensor_data
                )
            )
        return made

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._infos.append((stamp_ns(msg.header.stamp), msg))

    def _on_depth(self, msg: Image) -> None:
        with self._lock:
            self._depths.append((stamp_ns(msg.header.stamp), msg))

    def destroy(self) -> None:
        for publisher in (self._pub, self._point_pub):
            if publisher is not None:
                self._node.destroy_publisher(publisher)
        self._pub = self._point_pub = None

    # -- per frame ---------------------------------------------------------------------------
    def _once(self, key: str, text: str, warning: bool = False) -> None:
        if key not in self._said:
            self._said.add(key)
            logger = self._node.get_logger()
            (logger.warning if warning else logger.info)(text)

    def _camera_for(self, stamp: int, image_shape: tuple[int, ...]) -> CameraModel | None:
        """The camera model of the image stamped ``stamp``, or None (said once why)."""
        with self._lock:
            if not self._infos:
                info = None
            else:
                info = next((m for s, m in reversed(self._infos) if s == stamp), None)
                info = info or self._infos[-1][1]
        if info is None:
            topic = self._params["camera_info_topic"]
            why = f"no CameraInfo on '{topic}' yet" if topic else "camera_info_topic is empty"
            self._once("no-info", f"{why}: publishing pixel outputs only (bearing fields NaN)")
            return None
        key = (
            tuple(info.k),
            tuple(info.d),
            info.distortion_model,
            tuple(info.p),
            info.width,
            info.height,
            info.binning_x,
            info.binning_y,
            (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height),
        )
        if key != self._camera_key:
            self._camera_key = key
            try:
                self._camera = camera_from_info(info, self._params["rectified"])
                self._camera_error = ""
                self._node.get_logger().info(
                    f"camera model {self._camera.model or 'without distortion'} "
                    f"{self._camera.width}x{self._camera.height}: publishing bearings"
                )
            except ValueError as exc:
                self._camera, self._camera_error = None, str(exc)
        if self._camera is None:
            self._node.get_logger().warning(
                f"unusable CameraInfo ({self._camera_error}): pixel outputs only",
                throttle_duration_sec=10.0,
            )
            return None
        height, width = image_shape[:2]
        if (self._camera.width, self._camera.height) != (width, height):
            self._node.get_logger().warning(
                f"CameraInfo describes {self._camera.width}x{self._camera.height} images, "
                f"the image is {width}x{height}: pixel outputs only",
                throttle_duration_sec=10.0,
            )
            return None
        return self._camera

    def _horizon_s(self, stamp: int, outcome: Outcome) -> tuple[float, float]:
        """(latency covered, total prediction horizon) in seconds; see README."""
        mode = self._params["latency_compensation"]
        if mode == "processing":
            latency = outcome.latency_ms / 1e3
        elif mode == "clock":
            latency = (self._node.get_clock().now().nanoseconds - stamp) / 1e9
            if latency < 0:
                self._node.get_logger().warning(
                    "image stamps are ahead of this node's clock: no latency compensation "
                    "(latency_compensation: clock needs a shared clock)",
                    throttle_duration_sec=10.0,
                )
                latency = 0.0
        else:
            latency = 0.0
        horizon = min(latency + self._params["lookahead_s"], self._params["max_prediction_s"])
        return latency, horizon

    def publish(self, outcome: Outcome) -> None:
        """Estimate, fill and publish the TargetState (and target_point) of one outcome."""
        if self._pub is None:
            return
        header = outcome.frame.msg.header
        stamp = stamp_ns(header.stamp)
        if outcome.target_id != self._target_id or outcome.state == TrackState.IDLE:
            self._estimator.reset()
            self._target_id = outcome.target_id
        result = outcome.result
        camera = self._camera_for(stamp, outcome.image.shape)
        box = result.box if result is not None and outcome.state in MEASURED_STATES else None
        score = float(result.score) if result is not None else 0.0
        bearing = camera.box_bearing(box) if camera is not None and box is not None else None
        estimate = self._estimator.update(stamp / 1e9, box, score, bearing)
        if estimate.expired:
            self._node.get_logger().warning(
                f"{outcome.target_id}: no confident box for {estimate.coast_s:.2f} s "
                f"(kf_max_coast_s): prediction stopped, target marked invalid"
            )
        msg = TargetState(
            header=header,
            state=int(outcome.state),
            target_id=outcome.target_id,
            score=score,
            valid=estimate.valid and estimate.now is not None,
            measured=estimate.measured,
            coast_s=float(estimate.coast_s),
            has_bearing=camera is not None,
        )
        latency, horizon = self._horizon_s(stamp, outcome)
        msg.latency_ms = float(latency * 1e3)
        msg.prediction_stamp = _time(stamp + round(horizon * 1e9))
        ahead = self._estimator.at(stamp / 1e9 + horizon) if msg.valid else None
        fill_estimate(msg, estimate.now if msg.valid else None, ahead)
        self._pub.publish(msg)
        if self._point_pub is not None and msg.valid and camera is not None:
            self._publish_point(header, stamp, estimate.now.pixel, camera, outcome.image.shape)

    def _publish_point(
        self, header: Any, stamp: int, pixel: np.ndarray, camera: CameraModel, shape: tuple
    ) -> None:
        """Median depth of the box core, along the ray through the box centre."""
        tolerance = self._params["depth_sync_s"] * 1e9
        with self._lock:
            candidates = [
                (abs(s - stamp), m) for s, m in self._depths if abs(s - stamp) <= tolerance
            ]
        if not candidates:
            self._once(
                "no-depth",
                f"no depth image within {self._params['depth_sync_s']} s "
                "of the image: target_point waits for one",
            )
            return
        depth_msg = min(candidates, key=lambda c: c[0])[1]
        try:
            depth = depth_to_metres(depth_msg)
        except ValueError as exc:
            self._node.get_logger().warning(f"depth image: {exc}", throttle_duration_sec=10.0)
            return
        cx, cy, w, h = (float(v) for v in pixel[:4])
        sx, sy = depth.shape[1] / shape[1], depth.shape[0] / shape[0]  # aligned, maybe scaled
        core = self._params["depth_core"]
        x0, x1 = (cx - core * w / 2) * sx, (cx + core * w / 2) * sx
        y0, y1 = (cy - core * h / 2) * sy, (cy + core * h / 2) * sy
        rows = slice(max(0, math.floor(y0)), min(depth.shape[0], math.ceil(y1)))
        cols = slice(max(0, math.floor(x0)), min(depth.shape[1], math.ceil(x1)))
        values = depth[rows, cols]
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        z = float(np.median(values))
        xn, yn = camera.normalized(np.array([[cx - 0.5, cy - 0.5]]))[0]
        point = PointStamped(header=header)
        point.point.x, point.point.y, point.point.z = float(xn * z), float(yn * z), z
        self._point_pub.publish(point)


def fill_estimate(msg: TargetState, now: Prediction | None, ahead: Prediction | None) -> None:
    """The estimate fields of ``msg`` from the estimate at the stamp and the prediction (NaN
    where unknown)."""
    nan8 = [NAN] * 64
    msg.u = msg.v = msg.width = msg.height = msg.u_rate = msg.v_rate = NAN
    msg.azimuth = msg.elevation = msg.angular_width = msg.angular_height = NAN
    msg.azimuth_rate = msg.elevation_rate = NAN
    msg.predicted_u = msg.predicted_v = msg.predicted_azimuth = msg.predicted_elevation = NAN
    msg.ray = _ray(NAN, NAN, NAN)
    msg.predicted_ray = _ray(NAN, NAN, NAN)
    msg.pixel_covariance = nan8
    msg.bearing_covariance = nan8
    msg.predicted_bearing_covariance = [NAN] * 4
    if now is None:
        return
    msg.u, msg.v, msg.width, msg.height, msg.u_rate, msg.v_rate = (float(x) for x in now.pixel[:6])
    msg.pixel_covariance = now.pixel_cov.ravel().tolist()
    msg.predicted_u, msg.predicted_v = float(ahead.pixel[0]), float(ahead.pixel[1])
    if now.bearing is None:
        return
    az, el, aw, ah, daz, d_el = (float(x) for x in now.bearing[:6])
    msg.azimuth, msg.elevation, msg.angular_width, msg.angular_height = az, el, aw, ah
    msg.azimuth_rate, msg.elevation_rate = daz, d_el
    msg.ray = _ray(*angles_to_rays(az, el)[0])
    msg.bearing_covariance = now.bearing_cov.ravel().tolist()
    msg.predicted_azimuth, msg.predicted_elevation = (float(x) for x in ahead.bearing[:2])
    msg.predicted_ray = _ray(*angles_to_rays(ahead.bearing[0], ahead.bearing[1])[0])
    msg.predicted_bearing_covariance = ahead.bearing_cov[:2, :2].ravel().tolist()
