"""Tracking sequences and benchmark datasets, read from the layouts users have on disk.

A :class:`Sequence` holds frame paths (images are read one at a time, never all at once) and
the ground truth as an (N, 4) float array of ``x, y, w, h`` (0-based top-left pixels). VOT
polygons are kept as well; their box is the axis-aligned min/max extent, as the VOT toolkit
converts regions. Rows for frames where the benchmark marks the target absent are NaN when
the benchmark allows that (UAV123, LaSOT, GOT-10k, VOT long-term); anywhere else a NaN, a row
with the wrong number of fields or a missing frame is an error that names the file and line.

``load_sequence(path)`` detects the layout of one sequence folder; the dataset classes read a
whole benchmark and know its special cases (tables shipped in ``otb.yaml`` and
``benchmarks.json``, with their sources named there).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import yaml

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
_FIELD_SEP = re.compile(r"[,\s]+")
_DATA_DIR = Path(__file__).resolve().parent


@dataclass
class Sequence:
    """One annotated video: lazily read frames plus per-frame ground truth.

    ``absent[i]`` is True where the benchmark says the target is not visible (a NaN row,
    LaSOT full occlusion / out of view, GOT-10k absence); metrics follow each toolkit's rule
    for such frames. ``annotated`` is the number of frames with real ground truth: the whole
    sequence, or 1 where only the initial box is public (GOT-10k and TrackingNet test sets, a
    folder with an initial box only). ``tags`` are per-frame flags (VOT ``*.tag``, LaSOT
    occlusion), ``values`` per-frame numbers (GOT-10k ``cover``), ``attributes`` the
    sequence-level attributes of OTB.
    """

    name: str
    frames: list[Path]
    gt: np.ndarray
    layout: str
    polygons: np.ndarray | None = None
    absent: np.ndarray | None = None
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    annotated: int | None = None

    def __post_init__(self) -> None:
        n = len(self.frames)
        if n == 0:
            raise ValueError(f"sequence {self.name!r} has no frames")
        self.gt = np.asarray(self.gt, dtype=np.float64)
        if self.gt.shape != (n, 4):
            raise ValueError(
                f"sequence {self.name!r}: ground truth shape {self.gt.shape}, expected ({n}, 4)"
            )
        if self.polygons is not None and self.polygons.shape != (n, 8):
            raise ValueError(f"sequence {self.name!r}: polygons shape {self.polygons.shape}")
        nan_rows = np.isnan(self.gt).any(axis=1)
        if self.annotated is None:
            self.annotated = n
        if nan_rows[0]:
            raise ValueError(f"sequence {self.name!r}: the first frame has no ground-truth box")
        absent = nan_rows.copy()
        absent[self.annotated :] = False
        if self.absent is not None:
            absent |= np.asarray(self.absent, dtype=bool)
        self.absent = absent
        for key, flags in (*self.tags.items(), *self.values.items()):
            if len(flags) != n:
                raise ValueError(f"sequence {self.name!r}: {key!r} has {len(flags)} values")
        self._size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def init_box(self) -> tuple[float, float, float, float]:
        x, y, w, h = (float(v) for v in self.gt[0])
        return x, y, w, h

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as a BGR uint8 (H, W, 3) array."""
        path = self.frames[index]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError(f"cannot read frame {index} of {self.name!r}: {path}")
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
        return image

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self.frames)):
            yield self.read(i)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames, from the first frame's header."""
        if self._size is None:
            self.read(0)
        assert self._size is not None
        return self._size

    def head(self, count: int) -> Sequence:
        """The first ``count`` frames as a sequence of their own (quick runs, tests)."""
        if count < 1:
            raise ValueError(f"head() needs at least one frame, got {count}")
        count = min(count, len(self))
        annotated = min(self.annotated or len(self), count)
        return Sequence(
            name=self.name,
            frames=self.frames[:count],
            gt=self.gt[:count],
            layout=self.layout,
            polygons=None if self.polygons is None else self.polygons[:count],
            absent=None if self.absent is None else self.absent[:count],
            tags={k: v[:count] for k, v in self.tags.items()},
            values={k: v[:count] for k, v in self.values.items()},
            attributes=self.attributes,
            annotated=annotated,
        )


# --------------------------------------------------------------------------- file parsing


def read_regions(path: Path, *, allow_nan: bool = False, fields: tuple[int, ...] = (4, 8)):
    """Read one region per line: ``x,y,w,h`` or a polygon ``x1,y1,...,x4,y4``.

    Fields may be separated by commas, tabs or spaces (OTB mixes them). Every row must have
    the same number of fields. A row of NaNs is accepted only with ``allow_nan``; a partly
    NaN row or an infinite value never is. Returns an (N, 4) or (N, 8) float64 array.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ground-truth file not found: {path}")
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: file is empty")
    rows: list[list[float]] = []
    width: int | None = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            raise ValueError(f"{path}:{number}: empty line")
        tokens = [t for t in _FIELD_SEP.split(text) if t]
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number in {text!r}") from None
        if len(values) not in fields:
            raise ValueError(
                f"{path}:{number}: {len(values)} fields, expected one of {list(fields)}"
            )
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise ValueError(
                f"{path}:{number}: {len(values)} fields, but earlier rows have {width}"
            )
        nans = [math.isnan(v) for v in values]
        if any(nans):
            if not all(nans):
                raise ValueError(f"{path}:{number}: partly NaN row {text!r}")
            if not allow_nan:
                raise ValueError(f"{path}:{number}: NaN box, which this benchmark does not allow")
        elif not all(math.isfinite(v) for v in values):
            raise ValueError(f"{path}:{number}: infinite value in {text!r}")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64)


def polygons_to_boxes(polygons: np.ndarray) -> np.ndarray:
    """(N, 8) polygons -> (N, 4) axis-aligned min/max boxes (VOT toolkit's conversion)."""
    xs, ys = polygons[:, 0::2], polygons[:, 1::2]
    x0, y0 = xs.min(axis=1), ys.min(axis=1)
    return np.stack([x0, y0, xs.max(axis=1) - x0, ys.max(axis=1) - y0], axis=1)


def boxes_to_polygons(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes -> (N, 8) polygons, corners clockwise from the top-left."""
    x, y, w, h = boxes.T
    return np.stack([x, y, x + w, y, x + w, y + h, x, y + h], axis=1)


def read_flags(path: Path, count: int) -> np.ndarray:
    """Per-frame integer flags (VOT ``*.tag``, LaSOT ``full_occlusion.txt``, GOT ``*.label``).

    Values may be one per line or comma-separated on one line; there must be exactly
    ``count`` of them (an empty VOT tag file means the tag never occurs).
    """
    path = Path(path)
    text = path.read_text().strip()
    if not text:
        return np.zeros(count, dtype=np.int64)
    values: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in (t for t in _FIELD_SEP.split(line.strip()) if t):
            try:
                values.append(int(float(token)))
            except ValueError:
                raise ValueError(f"{path}:{number}: not a number: {token!r}") from None
    if len(values) != count:
        raise ValueError(f"{path}: {len(values)} values, expected one per frame ({count})")
    return np.asarray(values, dtype=np.int64)


def _check_rows(path: Path, rows: int, frames: int) -> None:
    if rows != frames:
        raise ValueError(f"{path}: {rows} rows, but the sequence has {frames} frames")


def _numbered_frames(folder: Path, first: int, count: int, digits: int, ext: str) -> list[Path]:
    """Frames ``first .. first+count-1`` named with zero padding; every file must exist."""
    frames = [folder / f"{i:0{digits}d}.{ext}" for i in range(first, first + count)]
    for path in frames:
        if not path.is_file():
            raise ValueError(f"missing frame {path} ({count} frames expected from {first})")
    return frames


def _frame_digits(folder: Path, first: int) -> int:
    """Zero padding of numbered frames: OTB's 4 (``0001.jpg``) unless only another width
    exists for the first frame (``00001.jpg`` in OTB-like copies such as train_extra)."""
    for digits in (4, 5, 6, 8):
        if any(folder.glob(f"{first:0{digits}d}.*")):
            return digits
    return 4


def _list_images(folder: Path) -> list[Path]:
    """Image files of a folder, in numeric order when the names are numbers."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    if all(p.stem.isdigit() for p in files):
        return sorted(files, key=lambda p: int(p.stem))
    return sorted(files)


def _contiguous(frames: list[Path], where: Path) -> list[Path]:
    """Numbered frames must not skip a number: a gap is a missing frame."""
    if frames and all(p.stem.isdigit() for p in frames):
        numbers = [int(p.stem) for p in frames]
        expected = range(numbers[0], numbers[0] + len(numbers))
        for got, want in zip(numbers, expected, strict=True):
            if got != want:
                raise ValueError(f"{where}: frame number {want} is missing (next is {got})")
    return frames


def _regions_to_gt(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if regions.shape[1] == 8:
        return polygons_to_boxes(regions), regions
    return regions, None


# --------------------------------------------------------------------------- tables


@cache
def _otb_table() -> dict[str, Any]:
    with open(_DATA_DIR / "otb.yaml") as f:
        return yaml.safe_load(f)


@cache
def _benchmark_table() -> dict[str, Any]:
    with open(_DATA_DIR / "benchmarks.json") as f:
        return json.load(f)


# --------------------------------------------------------------------------- layouts


def load_otb(folder: Path, name: str | None = None, *, allow_nan: bool = False) -> Sequence:
    """OTB: ``img/NNNN.jpg`` + ``groundtruth_rect.txt``, with the toolkit's special cases.

    ``name`` picks an entry of the OTB table (e.g. ``Jogging-2`` in folder ``Jogging``);
    by default the folder name. OTB has no NaN rows; ``allow_nan`` accepts them as "target
    absent" for OTB-like copies of other benchmarks (UAV123 clips in ``train_extra``).
    """
    folder = Path(folder)
    name = name or folder.name
    table = _otb_table()
    spec = table["special"].get(name, {})
    gt_path = folder / spec.get("gt", "groundtruth_rect.txt")
    if not gt_path.is_file():
        choices = sorted(p.name for p in folder.glob("groundtruth_rect*.txt"))
        hint = f" (this folder has {choices}: name the target, e.g. {name}-1)" if choices else ""
        raise ValueError(f"ground-truth file not found: {gt_path}{hint}")
    regions = read_regions(gt_path, fields=(4,), allow_nan=allow_nan)
    omit = int(spec.get("omit", 0))
    start = int(spec.get("start", 1)) + omit
    regions = regions[omit:]
    img = folder / "img"
    digits = int(spec.get("nz", _frame_digits(img, start)))
    ext = spec.get("ext")
    if ext is None:
        ext = "jpg" if (img / f"{start:0{digits}d}.jpg").is_file() else "png"
    frames = _numbered_frames(img, start, len(regions), digits, ext)
    return Sequence(
        name=name,
        frames=frames,
        gt=regions,
        layout="otb",
        attributes=tuple(table["attributes"].get(name, ())),
    )


def _vot_frames(folder: Path, count: int) -> list[Path]:
    seq_file = folder / "sequence"
    if seq_file.is_file():
        meta = dict(line.split("=", 1) for line in seq_file.read_text().splitlines() if "=" in line)
        pattern = meta.get("channels.color")
        if pattern:
            frames = [folder / (pattern % i) for i in range(1, count + 1)]
            for path in frames:
                if not path.is_file():
                    raise ValueError(f"missing frame {path} ({seq_file} names {pattern})")
            return frames
    source = folder / "color" if (folder / "color").is_dir() else folder
    frames = _contiguous(_list_images(source), source)
    if not frames:
        raise ValueError(f"{source}: no frames found")
    return frames


def load_vot(folder: Path, *, allow_nan: bool = False) -> Sequence:
    """VOT: ``color/`` or flat frames + ``groundtruth.txt`` (polygons or boxes) + ``*.tag``."""
    folder = Path(folder)
    gt_path = folder / "groundtruth.txt"
    regions = read_regions(gt_path, allow_nan=allow_nan)
    frames = _vot_frames(folder, len(regions))
    _check_rows(gt_path, len(regions), len(frames))
    tags = {p.stem: read_flags(p, len(frames)).astype(bool) for p in sorted(folder.glob("*.tag"))}
    gt, polygons = _regions_to_gt(regions)
    return Sequence(
        name=folder.name,
        frames=frames,
        gt=gt,
        polygons=polygons,
        tags=tags,
        layout="vot-lt" if allow_nan else "vot",
    )


def load_lasot(folder: Path) -> Sequence:
    """LaSOT: ``img/`` + ``groundtruth.txt`` + ``full_occlusion.txt`` + ``out_of_view.txt``."""
    folder = Path(folder)
    gt_path = folder / "groundtruth.txt"
    regions = read_regions(gt_path, allow_nan=True, fields=(4,))
    frames = _numbered_frames(folder / "img", 1, len(regions), 8, "jpg")
    tags: dict[str, np.ndarray] = {}
    for key in ("full_occlusion", "out_of_view"):
        path = folder / f"{key}.txt"
        if path.is_file():
            tags[key] = read_flags(path, len(frames)).astype(bool)
    absent = np.zeros(len(frames), dtype=bool)
    for flags in tags.values():
        absent |= flags
    return Sequence(
        name=folder.name, frames=frames, gt=regions, layout="lasot", absent=absent, tags=tags
    )


def _initial_only(gt_path: Path, regions: np.ndarray, frames: int) -> tuple[np.ndarray, int]:
    """Ground truth of a test split: one row (the initial box) or one per frame."""
    if len(regions) == 1 and frames > 1:
        full = np.full((frames, regions.shape[1]), np.nan)
        full[0] = regions[0]
        return full, 1
    _check_rows(gt_path, len(regions), frames)
    return regions, frames


def load_got10k(folder: Path) -> Sequence:
    """GOT-10k: flat ``00000001.jpg`` + ``groundtruth.txt`` (+ ``absence.label``, ``cover.label``).

    The test split ships the initial box only; the other rows are NaN then. Frames whose
    ``cover`` is 0 or that ``absence.label`` flags count as absent (the GOT-10k toolkit
    scores only frames with cover > 0).
    """
    folder = Path(folder)
    gt_path = folder / "groundtruth.txt"
    regions = read_regions(gt_path, allow_nan=True, fields=(4,))
    frames = _contiguous(_list_images(folder), folder)
    if not frames:
        raise ValueError(f"{folder}: no frames found")
    gt, annotated = _initial_only(gt_path, regions, len(frames))
    tags: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    absent = np.zeros(len(frames), dtype=bool)
    absence = folder / "absence.label"
    if absence.is_file():
        tags["absence"] = read_flags(absence, len(frames)).astype(bool)
        absent |= tags["absence"]
    cover = folder / "cover.label"
    if cover.is_file():
        values["cover"] = read_flags(cover, len(frames))
        absent |= values["cover"] == 0
    absent[annotated:] = False
    return Sequence(
        name=folder.name,
        frames=frames,
        gt=gt,
        layout="got10k",
        absent=absent,
        tags=tags,
        values=values,
        annotated=annotated,
    )


def _uav_frames_root(anno_file: Path) -> tuple[Path, str | None]:
    """``anno/[subset/]<name>.txt`` -> the ``data_seq`` folder and the subset name."""
    parent = anno_file.parent
    subset = None
    if parent.name != "anno":
        subset = parent.name
        parent = parent.parent
    if parent.name != "anno":
        raise ValueError(f"{anno_file}: expected the UAV123 layout anno/[UAV123/]<name>.txt")
    data = parent.parent / "data_seq"
    return data, subset


def load_uav(anno_file: Path, subset: str | None = None) -> Sequence:
    """UAV123 / UAV20L: ``anno/[UAV123/]<name>.txt`` + ``data_seq/[UAV123/]<folder>/``.

    Split sequences (``bird1_2``) start inside a shared folder; the toolkit's frame ranges
    come from ``benchmarks.json``. NaN rows (target out of view) are kept.
    """
    anno_file = Path(anno_file)
    name = anno_file.stem
    data, anno_subset = _uav_frames_root(anno_file)
    subset = subset or anno_subset or "UAV123"
    table = _benchmark_table()["UAV20L" if subset.upper() == "UAV20L" else "UAV123"]
    folder_name, start = name, 1
    if name in table:
        folder_name, start = table[name][0], int(table[name][1])
    candidates = [data / folder_name, data / "UAV123" / folder_name]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise ValueError(f"{anno_file}: frame folder not found, looked in {candidates}")
    regions = read_regions(anno_file, allow_nan=True, fields=(4,))
    frames = _numbered_frames(folder, start, len(regions), 6, "jpg")
    return Sequence(name=name, frames=frames, gt=regions, layout="uav")


def load_trackingnet(anno_file: Path) -> Sequence:
    """TrackingNet: ``anno/<name>.txt`` + ``frames/<name>/0.jpg, 1.jpg, ...`` (0-based)."""
    anno_file = Path(anno_file)
    folder = anno_file.parent.parent / "frames" / anno_file.stem
    if not folder.is_dir():
        raise ValueError(f"{anno_file}: frame folder {folder} not found")
    frames = _contiguous(_list_images(folder), folder)
    if not frames:
        raise ValueError(f"{folder}: no frames found")
    if frames[0].stem != "0":
        raise ValueError(f"{folder}: TrackingNet frames start at 0.jpg, found {frames[0].name}")
    regions = read_regions(anno_file, fields=(4,))
    gt, annotated = _initial_only(anno_file, regions, len(frames))
    return Sequence(
        name=anno_file.stem, frames=frames, gt=gt, layout="trackingnet", annotated=annotated
    )


def load_nfs(folder: Path, fps: int = 30) -> Sequence:
    """NfS: ``<name>/<fps>/<name>.txt`` + ``<name>/<fps>/<name>/*.jpg``.

    Annotation lines are ``id xmin ymin xmax ymax frame lost occluded generated "label"``
    (NfS devkit). The 30 fps folders carry the 240 fps annotation, so every 8th row is used,
    and a count off by one is trimmed (the got10k toolkit's rule for NfS).
    """
    folder = Path(folder)
    base = folder / str(fps) if (folder / str(fps)).is_dir() else folder
    name = base.parent.name if base != folder else folder.name
    anno_file = base / f"{name}.txt"
    frame_dir = base / name
    if not anno_file.is_file() or not frame_dir.is_dir():
        raise ValueError(f"{folder}: expected NfS files {anno_file} and {frame_dir}/")
    rows: list[list[float]] = []
    for number, line in enumerate(anno_file.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            rows.append([float(t) for t in tokens[1:8]])
        except ValueError:
            raise ValueError(f"{anno_file}:{number}: not a number in {line!r}") from None
        if len(rows[-1]) != 7:
            raise ValueError(f"{anno_file}:{number}: expected at least 8 fields")
    anno = np.asarray(rows, dtype=np.float64)
    frames = _contiguous(_list_images(frame_dir), frame_dir)
    if frames and len(anno) != len(frames) and abs(len(anno) / len(frames) - 8) < 1:
        anno = anno[0::8]
    if abs(len(anno) - len(frames)) == 1:
        n = min(len(anno), len(frames))
        anno, frames = anno[:n], frames[:n]
    _check_rows(anno_file, len(anno), len(frames))
    boxes = np.stack(
        [anno[:, 0], anno[:, 1], anno[:, 2] - anno[:, 0], anno[:, 3] - anno[:, 1]], axis=1
    )
    tags = {"lost": anno[:, 5] > 0, "occluded": anno[:, 6] > 0}
    return Sequence(name=name, frames=frames, gt=boxes, layout="nfs", tags=tags)


_BOX_FILES = ("groundtruth.txt", "groundtruth_rect.txt", "gt.txt", "init.txt", "box.txt")


def load_folder(folder: Path, box_file: Path | None = None) -> Sequence:
    """A plain folder of frames (or ``img/``, ``imgs/``, ``frames/`` inside) and a box file.

    The box file has one box (the initial one) or one per frame; fields as in
    :func:`read_regions`. Without ``box_file``, the first of ``groundtruth.txt``,
    ``groundtruth_rect.txt``, ``gt.txt``, ``init.txt``, ``box.txt`` or the only ``*.txt``.
    """
    folder = Path(folder)
    source = next((folder / s for s in ("img", "imgs", "frames") if (folder / s).is_dir()), folder)
    frames = _contiguous(_list_images(source), source)
    if not frames:
        raise ValueError(f"{source}: no image files ({', '.join(IMAGE_EXTS)})")
    if box_file is None:
        found = [folder / n for n in _BOX_FILES if (folder / n).is_file()]
        if not found:
            found = sorted(folder.glob("*.txt"))
            if len(found) != 1:
                raise ValueError(
                    f"{folder}: cannot tell the box file; name it (found {len(found)} .txt files)"
                )
        box_file = found[0]
    regions = read_regions(Path(box_file), allow_nan=True)
    regions, annotated = _initial_only(Path(box_file), regions, len(frames))
    gt, polygons = _regions_to_gt(regions)
    return Sequence(
        name=folder.name,
        frames=frames,
        gt=gt,
        polygons=polygons,
        layout="folder",
        annotated=annotated,
    )


def detect_layout(path: Path) -> str:
    """Name the layout of one sequence path (see :func:`load_sequence`)."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".txt" and "anno" in (path.parent.name, path.parent.parent.name):
            root = path.parent.parent if path.parent.name == "anno" else path.parent.parent.parent
            if (root / "frames").is_dir():
                return "trackingnet"
            return "uav"
        raise ValueError(f"{path}: a sequence is a folder, or a UAV123/TrackingNet anno file")
    if not path.is_dir():
        raise ValueError(f"sequence path not found: {path}")
    names = {p.name for p in path.iterdir()}
    if "img" in names and any(n.startswith("groundtruth_rect") for n in names):
        return "otb"
    if "img" in names and "groundtruth.txt" in names and "full_occlusion.txt" in names:
        return "lasot"
    if "groundtruth.txt" in names and names & {"absence.label", "cover.label", "meta_info.ini"}:
        return "got10k"
    if "groundtruth.txt" in names and (
        "color" in names or "sequence" in names or any(n.endswith(".tag") for n in names)
    ):
        return "vot"
    if path.parent.name == "data_seq" or (
        path.parent.name == "UAV123" and path.parent.parent.name == "data_seq"
    ):
        return "uav-frames"
    if path.parent.name == "frames":
        return "trackingnet-frames"
    if names & {"30", "240"}:
        return "nfs"
    if "groundtruth.txt" in names and any(
        n.lower().endswith(IMAGE_EXTS) and Path(n).stem.isdigit() and len(Path(n).stem) == 8
        for n in names
    ):
        return "vot"
    return "folder"


def load_sequence(
    path: str | Path, *, box_file: str | Path | None = None, allow_nan: bool = False
) -> Sequence:
    """Load one sequence, detecting its layout.

    Accepted: an OTB folder (``img/`` + ``groundtruth_rect.txt``), a VOT folder (``color/``
    or flat frames + ``groundtruth.txt`` + ``*.tag``/``sequence``), a LaSOT folder, a GOT-10k
    folder, a UAV123 ``anno/<name>.txt`` file or ``data_seq/<name>`` folder, a TrackingNet
    ``anno/<name>.txt`` file or ``frames/<name>`` folder, an NfS ``<name>`` folder, or a plain
    folder of frames with a box file (``box_file`` names it explicitly). ``allow_nan`` lets
    an OTB folder mark absent frames with NaN rows (training readers skip those frames).
    """
    path = Path(path)
    if box_file is not None:
        return load_folder(path, Path(box_file))
    layout = detect_layout(path)
    if layout == "otb":
        return load_otb(path, allow_nan=allow_nan)
    if layout == "vot":
        return load_vot(path)
    if layout == "lasot":
        return load_lasot(path)
    if layout == "got10k":
        return load_got10k(path)
    if layout == "uav":
        return load_uav(path)
    if layout == "uav-frames":
        data = path.parent if path.parent.name == "data_seq" else path.parent.parent
        subset = [] if path.parent.name == "data_seq" else ["UAV123"]
        return load_uav(data.parent.joinpath("anno", *subset, f"{path.name}.txt"))
    if layout == "trackingnet":
        return load_trackingnet(path)
    if layout == "trackingnet-frames":
        return load_trackingnet(path.parent.parent / "anno" / f"{path.name}.txt")
    if layout == "nfs":
        return load_nfs(path)
    return load_folder(path)


# --------------------------------------------------------------------------- datasets


class Dataset:
    """A benchmark: named sequences loaded on demand, plus how it is scored.

    ``protocol`` tells the runner and the metrics what to do: ``ope`` (one pass, OTB-style
    success/precision), ``vot`` (reset-based, A/R/EAO), ``vot-lt`` (long-term Pr/Re/F),
    ``got10k`` (AO/SR). ``eao_interval`` is the VOT year's sequence-length interval.
    """

    protocol = "ope"
    eao_interval: tuple[int, int] | None = None

    def __init__(self, name: str, names: list[str]) -> None:
        if not names:
            raise ValueError(f"dataset {name!r} has no sequences")
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {name!r} has duplicate sequence names")
        self.name = name
        self._names = list(names)

    def names(self) -> list[str]:
        return list(self._names)

    def load(self, name: str) -> Sequence:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[Sequence]:
        for name in self._names:
            yield self.load(name)

    def __getitem__(self, key: int | str) -> Sequence:
        name = self._names[key] if isinstance(key, int) else key
        if name not in self._names:
            raise KeyError(f"{self.name} has no sequence {name!r}")
        return self.load(name)


def _root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset root not found: {root}")
    return root


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise ValueError(f"sequence list not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class OTB(Dataset):
    """OTB-2013 (``otb2013``, 51 targets), OTB-2015 (``otb2015``, 100) or ``tb50``.

    Only sequences present under ``root`` are listed unless ``strict``, which requires all.
    """

    def __init__(self, root: str | Path, version: str = "otb2015", strict: bool = False):
        self.root = _root(root)
        table = _otb_table()
        lists = {"otb2013": table["otb2013"], "tb50": table["tb50"]}
        lists["otb2015"] = lists["otb100"] = list(table["attributes"])
        if version not in lists:
            raise ValueError(f"unknown OTB version {version!r}; known: {sorted(lists)}")
        wanted = lists[version]
        present = [n for n in wanted if (self.root / self._folder(n)).is_dir()]
        if strict and len(present) != len(wanted):
            missing = sorted(set(wanted) - set(present))
            raise ValueError(f"{self.root}: {len(missing)} {version} sequences missing: {missing}")
        super().__init__(version, present)

    @staticmethod
    def _folder(name: str) -> str:
        return _otb_table()["special"].get(name, {}).get("folder", name)

    def load(self, name: str) -> Sequence:
        return load_otb(self.root / self._folder(name), name)


class VOT(Dataset):
    """VOT short-term: ``list.txt`` naming sequence folders (VOT2015 … VOT2019 layouts)."""

    protocol = "vot"
    # pysot toolkit, evaluation/eao_benchmark.py: [low, high] per year; VOT2015 has no entry
    # there, so its interval must be given explicitly (``eao_interval=``).
    INTERVALS: ClassVar[dict[int, tuple[int, int]]] = {
        2016: (108, 371),
        2017: (100, 356),
        2018: (100, 356),
        2019: (46, 291),
    }

    def __init__(
        self, root: str | Path, year: int | None = None, eao_interval: tuple[int, int] | None = None
    ):
        self.root = _root(root)
        self.year = year
        self.eao_interval = eao_interval or (self.INTERVALS.get(year) if year else None)
        names = _read_list(self.root / "list.txt")
        super().__init__(f"VOT{year}" if year else self.root.name, names)

    def load(self, name: str) -> Sequence:
        return load_vot(self.root / name, allow_nan=self.protocol == "vot-lt")


class VOTLT(VOT):
    """VOT long-term (VOT2018-LT …): VOT layout, NaN rows where the target is absent."""

    protocol = "vot-lt"

    def __init__(self, root: str | Path, year: int | None = 2018):
        super().__init__(root, None)
        self.year = year
        self.name = f"VOT{year}-LT" if year else self.root.name


class UAV123(Dataset):
    """UAV123 or UAV20L: ``anno/<subset>/<name>.txt`` + ``data_seq/UAV123/<folder>/``.

    The flat form ``anno/<name>.txt`` + ``data_seq/<name>/`` is accepted too.
    """

    def __init__(self, root: str | Path, subset: str = "UAV123"):
        self.root = _root(root)
        self.subset = "UAV20L" if subset.upper() == "UAV20L" else "UAV123"
        nested = self.root / "anno" / self.subset
        self.anno_dir = nested if nested.is_dir() else self.root / "anno"
        names = sorted(p.stem for p in self.anno_dir.glob("*.txt"))
        super().__init__(self.subset, names)

    def load(self, name: str) -> Sequence:
        return load_uav(self.anno_dir / f"{name}.txt", self.subset)


class LaSOT(Dataset):
    """LaSOT: ``<category>/<category>-<n>/``; ``subset='test'`` is the 280-video test split."""

    def __init__(self, root: str | Path, subset: str = "test"):
        self.root = _root(root)
        found = {p.parent.name: p.parent for p in self.root.glob("*/*/groundtruth.txt")}
        found.update({p.parent.name: p.parent for p in self.root.glob("*/groundtruth.txt")})
        if subset == "test":
            names = [n for n in _benchmark_table()["LaSOT_test"] if n in found]
        elif subset == "all":
            names = sorted(found)
        else:
            raise ValueError(f"LaSOT subset must be 'test' or 'all', got {subset!r}")
        self._paths = found
        super().__init__(f"LaSOT-{subset}", names)

    def load(self, name: str) -> Sequence:
        return load_lasot(self._paths[name])


class GOT10k(Dataset):
    """GOT-10k ``val`` or ``test``: ``<subset>/list.txt`` + one folder per sequence."""

    protocol = "got10k"

    def __init__(self, root: str | Path, subset: str = "val"):
        root = _root(root)
        if subset not in ("val", "test", "train"):
            raise ValueError(f"GOT-10k subset must be val, test or train, got {subset!r}")
        self.root = root / subset if (root / subset).is_dir() else root
        super().__init__(f"GOT-10k-{subset}", _read_list(self.root / "list.txt"))

    def load(self, name: str) -> Sequence:
        return load_got10k(self.root / name)


class TrackingNet(Dataset):
    """TrackingNet chunks (``TEST``, ``TRAIN_0`` …): ``<chunk>/anno`` + ``<chunk>/frames``."""

    def __init__(self, root: str | Path, chunks: tuple[str, ...] = ("TEST",)):
        self.root = _root(root)
        self._files: dict[str, Path] = {}
        for chunk in chunks:
            for p in sorted((self.root / chunk / "anno").glob("*.txt")):
                self._files[p.stem] = p
        super().__init__("TrackingNet-" + "+".join(chunks), list(self._files))

    def load(self, name: str) -> Sequence:
        return load_trackingnet(self._files[name])


class NfS(Dataset):
    """Need for Speed at 30 or 240 fps: ``<name>/<fps>/<name>.txt`` + frames."""

    def __init__(self, root: str | Path, fps: int = 30):
        if fps not in (30, 240):
            raise ValueError(f"NfS fps must be 30 or 240, got {fps}")
        self.root = _root(root)
        self.fps = fps
        names = sorted(p.parent.parent.name for p in self.root.glob(f"*/{fps}/*.txt"))
        super().__init__(f"NfS{fps}", names)

    def load(self, name: str) -> Sequence:
        return load_nfs(self.root / name, self.fps)


class SequenceList(Dataset):
    """Any sequences given by path (mixed layouts allowed), each read by ``load_sequence``."""

    def __init__(self, paths: list[str | Path], name: str = "sequences"):
        self._paths = {}
        for p in paths:
            path = Path(p)
            key = path.stem if path.is_file() else path.name
            if key in self._paths:
                raise ValueError(f"two sequences are named {key!r}: {self._paths[key]}, {path}")
            self._paths[key] = path
        super().__init__(name, list(self._paths))

    def load(self, name: str) -> Sequence:
        return load_sequence(self._paths[name])


class SequenceFolder(SequenceList):
    """Every sequence folder directly under ``root`` (or listed in ``root/list.txt``)."""

    def __init__(self, root: str | Path):
        root = _root(root)
        if (root / "list.txt").is_file():
            paths = [root / n for n in _read_list(root / "list.txt")]
        else:
            paths = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        super().__init__(paths, root.name)


def open_dataset(kind: str, root: str | Path) -> Dataset:
    """Build a dataset from a short name, e.g. ``otb2015``, ``vot2018``, ``vot2018-lt``,
    ``uav123``, ``uav20l``, ``lasot``, ``got10k-val``, ``trackingnet``, ``nfs30``, ``folder``.
    """
    key = kind.lower()
    if key in ("otb2013", "otb2015", "otb100", "tb50"):
        return OTB(root, key)
    if m := re.fullmatch(r"vot(\d{4})-lt", key):
        return VOTLT(root, int(m.group(1)))
    if m := re.fullmatch(r"vot(\d{4})", key):
        return VOT(root, int(m.group(1)))
    if key == "vot":
        return VOT(root)
    if key in ("uav123", "uav20l"):
        return UAV123(root, key.upper())
    if key in ("lasot", "lasot-test", "lasot-all"):
        return LaSOT(root, "all" if key == "lasot-all" else "test")
    if m := re.fullmatch(r"got10k-(val|test)", key):
        return GOT10k(root, m.group(1))
    if key == "trackingnet":
        return TrackingNet(root)
    if m := re.fullmatch(r"nfs(30|240)", key):
        return NfS(root, int(m.group(1)))
    if key == "folder":
        return SequenceFolder(root)
    raise ValueError(
        f"unknown dataset {kind!r}; known: otb2013, otb2015, tb50, vot<year>, vot<year>-lt, "
        "uav123, uav20l, lasot, lasot-all, got10k-val, got10k-test, trackingnet, nfs30, "
        "nfs240, folder"
    )
