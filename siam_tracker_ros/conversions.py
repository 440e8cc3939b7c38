"""sensor_msgs and vision_msgs <-> NumPy/siam_core, without cv_bridge.

The PyPI ``cv-bridge`` is a ROS 1 port that breaks with NumPy 2, and a bare machine has no other,
so images are converted here: row padding (``step`` larger than a row), the usual encodings,
big-endian ``mono16``, and JPEG/PNG ``CompressedImage``. Every malformed message raises a
``ValueError`` that says what is wrong, so a node can log it and carry on.

Boxes: siam_core uses (x, y, w, h) with (x, y) the top-left corner; vision_msgs ``BoundingBox2D``
uses the centre, so centre = (x + w / 2, y + h / 2) in continuous pixel coordinates.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import BoundingBox2D

# encoding -> (channels, dtype, OpenCV conversion to BGR or None)
ENCODINGS: dict[str, tuple[int, type, int | None]] = {
    "bgr8": (3, np.uint8, None),
    "rgb8": (3, np.uint8, cv2.COLOR_RGB2BGR),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2BGR),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, np.uint8, cv2.COLOR_GRAY2BGR),
    "8UC3": (3, np.uint8, None),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2BGR),
    "16UC1": (1, np.uint16, cv2.COLOR_GRAY2BGR),
}


DEFAULT_MAX_PIXELS = 4096 * 4096


def _check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise ValueError(
            f"{what} of {width}x{height} px exceeds the limit of {max_pixels} pixels "
            "(parameter max_image_pixels)"
        )


def image_to_bgr(
    msg: Image, mono16_max: float = 65535.0, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """A ``sensor_msgs/Image`` as a BGR uint8 (H, W, 3) array.

    ``bgr8`` without row padding is returned as a read-only view of the message's buffer (no
    copy on the hot path); every other case is converted into a new array.

    16-bit images are scaled by ``255 / mono16_max`` (set 4095 for a 12-bit camera). Images
    above ``max_pixels`` are refused before any pixel is touched.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported image encoding '{encoding}'; supported: {sorted(ENCODINGS)}")
    channels, dtype, conversion = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ValueError(f"empty image: {width}x{height}")
    _check_pixels(width, height, max_pixels, "image")
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ValueError(f"step {step} < {row_bytes} bytes of a {width} px {encoding} row")
    data = msg.data
    size = len(data)
    if size != step * height:
        raise ValueError(f"data has {size} bytes, expected step*height = {step}*{height}")
    raw = np.frombuffer(data, np.uint8)  # no copy: bytes, bytearray and array.array alike
    rows = raw.reshape(height, step)[:, :row_bytes]
    pixels = rows.view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    pixels = pixels.reshape(height, width, channels)
    if dtype is np.uint16:
        scale = 255.0 / float(mono16_max)
        pixels = np.clip(pixels.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    if conversion is None:
        return np.ascontiguousarray(pixels)
    source = pixels[:, :, 0] if channels == 1 else np.ascontiguousarray(pixels)
    return cv2.cvtColor(source, conversion)


def compressed_size(data: bytes | memoryview) -> tuple[int, int]:
    """(width, height) a JPEG or PNG declares in its header, read without decoding.

    Only these two formats are accepted (``image_transport``'s compressed formats), so that
    no decoder ever sees a file whose size is unknown beforehand.
    """
    view = memoryview(data).cast("B")  # indexing yields Python ints, whatever ``data`` is
    head = bytes(view[:32])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise ValueError("PNG without a valid IHDR header")
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(view)
    raise ValueError("compressed image is neither JPEG nor PNG (by its signature)")


def _check_png_chunks(data: memoryview) -> None:
    """Every chunk complete with a matching CRC, up to IEND (PNG spec 5.3): libpng prints its
    own errors on stderr for damaged files, so they are refused before it sees them."""
    i, n = 8, len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        end = i + 12 + length
        if end > n:
            break
        kind = data[i + 4 : i + 8]
        if zlib.crc32(data[i + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            raise ValueError(f"PNG chunk {bytes(kind)!r} is damaged (CRC mismatch)")
        if kind == b"IEND":
            return
        i = end
    raise ValueError("truncated PNG (no IEND chunk)")


# JPEG start-of-frame markers (ITU T.81 B.1.1.3): C0-CF except DHT (C4), JPG (C8), DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: memoryview) -> tuple[int, int]:
    """Walk the JPEG marker segments up to the frame header (SOFn) and read its size."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if marker in _SOF:
            if i + 9 > n or length < 8:
                raise ValueError("truncated JPEG frame header")
            height = (data[i + 5] << 8) | data[i + 6]
            width = (data[i + 7] << 8) | data[i + 8]
            return width, height
        if marker in (0xDA, 0xD9) or length < 2:
            break
        i += 2 + length
    raise ValueError("JPEG without a frame header (SOF) before its data")


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _stderr_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Route what C libraries write on file descriptor 2 to ``sink`` while the block runs.

    libjpeg and libpng print warnings ("Corrupt JPEG data: ...") straight to stderr, past
    OpenCV's log level; a node hands them to its throttled logger instead. The descriptor is
    process-wide, so the block is short (one decode) and serialised by a lock.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace").strip()
            if text:
                sink(" | ".join(text.splitlines()))


def compressed_to_bgr(
    msg: CompressedImage,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decoder_messages: Callable[[str], None] | None = None,
) -> np.ndarray:
    """A JPEG/PNG ``sensor_msgs/CompressedImage`` as BGR uint8.

    The size declared in the header is checked against ``max_pixels`` before decoding, so a
    small file declaring a huge image costs nothing; the decoded size must match it. With
    ``decoder_messages``, what the JPEG/PNG libraries print is passed to it, not to stderr.
    """
    if len(msg.data) == 0:
        raise ValueError("empty compressed image")
    buffer = np.frombuffer(msg.data, np.uint8)
    width, height = compressed_size(buffer)
    if width == 0 or height == 0:
        raise ValueError(f"compressed image declares an empty size {width}x{height}")
    _check_pixels(width, height, max_pixels, "compressed image")
    if buffer[:4].tobytes() == b"\x89PNG":
        _check_png_chunks(memoryview(buffer))
    if decoder_messages is None:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    else:
        with _stderr_to(decoder_messages):
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode compressed image (format '{msg.format}')")
    if image.shape[:2] != (height, width):
        raise ValueError(f"decoded {image.shape[1]}x{image.shape[0]}, header said {width}x{height}")
    return image


def message_to_bgr(
    msg: Image | CompressedImage,
    mono16_max: float = 65535.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decoder_messages: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Either image message as BGR uint8: what the node (and a bag replay) tracks on."""
    if isinstance(msg, CompressedImage):
        return compressed_to_bgr(msg, max_pixels, decoder_messages)
    return image_to_bgr(msg, mono16_max, max_pixels)


def bgr_to_image(image: np.ndarray, header: Header | None = None) -> Image:
    """A BGR uint8 array as a ``bgr8`` ``sensor_msgs/Image`` with the given header."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    msg = Image(height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3)
    if header is not None:
        msg.header = header
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def box_to_bbox(box: Sequence[float]) -> BoundingBox2D:
    """(x, y, w, h) top-left box -> ``BoundingBox2D`` (centre and size, pixels)."""
    x, y, w, h = (float(v) for v in box)
    bbox = BoundingBox2D(size_x=w, size_y=h)
    bbox.center.position.x = x + w / 2.0
    bbox.center.position.y = y + h / 2.0
    return bbox


def bbox_to_box(bbox: BoundingBox2D) -> tuple[float, float, float, float]:
    """``BoundingBox2D`` -> (x, y, w, h) top-left box; rotation (theta) is ignored."""
    w, h = float(bbox.size_x), float(bbox.size_y)
    return bbox.center.position.x - w / 2.0, bbox.center.position.y - h / 2.0, w, h


def describe_bbox(bbox: BoundingBox2D) -> str:
    """A ``BoundingBox2D`` in both conventions, for messages: the tracker's errors speak of the
    top-left (x, y, w, h) box, while the request named a centre and a size."""
    x, y, w, h = bbox_to_box(bbox)
    cx, cy = bbox.center.position.x, bbox.center.position.y
    return (
        f"centre ({cx:g}, {cy:g}), size {w:g} x {h:g}; "
        f"as top-left x, y, w, h: ({x:g}, {y:g}, {w:g}, {h:g})"
    )


def stamp_ns(stamp: Any) -> int:
    """A ``builtin_interfaces/Time`` as integer nanoseconds (exact, unlike float seconds)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def depth_to_metres(msg: Image) -> np.ndarray:
    """An aligned depth image (``16UC1`` millimetres or ``32FC1`` metres) as float32 metres.

    Pixels without a depth (0, NaN, infinity) come out as NaN.
    """
    encodings = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}
    if msg.encoding not in encodings:
        raise ValueError(f"unsupported depth encoding '{msg.encoding}'; supported: 16UC1, 32FC1")
    dtype = np.dtype(encodings[msg.encoding]).newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * dtype.itemsize
    if height == 0 or width == 0 or step < row_bytes or len(msg.data) != step * height:
        raise ValueError(
            f"malformed depth image: {width}x{height}, step {step}, {len(msg.data)} bytes"
        )
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row_bytes]
    depth = rows.view(dtype).reshape(height, width).astype(np.float32)
    if dtype.kind == "u":
        depth *= 0.001
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
