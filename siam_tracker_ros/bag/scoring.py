"""Score replayed (and recorded) runs of bags and write the report.

Accuracy uses the evaluation toolkit (:mod:`siam_core.eval.metrics`) and its report writer, so
a bag report has the same tables, CSVs and plots as ``siam-eval``: one-pass success, precision
and normalised precision, or, where the ground truth marks the target absent, the LOST-aware
long-term precision/recall/F. Each bag is a "sequence"; a run is scored from the frame it was
initialised on, over the frames that have ground truth (a frame without a published box holds
the previous one, the OTB rule). Added to it: per run, frames processed/dropped/rejected,
latency percentiles and the share of time in each state, the agreement (mean IoU) between
trackers, and a timeline plot per bag (IoU, score and state over time).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siam_core.eval import metrics as M
from siam_core.eval.report import Evaluation, markdown_table, write_report
from siam_core.tracker import TrackState
from siam_tracker_ros.bag.groundtruth import GroundTruth
from siam_tracker_ros.bag.replay import NOT_PROCESSED, FrameTable, RunInfo

OPE_KEYS = ("auc", "precision", "norm_precision", "norm_precision_auc", "op50")
STATE_NAMES = {int(s): s.name for s in TrackState}


@dataclass
class Run:
    """One tracker's (or the recording's) run on one bag."""

    bag: str
    table: FrameTable
    info: RunInfo


def _scored_frames(run: Run, gt: GroundTruth) -> np.ndarray | None:
    """Frame indices scored for ``run``: from its first init on, where GT exists."""
    inits = np.flatnonzero(run.table.init)
    if inits.size == 0:
        return None
    n = min(len(run.table), len(gt.boxes))
    idx = np.arange(inits[0], n)
    return idx[gt.labelled[idx]]


def _fps(info: RunInfo) -> float:
    return info.processed / info.seconds if info.seconds > 0 else float("nan")


def evaluate_runs(
    runs: dict[str, list[Run]], gts: dict[str, GroundTruth | None]
) -> tuple[Evaluation | None, list[str]]:
    """Accuracy of every tracker over the bags with GT; notes say what could not be scored."""
    trackers = list(runs)
    with_gt = {b: g for b, g in gts.items() if g is not None}
    notes: list[str] = []
    if not with_gt:
        return None, ["no ground truth: accuracy not scored (latency, states and agreement only)"]
    long_term = any(g.absent.any() for g in with_gt.values())
    ev = Evaluation("bags", "vot-lt" if long_term else "ope", trackers)
    for tracker, tracker_runs in runs.items():
        curves, lt, per_seq, processed, seconds = {}, {}, {}, 0, 0.0
        for run in tracker_runs:
            gt = with_gt.get(run.bag)
            if gt is None:
                continue
            idx = _scored_frames(run, gt)
            if idx is None or idx.size == 0:
                notes.append(f"{tracker} on {run.bag}: never initialised on a frame with GT")
                continue
            pred, truth, absent = run.table.boxes[idx], gt.boxes[idx], gt.absent[idx]
            processed, seconds = processed + run.info.processed, seconds + run.info.seconds
            if long_term:
                ov = np.zeros(len(idx))
                shown = ~absent & np.isfinite(pred).all(axis=1)
                ov[shown] = np.nan_to_num(M.box_iou(pred[shown], truth[shown]), nan=0.0)
                conf = np.where(np.isfinite(pred).all(axis=1), run.table.score[idx], 0.0)
                lt[run.bag] = (ov, np.nan_to_num(conf, nan=0.0), int((~absent).sum()))
                one = M.lt_precision_recall([ov], [lt[run.bag][1]], [lt[run.bag][2]])
                per_seq[run.bag] = {k: one[k] for k in ("precision", "recall", "f_score")}
            else:
                curves[run.bag] = M.ope_curves(pred, truth)
                summary = M.ope_summary([curves[run.bag]])
                per_seq[run.bag] = {k: float(summary[k]) for k in OPE_KEYS}
            per_seq[run.bag]["fps"] = _fps(run.info)
        if not per_seq:
            notes.append(f"{tracker}: nothing to score")
            ev.trackers.remove(tracker)
            continue
        fps = processed / seconds if seconds > 0 else float("nan")
        ev.per_sequence[tracker] = per_seq
        if long_term:
            ov, conf, vis = zip(*lt.values(), strict=True)
            summary = M.lt_precision_recall(list(ov), list(conf), list(vis))
            ev.overall[tracker] = {k: summary[k] for k in ("precision", "recall", "f_score")}
            ev.curves[tracker] = {
                "lt_precision": summary["precision_curve"],
                "lt_recall": summary["recall_curve"],
            }
        else:
            summary = M.ope_summary(list(curves.values()))
            ev.overall[tracker] = {k: float(summary[k]) for k in OPE_KEYS}
            ev.curves[tracker] = {
                "success": summary["success_curve"],
                "precision": summary["precision_curve"],
                "norm_precision": summary["norm_precision_curve"],
            }
        ev.overall[tracker]["fps"] = fps
    return (ev if ev.trackers else None), notes


def run_stats(run: Run) -> dict[str, float | int | str]:
    """Counters, latency percentiles and the share of time spent in each state."""
    t, info = run.table, run.info
    lat = t.latency_ms[t.processed & np.isfinite(t.latency_ms)]
    p50, p90, p99 = np.percentile(lat, [50, 90, 99]) if lat.size else (np.nan,) * 3
    row: dict[str, float | int | str] = {
        "bag": run.bag,
        "tracker": info.tracker,
        "mode": info.mode,
        "frames": len(t),
        "processed": int(t.processed.sum()),
        "dropped": info.dropped,
        "rejected": info.bad_frames,
        "inits": info.inits_applied,
        "inits_failed": len(info.inits_failed),
        "latency_p50_ms": float(p50),
        "latency_p90_ms": float(p90),
        "latency_p99_ms": float(p99),
        "latency_max_ms": float(lat.max()) if lat.size else float("nan"),
    }
    # A state lasts from its frame to the next processed one; durations from the log times.
    held = _held_state(t)
    if len(t) > 1:
        span = np.diff(t.log_ns).astype(float)
        span = np.append(span, np.median(span))
    else:
        span = np.ones(len(t))
    total = span.sum() or 1.0
    for code, name in STATE_NAMES.items():
        row[f"time_{name.lower()}"] = float(span[held == code].sum() / total)
    row["error"] = info.error
    return row


def _held_state(table: FrameTable) -> np.ndarray:
    """Each frame's state: unprocessed frames hold the last one (IDLE before any), and an init
    starts TRACKING from its frame on (the node tracks from there, whatever it said before)."""
    held = table.state.astype(np.int64).copy()
    last = int(TrackState.IDLE)
    for i, s in enumerate(held):
        if table.init[i]:
            held[i] = last = int(TrackState.TRACKING)
        elif s == NOT_PROCESSED:
            held[i] = last
        else:
            last = int(s)
    return held


def agreement(runs: list[Run]) -> list[dict[str, float | str]]:
    """Mean IoU between each pair of trackers over the frames where both published a box."""
    rows = []
    for a, b in itertools.combinations(runs, 2):
        n = min(len(a.table), len(b.table))
        pa, pb = a.table.boxes[:n], b.table.boxes[:n]
        both = np.isfinite(pa).all(axis=1) & np.isfinite(pb).all(axis=1)
        iou = M.box_iou(pa[both], pb[both]) if both.any() else np.array([])
        rows.append(
            {
                "bag": a.bag,
                "a": a.info.tracker,
                "b": b.info.tracker,
                "frames_both": int(both.sum()),
                "mean_iou": float(iou.mean()) if iou.size else float("nan"),
                "iou_above_0.5": float((iou > 0.5).mean()) if iou.size else float("nan"),
            }
        )
    return rows


def _md_table(rows: list[dict], keys: list[str]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            if not np.isfinite(v):
                return "–"
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
        return str(v) if v != "" else "–"

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(rows[0]) if rows else []
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, keys)
        writer.writeheader()
        writer.writerows(rows)


def timeline_plot(bag: str, runs: list[Run], gt: GroundTruth | None, path: Path) -> Path:
    """IoU (with GT), score and state of every run over time, one PNG for the bag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if gt is not None else 2
    fig, axes = plt.subplots(panels, 1, figsize=(9, 2.2 * panels), sharex=True)
    start = min(int(r.table.log_ns[0]) for r in runs if len(r.table))
    for offset, run in enumerate(runs):
        t = (run.table.log_ns - start) / 1e9
        axis = iter(axes)
        if gt is not None:
            ax = next(axis)
            n = min(len(run.table), len(gt.boxes))
            iou = np.full(len(run.table), np.nan)
            iou[:n] = M.box_iou(run.table.boxes[:n], gt.boxes[:n])
            iou[:n][gt.absent[:n] & ~np.isfinite(run.table.boxes[:n]).all(axis=1)] = np.nan
            ax.plot(t, iou, lw=1, label=run.info.tracker)
            ax.set(ylabel="IoU with GT", ylim=(0, 1.02))
        ax = next(axis)
        ax.plot(t, run.table.score, lw=1, label=run.info.tracker)
        ax.set(ylabel="score")
        ax = next(axis)
        held = _held_state(run.table)
        ax.step(t, held + 0.08 * offset, where="post", lw=1, label=run.info.tracker)
        ax.set(ylabel="state", xlabel="time since the first frame (s)")
        ax.set_yticks(list(STATE_NAMES), list(STATE_NAMES.values()))
    for ax in axes:
        ax.grid(True, alpha=0.4)
    axes[0].legend(fontsize=7, loc="lower left")
    axes[0].set_title(f"Timeline of {bag}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_bag_report(
    runs: dict[str, list[Run]],
    gts: dict[str, GroundTruth | None],
    out: Path,
    failures: list[str],
    title: str | None = None,
) -> Path:
    """report.md plus the siam-eval tables and plots, run statistics, agreement, timelines."""
    out.mkdir(parents=True, exist_ok=True)
    ev, notes = evaluate_runs(runs, gts)
    title = title or "Recorded runs"
    if ev is not None:
        write_report(ev, out, title)
        parts = [(out / "report.md").read_text()]
    else:
        parts = [f"# {title}", ""]
    stats = [run_stats(r) for rs in runs.values() for r in rs]
    keys = ["bag", "tracker", "mode", "frames", "processed", "dropped", "rejected", "inits"]
    keys += ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms"]
    keys += [f"time_{n.lower()}" for n in STATE_NAMES.values()]
    _write_csv(out / "run_stats.csv", stats)
    parts += [
        "## Runs: frames, latency and states",
        "",
        "Latency: image received → result (replay), or image → detections as logged in the "
        "bag (recorded run). time_*: share of the bag's duration in each state.",
        "",
        _md_table(stats, keys),
        "",
    ]
    by_bag: dict[str, list[Run]] = {}
    for tracker_runs in runs.values():
        for run in tracker_runs:
            by_bag.setdefault(run.bag, []).append(run)
    agree = [row for bag_runs in by_bag.values() for row in agreement(bag_runs)]
    if agree:
        _write_csv(out / "agreement.csv", agree)
        parts += ["## Agreement between trackers", "", _md_table(agree, list(agree[0])), ""]
    gt_rows = [
        {
            "bag": b,
            "source": g.source,
            "unlabelled_frames": g.unlabelled,
            "absent_frames": int(g.absent.sum()),
            "rows_matching_no_frame": g.unmatched_rows,
        }
        for b, g in gts.items()
        if g is not None
    ]
    if gt_rows:
        parts += ["## Ground truth", "", _md_table(gt_rows, list(gt_rows[0])), ""]
    problems = failures + notes
    problems += [
        f"{r.info.tracker} on {r.bag}: {e}"
        for rs in runs.values()
        for r in rs
        for e in ([r.info.error] if r.info.error else []) + r.info.inits_failed
    ]
    if problems:
        parts += ["## Skipped and failed", ""] + [f"- {p}" for p in problems] + [""]
    plots = [
        timeline_plot(b, rs, gts.get(b), out / f"timeline_{b}.png") for b, rs in by_bag.items()
    ]
    parts += ["## Timelines", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    if ev is not None:
        print(markdown_table(ev))
    report = out / "report.md"
    report.write_text("\n".join(parts))
    return report
