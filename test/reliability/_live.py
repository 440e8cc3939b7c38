"""One tracker node in its own process and a driver in this one, for module-long live tests.

The reliability, fault and fuzz tests each start one node per module (starting a node costs
seconds on a busy machine) and drive it through a real rclpy graph: topics, the node's
services and rclpy's parameter services. ``Live.alive()`` is the liveness check every test
ends with: the process is running and answers a service call.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import rclpy
from _domains import next_domain
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D

from siam_tracker_ros.conversions import bgr_to_image, box_to_bbox
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.srv import InitTarget

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PARITY = SHARED / "parity" / "pysot_siamrpn_alex_dwxcorr"
WEIGHTS = PARITY / "weights.safetensors"
BIN = Path(sys.executable).parent


def have_data() -> bool:
    return WEIGHTS.exists() and (SHARED / "bag.avi").exists()


def clip(count: int = 8) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(SHARED / "bag.avi"))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, "bag.avi ended early"
        frames.append(frame)
    return frames


INIT = (315.0, 140.0, 112.0, 112.0)  # the bag in bag.avi's first frame


@contextmanager
def ros_environment(tmp: Path) -> Iterator[dict[str, str]]:
    """A ROS_DOMAIN_ID and ROS_LOG_DIR of our own for a whole module (conftest's are per test)."""
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_LOG_DIR", "PYTHONUNBUFFERED")}
    os.environ["ROS_DOMAIN_ID"] = str(next_domain())
    os.environ["ROS_LOG_DIR"] = str(tmp / "ros_log")
    os.environ["PYTHONUNBUFFERED"] = "1"
    try:
        yield dict(os.environ)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Live:
    """The driver side: publishers, clients and subscriptions for one namespaced node."""

    def __init__(self, env: dict[str, str], namespace: str, *params: str) -> None:
        args = [str(BIN / "siam-tracker-node"), "--ros-args", "-r", f"__ns:={namespace}"]
        for param in (f"weights:={WEIGHTS}", "model:=siamrpn_alex_dwxcorr", "torch_threads:=1"):
            args += ["-p", param]
        for param in params:
            args += ["-p", param]
        # A file, not a pipe: a node that logs more than a pipe holds would block on a full
        # pipe nobody reads until the end (the fuzz makes it log a line per refused request).
        self.log_path = Path(env["ROS_LOG_DIR"]).parent / f"node{namespace.replace('/', '_')}.out"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("live_driver", context=self.context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        ns = namespace
        self.images = self.node.create_publisher(Image, f"{ns}/image_raw", qos)
        self.compressed = self.node.create_publisher(
            CompressedImage, f"{ns}/image_raw/compressed", qos
        )
        self.detector = self.node.create_publisher(Detection2D, f"{ns}/init_detection", 10)
        self.status: list[TrackerStatus] = []
        self.node.create_subscription(TrackerStatus, f"{ns}/status", self.status.append, 100)
        self.init_client = self.node.create_client(InitTarget, f"{ns}/init_target")
        self.reset_client = self.node.create_client(Trigger, f"{ns}/reset")
        node = f"{ns}/tracker_node"
        self.set_client = self.node.create_client(SetParameters, f"{node}/set_parameters")
        self.get_client = self.node.create_client(GetParameters, f"{node}/get_parameters")
        self.describe_client = self.node.create_client(
            DescribeParameters, f"{node}/describe_parameters"
        )
        self.stamp = itertools.count(1)

    # -- plumbing ------------------------------------------------------------------------------
    def spin_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert self.proc.poll() is None, f"the node died:\n{self.output()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def call(self, client, request, timeout: float = 20.0):
        future = client.call_async(request)
        self.spin_until(future.done, timeout, f"{client.srv_name} response")
        return future.result()

    def wait_ready(self) -> None:
        assert self.init_client.wait_for_service(timeout_sec=90.0), "node did not start"
        self.spin_until(lambda: self.images.get_subscription_count() > 0, 30.0, "subscription")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> str:
        """Stop the node (SIGTERM) and return everything it printed."""
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.output()

    # -- the node's interfaces -----------------------------------------------------------------
    def alive(self) -> None:
        """The process runs and answers a service call within a few seconds (no hang)."""
        assert self.proc.poll() is None, f"the node died:\n{self.output()}"
        assert self.call(self.reset_client, Trigger.Request(), timeout=30.0).success

    def frame(self, image: np.ndarray, encoding: str = "bgr8") -> Image:
        msg = bgr_to_image(image)
        if encoding == "rgb8":
            msg = bgr_to_image(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            msg.encoding = "rgb8"
        msg.header.stamp.sec = next(self.stamp)
        return msg

    def compressed_frame(self, data) -> CompressedImage:
        msg = CompressedImage(format="jpeg", data=bytes(data))
        msg.header.stamp.sec = next(self.stamp)
        return msg

    def step(self, msg: Image | CompressedImage, timeout: float = 30.0) -> TrackerStatus:
        """Publish a frame (again every 2 s: the first ones may precede matching) and return
        the status the node publishes for it."""
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        publisher = self.compressed if isinstance(msg, CompressedImage) else self.images

        def found() -> TrackerStatus | None:
            for s in self.status:
                if (s.header.stamp.sec, s.header.stamp.nanosec) == stamp:
                    return s
            return None

        deadline = time.monotonic() + timeout
        while True:
            publisher.publish(msg)
            try:
                self.spin_until(lambda: found() is not None, 2.0, "a frame's status")
                return found()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def init(self, box, image: Image | None = None, label: str = "") -> InitTarget.Response:
        request = InitTarget.Request(box=box_to_bbox(box), label=label)
        if image is not None:
            request.image = image
        return self.call(self.init_client, request)

    def set(self, **values) -> list:
        """Set parameters by name; returns rcl_interfaces SetParametersResult per parameter."""
        request = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return self.call(self.set_client, request).results

    def set_raw(self, name: str, value: ParameterValue) -> SetParameters.Response:
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
        return self.call(self.set_client, request)

    def get(self, *names: str) -> list:
        response = self.call(self.get_client, GetParameters.Request(names=list(names)))
        return [
            Parameter.from_parameter_msg(ParameterMsg(name=n, value=v)).value
            for n, v in zip(names, response.values, strict=True)
        ]
