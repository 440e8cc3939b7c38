"""The project's recorder, for a machine without ``ros2 bag``: topics of a live graph into a bag.

Like ``ros2 bag record`` it subscribes to each named topic as soon as a publisher appears (also
later in the run), with the publishers' QoS (reliable only when every publisher is reliable, so
it never fails to match a best-effort camera), and writes the serialized messages as they come,
stamped with their arrival time. SIGINT or SIGTERM (or ``--duration``) ends the recording and
closes the bag properly: the storage file is finalised and ``metadata.yaml`` written.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import Writer
from rosbags.typesys.store import Typestore

import siam_tracker_ros  # noqa: F401  (loopback-only DDS profile before rclpy.init)
from siam_tracker_ros.bag.bagfile import BagError, open_writer
from siam_tracker_ros.bagtypes import typestore
from siam_tracker_ros.lifetime import close_node

DEFAULT_TOPICS = (
    "image_raw",
    "image_raw/compressed",
    "detections",
    "status",
    "status_array",
    "init_accepted",
)


def message_class(type_name: str) -> type:
    """``pkg/msg/Name`` -> the rclpy message class."""
    package, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def matching_qos(node: Node, topic: str) -> QoSProfile:
    """Reliable (and transient local) only when every current publisher offers it."""
    offered = [info.qos_profile for info in node.get_publishers_info_by_topic(topic)]
    reliable = bool(offered) and all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(
        q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1000,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class Recorder:
    """Subscribes the wanted topics as they appear and writes every message to ``writer``."""

    def __init__(self, node: Node, writer: Writer, topics: list[str], store: Typestore) -> None:
        self.node, self.writer, self.store = node, writer, store
        self.wanted = [node.resolve_topic_name(t) for t in topics]
        self.counts: dict[str, int] = {}
        self._subscriptions: list = []

    def discover(self) -> None:
        """Subscribe to the wanted topics that now have a publisher and a known type."""
        types = dict(self.node.get_topic_names_and_types())
        for topic in self.wanted:
            if topic in self.counts or topic not in types:
                continue
            type_name = types[topic][0]
            if type_name not in self.store.fielddefs:
                self.node.get_logger().warning(f"{topic}: type {type_name} unknown; not recorded")
                self.counts[topic] = 0
                continue
            connection = self.writer.add_connection(topic, type_name, typestore=self.store)
            qos = matching_qos(self.node, topic)
            self.counts[topic] = 0

            def write(data: bytes, topic: str = topic, connection=connection) -> None:
                self.writer.write(connection, time.time_ns(), data)
                self.counts[topic] += 1

            sub = self.node.create_subscription(
                message_class(type_name), topic, write, qos, raw=True
            )
            self._subscriptions.append(sub)
            reliability = (
                "reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best effort"
            )
            print(f"[siam-bag] recording {topic} ({type_name}, {reliability})", flush=True)


def record(out: Path, topics: list[str], storage: str = "mcap", duration: float = 0.0) -> int:
    """Record until SIGINT/SIGTERM (or ``duration`` seconds); the bag is always closed."""
    writer = open_writer(out, storage)
    rclpy.init()
    node = rclpy.create_node("siam_bag_recorder")
    recorder = Recorder(node, writer, topics, typestore())
    end = time.monotonic() + duration if duration > 0 else None
    next_discovery = 0.0
    try:
        while rclpy.ok() and (end is None or time.monotonic() < end):
            if time.monotonic() >= next_discovery:
                recorder.discover()
                next_discovery = time.monotonic() + 0.2
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():  # a signal shuts the context down mid-wait: that is the normal end
            raise
    finally:
        writer.close()
        close_node(node)
    for topic in recorder.wanted:
        state = f"{recorder.counts[topic]} messages" if topic in recorder.counts else "never seen"
        print(f"[siam-bag] {topic}: {state}", flush=True)
    print(f"[siam-bag] bag closed: {out}", flush=True)
    if not any(recorder.counts.values()):
        raise BagError(f"{out}: none of the topics {recorder.wanted} had a message")
    return 0
