"""Hypothesis strategies shared by the core and the live-node fuzz tests."""

from __future__ import annotations

import os

import cv2
import numpy as np
from hypothesis import strategies as st

# Examples per property: few in `make test` (the suite stays fast), many in `make fuzz`.
EXAMPLES = int(os.environ.get("SIAM_FUZZ_EXAMPLES", "25"))

ENCODINGS = ["bgr8", "rgb8", "bgra8", "rgba8", "mono8", "8UC1", "8UC3", "mono16", "16UC1"]


def edge_floats() -> st.SearchStrategy[float]:
    """Floats a careless client sends: ordinary ones, zero, denormals, huge, inf and NaN."""
    return st.one_of(
        st.floats(-2000, 2000),
        st.sampled_from([0.0, -0.0, 1e-200, 5e-324, 1e5, 1e300, float("inf"), float("nan")]),
        st.floats(allow_nan=True, allow_infinity=True),
    )


def box_values() -> st.SearchStrategy[tuple[float, float, float, float]]:
    return st.tuples(edge_floats(), edge_floats(), edge_floats(), edge_floats())


def any_value() -> st.SearchStrategy:
    """A parameter value of any ROS type (and some that are not)."""
    return st.one_of(
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        edge_floats(),
        st.text(max_size=30),
        st.lists(st.integers(-5, 5), max_size=3),
        st.none(),
    )


def _encode(image: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


@st.composite
def compressed_bytes(draw) -> bytes:
    """Valid JPEG/PNG files, truncated or damaged ones, lying headers and plain noise."""
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    image = np.random.default_rng(draw(st.integers(0, 9))).integers(0, 255, (h, w, 3), np.uint8)
    data = _encode(image, draw(st.sampled_from([".jpg", ".png"])))
    how = draw(st.sampled_from(["valid", "truncate", "flip", "huge", "noise", "other"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif how == "huge":
        data = _lie_about_size(data, draw(st.integers(1, 65535)), draw(st.integers(1, 65535)))
    elif how == "noise":
        data = draw(st.binary(max_size=300))
    elif how == "other":
        data = _encode(image, draw(st.sampled_from([".bmp", ".tiff", ".webp"])))
    return data


def _lie_about_size(data: bytes, width: int, height: int) -> bytes:
    """The same file with a header that declares ``width`` x ``height``."""
    if data.startswith(b"\x89PNG"):
        return data[:16] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + data[24:]
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xC3:
            size = height.to_bytes(2, "big") + width.to_bytes(2, "big")
            return data[: i + 5] + size + data[i + 9 :]
        i += 2 + length
    return data


@st.composite
def image_fields(draw) -> dict:
    """The fields of a sensor_msgs/Image, consistent or not."""
    height, width = draw(st.integers(0, 64)), draw(st.integers(0, 64))
    encoding = draw(st.one_of(st.sampled_from(ENCODINGS), st.text(max_size=10)))
    channels = {"mono8": 1, "8UC1": 1, "mono16": 2, "16UC1": 2, "bgra8": 4, "rgba8": 4}
    row = width * channels.get(encoding, 3)
    step = draw(st.one_of(st.just(row), st.integers(0, 300)))
    size = draw(st.one_of(st.just(step * height), st.integers(0, 20000)))
    return {
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": draw(st.integers(0, 1)),
        "step": step,
        "data": bytes(draw(st.binary(min_size=min(size, 64), max_size=min(size, 64))))
        + bytes(max(0, size - 64)),
    }
