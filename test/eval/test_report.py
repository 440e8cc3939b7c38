"""Reports from real runs: tables, CSV, plots, and the ``siam-eval`` CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from _evaldata import REPO, link_frames, seqdir, write_rows

from siam_core.cli.eval import main
from siam_core.data import OTB, GOT10k, SequenceList, read_regions
from siam_core.eval import metrics as M
from siam_core.eval.report import evaluate, markdown_table, write_report
from siam_core.eval.runner import read_vot_results, result_paths, run_benchmark


@pytest.fixture(scope="module")
def seqs() -> Path:
    return seqdir()


@pytest.fixture(scope="module")
def ope_run(seqs: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ope")
    ds = OTB(seqs / "otb", "otb2015")
    run_benchmark(ds, {"KCF": "KCF", "CSRT": "CSRT"}, out / "results", max_frames=30)
    return ds, out


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def test_ope_report_tables_csv_and_plots(ope_run) -> None:
    ds, out = ope_run
    ev = evaluate(ds, out / "results", ["KCF", "CSRT"], max_frames=30)
    assert set(ev.per_sequence["CSRT"]) == {"Crossing", "Human3", "MotorRolling"}
    # Overall = mean of the sequences' curves, so AUC is the mean of per-sequence AUCs.
    aucs = [row["auc"] for row in ev.per_sequence["CSRT"].values()]
    assert ev.overall["CSRT"]["auc"] == pytest.approx(np.mean(aucs))
    assert ev.overall["CSRT"]["fps"] > 0
    # Attributes come from the OTB table: SV is shared by all three sequences.
    assert ev.per_attribute["CSRT"]["SV"]["n"] == 3
    assert ev.per_attribute["CSRT"]["SV"]["auc"] == pytest.approx(ev.overall["CSRT"]["auc"])
    assert ev.per_attribute["CSRT"]["OCC"]["n"] == 1
    written = write_report(ev, out / "report", "Baselines")
    names = {p.name for p in written}
    assert names == {
        "report.md",
        "summary.csv",
        "per_sequence.csv",
        "per_attribute.csv",
        "success.png",
        "precision.png",
    }
    md = (out / "report" / "report.md").read_text()
    assert md.startswith("# Baselines: otb2015 (ope)")
    assert markdown_table(ev) in md and "![success](success.png)" in md
    assert f"| CSRT | {ev.overall['CSRT']['auc']:.3f} |" in md
    with open(out / "report" / "summary.csv") as f:
        rows = {r["tracker"]: r for r in csv.DictReader(f)}
    assert float(rows["KCF"]["precision"]) == pytest.approx(ev.overall["KCF"]["precision"])
    assert _png(out / "report" / "success.png").shape[2] == 3


def test_vot_report_with_eao_and_tags(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "vot" / "bag", seqs / "vot" / "book"], "vot-short")
    ds.protocol = "vot"
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=80)
    ev = evaluate(ds, tmp_path, ["KCF"], max_frames=80, eao_interval=(20, 60))
    row = ev.overall["KCF"]
    runs = [
        read_vot_results(result_paths("vot", tmp_path / ds.name / "KCF", n)[0], 80)
        for n in ("bag", "book")
    ]
    assert row["failures"] == sum(len(r.failures) for r in runs)
    assert row["robustness"] == pytest.approx(100 * row["failures"] / 160)
    assert row["eao"] == pytest.approx(M.eao_score(ev.curves["KCF"]["eao"], (20, 60)))
    assert 0 < row["eao"] < 1 and 0 < row["accuracy"] < 1
    assert "camera_motion" in ev.per_attribute["KCF"]  # book's VOT tags
    written = {p.name for p in write_report(ev, tmp_path / "report")}
    assert "eao.png" in written
    assert "EAO over sequence lengths 20–60." in (tmp_path / "report" / "report.md").read_text()


def test_long_term_and_got10k_reports(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "vot" / "book"], "lt")
    ds.protocol = "vot-lt"
    run_benchmark(ds, {"CSRT": "CSRT"}, tmp_path, max_frames=40)
    ev = evaluate(ds, tmp_path, ["CSRT"], max_frames=40)
    assert 0 < ev.overall["CSRT"]["f_score"] <= 1
    assert "precision_recall.png" in {p.name for p in write_report(ev, tmp_path / "lt")}
    # A GOT-10k test sequence has only its initial box: it cannot be scored locally.
    src = sorted((seqs / "otb" / "Crossing" / "img").glob("*.jpg"))[:5]
    folder = tmp_path / "got" / "test" / "GOT-10k_Test_000001"
    link_frames(src, folder, [f"{i:08d}.jpg" for i in range(1, 6)])
    write_rows(
        folder / "groundtruth.txt",
        read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")[:1],
    )
    (tmp_path / "got" / "test" / "list.txt").write_text("GOT-10k_Test_000001\n")
    got = GOT10k(tmp_path / "got", "test")
    run_benchmark(got, {"KCF": "KCF"}, tmp_path / "gotres")
    with pytest.raises(ValueError, match="only the initial box is public"):
        evaluate(got, tmp_path / "gotres", ["KCF"])
    got.protocol = "ope"  # e.g. TrackingNet's test split: the same refusal
    run_benchmark(got, {"KCF": "KCF"}, tmp_path / "operes")
    with pytest.raises(ValueError, match=r"GOT-10k_Test_000001: only the initial box"):
        evaluate(got, tmp_path / "operes", ["KCF"])


def test_missing_results_name_the_file(ope_run) -> None:
    ds, out = ope_run
    with pytest.raises(ValueError, match=r"results file not found: .*MIL/Crossing\.txt"):
        evaluate(ds, out / "results", ["MIL"], max_frames=30)
    # The run was truncated to 30 frames: said up front, not as a row count deep inside.
    with pytest.raises(ValueError, match=r"KCF holds results of a run with --max-frames 30"):
        evaluate(ds, out / "results", ["KCF"])


# --------------------------------------------------------------------------- CLI


def test_cli_all_then_report(seqs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [
        "--paths",
        str(seqs / "otb" / "Crossing"),
        str(seqs / "uav123" / "anno" / "wakeboard7.txt"),
        "--tracker",
        "mil",
        "--tracker",
        "csrt2=CSRT",
        "--max-frames",
        "15",
        "--results",
        str(tmp_path / "res"),
    ]
    assert main(["all", *args, "--out", str(tmp_path / "rep"), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "| MIL |" in printed and "| csrt2 |" in printed
    assert (tmp_path / "res" / "sequences" / "csrt2" / "Crossing.txt").is_file()
    assert (tmp_path / "rep" / "report.md").is_file()
    assert main(["run", *args]) == 0
    assert "skipped (result exists)" in capsys.readouterr().out
    assert main(["report", *args, "--out", str(tmp_path / "rep2")]) == 0
    assert (tmp_path / "rep2" / "summary.csv").read_text() == (
        tmp_path / "rep" / "summary.csv"
    ).read_text()


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--dataset", "otb2015", "--root", str(tmp_path / "x"), "--tracker", "KCF"])
    assert code == 2
    assert "siam-eval: error: dataset root not found" in capsys.readouterr().err
    code = main(["run", "--dataset", "otb2015", "--tracker", "KCF"])
    assert code == 2 and "--dataset needs --root" in capsys.readouterr().err


def test_cli_module_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "siam_core.cli.eval", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "run" in done.stdout and "report" in done.stdout


def test_ope_attributes_merge_otb_attributes_and_vot_tags(seqs: Path, tmp_path: Path) -> None:
    """One-pass over an OTB sequence (attributes), a VOT one (per-frame tags) and one with
    neither: both kinds of row appear, and the report names the sequence that has none."""
    ds = SequenceList(
        [
            seqs / "otb" / "Crossing",
            seqs / "vot" / "book",
            seqs / "uav123" / "anno" / "wakeboard7.txt",
        ]
    )
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path / "results", max_frames=40)
    ev = evaluate(ds, tmp_path / "results", ["KCF"], max_frames=40)
    book = ds.load("book").head(40)
    tags = sorted(t for t, flags in book.tags.items() if flags.any())
    assert tags and set(tags) <= set(ev.per_attribute["KCF"])
    crossing = ds.load("Crossing")
    assert set(crossing.attributes) <= set(ev.per_attribute["KCF"])
    assert ev.without_attributes == ["wakeboard7"]
    md = write_report(ev, tmp_path / "report")[0].read_text()
    assert "no attribute or tag (in no per-attribute row): wakeboard7" in md


def test_ope_curves_on_selected_frames() -> None:
    gt = np.array([[10, 10, 10, 10]] * 4, float)
    pred = gt.copy()
    pred[2] = [100, 100, 10, 10]  # a miss on frame 2 only
    full = M.ope_curves(pred, gt)
    only_miss = M.ope_curves(pred, gt, select=np.array([0, 0, 1, 0], bool))
    assert full.success[0] == pytest.approx(0.75) and only_miss.success[0] == 0.0
    with pytest.raises(ValueError, match="no frame"):
        M.ope_curves(pred, gt, select=np.zeros(4, bool))
