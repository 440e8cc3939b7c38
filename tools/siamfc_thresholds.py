"""Measure a SiamFC model's confidence with its target in view and hidden, to choose the model's
long-term thresholds (``confidence_low`` / ``confidence_high``, node ``lost_threshold`` /
``recover_threshold``).

For every sequence the tracker starts on the first valid ground-truth box; on every ``step``-th
frame up to ``frames`` it is placed on the ground-truth centre (size and search side kept from
the first frame) and searched twice: on the frame as it is (visible), and with the target
covered by the background beside it (hidden, ``siam_core.eval.occlusion.hide_target``). The
pooled percentiles say where LOST (``--enter``) and RECOVERED (``--leave``) should lie: the
fraction of visible frames below ``enter`` would be reported LOST wrongly, the fraction of hidden
frames at or above ``enter`` would miss a loss, above ``leave`` would re-detect background.
Use training sequences only, never the ones you report.

    python tools/siamfc_thresholds.py --tracker siamfc:siamfcplus_ciresnet22_vot:model.pth \\
        ../shared/data/sequences/otb/Human3 ../shared/data/train_extra/tbench_Dog1 ...

``--tracker`` takes any siam-eval spec that builds a SiamFC-family tracker (``<module>:<fn>``
for a builder of your own).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siam_core.data.sequences import Sequence, load_sequence  # noqa: E402
from siam_core.eval.occlusion import hide_target  # noqa: E402
from siam_core.eval.runner import make_tracker  # noqa: E402
from siam_core.tracker.longterm import SIAMFC_ENTER, SIAMFC_LEAVE, LongTermTracker  # noqa: E402
from siam_core.tracker.siamfc import SiamFCTracker  # noqa: E402

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 100)


def _valid(box: object) -> bool:
    return all(math.isfinite(float(v)) for v in box)  # type: ignore[attr-defined]


def sequence_scores(
    tracker: SiamFCTracker, seq: Sequence, frames: int, step: int
) -> tuple[list[float], list[float]]:
    """(visible, hidden) confidences of one sequence, the tracker placed on the ground truth."""
    start = next((i for i in range(len(seq)) if _valid(seq.gt[i])), None)
    if start is None:
        return [], []
    tracker.init(seq.read(start), seq.gt[start])
    visible, hidden = [], []
    for i in range(start + step, min(len(seq), start + frames), step):
        box = seq.gt[i]
        if not _valid(box):
            continue
        frame = seq.read(i)
        tracker.center_pos = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
        visible.append(tracker.search(frame).score)
        try:
            hidden.append(tracker.search(hide_target(frame, box)).score)
        except ValueError:  # the target fills the frame: no background beside it
            continue
    return visible, hidden


def measure(
    spec: str, paths: list[str], frames: int, step: int, enter: float, leave: float
) -> dict:
    """Per-sequence medians, pooled percentiles and the error rates of ``enter`` / ``leave``."""
    tracker = make_tracker(spec)
    if isinstance(tracker, LongTermTracker):
        tracker = tracker.tracker
    if not isinstance(tracker, SiamFCTracker):
        raise ValueError(f"{spec!r} builds {type(tracker).__name__}, not a SiamFC tracker")
    if frames < 2 or step < 1:
        raise ValueError("--frames must be >= 2 and --step >= 1")
    per_sequence, all_visible, all_hidden = {}, [], []
    for path in paths:
        seq = load_sequence(path)
        visible, hidden = sequence_scores(tracker, seq, frames, step)
        if visible and hidden:
            per_sequence[seq.name] = {
                "visible_median": float(np.median(visible)),
                "hidden_median": float(np.median(hidden)),
                "frames": len(visible),
            }
        all_visible += visible
        all_hidden += hidden
    if not all_visible or not all_hidden:
        raise ValueError("no frame with a valid ground-truth box and background beside it")
    v, h = np.array(all_visible), np.array(all_hidden)
    return {
        "tracker": tracker.name,
        "sequences": per_sequence,
        "visible": {str(p): float(np.percentile(v, p)) for p in PERCENTILES},
        "hidden": {str(p): float(np.percentile(h, p)) for p in PERCENTILES},
        "enter": enter,
        "leave": leave,
        "visible_below_enter": float(np.mean(v < enter)),
        "hidden_at_or_above_enter": float(np.mean(h >= enter)),
        "hidden_above_leave": float(np.mean(h > leave)),
        "frames": {"visible": len(v), "hidden": len(h)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", help="sequence folders (training sequences only)")
    p.add_argument("--tracker", required=True, help="siam-eval spec of a SiamFC-family model")
    p.add_argument("--frames", type=int, default=90, help="frames per sequence looked at")
    p.add_argument("--step", type=int, default=4, help="every step-th frame is measured")
    p.add_argument("--enter", type=float, default=SIAMFC_ENTER, help="LOST threshold to judge")
    p.add_argument("--leave", type=float, default=SIAMFC_LEAVE, help="RECOVERED threshold")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    try:
        out = measure(args.tracker, args.paths, args.frames, args.step, args.enter, args.leave)
    except (ValueError, OSError) as exc:
        print(f"siamfc_thresholds: {exc}", file=sys.stderr)
        return 2
    for name, row in out["sequences"].items():
        print(
            f"{name:28s} visible median {row['visible_median']:.3f}  "
            f"hidden median {row['hidden_median']:.3f}  ({row['frames']} frames)"
        )
    for side in ("visible", "hidden"):
        cells = "  ".join(f"p{k} {v:.3f}" for k, v in out[side].items())
        print(f"{side:8s} {out['frames'][side]:4d} frames: {cells}")
    print(
        f"enter {out['enter']}: visible below {out['visible_below_enter']:.3f}, hidden at or "
        f"above {out['hidden_at_or_above_enter']:.3f}; leave {out['leave']}: hidden above "
        f"{out['hidden_above_leave']:.3f}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
