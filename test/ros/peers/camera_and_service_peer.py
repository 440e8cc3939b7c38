"""Peer process: publishes 640x480 rgb8 frames and serves InitTarget until one call arrives.

Frame k carries stamp (k, 0), frame_id "camera" and bytes (i + k) % 251, so the receiver can
check every byte of every frame it gets. Exits 0 after answering one InitTarget call (or 1 after
a timeout), printing how many frames it sent.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile)
from siam_tracker_ros.srv import InitTarget

HEIGHT, WIDTH = 480, 640


def frame_bytes(k: int) -> bytes:
    return ((np.arange(HEIGHT * WIDTH * 3, dtype=np.int64) + k) % 251).astype(np.uint8).tobytes()


def main() -> int:
    rclpy.init()
    node = rclpy.create_node("camera_peer")
    pub = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    calls = []

    def on_init(request: InitTarget.Request, response: InitTarget.Response) -> InitTarget.Response:
        calls.append(request)
        box = request.box
        response.success = True
        response.target_id = f"{request.label}-{box.size_x:.0f}x{box.size_y:.0f}"
        response.message = (
            f"centre {box.center.position.x:.1f},{box.center.position.y:.1f} "
            f"stamp {request.stamp.sec}.{request.stamp.nanosec} image {request.image.width}"
        )
        return response

    node.create_service(InitTarget, "init_target", on_init)
    frames = [frame_bytes(k) for k in range(8)]
    deadline = time.monotonic() + 25.0
    k = 0
    while not calls and time.monotonic() < deadline:
        msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        msg.header.frame_id = "camera"
        msg.header.stamp.sec = k
        msg.data = frames[k % len(frames)]
        pub.publish(msg)
        k += 1
        rclpy.spin_once(node, timeout_sec=0.02)
    # Let the response reach the client before the node goes away.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(f"sent {k} frames, {len(calls)} calls", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0 if calls else 1


if __name__ == "__main__":
    sys.exit(main())
