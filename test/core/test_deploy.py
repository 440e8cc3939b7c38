"""ONNX export and the ONNX Runtime / OpenVINO backends on real frames.

The exported graphs are checked against PyTorch on a real crop pair, and the tracker run by
each runtime must give PyTorch's boxes within 0.5 px on every frame of the parity clip
(pysot's seeded alex weights on ``bag.avi``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _siamrpn_data import BAG, INIT, PARITY, need, steps_from_reference

from siam_core import zoo
from siam_core.cli import export as export_cli
from siam_core.cli import track as track_cli
from siam_core.deploy import cache
from siam_core.deploy.export import export_onnx, read_manifest
from siam_core.deploy.runtime import OnnxNet
from siam_core.eval.runner import make_tracker
from siam_core.tracker.siamrpn import SiamRPNTracker

pytest.importorskip("onnxruntime", reason="onnxruntime missing: run `make setup`")


@pytest.fixture(scope="module")
def exported(alex, frames, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, cfg = alex
    out = tmp_path_factory.mktemp("alex_onnx")
    z, x = SiamRPNTracker(model, cfg, optimize=False).patches(frames[0], INIT)
    export_onnx(model, cfg, out, z, x, batches=(3,))
    return out


def test_export_writes_checked_graphs_and_manifest(exported: Path, alex) -> None:
    manifest = read_manifest(exported)
    assert manifest["config"] == alex[1].to_dict()
    assert manifest["head_batches"] == [1, 3]
    assert set(manifest["graphs"]) == {
        "template",
        "features",
        "head_b1",
        "head_b3",
        "search_b1",
        "search_b3",
    }
    assert manifest["search_batches"] == [1, 3]
    for graph in manifest["graphs"].values():
        assert (exported / graph["file"]).is_file()
    assert manifest["graphs"]["template"]["inputs"] == {"z": [1, 3, 127, 127]}
    assert manifest["graphs"]["head_b1"]["outputs"]["cls"] == [1, 10, 21, 21]
    assert max(manifest["check"]["max_relative_error"].values()) < 1e-3


def test_openvino_gives_pytorch_boxes_on_every_frame(
    alex, exported: Path, frames: list[np.ndarray]
) -> None:
    """Every frame of the parity clip from PyTorch's state: OpenVINO's box within 0.5 px
    (measured: under 0.05 px) and its score within 1e-3. (ONNX Runtime is held to more below:
    free-running over the whole clip.)"""
    pytest.importorskip("openvino", reason="openvino missing: run `make setup`")
    backend = "openvino"
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, runtime=OnnxNet(exported, backend, threads=1))
    for i, err, score_err in steps_from_reference(ref, got, frames, INIT):
        assert err < 0.5, f"{backend} frame {i}: box off by {err:.3f} px"
        assert score_err < 1e-3


def test_onnxruntime_runs_the_whole_clip_on_its_own(alex, exported, frames) -> None:
    """Free-running, ONNX Runtime follows PyTorch. Over all 196 frames it stays within 0.5 px on
    the machine these figures were first measured on. Float32 differences of ~5e-6 compound
    through the smoothed size on this seeded (untrained) network, though, and where two anchors
    score within them the choice flips: on an AVX-512 AMD EPYC the boxes agree within 0.003 px
    to frame 89, then an anchor flip at frame 90 (1.3 px) sends the two tracks apart. (OpenVINO
    elsewhere: 2 px at frame 165.) So the free-running bound covers the first 80 frames; every
    frame's outputs from the same state match within 0.5 px everywhere (the test above)."""
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, runtime=OnnxNet(exported, "onnxruntime", threads=1))
    ref.init(frames[0], INIT)
    got.init(frames[0], INIT)
    for i, frame in enumerate(frames[1:81], 1):
        err = float(np.abs(np.subtract(ref.track(frame).box, got.track(frame).box)).max())
        assert err < 0.5, f"frame {i}: box off by {err:.3f} px"


def test_wider_search_runs_through_the_same_graphs(alex, exported, frames) -> None:
    """The long-term tracker widens the search: the graphs take any search size."""
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, runtime=OnnxNet(exported, "onnxruntime", threads=1))
    for t in (ref, got):
        t.init(frames[0], INIT)
    a, b = ref.search(frames[5], instance_size=447), got.search(frames[5], instance_size=447)
    assert abs(a.cx - b.cx) < 0.5 and abs(a.cy - b.cy) < 0.5 and abs(a.score - b.score) < 1e-3


def test_a_batch_without_its_head_graph_runs_per_target(alex, exported, frames) -> None:
    """Heads exist for 1 and 3 targets; 2 targets (a node's target set) run the batch-1 head
    once per target and give exactly its outputs."""
    import torch

    model, cfg = alex
    net = OnnxNet(exported, "onnxruntime", threads=1)
    tracker = SiamRPNTracker(model, cfg, runtime=net)
    tracker.init(frames[0], INIT)
    kernels, feats = tracker._kernels, tracker._search_patch(frames[1]).features
    cls, loc = net.run_head([*kernels, *feats])
    cls2, loc2 = net.run_head([torch.cat([t, t]) for t in [*kernels, *feats]])
    assert cls2.shape[0] == loc2.shape[0] == 2
    for row in (0, 1):
        assert torch.equal(cls2[row : row + 1], cls) and torch.equal(loc2[row : row + 1], loc)


def test_bad_exports_say_what_to_do(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="siam-export"):
        OnnxNet(tmp_path, "onnxruntime")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable manifest"):
        OnnxNet(tmp_path, "onnxruntime")
    (tmp_path / "manifest.json").write_text(json.dumps(read_manifest(exported)))
    with pytest.raises(FileNotFoundError, match=r"template\.onnx missing"):
        OnnxNet(tmp_path, "onnxruntime")
    (tmp_path / "template.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(Exception, match=r"(?i)protobuf|parse|load|invalid"):
        OnnxNet(tmp_path, "onnxruntime")
    with pytest.raises(ValueError, match="provider"):
        OnnxNet(exported, "tflite")
    with pytest.raises(ValueError, match="runs on CUDA"):
        OnnxNet(exported, "tensorrt")  # on the CPU
    with pytest.raises(ValueError, match="runs on the CPU"):
        OnnxNet(exported, "openvino", device="cuda")


def test_siam_track_and_siam_eval_take_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exported: Path
) -> None:
    """The default model through siam-track --backend onnxruntime --precision fp32 (exported
    into the cache on first use, reused after) and a siam-eval spec with @onnxruntime; the
    JSON output names the runtime that ran."""
    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "t.json"
    argv = [str(need(BAG)), "--init", "315,140,112,112", "--max-frames", "8", "--quiet"]
    fp32 = ["--precision", "fp32", "--out", str(out)]
    assert track_cli.main([*argv, "--backend", "onnxruntime", *fp32]) == 0
    onnx_doc = json.loads(out.read_text())
    assert (onnx_doc["backend"], onnx_doc["precision"]) == ("onnxruntime", "fp32")
    assert track_cli.main([*argv, "--backend", "torch", "--out", str(out)]) == 0
    torch_doc = json.loads(out.read_text())
    assert (torch_doc["backend"], torch_doc["precision"]) == ("torch", "fp32")  # auto: fp32
    for a, b in zip(onnx_doc["frames"], torch_doc["frames"], strict=True):
        assert np.abs(np.subtract(a["box"], b["box"])).max() < 0.5
    exports = list((tmp_path / "cache" / "onnx").iterdir())
    assert len(exports) == 1  # exported once
    manifest = read_manifest(exports[0])
    assert "image" in manifest["check"]
    tracker = make_tracker(f"siamrpn::{zoo.DEFAULT_WEIGHTS}@onnxruntime")
    assert isinstance(tracker, SiamRPNTracker) and isinstance(tracker.net, OnnxNet)
    assert list((tmp_path / "cache" / "onnx").iterdir()) == exports  # the cache was reused
    with pytest.raises(ValueError, match="backend must be one of"):
        zoo.load_tracker(backend="tflite")
    with pytest.raises(ValueError, match="runs on CUDA"):
        zoo.load_tracker(backend="tensorrt", device="cpu")


def test_siam_export_cli_on_a_real_frame(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = need(PARITY) / "weights.safetensors"
    out = tmp_path / "exp"
    argv = ["siamrpn_alex_dwxcorr", "--weights", str(weights), "--out", str(out)]
    assert export_cli.main([*argv, "--image", str(need(BAG)), "--box", "315,140,112,112"]) == 0
    assert "max relative deviation" in capsys.readouterr().out
    assert read_manifest(out)["check"]["image"].endswith("bag.avi frame 0")
    assert export_cli.main([*argv, "--image", str(need(BAG))]) == 1
    assert "--image needs --box" in capsys.readouterr().err
    assert export_cli.main([*argv, "--image", str(need(BAG)), "--box", "900,900,5,5"]) == 1
    assert "outside" in capsys.readouterr().err


def test_check_frame_falls_back_to_a_synthetic_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_CHECK_CLIPS", ())
    frame, _, source = cache.check_frame()
    assert frame.shape == (360, 480, 3) and source.startswith("synthetic")
    assert frame.std() > 20  # textured, so the check exercises the network


def _providers() -> list[str]:
    import onnxruntime as ort

    return ort.get_available_providers()


def test_a_gpu_provider_onnxruntime_lacks_is_named(exported: Path) -> None:
    """``onnxruntime`` on CUDA needs onnxruntime-gpu; the CPU build says so, naming it."""
    if "CUDAExecutionProvider" in _providers():
        pytest.skip("this onnxruntime has the CUDA execution provider")
    with pytest.raises(RuntimeError, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
        OnnxNet(exported, "onnxruntime", device="cuda")
    with pytest.raises(RuntimeError, match="TensorrtExecutionProvider"):
        OnnxNet(exported, "tensorrt", device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["onnxruntime", "tensorrt"])
def test_gpu_providers_give_pytorch_boxes_on_every_frame(backend, alex, exported, frames) -> None:
    """ONNX Runtime's CUDA and TensorRT execution providers, where installed (onnxruntime-gpu;
    TensorRT's libraries for the latter): every frame from PyTorch's state within 0.5 px."""
    wanted = {"onnxruntime": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    if wanted[backend] not in _providers():
        pytest.skip(f"onnxruntime has no {wanted[backend]}")
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    try:
        net = OnnxNet(exported, backend, threads=1, device="cuda")
    except RuntimeError as exc:  # listed, but its libraries (libnvinfer) are not there
        pytest.skip(str(exc))
    got = SiamRPNTracker(model, cfg, runtime=net)
    ref.init(frames[0], INIT)
    got.init(frames[0], INIT)
    for i, frame in enumerate(frames[1:], 1):
        got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        err = float(np.abs(np.subtract(ref.track(frame).box, got.track(frame).box)).max())
        assert err < 0.5, f"{backend} frame {i}: box off by {err:.3f} px"
