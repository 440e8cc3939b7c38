"""The demo end to end on a short real clip: three processes, a real rosbag2 file, CSV, video."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pytest
from rosbags.rosbag2 import Reader

from siam_core.zoo import DEFAULT_WEIGHTS
from siam_tracker_ros import demo
from siam_tracker_ros.bagtypes import typestore

pytestmark = [pytest.mark.ros, pytest.mark.slow]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_demo_records_bag_csv_and_video(
    ros_env, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``make demo`` runs it: no model named, so the node loads the embedded default, on
    the default runtime (backend and precision auto: OpenVINO int8 from the graphs shipped for
    this kind of CPU, assembled in this test's own cache). A
    ``--param`` on the demo's own command line goes to the node only: the demo's rclpy does not
    read it as a (deprecated) remap rule."""
    if not DEFAULT_WEIGHTS.is_file() or not (SHARED / "bag.avi").exists():
        pytest.skip("needs the embedded default model and ../shared/data/bag.avi")
    pytest.importorskip("openvino", reason="openvino missing: run `make setup`")
    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    argv = ["--clip", str(SHARED / "bag.avi"), "--box", "315,140,112,112", "--max-frames", "25"]
    argv += ["--param", "publish_debug_image:=false"]
    monkeypatch.setattr("sys.argv", ["siam-demo", *argv])
    assert demo.main([*argv, "--out", str(out)]) == 0
    printed, errors = capfd.readouterr()
    assert "Found remap rule" not in printed + errors
    assert "init_target: success=True" in printed and "latency ms: p50" in printed
    assert "tracking target-1 from" in printed  # bag.avi's target is no person
    assert "load average" in printed
    node_log = (out / "tracker_node.log").read_text()
    assert "backend openvino int8 (asked: auto auto" in node_log, node_log[-2000:]

    with Reader(out / "bag") as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        store = typestore()
        statuses = [
            store.deserialize_cdr(raw, c.msgtype)
            for c, _, raw in reader.messages()
            if c.topic == "/status"
        ]
    assert counts["/image_raw/compressed"] == 25
    # 25 frames at the clip's 25 fps: on busy cores the node tracks only some (it drops the
    # rest, newest first), and its first frame opens the runtime's graphs
    assert counts["/detections"] == counts["/status"] >= 3
    assert any(s.state == 1 for s in statuses), "no TRACKING status recorded"

    rows = list(csv.DictReader((out / "detections.csv").open()))
    assert len(rows) == 25 and rows[0]["frame"] == "0"
    tracked = [r for r in rows if r["state"] == "TRACKING"]
    assert tracked and all(float(r["w"]) > 0 for r in tracked)
    video = cv2.VideoCapture(str(out / "tracked.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 25


def test_demo_defaults_and_summary_helpers(tmp_path: Path) -> None:
    """Arguments: the default clip's box and label; any other clip needs a box and is labelled
    'target' (the bag clip was once labelled person-1). The summary reads the last status."""
    from siam_core import zoo
    from siam_tracker_ros.msg import TrackerStatus

    assert demo.DEFAULT_WEIGHTS == zoo.DEFAULT_WEIGHTS
    args = demo.parse_args([])
    assert args.label == "person" and args.box == demo.BOX
    args = demo.parse_args(["--clip", str(tmp_path / "bag.avi"), "--box", "315,140,112,112"])
    assert args.label == "target" and args.box == (315.0, 140.0, 112.0, 112.0)
    for bad in ([], ["--box", "1,2,3"], ["--box", "a,b,c,d"]):
        with pytest.raises(SystemExit):
            demo.parse_args(["--clip", str(tmp_path / "bag.avi"), *bad])
    # node parameters pass through as given; a malformed one stops at the argument parser
    args = demo.parse_args(["--param", "backend:=openvino", "--param", "precision:=int8"])
    cmd = demo.node_command(args, tmp_path)
    assert cmd[:2] == [str(tmp_path / "siam-tracker-node"), "--ros-args"]
    assert cmd[2:] == ["-p", "backend:=openvino", "-p", "precision:=int8"]
    for bad in ("backend=openvino", ":=x"):
        with pytest.raises(SystemExit):
            demo.parse_args(["--param", bad])
    # The last two results came after the last frame arrived: frames_received ties.
    statuses = [
        TrackerStatus(frames_received=9, frames_processed=7),
        TrackerStatus(frames_received=10, frames_processed=8),
        TrackerStatus(frames_received=10, frames_processed=9),
    ]
    assert demo.final_status(statuses).frames_processed == 9
