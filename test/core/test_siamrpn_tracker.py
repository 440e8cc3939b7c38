"""SiamRPNTracker on real frames: the crop against a literal transcription of pysot's
get_subwindow, every config against a literal pysot-procedure tracker, coexistence, the
template branch running once, and bad input failing early with clear errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from _pysot_procedure import PysotProcedure, calibrate_on_frame, pysot_subwindow
from _siamrpn_data import BAG, PARITY, SEQUENCES, need, read_video

from siam_core.checkpoint import load_checkpoint
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.tracker.base import TrackState
from siam_core.tracker.siamrpn import SiamRPNTracker, build_tracker, crop_patch

NAME = "siamrpn_alex_dwxcorr"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return read_video(need(BAG), limit=12)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((need(PARITY) / "reference.json").read_text())


@pytest.fixture(scope="module")
def parity_tracker() -> SiamRPNTracker:
    return build_tracker(NAME, need(PARITY) / "weights.safetensors")


def test_crop_equals_pysot_subwindow(frames: list[np.ndarray]) -> None:
    img = frames[3]
    avg = np.mean(img, axis=(0, 1))
    pad = tuple(float(int(v)) for v in avg)
    h, w = img.shape[:2]
    cases = [
        ((240.0, 180.0), 287, 200),  # inside
        ((240.0, 180.0), 127, 127),  # no resize
        ((10.3, 5.7), 287, 301),  # top-left padding
        ((w - 2.5, h - 0.5), 255, 412),  # bottom-right padding
        ((240.0, 180.0), 287, 1501),  # larger than the frame on every side
        ((-50.0, 100.0), 127, 90),  # centre outside the frame
        ((100.5, 100.5), 127, 64),  # half-pixel centre, upsampling
        ((3000.0, 3000.0), 127, 40),  # wholly outside: all padding
    ]
    for centre, out, side in cases:
        ours, region = crop_patch(img, centre, out, side, pad)
        ref = pysot_subwindow(img, centre, out, side, avg)[0].numpy().transpose(1, 2, 0)
        assert ours.shape == (out, out, 3)
        np.testing.assert_array_equal(ours.astype(np.float32), ref, err_msg=str(centre))
        assert region[2] == region[3] == side


@pytest.mark.parametrize(
    "name",
    [
        "siamrpn_alex_dwxcorr",
        "siamrpn_alex_upchannel",
        "siamrpn_mobilev2_l234_dwxcorr",
        pytest.param("siamrpn_r50_l234_dwxcorr", marks=pytest.mark.slow),
    ],
)
def test_every_config_follows_the_pysot_procedure(name: str) -> None:
    seq = SEQUENCES / "otb" / "Crossing"
    gt = np.loadtxt(need(seq) / "groundtruth_rect.txt", delimiter=None)
    frames = 2 if "r50" in name else 4  # r50 is slow on CPU: one tracked frame
    imgs = [cv2.imread(str(seq / "img" / f"{i:04d}.jpg")) for i in range(1, frames + 1)]
    cfg = load_config(name)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    box = tuple(float(v) for v in gt[0])
    calibrate_on_frame(model, cfg, imgs[0], box)  # random weights -> outputs in a sane range
    ref = PysotProcedure(model, cfg)
    ref.init(imgs[0], box)
    ours = SiamRPNTracker(model, cfg)
    ours.init(imgs[0], box)
    ref.init(imgs[0], box)
    for img in imgs[1:]:
        result = ours.track(img)
        ref_box, ref_score = ref.track(img)
        np.testing.assert_allclose(result.box, ref_box, atol=1e-2)
        assert abs(result.score - ref_score) < 1e-4


def test_result_fields(parity_tracker: SiamRPNTracker, frames, reference) -> None:
    parity_tracker.init(frames[0], reference["init"])
    result = parity_tracker.track(frames[1])
    assert result.state is TrackState.TRACKING
    assert set(result.timings) == {"crop", "backbone", "head", "post"}
    assert all(v >= 0 for v in result.timings.values())
    x, y, w, h = result.search_region
    assert w == h == round(224 * 287 / 127)  # 112 + 0.5 * (112 + 112) context
    # the searched square is centred on the previous target centre (x + (w - 1) / 2)
    assert abs(x + (w + 1) / 2 - 0.5 - (315 + 55.5)) <= 0.5
    assert abs(y + (h + 1) / 2 - 0.5 - (140 + 55.5)) <= 0.5


def test_template_branch_runs_once(parity_tracker: SiamRPNTracker, frames, reference) -> None:
    calls = {"kernel": 0, "backbone": 0}
    head = parity_tracker.net.rpn_head
    hooks = [
        head.cls.conv_kernel.register_forward_hook(lambda *a: calls.__setitem__("kernel", 1)),
        parity_tracker.net.backbone.register_forward_hook(
            lambda *a: calls.__setitem__("backbone", calls["backbone"] + 1)
        ),
    ]
    try:
        parity_tracker.init(frames[0], reference["init"])
        assert calls == {"kernel": 1, "backbone": 1}
        calls["kernel"] = 0
        for frame in frames[1:4]:
            parity_tracker.track(frame)
        assert calls == {"kernel": 0, "backbone": 4}
    finally:
        for h in hooks:
            h.remove()


def test_trackers_coexist(frames, reference) -> None:
    weights = need(PARITY) / "weights.safetensors"
    a = build_tracker(NAME, weights)
    other = load_config(NAME).replace_tracker(penalty_k=0.4, window_influence=0.2)
    b = SiamRPNTracker(a.model, other)  # same network, different settings
    up_cfg = load_config("siamrpn_alex_upchannel")  # a different network
    up = build_model(up_cfg).eval()
    calibrate_on_frame(up, up_cfg, frames[0], reference["init"])
    c = SiamRPNTracker(up, up_cfg)
    alone_a = build_tracker(NAME, weights)
    alone_b = SiamRPNTracker(alone_a.model, other)
    for t in (a, b, c, alone_a, alone_b):
        t.init(frames[0], reference["init"])
    for frame in frames[1:3]:
        ra, rb = a.track(frame), b.track(frame)
        c.track(frame)
        assert ra.box == alone_a.track(frame).box
        assert rb.box == alone_b.track(frame).box
    assert ra.box != rb.box  # the settings really differ


def test_search_size_and_window_vary_per_call(parity_tracker, frames, reference) -> None:
    parity_tracker.init(frames[0], reference["init"])
    centre, size = parity_tracker.center_pos.copy(), parity_tracker.size.copy()
    wide = parity_tracker.search(frames[1], instance_size=831, window_influence=0.001)
    assert wide.search_region[2] == round(224 * 831 / 127)
    np.testing.assert_array_equal(parity_tracker.center_pos, centre)  # state untouched
    np.testing.assert_array_equal(parity_tracker.size, size)
    normal = parity_tracker.search(frames[1])
    first = parity_tracker.track(frames[1])
    assert (normal.score, normal.search_region) == (first.score, first.search_region)
    with pytest.raises(ValueError, match="smaller than the exemplar"):
        parity_tracker.search(frames[2], instance_size=100)


# --- bad input ------------------------------------------------------------------------------


def test_track_before_init() -> None:
    tracker = build_tracker(NAME)
    with pytest.raises(RuntimeError, match="before init"):
        tracker.track(np.zeros((240, 320, 3), np.uint8))
    with pytest.raises(RuntimeError, match="before init"):
        tracker.search(np.zeros((240, 320, 3), np.uint8))
    frame = np.full((240, 320, 3), 128, np.uint8)
    tracker.init(frame, (100, 100, 40, 40))
    tracker.reset()
    with pytest.raises(RuntimeError, match="before init"):
        tracker.search(frame)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((240, 320, 3), np.float32), "uint8"),
        (np.zeros((240, 320, 2), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((2, 240, 320, 3), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 320, 3), np.uint8), "empty"),
        ([[0, 1], [2, 3]], "numpy array"),
    ],
)
def test_bad_images(parity_tracker, frames, reference, image, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parity_tracker.init(image, (10, 10, 20, 20))
    parity_tracker.init(frames[0], reference["init"])
    with pytest.raises(ValueError, match=message):
        parity_tracker.track(image)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((10, 10, 0, 20), "positive"),
        ((10, 10, 20, -5), "positive"),
        ((10, float("nan"), 20, 20), "non-finite"),
        ((10, 10, float("inf"), 20), "non-finite"),
        ((600, 10, 20, 20), "outside"),
        ((-40, 10, 20, 20), "outside"),
        ((10, 10, 20), "4 values"),
        (("a", 1, 2, 3), "four numbers"),
    ],
)
def test_bad_boxes(frames, box, message: str) -> None:
    tracker = build_tracker(NAME)
    with pytest.raises(ValueError, match=message):
        tracker.init(frames[0], box)
    assert not tracker.initialized
    with pytest.raises(RuntimeError, match="before init"):
        tracker.track(frames[1])


def test_gray_and_bgra_frames_are_converted(parity_tracker, frames, reference) -> None:
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[:3]]
    as_bgr = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g in gray]
    runs = []
    for seq in (gray, [g[:, :, None] for g in gray], as_bgr):
        parity_tracker.init(seq[0], reference["init"])
        runs.append([parity_tracker.track(f).box for f in seq[1:]])
    assert runs[0] == runs[1] == runs[2]
    bgra = [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in frames[:3]]
    parity_tracker.init(bgra[0], reference["init"])
    with_alpha = [parity_tracker.track(f).box for f in bgra[1:]]
    parity_tracker.init(frames[0], reference["init"])
    assert with_alpha == [parity_tracker.track(f).box for f in frames[1:3]]


@pytest.mark.parametrize(
    "box", [(-50, -50, 80, 80), (470, 350, 40, 40), (200, 150, 1, 1), (0, 0, 480, 360)]
)
def test_edge_boxes_track_and_stay_valid(parity_tracker, frames, box) -> None:
    parity_tracker.init(frames[0], box)
    for frame in frames[1:3]:
        x, y, w, h = parity_tracker.track(frame).box
        assert 10 <= w <= 480 and 10 <= h <= 360
        assert -w / 2 <= x <= 480 - w / 2 + 1e-9 and -h / 2 <= y <= 360 - h / 2 + 1e-9


def test_non_finite_network_output_is_reported(frames, reference) -> None:
    model, cfg = load_checkpoint(need(PARITY) / "weights.safetensors", load_config(NAME))
    with torch.no_grad():
        model.rpn_head.loc.head[3].bias[:] = float("nan")
    tracker = SiamRPNTracker(model, cfg)
    tracker.init(frames[0], reference["init"])
    with pytest.raises(RuntimeError, match="non-finite"):
        tracker.track(frames[1])


def test_config_and_model_must_agree() -> None:
    cfg = load_config(NAME).to_dict()
    cfg["anchor"]["ratios"] = [0.5, 1, 2]
    cfg["model"]["head"]["anchor_num"] = 3
    from siam_core.config import Config

    with pytest.raises(ValueError, match="3 anchors"):
        SiamRPNTracker(build_model(load_config(NAME)), Config.from_dict(cfg))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            build_tracker(NAME, device="cuda")
    with pytest.raises(ValueError, match="device"):
        build_tracker(NAME, device="tpu")


@pytest.mark.gpu
def test_cuda_matches_cpu(frames, reference) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    weights = need(PARITY) / "weights.safetensors"
    gpu = build_tracker(NAME, weights, device="cuda")
    gpu.init(frames[0], reference["init"])
    for i, frame in enumerate(frames[1:], start=1):
        result = gpu.track(frame)
        assert np.abs(np.subtract(result.box, reference["frames"][i]["bbox"])).max() < 0.5
        assert abs(result.score - reference["frames"][i]["best_score"]) < 1e-3
