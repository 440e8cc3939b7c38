"""Reliability of the live node: no request kills it, parameters mean what they say, faults.

One node for the module, in its own process, driven over a real graph; each test ends by
checking that it still runs and answers. Faults that can be made here are made for real: the
camera stops and resumes, the resolution and encoding change, the weights file vanishes or is
corrupted before a live reload, CUDA is asked for on a machine without it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy missing: run `make setup` to build the venv")

from _live import BIN, INIT, WEIGHTS, Live, clip, have_data, ros_environment
from rcl_interfaces.msg import ParameterType, ParameterValue
from sensor_msgs.msg import CompressedImage
from vision_msgs.msg import Detection2D

from siam_tracker_ros.conversions import box_to_bbox
from siam_tracker_ros.msg import TrackerStatus

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    if not have_data():
        pytest.skip("parity weights or bag.avi absent under ../shared/data")
    return clip(8)


@pytest.fixture(scope="module")
def live(tmp_path_factory, frames) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("reliability")
    with ros_environment(tmp) as env:
        driver = Live(env, "/rel", "qos_reliability:=reliable", "long_term:=true")
        try:
            driver.wait_ready()
            yield driver
        finally:
            out = driver.close()
    assert "Traceback" not in out, out


def tracking(live: Live, frames: list[np.ndarray]) -> TrackerStatus:
    """Initialise on a frame the node has and return the status of the next frame."""
    first = live.frame(frames[0])
    live.step(first)
    response = live.init(INIT)
    assert response.success, response.message
    return live.step(live.frame(frames[1]))


# -- defects 1-4: requests that used to kill the node or its target ------------------------------
def test_oversized_boxes_are_refused_and_the_node_survives(live, frames) -> None:
    live.step(live.frame(frames[0]))
    for side in (1e5, 1e9):
        response = live.init((0.0, 0.0, side, side))
        assert not response.success and "too large" in response.message, response.message
        detection = Detection2D(bbox=box_to_bbox((0.0, 0.0, side, side)))
        live.detector.publish(detection)
    live.spin_for(0.5)
    live.alive()


def test_tiny_and_denormal_boxes_are_refused(live, frames) -> None:
    live.step(live.frame(frames[0]))
    for w in (1e-200, 5e-324, 0.5):
        response = live.init((10.0, 10.0, w, w))
        assert not response.success and "smaller than 1 px" in response.message
    live.alive()


def test_a_rejected_init_keeps_the_current_target(live, frames) -> None:
    status = tracking(live, frames)
    assert status.state != TrackerStatus.IDLE
    target = status.target_id
    for box in ((10.0, 10.0, 1e-200, 1e-200), (0.0, 0.0, 1e6, 1e6), (float("nan"),) * 4):
        assert not live.init(box).success
    after = live.step(live.frame(frames[2]))
    assert after.state != TrackerStatus.IDLE and after.target_id == target
    live.alive()


def test_set_parameters_with_an_invalid_type_is_answered_and_survived(live) -> None:
    for kind in (200, 99, ParameterType.PARAMETER_BYTE_ARRAY):
        response = live.set_raw("buffer_size", ParameterValue(type=kind))
        assert len(response.results) == 1 and not response.results[0].successful
    (result,) = live.set(qos_depth="three")
    assert not result.successful
    live.alive()
    latest = live.step(live.frame(np.zeros((48, 64, 3), np.uint8)))
    assert latest.errors >= 2  # rclpy's parameter service raised twice: counted, logged once


# -- defect 5: parameters that mean what they say ---------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("device", "cuda:7", "no CUDA device"),
        ("lost_threshold", 2.0, "out of range"),  # rclpy checks the descriptor's range
        ("mono16_max", float("nan"), ""),
        ("buffer_size", 0, "out of range"),
        ("image_topic", "bad topic!", "not a ROS topic name"),
        ("torch_threads", 4, "read-only"),
        ("recover_threshold", 0.1, "lost_threshold"),
    ],
)
def test_bad_runtime_values_are_refused_and_not_reported(live, name, value, why) -> None:
    (before,) = live.get(name)
    (result,) = live.set(**{name: value})
    assert not result.successful and why in result.reason, result.reason
    assert live.get(name) == [before]
    live.alive()


def test_descriptors_carry_ranges_and_read_only_flags(live) -> None:
    from rcl_interfaces.srv import DescribeParameters

    request = DescribeParameters.Request(names=["buffer_size", "mono16_max", "torch_threads"])
    buffer, mono16, threads = live.call(live.describe_client, request).descriptors
    assert (buffer.integer_range[0].from_value, buffer.integer_range[0].to_value) == (1, 300)
    assert mono16.floating_point_range[0].to_value == 65535.0
    assert threads.read_only and not buffer.read_only


def test_live_changes_are_applied(live, frames) -> None:
    status = tracking(live, frames)
    assert [r.successful for r in live.set(target_label="cup", buffer_size=5)] == [True, True]
    assert live.init(INIT).target_id.startswith("cup-")
    assert live.get("target_label", "buffer_size") == ["cup", 5]
    # thresholds on the long-term tracker, without a reload: the target is kept
    (result,) = live.set(lost_threshold=0.999)
    assert not result.successful, result  # above the default recover threshold 0.95
    assert "recover" in result.reason and "enter_threshold" not in result.reason
    assert [r.successful for r in live.set(recover_threshold=0.9995)] == [True]
    assert [r.successful for r in live.set(lost_threshold=0.999)] == [True]
    states = [live.step(live.frame(frames[k])).state for k in (3, 4)]
    assert TrackerStatus.LOST in states, states  # these weights never score above 0.999
    assert status.target_id  # (kept through the threshold change)
    # the camera topic is resubscribed live; the old one is dropped
    assert [r.successful for r in live.set(image_topic="other_cam")] == [True]
    live.spin_until(lambda: live.images.get_subscription_count() == 0, 20.0, "unsubscribe")
    assert [r.successful for r in live.set(image_topic="image_raw")] == [True]
    live.spin_until(lambda: live.images.get_subscription_count() > 0, 20.0, "resubscribe")
    assert [r.successful for r in live.set(lost_threshold=-1.0, recover_threshold=-1.0)]
    # the appearance check, live: no later box looks exactly like the first frame's target
    # (similarity below 1), so appearance_low 1 makes every frame LOST whatever its score
    assert [r.successful for r in live.set(lost_threshold=0.0, recover_threshold=0.001)]
    (result,) = live.set(appearance_low=0.9)  # above this model's appearance_high (none: 0)
    assert not result.successful and "appearance_low" in result.reason, result.reason
    assert all(r.successful for r in live.set(appearance_high=1.0, appearance_low=1.0))
    states = [live.step(live.frame(frames[k])).state for k in (5, 6)]
    assert states == [TrackerStatus.LOST, TrackerStatus.LOST], states
    assert all(r.successful for r in live.set(appearance_low=0.0, appearance_high=0.0))
    states = [live.step(live.frame(frames[k])).state for k in (7, 2)]
    assert states == [TrackerStatus.RECOVERED, TrackerStatus.TRACKING], states
    changes = live.set(recover_threshold=-1.0, lost_threshold=-1.0, appearance_low=-1.0)
    assert all(r.successful for r in changes)
    assert live.set(appearance_high=-1.0)[0].successful
    live.alive()


# -- defect 6 and resource bounds -------------------------------------------------------------
def test_huge_declared_images_are_refused_before_decoding(live, frames) -> None:
    """Three bad compressed frames, each followed by a good one, over a reliable depth-10
    subscription: each bad frame reaches the node and is either refused (rejected) or replaced
    by the good one in the node's one-frame mailbox (dropped); none is tracked, none harms."""
    changes = live.set(compressed=True, qos_depth=10, max_image_pixels=1_000_000)
    assert all(r.successful for r in changes)
    live.spin_until(lambda: live.compressed.get_subscription_count() > 0, 20.0, "compressed")
    _, jpeg = cv2.imencode(".jpg", frames[0])
    _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    lying = bytearray(png.tobytes())
    lying[16:24] = (16000).to_bytes(4, "big") + (16000).to_bytes(4, "big")
    try:
        before = live.step(live.compressed_frame(jpeg))
        for data in (bytes(lying), png.tobytes()[:40], b"\xff\xd8\xff\xe0garbage"):
            live.compressed.publish(CompressedImage(format="png", data=data))
            status = live.step(live.compressed_frame(jpeg))
        refused = status.frames_rejected + status.frames_dropped
        assert refused - (before.frames_rejected + before.frames_dropped) == 3, status
        assert status.frames_processed - before.frames_processed == 3
    finally:
        changes = live.set(compressed=False, qos_depth=1, max_image_pixels=16777216)
        assert all(r.successful for r in changes)
    live.spin_until(lambda: live.images.get_subscription_count() > 0, 20.0, "raw again")
    live.alive()


# -- faults -----------------------------------------------------------------------------------
def test_camera_stops_and_resumes(live, frames) -> None:
    before = live.step(live.frame(frames[0])).frames_received
    count = len(live.status)
    live.spin_for(1.5)  # no frames: no status (it is published per frame), it goes stale
    assert len(live.status) == count
    after = live.step(live.frame(frames[1]))
    assert after.frames_received > before


def test_resolution_change_drops_the_target_encoding_change_keeps_it(live, frames) -> None:
    status = tracking(live, frames)
    target = status.target_id
    rgb = live.step(live.frame(frames[2], encoding="rgb8"))
    assert rgb.state != TrackerStatus.IDLE and rgb.target_id == target
    small = live.step(live.frame(cv2.resize(frames[3], (320, 240))))
    assert small.state == TrackerStatus.IDLE and small.target_id == ""
    live.alive()


def test_model_file_vanishing_or_corrupt_keeps_the_old_model(live, frames, tmp_path) -> None:
    copy = tmp_path / "copy.safetensors"
    shutil.copy(WEIGHTS, copy)
    assert [r.successful for r in live.set(weights=str(copy))] == [True]
    copy.unlink()
    (gone,) = live.set(weights=str(copy))  # the same path again: nothing changes, accepted
    assert gone.successful
    (missing,) = live.set(weights=str(tmp_path / "vanished.safetensors"))
    assert not missing.successful and "not found" in missing.reason
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(WEIGHTS.read_bytes()[:5000])
    (bad,) = live.set(weights=str(corrupt))
    assert not bad.successful and "weights=" in bad.reason
    assert live.get("weights") == [str(copy)]
    status = tracking(live, frames)  # the model loaded from the vanished file still serves
    assert status.state != TrackerStatus.IDLE and status.model.startswith("siamrpn_alex")
    assert [r.successful for r in live.set(weights=str(WEIGHTS))] == [True]


def test_cuda_unavailable_is_refused_at_runtime(live) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    (result,) = live.set(device="cuda")
    assert not result.successful and "no CUDA device" in result.reason
    assert live.get("device") == ["auto"]
    live.alive()


# -- start-up errors: one line ------------------------------------------------------------------
START_UP_ERRORS = {
    "torch_threads:=1000000": "cannot start: torch_threads=1000000: must lie in [0, 256]",
    "mono16_max:=.nan": "cannot start: mono16_max=nan: must be a finite number",
    "image_topic:='bad topic!'": "cannot start: image_topic='bad topic!': not a ROS topic",
    "qos_depth:=abc": "cannot start: qos_depth='abc': must be int",
    "device:=cuda:3": "cannot start: device='cuda:3'",
    "weights:=/nonexistent.safetensors": "cannot start: weights='/nonexistent.safetensors'",
    "lost_threshold:=0.97": "cannot start: lost_threshold=0.97: lost_threshold (0.97) must be",
}


def test_start_up_errors_are_one_line(tmp_path, frames) -> None:
    """Each bad parameter stops the node with exactly one line (the processes run at once)."""
    import torch

    procs = {}
    with ros_environment(tmp_path) as env:
        for param in START_UP_ERRORS:
            if "cuda" in param and torch.cuda.is_available():
                continue
            args = [str(BIN / "siam-tracker-node"), "--ros-args", "-p", f"weights:={WEIGHTS}"]
            args += ["-p", "model:=siamrpn_alex_dwxcorr", "-p", "long_term:=true", "-p", param]
            procs[param] = subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        for param, proc in procs.items():
            _, err = proc.communicate(timeout=180)
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert proc.returncode == 1, (param, err)
            assert len(lines) == 1 and START_UP_ERRORS[param] in lines[0], (param, err)


def test_policy_covers_every_name_the_node_uses(live) -> None:
    """config/sros2/policy.xml allows each topic and service of a running node (names as the
    node uses them at the root namespace: the live node's namespace is stripped)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    import xml.etree.ElementTree as ET

    from sros2_permissions import dds_names

    policy = ET.parse(Path(__file__).resolve().parents[2] / "config/sros2/policy.xml")
    allowed = dds_names(next(policy.getroot().iter("profile")))
    g = live.node
    name, ns = "tracker_node", "/rel"

    def local(topic: str) -> str:
        return topic[len(ns) :] if topic.startswith(ns + "/") else topic

    used = {"publish": set(), "subscribe": set()}
    for topic, _ in g.get_publisher_names_and_types_by_node(name, ns):
        used["publish"].add(f"rt{local(topic)}")
    for topic, _ in g.get_subscriber_names_and_types_by_node(name, ns):
        used["subscribe"].add(f"rt{local(topic)}")
    for service, _ in g.get_service_names_and_types_by_node(name, ns):
        used["subscribe"].add(f"rq{local(service)}Request")
        used["publish"].add(f"rr{local(service)}Reply")
    for mode in ("publish", "subscribe"):
        assert used[mode] - allowed[mode] == set(), mode
