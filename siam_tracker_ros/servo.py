"""A pan-tilt servo: PI control of the target's bearing to zero, from ``target`` alone.

``siam-servo`` subscribes ``target`` (siam_tracker_ros/TargetState) and answers every message
with angular rate commands on ``cmd_rate`` (``geometry_msgs/TwistStamped`` with the image's
stamp, or plain ``Twist`` with ``stamped: false``), in the camera body frame of REP 103:
``angular.z`` yaw rate (positive turns left, toward positive azimuth) and ``angular.y`` pitch
rate (positive tilts down, away from positive elevation). So

    yaw_rate   =  kp * az + ki * integral(az)
    pitch_rate = -(kp * el + ki * integral(el))

on the predicted bearing (``use_prediction``, the latency-compensated one) or the estimate at
the image stamp, limited to ``max_rate`` and to changes of ``max_accel`` per second. The
integral only grows while the output is not saturated (no wind-up). Without a valid bearing
(IDLE, LOST past the node's coasting bound, no CameraInfo) the command decays to zero and the
integral is cleared. Time steps come from the images' stamps, so the loop behaves the same on a
simulated clock.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile before rclpy.init)
from siam_tracker_ros.conversions import stamp_ns
from siam_tracker_ros.lifetime import close_node, run_executor
from siam_tracker_ros.msg import TargetState


@dataclass
class AxisPI:
    """One axis: PI on an angle error with rate and acceleration limits (radians, seconds)."""

    kp: float
    ki: float
    max_rate: float
    max_accel: float
    integral: float = 0.0
    output: float = 0.0

    def step(self, error: float | None, dt: float) -> float:
        if error is None:
            self.integral = 0.0
            wanted = 0.0
        else:
            wanted = self.kp * error + self.ki * (self.integral + error * dt)
            if abs(wanted) < self.max_rate:  # conditional integration: no wind-up
                self.integral += error * dt
            else:
                wanted = self.kp * error + self.ki * self.integral
        wanted = max(-self.max_rate, min(self.max_rate, wanted))
        change = self.max_accel * dt
        self.output = max(self.output - change, min(self.output + change, wanted))
        return self.output


# The servo's parameters and defaults (gains tuned on the closed-loop demo).
SERVO_PARAMETERS = {
    "kp": 12.0,
    "ki": 30.0,
    "max_rate_deg": 30.0,
    "max_accel_deg": 300.0,
    "use_prediction": True,
    "stamped": True,
    "max_dt": 0.2,
}


class ServoNode(Node):
    def __init__(self) -> None:
        super().__init__("servo")
        declared = SERVO_PARAMETERS
        params = {
            name: self.declare_parameter(name, default).value for name, default in declared.items()
        }
        for name in ("kp", "max_rate_deg", "max_accel_deg", "max_dt"):
            if not params[name] > 0:
                raise ValueError(f"{name} must be > 0, got {params[name]}")
        if params["ki"] < 0:
            raise ValueError(f"ki must be >= 0, got {params['ki']}")
        rate, accel = math.radians(params["max_rate_deg"]), math.radians(params["max_accel_deg"])
        self.yaw = AxisPI(params["kp"], params["ki"], rate, accel)
        self.pitch = AxisPI(params["kp"], params["ki"], rate, accel)
        self.params = params
        self.last_stamp: int | None = None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        kind = TwistStamped if params["stamped"] else Twist
        self.pub = self.create_publisher(kind, "cmd_rate", reliable)
        self.create_subscription(TargetState, "target", self.on_target, reliable)

    def on_target(self, msg: TargetState) -> None:
        stamp = stamp_ns(msg.header.stamp)
        dt = 0.0 if self.last_stamp is None else (stamp - self.last_stamp) / 1e9
        self.last_stamp = stamp
        dt = min(max(dt, 0.0), self.params["max_dt"])
        az, el = msg.azimuth, msg.elevation
        if self.params["use_prediction"]:
            az, el = msg.predicted_azimuth, msg.predicted_elevation
        usable = msg.valid and msg.has_bearing and math.isfinite(az) and math.isfinite(el)
        yaw_rate = self.yaw.step(az if usable else None, dt)
        pitch_rate = -self.pitch.step(el if usable else None, dt)
        twist = Twist()
        twist.angular.z, twist.angular.y = yaw_rate, pitch_rate
        if self.params["stamped"]:
            out = TwistStamped(twist=twist)
            out.header.stamp = msg.header.stamp
            out.header.frame_id = msg.header.frame_id.removesuffix("_optical_frame") + "_link"
            self.pub.publish(out)
        else:
            self.pub.publish(twist)


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print("usage: siam-servo [--ros-args -p NAME:=VALUE ...]\n")
        print("PI servo: TargetState in, geometry_msgs Twist(Stamped) rates out. Parameters:")
        for name, default in SERVO_PARAMETERS.items():
            print(f"  {name} (default: {default!r})")
        return 0
    rclpy.init(args=args)
    try:
        node = ServoNode()
    except ValueError as exc:
        print(f"[servo] cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        run_executor(executor, node.context)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close_node(node, executor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
