"""Training-data readers: every layout becomes a list of tracks with boxed frames.

A *track* is one object followed through one video (a still image is a one-frame video). A
reader returns, for (track, frame position), the BGR image and the object's box as float
(x1, y1, x2, y2) corners in that image. Layouts:

- ``pysot_crops``: pysot's curated data (``par_crop`` output for VID, YouTube-BB, COCO, DET):
  ``root/<video>/<frame:06d>.<track:02d>.x.jpg`` 511-px crops and a JSON
  ``{video: {track: {frame: [x1, y1, x2, y2]}}}`` of boxes in the *original* image; the box in the
  crop follows from the crop rule (pysot ``TrkDataset._get_bbox``). A non-numeric ``category``
  key in a track (written by ``siam-curate``, ignored by pysot) names its class.
- ``sequences``: OTB / VOT / UAV123 / GOT-10k / LaSOT trees through ``siam_core.data``.
- ``coco``: COCO-style instances JSON over an image folder; every annotation is a track.
- ``images``: photos without boxes; the object is the whole image or random regions of it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from siam_core.data.sequences import Sequence, load_sequence
from siam_core.train.augment import context_side
from siam_core.train.config import SourceConfig, TrainConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Track:
    """One object in one video: ``frames`` are the frame keys with a usable box."""

    video: str
    track: str
    frames: tuple[int, ...]
    category: str | None = None


def read_image(path: Path | str) -> np.ndarray:
    """BGR uint8 image; a missing or unreadable file is a ``RuntimeError`` naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read image {path}")
    return image


class TrainingSource(ABC):
    """A readable set of tracks; ``num_use`` is its share of pairs per epoch (pysot NUM_USE)."""

    def __init__(self, name: str, frame_range: int, num_use: int) -> None:
        self.name = name
        self.frame_range = frame_range
        self.tracks: list[Track] = []
        self._num_use = num_use

    @property
    def num_use(self) -> int:
        return len(self.tracks) if self._num_use < 0 else self._num_use

    def _finish(self) -> None:
        if not self.tracks:
            raise ValueError(f"training source '{self.name}' has no usable track")
        self.video_tracks: dict[str, list[int]] = {}
        for i, t in enumerate(self.tracks):
            self.video_tracks.setdefault(t.video, []).append(i)
        self.videos = sorted(self.video_tracks)

    @abstractmethod
    def load(self, track: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Image and (x1, y1, x2, y2) box of track ``track`` at frame key ``frame``."""

    def frame_path(self, track: int, frame: int) -> Path:
        """File of a frame, for curation; sources of pre-cut crops have none to offer."""
        raise ValueError(f"source '{self.name}' cannot be curated (it is not made of frames)")

    def box(self, track: int, frame: int) -> np.ndarray:
        """(x1, y1, x2, y2) box of a frame in its original image, for curation."""
        raise ValueError(f"source '{self.name}' cannot be curated (it is not made of frames)")


def _valid(w: float, h: float, min_size: float) -> bool:
    return bool(np.isfinite(w) and np.isfinite(h) and w >= min_size and h >= min_size)


class PysotCropSource(TrainingSource):
    """pysot curated crops + JSON (see module docstring)."""

    def __init__(self, cfg: SourceConfig, root: Path, anno: Path) -> None:
        super().__init__(cfg.name or anno.stem, cfg.frame_range, cfg.num_use)
        self.root = root
        self.crop_exemplar = cfg.crop_exemplar
        try:
            meta = json.loads(anno.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read pysot annotation {anno}: {exc}") from exc
        self.boxes: dict[tuple[str, str, int], tuple[float, ...]] = {}
        for video in sorted(meta):
            for track, frames in sorted(meta[video].items()):
                keys = []
                for key, box in frames.items():
                    if not key.isdigit():
                        continue
                    w, h = (box[2] - box[0], box[3] - box[1]) if len(box) == 4 else box
                    if not _valid(w, h, cfg.min_size):
                        continue
                    keys.append(int(key))
                    self.boxes[(video, track, int(key))] = tuple(float(v) for v in box)
                if keys:
                    category = frames.get("category", cfg.category or None)
                    self.tracks.append(Track(video, track, tuple(sorted(keys)), category))
        self._finish()

    def load(self, track: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        t = self.tracks[track]
        image = read_image(self.root / t.video / f"{frame:06d}.{t.track}.x.jpg")
        box = self.boxes[(t.video, t.track, frame)]
        w, h = (box[2] - box[0], box[3] - box[1]) if len(box) == 4 else box
        # pysot _get_bbox: the crop maps the context square to crop_exemplar px at its centre.
        k = self.crop_exemplar / context_side(w, h)
        cx, cy = image.shape[1] // 2, image.shape[0] // 2
        w, h = w * k, h * k
        return image, np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


class CocoSource(TrainingSource):
    """COCO-style ``instances`` JSON: images, annotations with ``bbox`` (x, y, w, h), categories."""

    def __init__(self, cfg: SourceConfig, root: Path, anno: Path) -> None:
        super().__init__(cfg.name or anno.stem, 0, cfg.num_use)
        try:
            meta = json.loads(anno.read_text())
            files = {im["id"]: im["file_name"] for im in meta["images"]}
            names = {c["id"]: c["name"] for c in meta.get("categories", [])}
            annotations = meta["annotations"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{anno} is not a COCO-style instances file: {exc}") from exc
        self.root = root
        self.files: list[str] = []
        self.boxes: list[np.ndarray] = []
        for ann in annotations:
            x, y, w, h = (float(v) for v in ann["bbox"])
            if ann.get("iscrowd", 0) or not _valid(w, h, cfg.min_size):
                continue
            category = names.get(ann.get("category_id"), str(ann.get("category_id", "")))
            index = len(self.files)
            self.files.append(files[ann["image_id"]])
            self.boxes.append(np.array([x, y, x + w, y + h], np.float32))
            self.tracks.append(Track(files[ann["image_id"]], str(index), (0,), category or None))
        self._finish()

    def frame_path(self, track: int, frame: int) -> Path:
        return self.root / self.files[track]

    def box(self, track: int, frame: int) -> np.ndarray:
        return self.boxes[track].copy()

    def load(self, track: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.frame_path(track, frame)), self.box(track, frame)


class ImageSource(TrainingSource):
    """Photos without boxes: the whole image, or ``regions`` random boxes fixed per image."""

    def __init__(self, cfg: SourceConfig, files: list[Path], seed: int) -> None:
        super().__init__(cfg.name or "images", 0, cfg.num_use)
        if not files:
            raise ValueError(f"images source '{self.name}' found no image files")
        self.files = files
        self.boxes: list[np.ndarray | None] = []
        rng = np.random.default_rng(seed)
        for path in files:
            if cfg.box == "whole":
                self.boxes.append(None)
                self.tracks.append(Track(path.name, "0", (0,), cfg.category or None))
                continue
            image = read_image(path)
            ih, iw = image.shape[:2]
            for r in range(cfg.regions):
                area = rng.uniform(*cfg.region_area) * ih * iw
                aspect = np.exp(rng.uniform(*np.log(cfg.region_aspect)))
                w = min(np.sqrt(area * aspect), iw)
                h = min(np.sqrt(area / aspect), ih)
                x = rng.uniform(0, iw - w)
                y = rng.uniform(0, ih - h)
                self.boxes.append(np.array([x, y, x + w, y + h], np.float32))
                self.tracks.append(Track(path.name, str(r), (0,), cfg.category or None))
        self.track_file = [
            i for i, _ in enumerate(files) for _ in range(1 if cfg.box == "whole" else cfg.regions)
        ]
        self._finish()

    def frame_path(self, track: int, frame: int) -> Path:
        return self.files[self.track_file[track]]

    def box(self, track: int, frame: int) -> np.ndarray:
        box = self.boxes[track]
        if box is None:
            ih, iw = read_image(self.frame_path(track, frame)).shape[:2]
            return np.array([0, 0, iw, ih], np.float32)
        return box.copy()

    def load(self, track: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(self.frame_path(track, frame))
        box = self.boxes[track]
        if box is None:
            box = np.array([0, 0, image.shape[1], image.shape[0]], np.float32)
        return image, box.copy()


class SequenceSource(TrainingSource):
    """Benchmark sequences (OTB, VOT, UAV123, GOT-10k, LaSOT) read by ``siam_core.data``.

    Frames the benchmark marks absent, and rows without a box, never enter a pair.
    """

    def __init__(self, cfg: SourceConfig, sequences: list[tuple[Sequence, str | None]]) -> None:
        super().__init__(cfg.name or "sequences", cfg.frame_range, cfg.num_use)
        self.frames: list[list[Path]] = []
        self.boxes: list[np.ndarray] = []
        for seq, category in sequences:
            gt = seq.gt
            absent = seq.absent if seq.absent is not None else np.zeros(len(gt), bool)
            keep = [
                i
                for i in range(len(seq.frames))
                if not absent[i] and _valid(gt[i, 2], gt[i, 3], cfg.min_size)
            ]
            if not keep:
                continue
            xyxy = gt.copy()
            xyxy[:, 2:] += xyxy[:, :2]
            self.frames.append(list(seq.frames))
            self.boxes.append(xyxy.astype(np.float32))
            self.tracks.append(Track(seq.name, "0", tuple(keep), category or cfg.category or None))
        self._finish()

    def frame_path(self, track: int, frame: int) -> Path:
        return Path(self.frames[track][frame])

    def box(self, track: int, frame: int) -> np.ndarray:
        return self.boxes[track][frame].copy()

    def load(self, track: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.frame_path(track, frame)), self.box(track, frame)


def _got10k_class(folder: Path) -> str | None:
    """``object_class`` from a GOT-10k ``meta_info.ini`` (the category of its target)."""
    meta = folder / "meta_info.ini"
    if meta.is_file():
        for line in meta.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "object_class" and value.strip():
                return value.strip()
    return None


def sequence_paths(root: Path, fmt: str) -> list[tuple[Path, str | None]]:
    """Every sequence under a benchmark ``root`` with its category where the layout has one.

    ``uav123`` (or a root holding ``anno/``): ``anno/*.txt``; ``lasot``: ``<class>/<class>-<n>``,
    category the class folder; ``got10k``: sequence folders (``list.txt`` order if present),
    category from ``meta_info.ini``; ``otb``, ``vot``: one folder per sequence.
    """
    if fmt == "auto":
        if (root / "anno").is_dir():
            fmt = "uav123"
        elif any((s / "img").is_dir() for d in _subdirs(root) for s in _subdirs(d)):
            fmt = "lasot"
        else:
            fmt = "folders"
    if fmt == "uav123":
        anno = root / "anno"
        files = sorted(anno.glob("*.txt")) or sorted(anno.glob("*/*.txt"))
        return [(f, None) for f in files]
    if fmt == "lasot":
        return [(s, d.name) for d in _subdirs(root) for s in _subdirs(d)]
    if fmt == "got10k":
        listing = root / "list.txt"
        if listing.is_file():
            names = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
            dirs = [root / n for n in names]
        else:
            dirs = _subdirs(root)
        return [(d, _got10k_class(d)) for d in dirs]
    return [(d, None) for d in _subdirs(root)]


def _subdirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _image_files(src: SourceConfig, resolve: Callable[[str], Path]) -> list[Path]:
    if src.paths:
        return [resolve(p) for p in src.paths]
    root = resolve(src.root)
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _sequences(
    src: SourceConfig, resolve: Callable[[str], Path]
) -> list[tuple[Sequence, str | None]]:
    if src.paths:
        found = [(resolve(p), None) for p in src.paths]
    else:
        found = sequence_paths(resolve(src.root), src.format)
        if src.names:
            wanted = set(src.names)
            unknown = sorted(wanted - {p.stem for p, _ in found})
            if unknown:
                raise ValueError(f"sequences {unknown} not found under {resolve(src.root)}")
            found = [(p, c) for p, c in found if p.stem in wanted]
    # NaN rows mean "absent" in OTB-like copies (train_extra); those frames never enter a pair.
    return [(load_sequence(p, allow_nan=True), c) for p, c in found]


def open_source(
    src: SourceConfig, resolve: Callable[[str], Path] = Path, seed: int = 0
) -> TrainingSource:
    """Open one source (reads annotations, not images); ``resolve`` maps config paths."""
    if src.type == "pysot_crops":
        return PysotCropSource(src, resolve(src.root), resolve(src.anno))
    if src.type == "coco":
        return CocoSource(src, resolve(src.root), resolve(src.anno))
    if src.type == "images":
        return ImageSource(src, _image_files(src, resolve), seed)
    return SequenceSource(src, _sequences(src, resolve))


def build_sources(cfg: TrainConfig) -> list[TrainingSource]:
    """Open every configured source; errors name the source's index and type."""
    out: list[TrainingSource] = []
    for i, src in enumerate(cfg.data.sources):
        try:
            out.append(open_source(src, cfg.path, cfg.runtime.seed + i))
        except (ValueError, RuntimeError, OSError) as exc:
            raise ValueError(f"data.sources[{i}] ({src.type}): {exc}") from exc
    return out
