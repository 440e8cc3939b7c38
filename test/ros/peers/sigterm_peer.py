"""A node spun and closed exactly as the tracker node is (siam_tracker_ros.lifetime), with a
subscription and a service to wake it; prints "ready" and exits 0 when a signal shuts it down.

``--hang-in-teardown S``: ``destroy_node`` first blocks in native code for an hour while holding
the GIL (libc ``sleep`` called through ``ctypes.PyDLL``, which keeps the GIL), as the DDS
participant's deletion once did; ``close_node`` must then end the process after S seconds.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile)
from siam_tracker_ros.lifetime import TEARDOWN_DEADLINE_S, close_node, run_executor


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang-in-teardown", type=float, metavar="S")
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("sigterm_peer")
    node.create_subscription(Image, "image_raw", lambda _msg: None, 1)
    node.create_service(Trigger, "poke", lambda _req, res: res)
    if args.hang_in_teardown is not None:
        libc = ctypes.PyDLL(ctypes.util.find_library("c"))
        node.destroy_node = lambda: libc.sleep(3600)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    print("ready", flush=True)
    try:
        run_executor(executor, node.context)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        close_node(node, executor, args.hang_in_teardown or TEARDOWN_DEADLINE_S)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
