"""Benchmark sequences to bags, and bags to frame folders that ``siam-eval`` reads.

``sequence_to_bag`` plays any sequence the project loads (OTB, VOT, UAV123, LaSOT, a frame
folder...) as a camera: frame k is stamped and logged at ``base + k / fps``, raw ``bgr8`` or
JPEG, and its ground truth goes into the bag directory as ``groundtruth.csv``. ``bag_to_frames``
writes ``img/0001.jpg``... with ``groundtruth_rect.txt`` (the OTB layout; NaN rows where the
target is absent) when the bag has ground truth, else ``init.txt`` from its first recorded
init, plus ``stamps.csv`` mapping frame numbers to stamps.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from siam_core.data.sequences import load_sequence
from siam_tracker_ros.bag.bagfile import (
    BagError,
    add_topic,
    frames,
    image_connection,
    image_message,
    open_bag,
    open_writer,
    recorded_inits,
    write_message,
)
from siam_tracker_ros.bag.groundtruth import (
    GroundTruth,
    find_ground_truth,
    read_ground_truth,
    write_ground_truth,
)
from siam_tracker_ros.conversions import message_to_bgr

BASE_NS = 1_000_000_000_000  # stamps of converted sequences start at 1000 s


def sequence_to_bag(
    source: Path,
    out: Path,
    fps: float = 30.0,
    topic: str = "/image_raw",
    compressed: bool = False,
    storage: str = "mcap",
    max_frames: int = 0,
    frame_id: str = "camera",
    repeat: int = 1,
) -> int:
    """Write ``source`` as a bag at ``out``; returns the number of frames written.

    ``repeat`` > 1 loops the sequence (stamps keep increasing) to make long bags from real
    frames; the ground truth is then repeated with it.
    """
    if fps <= 0:
        raise BagError(f"fps must be > 0, got {fps}")
    seq = load_sequence(source)
    if max_frames:
        seq = seq.head(max_frames)
    topic = "/" + topic.strip("/") + ("/compressed" if compressed else "")
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    writer = open_writer(out, storage)
    stamps = []
    try:
        connection = add_topic(writer, topic, msgtype)
        for k in range(len(seq) * repeat):
            stamp = BASE_NS + round(k * 1e9 / fps)
            msg = image_message(seq.read(k % len(seq)), stamp, frame_id, compressed)
            write_message(writer, connection, stamp, msg)
            stamps.append(stamp)
    finally:
        writer.close()
    boxes = np.tile(seq.gt, (repeat, 1))
    absent = np.tile(seq.absent, repeat)
    gt = GroundTruth(np.where(absent[:, None], np.nan, boxes), absent, str(source))
    if seq.annotated == len(seq):
        write_ground_truth(out / "groundtruth.csv", gt, stamps)
    else:  # only the initial box is public: keep that one as a keyframe-style sparse file
        first = GroundTruth(gt.boxes[:1], gt.absent[:1], str(source))
        write_ground_truth(out / "groundtruth.csv", first, stamps)
    return len(stamps)


def bag_to_frames(bag: Path, out: Path, topic: str, gt_file: str = "", ext: str = ".jpg") -> int:
    """Write the images of ``topic`` as an OTB-layout folder; returns the frame count."""
    reader = open_bag(bag)
    try:
        connection = image_connection(reader, topic)
        images = out / "img"
        images.mkdir(parents=True, exist_ok=True)
        stamps = []
        for frame in frames(reader, connection):
            name = images / f"{frame.index + 1:04d}{ext}"
            if not cv2.imwrite(str(name), message_to_bgr(frame.msg)):
                raise BagError(f"cannot write {name}")
            stamps.append(frame.stamp_ns)
        inits = recorded_inits(reader)
    finally:
        reader.close()
    path = Path(gt_file) if gt_file else find_ground_truth(bag)
    if path is not None:
        gt = read_ground_truth(path, stamps, connection.topic)
        if gt.unlabelled:
            raise BagError(
                f"{path}: {gt.unlabelled} frames of {connection.topic} have no box; the OTB "
                "layout needs one per frame (label them, or mark them absent)"
            )
        lines = [",".join(f"{v:.2f}" for v in box) for box in gt.boxes]
        (out / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    elif inits:
        index = {s: i for i, s in enumerate(stamps)}
        if inits[0].stamp_ns not in index:
            raise BagError(f"{bag}: the first init's stamp matches no frame of {connection.topic}")
        # A frame folder starts on the frame its initial box was drawn on.
        first = index[inits[0].stamp_ns]
        for i in range(len(stamps)):
            name = images / f"{i + 1:04d}{ext}"
            if i < first:
                name.unlink()
            elif first:
                name.rename(images / f"{i - first + 1:04d}{ext}")
        stamps = stamps[first:]
        (out / "init.txt").write_text(",".join(f"{v:.2f}" for v in inits[0].box) + "\n")
    else:
        raise BagError(f"{bag}: no ground truth and no recorded init: the target is unknown")
    with (out / "stamps.csv").open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(["frame", "stamp_ns"])
        rows.writerows([i + 1, s] for i, s in enumerate(stamps))
    return len(stamps)
