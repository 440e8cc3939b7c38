"""Reduced precision on the CPU: bf16 (torch autocast, OpenVINO) and int8 (quantised graphs).

int8 graphs are calibrated on crops of the training sequences (``../shared/data/train_extra``),
never on the shared test sequences. The boxes of every reduced precision are compared with
PyTorch fp32's frame by frame from fp32's state on the trained default model: they do not stay
within fp32's 0.5 px everywhere (the chosen anchor flips where two proposals score alike), so
the bounds asserted here are the ones measured, with the flips counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _siamrpn_data import BAG, INIT, PARITY, need, read_video

from siam_core import zoo
from siam_core.checkpoint import load_checkpoint
from siam_core.cli import export as export_cli
from siam_core.deploy import BACKEND_PRECISIONS, cache, check_precision, quantize
from siam_core.deploy.export import export_onnx, read_manifest
from siam_core.deploy.runtime import OnnxNet
from siam_core.eval.runner import make_tracker
from siam_core.tracker.siamrpn import SiamRPNTracker

pytest.importorskip("onnxruntime", reason="onnxruntime missing: run `make setup`")
TRAIN = quantize.TRAIN_ROOT if quantize.TRAIN_ROOT.is_dir() else None
PAIRS = 16  # calibration crops in these tests (the cache's exports use 64)
CLIP = 41  # frames of bag.avi the default model's precisions are compared on


@pytest.fixture(scope="module")
def default_model():
    return load_checkpoint(zoo.DEFAULT_WEIGHTS)


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_video(need(BAG), CLIP)


@pytest.fixture(scope="module")
def default_exports(default_model, clip, tmp_path_factory) -> dict[str, Path]:
    """The default model's float32 export (folded) and its int8 quantisation (16 training
    crops) of an unfolded export, as the cache makes them."""
    if TRAIN is None:
        pytest.skip(f"no training sequences at {quantize.TRAIN_ROOT}")
    model, cfg = default_model
    fp32 = SiamRPNTracker(model, cfg, optimize=False)
    z, x = fp32.patches(clip[0], INIT)
    out = {"fp32": tmp_path_factory.mktemp("default_fp32")}
    export_onnx(model, cfg, out["fp32"], z, x)
    out["unfolded"] = tmp_path_factory.mktemp("default_unfolded")
    export_onnx(model, cfg, out["unfolded"], z, x, fold=False)
    out["int8"] = tmp_path_factory.mktemp("default_int8")
    bits = quantize.weight_bits_for_cpu()
    quantize.quantize_export(out["unfolded"], out["int8"], fp32, pairs=PAIRS, weight_bits=bits)
    return out


def test_int8_export_is_quantised_on_training_crops(default_exports) -> None:
    import onnx

    manifest = read_manifest(default_exports["int8"])
    q = manifest["precision"], manifest["quantisation"]
    assert q[0] == "int8" and q[1]["search_crops"] == PAIRS
    names = q[1]["calibration_sequences"]
    assert len(names) == PAIRS // quantize.SEARCHES_PER_SEQUENCE
    train = {p.name for p in quantize.training_sequences()}
    assert set(names) <= train and not any(quantize._is_test_sequence(Path(n)) for n in names)
    for name in ("features.onnx", "search_b1.onnx"):  # the merged graph of the int8 ones
        graph = onnx.load(str(default_exports["int8"] / name)).graph
        ops = {n.op_type for n in graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # every Conv of the head but the correlations (template kernels as weights) is int8
    head = q[1]["graphs"]["head_b1.onnx"]
    assert head["float32_convs"] == manifest["num_features"] * 2 and head["int8_convs"] > 0
    assert (default_exports["int8"] / "template.onnx").read_bytes() == (
        default_exports["unfolded"] / "template.onnx"
    ).read_bytes()  # run once per target: float32


def test_test_sequences_are_never_calibrated_on(tmp_path: Path) -> None:
    for name in ("acfn_Freeman1", "vot_bag"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "groundtruth_rect.txt").write_text("1,1,5,5\n")
    with pytest.raises(ValueError, match=r"vot_bag.*test sequences"):
        quantize.training_sequences(tmp_path)
    with pytest.raises(FileNotFoundError, match="training sequences"):
        quantize.training_sequences(tmp_path / "absent")


# Measured on the 40 frames here (bag.avi from the parity box, default model, 16 calibration
# crops), from fp32's state each frame: median / largest box difference (px) / frames above
# 2 px (where mostly another anchor wins). Stage-1 model: torch bf16 0.34 / 0.90 / 0; openvino
# bf16 0.69 / 17.0 / 6; onnxruntime int8 1.19 / 16.6 / 6; openvino int8 0.96 / 16.9 / 6. The
# shipped stage-2 model: torch bf16 0.40 / 11.3 / 2 (bf16 now flips the anchor twice too);
# openvino bf16 0.60 / 10.0 / 2; onnxruntime int8 0.96 / 2.6 / 2; openvino int8 0.95 / 10.5 / 5.
# The whole clip with the cache's 64-crop calibration: README "Reduced precision on the CPU".
BOUNDS = {  # (median px, largest px, most frames above 2 px), the measured ones with room
    ("torch", "bf16"): (0.6, 25.0, 4),
    ("openvino", "bf16"): (1.2, 25.0, 10),
    ("onnxruntime", "int8"): (2.0, 25.0, 16),
    ("openvino", "int8"): (2.0, 25.0, 16),
}
# The int8 graphs are this CPU's kind (quantize.weight_bits_for_cpu), as the cache makes them.
# On an AVX2 EPYC (family 25), 7-bit weights (16 crops): onnxruntime 1.38 / 14.9 / 13, openvino
# 1.47 / 14.9 / 13; 8-bit ones saturate
# there (onnxruntime 14.5 / 27.2 / 40 of 40, openvino 8.2 / 18.7 / 39, scores 0.254 apart).
# openvino bf16 on that CPU: 0.00, it runs fp32 (no bf16 there).


def test_reduced_precisions_follow_fp32_within_the_measured_bounds(
    default_model, default_exports, clip
) -> None:
    """Each reduced precision tracks every frame from fp32's state: medians within a pixel or
    two, the largest differences where the chosen anchor flips bounded and counted."""
    pytest.importorskip("openvino", reason="openvino missing: run `make setup`")
    model, cfg = default_model
    ref = SiamRPNTracker(model, cfg)
    runs = {}
    for backend, precision in BOUNDS:
        if backend == "torch":
            runs[backend, precision] = SiamRPNTracker(model, cfg, precision=precision)
        else:
            graphs = default_exports["int8" if precision == "int8" else "fp32"]
            net = OnnxNet(graphs, backend, threads=1, precision=precision)
            runs[backend, precision] = SiamRPNTracker(model, cfg, runtime=net)
    for t in (ref, *runs.values()):
        t.init(clip[0], INIT)
    errors: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    for frame in clip[1:]:
        state = ref.center_pos.copy(), ref.size.copy()
        a = ref.track(frame)
        for key, t in runs.items():
            t.center_pos, t.size = state[0].copy(), state[1].copy()
            b = t.track(frame)
            errors[key].append(float(np.abs(np.subtract(a.box, b.box)).max()))
            gap = abs(a.score - b.score)
            assert gap < 0.25, f"{key}: score off by {gap}"
    summaries = {
        key: f"{key}: median {np.median(e):.2f}, max {max(e):.2f}, >2 px {sum(v > 2 for v in e)}"
        for key, e in errors.items()
    }
    print("\n".join(summaries.values()))
    for key, (median, largest, flips) in BOUNDS.items():
        e = np.array(errors[key])
        ok = np.median(e) < median and e.max() < largest and (e > 2).sum() <= flips
        assert ok, summaries[key]


def test_precisions_are_checked_per_backend(default_exports) -> None:
    assert BACKEND_PRECISIONS["onnxruntime"] == ("fp32", "int8")
    with pytest.raises(ValueError, match="'onnxruntime' takes precision fp32, int8; bf16 runs"):
        check_precision("onnxruntime", "bf16")
    with pytest.raises(ValueError, match=r"'torch' takes .*int8 runs on onnxruntime, openvino"):
        SiamRPNTracker(*load_checkpoint(zoo.DEFAULT_WEIGHTS), precision="int8")
    with pytest.raises(ValueError, match=r"holds fp32 graphs.*siam-export --precision int8"):
        OnnxNet(default_exports["fp32"], "onnxruntime", precision="int8")
    with pytest.raises(ValueError, match="holds int8 graphs, precision fp32"):
        OnnxNet(default_exports["int8"], "onnxruntime")
    with pytest.raises(ValueError, match="'tensorrt' takes precision fp32, fp16"):
        OnnxNet(default_exports["int8"], "tensorrt", device="cuda", precision="int8")


def test_int8_and_bf16_through_the_cache_and_the_eval_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``zoo.build(..., precision="int8")`` quantises into the cache once, keyed apart from the
    float32 export; ``@openvino:bf16`` / ``@onnxruntime:int8`` specs run them."""
    if TRAIN is None:
        pytest.skip(f"no training sequences at {quantize.TRAIN_ROOT}")
    pytest.importorskip("openvino", reason="openvino missing: run `make setup`")
    monkeypatch.setenv("SIAM_TRACKER_CACHE", str(tmp_path))
    monkeypatch.setattr(quantize, "CALIBRATION_PAIRS", 4)
    weights = need(PARITY) / "weights.safetensors"
    spec = f"siamrpn:siamrpn_alex_dwxcorr:{weights}"
    tracker = make_tracker(f"{spec}@onnxruntime:int8")
    assert isinstance(tracker.net, OnnxNet) and tracker.net.precision == "int8"
    # only the int8 folder: its unfolded float32 source is made in passing, not kept
    (int8,) = (p.name for p in (tmp_path / "onnx").iterdir())
    assert "-int8-" in int8
    assert read_manifest(tmp_path / "onnx" / int8)["quantisation"]["search_crops"] == 4
    again = make_tracker(f"{spec}@openvino:int8")
    assert again.net.precision == "int8" and again.net.dir.name == int8
    bf16 = make_tracker(f"{spec}@openvino:bf16")
    assert bf16.net.precision == "bf16" and int8.startswith(bf16.net.dir.name)
    folders = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert folders == [bf16.net.dir.name, int8]
    make_tracker(f"{spec}@openvino:int8")
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == folders  # reused
    frames = read_video(need(BAG), 3)
    for t in (tracker, again, bf16):
        t.init(frames[0], INIT)
        assert all(np.isfinite(t.track(frames[1]).box))
    assert make_tracker(f"{spec}@torch:bf16").precision == "bf16"
    with pytest.raises(ValueError, match="'onnxruntime' takes precision"):
        make_tracker(f"{spec}@onnxruntime:bf16")
    assert cache.cache_root() == tmp_path


def test_siam_export_writes_int8_graphs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if TRAIN is None:
        pytest.skip(f"no training sequences at {quantize.TRAIN_ROOT}")
    weights = need(PARITY) / "weights.safetensors"
    out = tmp_path / "int8"
    argv = ["siamrpn_alex_dwxcorr", "--weights", str(weights), "--out", str(out)]
    assert export_cli.main([*argv, "--precision", "int8", "--pairs", "2", "--batch", "2"]) == 0
    assert "(int8)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "int8" and manifest["head_batches"] == [1, 2]
    assert set(manifest["quantisation"]["graphs"]) == {"features", "head_b1.onnx", "head_b2.onnx"}
    assert max(manifest["check"]["max_relative_error"].values()) < 1e-3  # fp32's check
    assert export_cli.main([*argv, "--precision", "int8", "--pairs", "0"]) == 1
    assert "--pairs" in capsys.readouterr().err
