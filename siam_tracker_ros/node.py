"""ROS 2 tracker node: camera images in, vision_msgs detections and TrackerStatus out.

Interfaces (names relative to the node's namespace):

* subscribes ``<image_topic>`` (sensor_msgs/Image) or ``<image_topic>/compressed``, QoS from
  parameters (sensor-data defaults: best effort, keep last 1), and ``init_detection``
  (vision_msgs/Detection2D) so a detector can hand over a target;
* services ``init_target`` (siam_tracker_ros/srv/InitTarget: without a target id it replaces
  every target, with one it adds or replaces that target), ``reset`` (std_srvs/Trigger: forget
  every target) and ``reset_target`` (siam_tracker_ros/srv/ResetTarget: one target by id, or all);
* publishes ``detections`` (vision_msgs/Detection2DArray, header copied from the image; one
  detection per target that is TRACKING or RECOVERED, none for a LOST one), ``status``
  (siam_tracker_ros/msg/TrackerStatus: the primary target, the oldest one still tracked) and
  ``status_array`` (siam_tracker_ros/msg/TrackerStatusArray: one status per target) for every
  processed frame, ``debug_image`` when enabled, and
  ``init_accepted`` (vision_msgs/Detection2D, reliable): every init the node accepted, with
  the header of the image the box was applied to, the box, the target id and the label, so
  a bag records when and what the operator (or detector) chose;
* control outputs (``target``, ``target_point``; subscribes ``camera_info`` and a depth image)
  for the primary target: see :mod:`siam_tracker_ros.target`.

Tracking runs on the :class:`~siam_tracker_ros.worker.TrackingWorker` thread, never on the
executor, so services answer while a frame is being tracked and old frames are dropped rather
than queued. :class:`TrackerNode` is configured and active at once; :class:`LifecycleTrackerNode`
loads the model on configure, subscribes on activate and releases the GPU on deactivate.

Reliability: every callback runs behind :func:`guarded`, and :func:`spin` catches what escapes
rclpy's own callbacks (its parameter services), so no message or request ends the process; each
failure is logged once per kind with where it happened and counted in ``TrackerStatus.errors``.
Parameters are validated (``params.validate``) at start-up, where a bad one stops the node with
one line ``cannot start: <name>=<value>: <why>``, and on every change, which is applied live or
refused with the reason, so ``get_parameters`` always reports what the node is using.
"""

from __future__ import annotations

import faulthandler
import functools
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import cv2
import rclpy
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from siam_core.threads import set_threads
from siam_core.tracker import Tracker, TrackState
from siam_tracker_ros.conversions import (
    bbox_to_box,
    bgr_to_image,
    box_to_bbox,
    describe_bbox,
    message_to_bgr,
    stamp_ns,
)
from siam_tracker_ros.lifetime import close_node, run_executor
from siam_tracker_ros.msg import TrackerStatus, TrackerStatusArray
from siam_tracker_ros.params import DEFAULTS, MAX_LABEL, PARAMETERS, Param, ParamError, validate
from siam_tracker_ros.srv import InitTarget, ResetTarget
from siam_tracker_ros.target import TargetOutput
from siam_tracker_ros.worker import Outcome, TargetOutcome, TrackingWorker

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
    """The frame with each target's box and search region, its id, state and score written
    beside it, and the primary target's state in the corner."""
    canvas = image.copy()
    font = cv2.FONT_HERSHEY_SIMPLEX
    for target in outcome.all_targets():
        result, colour = target.result, STATE_COLOURS[target.state]
        x, y, w, h = (round(v) for v in result.search_region)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (160, 160, 160), 1)
        x, y, w, h = (round(v) for v in result.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 2)
        label = f"{target.target_id} {target.state.name} {result.score:.2f}"
        cv2.putText(canvas, label, (x, max(12, y - 4)), font, 0.45, colour, 1, cv2.LINE_AA)
    colour, result = STATE_COLOURS[outcome.state], outcome.result
    text = outcome.state.name + (f" {result.score:.2f}" if result is not None else "")
    cv2.putText(canvas, text, (8, 24), font, 0.7, colour, 2, cv2.LINE_AA)
    return canvas


# Parameters whose change rebuilds the tracker (the old one serves until the new one is ready).
RELOAD = frozenset(
    {"model", "weights", "device", "long_term", "report_lost", "online", "precision", "graph_mode"}
)
THRESHOLDS = frozenset({"lost_threshold", "recover_threshold", "appearance_low", "appearance_high"})
RESUBSCRIBE = frozenset({"image_topic", "compressed", "qos_reliability", "qos_depth"})
_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER}
_TYPES |= {float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def descriptor(p: Param) -> ParameterDescriptor:
    """The ROS descriptor of a parameter: type, range and read-only flag for introspection."""
    d = ParameterDescriptor(
        description=p.description, type=_TYPES[type(p.default)], read_only=p.read_only
    )
    if p.minimum is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
        d.integer_range = [IntegerRange(from_value=int(p.minimum), to_value=int(p.maximum))]
    elif p.minimum is not None and isinstance(p.default, float):
        d.floating_point_range = [
            FloatingPointRange(from_value=float(p.minimum), to_value=float(p.maximum))
        ]
    return d


def guarded(where: str) -> Callable:
    """Wrap a callback so that no exception leaves it: it is reported (logged once per kind,
    counted) and a service gets ``success=False`` with the reason."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def run(self: TrackerLogic, *args: Any) -> Any:
            try:
                return method(self, *args)
            except Exception as exc:
                self._report(where, exc)
                response = args[-1] if len(args) == 2 else None
                if response is not None and hasattr(response, "success"):
                    response.success = False
                    response.message = f"internal error ({type(exc).__name__}: {exc})"
                return response

        return run

    return wrap


class TrackerLogic:
    """What the plain and the lifecycle node share; mixed into an rclpy ``Node`` class."""

    def _declare_tracker_parameters(self) -> None:
        """Declare the parameters; an unusable override raises ``ParamError`` (cannot start)."""
        self._errors = 0
        self._errors_lock = threading.Lock()
        self._seen_errors: set[tuple[str, str, str]] = set()
        self._worker: TrackingWorker | None = None
        self._tracker: Tracker | None = None
        self._device = "cpu"
        self._runtime = ""  # "backend precision" the tracker runs (resolve_runtime's choice)
        self._image_sub = None
        self._init_sub = None
        self._debug_pub = None
        self._active = False
        overrides = {
            name: param.value
            for name, param in self._parameter_overrides.items()
            if name in DEFAULTS
        }
        validate(overrides)  # before rclpy sees them: our message names parameter and value
        for p in PARAMETERS:
            value = overrides.get(p.name, p.default)
            if isinstance(p.default, float) and isinstance(value, int):
                # `lost_threshold:=1` is an integer to rclpy; the parameter is a double
                self._parameter_overrides[p.name] = Parameter(p.name, value=float(value))
            self.declare_parameter(p.name, p.default, descriptor(p))
        self._params = self._read_tracker_parameters()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._guard_rclpy_services()

    def _read_tracker_parameters(self) -> dict[str, Any]:
        return validate({p.name: self.get_parameter(p.name).value for p in PARAMETERS})

    # -- failures ----------------------------------------------------------------------------
    def _report(self, where: str, exc: BaseException) -> None:
        """Count an unexpected exception; log it with its origin the first time of its kind."""
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        origin = f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "unknown"
        kind = (where, type(exc).__name__, origin)
        with self._errors_lock:
            self._errors += 1
            first = kind not in self._seen_errors
            self._seen_errors.add(kind)
        if first:
            self.get_logger().error(
                f"{where}: {type(exc).__name__}: {exc} (at {origin}); the node carries on, "
                "further errors of this kind are only counted (TrackerStatus.errors)"
            )

    def _guard_rclpy_services(self) -> None:
        """rclpy's own services (parameters, lifecycle) raise on some malformed requests, e.g.
        a parameter of an unknown type; wrap them so the client still gets an answer."""
        for service in list(self.services):
            service.callback = self._guard_service(service.srv_name, service.callback)

    def _guard_service(self, name: str, callback: Callable) -> Callable:
        @functools.wraps(callback)
        def run(request: Any, response: Any) -> Any:
            try:
                return callback(request, response)
            except Exception as exc:
                self._report(f"service {name}", exc)
                failed = SetParametersResult(
                    successful=False, reason=f"refused: {type(exc).__name__}: {exc}"
                )
                if hasattr(response, "results") and hasattr(request, "parameters"):
                    done = list(response.results)  # SetParameters is per parameter
                    response.results = done + [failed] * (len(request.parameters) - len(done))
                elif isinstance(getattr(response, "result", None), SetParametersResult):
                    response.result = failed
                return response

        return run

    # -- lifecycle steps ---------------------------------------------------------------------
    def _configure(self) -> None:
        """Load the model and create publishers and services (no subscriptions yet)."""
        self._params = params = self._read_tracker_parameters()
        self._threads = set_threads(params["torch_threads"])  # 0: auto (siam_core.threads)
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # counted instead
        self._load_model()
        self._det_pub = self.create_publisher(Detection2DArray, "detections", 10)
        self._status_pub = self.create_publisher(TrackerStatus, "status", 10)
        self._status_array_pub = self.create_publisher(TrackerStatusArray, "status_array", 10)
        self._init_pub = self.create_publisher(Detection2D, "init_accepted", 10)
        self._set_debug_publisher(params["publish_debug_image"])
        self._target_out = TargetOutput(self, params)
        group = MutuallyExclusiveCallbackGroup()  # services never wait behind image callbacks
        self._tracker_services = [
            self.create_service(
                InitTarget, "init_target", self._on_init_target, callback_group=group
            ),
            self.create_service(Trigger, "reset", self._on_reset, callback_group=group),
            self.create_service(
                ResetTarget, "reset_target", self._on_reset_target, callback_group=group
            ),
        ]

    def _build_tracker(self, params: dict[str, Any]) -> tuple[Tracker, str, str]:
        """(tracker, device, "backend precision" resolved) for ``params``; failures are
        ``ParamError`` naming the parameter to blame."""
        from siam_core.zoo import (  # torch: not needed for --help
            OnlineUnsupported,
            backend_device,
            load_tracker,
            resolve_runtime,
        )

        requested = params["device"]
        try:
            backend, precision = resolve_runtime(
                params["backend"],
                params["precision"],
                requested,
                params["model"],
                params["weights"],
                params["graph_mode"],
            )
        except ValueError as exc:  # e.g. damaged shipped int8 graphs
            raise ParamError("precision", params["precision"], str(exc)) from exc
        except RuntimeError as exc:  # e.g. cuda asked for, none visible
            raise ParamError("device", requested, str(exc)) from exc
        try:
            device = backend_device(backend, requested)
        except (ValueError, RuntimeError) as exc:
            raise ParamError("device", requested, str(exc)) from exc
        long_term = self._long_term_overrides(params)
        # the classifier trains on a worker thread: no frame waits for an update
        online = {"async_update": True} if params["online"] else None
        blame = "weights" if params["weights"] else "model"

        def load(online: dict[str, Any] | None) -> Tracker:
            tracker = load_tracker(
                params["model"],
                params["weights"],
                device,
                long_term,
                backend=backend,
                threads=self._threads,  # resolved: 0 would be a runtime's all-cores default
                online=online,
                precision=precision,
                graph_mode=params["graph_mode"],
            )
            # before any target: a first target's one-off costs would drop its first frames
            tracker.warm_up()
            return tracker

        try:
            try:
                tracker = load(online)
            except OnlineUnsupported as exc:
                # online is on by default: a model DROL cannot wrap (a SiamFC model without a
                # drol_ preset, DaSiamRPN's official conventions) tracks without it, said once
                if online is None:
                    raise
                self.get_logger().warning(f"online:=true not applied: {exc}")
                tracker = load(None)
        except (ValueError, RuntimeError, OSError) as exc:
            if long_term and ("threshold" in str(exc) or "appearance" in str(exc)):
                name = _blamed(exc)
                raise ParamError(name, params[name], _user_names(exc)) from exc
            for option in ("graph_mode", "precision"):  # e.g. cuda_graph where auto found no GPU
                if option in str(exc) and params[option] != DEFAULTS[option]:
                    raise ParamError(option, params[option], str(exc)) from exc
            if isinstance(exc, RuntimeError) and device.startswith("cuda"):
                blame = "device"  # e.g. CUDA out of memory
            raise ParamError(blame, params[blame], str(exc)) from exc
        return tracker, device, f"{backend} {precision}"

    @staticmethod
    def _long_term_overrides(params: dict[str, Any]) -> dict[str, Any] | None:
        """The state machine's settings the parameters ask for (a ``LongTermConfig`` mapping),
        None where neither ``long_term`` nor ``report_lost`` wants one; reporting only skips
        the appearance check (``longterm.REPORT_ONLY`` says why)."""
        from siam_core.tracker.longterm import REPORT_ONLY  # torch: not needed for --help

        if not (params["long_term"] or params["report_lost"]):
            return None
        chosen = {
            "enter_threshold": params["lost_threshold"],
            "leave_threshold": params["recover_threshold"],
        }
        if params["long_term"]:
            chosen.update(
                appearance_low=params["appearance_low"], appearance_high=params["appearance_high"]
            )
        given = {key: value for key, value in chosen.items() if value != -1.0}
        return given if params["long_term"] else {**given, **REPORT_ONLY}

    def _load_model(self) -> None:
        params = self._params
        self._tracker, self._device, self._runtime = self._build_tracker(params)
        if params["device"] == "auto" and self._device == "cpu":
            self.get_logger().info("no CUDA device visible to PyTorch: tracking on the CPU")
        self._worker = TrackingWorker(
            self._tracker,
            self._convert,
            self._publish_outcome,
            lambda text: self.get_logger().warning(text, throttle_duration_sec=2.0),
            buffer_size=params["buffer_size"],
            report=self._report,
            max_targets=params["max_targets"],
        )
        self.get_logger().info(
            f"model {self._tracker.name} loaded on {self._device}, backend {self._runtime} "
            f"(asked: {params['backend']} {params['precision']}; CPU threads: {self._threads})"
        )

    def _set_debug_publisher(self, enabled: bool) -> None:
        if enabled and self._debug_pub is None:
            self._debug_pub = self.create_publisher(Image, "debug_image", 2)
        elif not enabled and self._debug_pub is not None:
            publisher, self._debug_pub = self._debug_pub, None
            self.destroy_publisher(publisher)

    def _subscribe_images(self) -> None:
        """(Re)subscribe the camera with the current parameters; the old subscription is only
        dropped once the new one exists."""
        params = self._params
        qos = image_qos(params["qos_reliability"], params["qos_depth"])
        topic = params["image_topic"]
        if params["compressed"]:
            sub = self.create_subscription(
                CompressedImage, f"{topic}/compressed", self._on_image, qos
            )
        else:
            sub = self.create_subscription(Image, topic, self._on_image, qos)
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
        self._image_sub = sub
        self.get_logger().info(f"tracking images from {sub.topic_name}")

    # -- live parameter changes --------------------------------------------------------------
    def _on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Validate a change and apply it, or refuse it with the reason (nothing is stored)."""
        updates = {p.name: p.value for p in parameters if p.name in DEFAULTS}
        if not updates:
            return SetParametersResult(successful=True)
        try:
            new = validate({**self._params, **updates})
            self._apply(new)
        except ParamError as exc:
            self.get_logger().warning(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        except Exception as exc:
            self._report("set_parameters", exc)
            return SetParametersResult(successful=False, reason=f"not applied: {exc}")
        return SetParametersResult(successful=True)

    def _apply(self, new: dict[str, Any]) -> None:
        """Make the node use ``new``; raises ``ParamError`` (and changes nothing) if it cannot."""
        old = self._params
        changed = {name for name in new if new[name] != old[name]}
        if self._worker is None:  # not configured: configure reads the parameters
            self._params = new
            return
        tracker, device, runtime = None, self._device, self._runtime
        if changed & RELOAD:
            tracker, device, runtime = self._build_tracker(new)
        elif changed & THRESHOLDS and isinstance(self._tracker, _long_term_tracker_class()):
            self._worker.set_long_term(self._long_term_config(new))
        if self._active and changed & RESUBSCRIBE:
            self._params = new
            try:
                self._subscribe_images()
            except Exception as exc:
                self._params = old
                raise ParamError("image_topic", new["image_topic"], str(exc)) from exc
        if tracker is not None:
            self._worker.replace_tracker(tracker)
            self._tracker, self._device, self._runtime = tracker, device, runtime
            self.get_logger().info(
                f"model {tracker.name} loaded on {device}, backend {runtime}; target dropped"
            )
        if "buffer_size" in changed:
            self._worker.resize_buffer(new["buffer_size"])
        if "max_targets" in changed:  # targets already tracked are kept
            self._worker.max_targets = new["max_targets"]
        if "publish_debug_image" in changed:
            self._set_debug_publisher(new["publish_debug_image"])
        self._params = new

    def _long_term_config(self, params: dict[str, Any]) -> Any:
        from siam_core.tracker.longterm import LongTermConfig  # torch: not needed for --help
        from siam_core.zoo import long_term_settings

        inner = self._tracker.tracker
        try:
            overrides = long_term_settings(inner.cfg, self._long_term_overrides(params)) or {}
            # as the build chose them: online thresholds where the tracker runs a classifier
            return LongTermConfig.for_tracker(inner, **overrides)
        except ValueError as exc:
            name = _blamed(exc)
            raise ParamError(name, params[name], _user_names(exc)) from exc

    def _activate(self) -> None:
        if self._worker is None:  # released by deactivate
            self._load_model()
        self._subscribe_images()
        self._init_sub = self.create_subscription(
            Detection2D, "init_detection", self._on_detection, 10
        )
        self._target_subs = self._target_out.subscribe()
        self._worker.start()
        self._active = True

    def _deactivate(self) -> None:
        """Unsubscribe, stop the worker and, on a GPU, release the model's memory."""
        self._active = False
        for sub in (self._image_sub, self._init_sub):
            if sub is not None:
                self.destroy_subscription(sub)
        self._image_sub = self._init_sub = None
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
        for name in ("_det_pub", "_status_pub", "_status_array_pub", "_debug_pub", "_init_pub"):
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
        params = self._params
        return message_to_bgr(
            msg, params["mono16_max"], params["max_image_pixels"], self._decoder_message
        )

    def _decoder_message(self, text: str) -> None:
        self.get_logger().warning(f"image decoder: {text}", throttle_duration_sec=5.0)

    @guarded("image callback")
    def _on_image(self, msg: Image | CompressedImage) -> None:
        self._worker.submit(msg, stamp_ns(msg.header.stamp))

    @guarded("init_target")
    def _on_init_target(
        self, request: InitTarget.Request, response: InitTarget.Response
    ) -> InitTarget.Response:
        if not self._active or self._worker is None:
            response.success, response.message = False, "tracker is not active"
            return response
        if len(request.label) > MAX_LABEL:
            response.success = False
            response.message = f"label longer than {MAX_LABEL} characters"
            return response
        bad_id = _bad_target_id(request.target_id)
        if bad_id:
            response.success, response.message = False, bad_id
            self.get_logger().warning(f"init_target: {bad_id}")
            return response
        image = request.image if len(request.image.data) > 0 else None
        label = request.label or self._params["target_label"]
        ok, message, target_id = self._worker.init_target(
            bbox_to_box(request.box), stamp_ns(request.stamp), image, label, request.target_id
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

    @guarded("reset")
    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self._worker is not None:
            self._worker.reset()
        response.success, response.message = True, "every target forgotten; state IDLE"
        return response

    @guarded("reset_target")
    def _on_reset_target(
        self, request: ResetTarget.Request, response: ResetTarget.Response
    ) -> ResetTarget.Response:
        if self._worker is None:
            response.success, response.message = False, "tracker is not configured"
            return response
        response.success, response.message = self._worker.reset(request.target_id)
        response.target_ids = self._worker.target_ids
        if response.success:
            self.get_logger().info(f"reset_target: {response.message}")
        else:
            self.get_logger().warning(f"reset_target: {response.message}")
        return response

    @guarded("init_detection")
    def _on_detection(self, msg: Detection2D) -> None:
        """Hand-over from a detector: its box, stamp and best class label start a new target."""
        label = self._params["target_label"]
        if msg.results:
            best = max(msg.results, key=lambda r: r.hypothesis.score)
            label = best.hypothesis.class_id[:MAX_LABEL] or label
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
        """Runs on the worker thread: detections, status, status_array, the optional debug
        image and the control outputs."""
        header = outcome.frame.msg.header
        targets = outcome.all_targets()
        detections = Detection2DArray(header=header)
        for target in targets:
            if target.state in (TrackState.TRACKING, TrackState.RECOVERED):
                detection = Detection2D(header=header, id=target.target_id)
                detection.bbox = box_to_bbox(target.result.box)
                hypothesis = ObjectHypothesisWithPose()
                hypothesis.hypothesis.class_id = target.label
                hypothesis.hypothesis.score = float(target.result.score)
                detection.results.append(hypothesis)
                detections.detections.append(detection)
        self._det_pub.publish(detections)

        primary = targets[0] if targets else None
        self._status_pub.publish(self._status(outcome, primary))
        statuses = [self._status(outcome, target) for target in targets]
        self._status_array_pub.publish(TrackerStatusArray(header=header, targets=statuses))
        debug_pub = self._debug_pub
        if debug_pub is not None and outcome.image is not None:
            debug_pub.publish(bgr_to_image(draw(outcome.image, outcome), header))
        self._target_out.publish(outcome)

    def _status(self, outcome: Outcome, target: TargetOutcome | None) -> TrackerStatus:
        """The TrackerStatus of one target on this frame (IDLE without a target)."""
        counters = outcome.counters
        status = TrackerStatus(
            header=outcome.frame.msg.header,
            state=int(target.state) if target else int(TrackState.IDLE),
            target_id=target.target_id if target else "",
            score=float(target.result.score) if target else 0.0,
            latency_ms=float(outcome.latency_ms),
            frames_received=counters.received,
            frames_processed=counters.processed,
            frames_dropped=counters.dropped,
            frames_rejected=counters.rejected,
            errors=self._errors,
            device=self._device,
            model=self._tracker.name,
        )
        if target is not None:
            status.search_region = box_to_bbox(target.result.search_region)
        return status


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


def _long_term_tracker_class() -> type:
    from siam_core.tracker.longterm import LongTermTracker  # torch: not needed for --help

    return LongTermTracker


def _bad_target_id(target_id: str) -> str:
    """Why ``target_id`` cannot name a target (empty: it can; an empty id is allowed)."""
    if len(target_id) > MAX_LABEL:
        return f"target_id longer than {MAX_LABEL} characters"
    if not target_id.isprintable() or target_id != target_id.strip():
        return f"target_id {target_id!r} has control characters or surrounding spaces"
    return ""


def _blamed(exc: Exception) -> str:
    """The node parameter a long-term config error is about."""
    return "appearance_low" if "appearance" in str(exc) else "lost_threshold"


def _user_names(exc: Exception) -> str:
    """A long-term config error in the node's parameter names rather than the core's."""
    text = str(exc).replace("longterm.enter_threshold", "lost_threshold")
    text = text.replace("longterm.appearance_low", "appearance_low")
    return text.replace("leave_threshold", "recover_threshold")


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
    """Run one tracker node until shutdown; a bad configuration exits with status 1 and one
    line ``cannot start: ...``. An exception escaping any callback (ours are guarded; rclpy's
    own parameter services are not) is reported and the executor carries on."""
    argv = sys.argv if args is None else args
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(usage(Path(argv[0]).name if argv else NODE_NAME))
        return 0
    # PyTorch loads here, before the node is on the graph (not in the lifecycle's configure
    # transition, whose caller waits for the answer); only --help goes without it.
    import siam_core.zoo  # noqa: F401

    # a crash in native code (DDS, PyTorch, OpenVINO) leaves every thread's Python stack in the
    # log instead of a bare "Segmentation fault"
    faulthandler.enable()
    try:
        rclpy.init(args=args)
        node = node_class()
    except Exception as exc:  # the one line a user needs, never a traceback
        why = str(exc) if isinstance(exc, ParamError) else f"{type(exc).__name__}: {exc}"
        print(f"[{NODE_NAME}] cannot start: {why}", file=sys.stderr)
        # The half-built node's handles outlive their context. The interpreter's teardown
        # crashed now and again with them (SIGSEGV instead of status 1, seen under load), and
        # once (a clean-clone test run, 2026-12-02) so did something between this message and
        # the exit, which then still shut the context down. Nothing of ours is open yet, so
        # the process ends here, and the context is left to the exit.
        _exit_now(1)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        run_executor(executor, node.context, lambda exc: node._report("executor callback", exc))
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
    finally:
        close_node(node, executor)
    # The interpreter's exit would join the online classifier's worker thread (concurrent.futures
    # joins its threads at exit). destroy_node cancelled its job, but the thread runs at nice 19
    # and on a busy CPU can take many seconds to reach its next cancel point (the first-frame
    # backbone pass has none): the node then seemed to ignore SIGTERM. Nothing it computes is
    # needed any more, and everything of ours is closed, so the process ends here.
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    """End the process at once, after flushing what it printed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(args: list[str] | None = None) -> int:
    return spin(TrackerNode, args)


def lifecycle_main(args: list[str] | None = None) -> int:
    return spin(LifecycleTrackerNode, args)
