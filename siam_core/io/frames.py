"""Frame sources for command-line tracking: a video file or a folder of numbered frames.

Both yield BGR uint8 (H, W, 3) frames, in order, read one at a time. Sequence folders with
ground truth (OTB, VOT, UAV123, ...) are ``siam_core.data.sequences``' job; this module covers
what has no annotation: any video OpenCV decodes, and any folder of numbered images (frames
sorted by the last number in their names, so ``frame_2.png`` comes before ``frame_10.png``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# Sub-folders that benchmark layouts keep their frames in (OTB img/, VOT color/, ...).
FRAME_DIRS = ("img", "imgs", "color", "frames", "images")
_NUMBER = re.compile(r"(\d+)")


def numbered_frames(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` (or of its one frame sub-folder) sorted by frame number."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"not a folder: {root}")
    images = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    if not images:
        subs = [root / d for d in FRAME_DIRS if (root / d).is_dir()]
        if len(subs) == 1:
            return numbered_frames(subs[0])
        raise ValueError(f"{root}: no image files ({', '.join(IMAGE_EXTS)})")
    keyed = []
    for p in images:
        numbers = _NUMBER.findall(p.stem)
        if not numbers:
            raise ValueError(f"{p}: frame file names must contain a frame number")
        keyed.append((int(numbers[-1]), p.name, p))
    keyed.sort()
    for (a, _, pa), (b, _, pb) in pairwise(keyed):
        if a == b:
            raise ValueError(f"{root}: {pa.name} and {pb.name} have the same frame number {a}")
    return [p for _, _, p in keyed]


class FrameSource:
    """Frames of a video file or an image folder; iterate to read them in order.

    ``count`` is the number of frames (for a video, as the container reports it, which can be
    approximate); ``fps`` the video's frame rate, None for folders.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fps: float | None = None
        self._files: list[Path] | None = None
        if self.path.is_dir():
            self._files = numbered_frames(self.path)
            self.count = len(self._files)
        elif self.path.is_file():
            cap = cv2.VideoCapture(str(self.path))
            try:
                if not cap.isOpened():
                    raise ValueError(f"{self.path}: OpenCV cannot open this file as a video")
                fps = cap.get(cv2.CAP_PROP_FPS)
                self.fps = float(fps) if fps and fps > 0 else None
                self.count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
                ok, _ = cap.read()
            finally:
                cap.release()
            if not ok:
                raise ValueError(f"{self.path}: the video has no readable frames")
        else:
            raise FileNotFoundError(f"no such video file or frame folder: {self.path}")

    @property
    def kind(self) -> str:
        return "folder" if self._files is not None else "video"

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._files is not None:
            for f in self._files:
                frame = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if frame is None:
                    raise ValueError(f"cannot read frame image {f}")
                yield frame
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()


def read_frames(path: str | Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video or folder, in memory (benchmarks replay them)."""
    frames = list(itertools.islice(FrameSource(path), count))
    if len(frames) < count:
        raise ValueError(f"{path} has only {len(frames)} frames, {count} asked for")
    return frames
