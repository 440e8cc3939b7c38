"""Image and box conversions on real frames: every encoding, row padding, endianness, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from siam_tracker_ros.conversions import (
    bbox_to_box,
    bgr_to_image,
    box_to_bbox,
    compressed_to_bgr,
    image_to_bgr,
    stamp_ns,
)

FRAME = Path(__file__).resolve().parents[3] / "shared/data/sequences/otb/Crossing/img/0001.jpg"


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    if not FRAME.exists():
        pytest.skip(f"{FRAME} absent")
    return cv2.imread(str(FRAME), cv2.IMREAD_COLOR)


def message(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """An Image message as a camera driver would fill it, with ``pad`` bytes after each row."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    if pixels.dtype == np.uint16:
        rows = rows.astype(">u2" if bigendian else "<u2")
    raw = rows.view(np.uint8).reshape(height, -1)
    padded = np.zeros((height, raw.shape[1] + pad), np.uint8)
    padded[:, : raw.shape[1]] = raw
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=padded.tobytes(),
    )


@pytest.mark.parametrize("pad", [0, 7])
def test_colour_encodings_round_to_the_same_bgr(bgr, pad) -> None:
    cases = {
        "bgr8": bgr,
        "rgb8": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
        "bgra8": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "rgba8": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
    }
    for encoding, pixels in cases.items():
        out = image_to_bgr(message(pixels, encoding, pad))
        assert out.shape == bgr.shape and out.dtype == np.uint8, encoding
        np.testing.assert_array_equal(out, bgr, err_msg=encoding)


def test_mono8_and_mono16_both_endians(bgr) -> None:
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    out = image_to_bgr(message(gray, "mono8", pad=3))
    np.testing.assert_array_equal(out[:, :, 0], gray)
    np.testing.assert_array_equal(out[:, :, 2], gray)
    deep = gray.astype(np.uint16) * 16  # a 12-bit camera
    for bigendian in (False, True):
        out = image_to_bgr(message(deep, "mono16", 2, bigendian), mono16_max=4095.0)
        expected = np.clip(deep.astype(np.float32) * (255.0 / 4095.0), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(out[:, :, 1], expected)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda m: setattr(m, "encoding", "yuv422"), "unsupported image encoding 'yuv422'"),
        (lambda m: setattr(m, "step", 10), "step 10 <"),
        (lambda m: setattr(m, "data", bytes(100)), "data has 100 bytes"),
        (lambda m: (setattr(m, "height", 0), setattr(m, "data", b"")), "empty image"),
    ],
)
def test_malformed_images_are_named(bgr, mutate, words) -> None:
    msg = message(bgr, "bgr8")
    mutate(msg)
    with pytest.raises(ValueError, match=words):
        image_to_bgr(msg)


def test_compressed_images(bgr) -> None:
    ok, jpeg = cv2.imencode(".png", bgr)
    assert ok
    msg = CompressedImage(format="png", data=jpeg.tobytes())
    np.testing.assert_array_equal(compressed_to_bgr(msg), bgr)
    with pytest.raises(ValueError, match="neither JPEG nor PNG"):
        compressed_to_bgr(CompressedImage(format="jpeg", data=b"not an image"))
    with pytest.raises(ValueError, match="empty compressed image"):
        compressed_to_bgr(CompressedImage(format="jpeg"))


def test_bgr_to_image_round_trip(bgr) -> None:
    msg = bgr_to_image(bgr)
    assert (msg.encoding, msg.step, msg.height, msg.width) == (
        "bgr8",
        bgr.shape[1] * 3,
        *bgr.shape[:2],
    )
    np.testing.assert_array_equal(image_to_bgr(msg), bgr)
    with pytest.raises(ValueError, match="BGR uint8"):
        bgr_to_image(bgr[:, :, 0])


def test_boxes_use_the_centre_in_vision_msgs() -> None:
    bbox = box_to_bbox((315.0, 140.0, 112.0, 96.0))
    assert (bbox.center.position.x, bbox.center.position.y) == (371.0, 188.0)
    assert (bbox.size_x, bbox.size_y) == (112.0, 96.0)
    assert bbox_to_box(bbox) == (315.0, 140.0, 112.0, 96.0)


def test_stamps_become_exact_nanoseconds() -> None:
    header = Image().header
    header.stamp.sec, header.stamp.nanosec = 1_795_318_661, 21_688_519
    assert stamp_ns(header.stamp) == 1_795_318_661_021_688_519
