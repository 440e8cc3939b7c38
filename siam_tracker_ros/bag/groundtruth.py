"""Ground truth for recorded images: import, keyframe interpolation and the labelling tool.

Boxes are (x, y, w, h), top-left corner, pixels. Files that are read:

* CSV with a header naming ``x,y,w,h`` and ``frame`` (0-based index on the image topic) or
  ``stamp_ns`` (the image's header stamp); an ``absent`` column (1/0) or empty box fields mark
  frames where the target is not visible. Rows may be sparse: frames without a row are
  *unlabelled* (not scored), rows whose stamp matches no frame are counted and skipped.
* OTB/VOT text, one region per line (``x,y,w,h`` or an 8-value polygon, NaN rows absent), by
  index: exactly one row per frame.

``siam-bag label`` and ``from-sequence`` write ``groundtruth.csv`` into the bag directory
(``frame,stamp_ns,x,y,w,h,absent``), where ``eval`` finds it.
"""

from __future__ import annotations

import csv
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from siam_core.data.sequences import polygons_to_boxes, read_regions
from siam_tracker_ros.bag.bagfile import BagError, BagFrame
from siam_tracker_ros.conversions import message_to_bgr

GT_NAMES = ("groundtruth.csv", "groundtruth.txt", "groundtruth_rect.txt")
GT_HEADER = ["frame", "stamp_ns", "x", "y", "w", "h", "absent"]


@dataclass
class GroundTruth:
    """Per-frame boxes for one image topic; NaN boxes where absent or unlabelled."""

    boxes: np.ndarray
    absent: np.ndarray
    source: str
    unmatched_rows: int = 0

    @property
    def labelled(self) -> np.ndarray:
        return self.absent | np.isfinite(self.boxes).all(axis=1)

    @property
    def unlabelled(self) -> int:
        return int((~self.labelled).sum())


def find_ground_truth(bag: Path) -> Path | None:
    """The GT file stored in (or, for a single-file bag, beside) ``bag``."""
    folder = bag if bag.is_dir() else bag.parent
    return next((folder / n for n in GT_NAMES if (folder / n).is_file()), None)


def _float(text: str) -> float:
    text = text.strip()
    return float(text) if text else math.nan


def _parse_csv(path: Path) -> tuple[str, list[tuple[int, np.ndarray, bool]]]:
    """(key column, [(key, box, absent)]) of a GT/keyframe CSV with a header."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = [h.strip() for h in rows[0]] if rows else []
    key = next((k for k in ("stamp_ns", "frame") if k in header), None)
    if key is None or not {"x", "y", "w", "h"} <= set(header):
        raise BagError(f"{path}: header must name frame or stamp_ns, and x,y,w,h; got {header}")
    col = {name: header.index(name) for name in header}
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            cells = row + [""] * (len(header) - len(row))
            index = int(cells[col[key]])
            box = np.array([_float(cells[col[k]]) for k in "xywh"])
            absent = "absent" in col and cells[col["absent"]].strip() in ("1", "true", "True")
        except ValueError as exc:
            raise BagError(f"{path}:{number}: {exc}") from None
        absent = absent or not np.isfinite(box).all()
        if not absent and (box[2] <= 0 or box[3] <= 0):
            raise BagError(f"{path}:{number}: box {box.tolist()} has no area")
        out.append((index, box, absent))
    return key, out


def read_ground_truth(path: Path, stamps: list[int], topic: str) -> GroundTruth:
    """GT of the ``len(stamps)`` frames of ``topic`` from ``path`` (formats: module docstring)."""
    path = Path(path)
    n = len(stamps)
    boxes, absent = np.full((n, 4), np.nan), np.zeros(n, dtype=bool)
    if not path.is_file():
        raise BagError(f"ground truth file not found: {path}")
    first = path.read_text().lstrip()[:64].lower()
    if path.suffix == ".csv" or first[:1].isalpha():
        key, rows = _parse_csv(path)
        where = {s: i for i, s in enumerate(stamps)} if key == "stamp_ns" else None
        unmatched = 0
        for k, box, gone in rows:
            index = where.get(k) if where is not None else (k if 0 <= k < n else None)
            if index is None:
                unmatched += 1
                continue
            boxes[index], absent[index] = (np.nan,) * 4 if gone else box, gone
        if rows and unmatched == len(rows):
            raise BagError(f"{path}: none of its {len(rows)} rows matches a frame of {topic}")
        return GroundTruth(boxes, absent, str(path), unmatched)
    try:
        regions = read_regions(path, allow_nan=True)
    except ValueError as exc:
        raise BagError(str(exc)) from None
    if len(regions) != n:
        raise BagError(
            f"{path}: {len(regions)} boxes, but {topic} has {n} frames (one per frame needed; "
            "a CSV with a frame or stamp_ns column may be sparse)"
        )
    boxes = polygons_to_boxes(regions) if regions.shape[1] == 8 else regions
    absent = ~np.isfinite(boxes).all(axis=1)
    return GroundTruth(np.where(absent[:, None], np.nan, boxes), absent, str(path))


def write_ground_truth(path: Path, gt: GroundTruth, stamps: list[int]) -> None:
    """The labelled frames of ``gt`` as ``groundtruth.csv`` (written whole, then renamed)."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(GT_HEADER)
        for i in np.flatnonzero(gt.labelled):
            if gt.absent[i]:
                rows.writerow([i, stamps[i], "", "", "", "", 1])
            else:
                rows.writerow([i, stamps[i], *(f"{v:.2f}" for v in gt.boxes[i]), 0])
    os.replace(tmp, path)


def interpolate(keyframes: dict[int, np.ndarray | None], n: int, source: str) -> GroundTruth:
    """Per-frame GT from keyframe boxes (None: absent), linear between two boxed keyframes.

    An absent keyframe marks frames up to the next keyframe absent; frames before the first
    keyframe, after the last, or between a box and a later absent keyframe stay unlabelled.
    """
    boxes, absent = np.full((n, 4), np.nan), np.zeros(n, dtype=bool)
    keys = sorted(k for k in keyframes if 0 <= k < n)
    for a, b in zip(keys, [*keys[1:], None][: len(keys)], strict=True):
        start = keyframes[a]
        if start is None:
            absent[a : b if b is not None else a + 1] = True
            continue
        boxes[a] = start
        end = keyframes[b] if b is not None else None
        if end is None:
            continue
        t = (np.arange(a, b) - a)[:, None] / (b - a)
        boxes[a:b] = (1 - t) * start + t * end
    return GroundTruth(boxes, absent, source)


def read_keyframes(path: Path, stamps: list[int], topic: str) -> dict[int, np.ndarray | None]:
    """Keyframes from a sparse CSV (the GT CSV format): frame index -> box or None (absent)."""
    sparse = read_ground_truth(path, stamps, topic)
    return {
        int(i): None if sparse.absent[i] else sparse.boxes[i]
        for i in np.flatnonzero(sparse.labelled)
    }


def has_display() -> bool:
    """Whether OpenCV can open a window here (a display and a HighGUI build)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("siam-bag probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("siam-bag probe")
    except cv2.error:
        return False
    return True


GUI_HELP = (
    "keys: n / space next, b back, r draw the box on this frame, a target absent here, "
    "d delete this keyframe, s save, q save and quit, Esc quit without saving"
)


def label_gui(
    frames: Iterator[BagFrame],
    n: int,
    keyframes: dict[int, np.ndarray | None],
    step: int,
    save: Callable[[dict[int, np.ndarray | None]], None],
) -> dict[int, np.ndarray | None] | None:
    """Step through the frames in an OpenCV window and edit keyframes; None if abandoned.

    Frames stream from the bag; the last 64 shown stay in memory so ``b`` can go back.
    """
    window = "siam-bag label"
    cv2.namedWindow(window, cv2.WINDOW_NORMAL)
    print(GUI_HELP)
    seen: deque[tuple[int, np.ndarray]] = deque(maxlen=64)
    source = iter(frames)

    def advance() -> bool:
        for frame in source:
            if frame.index % step == 0 or frame.index == n - 1:
                seen.append((frame.index, message_to_bgr(frame.msg)))
                return True
        return False

    if not advance():
        raise BagError("the image topic has no frames to label")
    position = 0  # index into seen
    try:
        while True:
            index, image = seen[position]
            gt = interpolate(keyframes, n, "")
            canvas = image.copy()
            box = gt.boxes[index]
            colour = (0, 0, 255) if index in keyframes else (0, 200, 0)
            if np.isfinite(box).all():
                x, y, w, h = (round(v) for v in box)
                cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 2)
            text = f"{index + 1}/{n}" + (" absent" if gt.absent[index] else "")
            cv2.putText(canvas, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, 2)
            cv2.imshow(window, canvas)
            key = cv2.waitKey(0) & 0xFF
            if key in (ord("n"), ord(" ")):
                if position + 1 < len(seen) or advance():
                    position = min(position + 1, len(seen) - 1)
            elif key == ord("b"):
                position = max(position - 1, 0)
            elif key == ord("r"):
                x, y, w, h = cv2.selectROI(window, image, showCrosshair=True)
                if w > 0 and h > 0:
                    keyframes[index] = np.array([x, y, w, h], dtype=float)
            elif key == ord("a"):
                keyframes[index] = None
            elif key == ord("d"):
                keyframes.pop(index, None)
            elif key == ord("s"):
                save(keyframes)
            elif key == ord("q"):
                return keyframes
            elif key == 27:
                return None
    finally:
        cv2.destroyWindow(window)
