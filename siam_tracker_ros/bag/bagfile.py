"""Reading and writing the bags ``siam-bag`` works on, one message at a time.

A bag is a rosbag2 directory (``metadata.yaml`` plus mcap or sqlite3 files). Images are the
``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` topic the node would subscribe to; the
inits the node accepted are ``vision_msgs/Detection2D`` messages on ``init_accepted`` (see the
node). Every problem with a bag raises :class:`BagError`, whose text names the bag and topic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D

from siam_tracker_ros.bagtypes import typestore
from siam_tracker_ros.conversions import bbox_to_box, bgr_to_image, stamp_ns

IMAGE_TYPES: dict[str, type] = {
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CompressedImage": CompressedImage,
}
INIT_TOPIC = "init_accepted"
INIT_TYPE = "vision_msgs/msg/Detection2D"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


class BagError(ValueError):
    """A bag that cannot be used as asked; the message names the bag and the topic."""


@dataclass(frozen=True)
class BagFrame:
    """One image of the bag: its position on the topic, header stamp, log time and message."""

    index: int
    stamp_ns: int
    log_ns: int
    msg: Image | CompressedImage


@dataclass(frozen=True)
class RecordedInit:
    """An init the node accepted: on the image stamped ``stamp_ns``, logged at ``log_ns``."""

    log_ns: int
    stamp_ns: int
    box: tuple[float, float, float, float]
    label: str


def open_bag(path: str | Path) -> Reader:
    """An open reader for ``path``; a missing, unfinished or corrupt bag is a :class:`BagError`."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        storage = sorted(p.name for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        raise BagError(
            f"{path}: no metadata.yaml next to {storage or 'its storage files'}: the bag is "
            f"still being written or its recorder was killed (`siam-bag repair {path} NEW` "
            "rescues the complete messages of an mcap bag; `ros2 bag reindex` rebuilds the "
            "metadata of a bag that was closed)"
        )
    reader = Reader(path)
    try:
        reader.open()
    except (ReaderError, OSError, KeyError, ValueError, struct.error) as exc:
        raise BagError(
            f"{path}: cannot open the bag, truncated or corrupt ({exc}); `siam-bag repair "
            f"{path} NEW` rescues the complete messages of an mcap bag"
        ) from exc
    return reader


def _matches(topic: str, wanted: str) -> bool:
    wanted = wanted.strip("/")
    return topic.strip("/") == wanted or topic.endswith("/" + wanted)


def image_connection(reader: Reader, topic: str) -> Connection:
    """The image connection of ``topic`` (``image_raw`` also finds ``/ns/image_raw`` and, when
    only that exists, ``image_raw/compressed``)."""
    images = [c for c in reader.connections if c.msgtype in IMAGE_TYPES]
    for wanted in (topic, topic.rstrip("/") + "/compressed"):
        found = [c for c in images if _matches(c.topic, wanted)]
        if len(found) > 1:
            names = sorted({c.topic for c in found})
            raise BagError(f"{reader.path}: topic {topic!r} is ambiguous: {names}")
        if found:
            return found[0]
    other = [c for c in reader.connections if _matches(c.topic, topic)]
    if other:
        raise BagError(
            f"{reader.path}: topic {other[0].topic} holds {other[0].msgtype}, not an image "
            f"({', '.join(IMAGE_TYPES)})"
        )
    listed = sorted(f"{c.topic} ({c.msgtype})" for c in reader.connections)
    raise BagError(f"{reader.path}: no image topic {topic!r}; the bag has {listed}")


def cdr_stamp_ns(data: bytes | memoryview) -> int:
    """The ``header.stamp`` of a serialized message whose first field is a ``std_msgs/Header``
    (Image, CompressedImage, Detection2D...), read from the CDR bytes without decoding them."""
    little = bytes(data[1:2]) == b"\x01"
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def frames(reader: Reader, connection: Connection, limit: int = 0) -> Iterator[BagFrame]:
    """The images of ``connection`` in bag order, decoded one at a time (``limit`` 0: all).

    A bag that breaks off mid-stream raises :class:`BagError` after the frames read so far.
    """
    msg_type = IMAGE_TYPES[connection.msgtype]
    index = 0
    try:
        for _, log_ns, data in reader.messages([connection]):
            if limit and index >= limit:
                return
            msg = deserialize_message(bytes(data), msg_type)
            yield BagFrame(index, stamp_ns(msg.header.stamp), log_ns, msg)
            index += 1
    except (ReaderError, OSError, struct.error, ValueError) as exc:
        raise BagError(
            f"{reader.path}: {connection.topic} breaks off after {index} frames: {exc}"
        ) from exc


def frame_stamps(reader: Reader, connection: Connection) -> list[int]:
    """Header stamps of every image, read from the CDR bytes (no image is decoded)."""
    try:
        return [cdr_stamp_ns(data) for _, _, data in reader.messages([connection])]
    except (ReaderError, OSError, struct.error) as exc:
        raise BagError(f"{reader.path}: cannot read {connection.topic}: {exc}") from exc


def recorded_inits(reader: Reader, topic: str = INIT_TOPIC) -> list[RecordedInit]:
    """The inits the node accepted during the recording, in the order it accepted them."""
    connections = [c for c in reader.connections if _matches(c.topic, topic)]
    wrong = [c for c in connections if c.msgtype != INIT_TYPE]
    if wrong:
        raise BagError(f"{reader.path}: {wrong[0].topic} holds {wrong[0].msgtype}, not {INIT_TYPE}")
    if not connections:
        return []
    inits = []
    for _, log_ns, data in reader.messages(connections):
        msg = deserialize_message(bytes(data), Detection2D)
        label = msg.results[0].hypothesis.class_id if msg.results else ""
        inits.append(RecordedInit(log_ns, stamp_ns(msg.header.stamp), bbox_to_box(msg.bbox), label))
    return inits


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """A new rosbag2 writer (format version 9) at ``path``, which must not exist yet."""
    if storage not in STORAGES:
        raise BagError(f"unknown storage {storage!r}; choose {sorted(STORAGES)}")
    path = Path(path)
    if path.exists():
        raise BagError(f"{path} exists already: choose a new bag path")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


def add_topic(writer: Writer, topic: str, msgtype: str) -> Connection:
    return writer.add_connection(topic, msgtype, typestore=typestore())


def image_message(
    image: np.ndarray, stamp: int, frame_id: str, compressed: bool
) -> Image | CompressedImage:
    """A BGR frame as the camera driver would publish it, stamped ``stamp`` ns."""
    if compressed:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise BagError("JPEG encoding failed")
        msg: Image | CompressedImage = CompressedImage(format="jpeg", data=jpeg.tobytes())
    else:
        msg = bgr_to_image(image)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    return msg


def write_message(writer: Writer, connection: Connection, log_ns: int, msg: object) -> None:
    writer.write(connection, log_ns, serialize_message(msg))
