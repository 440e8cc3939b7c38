"""The tracker node in its own process, driven over a real rclpy graph from this process.

The node runs pysot's seeded ``siamrpn_alex_dwxcorr`` weights from ``../shared/data/parity``:
their track is meaningless but known exactly, so a lockstep run (publish a frame, wait for its
status) must reproduce pysot's boxes frame by frame through conversion, tracking and publishing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import torch
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray

from siam_core.config import load_config
from siam_core.models.dasiamrpn_compat import ours_to_official
from siam_core.models.model import build_model, calibrate_untrained
from siam_core.tracker.dasiamrpn import OfficialSiamRPNTracker
from siam_core.zoo import load_tracker
from siam_tracker_ros.conversions import bgr_to_image, box_to_bbox
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.srv import InitTarget

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PARITY = SHARED / "parity" / "pysot_siamrpn_alex_dwxcorr"
BIN = Path(sys.executable).parent
BASE_S = 100  # frame k is stamped BASE_S + k / 25 s


@pytest.fixture(scope="module")
def clip() -> dict:
    if not (PARITY / "weights.safetensors").exists() or not (SHARED / "bag.avi").exists():
        pytest.skip(f"parity weights or bag.avi absent under {SHARED}")
    reference = json.loads((PARITY / "reference.json").read_text())
    capture = cv2.VideoCapture(str(SHARED / "bag.avi"))
    frames = []
    while len(frames) < 16:
        ok, frame = capture.read()
        assert ok, "bag.avi ended early"
        frames.append(frame)
    return {"frames": frames, "reference": reference["frames"], "init": reference["init"]}


def frame_msg(frame: np.ndarray, k: int) -> Image:
    msg = bgr_to_image(frame)
    msg.header.frame_id = "camera"
    msg.header.stamp.sec, msg.header.stamp.nanosec = BASE_S + k // 25, (k % 25) * 40_000_000
    return msg


def detection_box(detection: Detection2D) -> list[float]:
    """A detection's box as (x, y, w, h), top-left corner."""
    bbox = detection.bbox
    x, y = bbox.center.position.x - bbox.size_x / 2, bbox.center.position.y - bbox.size_y / 2
    return [x, y, bbox.size_x, bbox.size_y]


def key(header) -> tuple[int, int, str]:
    return header.stamp.sec, header.stamp.nanosec, header.frame_id


class Driver:
    """This test's side of the graph: publishes frames, calls services, collects outputs."""

    def __init__(self, context, namespace: str, reliable: bool = True) -> None:
        self.node = rclpy.create_node(f"driver_{namespace.strip('/')}", context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        qos = QoSProfile(
            depth=50,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        )
        self.images = self.node.create_publisher(Image, f"{namespace}/image_raw", qos)
        self.detector = self.node.create_publisher(Detection2D, f"{namespace}/init_detection", 10)
        self.status: list[TrackerStatus] = []
        self.detections: list[Detection2DArray] = []
        self.node.create_subscription(TrackerStatus, f"{namespace}/status", self.status.append, 100)
        self.node.create_subscription(
            Detection2DArray, f"{namespace}/detections", self.detections.append, 100
        )
        self.init_client = self.node.create_client(InitTarget, f"{namespace}/init_target")
        self.reset_client = self.node.create_client(Trigger, f"{namespace}/reset")
        self.namespace = namespace

    def spin_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"{self.namespace}: timed out waiting for {what}"
            self.executor.spin_once(timeout_sec=0.02)

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.init_client.wait_for_service(timeout_sec=timeout), "tracker node did not start"
        self.spin_until(lambda: self.images.get_subscription_count() > 0, 20.0, "subscription")

    def status_for(self, msg: Image) -> TrackerStatus | None:
        return next((s for s in self.status if key(s.header) == key(msg.header)), None)

    def detections_for(self, msg: Image) -> Detection2DArray | None:
        return next((d for d in self.detections if key(d.header) == key(msg.header)), None)

    def step(self, msg: Image, timeout: float = 30.0, resend: bool = False) -> TrackerStatus:
        """Publish one frame; wait for the status and the detections the node publishes for it.

        With ``resend``, publish again every 2 s: right after discovery a frame can be lost
        before the node's side has matched this publisher (only safe while IDLE).
        """
        deadline = time.monotonic() + timeout
        while True:
            self.images.publish(msg)
            try:
                self.spin_until(
                    lambda: (
                        self.status_for(msg) is not None and self.detections_for(msg) is not None
                    ),
                    2.0 if resend else timeout,
                    "frame status and detections",
                )
                return self.status_for(msg)
            except AssertionError:
                if not resend or time.monotonic() > deadline:
                    raise

    def call(self, client, request, timeout: float = 20.0):
        future = client.call_async(request)
        self.spin_until(future.done, timeout, f"{client.srv_name} response")
        return future.result()

    def start_on(self, frame: np.ndarray, box) -> None:
        """Wait for the node, send ``frame`` as frame 0 and initialise on it by its stamp."""
        self.wait_ready()
        first = frame_msg(frame, 0)
        self.step(first, resend=True)
        stamp = (first.header.stamp.sec, first.header.stamp.nanosec)
        assert self.init(box, stamp=stamp).success

    def init(self, box, stamp: tuple[int, int] = (0, 0), image: Image | None = None, label=""):
        request = InitTarget.Request(box=box_to_bbox(box), label=label)
        request.stamp.sec, request.stamp.nanosec = stamp
        if image is not None:
            request.image = image
        return self.call(self.init_client, request)


@pytest.fixture
def start_node(ros_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def start(namespace: str, *params: str, lifecycle: bool = False) -> subprocess.Popen:
        script = BIN / ("siam-tracker-lifecycle-node" if lifecycle else "siam-tracker-node")
        args = [str(script), "--ros-args", "-r", f"__ns:={namespace}"]
        # online:=false: these tests compare with pysot's plain tracker
        defaults = (
            "model:=siamrpn_alex_dwxcorr",
            f"weights:={PARITY / 'weights.safetensors'}",
            "online:=false",
        )
        for param in (*defaults, "torch_threads:=1", *params):
            args += ["-p", param]
        proc = subprocess.Popen(
            args, env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        procs.append(proc)
        return proc

    yield start
    ignored = []
    for proc in procs:
        proc.terminate()  # SIGTERM, as systemd, docker and ros2 launch stop a node
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            ignored.append(proc.args)
        assert "Traceback" not in out, f"tracker node raised:\n{out}"
    assert not ignored, f"nodes ignored SIGTERM for 10 s: {ignored}"


def test_node_reproduces_pysot_track_and_copies_headers(ros_context, start_node, clip) -> None:
    start_node("/lockstep", "qos_reliability:=reliable")
    driver = Driver(ros_context, "/lockstep")
    driver.wait_ready()

    first = frame_msg(clip["frames"][0], 0)
    status = driver.step(first, resend=True)
    assert status.state == TrackerStatus.IDLE and status.target_id == ""
    assert driver.detections_for(first).detections == []

    response = driver.init(clip["init"], stamp=(first.header.stamp.sec, first.header.stamp.nanosec))
    assert response.success, response.message
    assert "frame stamped" in response.message and response.target_id == "target-1"

    for k in range(1, len(clip["frames"])):
        msg = frame_msg(clip["frames"][k], k)
        status = driver.step(msg)
        assert status.state == TrackerStatus.TRACKING
        assert (status.device, status.model, status.target_id) == (
            "cpu",
            "siamrpn_alex_dwxcorr",
            "target-1",
        )
        assert status.latency_ms > 0 and status.search_region.size_x > 0
        (detection,) = driver.detections_for(msg).detections
        assert key(detection.header) == key(msg.header)
        expected = clip["reference"][k]
        got = detection_box(detection)
        np.testing.assert_allclose(got, expected["bbox"], atol=0.5, err_msg=f"frame {k}")
        assert abs(detection.results[0].hypothesis.score - expected["best_score"]) < 1e-3
        assert detection.results[0].hypothesis.class_id == "target"
        assert detection.id == "target-1"
    last = driver.status[-1]
    assert last.frames_received == last.frames_processed >= len(clip["frames"])
    assert last.frames_dropped == 0


def test_onnxruntime_backend_reproduces_the_track_through_the_node(
    ros_context, ros_env, start_node, clip, tmp_path
) -> None:
    """backend:=onnxruntime: the node exports the graphs on first use (into its cache) and
    gives pysot's boxes, as the PyTorch backend does (the fixture's online:=false: pysot's
    tracker has no classifier). The export is the folded one."""
    ros_env["SIAM_TRACKER_CACHE"] = str(tmp_path / "cache")
    start_node("/onnx", "qos_reliability:=reliable", "backend:=onnxruntime")
    driver = Driver(ros_context, "/onnx")
    driver.wait_ready(timeout=120.0)
    first = frame_msg(clip["frames"][0], 0)
    driver.step(first, resend=True)
    stamp = (first.header.stamp.sec, first.header.stamp.nanosec)
    assert driver.init(clip["init"], stamp=stamp).success
    for k in range(1, 12):
        msg = frame_msg(clip["frames"][k], k)
        assert driver.step(msg).state == TrackerStatus.TRACKING
        bbox = driver.detections_for(msg).detections[0].bbox
        got = [
            bbox.center.position.x - bbox.size_x / 2,
            bbox.center.position.y - bbox.size_y / 2,
            bbox.size_x,
            bbox.size_y,
        ]
        np.testing.assert_allclose(got, clip["reference"][k]["bbox"], atol=0.5, err_msg=f"{k}")
    (folder,) = (tmp_path / "cache" / "onnx").iterdir()
    assert not folder.name.endswith("-unfolded")
    assert "online" not in driver.status[-1].model


def test_online_runs_on_an_exported_backend_through_the_node(
    ros_context, ros_env, start_node, clip, tmp_path
) -> None:
    """online:=true on backend:=onnxruntime: the classifier wraps the exported graphs (an
    unfolded export: it reads the neck's maps) and the node tracks with it."""
    ros_env["SIAM_TRACKER_CACHE"] = str(tmp_path / "cache")
    start_node("/onnx_online", "qos_reliability:=reliable", "backend:=onnxruntime", "online:=true")
    driver = Driver(ros_context, "/onnx_online")
    driver.start_on(clip["frames"][0], clip["init"])
    for k in range(1, 4):
        assert driver.step(frame_msg(clip["frames"][k], k)).state == TrackerStatus.TRACKING
    assert driver.status[-1].model.endswith("+online")
    (folder,) = (tmp_path / "cache" / "onnx").iterdir()
    assert folder.name.endswith("-unfolded")


def test_gpu_path_parameters_reach_the_tracker(ros_context, ros_env, start_node, clip) -> None:
    """precision:=fp16 autocasts the node's network (on this CPU a rehearsal of the GPU
    option): its boxes are ``load_tracker(..., precision="fp16")``'s. graph_mode:=cuda_graph
    where ``auto`` finds no GPU stops the start, naming the parameter."""
    start_node("/fp16", "qos_reliability:=reliable", "precision:=fp16")
    weights = str(PARITY / "weights.safetensors")
    local = load_tracker("siamrpn_alex_dwxcorr", weights, "cpu", precision="fp16")
    driver = Driver(ros_context, "/fp16")
    driver.start_on(clip["frames"][0], clip["init"])
    local.init(clip["frames"][0], clip["init"])
    for k in range(1, 4):
        msg = frame_msg(clip["frames"][k], k)
        assert driver.step(msg).state == TrackerStatus.TRACKING
        got = detection_box(driver.detections_for(msg).detections[0])
        np.testing.assert_allclose(got, local.track(clip["frames"][k]).box, atol=1e-3)
    if torch.cuda.is_available():
        return
    args = [str(BIN / "siam-tracker-node"), "--ros-args", "-p", "model:=siamrpn_alex_dwxcorr"]
    args += ["-p", f"weights:={weights}", "-p", "graph_mode:=cuda_graph"]
    done = subprocess.run(args, env=ros_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "graph_mode='cuda_graph'" in done.stderr and "CUDA" in done.stderr, done.stderr


def test_bad_input_is_refused_and_the_node_keeps_serving(ros_context, start_node, clip) -> None:
    start_node("/bad")
    driver = Driver(ros_context, "/bad", reliable=False)
    driver.wait_ready()
    frame = clip["frames"][0]

    response = driver.init((10, 10, 50, 50))
    assert not response.success and "no image received yet" in response.message

    bad = [frame_msg(frame, k) for k in range(3)]
    bad[0].encoding = "yuv422"
    bad[1].step = 10  # shorter than a row
    bad[2].height = bad[2].width = 0
    bad[2].data = b""
    for msg in bad:
        driver.images.publish(msg)
    good = frame_msg(frame, 5)
    assert driver.step(good, resend=True).state == TrackerStatus.IDLE
    for msg in bad:
        assert driver.status_for(msg) is None

    stamp = (good.header.stamp.sec, good.header.stamp.nanosec)
    refused = {
        "non-finite": (float("nan"), 10.0, 50.0, 50.0),
        "outside": (5000.0, 10.0, 50.0, 50.0),
        "positive": (10.0, 10.0, 0.0, 50.0),
    }
    for words, box in refused.items():
        response = driver.init(box, stamp=stamp)
        assert not response.success and words in response.message, response.message
    # The tracker speaks of top-left boxes; the reply also shows the centre form that was sent.
    outside = driver.init(refused["outside"], stamp=stamp).message
    assert "box as sent: centre (5025, 35), size 50 x 50" in outside, outside
    response = driver.init((10, 10, 50, 50), stamp=(7, 0))
    assert not response.success and "no buffered image with stamp 7000000000" in response.message

    sent = frame_msg(clip["frames"][3], 3)
    response = driver.init(clip["init"], image=sent, label="bag")
    assert response.success and response.target_id == "bag-1", response.message
    tracked = driver.step(frame_msg(frame, 6))
    assert tracked.state == TrackerStatus.TRACKING and tracked.target_id == "bag-1"

    # A call while tracking re-initialises; reset returns to IDLE.
    again = driver.init(clip["init"], stamp=stamp)
    assert again.success and again.target_id == "target-2", again.message
    assert driver.call(driver.reset_client, Trigger.Request()).success
    assert driver.step(frame_msg(frame, 7)).state == TrackerStatus.IDLE


def test_two_namespaced_nodes_do_not_interfere(ros_context, start_node, clip) -> None:
    start_node("/cam_a")
    start_node("/cam_b", "target_label:=other")
    a, b = Driver(ros_context, "/cam_a"), Driver(ros_context, "/cam_b")
    a.wait_ready()
    b.wait_ready()
    first = frame_msg(clip["frames"][0], 0)
    a.step(first, resend=True)
    b.step(first, resend=True)
    assert a.init(clip["init"]).success
    for k in (1, 2, 3):
        msg = frame_msg(clip["frames"][k], k)
        assert a.step(msg).state == TrackerStatus.TRACKING
        assert b.step(msg).state == TrackerStatus.IDLE
    assert all(not d.detections for d in b.detections)
    assert any(d.detections for d in a.detections)


def test_detector_hand_over_initialises_the_target(ros_context, start_node, clip) -> None:
    start_node("/handover")
    driver = Driver(ros_context, "/handover")
    driver.wait_ready()
    first = frame_msg(clip["frames"][0], 0)
    driver.step(first, resend=True)
    detection = Detection2D(bbox=box_to_bbox(clip["init"]))
    detection.header = first.header
    driver.detector.publish(detection)
    states = []
    for k in range(1, 16):  # the hand-over arrives on its own topic, a frame or so later
        states.append(driver.step(frame_msg(clip["frames"][k], k)).state)
        if states[-1] == TrackerStatus.TRACKING:
            break
    assert states[-1] == TrackerStatus.TRACKING, states
    assert driver.status[-1].target_id == "target-1"


def test_newest_frame_wins_and_drops_are_counted(ros_context, start_node, clip) -> None:
    start_node("/burst", "qos_depth:=50", "qos_reliability:=reliable")
    driver = Driver(ros_context, "/burst")
    driver.wait_ready()
    driver.step(frame_msg(clip["frames"][0], 0), resend=True)
    assert driver.init(clip["init"]).success
    burst = [frame_msg(clip["frames"][k % 16], k) for k in range(1, 41)]
    for msg in burst:  # far faster than the tracker: the node must skip, not queue
        driver.images.publish(msg)
    driver.spin_until(lambda: driver.status_for(burst[-1]) is not None, 60.0, "newest frame")
    last = driver.status_for(burst[-1])
    assert last.frames_received >= 41
    assert last.frames_dropped > 0
    assert last.frames_processed + last.frames_dropped == last.frames_received
    processed = [s for s in driver.status if s.state == TrackerStatus.TRACKING]
    assert len(processed) < len(burst)


def test_lifecycle_node_transitions(ros_context, start_node, clip) -> None:
    start_node("/managed", lifecycle=True)
    driver = Driver(ros_context, "/managed")
    change = driver.node.create_client(ChangeState, "/managed/tracker_node/change_state")
    assert change.wait_for_service(timeout_sec=60.0), "lifecycle node did not start"

    def transition(transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return driver.call(change, request).success

    assert transition(Transition.TRANSITION_CONFIGURE)
    assert driver.init_client.wait_for_service(timeout_sec=10.0)
    response = driver.init(clip["init"])
    assert not response.success and "not active" in response.message

    assert transition(Transition.TRANSITION_ACTIVATE)
    driver.wait_ready()
    driver.step(frame_msg(clip["frames"][0], 0), resend=True)
    assert driver.init(clip["init"]).success
    assert driver.step(frame_msg(clip["frames"][1], 1)).state == TrackerStatus.TRACKING

    assert transition(Transition.TRANSITION_DEACTIVATE)
    silent = frame_msg(clip["frames"][2], 2)
    driver.images.publish(silent)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        driver.executor.spin_once(timeout_sec=0.05)
    assert driver.status_for(silent) is None, "a deactivated node still tracks"
    assert transition(Transition.TRANSITION_CLEANUP)


def test_long_term_mode_reports_lost_and_widens_the_search(ros_context, start_node, clip) -> None:
    """Thresholds above the short-term scores these weights give: the target counts as lost at
    once, the node says so and publishes no detection while LOST, searches the wider lost-mode
    region, and reports a detection again on the frames it calls RECOVERED."""
    start_node(
        "/longterm",
        "long_term:=true",
        "lost_threshold:=0.995",
        "recover_threshold:=0.999",
        "qos_reliability:=reliable",
    )
    driver = Driver(ros_context, "/longterm")
    driver.start_on(clip["frames"][0], clip["init"])
    states, regions = [], []
    for k in range(1, 5):
        msg = frame_msg(clip["frames"][k], k)
        status = driver.step(msg)
        states.append(status.state)
        regions.append(status.search_region.size_x)
        found = driver.detections_for(msg).detections
        assert len(found) == (0 if status.state == TrackerStatus.LOST else 1), status.state
    assert states[0] == TrackerStatus.LOST, states
    assert set(states) <= {TrackerStatus.LOST, TrackerStatus.RECOVERED}, states
    # Short-term search first (287 patch), then the lost-mode size (767 patch, paper's value).
    assert regions[1] > 2 * regions[0], regions
    assert driver.status[-1].model == "siamrpn_alex_dwxcorr+longterm"


def test_default_reports_lost_by_score_on_the_unchanged_track(
    ros_context, start_node, clip
) -> None:
    """``long_term`` off and ``report_lost`` at its default (true): with thresholds above these
    weights' scores the node says LOST and publishes no detection, yet keeps the short-term
    track (every status's search region is a plain local tracker's, none widened, none held);
    ``report_lost:=false`` on the same frames says TRACKING with a detection each frame."""
    start_node(
        "/report", "lost_threshold:=0.995", "recover_threshold:=0.999", "qos_reliability:=reliable"
    )
    start_node(
        "/noreport",
        "lost_threshold:=0.995",
        "recover_threshold:=0.999",
        "report_lost:=false",
        "qos_reliability:=reliable",
    )
    local = load_tracker("siamrpn_alex_dwxcorr", str(PARITY / "weights.safetensors"), "cpu")
    report, plain = Driver(ros_context, "/report"), Driver(ros_context, "/noreport")
    report.start_on(clip["frames"][0], clip["init"])
    plain.start_on(clip["frames"][0], clip["init"])
    local.init(clip["frames"][0], clip["init"])
    states = []
    for k in range(1, 6):
        msg = frame_msg(clip["frames"][k], k)
        status, other = report.step(msg), plain.step(msg)
        x, _, side, _ = local.track(clip["frames"][k]).search_region
        region = status.search_region
        assert abs(region.size_x - side) < 1e-3, (k, region.size_x, side)
        assert abs(region.center.position.x - (x + side / 2)) < 1e-3
        assert len(report.detections_for(msg).detections) == (
            0 if status.state == TrackerStatus.LOST else 1
        )
        assert other.state == TrackerStatus.TRACKING
        assert len(plain.detections_for(msg).detections) == 1
        states.append(status.state)
    assert states[0] == TrackerStatus.LOST, states
    assert report.status[-1].model == "siamrpn_alex_dwxcorr"  # the same tracker, reporting
    # thresholds changed live reach the reporting tracker: below these scores it is trusted
    client = report.node.create_client(SetParameters, "/report/tracker_node/set_parameters")
    values = {"lost_threshold": 0.05, "recover_threshold": 0.1}
    request = SetParameters.Request(
        parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
    )
    assert all(r.successful for r in report.call(client, request).results)
    after = []
    for k in range(6, 9):
        msg = frame_msg(clip["frames"][k], k)
        after.append(report.step(msg).state)
        side = local.track(clip["frames"][k]).search_region[2]
        assert abs(report.status[-1].search_region.size_x - side) < 1e-3
    assert after[0] == TrackerStatus.RECOVERED and after[1:] == [TrackerStatus.TRACKING] * 2


def test_online_parameter_adds_drol_without_blocking_frames(ros_context, start_node, clip) -> None:
    """online:=true wraps the model in DROL's online classifier; its first-frame training and
    updates run on a worker thread, so every frame is answered meanwhile."""
    start_node("/online", "online:=true", "qos_reliability:=reliable")
    driver = Driver(ros_context, "/online")
    driver.start_on(clip["frames"][0], clip["init"])
    for k in range(1, 6):
        status = driver.step(frame_msg(clip["frames"][k], k))
        assert status.state == TrackerStatus.TRACKING, status.state
    assert driver.status[-1].model == "siamrpn_alex_dwxcorr+online"


def test_long_term_thresholds_are_checked_at_start(ros_env, clip) -> None:
    script = BIN / "siam-tracker-node"
    args = [str(script), "--ros-args", "-p", "model:=siamrpn_alex_dwxcorr"]
    args += ["-p", f"weights:={PARITY / 'weights.safetensors'}", "-p", "long_term:=true"]
    args += ["-p", "lost_threshold:=0.9", "-p", "recover_threshold:=0.5"]
    done = subprocess.run(args, env=ros_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "must be below" in done.stderr, done.stderr


def test_official_dasiamrpn_file_through_the_weights_parameter(
    ros_context, start_node, clip, tmp_path
) -> None:
    """The ``weights`` parameter takes DaSiamRPN's official layout as published (a ``.model``
    pickle, read with ``weights_only=True``) under ``model:=dasiamrpn_vot``; the node tracks
    with the official conventions, box for box as ``siam_core.zoo.load_tracker`` does."""
    torch.manual_seed(0)
    model = build_model(load_config("dasiamrpn_vot")).eval()
    g = torch.Generator().manual_seed(0)  # outputs in a trained range, or decoding overflows
    calibrate_untrained(
        model,
        torch.rand(1, 3, 127, 127, generator=g) * 255,
        torch.rand(1, 3, 271, 271, generator=g) * 255,
    )
    official = tmp_path / "SiamRPNVOT.model"
    torch.save(ours_to_official(model.state_dict()), official)
    # online:=true (the default) is not applied to the official conventions: same boxes;
    # random weights score below the lost threshold, so the state is not reported from them
    start_node(
        "/dasiam",
        "model:=dasiamrpn_vot",
        f"weights:={official}",
        "qos_reliability:=reliable",
        "online:=true",
        "report_lost:=false",
    )
    local = load_tracker("dasiamrpn_vot", str(official), "cpu")
    assert isinstance(local, OfficialSiamRPNTracker)
    driver = Driver(ros_context, "/dasiam")
    driver.start_on(clip["frames"][0], clip["init"])
    local.init(clip["frames"][0], clip["init"])
    for k in range(1, 4):
        msg = frame_msg(clip["frames"][k], k)
        status = driver.step(msg)
        assert status.model == "dasiamrpn_vot" and status.state == TrackerStatus.TRACKING
        (detection,) = driver.detections_for(msg).detections
        got = detection_box(detection)
        np.testing.assert_allclose(got, local.track(clip["frames"][k]).box, atol=1e-3)


def test_node_runs_a_siamdw_model_named_by_its_model_parameter(ros_context, start_node) -> None:
    """``model`` names a SiamFC+ preset and ``weights`` an official SiamDW file, in long-term
    mode with the SiamFC thresholds (``lost_threshold`` -1): the node tracks with the SiamFC
    family and reproduces the official boxes (SiamDW parity reference) while confident, then
    reports LOST and publishes no detection when the view is blocked (a flat gray frame)."""
    ref_dir = SHARED / "parity" / "siamdw_siamfcres22"
    if not (ref_dir / "weights.safetensors").exists() or not (SHARED / "bag.avi").exists():
        pytest.skip(f"SiamDW parity reference or bag.avi absent under {SHARED}")
    reference = json.loads((ref_dir / "reference.json").read_text())
    capture = cv2.VideoCapture(str(SHARED / "bag.avi"))
    frames = [capture.read()[1] for _ in range(4)]
    start_node(
        "/siamdw",
        "model:=siamfcplus_ciresnet22_vot",
        f"weights:={ref_dir / 'weights.safetensors'}",
        "long_term:=true",
        "qos_reliability:=reliable",
    )
    driver = Driver(ros_context, "/siamdw")
    driver.wait_ready()
    first = frame_msg(frames[0], 0)
    driver.step(first, resend=True)
    stamp = (first.header.stamp.sec, first.header.stamp.nanosec)
    assert driver.init(reference["init"], stamp=stamp).success
    for k in range(1, len(frames)):
        msg = frame_msg(frames[k], k)
        status = driver.step(msg, timeout=60.0)
        assert status.state == TrackerStatus.TRACKING
        assert status.model == "siamfcplus_ciresnet22_vot+longterm"
        (detection,) = driver.detections_for(msg).detections
        got = detection_box(detection)
        np.testing.assert_allclose(got, reference["frames"][k]["bbox"], atol=0.5, err_msg=f"{k}")
    blocked = frame_msg(np.full_like(frames[0], 128), len(frames))
    status = driver.step(blocked, timeout=60.0)
    assert status.state == TrackerStatus.LOST and status.score < 0.3
    assert not driver.detections_for(blocked).detections
