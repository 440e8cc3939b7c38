"""SiamFC+ in long-term mode on real frames.

SiamFC's confidence is the relative prominence of the chosen response (``siamfc.py``): about 1 on
the first frame, bounded, blind to the response's scale. With the SiamDW parity weights (seeded,
random: the response still follows the image deterministically) the long-term tracker reproduces
the official boxes while confident and goes LOST when the view is blocked (a flat gray frame:
the response map is flat, so its peak stands out no more than its mean). A gray patch over the
target alone is no test for these weights: a random network has no notion of similarity, and the
patch's edges make its response peak higher than the target's. Losing and re-detecting a target
needs a response that means similarity, so LOST -> RECOVERED runs on the ImageNet-feature SiamFC
double with the target replaced by the frame's own background (``_doubles.hide_target``), as the
RPN family's test does.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from _doubles import BAG, DATA, cosine_fc_double, hide_target, iou, need, sequence

from siam_core import zoo
from siam_core.cli.track import main as track_main
from siam_core.eval.runner import make_tracker
from siam_core.tracker.base import TrackState
from siam_core.tracker.longterm import (
    SIAMFC_ENTER,
    SIAMFC_LEAVE,
    LongTermConfig,
    LongTermTracker,
)
from siam_core.tracker.siamfc import SiamFCTracker, relative_prominence

T, L, R = TrackState.TRACKING, TrackState.LOST, TrackState.RECOVERED
REF = DATA / "parity" / "siamdw_siamfcres22"
WEIGHTS = REF / "weights.safetensors"


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((need(REF) / "reference.json").read_text())


@pytest.fixture(scope="module")
def bag() -> list[np.ndarray]:
    """The parity clip's frames (``bag.avi``, as the reference was made on them)."""
    capture = cv2.VideoCapture(str(need(BAG)))
    frames = [capture.read()[1] for _ in range(22)]
    capture.release()
    assert all(f is not None for f in frames)
    return frames


def test_confidence_is_one_on_the_first_frame_bounded_and_blind_to_the_response_scale(
    reference: dict, bag: list[np.ndarray]
) -> None:
    """The raw response is a correlation in the thousands; the confidence is ~1 on the first
    frame (its own reference), stays in [0, 1], and the same network with its response scaled
    by 1024 (exact in float32) gives the same boxes and the same confidences."""
    plain = zoo.build("siamfcplus_ciresnet22_vot", need(WEIGHTS))
    scaled = zoo.build("siamfcplus_ciresnet22_vot", WEIGHTS)
    assert isinstance(plain, SiamFCTracker) and isinstance(scaled, SiamFCTracker)
    scaled.net.head.out_scale *= 1024
    for tracker in (plain, scaled):
        tracker.init(bag[0], reference["init"])
    assert plain.reference_prominence > 1e3  # no absolute threshold could carry over
    assert scaled.reference_prominence == plain.reference_prominence * 1024
    assert plain.search(bag[0]).score > 0.99
    for frame in bag[1:5]:
        a, b = plain.track(frame), scaled.track(frame)
        assert a.box == b.box and a.score == b.score
        assert 0.0 <= a.score <= 1.0
    assert relative_prominence(5.0, 1.0, 2.0) == 1.0 and relative_prominence(0.0, 1.0, 2.0) == 0.0
    assert relative_prominence(2.0, 1.0, 0.0) == 0.0  # no peak on the first frame: no confidence


@pytest.mark.slow
def test_long_term_siamfc_is_plain_siamfc_while_confident_and_lost_when_the_view_is_blocked(
    reference: dict, bag: list[np.ndarray]
) -> None:
    """Through ``zoo.load_tracker(..., long_term=...)`` (the node's and siam-track's path):
    frames 1-20 of the parity clip give the official SiamFC boxes exactly; frame 21 is a flat
    gray frame: the confidence collapses (the old score, the sigmoid of the raw response, stays
    at 1 there), the state goes LOST and the last confident box is held; frame 22 is searched at
    the lost size (383) with the CIResNet-22 pyramid."""
    lt = zoo.load_tracker(
        "siamfcplus_ciresnet22_vot", str(need(WEIGHTS)), "cpu", {"lost_instance_sizes": [383]}
    )
    assert isinstance(lt, LongTermTracker) and isinstance(lt.tracker, SiamFCTracker)
    assert (lt.config.enter_threshold, lt.config.leave_threshold) == (SIAMFC_ENTER, SIAMFC_LEAVE)
    lt.init(bag[0], reference["init"])
    last = None
    for k in range(1, 21):
        last = lt.track(bag[k])
        assert last.state is T and last.score >= SIAMFC_ENTER, k
        assert np.abs(np.subtract(last.box, reference["frames"][k]["bbox"])).max() < 1e-6, k
    assert last is not None
    blocked = lt.track(np.full_like(bag[21], 128))
    assert blocked.state is L and blocked.score < 0.05
    assert blocked.box == last.box
    wider = lt.track(bag[21])
    assert wider.search_region[2] / blocked.search_region[2] == pytest.approx(383 / 255, rel=5e-3)


HIDE = range(90, 96)  # bag: the target replaced by the ground beside it


@pytest.mark.slow
def test_siamfc_target_hidden_by_background_is_lost_then_reacquired() -> None:
    """The SiamFC double on bag frames 84-100, the target hidden on frames 90-95: tracked
    before, LOST on the first hidden frame with the box held while the search grows 255 -> 383
    -> 511 (the scale pyramid, window and map centre follow the size), RECOVERED on
    reappearance within two frames with the box back on the target, then TRACKING."""
    start, end = 84, 101
    seq = sequence("vot/bag")
    frames = [
        hide_target(seq.read(i), seq.gt[i]) if i in HIDE else seq.read(i) for i in range(start, end)
    ]
    model, cfg = cosine_fc_double()
    config = LongTermConfig.from_config(cfg, lost_instance_sizes=(383, 511))
    lt = LongTermTracker(SiamFCTracker(model, cfg), config)
    lt.init(frames[0], seq.gt[start])
    index = {start + 1 + i: lt.track(f) for i, f in enumerate(frames[1:])}
    before = [index[i] for i in range(start + 1, HIDE.start)]
    assert all(r.state is T for r in before)
    assert np.mean([iou(index[i].box, seq.gt[i]) for i in range(start + 1, HIDE.start)]) > 0.7
    hidden = [index[i] for i in HIDE]
    assert all(r.state is L for r in hidden)  # LOST on the very first hidden frame
    assert all(r.score < SIAMFC_ENTER for r in hidden)
    assert len({r.box for r in hidden}) == 1  # the last confident box is held
    assert hidden[0].box == index[HIDE.start - 1].box
    sides = [r.search_region[2] for r in hidden]
    assert sides[0] < sides[1] < sides[2] == sides[-1]  # 255, 383, then 511 held
    assert sides[2] / sides[0] == pytest.approx(511 / 255, rel=1e-3)
    back = next(i for i in range(HIDE.stop, end) if index[i].state is R)
    assert back - HIDE.stop <= 1
    assert index[back].score > SIAMFC_LEAVE and iou(index[back].box, seq.gt[back]) > 0.6
    assert index[back + 1].state is T


def test_every_entry_point_runs_siamfc_in_long_term_mode(reference: dict, tmp_path: Path) -> None:
    """zoo (``long_term``), the long-term preset (siam-eval's spec and siam-track through
    ``zoo.build``), and ``siam-track --long-term``; lost sizes off the stride grid are refused."""
    weights = str(need(WEIGHTS))
    lt = zoo.load_tracker("siamfcplus_ciresnet22_vot", weights, "cpu", {})
    assert isinstance(lt, LongTermTracker) and isinstance(lt.tracker, SiamFCTracker)
    assert lt.config == LongTermConfig(SIAMFC_ENTER, SIAMFC_LEAVE, (767,), 0.001)
    asked = zoo.load_tracker("siamfcplus_ciresnet22_otb", weights, "cpu", {"enter_threshold": 0.2})
    assert isinstance(asked, LongTermTracker) and asked.config.enter_threshold == 0.2
    preset = make_tracker(f"siamfc:siamfcplus_ciresnet22_lt:{weights}")
    assert isinstance(preset, LongTermTracker) and isinstance(preset.tracker, SiamFCTracker)
    assert preset.config == lt.config  # the preset states the family's defaults
    with pytest.raises(ValueError, match="off the stride-8 grid"):
        zoo.load_tracker("siamfcplus_ciresnet22_vot", weights, "cpu", {"lost_instance_sizes": 770})
    out = tmp_path / "t.json"
    argv = [str(need(BAG)), "--model", "siamfcplus_ciresnet22_vot", "--weights", weights]
    argv += ["--init", "315,140,112,112", "--out", str(out), "--max-frames", "3", "--quiet"]
    assert track_main([*argv, "--long-term"]) == 0
    doc = json.loads(out.read_text())
    for got, exp in zip(doc["frames"][1:], reference["frames"][1:3], strict=True):
        assert got["state"] == "TRACKING" and SIAMFC_ENTER <= got["score"] <= 1.0
        assert np.abs(np.subtract(got["box"], exp["bbox"])).max() < 1e-3


def test_threshold_tool_separates_a_visible_target_from_a_hidden_one(tmp_path: Path) -> None:
    """``tools/siamfc_thresholds.py`` (how the SiamFC defaults were chosen, and how a user
    chooses a trained model's) on a training sequence with the SiamFC double: the visible
    target's confidence lies above the leave threshold, the hidden target's below enter (by
    the median; single frames may stray, which is what the rates report)."""
    tool = _load_tool()
    seq = str(need(DATA / "train_extra" / "tbench_Dog1"))
    out = tmp_path / "t.json"
    argv = ["--tracker", "_doubles:cosine_fc_tracker", seq, "--frames", "21", "--step", "5"]
    assert tool.main([*argv, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["frames"] == {"visible": 4, "hidden": 4}
    assert doc["visible"]["50"] > SIAMFC_LEAVE and doc["hidden"]["50"] < SIAMFC_ENTER
    assert doc["visible_below_enter"] == 0.0 and doc["hidden_above_leave"] == 0.0
    assert tool.main(["--tracker", "KCF", seq]) == 2  # not a SiamFC tracker: refused


def _load_tool():
    path = Path(__file__).resolve().parents[2] / "tools" / "siamfc_thresholds.py"
    spec = importlib.util.spec_from_file_location("siamfc_thresholds", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
