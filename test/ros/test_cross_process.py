"""Two processes over a real rclpy graph: a camera image stream and an InitTarget service call."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from siam_tracker_ros.srv import InitTarget

pytestmark = pytest.mark.ros


def expected_frame(k: int) -> np.ndarray:
    return ((np.arange(480 * 640 * 3, dtype=np.int64) + k) % 251).astype(np.uint8)


def test_image_stream_and_init_target_across_processes(ros_context, spawn_peer) -> None:
    peer = spawn_peer("camera_and_service_peer.py")
    node = rclpy.create_node("camera_client", context=ros_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received: list[Image] = []
    node.create_subscription(Image, "camera/image_raw", received.append, qos_profile_sensor_data)

    deadline = time.monotonic() + 20.0
    while len(received) < 10 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    assert len(received) >= 10, f"only {len(received)} frames arrived in 20 s"

    for msg in received:
        assert (msg.height, msg.width, msg.encoding, msg.step) == (480, 640, "rgb8", 1920)
        assert msg.header.frame_id == "camera"
        data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        np.testing.assert_array_equal(data, expected_frame(msg.header.stamp.sec % 8))
    stamps = [m.header.stamp.sec for m in received]
    assert stamps == sorted(stamps), "frames arrived out of order"

    client = node.create_client(InitTarget, "init_target")
    assert client.wait_for_service(timeout_sec=10.0), "init_target service not discovered"
    request = InitTarget.Request(label="bag")
    request.box.center.position.x = 371.5
    request.box.center.position.y = 195.5
    request.box.size_x, request.box.size_y = 112.0, 96.0
    request.stamp.sec, request.stamp.nanosec = 3, 500
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    response = future.result()
    assert response is not None, "no InitTarget response in 10 s"
    assert response.success
    assert response.target_id == "bag-112x96"
    assert response.message == "centre 371.5,195.5 stamp 3.500 image 0"

    out = peer.finish()
    assert "1 calls" in out
    executor.shutdown()
    node.destroy_node()
