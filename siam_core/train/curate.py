"""Pre-crop training frames around their targets, as pysot's ``par_crop`` does, in parallel.

Full frames (1280x720 and up) are slow to decode and mostly irrelevant to a pair; training reads
a ``size`` (511) px crop centred on the target whose context square (seeds-spec §1.4) spans
``exemplar`` (127) px instead. Output is pysot's curated layout, which ``pysot_crops`` sources
read (and pysot itself can read):

- ``<out>/<video>/<frame:06d>.<track:02d>.x.jpg`` crops, outside-image pixels in the mean colour;
- ``<out>/<name>.json``: ``{video: {track: {"<frame:06d>": [x1, y1, x2, y2], "category": c}}}``
  with boxes in the original image (pysot's convention; the reader maps them into the crop).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from siam_core.train.augment import crop_transform, warp_patch
from siam_core.train.data import TrainingSource, read_image


@dataclass(frozen=True)
class CropJob:
    """All crops cut from one image: one per (track key, box)."""

    image: str
    video: str
    frame: int
    crops: tuple[tuple[str, tuple[float, float, float, float]], ...]


def safe_name(text: str) -> str:
    """A file-system-safe relative video name (keeps '/' nesting, drops anything odd)."""
    parts = [p for p in str(text).split("/") if p not in ("", ".", "..")]
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts]
    return "/".join(parts) or "video"


def jobs_from_source(source: TrainingSource) -> tuple[list[CropJob], dict]:
    """Crop jobs and the pysot JSON annotation for every boxed frame of a source."""
    per_image: dict[tuple[str, int], dict] = {}
    meta: dict[str, dict[str, dict]] = {}
    for ti, track in enumerate(source.tracks):
        video = safe_name(track.video)
        key = f"{len(meta.get(video, {})):02d}"
        entry: dict = {}
        for frame in track.frames:
            path, box = source.frame_path(ti, frame), source.box(ti, frame)
            entry[f"{frame:06d}"] = [round(float(v), 2) for v in box]
            job = per_image.setdefault((str(path), frame), {"video": video, "crops": []})
            job["crops"].append((key, tuple(float(v) for v in box)))
        if track.category is not None:
            entry["category"] = track.category
        meta.setdefault(video, {})[key] = entry
    jobs = [
        CropJob(image, info["video"], frame, tuple(info["crops"]))
        for (image, frame), info in per_image.items()
    ]
    return jobs, meta


def crop_one(job: CropJob, out: str, size: int, exemplar: int, context: float, quality: int) -> int:
    """Write the crops of one job; returns how many files it wrote."""
    image = read_image(job.image)
    folder = Path(out) / job.video
    folder.mkdir(parents=True, exist_ok=True)
    for key, box in job.crops:
        matrix = crop_transform(np.asarray(box), size, exemplar, context)
        crop = warp_patch(image, matrix, size)
        target = folder / f"{job.frame:06d}.{key}.x.jpg"
        if not cv2.imwrite(str(target), crop, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise RuntimeError(f"cannot write {target}")
    return len(job.crops)


def crop_one_args(job: CropJob, args: tuple) -> int:
    """``crop_one`` with packed arguments, picklable for the process pool."""
    return crop_one(job, *args)


def curate(
    sources: Iterable[TrainingSource],
    out: str | Path,
    name: str = "train",
    size: int = 511,
    exemplar: int = 127,
    context: float = 0.5,
    workers: int = 4,
    quality: int = 90,
    progress: bool = True,
) -> Path:
    """Crop every boxed frame of ``sources`` into ``out``; returns the JSON annotation path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[CropJob] = []
    meta: dict[str, dict] = {}
    for source in sources:
        src_jobs, src_meta = jobs_from_source(source)
        clash = sorted(set(meta) & set(src_meta))
        if clash:
            raise ValueError(f"video names occur in two sources: {clash[:5]}")
        jobs.extend(src_jobs)
        meta.update(src_meta)
    if not jobs:
        raise ValueError("nothing to curate: the sources have no boxed frames")
    total = sum(len(j.crops) for j in jobs)
    bar = tqdm(total=total, desc="curate", unit="crop", disable=not progress, dynamic_ncols=True)
    args = (str(out), size, exemplar, context, quality)
    if workers <= 1:
        for job in jobs:
            bar.update(crop_one(job, *args))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for count in pool.map(partial(crop_one_args, args=args), jobs, chunksize=8):
                bar.update(count)
    bar.close()
    anno = out / f"{name}.json"
    anno.write_text(json.dumps(meta, separators=(",", ":"), sort_keys=True))
    return anno
