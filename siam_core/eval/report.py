"""Score result files and write reports: markdown and CSV tables, PNG plots.

``evaluate`` reads the runner's files for each tracker and computes the dataset protocol's
metrics overall, per sequence and per attribute (OTB attributes, VOT per-frame tags);
``write_report`` writes ``report.md``, ``summary.csv``, ``per_sequence.csv``,
``per_attribute.csv`` and the plots (success and precision for one-pass benchmarks, the
expected-overlap curve for VOT, precision/recall for VOT long-term, success for GOT-10k).

Speed: ``fps`` is frames divided by the summed tracker seconds recorded by the runner
(initialisation frames included, skipped VOT frames not), per sequence and overall.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siam_core.data.sequences import Dataset, Sequence
from siam_core.eval import metrics as M
from siam_core.eval.runner import (
    confidence_path,
    read_box_results,
    read_confidences,
    read_provenance,
    read_times,
    read_vot_results,
    result_paths,
    tracker_folder,
)

# Column order and headers per protocol.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "ope": [
        ("auc", "Success AUC"),
        ("precision", "Precision@20px"),
        ("norm_precision", "Norm. precision@0.2"),
        ("op50", "OP@0.5"),
        ("fps", "FPS"),
    ],
    "vot": [
        ("eao", "EAO"),
        ("accuracy", "Accuracy"),
        ("robustness", "Robustness (failures/100 frames)"),
        ("failures_per_sequence", "Failures/sequence"),
        ("failures", "Failures"),
        ("fps", "FPS"),
    ],
    "vot-lt": [("f_score", "F-score"), ("precision", "Pr"), ("recall", "Re"), ("fps", "FPS")],
    "got10k": [("ao", "AO"), ("sr50", "SR0.5"), ("sr75", "SR0.75"), ("fps", "FPS")],
}


@dataclass
class Evaluation:
    """Scores of several trackers on one dataset."""

    dataset: str
    protocol: str
    trackers: list[str]
    overall: dict[str, dict[str, float]] = field(default_factory=dict)
    per_sequence: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    per_attribute: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    eao_interval: tuple[int, int] | None = None
    # Sequences that have neither sequence attributes (OTB) nor per-frame tags (VOT, LaSOT, NfS).
    without_attributes: list[str] = field(default_factory=list)


def _fps(times: np.ndarray | None) -> float:
    if times is None:
        return float("nan")
    t = times[np.isfinite(times)]
    return float(len(t) / t.sum()) if t.size and t.sum() > 0 else float("nan")


def _pooled_fps(times: list[np.ndarray | None]) -> float:
    known = [t[np.isfinite(t)] for t in times if t is not None]
    if not known:
        return float("nan")
    pooled = np.concatenate(known)
    return float(len(pooled) / pooled.sum()) if pooled.sum() > 0 else float("nan")


def _load_sequences(
    dataset: Dataset, names: list[str], max_frames: int | None
) -> dict[str, Sequence]:
    out = {}
    for name in names:
        seq = dataset.load(name)
        out[name] = seq.head(max_frames) if max_frames is not None else seq
    return out


def evaluate(
    dataset: Dataset,
    results_dir: str | Path,
    trackers: list[str],
    *,
    sequences: list[str] | None = None,
    max_frames: int | None = None,
    eao_interval: tuple[int, int] | None = None,
) -> Evaluation:
    """Score ``trackers`` from their result files under ``results_dir`` (runner layout).

    ``max_frames`` must match the run's; ``eao_interval`` overrides the dataset's.
    """
    if not trackers:
        raise ValueError("no trackers to evaluate")
    names = dataset.names() if sequences is None else list(sequences)
    seqs = _load_sequences(dataset, names, max_frames)
    protocol = dataset.protocol
    interval = eao_interval or dataset.eao_interval
    ev = Evaluation(dataset.name, protocol, list(trackers), eao_interval=interval)
    ev.without_attributes = [
        name
        for name, seq in seqs.items()
        if not seq.attributes and not any(np.any(flags) for flags in seq.tags.values())
    ]
    for tracker in trackers:
        folder = tracker_folder(Path(results_dir), dataset, tracker)
        recorded = read_provenance(folder)
        if recorded is not None and recorded.get("max_frames") != max_frames:
            raise ValueError(
                f"{folder} holds results of a run with --max-frames {recorded.get('max_frames')}; "
                f"report them with the same --max-frames (asked: {max_frames})"
            )
        scorer = {
            "ope": _score_ope,
            "vot": _score_vot,
            "vot-lt": _score_lt,
            "got10k": _score_got,
        }[protocol]
        scorer(ev, tracker, folder, seqs)
    return ev


def _require_ground_truth(seq: Sequence, benchmark: str) -> None:
    if seq.annotated != len(seq):
        raise ValueError(
            f"{seq.name}: only the initial box is public (test split); score it on the "
            f"{benchmark} server"
        )


def _score_ope(ev: Evaluation, tracker: str, folder: Path, seqs: dict[str, Sequence]) -> None:
    curves: dict[str, M.OPECurves] = {}
    times: dict[str, np.ndarray | None] = {}
    per_seq: dict[str, dict[str, float]] = {}
    tagged: dict[str, list[M.OPECurves]] = {}  # per-frame tags: curves over the tagged frames
    for name, seq in seqs.items():
        _require_ground_truth(seq, "benchmark's evaluation")
        result, time_file = result_paths("ope", folder, name)
        boxes = read_box_results(result, len(seq))
        times[name] = read_times(time_file, len(seq))
        curves[name] = M.ope_curves(boxes, seq.gt, seq.absent)
        for tag, flags in seq.tags.items():
            flags = np.asarray(flags, bool)
            if flags.any():
                tag_curves = M.ope_curves(boxes, seq.gt, seq.absent, select=flags)
                tagged.setdefault(tag, []).append(tag_curves)
        per_seq[name] = {
            **_ope_scalars(M.ope_summary([curves[name]])),
            "fps": _fps(times[name]),
        }
    summary = M.ope_summary(list(curves.values()))
    ev.overall[tracker] = {
        **_ope_scalars(summary),
        "fps": _pooled_fps(list(times.values())),
    }
    ev.per_sequence[tracker] = per_seq
    ev.curves[tracker] = {
        "success": summary["success_curve"],
        "precision": summary["precision_curve"],
        "norm_precision": summary["norm_precision_curve"],
    }
    attrs: dict[str, list[str]] = {}
    for name, seq in seqs.items():
        for attr in seq.attributes:
            attrs.setdefault(attr, []).append(name)
    rows = {
        attr: {**_ope_scalars(M.ope_summary([curves[n] for n in members])), "n": len(members)}
        for attr, members in attrs.items()
    }
    for tag, tag_curves in tagged.items():  # a name used by both: the whole sequences win
        rows.setdefault(tag, {**_ope_scalars(M.ope_summary(tag_curves)), "n": len(tag_curves)})
    ev.per_attribute[tracker] = dict(sorted(rows.items()))


def _ope_scalars(summary: dict) -> dict[str, float]:
    keys = ("auc", "precision", "norm_precision", "norm_precision_auc", "op50")
    return {k: float(summary[k]) for k in keys}


def _score_vot(ev: Evaluation, tracker: str, folder: Path, seqs: dict[str, Sequence]) -> None:
    runs, gts, sizes, times = [], [], [], []
    per_seq: dict[str, dict[str, float]] = {}
    for name, seq in seqs.items():
        result, time_file = result_paths("vot", folder, name)
        run = read_vot_results(result, len(seq))
        gt = seq.polygons if seq.polygons is not None else seq.gt
        size = seq.size
        t = read_times(time_file, len(seq))
        runs.append(run)
        gts.append(gt)
        sizes.append(size)
        times.append(t)
        ar = M.vot_accuracy_robustness([run], [gt], [size])
        per_seq[name] = {**ar, "fps": _fps(t)}
    overall: dict[str, float] = dict(M.vot_accuracy_robustness(runs, gts, sizes))
    curve = M.eao_curve(runs, gts, sizes)
    overall["eao"] = M.eao_score(curve, ev.eao_interval) if ev.eao_interval else float("nan")
    overall["fps"] = _pooled_fps(times)
    ev.overall[tracker] = overall
    ev.per_sequence[tracker] = per_seq
    ev.curves[tracker] = {"eao": curve}
    tags = sorted({t for s in seqs.values() for t in s.tags})
    per_tag: dict[str, dict[str, float]] = {}
    for tag in tags:
        weights = [s.tags.get(tag, np.zeros(len(s))).astype(float) for s in seqs.values()]
        if not any(w.any() for w in weights):
            continue
        overlaps = np.concatenate(
            [
                M.vot_overlaps(r, g, s, M.VOT_BURNIN)[w > 0]
                for r, g, s, w in zip(runs, gts, sizes, weights, strict=True)
            ]
        )
        fails = sum(int(np.sum(w[r.failures] > 0)) for r, w in zip(runs, weights, strict=True))
        valid = overlaps[~np.isnan(overlaps)]
        row = {
            "accuracy": float(valid.mean()) if valid.size else float("nan"),
            "failures": fails,
            "frames": int(sum(w.sum() for w in weights)),
        }
        if ev.eao_interval:
            row["eao"] = M.eao_score(
                M.eao_curve(runs, gts, sizes, weights=weights), ev.eao_interval
            )
        per_tag[tag] = row
    ev.per_attribute[tracker] = per_tag


def _score_lt(ev: Evaluation, tracker: str, folder: Path, seqs: dict[str, Sequence]) -> None:
    overlaps, scores, visible, times = [], [], [], []
    per_seq: dict[str, dict[str, float]] = {}
    for name, seq in seqs.items():
        result, time_file = result_paths("vot-lt", folder, name)
        run = read_vot_results(result, len(seq))
        conf = read_confidences(confidence_path(result), len(seq))
        gt = seq.polygons if seq.polygons is not None else seq.gt
        ov = np.nan_to_num(M.vot_overlaps(run, gt, seq.size), nan=0.0)
        n_visible = int(np.sum(~seq.absent))
        t = read_times(time_file, len(seq))
        overlaps.append(ov)
        scores.append(conf)
        visible.append(n_visible)
        times.append(t)
        one = M.lt_precision_recall([ov], [conf], [n_visible])
        per_seq[name] = {
            "precision": one["precision"],
            "recall": one["recall"],
            "f_score": one["f_score"],
            "fps": _fps(t),
        }
    summary = M.lt_precision_recall(overlaps, scores, visible)
    ev.overall[tracker] = {
        "precision": summary["precision"],
        "recall": summary["recall"],
        "f_score": summary["f_score"],
        "fps": _pooled_fps(times),
    }
    ev.per_sequence[tracker] = per_seq
    ev.curves[tracker] = {
        "lt_precision": summary["precision_curve"],
        "lt_recall": summary["recall_curve"],
    }


def _score_got(ev: Evaluation, tracker: str, folder: Path, seqs: dict[str, Sequence]) -> None:
    all_ious, times = [], []
    per_seq: dict[str, dict[str, float]] = {}
    for name, seq in seqs.items():
        _require_ground_truth(seq, "GOT-10k")
        result, time_file = result_paths("got10k", folder, name)
        boxes = read_box_results(result, len(seq))
        ious = M.got10k_ious(boxes, seq.gt, seq.absent, seq.size)
        t = read_times(time_file, len(seq))
        all_ious.append(ious)
        times.append(t)
        one = M.got10k_summary([ious])
        per_seq[name] = {k: float(one[k]) for k in ("ao", "sr50", "sr75")}
        per_seq[name]["fps"] = _fps(t)
    summary = M.got10k_summary(all_ious)
    ev.overall[tracker] = {k: float(summary[k]) for k in ("ao", "sr50", "sr75")}
    ev.overall[tracker]["fps"] = _pooled_fps(times)
    ev.per_sequence[tracker] = per_seq
    ev.curves[tracker] = {"got_success": summary["success_curve"]}


# --------------------------------------------------------------------------- writing


def _cell(value: float) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def markdown_table(ev: Evaluation) -> str:
    """The tracker × metric table in markdown."""
    cols = [(k, h) for k, h in COLUMNS[ev.protocol] if k != "eao" or ev.eao_interval]
    lines = [
        "| Tracker | " + " | ".join(h for _, h in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for tracker in ev.trackers:
        row = ev.overall[tracker]
        lines.append(f"| {tracker} | " + " | ".join(_cell(row.get(k)) for k, _ in cols) + " |")
    return "\n".join(lines)


def _sequence_table(ev: Evaluation) -> str:
    keys = {
        "ope": ["auc", "precision"],
        "vot": ["accuracy", "failures"],
        "vot-lt": ["f_score"],
        "got10k": ["ao"],
    }[ev.protocol]
    seqs = list(ev.per_sequence[ev.trackers[0]])
    head = "| Sequence | " + " | ".join(f"{t} {k}" for t in ev.trackers for k in keys) + " |"
    lines = [head, "|---|" + "---:|" * (len(keys) * len(ev.trackers))]
    for s in seqs:
        cells = [_cell(ev.per_sequence[t][s].get(k)) for t in ev.trackers for k in keys]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _attribute_table(ev: Evaluation) -> str | None:
    attrs = sorted({a for t in ev.trackers for a in ev.per_attribute.get(t, {})})
    if not attrs:
        return None
    key = "auc" if ev.protocol == "ope" else ("eao" if ev.eao_interval else "accuracy")
    lines = [
        f"| Attribute ({key}) | " + " | ".join(ev.trackers) + " |",
        "|---|" + "---:|" * len(ev.trackers),
    ]
    for a in attrs:
        cells = [_cell(ev.per_attribute[t].get(a, {}).get(key)) for t in ev.trackers]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_report(ev: Evaluation, out_dir: str | Path, title: str | None = None) -> list[Path]:
    """Write tables and plots for ``ev`` into ``out_dir``; returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    metric_keys = [k for k, _ in COLUMNS[ev.protocol]]
    if ev.protocol == "ope":
        metric_keys.insert(3, "norm_precision_auc")
    summary_csv = out / "summary.csv"
    _write_csv(
        summary_csv,
        ["tracker", *metric_keys],
        [[t, *[ev.overall[t].get(k, "") for k in metric_keys]] for t in ev.trackers],
    )
    seq_keys = sorted({k for t in ev.trackers for s in ev.per_sequence[t].values() for k in s})
    per_seq_csv = out / "per_sequence.csv"
    _write_csv(
        per_seq_csv,
        ["tracker", "sequence", *seq_keys],
        [
            [t, s, *[row.get(k, "") for k in seq_keys]]
            for t in ev.trackers
            for s, row in ev.per_sequence[t].items()
        ],
    )
    written += [summary_csv, per_seq_csv]
    attr_table = _attribute_table(ev)
    if attr_table:
        attr_keys = sorted(
            {k for t in ev.trackers for r in ev.per_attribute[t].values() for k in r}
        )
        attr_csv = out / "per_attribute.csv"
        _write_csv(
            attr_csv,
            ["tracker", "attribute", *attr_keys],
            [
                [t, a, *[row.get(k, "") for k in attr_keys]]
                for t in ev.trackers
                for a, row in ev.per_attribute[t].items()
            ],
        )
        written.append(attr_csv)
    plots = _plots(ev, out)
    written += plots
    parts = [
        f"# {title or 'Evaluation'}: {ev.dataset} ({ev.protocol})",
        "",
        markdown_table(ev),
        "",
    ]
    if ev.protocol == "vot" and ev.eao_interval:
        parts += [f"EAO over sequence lengths {ev.eao_interval[0]}–{ev.eao_interval[1]}.", ""]
    parts += ["## Per sequence", "", _sequence_table(ev), ""]
    if attr_table:
        parts += ["## Per attribute", "", attr_table, ""]
        if ev.protocol == "ope":
            parts += [
                "OTB attributes score whole sequences; per-frame tags (VOT, LaSOT, NfS) score "
                "only the frames they flag. `n`: sequences.",
                "",
            ]
    if ev.without_attributes:
        parts += [
            "Sequences with no attribute or tag (in no per-attribute row): "
            + ", ".join(ev.without_attributes),
            "",
        ]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    md = out / "report.md"
    md.write_text("\n".join(parts))
    return [md, *written]


def _plots(ev: Evaluation, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name: str) -> Path:
        path = out / name
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    paths: list[Path] = []
    ranked = sorted(ev.trackers, key=lambda t: -np.nan_to_num(_rank_key(ev, t), nan=-1))
    if ev.protocol == "ope":
        for key, xs, label, score, fname in (
            ("success", M.SUCCESS_THRESHOLDS, "Overlap threshold", "auc", "success.png"),
            (
                "precision",
                M.PRECISION_THRESHOLDS,
                "Location error threshold (px)",
                "precision",
                "precision.png",
            ),
        ):
            fig, ax = plt.subplots(figsize=(5.5, 4.5))
            for t in ranked:
                ax.plot(xs, ev.curves[t][key], label=f"[{ev.overall[t][score]:.3f}] {t}")
            ax.set(
                xlabel=label,
                ylabel="Success rate" if key == "success" else "Precision",
                title=f"{key.capitalize()} plots of OPE on {ev.dataset}",
                ylim=(0, 1.02),
            )
            ax.set_xlim(xs[0], xs[-1])
            ax.grid(True, alpha=0.4)
            ax.legend(loc="lower left" if key == "success" else "lower right", fontsize=8)
            paths.append(save(fig, fname))
    elif ev.protocol == "vot":
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for t in ranked:
            curve = ev.curves[t]["eao"]
            eao = ev.overall[t].get("eao", float("nan"))
            ax.plot(np.arange(1, len(curve) + 1), curve, label=f"[{_cell(eao)}] {t}")
        if ev.eao_interval:
            ax.axvspan(*ev.eao_interval, color="grey", alpha=0.15, label="EAO interval")
        ax.set(
            xlabel="Sequence length (frames)",
            ylabel="Expected average overlap",
            title=f"Expected overlap curves on {ev.dataset}",
            ylim=(0, 1.02),
        )
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
        paths.append(save(fig, "eao.png"))
    elif ev.protocol == "vot-lt":
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for t in ranked:
            c = ev.curves[t]
            ax.plot(
                c["lt_recall"], c["lt_precision"], label=f"[{ev.overall[t]['f_score']:.3f}] {t}"
            )
        ax.set(
            xlabel="Recall",
            ylabel="Precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
            title=f"Precision/recall on {ev.dataset}",
        )
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
        paths.append(save(fig, "precision_recall.png"))
    else:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for t in ranked:
            ax.plot(
                np.linspace(0, 1, 101),
                ev.curves[t]["got_success"],
                label=f"[{ev.overall[t]['ao']:.3f}] {t}",
            )
        ax.set(
            xlabel="Overlap threshold",
            ylabel="Success rate",
            ylim=(0, 1.02),
            title=f"Success plot on {ev.dataset}",
        )
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
        paths.append(save(fig, "success.png"))
    return paths


def _rank_key(ev: Evaluation, tracker: str) -> float:
    key = {"ope": "auc", "vot": "eao" if ev.eao_interval else "accuracy", "vot-lt": "f_score"}
    return float(ev.overall[tracker].get(key.get(ev.protocol, "ao"), float("nan")))
