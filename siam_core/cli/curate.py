"""``siam-curate``: pre-crop training frames around their targets (pysot ``par_crop`` layout).

Examples::

    siam-curate OUT --type sequences --root GOT-10k/train --format got10k --workers 8
    siam-curate OUT --type sequences --root LaSOT --format lasot
    siam-curate OUT --type coco --root coco/train2017 --anno instances_train2017.json
    siam-curate OUT --type sequences --paths otb/Human3 vot/basketball

Then train with a ``pysot_crops`` source: ``{type: pysot_crops, root: OUT, anno: OUT/NAME.json}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siam-curate",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("out", help="output folder for the crops and the JSON annotation")
    parser.add_argument(
        "--type",
        required=True,
        help="source type: sequences, coco or images (checked after "
        "parsing against siam_core.train.config.SOURCE_TYPES, which loads PyTorch)",
    )
    parser.add_argument("--root", default="", help="data set root (or image folder)")
    parser.add_argument("--anno", default="", help="COCO-style instances JSON (--type coco)")
    parser.add_argument(
        "--format",
        default="auto",
        help="sequence tree layout: otb, vot, uav123, got10k, lasot or auto",
    )
    parser.add_argument("--paths", nargs="*", default=[], help="single sequences or images")
    parser.add_argument("--names", nargs="*", default=[], help="only these sequences")
    parser.add_argument("--name", default="train", help="annotation file name (NAME.json)")
    parser.add_argument("--size", type=int, default=511, help="crop side in pixels (pysot 511)")
    parser.add_argument("--exemplar", type=int, default=127, help="context square side in px")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
    parser.add_argument(
        "--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="processes"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Imported after parsing: they load PyTorch, which --help does not need.
    from siam_core.train.config import SOURCE_TYPES, SourceConfig
    from siam_core.train.curate import curate
    from siam_core.train.data import open_source

    types = [t for t in SOURCE_TYPES if t != "pysot_crops"]
    if args.type not in types:
        parser.error(f"argument --type: invalid choice: {args.type!r} (choose from {types})")
    try:
        src = SourceConfig(
            type=args.type,
            root=args.root,
            anno=args.anno,
            format=args.format,
            paths=tuple(args.paths),
            names=tuple(args.names),
        )
        for value in (args.root, args.anno, *args.paths):
            if value and not Path(value).exists():
                raise ValueError(f"path does not exist: {value}")
        source = open_source(src)
        anno = curate(
            [source],
            args.out,
            name=args.name,
            size=args.size,
            exemplar=args.exemplar,
            workers=args.workers,
            quality=args.quality,
            progress=not args.no_progress,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"siam-curate: {exc}", file=sys.stderr)
        return 2
    print(f"siam-curate: {anno}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
