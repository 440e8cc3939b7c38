"""Publish a video file or a folder of frames as a camera: ``sensor_msgs/Image`` at its frame rate.

``siam-video-player clip.avi --topic image_raw`` plays at the clip's native rate (``--fps`` to
change it), waiting first until something subscribes so no frame is published into the void.
Stamps come from the node clock (``--stamps clock``, a live camera) or from the video's own
timeline (``--stamps video``: frame k is stamped ``base + k / fps``), which lets an offline
evaluation map every detection back to its frame index.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile before rclpy.init)
from siam_core.io.frames import FrameSource
from siam_tracker_ros.cli import run_node_tool
from siam_tracker_ros.conversions import bgr_to_image


def frame_stamp_ns(base_ns: int, index: int, fps: float) -> int:
    """Stamp of frame ``index`` on the video timeline that starts at ``base_ns``."""
    return base_ns + round(index * 1e9 / fps)


def waiting_message(topic: str, present: int, wanted: int, waited: float) -> str:
    """Why the player gave up waiting for its subscribers."""
    if present == 0:
        return f"no subscriber on {topic} after {waited:g} s (waited for {wanted})"
    return f"only {present} of {wanted} subscribers on {topic} after {waited:g} s"


def play(node: Node, args: argparse.Namespace) -> int:
    frames = FrameSource(args.source)
    fps = args.fps or frames.fps or 30.0
    publisher = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
    compressed = None
    if args.compressed:
        topic = f"{args.topic}/compressed"
        compressed = node.create_publisher(CompressedImage, topic, qos_profile_sensor_data)
    deadline = time.monotonic() + args.wait
    while publisher.get_subscription_count() < args.subscribers:
        if time.monotonic() > deadline:
            node.get_logger().error(
                waiting_message(
                    publisher.topic_name,
                    publisher.get_subscription_count(),
                    args.subscribers,
                    args.wait,
                )
            )
            return 1
        rclpy.spin_once(node, timeout_sec=0.05)
    base_ns = int(args.stamp_base * 1e9) if args.stamp_base else node.get_clock().now().nanoseconds
    node.get_logger().info(f"playing {args.source} on {publisher.topic_name} at {fps:.2f} fps")
    start = time.monotonic()
    count = 0
    for index, frame in enumerate(frames):
        if args.max_frames and index >= args.max_frames:
            break
        delay = start + index / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if args.encoding == "rgb8":
            msg = bgr_to_image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            msg.encoding = "rgb8"
        else:
            msg = bgr_to_image(frame)
        msg.header.frame_id = args.frame_id
        if args.stamps == "video":
            stamp = frame_stamp_ns(base_ns, index, fps)
        else:
            stamp = node.get_clock().now().nanoseconds
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        publisher.publish(msg)
        if compressed is not None:
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                compressed.publish(
                    CompressedImage(header=msg.header, format="jpeg", data=jpeg.tobytes())
                )
        count += 1
    elapsed = time.monotonic() - start
    node.get_logger().info(f"published {count} frames in {elapsed:.1f} s")
    # stay up a moment: a subscriber still reading (a busy recorder) loses what is in flight
    # when the publishing process exits (a CI demo run once missed the last 6 of 25 frames)
    linger_end = time.monotonic() + args.linger
    while time.monotonic() < linger_end:
        rclpy.spin_once(node, timeout_sec=0.05)
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="siam-video-player", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="video file (anything OpenCV reads) or image folder")
    parser.add_argument("--topic", default="image_raw")
    parser.add_argument("--fps", type=float, default=0.0, help="default: the clip's own rate")
    parser.add_argument("--frame-id", default="camera")
    parser.add_argument("--encoding", choices=("bgr8", "rgb8"), default="bgr8")
    parser.add_argument("--stamps", choices=("clock", "video"), default="clock")
    parser.add_argument("--stamp-base", type=float, default=0.0, help="video stamps start (s)")
    parser.add_argument("--subscribers", type=int, default=1, help="wait for this many")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for them")
    parser.add_argument("--max-frames", type=int, default=0, help="0: the whole clip")
    parser.add_argument("--compressed", action="store_true", help="also <topic>/compressed (JPEG)")
    parser.add_argument(
        "--linger", type=float, default=1.0, help="seconds to stay up after the last frame"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_node_tool("siam-video-player", "video_player", parse_args, play, argv)


if __name__ == "__main__":
    sys.exit(main())
