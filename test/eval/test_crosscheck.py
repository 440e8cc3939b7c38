"""Our metrics against the got10k toolkit's on the same real tracker outputs.

The runner writes real results (OpenCV KCF on the shared sequences); got10k's own code reads
the same files or boxes and must give the same numbers.
"""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from _evaldata import link_frames, seqdir, write_rows

from siam_core.data import OTB, GOT10k, SequenceList, read_regions
from siam_core.eval import metrics as M
from siam_core.eval.report import evaluate
from siam_core.eval.runner import read_times, read_vot_results, result_paths, run_benchmark

got10k_metrics = pytest.importorskip("got10k.utils.metrics", reason="got10k (dev requirement)")


@pytest.fixture(scope="module")
def seqs() -> Path:
    return seqdir()


def test_otb_report_equals_got10k_experiment(seqs: Path, tmp_path: Path) -> None:
    """The whole OTB pipeline: our runner's files, scored by us and by ExperimentOTB."""
    from got10k.datasets import OTB as GotOTB
    from got10k.experiments.otb import ExperimentOTB

    ds = OTB(seqs / "otb", "otb2015")
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path / "results")
    ours = evaluate(ds, tmp_path / "results", ["KCF"])
    # got10k's constructor would download OTB; build the experiment around the local copy.
    exp = ExperimentOTB.__new__(ExperimentOTB)
    exp.dataset = GotOTB(str(seqs / "otb"), 2015, download=False)
    exp.result_dir = str(tmp_path / "results" / ds.name)
    exp.report_dir = str(tmp_path / "reports")
    exp.nbins_iou, exp.nbins_ce = 21, 51
    theirs = exp.report(["KCF"])["KCF"]
    assert set(theirs["seq_wise"]) == set(ds.names())
    overall = ours.overall["KCF"]
    assert overall["auc"] == pytest.approx(theirs["overall"]["success_score"], abs=1e-12)
    assert overall["precision"] == pytest.approx(theirs["overall"]["precision_score"], abs=1e-12)
    assert overall["op50"] == pytest.approx(theirs["overall"]["success_rate"], abs=1e-12)
    np.testing.assert_allclose(
        ours.curves["KCF"]["success"], theirs["overall"]["success_curve"], atol=1e-12
    )
    np.testing.assert_allclose(
        ours.curves["KCF"]["precision"], theirs["overall"]["precision_curve"], atol=1e-12
    )
    for name, row in theirs["seq_wise"].items():
        assert ours.per_sequence["KCF"][name]["auc"] == pytest.approx(row["success_score"])
    # Their per-sequence speed is mean(1 / t) over the same time files: our fps_from_times.
    for name, row in theirs["seq_wise"].items():
        times = read_times(
            result_paths("ope", tmp_path / "results" / ds.name / "KCF", name)[1], len(ds[name])
        )
        assert M.fps_from_times(times) == pytest.approx(row["speed_fps"], rel=1e-9)


@pytest.fixture(scope="module")
def vot_run(seqs: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real VOT reset-protocol run (KCF on book, which fails and is re-initialised)."""
    out = tmp_path_factory.mktemp("vot")
    ds = SequenceList([seqs / "vot" / "book"], "vot-book")
    ds.protocol = "vot"
    run_benchmark(ds, {"KCF": "KCF"}, out)
    seq = ds["book"]
    path = result_paths("vot", out / ds.name / "KCF", "book")[0]
    return seq, path, read_vot_results(path, len(seq))


def test_region_overlaps_equal_got10k_on_real_polygons(vot_run) -> None:
    seq, _, run = vot_run
    w, h = seq.size
    frames = np.flatnonzero(run.codes == M.VOT_REGION)
    assert len(frames) > 50
    ours = [M.polygon_iou(run.regions[i], seq.polygons[i], (w, h)) for i in frames]
    theirs = got10k_metrics.poly_iou(run.regions[frames], seq.polygons[frames], bound=(w, h))
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    ours_free = [M.polygon_iou(run.regions[i], seq.polygons[i]) for i in frames]
    np.testing.assert_allclose(
        ours_free, got10k_metrics.poly_iou(run.regions[frames], seq.polygons[frames]), atol=1e-9
    )
    np.testing.assert_allclose(
        M.box_iou(run.regions[frames], seq.gt[frames]),
        got10k_metrics.rect_iou(run.regions[frames], seq.gt[frames]),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        M.center_error(run.regions[frames], seq.gt[frames]),
        got10k_metrics.center_error(run.regions[frames], seq.gt[frames]),
    )


def test_vot_burnin_overlaps_equal_got10k(vot_run, monkeypatch: pytest.MonkeyPatch) -> None:
    from got10k.experiments import vot as got_vot
    from got10k.experiments.vot import ExperimentVOT

    # got10k 0.1.3 predates NumPy 2: np.NaN is gone and arrays of (1,)-arrays and floats no
    # longer stack, so give it np.NaN back and unwrap its own poly_iou's one-element result.
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)
    monkeypatch.setattr(
        got_vot, "poly_iou", lambda a, b, bound=None: got10k_metrics.poly_iou(a, b, bound)[0]
    )
    seq, path, run = vot_run
    assert len(run.failures) >= 1  # the run exercises the reset protocol
    record = [[float(t) for t in line.split(",")] for line in path.read_text().split()]
    stub = types.SimpleNamespace(burnin=M.VOT_BURNIN)
    for burnin in (False, True):
        theirs = ExperimentVOT._calc_iou(stub, record, seq.polygons, seq.size, burnin=burnin)
        ours = M.vot_overlaps(run, seq.polygons, seq.size, M.VOT_BURNIN if burnin else 0)
        np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_got10k_ao_sr_equal_got10k_toolkit(seqs: Path, tmp_path: Path) -> None:
    """A GOT-10k val layout from real frames (uav123_half/boat1), scored both ways."""
    from got10k.experiments.got10k import ExperimentGOT10k

    n = 40
    src = sorted((seqs / "uav123_half" / "data_seq" / "boat1").glob("*.jpg"))[:n]
    gt = read_regions(seqs / "uav123_half" / "anno" / "boat1.txt")[:n]
    folder = tmp_path / "val" / "GOT-10k_Val_000001"
    link_frames(src, folder, [f"{i:08d}.jpg" for i in range(1, n + 1)])
    write_rows(folder / "groundtruth.txt", gt)
    cover = np.full(n, 8)
    cover[[10, 11, 25]] = 0
    (folder / "cover.label").write_text("".join(f"{c}\n" for c in cover))
    (tmp_path / "val" / "list.txt").write_text("GOT-10k_Val_000001\n")
    ds = GOT10k(tmp_path, "val")
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path / "results")
    ours = evaluate(ds, tmp_path / "results", ["KCF"]).overall["KCF"]
    result, time_file = result_paths("got10k", tmp_path / "results" / ds.name / "KCF", folder.name)
    boxes = np.loadtxt(result, delimiter=",")
    bound = ds[folder.name].size
    ious = got10k_metrics.rect_iou(boxes[1:], gt[1:].copy(), bound=bound)[cover[1:] > 0]
    times = np.loadtxt(time_file)
    ao, sr, speed, _ = ExperimentGOT10k._evaluate(None, ious, times[times > 0])
    assert ours["ao"] == pytest.approx(ao, abs=1e-9)
    assert ours["sr50"] == pytest.approx(sr, abs=1e-12)
    assert M.fps_from_times(times) == pytest.approx(speed, rel=1e-9)
    assert ours["sr75"] == pytest.approx(np.mean(ious > 0.75), abs=1e-12)
    shutil.rmtree(tmp_path / "results")
