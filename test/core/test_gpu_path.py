"""The GPU path: device crops, autocast, CUDA graphs / torch.compile, the GPU benchmark script.

Everything device-agnostic runs here on the CPU: the torch crop against OpenCV's on real
frames, trackers with device crops and with autocast against the normal path on the parity
clip (pysot's seeded alex weights on ``bag.avi``), the fallback of a failed compilation and a
CPU rehearsal of tools/gpu_bench_on_device.sh. What needs CUDA (graph capture, the crops and
autocast on a GPU, torch.compile, which takes minutes on these CPUs) carries the ``gpu`` marker
and is skipped where PyTorch sees no CUDA device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _siamrpn_data import DATA, INIT, PARITY, need

from siam_core import zoo
from siam_core.tracker import accel
from siam_core.tracker.multi import MultiTracker
from siam_core.tracker.siamrpn import (
    SiamRPNTracker,
    crop_patch,
    crop_patch_torch,
    round_half_away,
)

ROOT = Path(__file__).resolve().parents[2]


def crop_cases(frame: np.ndarray) -> list[tuple]:
    """(centre, out size, square side, origin rounding): inside, partly and wholly outside
    (padding), exact halving (OpenCV averages), same size (a copy), up- and downsampling."""
    h, w = frame.shape[:2]
    rng = np.random.default_rng(0)
    cases = [
        ((370.5, 195.5), 127, 224, None),  # the parity template crop
        ((370.5, 195.5), 255, 450, None),  # its search crop
        ((10.0, 12.0), 255, 300, None),  # top-left corner: padding on two sides
        ((w - 3.0, h - 2.5), 255, 611, round_half_away),  # bottom-right, DaSiamRPN rounding
        ((w / 2, h / 2), 255, 1200, None),  # larger than the frame: padding all round
        ((-500.0, -400.0), 127, 90, None),  # wholly outside: all padding
        ((200.0, 150.0), 255, 510, None),  # exact halving
        ((200.0, 150.0), 127, 127, None),  # same size
        ((100.0, 300.0), 287, 41, None),  # upsampling, partly outside
    ]
    for _ in range(12):
        centre = (float(rng.uniform(-60, w + 60)), float(rng.uniform(-60, h + 60)))
        cases.append(
            (centre, int(rng.choice([127, 255, 271, 287])), int(rng.integers(20, 800)), None)
        )
    return cases


def test_device_crop_is_the_host_crop_bit_for_bit(frames: list[np.ndarray]) -> None:
    """``crop_patch_torch`` reproduces OpenCV's uint8 resize exactly: same region, same values
    (a one-grey-level difference is enough to move this seeded network's boxes)."""
    for frame in frames[:: len(frames) // 4]:
        pad = tuple(float(int(v)) for v in frame.mean(axis=(0, 1)))
        tensor = torch.from_numpy(frame)
        for centre, out, side, origin in crop_cases(frame):
            kw = {"round_origin": origin} if origin else {}
            want, region = crop_patch(frame, centre, out, side, pad, **kw)
            got, got_region = crop_patch_torch(tensor, centre, out, side, pad, **kw)
            assert got_region == region
            assert got.dtype == torch.float32 and got.shape == (3, out, out)
            np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), want, err_msg=str(centre))


def test_device_crop_refuses_bad_sizes(frames: list[np.ndarray]) -> None:
    tensor = torch.from_numpy(frames[0])
    with pytest.raises(ValueError, match="crop size"):
        crop_patch_torch(tensor, (10.0, 10.0), 127, 0, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="patch size"):
        crop_patch_torch(tensor, (10.0, 10.0), 0, 50, (0.0, 0.0, 0.0))


def test_tracker_with_device_crops_tracks_like_the_host_path(alex, frames) -> None:
    """Free-running on the first 30 frames of the parity clip: the same boxes and scores."""
    model, cfg = alex
    host = SiamRPNTracker(model, cfg)
    dev = SiamRPNTracker(model, cfg, device_crops=True)
    assert not host.device_crops and dev.device_crops
    for t in (host, dev):
        t.init(frames[0], INIT)
    for i, frame in enumerate(frames[1:30], 1):
        a, b = host.track(frame), dev.track(frame)
        err = float(np.abs(np.subtract(a.box, b.box)).max())
        assert err < 0.5, f"frame {i}: device-crop box off by {err:.3f} px"
        assert abs(a.score - b.score) < 1e-4


def test_multitracker_crops_every_target_from_one_upload(alex, frames, monkeypatch) -> None:
    """Three targets with device crops: the frame goes to the device once per frame (one
    ``torch.from_numpy`` of it), and the boxes are the host path's."""
    model, cfg = alex
    boxes = [INIT, (100.0, 100.0, 80.0, 60.0), (20.0, 200.0, 60.0, 90.0)]
    host, dev = MultiTracker(model, cfg), MultiTracker(model, cfg, device_crops=True)
    for multi in (host, dev):
        for i, box in enumerate(boxes):
            multi.add(i, frames[0], box)
    uploads: list[int] = []
    real = torch.from_numpy

    def counting(array: np.ndarray) -> torch.Tensor:
        if array.ndim == 3 and array.shape[2] == 3 and array.shape[0] > 300:
            uploads.append(id(array))
        return real(array)

    for frame in frames[1:5]:
        want = host.track(frame)
        monkeypatch.setattr(torch, "from_numpy", counting)
        got = dev.track(frame)
        monkeypatch.setattr(torch, "from_numpy", real)
        for i in range(len(boxes)):
            assert np.abs(np.subtract(want[i].box, got[i].box)).max() < 0.5
    assert len(uploads) == 4  # one per frame, not one per target


def _conv_dtypes(tracker: SiamRPNTracker) -> set[torch.dtype]:
    seen: set[torch.dtype] = set()
    for module in tracker.net.net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
    return seen


def test_fp16_autocast_keeps_boxes_within_half_a_pixel_per_frame(alex, frames) -> None:
    """fp16 autocast, each frame tracked from fp32's state (every 8th frame of the parity
    clip; measured over all 195: at most 0.09 px, scores within 1.5e-3). On CPU this only
    rehearses the GPU option: the arithmetic is fp16's, the speed is not a GPU's."""
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, precision="fp16")
    seen = _conv_dtypes(got)
    for t in (ref, got):
        t.init(frames[0], INIT)
    for i in range(1, len(frames), 8):
        got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        a, b = ref.track(frames[i]), got.track(frames[i])
        err = float(np.abs(np.subtract(a.box, b.box)).max())
        assert err < 0.5, f"frame {i}: fp16 box off by {err:.3f} px"
        assert abs(a.score - b.score) < 5e-3
    assert seen == {torch.float16}  # the convolutions really ran in fp16


def test_bf16_autocast_runs_its_convolutions_in_bf16(alex, frames) -> None:
    """bf16 autocast runs (outputs float32 to the float32 decoding) with bf16 convolutions.
    Its 8-bit mantissa flips the chosen anchor: from fp32's state it is off by 0.6 px median
    but up to 45 px on this clip (10 px on the default model), which the README states; fp16
    is the precision that holds boxes."""
    model, cfg = alex
    got = SiamRPNTracker(model, cfg, precision="bf16")
    seen = _conv_dtypes(got)
    got.init(frames[0], INIT)
    assert all(k.dtype == torch.float32 for k in got._kernels)
    result = got.track(frames[1])
    assert all(np.isfinite(result.box)) and 0.0 <= result.score <= 1.0
    assert seen == {torch.bfloat16}


def test_gpu_options_are_checked(alex) -> None:
    model, cfg = alex
    with pytest.raises(ValueError, match="needs a CUDA device"):
        SiamRPNTracker(model, cfg, graph_mode="cuda_graph")
    with pytest.raises(ValueError, match="precision must be one of"):
        SiamRPNTracker(model, cfg, precision="fp8")
    with pytest.raises(ValueError, match="graph_mode must be one of"):
        SiamRPNTracker(model, cfg, graph_mode="trace")
    weights = str(need(PARITY) / "weights.safetensors")
    with pytest.raises(ValueError, match="torch-backend options"):
        zoo.build("siamrpn_alex_dwxcorr", weights, backend="onnxruntime", graph_mode="compile")
    with pytest.raises(ValueError, match="takes precision fp32"):
        zoo.build("siamrpn_alex_dwxcorr", weights, backend="openvino", precision="fp16")
    tracker = zoo.load_tracker("siamrpn_alex_dwxcorr", weights, "cpu", precision="fp16")
    assert isinstance(tracker.net, accel.AcceleratedNet) and tracker.precision == "fp16"


def test_backend_devices() -> None:
    assert zoo.backend_device("openvino", "auto") == "cpu"
    assert zoo.backend_device("tensorrt", "auto") == "cuda"
    assert zoo.backend_device("tensorrt", "cuda:1") == "cuda:1"
    assert zoo.backend_device("onnxruntime", "cuda") == "cuda"
    with pytest.raises(ValueError, match="runs on the CPU"):
        zoo.backend_device("openvino", "cuda")
    with pytest.raises(ValueError, match="runs on CUDA"):
        zoo.backend_device("tensorrt", "cpu")


def test_a_failed_compilation_falls_back_to_eager(alex, frames, monkeypatch) -> None:
    """``graph_mode="compile"`` whose compilation fails warns once per call, records why and
    tracks eagerly, with the eager path's boxes. (A real compilation takes over a minute on
    these CPUs: test_torch_compile_tracks_like_eager runs one where a GPU is.)"""

    def broken(fn, **_kwargs):
        def run(*_args):
            raise RuntimeError("no C++ compiler in this rehearsal")

        return run

    monkeypatch.setattr(accel.torch, "compile", broken)
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg)
    got = SiamRPNTracker(model, cfg, graph_mode="compile")
    for t in (ref, got):
        t.init(frames[0], INIT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for frame in frames[1:4]:
            assert np.abs(np.subtract(ref.track(frame).box, got.track(frame).box)).max() == 0
    assert len(caught) == 2  # features and head, once each
    assert len(got.net.fallbacks) == 2 and "no C++ compiler" in got.net.fallbacks[0]


def test_gpu_benchmark_script_rehearsal_on_cpu(tmp_path: Path) -> None:
    """tools/gpu_bench_on_device.sh as a lent machine runs it (pack, then run), here on the CPU
    with two timed frames, one autocast mode and two targets: the table and its JSON land in
    $OUT, with fp32's boxes agreeing with themselves and the issue's targets printed."""
    need(PARITY / "weights.safetensors")
    script = ROOT / "tools" / "gpu_bench_on_device.sh"
    data, out = tmp_path / "data", tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_DATA": str(data)}
    env["SHARED_DATA"] = str(DATA)
    run = subprocess.run(["bash", str(script), "pack"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert (data / "parity/pysot_siamrpn_alex_dwxcorr/weights.safetensors").is_file()
    env |= {
        "OUT": str(out),
        "PYTHON": sys.executable,
        "BENCH_DEVICE": "cpu",
        "BENCH_ARGS": "--models alex --frames 4 --modes fp16 --targets 1 2 --threads 1",
    }
    run = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = (out / "gpu_bench.txt").read_text()
    assert "torch" in text and "issue target siamrpn_alex_dwxcorr" in text
    rows = {r["run"]: r for r in json.loads((out / "gpu_bench.json").read_text())["rows"]}
    assert set(rows) == {"fp32", "fp16", "fp32 x2", "fp16 x2"}
    assert rows["fp32"]["diff"] == 0.0 and rows["fp32"]["step_diff"] == 0.0
    assert rows["fp16"]["step_diff"] < 0.5 and rows["fp16 x2"]["targets"] == 2


# -- CUDA only ----------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_device_crop_is_the_host_crop(frames: list[np.ndarray]) -> None:
    frame = frames[10]
    pad = tuple(float(int(v)) for v in frame.mean(axis=(0, 1)))
    tensor = torch.from_numpy(frame).cuda()
    for centre, out, side, origin in crop_cases(frame):
        kw = {"round_origin": origin} if origin else {}
        want, _ = crop_patch(frame, centre, out, side, pad, **kw)
        got, _ = crop_patch_torch(tensor, centre, out, side, pad, **kw)
        assert got.is_cuda
        np.testing.assert_array_equal(got.permute(1, 2, 0).cpu().numpy(), want)


def _cuda_pair(
    alex, frames, count: int, free: bool = True, **options
) -> tuple[float, SiamRPNTracker]:
    """Largest box difference over ``count`` frames between an eager CUDA tracker and one
    with ``options`` (free-running, or with ``free=False`` from the eager one's state on each
    frame), and the latter."""
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg, device="cuda")
    got = SiamRPNTracker(model, cfg, device="cuda", **options)
    assert ref.device_crops and got.device_crops  # on by default on CUDA
    for t in (ref, got):
        t.init(frames[0], INIT)
    worst = 0.0
    for frame in frames[1:count]:
        if not free:
            got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        worst = max(
            worst, float(np.abs(np.subtract(ref.track(frame).box, got.track(frame).box)).max())
        )
    return worst, got


@pytest.mark.gpu
def test_cuda_graphs_track_like_eager(alex, frames) -> None:
    """A replay runs the eager step's kernels on the same shapes: the same track."""
    worst, got = _cuda_pair(alex, frames, 60, graph_mode="cuda_graph")
    assert worst < 0.01
    assert got.net.fallbacks == [] and got.net._fast  # captured, not fallen back
    big = got.search(frames[60], instance_size=447)  # a wider search: a second graph
    assert np.isfinite(big.cx) and len(got.net._fast) >= 3


@pytest.mark.gpu
def test_cuda_fp16_with_graphs_keeps_boxes_within_1px_per_frame(alex, frames) -> None:
    model, cfg = alex
    ref = SiamRPNTracker(model, cfg, device="cuda")
    got = SiamRPNTracker(model, cfg, device="cuda", precision="fp16", graph_mode="cuda_graph")
    for t in (ref, got):
        t.init(frames[0], INIT)
    for i, frame in enumerate(frames[1:], 1):
        got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        err = float(np.abs(np.subtract(ref.track(frame).box, got.track(frame).box)).max())
        assert err < 1.0, f"frame {i}: {err:.3f} px"


@pytest.mark.gpu
def test_torch_compile_tracks_like_eager(alex, frames) -> None:
    """Compiled kernels fuse and reorder float arithmetic: compared frame by frame."""
    worst, got = _cuda_pair(alex, frames, 20, free=False, graph_mode="compile")
    assert worst < 0.05 and got.net.fallbacks == []


@pytest.mark.gpu
def test_cuda_multitracker_with_graphs_matches_single_trackers(alex, frames) -> None:
    model, cfg = alex
    boxes = [INIT, (100.0, 100.0, 80.0, 60.0), (20.0, 200.0, 60.0, 90.0)]
    multi = MultiTracker(model, cfg, device="cuda", graph_mode="cuda_graph")
    singles = [SiamRPNTracker(model, cfg, device="cuda") for _ in boxes]
    for i, (box, single) in enumerate(zip(boxes, singles, strict=True)):
        multi.add(i, frames[0], box)
        single.init(frames[0], box)
    for frame in frames[1:30]:  # batch 3 may run other cuDNN algorithms than batch 1 (TF32)
        got = multi.track(frame)
        for i, single in enumerate(singles):
            assert np.abs(np.subtract(got[i].box, single.track(frame).box)).max() < 0.5
