"""Parity with the official pysot implementation on real video (pysot reference outputs).

Each folder of ``shared/data/parity/pysot_*`` holds seeded weights under pysot's key names and
pysot's own tracker output on ``bag.avi``; ``siam-track``, run as a user runs it (its console
script, in its own process), must reproduce every frame's box within 0.5 px and its score
within 1e-3. The references are made by the official code, not restated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _siamrpn_data import BAG, DATA, REPO, need

from siam_core.checkpoint import read_state_dict
from siam_core.config import load_config
from siam_core.models.model import build_model

# reference folder -> frames it covers (the README's parity table lists the same)
REFERENCES = {
    "pysot_siamrpn_alex_dwxcorr": 196,
    "pysot_siamrpn_mobilev2_l234_dwxcorr": 60,
}
BOX_TOLERANCE = 0.5  # px, per frame
SCORE_TOLERANCE = 1e-3


def _folder(name: str) -> Path:
    return need(DATA / "parity" / name)


def _reference(name: str) -> dict:
    return json.loads((_folder(name) / "reference.json").read_text())


@pytest.mark.parametrize("name", list(REFERENCES))
def test_config_matches_pysot_settings(name: str) -> None:
    reference = _reference(name)
    cfg = load_config(reference["config"])
    t, a = reference["track_cfg"], reference["anchor_cfg"]
    assert cfg.tracker.penalty_k == t["PENALTY_K"]
    assert cfg.tracker.window_influence == t["WINDOW_INFLUENCE"]
    assert cfg.tracker.lr == t["LR"]
    assert cfg.tracker.exemplar_size == t["EXEMPLAR_SIZE"]
    assert cfg.tracker.instance_size == t["INSTANCE_SIZE"]
    assert cfg.tracker.base_size == t["BASE_SIZE"]
    assert cfg.tracker.context_amount == t["CONTEXT_AMOUNT"]
    assert cfg.anchor.stride == a["STRIDE"]
    assert list(cfg.anchor.ratios) == a["RATIOS"]
    assert list(cfg.anchor.scales) == a["SCALES"]
    assert cfg.anchor.num == a["ANCHOR_NUM"]


@pytest.mark.parametrize("name", list(REFERENCES))
def test_state_dict_layout_matches_pysot(name: str) -> None:
    reference = _reference(name)
    model = build_model(load_config(reference["config"]))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference["state_dict_shapes"]
    weights = read_state_dict(_folder(name) / "weights.safetensors")
    assert {k: list(v.shape) for k, v in weights.items()} == reference["state_dict_shapes"]


def _siam_track() -> str:
    """The ``siam-track`` console script next to this interpreter (what ``make`` installs)."""
    script = Path(sys.executable).parent / "siam-track"
    if not script.is_file():
        pytest.fail(f"siam-track is not installed next to {sys.executable}; run make")
    return str(script)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REFERENCES))
def test_siam_track_reproduces_pysot_on_every_frame(name: str, tmp_path: Path) -> None:
    reference = _reference(name)
    expected = reference["frames"]
    assert len(expected) == REFERENCES[name]
    out = tmp_path / "track.json"
    init = ",".join(str(v) for v in reference["init"])
    cmd = [_siam_track(), str(need(BAG)), "--model", reference["config"]]
    cmd += ["--weights", str(_folder(name) / "weights.safetensors"), "--init", init]
    cmd += ["--out", str(out), "--max-frames", str(len(expected)), "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    frames = json.loads(out.read_text())["frames"]
    assert len(frames) == len(expected)
    box_err = [
        float(np.abs(np.subtract(got["box"], exp["bbox"])).max())
        for got, exp in zip(frames[1:], expected[1:], strict=True)
    ]
    score_err = [
        abs(got["score"] - exp["best_score"])
        for got, exp in zip(frames[1:], expected[1:], strict=True)
    ]
    worst = int(np.argmax(box_err)) + 1
    assert max(box_err) < BOX_TOLERANCE, f"frame {worst}: box off by {max(box_err):.3f} px"
    assert max(score_err) < SCORE_TOLERANCE, f"score off by {max(score_err):.2e}"
