"""The node's control outputs over a real graph: TargetState, target_point, CameraInfo, depth.

The node runs the parity weights on bag.avi in lockstep (see test_node), with a distorted
CameraInfo and an aligned depth image published beside every frame; everything it says about
the target is checked against the detections it publishes for the same frame and against
siam_core.control computed here.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import Log
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image
from test_node import Driver, clip, frame_msg, key, start_node  # noqa: F401  (fixtures)

from siam_core.control import CameraModel
from siam_core.tracker import TrackState
from siam_tracker_ros.bagtypes import typestore
from siam_tracker_ros.conversions import depth_to_metres
from siam_tracker_ros.msg import TargetState
from siam_tracker_ros.params import validate

pytestmark = [pytest.mark.ros, pytest.mark.slow]
K = [430.0, 0.0, 241.3, 0.0, 428.0, 178.6, 0.0, 0.0, 1.0]
D = [-0.21, 0.05, 0.0007, -0.0005, 0.0]


def camera_info(header) -> CameraInfo:
    info = CameraInfo(header=header, width=480, height=360, distortion_model="plumb_bob")
    info.k, info.d = K, D
    info.p = [K[0], 0.0, K[2], 0.0, 0.0, K[4], K[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def depth_image(header, millimetres: int) -> Image:
    depth = np.full((360, 480), millimetres, np.uint16)
    depth[:, :40] = 0  # no reading on the left edge
    msg = Image(header=header, height=360, width=480, encoding="16UC1", step=960)
    msg.data = depth.tobytes()
    return msg


class ControlDriver(Driver):
    """The lockstep driver plus camera_info, depth and the control outputs."""

    def __init__(self, context, namespace: str) -> None:
        super().__init__(context, namespace)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.info_pub = self.node.create_publisher(CameraInfo, f"{namespace}/camera_info", reliable)
        self.depth_pub = self.node.create_publisher(Image, f"{namespace}/depth", reliable)
        self.targets: list[TargetState] = []
        self.points: list[PointStamped] = []
        self.node.create_subscription(
            TargetState, f"{namespace}/target", self.targets.append, reliable
        )
        self.node.create_subscription(
            PointStamped, f"{namespace}/target_point", self.points.append, reliable
        )

    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def target_for(self, msg: Image) -> TargetState:
        self.spin_until(
            lambda: any(key(t.header) == key(msg.header) for t in self.targets), 10.0, "target"
        )
        return next(t for t in self.targets if key(t.header) == key(msg.header))


def test_target_state_follows_the_detections(ros_context, start_node, clip) -> None:  # noqa: F811
    start_node("/ctl", "qos_reliability:=reliable", "depth_topic:=depth", "max_prediction_s:=60.0")
    driver = ControlDriver(ros_context, "/ctl")
    driver.wait_ready()
    camera = CameraModel.create(480, 360, K, D, "plumb_bob")

    # Frame 0 comes before any CameraInfo: pixel outputs only (and the node is IDLE).
    first = frame_msg(clip["frames"][0], 0)
    driver.step(first, resend=True)
    idle = driver.target_for(first)
    assert idle.state == TargetState.IDLE and not idle.valid and not idle.has_bearing
    assert math.isnan(idle.u) and math.isnan(idle.azimuth)
    stamp = (first.header.stamp.sec, first.header.stamp.nanosec)
    assert driver.init(clip["init"], stamp=stamp).success

    # CameraInfo and depth go out before each frame (and the first ones well before), so the
    # node holds them when the frame arrives; a calibration is kept until a newer one comes.
    driver.spin_until(
        lambda: (
            driver.info_pub.get_subscription_count() > 0
            and driver.depth_pub.get_subscription_count() > 0
        ),
        10.0,
        "camera_info and depth subscriptions",
    )
    driver.info_pub.publish(camera_info(first.header))
    driver.depth_pub.publish(depth_image(first.header, 2500))
    driver.pause(0.5)
    for k in range(1, 9):
        msg = frame_msg(clip["frames"][k], k)
        driver.info_pub.publish(camera_info(msg.header))
        driver.depth_pub.publish(depth_image(msg.header, 2500))
        status = driver.step(msg)
        assert status.state == TargetState.TRACKING
        target = driver.target_for(msg)
        (detection,) = driver.detections_for(msg).detections
        bbox = detection.bbox
        box = (
            bbox.center.position.x - bbox.size_x / 2,
            bbox.center.position.y - bbox.size_y / 2,
            bbox.size_x,
            bbox.size_y,
        )
        assert target.valid and target.measured and target.has_bearing
        assert target.target_id == "target-1" and target.header.frame_id == "camera"
        assert target.score == pytest.approx(detection.results[0].hypothesis.score, abs=1e-6)
        if k == 1:  # the filter starts at the first measurement
            assert (target.u, target.v) == pytest.approx(
                (bbox.center.position.x, bbox.center.position.y)
            )
            bearing = camera.box_bearing(box)
            assert target.azimuth == pytest.approx(bearing.azimuth, abs=1e-9)
            assert target.elevation == pytest.approx(bearing.elevation, abs=1e-9)
            assert target.angular_width == pytest.approx(bearing.angular_width, abs=1e-9)
        else:  # then it smooths: close to, not equal to, the box
            assert abs(target.u - bbox.center.position.x) < 0.25 * bbox.size_x
            assert abs(target.v - bbox.center.position.y) < 0.25 * bbox.size_y
        # The ray and the angles say the same thing (REP 103 signs, see siam_core.control).
        ray = (target.ray.x, target.ray.y, target.ray.z)
        assert math.atan2(-ray[0], ray[2]) == pytest.approx(target.azimuth)
        assert math.atan2(-ray[1], math.hypot(ray[0], ray[2])) == pytest.approx(target.elevation)
        assert math.isfinite(target.azimuth_rate) and math.isfinite(target.u_rate)
        pixel_cov = np.array(target.pixel_covariance).reshape(8, 8)
        np.testing.assert_allclose(pixel_cov, pixel_cov.T, atol=1e-9)
        assert np.all(np.linalg.eigvalsh(pixel_cov) > 0)
        assert np.all(np.isfinite(target.bearing_covariance))
        # Latency compensation ("processing"): the prediction reaches stamp + the node's latency.
        horizon_ns = (target.prediction_stamp.sec - msg.header.stamp.sec) * 1_000_000_000 + (
            target.prediction_stamp.nanosec - msg.header.stamp.nanosec
        )
        assert target.latency_ms > 0
        assert horizon_ns == pytest.approx(target.latency_ms * 1e6, abs=100.0)  # float32 ms
        horizon = horizon_ns / 1e9
        assert target.predicted_u == pytest.approx(target.u + target.u_rate * horizon, abs=1e-6)
        assert target.predicted_azimuth == pytest.approx(
            target.azimuth + target.azimuth_rate * horizon, abs=1e-9
        )
        assert np.all(np.isfinite(target.predicted_bearing_covariance))

    # target_point: the median depth of the box core along the ray through the centre.
    driver.spin_until(lambda: len(driver.points) >= 8, 10.0, "target points")
    last = driver.targets[-1]
    point = next(p for p in driver.points if key(p.header) == key(last.header))
    xn, yn = camera.normalized(np.array([[last.u - 0.5, last.v - 0.5]]))[0]
    assert point.point.z == pytest.approx(2.5)
    assert (point.point.x, point.point.y) == pytest.approx((xn * 2.5, yn * 2.5))


def test_doubtful_boxes_only_predict_then_the_estimate_is_dropped(
    ros_context,
    start_node,  # noqa: F811
    clip,  # noqa: F811
) -> None:
    """kf_min_score 0.9 against the known scores of these weights (0.98, 0.89, 0.85, 0.96, ...):
    boxes below it only predict, with growing covariance; four in a row (frames 12-15) outlast
    kf_max_coast_s = 0.1 s at 25 fps, so the estimate is dropped. No CameraInfo: pixels only."""
    start_node(
        "/coast",
        "qos_reliability:=reliable",
        "kf_max_coast_s:=0.1",
        "kf_min_score:=0.9",
        "camera_info_topic:=nothing_here",
        "max_prediction_s:=0.0",
    )
    driver = ControlDriver(ros_context, "/coast")
    logged: list[str] = []
    latched = QoSProfile(
        depth=1000,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    driver.node.create_subscription(
        Log,
        "/rosout",
        lambda m: logged.append(m.msg) if m.name.endswith("tracker_node") else None,
        latched,
    )
    driver.wait_ready()
    first = frame_msg(clip["frames"][0], 0)
    driver.step(first, resend=True)
    assert driver.init(clip["init"]).success
    seen = {}
    for k in range(1, 16):
        msg = frame_msg(clip["frames"][k], k)
        driver.step(msg)
        seen[k] = driver.target_for(msg)
    scores = {k: clip["reference"][k]["best_score"] for k in seen}
    assert all(t.state == TargetState.TRACKING for t in seen.values())
    assert all(not t.has_bearing and math.isnan(t.azimuth) for t in seen.values())
    # max_prediction_s bounds the horizon: 0 keeps the prediction at the image's stamp.
    assert all(t.prediction_stamp == t.header.stamp and t.latency_ms > 0 for t in seen.values())
    for k in range(1, 14):
        assert seen[k].valid and seen[k].measured == (scores[k] >= 0.9), k
    assert seen[2].coast_s == pytest.approx(0.04) and seen[3].coast_s == pytest.approx(0.08)
    variances = [seen[k].pixel_covariance[0] for k in (1, 2, 3)]
    assert variances[0] < variances[1] < variances[2]
    assert seen[3].u == pytest.approx(seen[2].u + seen[2].u_rate * 0.04, abs=1e-6)
    assert not seen[14].valid and not seen[15].valid and math.isnan(seen[14].u)
    assert seen[14].coast_s == pytest.approx(0.12)
    # Said once each: no CameraInfo (pixel outputs only), and the end of the prediction.
    driver.spin_until(lambda: any("prediction stopped" in text for text in logged), 10.0, "log")
    assert sum("pixel outputs only" in text for text in logged) == 1, logged
    assert sum("prediction stopped" in text for text in logged) == 1, logged


def test_target_state_round_trip_rclpy_and_rosbags() -> None:
    msg = TargetState(state=TargetState.TRACKING, target_id="t1", valid=True, has_bearing=True)
    msg.azimuth, msg.elevation = 0.125, -0.0625
    msg.pixel_covariance = [float(i) for i in range(64)]
    msg.predicted_bearing_covariance = [1.0, 0.5, 0.5, 2.0]
    msg.ray.x, msg.ray.z = -0.6, 0.8
    raw = serialize_message(msg)
    assert deserialize_message(raw, TargetState) == msg
    decoded = typestore().deserialize_cdr(raw, "siam_tracker_ros/msg/TargetState")
    assert decoded.azimuth == 0.125 and decoded.ray.x == -0.6
    assert list(decoded.pixel_covariance) == [float(i) for i in range(64)]
    for state in TrackState:
        assert getattr(TargetState, state.name) == state.value


def test_depth_images_in_metres() -> None:
    header = Image().header
    metres = depth_to_metres(depth_image(header, 1234))
    assert np.isnan(metres[0, 0]) and metres[0, 100] == pytest.approx(1.234)
    floats = np.array([[1.5, np.nan], [0.0, np.inf]], ">f4")
    msg = Image(height=2, width=2, encoding="32FC1", step=8, is_bigendian=1)
    msg.data = floats.tobytes()
    out = depth_to_metres(msg)
    assert out[0, 0] == pytest.approx(1.5) and np.isnan(out[[0, 1, 1], [1, 0, 1]]).all()
    with pytest.raises(ValueError, match="unsupported depth encoding"):
        depth_to_metres(Image(height=1, width=1, encoding="rgb8", step=3, data=b"abc"))
    with pytest.raises(ValueError, match="malformed"):
        depth_to_metres(Image(height=2, width=2, encoding="16UC1", step=4, data=b"ab"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("latency_compensation", "future", "latency_compensation='future': must be one of"),
        ("depth_core", 0.0, r"depth_core=0.0: must lie in"),
        ("lookahead_s", -0.1, "lookahead_s=-0.1: must be >= 0"),
    ],
)
def test_control_parameters_are_validated(name, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        validate({name: value})


def test_the_node_refuses_bad_kalman_settings(tmp_path: Path) -> None:
    from siam_tracker_ros.target import estimator_settings

    with pytest.raises(ValueError, match="max_coast_s"):
        estimator_settings(validate({"kf_max_coast_s": 0.0}))


def test_clock_latency_mode_predicts_to_now(ros_context) -> None:
    """In-process: TargetOutput on a real node, fed outcomes stamped in the past and future."""
    from siam_core.tracker import TrackResult
    from siam_tracker_ros.target import TargetOutput
    from siam_tracker_ros.worker import Counters, Frame, Outcome

    node = rclpy.create_node("clock_mode", context=ros_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    params = validate(
        {"latency_compensation": "clock", "lookahead_s": 0.1, "camera_info_topic": ""}
    )
    output = TargetOutput(node, params)
    got: list[TargetState] = []
    node.create_subscription(TargetState, "target", got.append, 10)
    image = np.zeros((360, 480, 3), np.uint8)
    result = TrackResult((200.0, 150.0, 40.0, 30.0), 0.9, TrackState.TRACKING, (0, 0, 480, 360))

    def publish(stamp_ns: int) -> TargetState:
        msg = Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
        frame = Frame(msg, stamp_ns, time.monotonic())
        outcome = Outcome(
            frame, image, result, TrackState.TRACKING, "t-1", "", 5.0, Counters(1, 1, 0)
        )
        before = len(got)
        output.publish(outcome)
        deadline = time.monotonic() + 5.0
        while len(got) == before and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
        return got[-1]

    now = node.get_clock().now().nanoseconds
    past = publish(now - 200_000_000)  # exposed 0.2 s ago
    assert 200.0 <= past.latency_ms < 2000.0
    horizon = past.prediction_stamp.sec + past.prediction_stamp.nanosec / 1e9 - (now - 2e8) / 1e9
    assert horizon == pytest.approx(past.latency_ms / 1e3 + 0.1, abs=1e-6)
    ahead = publish(node.get_clock().now().nanoseconds + 3_000_000_000)  # a clock ahead of ours
    assert ahead.latency_ms == 0.0
    assert ahead.prediction_stamp.nanosec == (ahead.header.stamp.nanosec + 100_000_000) % 10**9
    output.destroy()
    node.destroy_node()
