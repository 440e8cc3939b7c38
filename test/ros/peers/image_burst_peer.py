"""Peer process: ``pub N`` sends N 640x480 rgb8 frames best-effort; ``sub SECONDS`` counts them.

Used to check where DDS traffic goes (never off loopback) and that full frames get through.
"""

import sys
import time

import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile)


def main() -> int:
    role, amount = sys.argv[1], float(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node(f"burst_{role}")
    if role == "pub":
        pub = node.create_publisher(Image, "burst", qos_profile_sensor_data)
        deadline = time.monotonic() + 15.0
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(0.3)  # let the subscriber's side of discovery complete too
        msg = Image(height=480, width=640, encoding="rgb8", step=1920, data=bytes(640 * 480 * 3))
        for k in range(int(amount)):
            msg.header.stamp.sec = k
            pub.publish(msg)
            time.sleep(0.01)
        print(f"sent {int(amount)}", flush=True)
    else:
        got: list[int] = []
        node.create_subscription(
            Image, "burst", lambda m: got.append(m.header.stamp.sec), qos_profile_sensor_data
        )
        end = time.monotonic() + amount
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        print(f"received {len(got)}", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
