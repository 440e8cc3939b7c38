"""Run any trackers on any dataset and write results in pysot's toolkit layout.

Layout under ``results_dir/<dataset>/<tracker>/`` (so results can be exchanged with pysot's
toolkit, and GOT-10k's with the got10k toolkit):

* one-pass (OTB, UAV, LaSOT, NfS, TrackingNet): ``<seq>.txt``, one ``x,y,w,h`` per frame, the
  first line the initial box; frame times in ``times/<seq>_time.txt`` (got10k's OTB layout).
* VOT short-term: ``baseline/<seq>/<seq>_001.txt`` with ``1`` (initialised), ``2`` (failure),
  ``0`` (skipped) or a box; times in ``baseline/<seq>/<seq>_time.value``.
* VOT long-term: ``longterm/<seq>/<seq>_001.txt`` (first line ``1``),
  ``<seq>_001_confidence.value`` (first line empty) and ``<seq>_time.value``.
* GOT-10k: ``<seq>/<seq>_001.txt`` and ``<seq>/<seq>_time.txt``.

Sequences run in parallel processes; every process builds its own tracker from a picklable
factory (a zero-argument callable, or a tracker spec string such as ``KCF``). A sequence
whose result file exists is skipped, so an interrupted run resumes; files are written to a
temporary name and renamed, so a killed run never leaves a partial result behind.

Each tracker folder records how its results were made in ``provenance.json`` (tracker spec,
``max_frames``, SHA-256 of the weights file a ``siamrpn:`` spec names). Resuming with other
settings would mix results of two runs, so it stops with an error naming the folder to clear;
folders without the record (older runs, results from elsewhere) are checked row by row.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siam_core.data.sequences import Dataset, Sequence, read_regions
from siam_core.eval.metrics import (
    VOT_FAILURE,
    VOT_INIT,
    VOT_REGION,
    VOT_SKIP,
    VOT_SKIP_FRAMES,
    VotRun,
    polygon_iou,
)
from siam_core.tracker.base import Tracker, TrackResult

TrackerFactory = Callable[[], Tracker] | str


def make_tracker(spec: TrackerFactory) -> Tracker:
    """Build a tracker from a factory or a spec string.

    Strings: ``MIL``, ``KCF``, ``CSRT`` (OpenCV baselines); ``siamrpn:<config>[:<weights>]``
    or ``siamfc:<config>[:<weights>]`` (``siamrpn::<weights>`` for our files, whose config is
    embedded; either prefix takes any family's config, the tracker the config names:
    ``siam_core.zoo.build``), with ``@onnxruntime`` or ``@openvino`` appended to run the
    exported graphs and ``@<backend>:<precision>`` to run them (or torch) at a precision
    (``@onnxruntime:int8``, ``@openvino:bf16``, ``@torch:bf16``);
    ``drol:<config>[:<weights>]``, the same model with DROL's online classifier (the config's
    ``online`` settings, else the paper's); ``<module>:<function>`` for any zero-argument
    builder.
    """
    if callable(spec):
        tracker = spec()
    elif isinstance(spec, str):
        tracker = _tracker_from_string(spec)
    else:
        raise ValueError(f"tracker spec must be a callable or a string, got {spec!r}")
    if not isinstance(tracker, Tracker):
        raise ValueError(f"tracker spec {spec!r} built {type(tracker).__name__}, not a Tracker")
    return tracker


def _tracker_from_string(spec: str) -> Tracker:
    from siam_core.baselines import BASELINES, build_baseline

    if spec.upper() in BASELINES:
        return build_baseline(spec)
    spec, _, runtime = spec.partition("@")
    backend, _, precision = runtime.partition(":")
    head, _, rest = spec.partition(":")
    if head in ("siamrpn", "siamfc", "drol"):
        config, _, weights = rest.partition(":")
        if not config and not weights:
            raise ValueError(f"{head} spec needs a config: {head}:<config>[:<weights>]")
        try:
            module = importlib.import_module("siam_core.zoo")
        except ImportError as exc:
            raise ValueError(f"tracker spec {spec!r}: Siamese trackers unavailable: {exc}") from exc
        # ours embed the config; @<backend> runs the exported graphs (tensorrt: on CUDA)
        backend = backend or "torch"
        return module.build(
            config or None,
            weights or None,
            device="cpu" if backend == "torch" else module.backend_device(backend, "auto"),
            backend=backend,
            online={} if head == "drol" else None,
            precision=precision or "fp32",
        )
    if rest:
        try:
            module = importlib.import_module(head)
        except ImportError as exc:
            raise ValueError(f"tracker spec {spec!r}: cannot import {head}: {exc}") from exc
        builder = getattr(module, rest, None)
        if builder is None:
            raise ValueError(f"tracker spec {spec!r}: {head} has no {rest}")
        return builder()
    raise ValueError(
        f"unknown tracker {spec!r}; use MIL, KCF, CSRT, siamrpn:<config>[:<weights>], "
        "siamfc:<config>[:<weights>], drol:<config>[:<weights>] or <module>:<function>"
    )


# --------------------------------------------------------------------------- result files


def result_paths(protocol: str, root: Path, seq: str) -> tuple[Path, Path]:
    """(result file, frame-times file) of one sequence for a tracker folder ``root``."""
    if protocol == "vot":
        folder = root / "baseline" / seq
        return folder / f"{seq}_001.txt", folder / f"{seq}_time.value"
    if protocol == "vot-lt":
        folder = root / "longterm" / seq
        return folder / f"{seq}_001.txt", folder / f"{seq}_time.value"
    if protocol == "got10k":
        return root / seq / f"{seq}_001.txt", root / seq / f"{seq}_time.txt"
    if protocol == "ope":
        return root / f"{seq}.txt", root / "times" / f"{seq}_time.txt"
    raise ValueError(f"unknown protocol {protocol!r}")


def confidence_path(result: Path) -> Path:
    """VOT long-term confidence file next to ``<seq>_001.txt``."""
    return result.with_name(result.stem + "_confidence.value")


def _write_atomic(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def _fmt(values: np.ndarray | tuple[float, ...]) -> str:
    return ",".join(f"{float(v):.4f}" for v in values)


def read_box_results(path: Path, frames: int) -> np.ndarray:
    """A one-pass result file: ``frames`` rows of ``x,y,w,h``; NaN, missing or extra rows,
    or an empty file are errors naming the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results file not found: {path}")
    if not path.read_text().strip():
        raise ValueError(f"{path}: results file is empty")
    boxes = read_regions(path, fields=(4,))
    if len(boxes) != frames:
        raise ValueError(f"{path}: {len(boxes)} rows, but the sequence has {frames} frames")
    return boxes


def read_vot_results(path: Path, frames: int) -> VotRun:
    """A VOT result file (codes 0/1/2 or regions) as a :class:`VotRun`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results file not found: {path}")
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: results file is empty")
    if len(lines) != frames:
        raise ValueError(f"{path}: {len(lines)} rows, but the sequence has {frames} frames")
    codes = np.full(frames, VOT_REGION, dtype=np.int64)
    regions = np.full((frames, 8), np.nan)
    width = 4
    for number, line in enumerate(lines, start=1):
        tokens = [t for t in line.replace("\t", ",").replace(" ", ",").split(",") if t]
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number in {line!r}") from None
        if len(values) == 1 and values[0] in (VOT_SKIP, VOT_INIT, VOT_FAILURE):
            codes[number - 1] = int(values[0])
        elif len(values) in (4, 8):
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{path}:{number}: NaN or infinite region {line!r}")
            regions[number - 1, : len(values)] = values
            width = max(width, len(values))
        else:
            raise ValueError(f"{path}:{number}: expected 0, 1, 2 or a region, got {line!r}")
    if codes[0] != VOT_INIT:
        raise ValueError(f"{path}:1: a VOT result starts with 1 (initialised), got {lines[0]!r}")
    return VotRun(codes, regions[:, :width])


def read_confidences(path: Path, frames: int) -> np.ndarray:
    """VOT long-term confidences (empty line = none, read as NaN)."""
    lines = Path(path).read_text().splitlines()
    if len(lines) != frames:
        raise ValueError(f"{path}: {len(lines)} rows, but the sequence has {frames} frames")
    out = np.full(frames, np.nan)
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out[number - 1] = float(line)
            except ValueError:
                raise ValueError(f"{path}:{number}: not a number: {line!r}") from None
    return out


def read_times(path: Path, frames: int) -> np.ndarray | None:
    """Per-frame seconds (NaN for skipped frames), or None when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    values = []
    for number, line in enumerate(path.read_text().split(), start=1):
        try:
            values.append(float(line.split(",")[0]))
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number: {line!r}") from None
    if len(values) != frames:
        raise ValueError(f"{path}: {len(values)} times, but the sequence has {frames} frames")
    return np.asarray(values)


# --------------------------------------------------------------------------- protocols


def _checked_box(tracker: Tracker, seq: Sequence, index: int, box: tuple) -> np.ndarray:
    arr = np.asarray(box, dtype=np.float64)
    if arr.shape != (4,) or not np.isfinite(arr).all():
        raise RuntimeError(
            f"tracker {tracker.name} returned a bad box {box!r} on frame {index} of {seq.name}"
        )
    return arr


def run_one_pass(
    tracker: Tracker,
    seq: Sequence,
    observe: Callable[[np.ndarray, TrackResult], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initialise on frame 0 with the ground truth and track to the end, no resets.

    Returns boxes (first row the initial box), scores (NaN on frame 0) and frame seconds
    (tracker time only; frame 0 is the ``init`` time). ``observe(image, result)`` sees every
    tracked frame, outside the timing (a calibration's extra measurements).
    """
    n = len(seq)
    boxes, scores, times = np.zeros((n, 4)), np.full(n, np.nan), np.zeros(n)
    image = seq.read(0)
    start = time.perf_counter()
    tracker.init(image, seq.init_box)
    times[0] = time.perf_counter() - start
    boxes[0] = seq.gt[0]
    for i in range(1, n):
        image = seq.read(i)
        start = time.perf_counter()
        result = tracker.track(image)
        times[i] = time.perf_counter() - start
        boxes[i] = _checked_box(tracker, seq, i, result.box)
        scores[i] = result.score
        if observe is not None:
            observe(image, result)
    return boxes, scores, times


def run_vot_reset(
    tracker: Tracker, seq: Sequence, skip: int = VOT_SKIP_FRAMES
) -> tuple[VotRun, np.ndarray]:
    """VOT reset protocol: a failure is a frame whose overlap with the ground truth (clipped
    to the image) is 0; the tracker is re-initialised ``skip`` frames later on that frame's
    axis-aligned ground-truth box. Skipped frames have time NaN."""
    n = len(seq)
    gt_regions = seq.polygons if seq.polygons is not None else seq.gt
    codes = np.full(n, VOT_REGION, dtype=np.int64)
    regions = np.full((n, 4), np.nan)
    times = np.full(n, np.nan)
    restart = 0
    for i in range(n):
        if i < restart:
            codes[i] = VOT_SKIP
            continue
        image = seq.read(i)
        if i == restart:
            box = tuple(float(v) for v in seq.gt[i])
            start = time.perf_counter()
            tracker.init(image, box)
            times[i] = time.perf_counter() - start
            codes[i] = VOT_INIT
            continue
        start = time.perf_counter()
        result = tracker.track(image)
        times[i] = time.perf_counter() - start
        box = _checked_box(tracker, seq, i, result.box)
        height, width = image.shape[:2]
        if polygon_iou(box, gt_regions[i], (width, height)) > 0:
            regions[i] = box
        else:
            codes[i] = VOT_FAILURE
            restart = i + skip
    return VotRun(codes, regions), times


def _write_sequence(protocol: str, tracker: Tracker, seq: Sequence, folder: Path) -> int:
    """Run ``tracker`` on ``seq`` under ``protocol`` and write its files; returns frames."""
    result_file, time_file = result_paths(protocol, folder, seq.name)
    if protocol == "vot":
        run, times = run_vot_reset(tracker, seq)
        lines = [
            str(int(c)) if c != VOT_REGION else _fmt(r)
            for c, r in zip(run.codes, run.regions, strict=True)
        ]
        _write_atomic(time_file, [f"{t:.6f}" if np.isfinite(t) else "NaN" for t in times])
        _write_atomic(result_file, lines)
        return len(seq)
    boxes, scores, times = run_one_pass(tracker, seq)
    _write_atomic(time_file, [f"{t:.6f}" for t in times])
    if protocol == "vot-lt":
        conf = [""] + [f"{s:.6f}" for s in scores[1:]]
        _write_atomic(confidence_path(result_file), conf)
        _write_atomic(result_file, ["1"] + [_fmt(b) for b in boxes[1:]])
    else:
        _write_atomic(result_file, [_fmt(b) for b in boxes])
    return len(seq)


# --------------------------------------------------------------------------- the runner


@dataclass(frozen=True)
class Job:
    """One tracker on one sequence."""

    tracker: str
    sequence: str
    status: str  # "ran" or "skipped"
    frames: int
    seconds: float


PROVENANCE = "provenance.json"


def _weights_file(spec: TrackerFactory) -> Path | None:
    """The weights file a ``siamrpn:<config>:<weights>`` spec names, if any."""
    if not isinstance(spec, str) or not spec.startswith("siamrpn:"):
        return None
    weights = spec.split(":", 2)[2] if spec.count(":") >= 2 else ""
    return Path(weights) if weights else None


def provenance(spec: TrackerFactory, max_frames: int | None) -> dict[str, object]:
    """How results are made: what a resumed run must share with the results it keeps."""
    if callable(spec):
        name = f"{getattr(spec, '__module__', '?')}.{getattr(spec, '__qualname__', repr(spec))}"
    else:
        name = str(spec)
    weights = _weights_file(spec)
    digest = None
    if weights is not None and weights.is_file():
        with weights.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"tracker": name, "max_frames": max_frames, "weights_sha256": digest}


def read_provenance(folder: Path) -> dict[str, object] | None:
    path = Path(folder) / PROVENANCE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it or the folder") from exc


def _check_resume(
    folder: Path,
    wanted: dict[str, object],
    dataset: Dataset,
    protocol: str,
    done: list[str],
    max_frames: int | None,
) -> None:
    """Refuse to resume into ``folder`` when its results were made differently."""
    recorded = read_provenance(folder)
    if recorded is not None:
        changed = [
            f"{key} {recorded.get(key)!r} -> {value!r}"
            for key, value in wanted.items()
            if recorded.get(key) != value
        ]
        if changed:
            raise ValueError(
                f"{folder} holds results made with other settings ({'; '.join(changed)}); "
                f"clear that folder (rm -r {folder}) or write elsewhere with --results"
            )
        return
    for name in done:  # no record: check that each kept result has the frames asked for now
        seq = dataset.load(name)
        frames = len(seq.head(max_frames)) if max_frames is not None else len(seq)
        result = result_paths(protocol, folder, name)[0]
        rows = len([line for line in result.read_text().splitlines() if line.strip()])
        if rows != frames:
            raise ValueError(
                f"{result} has {rows} rows but this run wants {frames} frames of {name} "
                f"(another --max-frames?); clear {folder} or write elsewhere with --results"
            )


def _run_job(
    dataset: Dataset,
    protocol: str,
    tracker_name: str,
    factory: TrackerFactory,
    seq_name: str,
    folder: Path,
    max_frames: int | None,
) -> Job:
    start = time.perf_counter()
    seq = dataset.load(seq_name)
    if max_frames is not None:
        seq = seq.head(max_frames)
    tracker = make_tracker(factory)
    frames = _write_sequence(protocol, tracker, seq, folder)
    return Job(tracker_name, seq_name, "ran", frames, time.perf_counter() - start)


def tracker_folder(results_dir: Path, dataset: Dataset, tracker: str) -> Path:
    return Path(results_dir) / dataset.name / tracker


def run_benchmark(
    dataset: Dataset,
    trackers: Mapping[str, TrackerFactory],
    results_dir: str | Path,
    *,
    workers: int = 1,
    max_frames: int | None = None,
    sequences: list[str] | None = None,
    on_job: Callable[[Job], None] | None = None,
) -> list[Job]:
    """Run every tracker on every sequence (``sequences`` picks a subset) under the
    dataset's protocol; ``max_frames`` truncates sequences for quick runs.

    With ``workers`` > 1 the (tracker, sequence) jobs run in that many spawned processes.
    Jobs whose result file exists are skipped. ``on_job`` is called as each job ends.
    """
    if not trackers:
        raise ValueError("no trackers to run")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    names = dataset.names() if sequences is None else list(sequences)
    unknown = sorted(set(names) - set(dataset.names()))
    if unknown:
        raise ValueError(f"{dataset.name} has no sequences {unknown}")
    protocol = dataset.protocol
    done: list[Job] = []
    pending = []
    for tracker_name, factory in trackers.items():
        folder = tracker_folder(Path(results_dir), dataset, tracker_name)
        wanted = provenance(factory, max_frames)
        kept = [n for n in names if result_paths(protocol, folder, n)[0].is_file()]
        _check_resume(folder, wanted, dataset, protocol, kept, max_frames)
        if len(kept) < len(names):
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(folder / PROVENANCE, [json.dumps(wanted, indent=1)])
        for seq_name in names:
            if seq_name in kept:
                job = Job(tracker_name, seq_name, "skipped", 0, 0.0)
                done.append(job)
                if on_job:
                    on_job(job)
                continue
            pending.append((dataset, protocol, tracker_name, factory, seq_name, folder, max_frames))
    if workers == 1 or len(pending) <= 1:
        for args in pending:
            job = _run_job(*args)
            done.append(job)
            if on_job:
                on_job(job)
        return done
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_run_job, *args) for args in pending]
        for future in as_completed(futures):
            job = future.result()
            done.append(job)
            if on_job:
                on_job(job)
    return done
