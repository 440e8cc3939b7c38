"""The reliability defects, one deterministic test each, through the core and the worker."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siam_core.cli import track
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.tracker.base import check_box
from siam_core.tracker.siamrpn import SiamRPNTracker

FRAME = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)


@pytest.fixture(scope="module")
def tracker() -> SiamRPNTracker:
    torch.manual_seed(0)
    cfg = load_config("siamrpn_alex_dwxcorr")
    return SiamRPNTracker(build_model(cfg), cfg)


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ((10, 10, 1e-200, 1e-200), "smaller than 1 px"),
        ((10, 10, 5e-324, 20), "smaller than 1 px"),
        ((0, 0, 1e5, 1e5), "too large"),
        ((0, 0, 321, 20), "too large"),  # more than twice the 160 px width
        ((0, 0, 20, float("inf")), "non-finite"),
    ],
)
def test_box_bounds(box, words) -> None:
    with pytest.raises(ValueError, match=words):
        check_box(box, FRAME.shape)


def test_largest_allowed_box_tracks(tracker) -> None:
    tracker.init(FRAME, (-150.0, -110.0, 320.0, 240.0))  # twice the image, centred on it
    result = tracker.track(FRAME)
    assert all(np.isfinite(result.box)) and result.search_region[2] > 1000


def test_failed_init_keeps_the_current_target(tracker, monkeypatch) -> None:
    tracker.init(FRAME, (40.0, 30.0, 40.0, 30.0))
    centre, size, kernels = tracker.center_pos.copy(), tracker.size.copy(), tracker._kernels

    def broken(*_args):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(tracker.net, "template", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        tracker.init(FRAME, (10.0, 10.0, 30.0, 30.0))
    monkeypatch.undo()
    assert tracker.initialized and tracker._kernels is kernels
    assert np.array_equal(tracker.center_pos, centre) and np.array_equal(tracker.size, size)
    assert np.isfinite(tracker.track(FRAME).box).all()


def test_worker_survives_any_exception(tracker) -> None:
    from siam_tracker_ros.worker import TrackingWorker

    reports: list[str] = []
    reported, published = threading.Event(), threading.Event()

    def report(where: str, exc: BaseException) -> None:
        reports.append(f"{where}: {type(exc).__name__}")
        reported.set()

    def convert(msg):
        if msg == "boom":
            raise cv2.error("simulated OpenCV failure")
        return FRAME

    worker = TrackingWorker(
        tracker, convert, lambda outcome: published.set(), lambda text: None, report=report
    )
    ok, message, _ = worker.init_target((40, 30, 40, 30), image="boom")
    assert not ok and "internal error (error" in message
    assert reports == ["init_target: error"]
    ok, _, target = worker.init_target((40, 30, 40, 30), image="good")
    assert ok
    reported.clear()
    worker.start()
    worker.submit("boom", 1)  # raises in convert: not a ValueError, reported, thread lives
    assert reported.wait(30.0)
    worker.submit("good", 2)
    assert published.wait(30.0)
    worker.stop()
    assert reports[-1] == "tracking a frame: error" and worker.target_id == target


def test_resolution_change_drops_the_target(tracker) -> None:
    from siam_tracker_ros.worker import Frame, TrackingWorker

    frames = {"big": FRAME, "small": FRAME[:60, :80]}
    warnings: list[str] = []
    worker = TrackingWorker(tracker, frames.__getitem__, lambda o: None, warnings.append)
    assert worker.init_target((40, 30, 40, 30), image="big")[0]
    assert worker.process(Frame("big", 1, 0.0)).target_id
    outcome = worker.process(Frame("small", 2, 0.0))
    assert outcome.target_id == "" and worker.target_ids == []
    assert "image size changed from 160x120 to 80x60" in warnings[-1]


# -- siam-track ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    for k in range(3):
        cv2.imwrite(str(folder / f"{k:04d}.png"), FRAME)
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tracker) -> Path:
    from siam_core.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("w") / "alex.safetensors"
    return save_checkpoint(tracker.model, tracker.cfg, path)


def siam_track(capsys, *args: str) -> tuple[int, str]:
    try:
        code = track.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_siam_track_negative_init_and_bad_boxes(frames_dir, weights, tmp_path, capsys) -> None:
    out = tmp_path / "t.json"
    code, err = siam_track(
        capsys,
        frames_dir,
        "--weights",
        weights,
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out,
        "--init",
        "-20,-20,60,60",
    )
    assert code == 0, err
    assert json.loads(out.read_text())["init"] == [-20.0, -20.0, 60.0, 60.0]
    for init, words in (("0,0,1e5,1e5", "too large"), ("10,10,1e-200,1e-200", "smaller than")):
        code, err = siam_track(
            capsys, frames_dir, "--weights", weights, "--quiet", "--out", out, "--init", init
        )
        assert code in (1, 2) and words in err, err


def test_siam_track_refuses_a_folder_as_out_before_tracking(
    frames_dir, weights, tmp_path, capsys
) -> None:
    code, err = siam_track(
        capsys,
        frames_dir,
        "--weights",
        weights,
        "--quiet",
        "--out",
        tmp_path,
        "--init",
        "10,10,20,20",
    )
    assert code == 1 and "output path is a folder" in err, err


def test_siam_track_absurd_embedded_config(frames_dir, tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    cfg = load_config("siamrpn_alex_dwxcorr").to_dict()
    cfg["tracker"]["instance_size"] = 100000
    path = tmp_path / "absurd.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"config": json.dumps(cfg)})
    code, err = siam_track(
        capsys,
        frames_dir,
        "--weights",
        path,
        "--quiet",
        "--out",
        tmp_path / "t.json",
        "--init",
        "10,10,20,20",
    )
    assert code == 1 and "instance_size must be <= 2048" in err, err


# -- conversions ---------------------------------------------------------------------------------
def test_compressed_header_is_checked_before_decoding() -> None:
    pytest.importorskip("rclpy")
    from sensor_msgs.msg import CompressedImage

    from siam_tracker_ros.conversions import compressed_size, compressed_to_bgr

    for ext in (".png", ".jpg"):
        data = cv2.imencode(ext, FRAME)[1].tobytes()
        assert compressed_size(data) == (160, 120)
        assert compressed_to_bgr(CompressedImage(data=data)).shape == (120, 160, 3)
    png = bytearray(cv2.imencode(".png", FRAME[:8, :8])[1].tobytes())  # a few hundred bytes
    png[16:24] = (16000).to_bytes(4, "big") * 2
    with pytest.raises(ValueError, match="16000x16000 px exceeds the limit"):
        compressed_to_bgr(CompressedImage(data=bytes(png)))
    with pytest.raises(ValueError, match="neither JPEG nor PNG"):
        compressed_to_bgr(CompressedImage(data=cv2.imencode(".bmp", FRAME)[1].tobytes()))


def test_raw_image_size_limit() -> None:
    pytest.importorskip("rclpy")
    from siam_tracker_ros.conversions import bgr_to_image, image_to_bgr

    msg = bgr_to_image(FRAME)
    assert image_to_bgr(msg, max_pixels=160 * 120).shape == FRAME.shape
    with pytest.raises(ValueError, match="max_image_pixels"):
        image_to_bgr(msg, max_pixels=160 * 120 - 1)


def test_decoder_messages_go_to_the_callback_not_stderr(capfd) -> None:
    pytest.importorskip("rclpy")
    from sensor_msgs.msg import CompressedImage

    from siam_tracker_ros.conversions import compressed_to_bgr

    data = cv2.imencode(".jpg", FRAME)[1].tobytes()
    damaged = data[:-2] + bytes(80) + data[-2:]  # garbage before the end-of-image marker
    got: list[str] = []
    image = compressed_to_bgr(CompressedImage(data=damaged), decoder_messages=got.append)
    assert image.shape == FRAME.shape
    assert len(got) == 1 and "Corrupt JPEG data" in got[0]
    assert "Corrupt" not in capfd.readouterr().err
