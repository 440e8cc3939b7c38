"""The generated interfaces: vision_msgs wire compatibility, our messages, CDR round trips."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import deserialize_message, serialize_message
from vision_msgs.msg import (
    BoundingBox2D,
    Detection2D,
    Detection2DArray,
    ObjectHypothesisWithPose,
    Point2D,
    Pose2D,
)

from siam_core.tracker import TrackState
from siam_tracker_ros.bagtypes import typestore
from siam_tracker_ros.msg import TrackerStatus, TrackerStatusArray
from siam_tracker_ros.srv import InitTarget, ResetTarget

pytestmark = pytest.mark.ros
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "vision_msgs_rihs01.json"


@pytest.fixture(scope="module")
def reference_hashes() -> dict[str, str]:
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} absent: the shared data is not beside the repository")
    return json.loads(REFERENCE.read_text())["hashes"]


def test_vision_msgs_type_hashes_match_the_real_package(reference_hashes) -> None:
    share = Path(get_package_share_directory("vision_msgs")) / "msg"
    for type_name, expected in reference_hashes.items():
        description = json.loads((share / f"{type_name.rsplit('/', 1)[1]}.json").read_text())
        hashes = {e["type_name"]: e["hash_string"] for e in description["type_hashes"]}
        assert hashes[type_name] == expected, type_name


@pytest.mark.parametrize("msg_type", [Detection2DArray, Detection2D, BoundingBox2D])
def test_vision_msgs_hash_on_the_wire(ros_context, reference_hashes, msg_type) -> None:
    """The hash a live publisher announces in discovery is the real package's hash."""
    node = rclpy.create_node("hash_probe", context=ros_context)
    node.create_publisher(msg_type, "probe", 1)
    type_name = f"vision_msgs/msg/{msg_type.__name__}"
    deadline = time.monotonic() + 5.0
    infos = []
    while not infos and time.monotonic() < deadline:
        infos = node.get_publishers_info_by_topic("/probe")
        time.sleep(0.02)
    assert infos, "own publisher not visible in the graph"
    assert infos[0].topic_type == type_name
    assert str(infos[0].topic_type_hash) == reference_hashes[type_name]
    node.destroy_node()


def test_tracker_status_states_are_the_core_states() -> None:
    for state in TrackState:
        assert getattr(TrackerStatus, state.name) == state.value


def detection() -> Detection2DArray:
    det = Detection2D(id="target-1")
    det.header.frame_id = "camera"
    det.header.stamp.sec, det.header.stamp.nanosec = 12, 345
    det.bbox = BoundingBox2D(center=Pose2D(position=Point2D(x=371.5, y=195.25)), size_x=112.0)
    det.bbox.size_y = 96.5
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = "bag", 0.875
    det.results.append(hyp)
    out = Detection2DArray(detections=[det])
    out.header = det.header
    return out


def test_detection_round_trip_rclpy_and_rosbags() -> None:
    """rclpy's CDR bytes decode with rosbags (as in a recorded bag) and re-encode identically."""
    msg = detection()
    raw = serialize_message(msg)
    assert deserialize_message(raw, Detection2DArray) == msg
    store = typestore()
    decoded = store.deserialize_cdr(raw, "vision_msgs/msg/Detection2DArray")
    (det,) = decoded.detections
    assert det.id == "target-1"
    assert (det.bbox.center.position.x, det.bbox.center.position.y) == (371.5, 195.25)
    assert (det.bbox.size_x, det.bbox.size_y) == (112.0, 96.5)
    assert det.results[0].hypothesis.class_id == "bag"
    assert det.results[0].hypothesis.score == 0.875
    assert bytes(store.serialize_cdr(decoded, "vision_msgs/msg/Detection2DArray")) == raw


def test_tracker_status_round_trip_rclpy_and_rosbags() -> None:
    msg = TrackerStatus(state=TrackerStatus.RECOVERED, target_id="t7", score=0.5)
    msg.search_region.center.position.x = 100.0
    msg.search_region.size_x = msg.search_region.size_y = 831.0
    msg.frames_received, msg.frames_processed, msg.frames_dropped = 10, 7, 3
    msg.device, msg.model, msg.latency_ms = "cpu", "siamrpn_alex_dwxcorr", 12.5
    raw = serialize_message(msg)
    assert deserialize_message(raw, TrackerStatus) == msg
    decoded = typestore().deserialize_cdr(raw, "siam_tracker_ros/msg/TrackerStatus")
    assert decoded.state == 3 and decoded.frames_dropped == 3 and decoded.model == msg.model
    assert decoded.search_region.size_x == 831.0


def test_init_target_carries_an_image() -> None:
    request = InitTarget.Request(label="person")
    request.image.height, request.image.width, request.image.encoding = 2, 3, "mono8"
    request.image.step = 3
    request.image.data = np.arange(6, dtype=np.uint8).tobytes()
    back = deserialize_message(serialize_message(request), InitTarget.Request)
    assert bytes(back.image.data) == bytes(range(6))
    assert back.label == "person"
    assert InitTarget.Response(success=True, target_id="x").target_id == "x"


def test_tracker_status_array_round_trip_rclpy_and_rosbags() -> None:
    """The per-target status decodes with rosbags too (a recorded multi-target run)."""
    one = TrackerStatus(state=TrackerStatus.TRACKING, target_id="left", score=0.75)
    two = TrackerStatus(state=TrackerStatus.LOST, target_id="top", score=0.25)
    msg = TrackerStatusArray(targets=[one, two])
    msg.header.frame_id = "camera"
    raw = serialize_message(msg)
    assert deserialize_message(raw, TrackerStatusArray) == msg
    decoded = typestore().deserialize_cdr(raw, "siam_tracker_ros/msg/TrackerStatusArray")
    assert [(t.target_id, t.state) for t in decoded.targets] == [("left", 1), ("top", 2)]
    assert decoded.header.frame_id == "camera"


def test_target_ids_in_init_and_reset_requests() -> None:
    request = InitTarget.Request(label="person", target_id="p7")
    assert deserialize_message(serialize_message(request), InitTarget.Request).target_id == "p7"
    assert InitTarget.Request().target_id == ""  # unset: the single-target call
    response = ResetTarget.Response(success=True, target_ids=["a", "b"])
    back = deserialize_message(serialize_message(response), ResetTarget.Response)
    assert list(back.target_ids) == ["a", "b"] and ResetTarget.Request().target_id == ""
