"""Parity with the official pysot implementation on real video (pysot reference outputs).

``shared/data/parity/pysot_siamrpn_alex_dwxcorr`` holds seeded weights under pysot's key names
and pysot's own tracker output on ``bag.avi``; we must reproduce every frame's box within
0.5 px and its score within 1e-3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _siamrpn_data import BAG, PARITY, need, read_video

from siam_core.checkpoint import read_state_dict
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.tracker.siamrpn import build_tracker


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((need(PARITY) / "reference.json").read_text())


def test_config_matches_pysot_settings(reference: dict) -> None:
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


def test_state_dict_layout_matches_pysot(reference: dict) -> None:
    model = build_model(load_config(reference["config"]))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == reference["state_dict_shapes"]
    weights = read_state_dict(need(PARITY) / "weights.safetensors")
    assert {k: list(v.shape) for k, v in weights.items()} == reference["state_dict_shapes"]


@pytest.mark.slow
def test_track_reproduces_pysot_on_every_frame(reference: dict) -> None:
    frames = read_video(need(BAG))
    expected = reference["frames"]
    assert len(frames) == len(expected)
    tracker = build_tracker(reference["config"], need(PARITY) / "weights.safetensors")
    tracker.init(frames[0], reference["init"])
    box_err, score_err = [], []
    for frame, exp in zip(frames[1:], expected[1:], strict=True):
        result = tracker.track(frame)
        box_err.append(np.abs(np.subtract(result.box, exp["bbox"])).max())
        score_err.append(abs(result.score - exp["best_score"]))
    worst = int(np.argmax(box_err)) + 1
    assert max(box_err) < 0.5, f"frame {worst}: box off by {max(box_err):.3f} px"
    assert max(score_err) < 1e-3, f"score off by {max(score_err):.2e}"
