"""Tune a model's tracker settings on training sequences, embed them, report score calibration.

``search``: coordinate search (one setting at a time, in the order given, keeping the best so
far) of ``penalty_k``, ``window_influence`` and ``lr`` by mean success AUC (OPE) over the
sequences named, then optionally writes a copy of the weights with the chosen values in its
embedded config (``--write``). Use training sequences only: never the ones you report.
``--online`` searches the tracker as DROL's online classifier wraps it (the node's default
mode), with DROL's ``fusion_weight`` (λ) as a fourth setting; ``--write`` embeds λ as the
model's ``tracker.online_fusion_weight``, which the classifier takes when added to it.
``--grid sample_memory_size=... train_skipping=...`` (with ``--online``) also searches what the
classifier's updates cost (samples stored, frames between updates); ``--cheaper-within D``
keeps a cheaper value whose AUC is at most D below the best before that search, and
``--write`` embeds them as ``tracker.online_sample_memory_size`` / ``online_train_skipping``.

``calibration`` (``--online``: as the node tracks by default): one pass over sequences; the
chosen proposal's score on frames where the box has IoU < 0.1 with the ground truth (lost) and
IoU > 0.5 (on target), and, taking "score below the long-term enter threshold" (the model's,
else the paper's 0.8) as the LOST report, its precision and recall against IoU < 0.1;
``--sweep T ...`` adds them at other thresholds from the same tracks; with ``--online``,
``--write OUT`` embeds the swept threshold with the best LOST F1 (precision and recall against
IoU < 0.1) as the model's ``tracker.online_confidence_low``, its LOST threshold when the
classifier runs (on training sequences only, as for ``search``). ``report_lost`` in the report
is what the node's default reporting says on the same tracks: the state machine run over each
sequence's scores in order (LOST below the threshold, RECOVERED above the leave threshold), its
LOST frames counted against lost, partly-on (IoU 0.1-0.5) and on-target frames
(``report_lost_sweep``: the same at each swept threshold below the leave threshold).

    python tools/tune_tracker.py search siam_core/weights/default.safetensors --paths ... \\
        --max-frames 120 --json out/tune.json --write runs/tuned.safetensors
    python tools/tune_tracker.py calibration siam_core/weights/default.safetensors --paths ...

``appearance``: thresholds for long-term mode's appearance check (``SiamRPNTracker.appearance``,
the similarity of a box's template kernels to the first frame's) from ground truth alone, no
tracking: on every ``--step``-th frame the similarity at the true box (target), at a box of the
same size moved 1.5-3 sides away (background, IoU < 0.1) and at another sequence's true box on
its own frame (another object: a person for a person, often). ``appearance_low`` is the
threshold that best separates the target from the rest (background and other objects together;
Youden's J: the share of target frames above it plus the share of the rest below it, highest),
``appearance_high`` the ``--others-above`` upper quantile of the other objects' (that share of
other objects would pass as the target to leave LOST), at least ``appearance_low``.
``--write OUT`` embeds both.

    python tools/tune_tracker.py appearance siam_core/weights/default.safetensors --paths ... \
        --write runs/with_appearance.safetensors
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siam_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from siam_core.config import ONLINE_TUNED, Config, OnlineConfig  # noqa: E402
from siam_core.data.sequences import Sequence, load_sequence  # noqa: E402
from siam_core.eval.metrics import box_iou, ope_curves, ope_summary  # noqa: E402
from siam_core.eval.runner import run_one_pass  # noqa: E402
from siam_core.tracker.base import TrackResult, TrackState  # noqa: E402
from siam_core.tracker.drol import online_tracker  # noqa: E402
from siam_core.tracker.longterm import REPORT_ONLY, LongTermConfig, LostStateMachine  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

DEFAULT_GRID = {
    "penalty_k": (0.04, 0.1, 0.2, 0.3),
    "window_influence": (0.25, 0.35, 0.45, 0.55),
    "lr": (0.3, 0.45, 0.6),
}
ONLINE_GRID = {"fusion_weight": (0.6, 0.7, 0.9)}
# The classifier's update cost, searched only where --grid names them: an update goes over every
# stored sample, so its CPU per frame is about memory size / update interval.
ONLINE_COST = {"sample_memory_size": (), "train_skipping": ()}


def load_sequences(paths: list[str], max_frames: int | None) -> list[Sequence]:
    seqs = [load_sequence(p, allow_nan=True) for p in paths]  # NaN rows: target absent
    return [s.head(max_frames) if max_frames else s for s in seqs]


def run(
    weights: str,
    cfg: Config,
    seqs: list[Sequence],
    online: dict[str, float] | None = None,
    appearance: bool = False,
    workers: int = 1,
) -> list[dict]:
    """One OPE pass per sequence (in order): boxes, scores and per-frame IoU. ``online``:
    DROL's classifier on top, with these ``OnlineConfig`` overrides (synchronous updates).
    ``appearance``: also the appearance check's similarity at every reported box (NaN on
    frame 0), measured beside the track, which it does not change. ``workers`` > 1: the
    sequences run in that many spawned processes (each loads ``weights`` once; same tracks,
    since every sequence starts a fresh tracker)."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    jobs = [(weights, cfg, seq, online, appearance) for seq in seqs]
    if workers == 1 or len(seqs) <= 1:
        return [_run_sequence(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    longest_first = sorted(range(len(jobs)), key=lambda i: -len(seqs[i]))  # fewer idle workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {i: pool.submit(_run_sequence, *jobs[i]) for i in longest_first}
        return [futures[i].result() for i in range(len(jobs))]


@functools.lru_cache(maxsize=2)
def _model(weights: str, stamp: int) -> torch.nn.Module:
    """The network, loaded once per process and file version (``stamp``: its mtime); the
    config comes from the caller."""
    torch.set_num_threads(1)  # spawned workers do not run main()
    return load_checkpoint(weights)[0]


def _run_sequence(
    weights: str, cfg: Config, seq: Sequence, online: dict | None, appearance: bool
) -> dict:
    model = _model(weights, Path(weights).stat().st_mtime_ns)
    tracker = SiamRPNTracker(model, cfg, device="cpu")
    if online is not None:
        tracker = online_tracker(tracker, online)
    seen = [np.nan]

    def observe(image: np.ndarray, result: TrackResult) -> None:
        seen.append(tracker.appearance(image, result.box))

    boxes, scores, _times = run_one_pass(tracker, seq, observe if appearance else None)
    row = {"name": seq.name, "scores": scores, "curves": ope_curves(boxes, seq.gt, seq.absent)}
    row["absent"] = np.zeros(len(seq), bool) if seq.absent is None else np.asarray(seq.absent)
    if appearance:
        row["appearance"] = np.array(seen)
    return row


def mean_auc(runs: list[dict]) -> float:
    return float(ope_summary([r["curves"] for r in runs])["auc"])


def search(args: argparse.Namespace) -> int:
    model, cfg = load_checkpoint(args.weights)
    seqs = load_sequences(args.paths, args.max_frames)
    online_keys = {**ONLINE_GRID, **ONLINE_COST} if args.online else {}
    known = {**DEFAULT_GRID, **online_keys}
    grid = {k: tuple(v) for k, v in known.items() if k not in ONLINE_COST}  # cost: opt-in
    for item in args.grid or []:
        key, _, values = item.partition("=")
        if key not in known:
            raise ValueError(f"--grid: unknown setting {key!r}; known: {list(known)}")
        if key in ONLINE_COST and not all(v.isdigit() for v in values.split(",") if v):
            raise ValueError(f"--grid: {key} takes whole numbers, got {values!r}")
        kind = int if key in ONLINE_COST else float
        grid[key] = tuple(kind(v) for v in values.split(",") if v)  # "key=": keep it fixed
    online_base = cfg.online_settings()
    best = {k: getattr(online_base if k in online_keys else cfg.tracker, k) for k in grid}
    tried: dict[tuple, float] = {}
    per_seq: dict[tuple, dict[str, float]] = {}
    seconds: dict[tuple, float] = {}

    def tracker_part(values: dict[str, float]) -> dict[str, float]:
        return {k: v for k, v in values.items() if k not in online_keys}

    def cost(values: dict[str, float]) -> float:
        """Samples an update goes over, per frame (the paper's 250 / 10 where not searched)."""
        memory = values.get("sample_memory_size", online_base.sample_memory_size)
        return memory / values.get("train_skipping", online_base.train_skipping)

    def score(values: dict[str, float]) -> float:
        key = tuple(values[k] for k in grid)
        if key not in tried:
            t0 = time.perf_counter()
            online = {k: v for k, v in values.items() if k in online_keys}
            online = {**online, "async_update": False} if args.online else None
            settings = cfg.replace_tracker(**tracker_part(values))
            runs = run(args.weights, settings, seqs, online, workers=args.workers)
            tried[key] = mean_auc(runs)
            per_seq[key] = {r["name"]: mean_auc([r]) for r in runs}
            seconds[key] = time.perf_counter() - t0
            print(
                f"{values} -> AUC {tried[key]:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True
            )
        return tried[key]

    start = score(best)
    for key, values in grid.items():
        reference = score(best)  # the cost keys may give up at most --cheaper-within of it
        for value in values:
            candidate = {**best, key: value}
            better = score(candidate) > score(best)
            cheaper = key in ONLINE_COST and cost(candidate) < cost(best)
            if better or (cheaper and score(candidate) >= reference - args.cheaper_within):
                best = candidate
    report = {
        "sequences": [s.name for s in seqs],
        "max_frames": args.max_frames,
        "online": args.online,
        "start": {"settings": dict(zip(grid, next(iter(tried)), strict=True)), "auc": start},
        "best": {"settings": best, "auc": score(best)},
        "tried": [
            {
                "settings": dict(zip(grid, k, strict=True)),
                "auc": v,
                "seconds": seconds[k],
                "per_sequence": per_seq[k],
            }
            for k, v in tried.items()
        ],
    }
    print(json.dumps({k: report[k] for k in ("start", "best")}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.write:
        fp16 = next(iter(model.parameters())).dtype == torch.float16 or args.fp16
        chosen = tracker_part(best)
        for key, field in ONLINE_TUNED:  # for when the classifier is added to the model
            if key in best:
                chosen[field] = best[key]
        save_checkpoint(model, cfg.replace_tracker(**chosen), args.write, fp16=fp16)
        print(f"weights with the chosen settings written to {args.write}")
    return 0


def _f1(row: dict[str, float]) -> float:
    p, r = row["lost_precision"], row["lost_recall"]
    return 2 * p * r / (p + r) if p + r else 0.0


def reported_lost(scores: np.ndarray, config: LongTermConfig) -> np.ndarray:
    """Which frames of one sequence's track (its scores in order, frame 0's NaN first) the
    report-only machine calls LOST: hysteresis included, so a frame's verdict depends on the
    frames before it (the node's ``report_lost``)."""
    machine = LostStateMachine(config)
    out = np.zeros(len(scores), bool)
    for i, value in enumerate(scores[1:], 1):
        out[i] = machine.update(float(value)) is TrackState.LOST
    return out


def calibration(args: argparse.Namespace) -> int:
    if args.write and not (args.online and args.sweep):
        raise ValueError("--write chooses the online LOST threshold: it needs --online and --sweep")
    model, cfg = load_checkpoint(args.weights)
    seqs = load_sequences(args.paths, args.max_frames)
    long_term = LongTermConfig.from_config(cfg, bool(args.online))
    threshold = args.threshold if args.threshold is not None else long_term.enter_threshold
    # the appearance check's LOST rule beside the score's: the model's appearance_low
    check = args.appearance if args.appearance is not None else long_term.appearance_low
    scores, ious, looks, tracks = [], [], [], []
    online = {**dict(args.online_set or []), "async_update": False} if args.online else None
    runs = run(args.weights, cfg, seqs, online, check > 0, args.workers)
    for r in runs:
        # the curves' IoUs leave out the frames where the target is absent: so do the scores
        present = ~r["absent"]
        s, iou = r["scores"][present][1:], r["curves"].ious[1:]
        keep = iou >= 0  # frames with a usable ground-truth box
        scores.append(s[keep])
        ious.append(iou[keep])
        tracks.append((r["scores"], present, keep))
        looks.append(r["appearance"][present][1:][keep] if check > 0 else np.ones(int(keep.sum())))
    score, iou, look = np.concatenate(scores), np.concatenate(ious), np.concatenate(looks)
    lost, on = iou < 0.1, iou > 0.5

    def dist(mask: np.ndarray, values: np.ndarray) -> dict[str, float]:
        if not mask.any():
            return {"frames": 0}
        q = np.percentile(values[mask], [10, 25, 50, 75, 90])
        keys = ("p10", "p25", "median", "p75", "p90")
        return {"frames": int(mask.sum()), **{k: float(v) for k, v in zip(keys, q, strict=True)}}

    def lost_report(t: float, low: float = 0.0) -> dict[str, float]:
        below = (score < t) | (look < low)
        found = int((below & lost).sum())
        return {
            "threshold": t,
            "reported_lost": int(below.sum()),
            "lost_precision": found / max(1, int(below.sum())),
            "lost_recall": found / max(1, int(lost.sum())),
            "on_target_reported_lost": int((below & on).sum()),
        }

    partly = ~lost & ~on

    def machine_report(t: float) -> dict[str, float]:
        """The report-only machine (LOST below ``t``, the model's leave threshold) over each
        sequence's scores in order, absent frames included as the tracker saw them, counted on
        the scored frames."""
        config = replace(long_term, enter_threshold=t, **REPORT_ONLY)
        said = np.concatenate(
            [reported_lost(s, config)[present][1:][keep] for s, present, keep in tracks]
        )
        found = int((said & lost).sum())
        return {
            "enter_threshold": t,
            "leave_threshold": config.leave_threshold,
            "reported_lost": int(said.sum()),
            "lost_reported": found,
            "lost_frames": int(lost.sum()),
            "partly_on_reported": int((said & partly).sum()),
            "partly_on_frames": int(partly.sum()),
            "on_target_reported_lost": int((said & on).sum()),
            "on_target_frames": int(on.sum()),
            "lost_precision": found / max(1, int(said.sum())),
            "lost_recall": found / max(1, int(lost.sum())),
        }

    summary = ope_summary([r["curves"] for r in runs])
    result = {
        "frames": len(score),
        "iou_below_0.1": dist(lost, score),
        "iou_above_0.5": dist(on, score),
        **lost_report(threshold),
        "sweep": [lost_report(t) for t in args.sweep or []],
        "report_lost": machine_report(threshold),
        # a swept threshold at or above the leave threshold makes no machine: left out
        "report_lost_sweep": [
            machine_report(t) for t in args.sweep or [] if t < long_term.leave_threshold
        ],
        "online": online,
        "auc": float(summary["auc"]),
        "precision20": float(summary["precision"]),
        "per_sequence_auc": {r["name"]: mean_auc([r]) for r in runs},
    }
    if check > 0:
        result["appearance"] = {
            "appearance_low": check,
            "iou_below_0.1": dist(lost, look),
            "iou_above_0.5": dist(on, look),
            "with_score": lost_report(threshold, check),
            "sweep": [lost_report(threshold, low) for low in args.appearance_sweep or []],
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


def _away(box: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray | None:
    """``box`` moved 1.5-3 of its longer sides in a random direction, inside the image and
    overlapping it by IoU < 0.1 (None after 20 tries: no room)."""
    x, y, w, h = box
    for _ in range(20):
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 3.0) * max(w, h)
        nx, ny = x + dist * np.cos(angle), y + dist * np.sin(angle)
        moved = np.array([nx, ny, w, h])
        inside = min(nx, ny) >= 0 and nx + w <= size[0] and ny + h <= size[1]
        if inside and box_iou(moved, box)[0] < 0.1:
            return moved
    return None


def youden_threshold(positive: np.ndarray, negative: np.ndarray) -> float:
    """The threshold t maximising (share of ``positive`` >= t) + (share of ``negative`` < t),
    among the observed values (the lowest of a tie)."""
    candidates = np.unique(np.concatenate([positive, negative]))
    pos, neg = np.sort(positive), np.sort(negative)
    kept = 1.0 - np.searchsorted(pos, candidates, side="left") / len(pos)
    refused = np.searchsorted(neg, candidates, side="left") / len(neg)
    return float(candidates[int(np.argmax(kept + refused))])


def appearance(args: argparse.Namespace) -> int:
    model, cfg = load_checkpoint(args.weights)
    seqs = [load_sequence(p, allow_nan=True) for p in args.paths]  # NaN rows: target absent
    seqs = [s.head(args.max_frames) if args.max_frames else s for s in seqs]
    if len(seqs) < 2:
        raise ValueError("appearance needs at least two sequences (other objects come from them)")
    rng = np.random.default_rng(args.seed)
    tracker = SiamRPNTracker(model, cfg, device="cpu")
    visible = [
        [k for k in range(1, len(s), args.step) if not (s.absent is not None and s.absent[k])]
        for s in seqs
    ]
    target: list[float] = []
    background: list[float] = []
    others: list[float] = []
    per_sequence = {}
    for i, seq in enumerate(seqs):
        tracker.init(seq.read(0), seq.init_box)
        mine = []
        for k in visible[i]:
            image, gt = seq.read(k), np.asarray(seq.gt[k], dtype=float)
            mine.append(tracker.appearance(image, tuple(gt)))
            moved = _away(gt, (image.shape[1], image.shape[0]), rng)
            if moved is not None:
                background.append(tracker.appearance(image, tuple(moved)))
            j = int(rng.choice([n for n in range(len(seqs)) if n != i and visible[n]]))
            m = int(rng.choice(visible[j]))
            others.append(tracker.appearance(seqs[j].read(m), tuple(seqs[j].gt[m])))
        target += mine
        per_sequence[seq.name] = float(np.median(mine)) if mine else None
        print(f"{seq.name}: {len(mine)} frames, median {per_sequence[seq.name]}", flush=True)

    def dist(values: list[float]) -> dict[str, float]:
        q = np.percentile(values, [1, 5, 10, 25, 50, 75, 90, 95, 99])
        keys = ("p1", "p5", "p10", "p25", "median", "p75", "p90", "p95", "p99")
        return {"frames": len(values), **{k: float(v) for k, v in zip(keys, q, strict=True)}}

    t, b, o = np.array(target), np.array(background), np.array(others)
    low = youden_threshold(t, np.concatenate([b, o]))
    high = max(low, float(np.quantile(o, 1.0 - args.others_above)))
    result = {
        "target": dist(target),
        "background": dist(background),
        "other_objects": dist(others),
        "appearance_low": low,
        "appearance_high": high,
        "below_low": {
            "target": float((t < low).mean()),
            "background": float((b < low).mean()),
            "other_objects": float((o < low).mean()),
        },
        "above_high": {
            "target": float((t > high).mean()),
            "background": float((b > high).mean()),
            "other_objects": float((o > high).mean()),
        },
        "per_sequence_median": per_sequence,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.write:
        chosen = cfg.replace_tracker(appearance_low=round(low, 3), appearance_high=round(high, 3))
        fp16 = next(iter(model.parameters())).dtype == torch.float16
        save_checkpoint(model, chosen, args.write, fp16=fp16)
        print(f"weights with appearance_low/high {low:.3f}/{high:.3f} written to {args.write}")
    return 0


def _online_field(item: str) -> tuple[str, float]:
    key, _, value = item.partition("=")
    if key not in OnlineConfig.__dataclass_fields__:
        raise argparse.ArgumentTypeError(f"unknown online field {key!r}")
    kind = type(getattr(OnlineConfig(), key))  # int fields (memory size, skipping) stay ints
    return key, kind(value) if kind is int else float(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("search", "calibration", "appearance"):
        p = sub.add_parser(name)
        p.add_argument("weights", help="safetensors with an embedded config")
        p.add_argument("--paths", nargs="+", required=True, help="sequence folders/files")
        p.add_argument("--max-frames", type=int, help="first N frames of each sequence")
        p.add_argument("--json", help="write the report here")
        p.add_argument(
            "--online", action="store_true", help="with DROL's online classifier (search: + λ)"
        )
    for name in ("search", "calibration"):
        sub.choices[name].add_argument(
            "--workers", type=int, default=1, help="sequences in this many processes (default 1)"
        )
    s = sub.choices["search"]
    s.add_argument("--grid", nargs="*", help="e.g. penalty_k=0.05,0.1 lr=0.3,0.5")
    s.add_argument("--write", help="copy of the weights with the best settings embedded")
    s.add_argument(
        "--cheaper-within",
        type=float,
        default=0.0,
        help="keep a cheaper sample_memory_size/train_skipping whose AUC is at most this much "
        "below the best before their search (default 0: only a better AUC)",
    )
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
        "--appearance",
        type=float,
        help="also LOST where the appearance check is below this (default: the model's "
        "appearance_low; 0: no check)",
    )
    c.add_argument(
        "--appearance-sweep", type=float, nargs="+", help="the same at these appearance_low"
    )
    c.add_argument(
        "--online-set",
        nargs="*",
        type=_online_field,
        help="with --online: OnlineConfig fields, e.g. fusion_weight=0.6",
    )
    a = sub.choices["appearance"]
    a.add_argument("--step", type=int, default=5, help="every STEP-th frame (default 5)")
    a.add_argument("--seed", type=int, default=0, help="for the background and other boxes")
    a.add_argument(
        "--others-above",
        type=float,
        default=0.05,
        help="share of other objects above appearance_high (default 0.05)",
    )
    a.add_argument("--write", help="a copy of the weights with appearance_low/high embedded")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    commands = {"search": search, "calibration": calibration, "appearance": appearance}
    try:
        return commands[args.command](args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"tune_tracker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
