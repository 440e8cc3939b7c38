"""Model, weights and device resolution shared by siam-track and the ROS node."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siam_core import zoo

PARITY = Path(__file__).resolve().parents[3] / "shared/data/parity/pysot_siamrpn_alex_dwxcorr"


def test_auto_device_follows_cuda_availability() -> None:
    assert zoo.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert zoo.resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        zoo.resolve_device("cuda:0")


def test_missing_or_incomplete_choices_are_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(zoo, "DEFAULT_WEIGHTS", tmp_path / "default.safetensors")
    with pytest.raises(FileNotFoundError, match="no default model"):
        zoo.load_tracker()
    with pytest.raises(ValueError, match="named without weights"):
        zoo.load_tracker("siamrpn_alex_dwxcorr")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        zoo.load_tracker("siamrpn_alex_dwxcorr", str(tmp_path / "nope.pth"))


def parity_boxes(device: str, frames: int = 12) -> np.ndarray:
    weights = PARITY / "weights.safetensors"
    if not weights.exists():
        pytest.skip(f"{weights} absent")
    tracker = zoo.load_tracker("siamrpn_alex_dwxcorr", str(weights), device)
    capture = cv2.VideoCapture(str(PARITY.parents[1] / "bag.avi"))
    ok, frame = capture.read()
    assert ok
    tracker.init(frame, (315, 140, 112, 112))
    boxes = []
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok
        boxes.append(tracker.track(frame).box)
    return np.array(boxes)


@pytest.mark.gpu
def test_cuda_tracks_like_the_cpu() -> None:
    np.testing.assert_allclose(parity_boxes("cuda"), parity_boxes("cpu"), atol=0.5)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_backends_take_the_auto_thread_rule(backend: str, tmp_path, monkeypatch) -> None:
    """``threads=0`` is the project's ``auto`` count (one thread on a 2-core machine), never
    the runtime's one-thread-per-core default, which the node's 2 cores share with DDS."""
    pytest.importorskip(backend, reason=f"{backend} missing: run `make setup`")
    from siam_core.threads import auto_threads

    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    tracker = zoo.load_tracker("", "", backend=backend, threads=0)
    assert tracker.net.threads_in_use() == auto_threads()
    tracker = zoo.load_tracker("", "", backend=backend, threads=2)
    assert tracker.net.threads_in_use() == 2
