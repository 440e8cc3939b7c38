"""``siam-export``: write a model as ONNX template and search graphs, checked against PyTorch.

    siam-export MODEL --weights W --out DIR [--image FRAME_OR_VIDEO --box x,y,w,h] [--batch N ...]
                [--precision fp32|int8 [--calibration DIR] [--pairs N] [--weight-bits 8|7]
                [--ship]]

MODEL is a config name or YAML path (optional for our safetensors files, which embed theirs;
with neither MODEL nor --weights the embedded default model is exported). The graphs are
checked on a real crop pair: the first frame of --image (a video or an image file) around
--box, by default the demo clip or the shared ``bag`` clip when on disk. DIR receives
``template.onnx``, ``features.onnx``, ``head_b1.onnx`` (plus one head per --batch) and
``manifest.json``; ``siam-track --backend onnxruntime --onnx DIR`` runs them. ``--precision
int8`` writes the per-frame graphs statically quantised instead, calibrated on N search crops of
the training sequences in --calibration (default ../shared/data/train_extra; the shared test
sequences are refused): ``siam_core.deploy.quantize``. ``--ship`` also copies those int8 graphs
beside the weights file (``<stem>-int8/``), where precision int8 and backend auto find them on a
machine without the calibration data (how the embedded default model ships its own).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box must be x,y,w,h numbers, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"--box needs 4 values x,y,w,h, got {len(values)}")
    return values  # type: ignore[return-value]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="siam-export", description=__doc__.split("\n\n")[0].strip())
    p.add_argument("model", nargs="?", default="", help="config name or YAML path")
    p.add_argument("--weights", type=Path, help="checkpoint (default: the embedded model)")
    p.add_argument("--out", type=Path, required=True, help="folder to write the graphs into")
    p.add_argument("--image", type=Path, help="video or image to cut the check crops from")
    p.add_argument("--box", type=_box, help="target box x,y,w,h in that image")
    p.add_argument(
        "--batch", type=int, nargs="*", default=[], help="also export heads for N targets"
    )
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest relative deviation")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="graph precision")
    p.add_argument("--calibration", type=Path, help="int8: folder of training sequences")
    p.add_argument("--pairs", type=int, default=64, help="int8: calibration search crops")
    p.add_argument(
        "--weight-bits",
        type=int,
        choices=(8, 7),
        default=8,
        help="int8: 8-bit weights (CPUs with an int8 dot product: VNNI, AMX), or 7 for CPUs "
        "without one, where 8-bit ones saturate (--ship puts them in <stem>-int8-7bit/)",
    )
    p.add_argument(
        "--ship", action="store_true", help="int8: also copy the graphs beside the weights file"
    )
    return p


def _first_frame(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() != ".avi" else None
    if image is None:
        cap = cv2.VideoCapture(str(path))
        ok, image = cap.read()
        cap.release()
        if not ok or image is None:
            raise ValueError(f"{path}: neither an image nor a video OpenCV can read")
    return image


def run(args: argparse.Namespace) -> dict:
    from siam_core import zoo
    from siam_core.deploy.cache import check_frame
    from siam_core.deploy.export import export_onnx
    from siam_core.deploy.quantize import quantize_export, ship
    from siam_core.tracker.base import check_box, check_image
    from siam_core.tracker.siamrpn import SiamRPNTracker

    if any(b < 1 or b > 64 for b in args.batch):
        raise ValueError("--batch sizes must be 1..64")
    if args.ship and args.precision != "int8":
        raise ValueError("--ship copies int8 graphs: add --precision int8")
    tracker = zoo.load_tracker(args.model, str(args.weights or ""), device="cpu")
    if args.image is not None:
        frame = check_image(_first_frame(args.image))
        if args.box is None:
            raise ValueError("--image needs --box, the target to crop around")
        box, source = check_box(args.box, frame.shape), f"{args.image} frame 0"
    else:
        frame, box, source = check_frame()
    fp32 = SiamRPNTracker(tracker.model, tracker.cfg, optimize=False)
    z, x = fp32.patches(frame, box)
    if args.precision == "fp32":
        return export_onnx(
            tracker.model, tracker.cfg, args.out, z, x, tuple(args.batch), args.tolerance, source
        )
    if args.pairs < 1:
        raise ValueError("--pairs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="siam-export-") as tmp:
        export_onnx(
            tracker.model,
            tracker.cfg,
            tmp,
            z,
            x,
            tuple(args.batch),
            args.tolerance,
            source,
            fold=False,
        )
        manifest = quantize_export(
            tmp, args.out, fp32, args.calibration, args.pairs, args.weight_bits
        )
    if args.ship:
        print(f"shipped int8 graphs -> {ship(args.out, args.weights or zoo.DEFAULT_WEIGHTS)}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        manifest = run(args)
    except (ValueError, RuntimeError, FileNotFoundError, OSError) as exc:
        print(f"siam-export: error: {exc}", file=sys.stderr)
        return 1
    errors = manifest["check"]["max_relative_error"]
    worst = max(errors.values())
    print(
        f"exported {manifest['config']['name']} ({manifest.get('precision', 'fp32')}) -> "
        f"{args.out} "
        f"(heads for {manifest['head_batches']} targets; max relative deviation {worst:.1e})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
