"""ROS 2 tracker node: camera images in, vision_msgs detections and TrackerStatus out.

Interfaces (names relative to the node's namespace):

* subscribes ``<image_topic>`` (sensor_msgs/Image) or ``<image_topic>/compressed``, QoS from
  parameters (sensor-data defaults: best effort, keep last 1), and ``init_detection``
  (vision_msgs/Detection2D) so a detector can hand over a target;
* services ``init_target`` (siam_tracker_ros/srv/InitTarget) and ``reset`` (std_srvs/Trigger);
* publishes ``detections`` (vision_msgs/Detection2DArray, header copied from the image; empty
  while no target is being tracked or it is LOST), ``status`` (siam_tracker_ros/msg/
  TrackerStatus) for every processed frame, ``debug_image`` when enabled, and
  ``init_accepted`` (vision_msgs/Detection2D, reliable): every init the node accepted, with
  the header of the image the box was applied to, the box, the target id and the label, so
  a bag records when and what the operator (or detector) chose;
* control outputs (``target``, ``target_point``; subscribes ``camera_info`` and a depth image):
  see :mod:`siam_tracker_ros.target`.

Tracking runs on the :class:`~siam_tracker_ros.worker.TrackingWorker` thread, never on the
executor, so services answer while a frame is being tracked and old frames are dropped rather
than queued. :class:`TrackerNode` is configured and active at once; :class:`LifecycleTrackerNode`
loads the model on configure, subscribes on activate and releases the GPU on deactivate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.context import Context
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from siam_core.threads import set_threads
from siam_core.tracker import TrackState
from siam_tracker_ros.conversions import (
    bbox_to_box,
    bgr_to_image,
    box_to_bbox,
    describe_bbox,
    message_to_bgr,
    stamp_ns,
)
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.params import PARAMETERS, validate
from siam_tracker_ros.srv import InitTarget
from siam_tracker_ros.target import TargetOutput
from siam_tracker_ros.worker import Outcome, TrackingWorker

NODE_NAME = "tracker_node"
STATE_COLOURS = {
    TrackState.TRACKING: (0, 220, 0),
    TrackState.RECOVERED: (0, 200, 255),
    TrackState.LOST: (0, 0, 255),
    TrackState.IDLE: (200, 200, 200),
}


def image_qos(reliability: str, depth: int) -> QoSProfile:
    reliable = reliability == "reliable"
    policy = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(
        depth=depth,
        history=HistoryPolicy.KEEP_LAST,
        reliability=policy,
        durability=DurabilityPolicy.VOLATILE,
    )


def draw(image: Any, outcome: Outcome) -> Any:
    """The frame with the tracked box, the search region and the state written on it."""
    canvas = image.copy()
    colour = STATE_COLOURS[outcome.state]
    result = outcome.result
    if result is not None:
        x, y, w, h = (round(v) for v in result.search_region)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (160, 160, 160), 1)
        x, y, w, h = (round(v) for v in result.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 2)
    text = outcome.state.name + (f" {result.score:.2f}" if result is not None else "")
    cv2.putText(canvas, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, 2, cv2.LINE_AA)
    return canvas


class TrackerLogic:
    """What the plain and the lifecycle node share; mixed into an rclpy ``Node`` class."""

    def _declare_tracker_parameters(self) -> None:
        for p in PARAMETERS:
            descriptor = ParameterDescriptor(description=p.description)
            self.declare_parameter(p.name, p.default, descriptor)
        self._worker: TrackingWorker | None = None
        self._tracker = None
        self._device = "cpu"
        self._subscriptions_made: list = []
        self._active = False

    def _read_tracker_parameters(self) -> dict[str, Any]:
        return validate({p.name: self.get_parameter(p.name).value for p in PARAMETERS})

    # -- lifecycle steps ---------------------------------------------------------------------
    def _configure(self) -> None:
        """Load the model and create publishers and services (no subscriptions yet)."""
        self._params = params = self._read_tracker_parameters()
        threads = set_threads(params["torch_threads"])  # 0: auto (siam_core.threads)
        self.get_logger().info(f"PyTorch CPU threads: {threads}")
        self._load_model()
        self._det_pub = self.create_publisher(Detection2DArray, "detections", 10)
        self._status_pub = self.create_publisher(TrackerStatus, "status", 10)
        self._init_pub = self.create_publisher(Detection2D, "init_accepted", 10)
        self._debug_pub = None
        if params["publish_debug_image"]:
            self._debug_pub = self.create_publisher(Image, "debug_image", 2)
        self._target_out = TargetOutput(self, params)
        group = MutuallyExclusiveCallbackGroup()  # services never wait behind image callbacks
        self._tracker_services = [
            self.create_service(
                InitTarget, "init_target", self._on_init_target, callback_group=group
            ),
            self.create_service(Trigger, "reset", self._on_reset, callback_group=group),
        ]

    def _load_model(self) -> None:
        from siam_core.zoo import load_tracker, resolve_device  # torch: not needed for --help

        params = self._params
        requested = params["device"]
        # the ONNX runtimes run on the CPU (params.validate refuses a CUDA device for them)
        self._device = resolve_device(requested if params["backend"] == "torch" else "cpu")
        if requested in ("", "auto") and self._device == "cpu":
            self.get_logger().info("no CUDA device visible to PyTorch: tracking on the CPU")
        long_term = None
        if params["long_term"]:
            chosen = (
                ("enter_threshold", params["lost_threshold"]),
                ("leave_threshold", params["recover_threshold"]),
            )
            long_term = {key: value for key, value in chosen if value != -1.0}
        # the classifier trains on a worker thread: no frame waits for an update
        online = {"async_update": True} if params["online"] else None
        self._tracker = load_tracker(
            params["model"],
            params["weights"],
            self._device,
            long_term,
            backend=params["backend"],
            threads=params["torch_threads"],
            online=online,
        )
        self._worker = TrackingWorker(
            self._tracker,
            self._convert,
            self._publish_outcome,
            lambda text: self.get_logger().warning(text, throttle_duration_sec=2.0),
            buffer_size=params["buffer_size"],
        )
        self.get_logger().info(f"model {self._tracker.name} loaded on {self._device}")

    def _activate(self) -> None:
        params = self._params
        if self._worker is None:  # released by deactivate
            self._load_model()
        qos = image_qos(params["qos_reliability"], params["qos_depth"])
        topic = params["image_topic"]
        if params["compressed"]:
            image_sub = self.create_subscription(
                CompressedImage, f"{topic}/compressed", self._on_image, qos
            )
        else:
            image_sub = self.create_subscription(Image, topic, self._on_image, qos)
        init_sub = self.create_subscription(Detection2D, "init_detection", self._on_detection, 10)
        self._subscriptions_made = [image_sub, init_sub]
        self._subscriptions_made += self._target_out.subscribe()
        self._worker.start()
        self._active = True
        self.get_logger().info(f"tracking images from {image_sub.topic_name}")

    def _deactivate(self) -> None:
        """Unsubscribe, stop the worker and, on a GPU, release the model's memory."""
        self._active = False
        for sub in self._subscriptions_made:
            self.destroy_subscription(sub)
        self._subscriptions_made = []
        if self._worker is not None:
            self._worker.stop()
            self._worker.reset()
        if self._device.startswith("cuda"):
            import torch

            self._worker = self._tracker = None
            torch.cuda.empty_cache()

    def _cleanup(self) -> None:
        if self._active:
            self._deactivate()
        for service in getattr(self, "_tracker_services", []):
            self.destroy_service(service)
        self._tracker_services = []
        for name in ("_det_pub", "_status_pub", "_debug_pub", "_init_pub"):
            publisher = getattr(self, name, None)
            if publisher is not None:
                self.destroy_publisher(publisher)
            setattr(self, name, None)
        if getattr(self, "_target_out", None) is not None:
            self._target_out.destroy()
            self._target_out = None
        self._worker = self._tracker = None

    # -- callbacks ---------------------------------------------------------------------------
    def _convert(self, msg: Image | CompressedImage) -> Any:
        return message_to_bgr(msg, self._params["mono16_max"])

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._worker.submit(msg, stamp_ns(msg.header.stamp))

    def _on_init_target(
        self, request: InitTarget.Request, response: InitTarget.Response
    ) -> InitTarget.Response:
        if not self._active or self._worker is None:
            response.success, response.message = False, "tracker is not active"
            return response
        image = request.image if len(request.image.data) > 0 else None
        label = request.label or self._params["target_label"]
        ok, message, target_id = self._worker.init_target(
            bbox_to_box(request.box), stamp_ns(request.stamp), image, label
        )
        if not ok:
            message = f"{message} (box as sent: {describe_bbox(request.box)})"
        response.success, response.message, response.target_id = ok, message, target_id
        # rclpy loggers fix the severity per call site: one call per severity.
        if ok:
            self._announce_init(request.box, image, label, target_id)
            self.get_logger().info(f"init_target: {message}")
        else:
            self.get_logger().warning(f"init_target: {message}")
        return response

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._worker is not None:
            self._worker.reset()
        response.success, response.message = True, "target forgotten; state IDLE"
        return response

    def _on_detection(self, msg: Detection2D) -> None:
        """Hand-over from a detector: its box, stamp and best class label start a new target."""
        label = self._params["target_label"]
        if msg.results:
            best = max(msg.results, key=lambda r: r.hypothesis.score)
            label = best.hypothesis.class_id or label
        ok, message, target_id = self._worker.init_target(
            bbox_to_box(msg.bbox), stamp_ns(msg.header.stamp), None, label
        )
        if not ok:
            message = f"{message} (box as sent: {describe_bbox(msg.bbox)})"
        if ok:
            self._announce_init(msg.bbox, None, label, target_id)
            self.get_logger().info(f"init_detection: {message}")
        else:
            self.get_logger().warning(f"init_detection: {message}")

    def _announce_init(self, box: Any, image: Image | None, label: str, target_id: str) -> None:
        """Publish an accepted init on ``init_accepted``, stamped with the image it used."""
        frame = self._worker.init_frame
        announced = Detection2D(id=target_id, bbox=box)
        announced.header = image.header if image is not None else frame.msg.header
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = label
        hypothesis.hypothesis.score = 1.0
        announced.results.append(hypothesis)
        self._init_pub.publish(announced)

    def _publish_outcome(self, outcome: Outcome) -> None:
        """Runs on the worker thread: detections, status and the optional debug image."""
        header = outcome.frame.msg.header
        result = outcome.result
        detections = Detection2DArray(header=header)
        if result is not None and outcome.state in (TrackState.TRACKING, TrackState.RECOVERED):
            detection = Detection2D(header=header, id=outcome.target_id)
            detection.bbox = box_to_bbox(result.box)
            hypothesis = ObjectHypothesisWithPose()
            hypothesis.hypothesis.class_id = outcome.label
            hypothesis.hypothesis.score = float(result.score)
            detection.results.append(hypothesis)
            detections.detections.append(detection)
        self._det_pub.publish(detections)

        counters = outcome.counters
        status = TrackerStatus(
            header=header,
            state=int(outcome.state),
            target_id=outcome.target_id,
            score=float(result.score) if result is not None else 0.0,
            latency_ms=float(outcome.latency_ms),
            frames_received=counters.received,
            frames_processed=counters.processed,
            frames_dropped=counters.dropped,
            device=self._device,
            model=self._tracker.name,
        )
        if result is not None:
            status.search_region = box_to_bbox(result.search_region)
        self._status_pub.publish(status)
        if self._debug_pub is not None and outcome.image is not None:
            self._debug_pub.publish(bgr_to_image(draw(outcome.image, outcome), header))
        self._target_out.publish(outcome)


class TrackerNode(TrackerLogic, Node):
    """The tracker as a plain node: configured and tracking as soon as it is constructed."""

    def __init__(self, **kwargs: Any) -> None:
        Node.__init__(self, NODE_NAME, **kwargs)
        self._declare_tracker_parameters()
        self._configure()
        self._activate()

    def destroy_node(self) -> None:
        self._cleanup()
        super().destroy_node()


class LifecycleTrackerNode(TrackerLogic, LifecycleNode):
    """The managed variant: configure loads the model, activate subscribes, deactivate frees."""

    def __init__(self, **kwargs: Any) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **kwargs)
        self._declare_tracker_parameters()

    def _step(self, step: Any, name: str) -> TransitionCallbackReturn:
        try:
            step()
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            self.get_logger().error(f"{name} failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._step(self._configure, "configure")

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._step(self._activate, "activate")
        return super().on_activate(state) if result == TransitionCallbackReturn.SUCCESS else result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS


# How often the spinning thread re-checks that the context is still up (see run_executor).
SHUTDOWN_POLL_S = 0.25


def run_executor(executor: Executor, context: Context) -> None:
    """Spin ``executor`` until ``context`` shuts down, with a bounded delay after a signal.

    Why not ``executor.spin()``: rclpy's signal handling thread first triggers the executors'
    signal guard conditions and only then shuts the contexts down (``rclpy/src/rclpy/
    signal_handler.cpp``: ``trigger_guard_conditions(); rclpy::shutdown_contexts();``). An
    executor woken by the guard can check ``context.ok()`` in between, see it still true, and go
    back to an unbounded wait that nothing wakes again: the node then ignores that SIGTERM (a
    second one ends it). SIGINT escapes by a KeyboardInterrupt; SIGTERM has no Python handler.
    Waiting at most ``SHUTDOWN_POLL_S`` per round re-checks the context after every wake-up.
    """
    while context.ok():
        executor.spin_once(timeout_sec=SHUTDOWN_POLL_S)


def usage(prog: str) -> str:
    """``--help``: how to start the node and its parameters (no ROS graph, no model loaded)."""
    from siam_tracker_ros.params import PARAMETERS

    lines = [
        f"usage: {prog} [--ros-args -p NAME:=VALUE ... | --params-file FILE]",
        "",
        "The siam-tracker ROS 2 node: camera images in, vision_msgs detections and",
        "siam_tracker_ros/TrackerStatus out (README: The ROS 2 node). Parameters:",
        "",
    ]
    width = max(len(p.name) for p in PARAMETERS)
    for p in PARAMETERS:
        lines.append(f"  {p.name:<{width}}  {p.description} (default: {p.default!r})")
    return "\n".join(lines)


def spin(node_class: type, args: list[str] | None = None) -> int:
    """Run one tracker node until shutdown; a bad configuration exits with status 1."""
    argv = sys.argv if args is None else args
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(usage(Path(argv[0]).name if argv else NODE_NAME))
        return 0
    # PyTorch loads here, before the node is on the graph (not in the lifecycle's configure
    # transition, whose caller waits for the answer); only --help goes without it.
    import siam_core.zoo  # noqa: F401

    rclpy.init(args=args)
    try:
        node = node_class()
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"[{NODE_NAME}] cannot start: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        run_executor(executor, node.context)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # SIGINT/SIGTERM shut the context down from rclpy's signal handler; the executor can
        # then fail building its wait set. That is the shutdown itself, not an error.
        if rclpy.ok():
            raise
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    return spin(TrackerNode, args)


def lifecycle_main(args: list[str] | None = None) -> int:
    return spin(LifecycleTrackerNode, args)
