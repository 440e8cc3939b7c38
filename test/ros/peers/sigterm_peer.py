"""A node spun exactly as the tracker node spins (siam_tracker_ros.node.run_executor), with a
subscription and a service to wake it; prints "ready" and exits 0 when a signal shuts it down."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile)
from siam_tracker_ros.node import run_executor


def main() -> int:
    rclpy.init()
    node = rclpy.create_node("sigterm_peer")
    node.create_subscription(Image, "image_raw", lambda _msg: None, 1)
    node.create_service(Trigger, "poke", lambda _req, res: res)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    print("ready", flush=True)
    try:
        run_executor(executor, node.context)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
