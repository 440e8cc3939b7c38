"""A simulated pan-tilt camera: a viewport of a real high-resolution sequence, steered by rates.

``siam-pantilt-sim <sequence>`` treats each frame of an annotated sequence (e.g. UAV123's
wakeboard7 or VOT's ball1_vot2015, 1280x720) as what a wide camera sees, and renders what a
narrower camera on a pan-tilt head at the same place would see: for every viewport pixel its ray
(through the viewport's own lens distortion) is rotated by the head's pan and tilt and looked up
in the source frame. A pure rotation makes this exact for a pinhole source. Each rendered frame
goes out on ``image_raw`` with a matching ``camera_info`` (plumb_bob) in ``camera_optical_frame``.

The head takes ``geometry_msgs/TwistStamped`` rates on ``cmd_rate`` (body frame, REP 103:
``angular.z`` yaw rate, positive turns left; ``angular.y`` pitch rate, positive tilts down),
rate- and angle-limited. The header stamp names the image the command answers, which lets the
loop run in **lockstep** on simulated time (frame k is stamped t_k = 1 s + k / fps): publish
frame k, wait for the command answering it, apply it for one frame period after ``delay``
frames (the actuation latency being modelled), publish frame k+1. Results then do not depend on
how fast this machine tracks. The source's ground truth gives the target's true angle from the
optical axis in every frame, written to ``loop.csv``; with ``--init`` the tracker is started on
the true box of the first frame (``init_target``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile before rclpy.init)
from siam_core.control import CameraModel, rays_to_angles
from siam_core.data.sequences import load_sequence
from siam_tracker_ros.cli import run_node_tool
from siam_tracker_ros.conversions import bgr_to_image, box_to_bbox, stamp_ns
from siam_tracker_ros.msg import TargetState
from siam_tracker_ros.srv import InitTarget

FRAME_ID = "camera_optical_frame"
# The viewport's lens: barrel distortion like a small board camera's, off-centre principal point.
VIEW_DISTORTION = (-0.12, 0.04, 0.0005, -0.0004, 0.0)


def rotation(pan: float, tilt: float) -> np.ndarray:
    """Viewport optical frame -> source optical frame for a head at ``pan`` (yaw, positive
    left) and ``tilt`` (pitch, positive down); pan is the outer axis."""
    yaw, _ = cv2.Rodrigues(np.array([0.0, -pan, 0.0]))  # about up = optical -y
    pitch, _ = cv2.Rodrigues(np.array([-tilt, 0.0, 0.0]))  # about left = optical -x
    return yaw @ pitch


@dataclass
class PanTiltHead:
    """Pan/tilt angles (radians) with rate and angle limits."""

    pan: float = 0.0
    tilt: float = 0.0
    max_rate: float = math.radians(120.0)
    max_angle: float = math.radians(30.0)

    def move(self, yaw_rate: float, pitch_rate: float, dt: float) -> None:
        rate_limit = self.max_rate
        yaw_rate = float(np.clip(yaw_rate, -rate_limit, rate_limit))
        pitch_rate = float(np.clip(pitch_rate, -rate_limit, rate_limit))
        limit = self.max_angle
        self.pan = float(np.clip(self.pan + yaw_rate * dt, -limit, limit))
        self.tilt = float(np.clip(self.tilt + pitch_rate * dt, -limit, limit))


class ViewportRenderer:
    """Renders the viewport of a source camera for a head pose and maps boxes between them."""

    def __init__(
        self, source_size: tuple[int, int], source_hfov_deg: float, view_size, view_hfov_deg
    ):
        sw, sh = source_size
        f_source = (sw / 2) / math.tan(math.radians(source_hfov_deg) / 2)
        self.source = CameraModel.create(
            sw, sh, [f_source, 0, (sw - 1) / 2, 0, f_source, (sh - 1) / 2, 0, 0, 1]
        )
        vw, vh = view_size
        f_view = (vw / 2) / math.tan(math.radians(view_hfov_deg) / 2)
        k = [f_view, 0, (vw - 1) / 2 + 1.7, 0, f_view * 1.002, (vh - 1) / 2 - 1.3, 0, 0, 1]
        self.view = CameraModel.create(vw, vh, k, VIEW_DISTORTION, "plumb_bob")
        us, vs = np.meshgrid(np.arange(vw, dtype=np.float64), np.arange(vh, dtype=np.float64))
        self._view_rays = self.view.rays(np.column_stack([us.ravel(), vs.ravel()]))

    def render(self, frame: np.ndarray, pan: float, tilt: float) -> np.ndarray:
        rays = self._view_rays @ rotation(pan, tilt).T
        k = self.source.k
        z = np.maximum(rays[:, 2], 1e-9)
        map_x = (k[0, 0] * rays[:, 0] / z + k[0, 2]).astype(np.float32)
        map_y = (k[1, 1] * rays[:, 1] / z + k[1, 2]).astype(np.float32)
        shape = (self.view.height, self.view.width)
        return cv2.remap(
            frame,
            map_x.reshape(shape),
            map_y.reshape(shape),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )

    def target_ray(self, box: Sequence[float], pan: float, tilt: float) -> np.ndarray:
        """Unit ray to the centre of a source box, in the viewport's optical frame."""
        x, y, w, h = box
        ray = self.source.rays(np.array([[x + w / 2 - 0.5, y + h / 2 - 0.5]]))[0]
        return rotation(pan, tilt).T @ ray

    def view_box(self, box: Sequence[float], pan: float, tilt: float) -> tuple[float, ...]:
        """The source box as seen in the viewport: the bounding box of its projected outline."""
        x, y, w, h = box
        xs, ys = np.linspace(x, x + w, 9) - 0.5, np.linspace(y, y + h, 9) - 0.5
        outline = np.array(
            [(u, v) for u in xs for v in (ys[0], ys[-1])]
            + [(u, v) for v in ys for u in (xs[0], xs[-1])]
        )
        rays = self.source.rays(outline) @ rotation(pan, tilt)  # rows: R^T ray
        pixels = self.view.project(rays) + 0.5  # camera-matrix -> continuous pixels
        x0, y0 = pixels.min(axis=0)
        x1, y1 = pixels.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)

    def camera_info(self) -> CameraInfo:
        view = self.view
        info = CameraInfo(width=view.width, height=view.height, distortion_model="plumb_bob")
        info.k = view.k.ravel().tolist()
        info.d = list(VIEW_DISTORTION)
        info.r = np.eye(3).ravel().tolist()
        info.p = np.hstack([view.k, np.zeros((3, 1))]).ravel().tolist()
        info.header.frame_id = FRAME_ID
        return info


class Simulator:
    """The simulated camera node: lockstep loop, ground truth and the per-frame record."""

    def __init__(self, node: Node, args: argparse.Namespace) -> None:
        self.node = node
        self.args = args
        self.sequence = load_sequence(args.sequence)
        first = cv2.imread(str(self.sequence.frames[0]))
        if first is None:
            raise FileNotFoundError(f"cannot read {self.sequence.frames[0]}")
        view_size = tuple(int(v) for v in args.size.split("x"))
        source_size = (first.shape[1], first.shape[0])
        self.renderer = ViewportRenderer(source_size, args.source_hfov, view_size, args.hfov)
        self.head = PanTiltHead(
            math.radians(args.pan), math.radians(args.tilt), max_rate=math.radians(args.max_rate)
        )
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = node.create_publisher(Image, "image_raw", reliable)
        self.info_pub = node.create_publisher(CameraInfo, "camera_info", reliable)
        self.commands: dict[int, TwistStamped] = {}
        self.received: dict[int, float] = {}
        self.targets: dict[int, TargetState] = {}
        node.create_subscription(TwistStamped, "cmd_rate", self._on_cmd, reliable)
        node.create_subscription(TargetState, "target", self._on_target, 50)
        self.init_client = node.create_client(InitTarget, "init_target")

    def _on_cmd(self, msg: TwistStamped) -> None:
        stamp = stamp_ns(msg.header.stamp)
        self.commands[stamp] = msg
        self.received[stamp] = time.monotonic()

    def _on_target(self, msg: TargetState) -> None:
        self.targets[stamp_ns(msg.header.stamp)] = msg

    def spin_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            rclpy.spin_once(self.node, timeout_sec=0.01)
        return True

    def publish_frame(self, k: int, stamp: int, frame: np.ndarray) -> float:
        sec, nanosec = divmod(stamp, 1_000_000_000)
        view = self.renderer.render(frame, self.head.pan, self.head.tilt)
        self.last_view = view
        msg = bgr_to_image(view)
        msg.header.frame_id = FRAME_ID
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
        info = self.renderer.camera_info()
        info.header = msg.header
        self.info_pub.publish(info)
        sent = time.monotonic()
        self.image_pub.publish(msg)
        return sent

    def run(self) -> int:
        args = self.args
        seq = self.sequence
        frames = len(seq.frames) if not args.frames else min(args.frames, len(seq.frames))
        period_ns = round(1e9 / args.fps)
        base = 1_000_000_000  # t_0 = 1 s: a zero stamp reads as "unset" to many tools
        if not self.spin_until(lambda: self.image_pub.get_subscription_count() > 0, args.wait):
            self.node.get_logger().error("nobody subscribed to image_raw")
            return 1
        if not self.spin_until(self.init_client.service_is_ready, args.wait):
            self.node.get_logger().error("init_target service not available")
            return 1
        pending: list[tuple[float, float]] = [(0.0, 0.0)] * args.delay
        rows = []
        video = None
        for k in range(frames):
            stamp = base + k * period_ns
            frame = cv2.imread(str(seq.frames[k]))
            if frame is None:
                raise FileNotFoundError(f"cannot read {seq.frames[k]}")
            sent = self.publish_frame(k, stamp, frame)
            # The first frame may be published before the subscribers' side has matched: resend.
            while not self.spin_until(
                lambda s=stamp: s in self.commands, 2.0 if k == 0 else args.step_timeout
            ):
                if k > 0:
                    self.node.get_logger().error(
                        f"no command for frame {k} in {args.step_timeout} s"
                    )
                    return 1
                sent = self.publish_frame(k, stamp, frame)
            truth_box = tuple(float(v) for v in seq.gt[k])
            ray = self.renderer.target_ray(truth_box, self.head.pan, self.head.tilt)
            az, el = (float(a[0]) for a in rays_to_angles(ray))
            if k == 0 and args.init:
                box = self.renderer.view_box(truth_box, self.head.pan, self.head.tilt)
                request = InitTarget.Request(box=box_to_bbox(box), label="target")
                request.stamp.sec, request.stamp.nanosec = divmod(stamp, 1_000_000_000)
                future = self.init_client.call_async(request)
                self.spin_until(future.done, args.step_timeout)
                response = future.result()
                if response is None or not response.success:
                    why = response.message if response else "no response"
                    self.node.get_logger().error(f"init_target failed: {why}")
                    return 1
            # The target message answered first (the servo reacts to it); it is here or close.
            self.spin_until(lambda s=stamp: s in self.targets, 1.0)
            cmd = self.commands[stamp].twist.angular
            target = self.targets.get(stamp)
            rows.append(
                {
                    "frame": k,
                    "t": (stamp - base) / 1e9,
                    "pan_deg": math.degrees(self.head.pan),
                    "tilt_deg": math.degrees(self.head.tilt),
                    "true_azimuth_deg": math.degrees(az),
                    "true_elevation_deg": math.degrees(el),
                    "error_deg": math.degrees(math.acos(min(1.0, float(ray[2])))),
                    "measured_azimuth_deg": math.degrees(target.azimuth) if target else math.nan,
                    "measured_elevation_deg": math.degrees(target.elevation)
                    if target
                    else math.nan,
                    "state": int(target.state) if target else -1,
                    "cmd_yaw_rate_dps": math.degrees(cmd.z),
                    "cmd_pitch_rate_dps": math.degrees(cmd.y),
                    "loop_latency_ms": (self.received[stamp] - sent) * 1e3,
                }
            )
            if args.video:
                video = self._write_video(video, rows[-1], truth_box, target)
            pending.append((cmd.z, cmd.y))
            yaw_rate, pitch_rate = pending.pop(0)
            self.head.move(yaw_rate, pitch_rate, period_ns / 1e9)
        if video is not None:
            video.release()
        write_csv(Path(args.out) / "loop.csv", rows)
        return 0

    def _write_video(self, video, row: dict, truth_box, target: TargetState | None):
        canvas = self.last_view.copy()
        height, width = canvas.shape[:2]
        if video is None:
            path = str(Path(self.args.out) / "viewport.mp4")
            video = cv2.VideoWriter(
                path, cv2.VideoWriter_fourcc(*"mp4v"), self.args.fps, (width, height)
            )
        cx, cy = (self.renderer.view.k[0, 2], self.renderer.view.k[1, 2])
        cv2.drawMarker(canvas, (round(cx), round(cy)), (255, 255, 255), cv2.MARKER_CROSS, 24, 1)
        box = self.renderer.view_box(truth_box, self.head.pan, self.head.tilt)
        x, y, w, h = (round(v) for v in box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 255), 1)
        if target is not None and target.valid:
            x, y = round(target.u - target.width / 2), round(target.v - target.height / 2)
            w, h = round(target.width), round(target.height)
            cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 220, 0), 2)
            px, py = round(target.predicted_u), round(target.predicted_v)
            cv2.circle(canvas, (px, py), 4, (255, 0, 255), -1)
        text = f"t={row['t']:.2f}s error {row['error_deg']:.2f} deg"
        text += f" pan {row['pan_deg']:.1f} tilt {row['tilt_deg']:.1f}"
        cv2.putText(
            canvas, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA
        )
        video.write(canvas)
        return video


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="siam-pantilt-sim", description=__doc__.splitlines()[0])
    parser.add_argument("sequence", help="annotated sequence folder (VOT, OTB, ... layouts)")
    parser.add_argument("--out", default="out/servo", help="folder for loop.csv (and video)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the source")
    parser.add_argument("--size", default="640x480", help="viewport size WxH")
    parser.add_argument("--hfov", type=float, default=30.0, help="viewport field of view (deg)")
    parser.add_argument("--source-hfov", type=float, default=60.0, help="source's (deg)")
    parser.add_argument("--pan", type=float, default=0.0, help="initial pan (deg, + left)")
    parser.add_argument("--tilt", type=float, default=0.0, help="initial tilt (deg, + down)")
    parser.add_argument("--max-rate", type=float, default=120.0, help="head rate limit (deg/s)")
    parser.add_argument("--delay", type=int, default=1, help="actuation delay in frames")
    parser.add_argument("--frames", type=int, default=0, help="0: the whole sequence")
    parser.add_argument("--init", action="store_true", help="init the tracker on the true box")
    parser.add_argument("--video", action="store_true", help="write viewport.mp4")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for peers")
    parser.add_argument("--step-timeout", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_node_tool(
        "siam-pantilt-sim", "pantilt_sim", parse_args, lambda n, a: Simulator(n, a).run(), argv
    )


if __name__ == "__main__":
    sys.exit(main())
