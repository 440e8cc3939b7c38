"""Pack a training recipe's data (and the test sequences) into one folder a device run can carry.

A lent GPU machine sees only the repository (``../shared`` stays behind) and takes at most
64 MiB with it, so this re-encodes every frame the recipe trains on (JPEG, longer side at
most ``--max-side``, every ``--stride``-th frame, boxes scaled with them, NaN rows where the
target is absent) into OTB-like folders under ``<out>/train/<source>/<video>/``, copies the
evaluation sequences the same way at full size (``<out>/test/``) and writes
``<out>/recipe.yaml``: the recipe with its sources pointed there, ``frame_range`` divided by
the stride, the feature cache off (a GPU runs the backbone in milliseconds) and optional
schedule overrides (``--epochs`` etc., used by the CPU rehearsal). Photo sources
(``pkg://skimage/...``) stay as they are: scikit-image is installed on the device image.

    python tools/pack_device_data.py --out .devdata      # then: bash tools/train_on_device.sh
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siam_core.data.sequences import load_sequence  # noqa: E402
from siam_core.train.config import load_train_config  # noqa: E402
from siam_core.train.data import build_sources  # noqa: E402

RECIPE = ROOT / "siam_core" / "configs" / "train" / "default_mobilenet.yaml"
SHARED = ROOT.parent / "shared" / "data" / "sequences"
TEST_SEQUENCES = (
    "otb/Crossing",
    "vot/bag",
    "vot/book",
    "uav123/anno/wakeboard7.txt",
    "otb/MotorRolling",
    "vot/ball1_vot2015",
)


def write_sequence(
    frames: list[Path],
    gt: np.ndarray,
    absent: np.ndarray,
    folder: Path,
    stride: int,
    max_side: int,
    quality: int,
    max_frames: int | None = None,
) -> int:
    """Write every ``stride``-th frame as ``img/00001.jpg…`` + ``groundtruth_rect.txt``."""
    keep = list(range(0, len(frames), stride))[:max_frames]
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for n, i in enumerate(keep, start=1):
        image = cv2.imread(str(frames[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise RuntimeError(f"cannot read frame {frames[i]}")
        scale = min(1.0, max_side / max(image.shape[:2])) if max_side else 1.0
        if scale < 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(
            str(folder / "img" / f"{n:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        box = gt[i] * scale
        rows.append("NaN,NaN,NaN,NaN" if absent[i] else ",".join(f"{v:.2f}" for v in box))
    (folder / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")
    return len(keep)


def pack(args: argparse.Namespace) -> dict:
    cfg = load_train_config(args.recipe)
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    recipe = cfg.to_dict()
    # Photo sources as written (pkg:// paths resolve on the device, absolute ones would not).
    written = yaml.safe_load(Path(args.recipe).read_text())["data"]["sources"]
    sources = []
    for src_cfg, src, raw, text in zip(
        cfg.data.sources, build_sources(cfg), recipe["data"]["sources"], written, strict=True
    ):
        if src_cfg.type != "sequences":
            sources.append(text)
            continue
        root = out / "train" / src.name
        for track in range(len(src.tracks)):
            video = src.tracks[track].video
            frames = [src.frame_path(track, f) for f in range(len(src.frames[track]))]
            xyxy = src.boxes[track]
            gt = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
            absent = ~np.isin(np.arange(len(frames)), src.tracks[track].frames)
            write_sequence(
                frames,
                gt,
                absent,
                root / video,
                args.stride,
                args.max_side,
                args.quality,
                args.max_frames,
            )
        sources.append(
            {
                **raw,
                "root": str(root.relative_to(out)),
                "paths": [],
                "names": [],
                "format": "otb",
                "frame_range": max(1, math.ceil(raw["frame_range"] / args.stride)),
            }
        )
    recipe["data"]["sources"] = sources
    recipe["solver"]["feature_cache"] = {"pairs": 0, "dir": "", "dtype": "float16"}
    recipe["runtime"]["num_workers"] = args.workers
    for key in ("epochs", "pairs_per_epoch", "batch_size"):
        if getattr(args, key):
            recipe["solver"][key] = getattr(args, key)
    if args.unfreeze_epoch is not None:
        recipe["solver"]["backbone"]["unfreeze_epoch"] = args.unfreeze_epoch
    if args.warmup_epochs is not None:
        recipe["solver"]["warmup"]["epochs"] = args.warmup_epochs

    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    for spec in args.test:
        seq = load_sequence(SHARED / spec)
        absent = seq.absent if seq.absent is not None else np.zeros(len(seq.gt), bool)
        write_sequence(
            list(seq.frames),
            np.nan_to_num(seq.gt),
            absent,
            out / "test" / seq.name,
            1,
            args.test_max_side,
            args.test_quality,
            args.max_frames,
        )
    return recipe


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--out", type=Path, default=ROOT / ".devdata")
    parser.add_argument("--stride", type=int, default=3, help="keep every n-th frame")
    parser.add_argument("--max-side", type=int, default=288, help="longer side of train frames")
    parser.add_argument("--quality", type=int, default=65, help="JPEG quality of train frames")
    parser.add_argument("--test-quality", type=int, default=65)
    parser.add_argument(
        "--test-max-side",
        type=int,
        default=640,
        help="longer side of test frames (0: as they are); the device's evaluation is a check, "
        "the reported one runs on the originals here",
    )
    parser.add_argument("--test", nargs="*", default=list(TEST_SEQUENCES), help="under shared")
    parser.add_argument("--max-frames", type=int, help="at most this many frames per sequence")
    parser.add_argument("--workers", type=int, default=8, help="data-loading processes there")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--pairs-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--unfreeze-epoch", type=int)
    parser.add_argument("--warmup-epochs", type=int)
    parser.add_argument(
        "--budget-mib",
        type=float,
        default=38.0,
        help="refuse a larger pack (64 MiB travel, wheels 13)",
    )
    args = parser.parse_args(argv)
    try:
        pack(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"pack_device_data: {exc}", file=sys.stderr)
        return 2
    mib = size_of(args.out) / 2**20
    print(f"pack_device_data: {args.out} holds {mib:.1f} MiB")
    if mib > args.budget_mib:
        print(
            f"pack_device_data: over the {args.budget_mib} MiB budget; raise --stride or lower "
            "--max-side/--quality",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
