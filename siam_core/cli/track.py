"""``siam-track``: run a Siamese tracker (any family) over a video or an image folder.

    siam-track SOURCE [--weights FILE] [--model NAME] [--init x,y,w,h] --out track.json
               [--save-video out.mp4] [--device auto|cpu|cuda] [--threads N] [--max-frames N]
               [--backend auto|torch|onnxruntime|openvino|tensorrt] [--online] [--long-term]
               [--report-lost]
               [--precision auto|fp32|fp16|bf16|int8] [--graph-mode eager|cuda_graph|compile]

SOURCE is a video file (anything OpenCV decodes), a sequence folder with ground truth (OTB,
VOT, UAV123, ... as ``siam_core.data.sequences.load_sequence`` reads them; ``--init`` then
defaults to the first ground-truth box) or any folder of numbered frames. The JSON output has
one entry per frame: box (0-based x, y, w, h, top-left), score and state. ``--model`` may be
left out when the weights file is one of ours (config embedded); with neither, the embedded
default model is used (``siam_core.zoo``, shared with the ROS node). The config decides the
tracker: long-term configs track long-term, ``dasiamrpn_*`` with the official DaSiamRPN
conventions. ``--online`` adds DROL's online classifier to any RPN-family model (a ``drol_*``
preset has it already). ``--long-term`` tracks any model, of either family, with the long-term
state machine (LOST / RECOVERED, a wider search while lost) and the model config's long-term
settings, else the paper's (SiamFC models: the SiamFC thresholds). ``--report-lost`` keeps the
short-term track unchanged and only reports its state: LOST below the same lost threshold
(the node's default, ``report_lost``). Frame 0 is the given box
with state ``INIT`` and score null. Heavy modules (torch, OpenCV) load after the arguments are
parsed, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siam_core.deploy import BACKENDS, GRAPH_MODES, PRECISIONS
from siam_core.threads import AUTO, set_threads

if TYPE_CHECKING:
    import numpy as np

_VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


def _box(text: str) -> tuple[float, float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--init must be x,y,w,h numbers, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"--init needs 4 values x,y,w,h, got {len(values)}")
    from siam_core.tracker.base import check_box  # NumPy/OpenCV only, no torch

    try:
        return check_box(values)  # against the image once the first frame is read
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--init: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="siam-track", description="Track one object through a video or image folder."
    )
    p.add_argument("source", type=Path, help="video file, sequence folder or frame folder")
    p.add_argument("--model", help="config name or YAML path (optional for our .safetensors)")
    p.add_argument(
        "--weights",
        type=Path,
        help="pysot model.pth, DaSiamRPN's official .model, or .safetensors (default model)",
    )
    p.add_argument("--init", type=_box, help="initial box x,y,w,h (0-based, top-left)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--save-video", type=Path, help="write an annotated video here")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda[:N]")
    p.add_argument(
        "--threads",
        default=AUTO,
        help="CPU threads for PyTorch: auto (default: OMP_NUM_THREADS if set, else 1 on <= 2 "
        "cores, else half the cores up to 4) or a number",
    )
    p.add_argument(
        "--backend",
        choices=(AUTO, *BACKENDS),
        default=AUTO,
        help="network runtime: auto (OpenVINO int8 on the CPU for a model that ships int8 "
        "graphs, as the default model does; else PyTorch), PyTorch, or the exported ONNX "
        "graphs in ONNX Runtime (CPU, or "
        "CUDA with --device cuda), OpenVINO (CPU) or ONNX Runtime's TensorRT provider (CUDA); "
        "exported and checked on first use",
    )
    p.add_argument(
        "--precision",
        choices=(AUTO, *PRECISIONS),
        default=AUTO,
        help="auto: int8 on an ONNX runtime on the CPU where the model ships int8 graphs, else "
        "fp32; onnxruntime/openvino: int8 graphs; "
        "torch: autocast the network to fp16/bf16 (GPU path; fp16 keeps boxes within "
        "0.1 px per frame, bf16 does not); tensorrt: fp16 lets TensorRT use fp16 kernels",
    )
    p.add_argument(
        "--graph-mode",
        choices=GRAPH_MODES,
        default="eager",
        help="torch: capture the per-frame step as CUDA graphs (cuda_graph, CUDA only) or "
        "compile it (compile, torch.compile); failures fall back to eager with a warning",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="add DROL's online classifier (the paper's settings, or those embedded in the "
        "model: tracker.online_*; a drol_ preset's own)",
    )
    lost = p.add_mutually_exclusive_group()
    lost.add_argument(
        "--long-term",
        action="store_true",
        help="long-term mode: LOST/RECOVERED states and a wider search while lost (long-term "
        "configs such as siamrpn_r50_l234_dwxcorr_lt have it without asking)",
    )
    lost.add_argument(
        "--report-lost",
        action="store_true",
        help="the short-term track unchanged, its state LOST while the score is below the lost "
        "threshold and RECOVERED above the recover threshold (the node's default)",
    )
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _open_source(
    source: Path, init: tuple[float, float, float, float] | None
) -> tuple[Iterable[np.ndarray], int, float | None, tuple[float, float, float, float]]:
    """(frames, frame count, fps, initial box) of a video, sequence folder or frame folder."""
    from siam_core.data.sequences import load_sequence
    from siam_core.io.frames import FrameSource

    if source.is_dir() or source.suffix == ".txt":
        try:
            seq = load_sequence(source)
        except ValueError as exc:
            if init is None:
                raise ValueError(
                    f"{source}: no ground truth to start from ({exc}); give --init x,y,w,h"
                ) from exc
        else:
            box = init or seq.init_box
            if not all(math.isfinite(v) for v in box):
                raise ValueError(f"{source}: the first ground-truth box is not valid; give --init")
            return seq, len(seq), None, box
    frames = FrameSource(source)
    if init is None:
        raise ValueError(f"{source} has no ground truth; give --init x,y,w,h")
    return frames, len(frames), frames.fps, init


def _draw(frame: np.ndarray, box: tuple[float, ...], score: float | None) -> np.ndarray:
    import cv2

    out = frame.copy()
    x, y, w, h = box
    cv2.rectangle(out, (round(x), round(y)), (round(x + w), round(y + h)), (0, 255, 0), 2)
    label = "init" if score is None else f"{score:.3f}"
    cv2.putText(out, label, (round(x), max(12, round(y) - 4)), 0, 0.5, (0, 255, 0), 1)
    return out


def _limited(frames: Iterable[np.ndarray], limit: int | None) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if limit is not None and i >= limit:
            return
        yield frame


def _long_term(args: argparse.Namespace) -> Mapping[str, Any] | None:
    """``zoo.load_tracker``'s ``long_term`` for the flags: the config's long-term mode, its
    report-only form, or neither."""
    if args.long_term:
        return {}
    if args.report_lost:
        from siam_core.tracker.longterm import REPORT_ONLY

        return REPORT_ONLY
    return None


def run(args: argparse.Namespace) -> dict:
    """Track and return the JSON document (also written to ``args.out``)."""
    for target in (args.out, args.save_video):
        if target is not None and not target.parent.is_dir():
            raise ValueError(f"output folder does not exist: {target.parent}")
        if target is not None and target.is_dir():
            raise ValueError(f"output path is a folder, not a file: {target}")
    if args.save_video is not None and args.save_video.suffix.lower() not in _VIDEO_CODECS:
        raise ValueError(f"--save-video must end in one of {sorted(_VIDEO_CODECS)}")
    threads = set_threads(args.threads)
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError("--max-frames must be >= 1")
    import cv2
    from tqdm import tqdm

    from siam_core import zoo

    frames, count, fps, init = _open_source(args.source, args.init)
    weights = str(args.weights) if args.weights is not None else ""
    backend, precision = zoo.resolve_runtime(
        args.backend, args.precision, args.device, args.model or "", weights, args.graph_mode
    )
    tracker = zoo.load_tracker(
        args.model or "",
        weights,
        args.device,
        long_term=_long_term(args),
        backend=backend,
        threads=threads,
        online={} if args.online else None,
        precision=precision,
        graph_mode=args.graph_mode,
    )
    total = min(count, args.max_frames) if args.max_frames else count
    writer = None
    records: list[dict] = []
    times: list[float] = []
    try:
        for index, frame in enumerate(
            tqdm(
                _limited(frames, args.max_frames),
                total=total or None,
                disable=args.quiet,
                unit="frame",
                desc="siam-track",
            )
        ):
            if index == 0:
                tracker.init(frame, init)
                box, score, state = tuple(float(v) for v in init), None, "INIT"
            else:
                start = time.perf_counter()
                result = tracker.track(frame)
                times.append(time.perf_counter() - start)
                box, score, state = result.box, result.score, result.state.name
            records.append(
                {
                    "frame": index,
                    "box": [round(v, 3) for v in box],
                    "score": score,
                    "state": state,
                }
            )
            if args.save_video is not None:
                if writer is None:
                    codec = cv2.VideoWriter_fourcc(*_VIDEO_CODECS[args.save_video.suffix.lower()])
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(args.save_video), codec, fps or 25.0, (w, h))
                    if not writer.isOpened():
                        raise RuntimeError(f"OpenCV cannot write the video {args.save_video}")
                writer.write(_draw(frame, box, score))
    finally:
        if writer is not None:
            writer.release()
    if not records:
        raise ValueError(f"{args.source}: no frames")
    doc = {
        "source": str(args.source),
        "model": tracker.cfg.name,
        "weights": weights or str(zoo.DEFAULT_WEIGHTS),
        "device": str(tracker.device),
        "backend": backend,
        "precision": precision,
        "threads": threads,
        "init": list(init),
        "box_format": "x, y, w, h (0-based pixels, top-left corner)",
        "states": "frame 0: INIT (the given box, no score); then TRACKING, LOST or RECOVERED",
        "median_track_ms": round(1000 * statistics.median(times), 3) if times else None,
        "frames": records,
    }
    args.out.write_text(json.dumps(doc, indent=1))
    return doc


def _join_init(argv: list[str]) -> list[str]:
    """``--init -20,-20,60,60`` as ``--init=-20,...``: argparse would read the negative box
    as an option."""
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--init":
            value = next(items, None)
            out.append(item if value is None else f"--init={value}")
        else:
            out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_join_init(sys.argv[1:] if argv is None else argv))
    try:
        doc = run(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"siam-track: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, but still one line for the user, never a traceback
        print(f"siam-track: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    n = len(doc["frames"])
    print(f"tracked {n} frames with {doc['model']} -> {args.out}", file=sys.stderr)
    if args.save_video is not None:
        print(f"annotated video -> {args.save_video}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
