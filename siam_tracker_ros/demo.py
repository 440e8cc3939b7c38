"""``make demo``: the tracker node on a real clip, end to end over ROS 2, everything recorded.

Three processes on a loopback-only DDS graph: ``siam-video-player`` publishes the clip as a
camera at its native rate (raw and JPEG), ``siam-tracker-node`` tracks with the embedded default
model, and this process calls ``init_target`` with the configured box on the first frame (by its
stamp), records what crossed the graph into a rosbag2 file (mcap), and afterwards writes an
annotated video and a CSV of detections. Outputs go to ``out/demo/``.

Run it as ``make demo`` (which fetches the clip first) or ``.venv/bin/siam-demo``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from siam_core.tracker import TrackState
from siam_tracker_ros.bagtypes import typestore
from siam_tracker_ros.conversions import box_to_bbox, stamp_ns
from siam_tracker_ros.lifetime import close_node
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.srv import InitTarget

ROOT = Path(__file__).resolve().parent.parent
CLIP = Path(sys.prefix) / "share" / "siam-tracker-demo" / "vtest.avi"
# The pedestrian walking on the right of vtest.avi's first frame (x, y, w, h).
BOX = (642.0, 240.0, 40.0, 80.0)
# The default model, named here rather than imported from siam_core.zoo (which loads PyTorch
# and would slow down --help); test_demo checks that both name the same file.
DEFAULT_WEIGHTS = ROOT / "siam_core" / "weights" / "default.safetensors"
TOPICS = {
    "/image_raw/compressed": CompressedImage,
    "/detections": Detection2DArray,
    "/status": TrackerStatus,
}


def _node_param(text: str) -> str:
    name, sep, _ = text.partition(":=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE, got {text!r}")
    return text


def node_command(args: argparse.Namespace, bin_dir: Path) -> list[str]:
    """The tracker node's command line: the model, then every ``--param`` as given."""
    cmd = [str(bin_dir / "siam-tracker-node"), "--ros-args"]
    for name, value in (("model", args.model), ("weights", args.weights)):
        if value:  # rcl rejects an empty override (-p model:=); empty means the default model
            cmd += ["-p", f"{name}:={value}"]
    for param in args.param:
        cmd += ["-p", param]
    return cmd


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="siam-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="video (default: vtest.avi)")
    parser.add_argument(
        "--box",
        help=f"target in the first frame, x,y,w,h (default for vtest.avi: "
        f"{','.join(f'{v:g}' for v in BOX)}; needed for any other clip)",
    )
    parser.add_argument(
        "--label",
        help="class label of the target (default: person for vtest.avi's pedestrian, else "
        "target); the node names the target <label>-<n>",
    )
    parser.add_argument("--model", default="", help="default: the embedded default model")
    parser.add_argument(
        "--weights",
        default="",
        help="weights file for --model (.safetensors or pysot model.pth); default: the "
        "embedded default model",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        type=_node_param,
        metavar="NAME:=VALUE",
        help="a tracker node parameter (README 'Parameters'), e.g. backend:=openvino; repeatable",
    )
    parser.add_argument("--max-frames", type=int, default=0, help="0: the whole clip")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "out" / "demo",
        help="output folder, replaced on every run (default: out/demo in the repository)",
    )
    args = parser.parse_args(argv)
    is_default_clip = args.clip == CLIP
    if args.box is None:
        if not is_default_clip:
            parser.error(f"--box x,y,w,h is needed for {args.clip} (the default box is vtest's)")
        args.box = ",".join(f"{v:g}" for v in BOX)
    try:
        box = tuple(float(v) for v in args.box.split(","))
    except ValueError:
        box = ()
    if len(box) != 4:
        parser.error(f"--box must be four numbers x,y,w,h, got {args.box!r}")
    args.box = box
    if args.label is None:
        args.label = "person" if is_default_clip else "target"
    return args


class Recorder:
    """Subscribes raw (serialized) messages, writes them to the bag as they come, keeps them."""

    def __init__(self, node, writer, store) -> None:
        self.writer = writer
        self.messages: dict[str, list[tuple[int, bytes]]] = {topic: [] for topic in TOPICS}
        self.raw_frames = 0
        for topic, msg_type in TOPICS.items():
            type_name = f"{msg_type.__module__.split('.')[0]}/msg/{msg_type.__name__}"
            connection = writer.add_connection(topic, type_name, typestore=store)
            qos = qos_profile_sensor_data if "image" in topic else 50
            node.create_subscription(
                msg_type, topic, self._writer_for(topic, connection), qos, raw=True
            )
        node.create_subscription(
            Image, "/image_raw", self._count, qos_profile_sensor_data, raw=True
        )

    def _writer_for(self, topic, connection):
        def write(data: bytes) -> None:
            now = time.time_ns()
            self.writer.write(connection, now, data)
            self.messages[topic].append((now, data))

        return write

    def _count(self, _data: bytes) -> None:
        self.raw_frames += 1

    def decoded(self, topic: str) -> list:
        return [deserialize_message(data, TOPICS[topic]) for _, data in self.messages[topic]]


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)


def run(args: argparse.Namespace) -> int:
    box = args.box
    if not args.model and not args.weights and not DEFAULT_WEIGHTS.is_file():
        print(
            f"[demo] the embedded default model ({DEFAULT_WEIGHTS}) is not in this checkout yet: "
            "it is trained by siam_core/configs/train/default_mobilenet.yaml (README, Training).\n"
            "[demo] run the demo with a model you have instead, e.g.\n"
            "    make demo DEMO_ARGS='--model siamrpn_alex_dwxcorr --weights /path/model.pth'"
        )
        return 2
    if not args.clip.is_file():
        print(f"demo clip {args.clip} missing: run `make demo` (its setup fetches it)")
        return 1
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    env = dict(os.environ, ROS_LOG_DIR=str(out / "ros_log"), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", "42")
    os.environ.update(ROS_LOG_DIR=env["ROS_LOG_DIR"], ROS_DOMAIN_ID=env["ROS_DOMAIN_ID"])
    bin_dir = Path(sys.executable).parent

    tracker = start(node_command(args, bin_dir), out / "tracker_node.log", env)
    # not sys.argv: rcl would read the demo's own "--param NAME:=VALUE" as deprecated remaps
    rclpy.init(args=[])
    node = rclpy.create_node("demo")
    writer = Writer(out / "bag", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    player = None
    try:
        recorder = Recorder(node, writer, typestore())
        client = node.create_client(InitTarget, "/init_target")
        print(f"[demo] starting the tracker node (log: {out / 'tracker_node.log'})")
        while not client.wait_for_service(timeout_sec=1.0):
            if tracker.poll() is not None:
                print((out / "tracker_node.log").read_text()[-3000:])
                print("[demo] the tracker node exited; see the log above")
                return 1
        player_cmd = [str(bin_dir / "siam-video-player"), str(args.clip), "--compressed"]
        player_cmd += ["--stamps", "video", "--subscribers", "2"]
        if args.max_frames:
            player_cmd += ["--max-frames", str(args.max_frames)]
        player = start(player_cmd, out / "player.log", env)
        print(f"[demo] playing {args.clip.name}; target box {box}")
        init_future = drain_end = None
        reported = False
        while drain_end is None or time.monotonic() < drain_end:
            rclpy.spin_once(node, timeout_sec=0.05)
            if drain_end is None and player.poll() is not None:
                drain_end = time.monotonic() + 3.0  # for the last results to arrive
            images = recorder.messages["/image_raw/compressed"]
            if init_future is None and images:
                first = deserialize_message(images[0][1], CompressedImage)
                request = InitTarget.Request(box=box_to_bbox(box), stamp=first.header.stamp)
                request.label = args.label
                init_future = client.call_async(request)
            if not reported and init_future is not None and init_future.done():
                result = init_future.result()
                print(f"[demo] init_target: success={result.success} {result.message}")
                reported = True
    finally:
        if player is not None and player.poll() is None:
            player.terminate()
        tracker.send_signal(signal.SIGINT)
        try:
            tracker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            tracker.kill()
        writer.close()
        close_node(node)
    return summarise(recorder, args, out)


def final_status(statuses: Iterable[TrackerStatus]) -> TrackerStatus:
    """The last status the node published: the most frames processed (frames_received alone
    ties when no frame arrived between the last two results)."""
    return max(statuses, key=lambda s: (s.frames_processed, s.frames_received))


def summarise(recorder: Recorder, args: argparse.Namespace, out: Path) -> int:
    images = recorder.decoded("/image_raw/compressed")
    detections = {stamp_ns(d.header.stamp): d for d in recorder.decoded("/detections")}
    statuses = {stamp_ns(s.header.stamp): s for s in recorder.decoded("/status")}
    if not images or not statuses:
        print("[demo] no frames were tracked; see out/demo/*.log")
        return 1
    capture = cv2.VideoCapture(str(args.clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    capture.release()
    base = stamp_ns(images[0].header.stamp)
    video = None
    with (out / "detections.csv").open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["frame", "stamp_ns", "state", "score", "x", "y", "w", "h", "latency_ms"])
        for image in images:
            stamp = stamp_ns(image.header.stamp)
            frame = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
            if video is None:
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                size = (frame.shape[1], frame.shape[0])
                video = cv2.VideoWriter(str(out / "tracked.mp4"), fourcc, fps, size)
            status = statuses.get(stamp)
            state = TrackState(status.state).name if status else "SKIPPED"
            colour = (0, 200, 0) if state in ("TRACKING", "RECOVERED") else (0, 0, 255)
            found = detections.get(stamp)
            x = y = w = h = score = float("nan")
            if found is not None and found.detections:
                bbox = found.detections[0].bbox
                w, h = bbox.size_x, bbox.size_y
                x, y = bbox.center.position.x - w / 2, bbox.center.position.y - h / 2
                score = found.detections[0].results[0].hypothesis.score
                cv2.rectangle(frame, (round(x), round(y)), (round(x + w), round(y + h)), colour, 2)
            cv2.putText(frame, state, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, 2)
            video.write(frame)
            latency = status.latency_ms if status else float("nan")
            index = round((stamp - base) * fps / 1e9)
            rows.writerow(
                [
                    index,
                    stamp,
                    state,
                    f"{score:.4f}",
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{w:.1f}",
                    f"{h:.1f}",
                    f"{latency:.2f}",
                ]
            )
    video.release()
    last = final_status(statuses.values())
    latencies = np.array([s.latency_ms for s in statuses.values()])
    tracked = sum(s.state in (TrackState.TRACKING, TrackState.RECOVERED) for s in statuses.values())
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    print(f"[demo] frames published: {len(images)} (raw frames seen here: {recorder.raw_frames})")
    print(
        f"[demo] tracker: received {last.frames_received}, processed {last.frames_processed}, "
        f"dropped {last.frames_dropped}; tracked in {tracked} frames; model {last.model} on "
        f"{last.device}"
    )
    print(f"[demo] latency ms: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"[demo] measured on {os.cpu_count()} CPUs, load average (1, 5, 15 min): {load}")
    print(f"[demo] rosbag2 (mcap): {out / 'bag'}")
    print(f"[demo] annotated video: {out / 'tracked.mp4'}")
    print(f"[demo] detections CSV: {out / 'detections.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
