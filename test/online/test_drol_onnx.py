"""DROL's online classifier on the exported backends (ONNX Runtime, OpenVINO).

The classifier reads the search branch's features whatever runs the network, so a tracker on
exported graphs can keep it: on float32 graphs it must follow the torch ``DROLTracker``
(real frames, the embedded default model, synchronous updates), and the export it uses must be
unfolded (the classifier averages the neck's maps, which folded graphs do not all give).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_drol_tracker import BAG, QUICK, read_video

from siam_core import zoo
from siam_core.tracker.drol import DROLTracker

pytest.importorskip("onnxruntime", reason="onnxruntime missing: run `make setup`")

INIT = (315.0, 140.0, 112.0, 112.0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_video(BAG, 9)


def test_drol_on_onnxruntime_follows_drol_on_torch(
    frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Free-running over 8 frames with updates (train_skipping 2): boxes within 0.05 px,
    the same hard-negative flags (measured: under 1e-3 px)."""
    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path))
    ref = zoo.load_tracker("", "", online=QUICK)
    got = zoo.load_tracker("", "", backend="onnxruntime", online=QUICK, threads=1)
    assert isinstance(got, DROLTracker) and got.runtime is not None
    (folder,) = (tmp_path / "onnx").iterdir()
    assert folder.name.endswith("-unfolded")
    assert json.loads((folder / "manifest.json").read_text())["folded_levels"] == []
    ref.init(frames[0], INIT)
    got.init(frames[0], INIT)
    for i, frame in enumerate(frames[1:], 1):
        a, b = ref.track(frame), got.track(frame)
        err = float(np.abs(np.subtract(a.box, b.box)).max())
        assert err < 0.05, f"frame {i}: box off by {err:.4f} px"
        assert a.score == pytest.approx(b.score, abs=1e-3)
        assert got.online.last.flag == ref.online.last.flag
    ref.close()
    got.close()


def test_openvino_serves_the_frame_path_and_the_training_worker_at_once(
    frames, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenVINO infer request serves one thread at a time (a second caller gets "busy"):
    with asynchronous training the worker extracts its features while the frame path tracks,
    each thread on its own request, and neither fails."""
    pytest.importorskip("openvino", reason="openvino missing: run `make setup`")
    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path))
    online = {**QUICK, "async_update": True}
    tracker = zoo.load_tracker("", "", backend="openvino", online=online, threads=1)
    tracker.init(frames[0], INIT)  # returns at once: the training runs on the worker
    classifier = tracker.online.classifier
    assert not classifier.ready
    for frame in frames[1:]:  # meanwhile the frame path runs the same graphs
        assert np.isfinite(tracker.track(frame).box).all()
    classifier.wait()  # re-raises what the worker raised
    assert classifier.ready
    assert np.isfinite(tracker.track(frames[1]).box).all()
    tracker.close()
