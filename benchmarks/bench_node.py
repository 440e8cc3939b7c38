"""Benchmark of the ROS layer (not a test): node overhead, end-to-end latency, a 60 Hz camera.

1. Node overhead per frame, tracking excluded: the image callback (``submit``), the conversion
   to BGR, and building + publishing the detections and status (no subscriber, so no network),
   at 640x480 and 1280x720, rgb8 and bgr8. Medians over many frames, in this process.
2. End to end: a tracker node in its own process; this process publishes real frames at 10 Hz
   and measures image-published -> detections-received (median, p99).
3. A 60 Hz publisher with a slower tracker: frames dropped (not queued) and the latency the
   node itself reports stay bounded.

    .venv/bin/python benchmarks/bench_node.py [--frames 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from siam_core.tracker import TrackResult, TrackState
from siam_tracker_ros.conversions import bgr_to_image, box_to_bbox, image_to_bgr, stamp_ns
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.node import TrackerNode
from siam_tracker_ros.srv import InitTarget
from siam_tracker_ros.worker import Counters, Frame, Outcome

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PARITY = SHARED / "parity" / "pysot_siamrpn_alex_dwxcorr" / "weights.safetensors"
INIT = (315.0, 140.0, 112.0, 112.0)


def clip_frames(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(SHARED / "bag.avi"))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(frame)
    return frames


def overhead(frames: list[np.ndarray], repeats: int) -> None:
    rclpy.init(
        args=[
            "bench",
            "--ros-args",
            "-p",
            "model:=siamrpn_alex_dwxcorr",
            "-p",
            f"weights:={PARITY}",
        ]
    )
    node = TrackerNode()
    worker = node._worker
    worker.stop()  # measure the callback path alone; nothing consumes the mailbox
    print("\n1. node overhead per frame, tracking excluded (median of", repeats, "frames, ms)")
    print(f"{'size':>10} {'enc':>5} {'callback':>9} {'convert':>8} {'publish':>8} {'total':>7}")
    for width, height in ((640, 480), (1280, 720)):
        for encoding in ("rgb8", "bgr8"):
            images = []
            for frame in frames[:20]:
                resized = cv2.resize(frame, (width, height))
                if encoding == "rgb8":
                    resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
                msg = bgr_to_image(resized)
                msg.encoding = encoding
                images.append(msg)
            result = TrackResult(INIT, 0.9, TrackState.TRACKING, (0.0, 0.0, 300.0, 300.0))
            t_cb, t_conv, t_pub = [], [], []
            for i in range(repeats):
                msg = images[i % len(images)]
                t0 = time.perf_counter()
                node._on_image(msg)
                t1 = time.perf_counter()
                bgr = image_to_bgr(msg)
                t2 = time.perf_counter()
                outcome = Outcome(
                    Frame(msg, 0, time.monotonic()),
                    bgr,
                    result,
                    TrackState.TRACKING,
                    "t-1",
                    "target",
                    1.0,
                    Counters(i, i, 0),
                )
                node._publish_outcome(outcome)
                t3 = time.perf_counter()
                t_cb.append(t1 - t0)
                t_conv.append(t2 - t1)
                t_pub.append(t3 - t2)
            cb, conv, pub = (1e3 * np.median(t) for t in (t_cb, t_conv, t_pub))
            print(
                f"{width}x{height:<5} {encoding:>5} {cb:9.3f} {conv:8.3f} {pub:8.3f} "
                f"{cb + conv + pub:7.3f}"
            )
    node.destroy_node()
    rclpy.shutdown()


def run_node(env: dict[str, str]) -> subprocess.Popen:
    cmd = [
        str(Path(sys.executable).parent / "siam-tracker-node"),
        "--ros-args",
        "-p",
        "model:=siamrpn_alex_dwxcorr",
        "-p",
        f"weights:={PARITY}",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def live(frames: list[np.ndarray], rate: float, seconds: float, label: str) -> None:
    """Publish at ``rate`` for ``seconds``; report end-to-end latency and the node's counters."""
    node = rclpy.create_node("bench_driver")
    publisher = node.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    statuses: list[TrackerStatus] = []
    node.create_subscription(
        Detection2DArray,
        "detections",
        lambda m: received.setdefault(stamp_ns(m.header.stamp), time.perf_counter()),
        100,
    )
    node.create_subscription(TrackerStatus, "status", statuses.append, 100)
    client = node.create_client(InitTarget, "init_target")
    while not client.wait_for_service(timeout_sec=1.0) or publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    msgs = [bgr_to_image(f) for f in frames]
    publisher.publish(msgs[0])
    time.sleep(0.5)
    rclpy.spin_once(node, timeout_sec=0.1)
    future = client.call_async(InitTarget.Request(box=box_to_bbox(INIT)))
    rclpy.spin_until_future_complete(node, future, timeout_sec=10)
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        due = start + k / rate
        while time.perf_counter() < due:
            rclpy.spin_once(node, timeout_sec=max(0.0, min(0.002, due - time.perf_counter())))
        msg = msgs[k % len(msgs)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(10**12 + k * 10**6, 10**9)
        sent[stamp_ns(msg.header.stamp)] = time.perf_counter()
        publisher.publish(msg)
        k += 1
    end = time.perf_counter() + 2.0
    while time.perf_counter() < end:
        rclpy.spin_once(node, timeout_sec=0.02)
    latencies = np.array([received[s] - sent[s] for s in sent if s in received]) * 1e3
    node_latency = np.array([s.latency_ms for s in statuses if stamp_ns(s.header.stamp) in sent])
    last = max(statuses, key=lambda s: s.frames_received)
    print(f"\n{label}: published {k} frames at {rate:g} Hz for {seconds:g} s")
    print(
        f"  detections received for {len(latencies)} frames; tracker received "
        f"{last.frames_received}, processed {last.frames_processed}, dropped {last.frames_dropped}"
    )
    p50, p99 = np.percentile(latencies, [50, 99])
    n50, n99 = np.percentile(node_latency, [50, 99])
    print(f"  image published -> detections received: median {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  node-reported latency (reception -> result): median {n50:.1f} ms, p99 {n99:.1f} ms")
    node.destroy_node()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="overhead repeats per case")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not PARITY.exists():
        print(f"needs {PARITY} (shared data)")
        return 1
    frames = clip_frames(40)
    overhead(frames, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, ROS_DOMAIN_ID="77", ROS_LOG_DIR=tmp)
        os.environ.update(ROS_DOMAIN_ID="77", ROS_LOG_DIR=tmp)
        for rate, label in ((10.0, "2. end to end at 10 Hz"), (60.0, "3. a 60 Hz camera")):
            tracker = run_node(env)
            rclpy.init()
            try:
                live(frames, rate, args.seconds, label)
            finally:
                rclpy.shutdown()
                tracker.terminate()
                tracker.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
