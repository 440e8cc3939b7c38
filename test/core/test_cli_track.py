"""siam-track on real data: bag.avi with --init (boxes equal pysot's reference), OTB and VOT
sequence folders starting from their first ground-truth box, a plain numbered-frame folder,
the annotated video, and clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from _siamrpn_data import BAG, PARITY, REPO, SEQUENCES, need

from siam_core.checkpoint import read_state_dict, save_checkpoint
from siam_core.cli.track import main
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.threads import auto_threads

NAME = "siamrpn_alex_dwxcorr"


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parity weights in our own format (config embedded)."""
    cfg = load_config(NAME)
    model = build_model(cfg)
    model.load_state_dict(read_state_dict(need(PARITY) / "weights.safetensors"))
    return save_checkpoint(model, cfg, tmp_path_factory.mktemp("w") / "alex.safetensors")


def test_video_with_init_matches_pysot_and_writes_video(tmp_path: Path, capsys) -> None:
    out, video = tmp_path / "track.json", tmp_path / "annotated.mp4"
    weights = need(PARITY) / "weights.safetensors"
    argv = [str(need(BAG)), "--model", NAME, "--weights", str(weights)]
    argv += ["--init", "315,140,112,112", "--out", str(out), "--save-video", str(video)]
    assert main([*argv, "--max-frames", "6", "--quiet"]) == 0
    assert f"annotated video -> {video}" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    reference = json.loads((PARITY / "reference.json").read_text())
    assert doc["model"] == NAME and doc["init"] == [315, 140, 112, 112]
    assert doc["threads"] == auto_threads()  # the default: --threads auto
    assert [f["frame"] for f in doc["frames"]] == list(range(6))
    assert doc["frames"][0] == {
        "frame": 0,
        "box": [315.0, 140.0, 112.0, 112.0],
        "score": None,
        "state": "INIT",
    }
    for got, exp in zip(doc["frames"][1:], reference["frames"][1:6], strict=True):
        assert np.abs(np.subtract(got["box"], exp["bbox"])).max() < 0.5
        assert abs(got["score"] - exp["best_score"]) < 1e-3
        assert got["state"] == "TRACKING"
    cap = cv2.VideoCapture(str(video))
    written = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        written.append(frame)
    cap.release()
    assert len(written) == 6 and written[0].shape == (360, 480, 3)
    # the box is drawn in green on the first frame
    assert written[0][140:252, 312:318, 1].mean() > 150


def test_report_lost_keeps_the_boxes_and_reports_the_state(ours: Path, tmp_path: Path, capsys):
    """``--report-lost``: the same boxes and scores as the plain run, LOST by the config's
    thresholds (here raised in a copy so these weights' scores fall below them); it and
    ``--long-term`` exclude each other."""
    cfg = load_config(NAME).replace_tracker(confidence_low=0.995, confidence_high=0.999)
    model = build_model(cfg)
    model.load_state_dict(read_state_dict(need(PARITY) / "weights.safetensors"))
    strict = save_checkpoint(model, cfg, tmp_path / "strict.safetensors")
    docs = {}
    for flag in ("", "--report-lost"):
        out = tmp_path / f"t{flag}.json"
        argv = [str(need(BAG)), "--weights", str(strict), "--init", "315,140,112,112"]
        assert main([*argv, "--out", str(out), "--max-frames", "6", "--quiet", *flag.split()]) == 0
        docs[flag] = json.loads(out.read_text())["frames"]
    assert [f["box"] for f in docs[""]] == [f["box"] for f in docs["--report-lost"]]
    assert {f["state"] for f in docs[""][1:]} == {"TRACKING"}
    assert docs["--report-lost"][1]["state"] == "LOST"
    with pytest.raises(SystemExit):
        main([str(BAG), "--weights", str(ours), "--out", "x", "--long-term", "--report-lost"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_otb_and_vot_folders_start_from_ground_truth(ours: Path, tmp_path: Path) -> None:
    for seq in (SEQUENCES / "otb" / "Crossing", SEQUENCES / "vot" / "bag"):
        out = tmp_path / f"{seq.name}.json"
        argv = [str(need(seq)), "--weights", str(ours), "--out", str(out)]
        assert main([*argv, "--max-frames", "3", "--quiet"]) == 0
        doc = json.loads(out.read_text())
        first = doc["frames"][0]["box"]
        if seq.name == "Crossing":
            gt = np.loadtxt(seq / "groundtruth_rect.txt")[0]
        else:  # VOT polygon -> axis-aligned min/max extent
            poly = np.loadtxt(seq / "groundtruth.txt", delimiter=",")[0].reshape(4, 2)
            lo, hi = poly.min(0), poly.max(0)
            gt = [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
        np.testing.assert_allclose(first, gt, atol=1e-3)
        assert len(doc["frames"]) == 3 and doc["model"] == NAME


def test_plain_frame_folder_needs_init(ours: Path, tmp_path: Path, capsys) -> None:
    src = need(SEQUENCES / "otb" / "Crossing" / "img")
    folder = tmp_path / "frames"
    folder.mkdir()
    for n in range(1, 4):
        shutil.copy(src / f"{n:04d}.jpg", folder / f"cam_{n}.jpg")
    out = tmp_path / "t.json"
    assert main([str(folder), "--weights", str(ours), "--out", str(out), "--quiet"]) == 1
    assert "give --init" in capsys.readouterr().err
    argv = [str(folder), "--weights", str(ours), "--out", str(out), "--init", "205,151,17,50"]
    assert main([*argv, "--quiet"]) == 0
    assert len(json.loads(out.read_text())["frames"]) == 3


def test_errors(ours: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "t.json")
    base = ["--weights", str(ours), "--out", out, "--init", "315,140,112,112", "--quiet"]
    cases = [
        ([str(tmp_path / "absent.mp4"), *base], "no such video"),
        ([str(BAG), *base[:2], "--out", str(tmp_path / "no" / "t.json")], "does not exist"),
        (
            [str(BAG), "--weights", str(tmp_path / "w.pth"), "--out", out, "--init", "1,1,5,5"],
            "not found",
        ),
        (
            [
                str(BAG),
                "--model",
                "nope",
                "--weights",
                str(ours),
                "--out",
                out,
                "--init",
                "1,1,5,5",
            ],
            "unknown config",
        ),
        ([str(BAG), *base[:4], "--init", "900,10,20,20"], "outside"),
        ([str(BAG), *base, "--save-video", str(tmp_path / "v.gif")], "--save-video"),
        ([str(BAG), *base, "--device", "tpu"], "device"),
        ([str(BAG), *base, "--threads", "0.5"], "'auto' or a positive integer"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([str(BAG), *base[:4], "--init", "1,2,3"])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_module_entry_point(ours: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    cmd = [sys.executable, "-m", "siam_core.cli.track", str(need(BAG)), "--weights", str(ours)]
    cmd += ["--init", "315,140,112,112", "--out", str(out), "--max-frames", "2", "--quiet"]
    cmd += ["--threads", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())["frames"]) == 2


def test_default_model_without_model_and_weights(tmp_path: Path, ours: Path, monkeypatch) -> None:
    """Neither --model nor --weights: the embedded default model (here: a stand-in file)."""
    from siam_core import zoo

    monkeypatch.setattr(zoo, "DEFAULT_WEIGHTS", ours)
    out = tmp_path / "t.json"
    argv = [str(need(BAG)), "--init", "315,140,112,112", "--out", str(out), "--max-frames", "3"]
    assert main([*argv, "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["weights"] == str(ours) and doc["model"] == NAME
    monkeypatch.setattr(zoo, "DEFAULT_WEIGHTS", tmp_path / "absent.safetensors")
    assert main([*argv, "--quiet"]) == 1
