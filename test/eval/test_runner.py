"""The runner: protocols, pysot-layout files, resuming, parallel processes, bad result files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from _evaldata import seqdir

from siam_core.baselines import OpenCVTracker
from siam_core.data import SequenceList, load_sequence
from siam_core.eval import metrics as M
from siam_core.eval.report import evaluate
from siam_core.eval.runner import (
    PROVENANCE,
    make_tracker,
    provenance,
    read_box_results,
    read_confidences,
    read_times,
    read_vot_results,
    result_paths,
    run_benchmark,
    run_vot_reset,
)
from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState


@pytest.fixture(scope="module")
def seqs() -> Path:
    return seqdir()


def make_csrt() -> Tracker:
    """A zero-argument builder, importable as ``test_runner:make_csrt``."""
    return OpenCVTracker("CSRT")


class ScriptedTracker(Tracker):
    """Reports the ground truth, except on chosen frames where it reports a far-away box;
    records which frames it was initialised on (frames are recognised by their pixels)."""

    name = "scripted"

    def __init__(self, seq, fail_on: set[int], nan_on: set[int] = frozenset()) -> None:
        super().__init__()
        self.seq, self.fail_on, self.nan_on = seq, fail_on, nan_on
        self.index = {seq.read(i).tobytes(): i for i in range(len(seq))}
        self.inits: list[tuple[int, Box]] = []

    def _init(self, image: np.ndarray, box: Box) -> None:
        self.inits.append((self.index[image.tobytes()], box))

    def _track(self, image: np.ndarray) -> TrackResult:
        i = self.index[image.tobytes()]
        box = tuple(float(v) for v in self.seq.gt[i])
        if i in self.fail_on:
            box = (1.0, 1.0, 5.0, 5.0)
        if i in self.nan_on:
            box = (float("nan"),) * 4
        return TrackResult(box, 1.0, TrackState.TRACKING, (0, 0, 1, 1))


def test_vot_reset_protocol_on_real_frames(seqs: Path) -> None:
    seq = load_sequence(seqs / "vot" / "bag").head(25)
    tracker = ScriptedTracker(seq, fail_on={3, 12})
    run, times = run_vot_reset(tracker, seq)
    R, N, F, S = M.VOT_REGION, M.VOT_INIT, M.VOT_FAILURE, M.VOT_SKIP
    expected = [N, R, R, F, S, S, S, S, N, R, R, R, F, S, S, S, S, N] + [R] * 7
    assert run.codes.tolist() == expected
    # Re-initialised five frames after each failure on that frame's axis-aligned box.
    assert [i for i, _ in tracker.inits] == [0, 8, 17]
    np.testing.assert_allclose(tracker.inits[1][1], seq.gt[8])
    assert np.isnan(times[run.codes == S]).all() and np.isfinite(times[run.codes != S]).all()
    np.testing.assert_allclose(run.regions[1], seq.gt[1])


def test_bad_box_from_a_tracker_is_an_error(seqs: Path, tmp_path: Path) -> None:
    seq = load_sequence(seqs / "vot" / "bag").head(6)
    with pytest.raises(RuntimeError, match=r"scripted returned a bad box .* frame 4 of bag"):
        run_vot_reset(ScriptedTracker(seq, set(), nan_on={4}), seq)


def test_one_pass_layout_and_resume(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "otb" / "Crossing", seqs / "uav123" / "anno" / "wakeboard7.txt"])
    jobs = run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=20)
    assert sorted((j.sequence, j.status, j.frames) for j in jobs) == [
        ("Crossing", "ran", 20),
        ("wakeboard7", "ran", 20),
    ]
    folder = tmp_path / "sequences" / "KCF"
    result, times = result_paths("ope", folder, "Crossing")
    assert result == folder / "Crossing.txt" and times == folder / "times" / "Crossing_time.txt"
    lines = result.read_text().splitlines()
    assert len(lines) == 20 and lines[0] == "205.0000,151.0000,17.0000,50.0000"
    # pysot's toolkit reads each line as comma-separated floats.
    boxes = np.array([list(map(float, line.split(","))) for line in lines])
    np.testing.assert_array_equal(read_box_results(result, 20), boxes)
    assert (read_times(times, 20) > 0).all()
    stamp = result.stat().st_mtime_ns
    again = run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=20)
    assert {j.status for j in again} == {"skipped"} and result.stat().st_mtime_ns == stamp
    (folder / "wakeboard7.txt").unlink()
    third = run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=20)
    assert {(j.sequence, j.status) for j in third} == {
        ("Crossing", "skipped"),
        ("wakeboard7", "ran"),
    }
    assert not list(tmp_path.rglob("*.tmp*"))


def test_parallel_processes_write_the_same_files(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "otb" / "Crossing", seqs / "otb" / "MotorRolling"])
    trackers = {"KCF": "KCF", "CSRT": "test_runner:make_csrt"}
    run_benchmark(ds, trackers, tmp_path / "serial", max_frames=12)
    jobs = run_benchmark(ds, trackers, tmp_path / "parallel", max_frames=12, workers=2)
    assert len(jobs) == 4 and {j.status for j in jobs} == {"ran"}
    for tracker in trackers:
        for name in ds.names():
            a = result_paths("ope", tmp_path / "serial" / "sequences" / tracker, name)[0]
            b = result_paths("ope", tmp_path / "parallel" / "sequences" / tracker, name)[0]
            assert a.read_text() == b.read_text()


def test_vot_and_long_term_and_got_layouts(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "vot" / "book"], "votset")
    ds.protocol = "vot"
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=30)
    result, times = result_paths("vot", tmp_path / "votset" / "KCF", "book")
    assert result.relative_to(tmp_path).as_posix() == "votset/KCF/baseline/book/book_001.txt"
    run = read_vot_results(result, 30)
    assert run.codes[0] == M.VOT_INIT and read_times(times, 30) is not None
    ds.protocol = "vot-lt"
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=30)
    result, times = result_paths("vot-lt", tmp_path / "votset" / "KCF", "book")
    assert result.relative_to(tmp_path).as_posix() == "votset/KCF/longterm/book/book_001.txt"
    assert result.read_text().splitlines()[0] == "1"
    conf_file = result.with_name("book_001_confidence.value")
    assert conf_file.read_text().splitlines()[0] == ""
    conf = read_confidences(conf_file, 30)
    assert np.isnan(conf[0]) and set(conf[1:]) <= {0.0, 1.0}
    ds.protocol = "got10k"
    run_benchmark(ds, {"KCF": "KCF"}, tmp_path, max_frames=30)
    result, times = result_paths("got10k", tmp_path / "votset" / "KCF", "book")
    assert result.relative_to(tmp_path).as_posix() == "votset/KCF/book/book_001.txt"
    assert times.name == "book_time.txt" and len(read_box_results(result, 30)) == 30


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"r.txt: results file is empty"),
        ("1,2,3,4\nnan,nan,nan,nan\n1,2,3,4\n", r"r.txt:2: NaN box"),
        ("1,2,3,4\n1,2,3,4\n", r"r.txt: 2 rows, but the sequence has 3 frames"),
        ("1,2,3,4\n1,2,3\n1,2,3,4\n", r"r.txt:2: 3 fields"),
    ],
)
def test_bad_box_result_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "r.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_box_results(path, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\n3\n0\n", r"v.txt:2: expected 0, 1, 2 or a region"),
        ("2\n0\n0\n", r"v.txt:1: a VOT result starts with 1"),
        ("1\nnan,1,2,3\n0\n", r"v.txt:2: NaN or infinite region"),
        ("1\n0\n", r"v.txt: 2 rows, but the sequence has 3 frames"),
        ("\n", r"v.txt: results file is empty"),
    ],
)
def test_bad_vot_result_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "v.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_vot_results(path, 3)


def test_missing_result_and_times_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="results file not found"):
        read_box_results(tmp_path / "none.txt", 3)
    assert read_times(tmp_path / "none.txt", 3) is None
    (tmp_path / "t.txt").write_text("0.1\n0.2\n")
    with pytest.raises(ValueError, match=r"t.txt: 2 times, but the sequence has 3 frames"):
        read_times(tmp_path / "t.txt", 3)


def test_tracker_specs() -> None:
    assert isinstance(make_tracker("kcf"), OpenCVTracker)
    assert make_tracker("test_runner:make_csrt").name == "CSRT"
    assert make_tracker(make_csrt).name == "CSRT"
    with pytest.raises(ValueError, match="unknown tracker 'foo'"):
        make_tracker("foo")
    with pytest.raises(ValueError, match="cannot import"):
        make_tracker("no_such_module_xyz:build")
    with pytest.raises(ValueError, match="has no nothing"):
        make_tracker("test_runner:nothing")
    with pytest.raises(ValueError, match="not a Tracker"):
        make_tracker(lambda: object())
    with pytest.raises(ValueError, match="needs a config"):
        make_tracker("siamrpn:")


def test_run_benchmark_arguments(seqs: Path, tmp_path: Path) -> None:
    ds = SequenceList([seqs / "otb" / "Crossing"])
    with pytest.raises(ValueError, match="no trackers"):
        run_benchmark(ds, {}, tmp_path)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_benchmark(ds, {"KCF": "KCF"}, tmp_path, workers=0)
    with pytest.raises(ValueError, match=r"has no sequences \['Nope'\]"):
        run_benchmark(ds, {"KCF": "KCF"}, tmp_path, sequences=["Nope"])


def test_resume_refuses_results_made_differently(seqs: Path, tmp_path: Path) -> None:
    """Results record how they were made; another --max-frames, tracker or weights file stops
    the run with the folder to clear, instead of a report that dies on the row count."""
    ds = SequenceList([seqs / "otb" / "Crossing"])
    run_benchmark(ds, {"T": "KCF"}, tmp_path, max_frames=8)
    folder = tmp_path / "sequences" / "T"
    record = json.loads((folder / PROVENANCE).read_text())
    assert record == {"tracker": "KCF", "max_frames": 8, "weights_sha256": None}
    with pytest.raises(ValueError, match=r"max_frames 8 -> None.*clear that folder") as info:
        run_benchmark(ds, {"T": "KCF"}, tmp_path)
    assert str(folder) in str(info.value)
    with pytest.raises(ValueError, match="tracker 'KCF' -> 'CSRT'"):
        run_benchmark(ds, {"T": "CSRT"}, tmp_path, max_frames=8)
    with pytest.raises(ValueError, match="with --max-frames 8"):
        evaluate(ds, tmp_path, ["T"], max_frames=None)
    # A weights file is identified by its content, not its name.
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"first")
    spec = f"siamrpn::{weights}"
    assert provenance(spec, None)["weights_sha256"] == hashlib.sha256(b"first").hexdigest()
    # Results without a record (older runs) are checked row by row.
    (folder / PROVENANCE).unlink()
    with pytest.raises(ValueError, match=r"Crossing.txt has 8 rows but this run wants 120"):
        run_benchmark(ds, {"T": "KCF"}, tmp_path)
    assert {j.status for j in run_benchmark(ds, {"T": "KCF"}, tmp_path, max_frames=8)} == {
        "skipped"
    }
