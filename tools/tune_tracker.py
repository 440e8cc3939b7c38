"""Tune a model's tracker settings on training sequences, embed them, report score calibration.

``search``: coordinate search (one setting at a time, in the order given, keeping the best so
far) of ``penalty_k``, ``window_influence`` and ``lr`` by mean success AUC (OPE) over the
sequences named, then optionally writes a copy of the weights with the chosen values in its
embedded config (``--write``). Use training sequences only: never the ones you report.
``--online`` searches the tracker as DROL's online classifier wraps it (the node's default
mode), with DROL's ``fusion_weight`` (λ) as a fourth setting; ``--write`` embeds λ as the
model's ``tracker.online_fusion_weight``, which the classifier takes when added to it.

``calibration`` (``--online``: as the node tracks by default): one pass over sequences; the
chosen proposal's score on frames where the box has IoU < 0.1 with the ground truth (lost) and
IoU > 0.5 (on target), and, taking "score below the long-term enter threshold" (the model's,
else the paper's 0.8) as the LOST report, its precision and recall against IoU < 0.1;
``--sweep T ...`` adds them at other thresholds from the same tracks; with ``--online``,
``--write OUT`` embeds the swept threshold with the best LOST F1 (precision and recall against
IoU < 0.1) as the model's ``tracker.online_confidence_low``, its LOST threshold when the
classifier runs (on training sequences only, as for ``search``).

    python tools/tune_tracker.py search siam_core/weights/default.safetensors --paths ... \\
        --max-frames 120 --json out/tune.json --write runs/tuned.safetensors
    python tools/tune_tracker.py calibration siam_core/weights/default.safetensors --paths ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siam_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from siam_core.config import Config, OnlineConfig  # noqa: E402
from siam_core.data.sequences import Sequence, load_sequence  # noqa: E402
from siam_core.eval.metrics import ope_curves, ope_summary  # noqa: E402
from siam_core.eval.runner import run_one_pass  # noqa: E402
from siam_core.tracker.drol import online_tracker  # noqa: E402
from siam_core.tracker.longterm import LongTermConfig  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

DEFAULT_GRID = {
    "penalty_k": (0.04, 0.1, 0.2, 0.3),
    "window_influence": (0.25, 0.35, 0.45, 0.55),
    "lr": (0.3, 0.45, 0.6),
}
ONLINE_GRID = {"fusion_weight": (0.6, 0.7, 0.9)}


def load_sequences(paths: list[str], max_frames: int | None) -> list[Sequence]:
    seqs = [load_sequence(p) for p in paths]
    return [s.head(max_frames) if max_frames else s for s in seqs]


def run(
    model: torch.nn.Module,
    cfg: Config,
    seqs: list[Sequence],
    online: dict[str, float] | None = None,
) -> list[dict]:
    """One OPE pass per sequence: boxes, scores and per-frame IoU. ``online``: DROL's
    classifier on top, with these ``OnlineConfig`` overrides (synchronous updates)."""
    tracker = SiamRPNTracker(model, cfg, device="cpu")
    if online is not None:
        tracker = online_tracker(tracker, online)
    out = []
    for seq in seqs:
        boxes, scores, _times = run_one_pass(tracker, seq)
        curves = ope_curves(boxes, seq.gt, seq.absent)
        out.append({"name": seq.name, "scores": scores, "curves": curves})
    return out


def mean_auc(runs: list[dict]) -> float:
    return float(ope_summary([r["curves"] for r in runs])["auc"])


def search(args: argparse.Namespace) -> int:
    model, cfg = load_checkpoint(args.weights)
    seqs = load_sequences(args.paths, args.max_frames)
    known = {**DEFAULT_GRID, **(ONLINE_GRID if args.online else {})}
    grid = {k: tuple(v) for k, v in known.items()}
    for item in args.grid or []:
        key, _, values = item.partition("=")
        if key not in known:
            raise ValueError(f"--grid: unknown setting {key!r}; known: {list(known)}")
        grid[key] = tuple(float(v) for v in values.split(",") if v)  # "key=": keep it fixed
    online_base = cfg.online_settings()
    best = {k: getattr(online_base if k in ONLINE_GRID else cfg.tracker, k) for k in grid}
    tried: dict[tuple, float] = {}
    per_seq: dict[tuple, dict[str, float]] = {}

    def tracker_part(values: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if k not in ONLINE_GRID}

    def score(values: dict[str, float]) -> float:
        key = tuple(values[k] for k in grid)
        if key not in tried:
            t0 = time.perf_counter()
            online = {k: v for k, v in values.items() if k in ONLINE_GRID}
            online = {**online, "async_update": False} if args.online else None
            runs = run(model, cfg.replace_tracker(**tracker_part(values)), seqs, online)
            tried[key] = mean_auc(runs)
            per_seq[key] = {r["name"]: mean_auc([r]) for r in runs}
            print(
                f"{values} -> AUC {tried[key]:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True
            )
        return tried[key]

    start = score(best)
    for key, values in grid.items():
        for value in values:
            candidate = {**best, key: value}
            if score(candidate) > score(best):
                best = candidate
    report = {
        "sequences": [s.name for s in seqs],
        "max_frames": args.max_frames,
        "online": args.online,
        "start": {"settings": dict(zip(grid, next(iter(tried)), strict=True)), "auc": start},
        "best": {"settings": best, "auc": score(best)},
        "tried": [
            {"settings": dict(zip(grid, k, strict=True)), "auc": v, "per_sequence": per_seq[k]}
            for k, v in tried.items()
        ],
    }
    print(json.dumps({k: report[k] for k in ("start", "best")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.write:
        fp16 = next(iter(model.parameters())).dtype == torch.float16 or args.fp16
        chosen = tracker_part(best)
        if args.online:  # the model's λ for when the classifier is added to it
            chosen["online_fusion_weight"] = best["fusion_weight"]
        save_checkpoint(model, cfg.replace_tracker(**chosen), args.write, fp16=fp16)
        print(f"weights with the chosen settings written to {args.write}")
    return 0


def _f1(row: dict[str, float]) -> float:
    p, r = row["lost_precision"], row["lost_recall"]
    return 2 * p * r / (p + r) if p + r else 0.0


def calibration(args: argparse.Namespace) -> int:
    if args.write and not (args.online and args.sweep):
        raise ValueError("--write chooses the online LOST threshold: it needs --online and --sweep")
    model, cfg = load_checkpoint(args.weights)
    seqs = load_sequences(args.paths, args.max_frames)
    threshold = args.threshold
    if threshold is None:
        threshold = LongTermConfig.from_config(cfg, bool(args.online)).enter_threshold
    scores, ious, names = [], [], []
    online = {**dict(args.online_set or []), "async_update": False} if args.online else None
    runs = run(model, cfg, seqs, online)
    for r in runs:
        s, iou = r["scores"][1:], r["curves"].ious[1:]
        keep = iou >= 0  # frames with a ground-truth box (absent ones were dropped already)
        if len(iou) == len(s):
            scores.append(s[keep])
            ious.append(iou[keep])
            names += [r["name"]] * int(keep.sum())
    score, iou = np.concatenate(scores), np.concatenate(ious)
    lost, on = iou < 0.1, iou > 0.5

    def dist(mask: np.ndarray) -> dict[str, float]:
        if not mask.any():
            return {"frames": 0}
        q = np.percentile(score[mask], [10, 25, 50, 75, 90])
        keys = ("p10", "p25", "median", "p75", "p90")
        return {"frames": int(mask.sum()), **{k: float(v) for k, v in zip(keys, q, strict=True)}}

    def lost_report(t: float) -> dict[str, float]:
        below = score < t
        found = int((below & lost).sum())
        return {
            "threshold": t,
            "reported_lost": int(below.sum()),
            "lost_precision": found / max(1, int(below.sum())),
            "lost_recall": found / max(1, int(lost.sum())),
            "on_target_reported_lost": int((below & on).sum()),
        }

    summary = ope_summary([r["curves"] for r in runs])
    result = {
        "frames": len(score),
        "iou_below_0.1": dist(lost),
        "iou_above_0.5": dist(on),
        **lost_report(threshold),
        "sweep": [lost_report(t) for t in args.sweep or []],
        "online": online,
        "auc": float(summary["auc"]),
        "precision20": float(summary["precision"]),
        "per_sequence_auc": {r["name"]: mean_auc([r]) for r in runs},
    }
    if args.write:
        best = max(result["sweep"], key=_f1)  # ties: the first (the order given)
        result["chosen_online_confidence_low"] = {**best, "f1": _f1(best)}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.write:
        chosen = cfg.replace_tracker(online_confidence_low=best["threshold"])
        fp16 = next(iter(model.parameters())).dtype == torch.float16
        save_checkpoint(model, chosen, args.write, fp16=fp16)
        print(f"weights with online_confidence_low {best['threshold']} written to {args.write}")
    return 0


def _online_field(item: str) -> tuple[str, float]:
    key, _, value = item.partition("=")
    if key not in OnlineConfig.__dataclass_fields__:
        raise argparse.ArgumentTypeError(f"unknown online field {key!r}")
    return key, float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("search", "calibration"):
        p = sub.add_parser(name)
        p.add_argument("weights", help="safetensors with an embedded config")
        p.add_argument("--paths", nargs="+", required=True, help="sequence folders/files")
        p.add_argument("--max-frames", type=int, help="first N frames of each sequence")
        p.add_argument("--json", help="write the report here")
        p.add_argument(
            "--online", action="store_true", help="with DROL's online classifier (search: + λ)"
        )
    s = sub.choices["search"]
    s.add_argument("--grid", nargs="*", help="e.g. penalty_k=0.05,0.1 lr=0.3,0.5")
    s.add_argument("--write", help="copy of the weights with the best settings embedded")
    s.add_argument("--fp16", action="store_true", help="write fp16 weights")
    c = sub.choices["calibration"]
    c.add_argument("--threshold", type=float, help="LOST below this score (default: the model's)")
    c.add_argument(
        "--sweep", type=float, nargs="+", help="also LOST precision/recall at each of these"
    )
    c.add_argument(
        "--write",
        help="with --online and --sweep: a copy of the weights whose embedded "
        "online_confidence_low is the swept threshold with the best LOST F1",
    )
    c.add_argument(
        "--online-set",
        nargs="*",
        type=_online_field,
        help="with --online: OnlineConfig fields, e.g. fusion_weight=0.6",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        return search(args) if args.command == "search" else calibration(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"tune_tracker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
