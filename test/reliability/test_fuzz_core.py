"""Property-based fuzzing of every outside-facing entry point, through the core's functions.

Each property feeds arbitrary (hostile or careless) input and allows exactly two outcomes: a
clean result that satisfies the documented bounds, or ``ValueError`` (``ParamError``) with a
reason. Anything else (another exception, a crash, an allocation beyond the bound) fails.
Examples per property: ``SIAM_FUZZ_EXAMPLES`` (``make test``: few; ``make fuzz``: many).
"""

from __future__ import annotations

import json
import math
import pickle
import struct
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _fuzz_strategies import EXAMPLES, any_value, box_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from siam_core.checkpoint import load_checkpoint, read_config, read_state_dict, save_checkpoint
from siam_core.cli import track
from siam_core.config import load_config
from siam_core.data.sequences import load_sequence
from siam_core.models.model import build_model
from siam_core.tracker.base import MAX_BOX_SCALE, MIN_BOX_SIDE, check_box
from siam_core.tracker.siamrpn import SiamRPNTracker, crop_patch
from siam_tracker_ros.params import DEFAULTS, ParamError, validate

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SHAPE = (120, 160, 3)


@FUZZ
@given(box=box_values(), shape=st.tuples(st.integers(1, 2000), st.integers(1, 2000)))
def test_check_box_accepts_only_bounded_boxes(box, shape) -> None:
    try:
        x, y, w, h = check_box(box, shape)
    except ValueError as exc:
        assert str(exc)
        return
    ih, iw = shape
    assert all(math.isfinite(v) for v in (x, y, w, h))
    assert MIN_BOX_SIDE <= w <= MAX_BOX_SCALE * iw and MIN_BOX_SIDE <= h <= MAX_BOX_SCALE * ih
    assert x < iw and y < ih and x + w > 0 and y + h > 0


@FUZZ
@given(
    cx=st.floats(-1e9, 1e9),
    cy=st.floats(-1e9, 1e9),
    crop=st.integers(-5, 10**9),
    out=st.integers(-5, 5000),
)
def test_crop_memory_is_bounded_whatever_the_square(cx, cy, crop, out) -> None:
    image = np.zeros(SHAPE, np.uint8)
    tracemalloc.start()
    try:
        patch, region = crop_patch(image, (cx, cy), out, crop, (1.0, 2.0, 3.0))
    except ValueError:
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert patch.shape == (out, out, 3) and patch.dtype == np.uint8
    assert region[2] == region[3] == float(crop)
    # the patch itself plus a direct crop of at most MAX_DIRECT_CROP px a side
    assert peak < 3 * out * out * 3 + 3 * 3000 * 3000 * 3 + 1_000_000


def test_huge_crop_allocates_no_more_than_the_patch() -> None:
    """A 5000x5000 box on a 640x480 frame (the old node died allocating 1.6 GB per frame)."""
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    tracemalloc.start()
    patch, _ = crop_patch(image, (320.0, 240.0), 255, 20000, (0.0, 0.0, 0.0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert patch.shape == (255, 255, 3)
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"
    # the frame lands in the middle, scaled by 255/20000, the rest is padding
    assert patch[0, 0].tolist() == [0, 0, 0] and patch[127, 127].any()


@pytest.fixture(scope="module")
def tracker() -> SiamRPNTracker:
    torch.manual_seed(0)
    cfg = load_config("siamrpn_alex_dwxcorr")
    return SiamRPNTracker(build_model(cfg), cfg)


@FUZZ
@given(box=box_values())
def test_tracker_init_and_track_any_box(tracker, box) -> None:
    """Accepted boxes track with a finite result inside bounds; refused ones keep the target."""
    frame = np.random.default_rng(1).integers(0, 255, SHAPE, np.uint8)
    tracker.init(frame, (40.0, 30.0, 40.0, 30.0))
    before = (tracker.center_pos.copy(), tracker.size.copy(), tracker._kernels)
    try:
        tracker.init(frame, box)
    except ValueError:
        assert tracker.initialized
        assert np.array_equal(tracker.center_pos, before[0]) and tracker._kernels is before[2]
        return
    result = tracker.track(frame)
    assert all(math.isfinite(v) for v in result.box)
    assert 0 < result.box[2] <= SHAPE[1] and 0 < result.box[3] <= SHAPE[0]


@FUZZ
@given(values=st.dictionaries(st.sampled_from([*DEFAULTS, "bogus"]), any_value(), max_size=5))
def test_parameters_validate_or_name_the_problem(values) -> None:
    try:
        merged = validate(values)
    except ParamError as exc:
        name, _, why = str(exc).partition("=")
        assert name in values and why
        return
    assert set(merged) == set(DEFAULTS)
    assert all(type(merged[k]) is type(DEFAULTS[k]) for k in DEFAULTS)


# -- checkpoints -------------------------------------------------------------------------------
def _good_checkpoint(tmp_path: Path) -> Path:
    cfg = load_config("siamrpn_alex_dwxcorr")
    return save_checkpoint(build_model(cfg), cfg, tmp_path / "good.safetensors")


@FUZZ
@given(data=st.data())
def test_damaged_checkpoints_are_refused(tmp_path_factory, data) -> None:
    tmp = tmp_path_factory.mktemp("ckpt")
    base = _cached_checkpoint(tmp_path_factory)
    raw = base.read_bytes()
    kind = data.draw(st.sampled_from(["truncate", "flip", "header", "config", "pth"]))
    path = tmp / ("x.safetensors" if kind != "pth" else "x.pth")
    if kind == "truncate":
        path.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "flip":
        at = data.draw(st.integers(0, min(len(raw) - 1, 4000)))
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :])
    elif kind == "header":
        header = data.draw(st.binary(max_size=200))
        size = data.draw(st.sampled_from([len(header), 2**63 - 1, 0, 2**27 + 1]))
        path.write_bytes(struct.pack("<Q", size) + header)
    elif kind == "config":
        config = data.draw(config_like())
        meta = {"config": json.dumps(config, default=str)}
        save_file({"w": torch.zeros(2)}, str(path), metadata=meta)
    else:
        obj = data.draw(st.sampled_from([{"a": 1}, [torch.zeros(1)], {"w": "text"}, 3]))
        torch.save(obj, path)
    try:
        read_config(path)
        load_checkpoint(path, load_config("siamrpn_alex_dwxcorr"))
    except ValueError as exc:
        assert str(exc)
        return
    # only an intact file may load (a flipped byte inside tensor data is not detectable)
    assert kind == "flip"


def config_like() -> st.SearchStrategy:
    """Real configs with one field replaced by anything, and arbitrary nested JSON."""
    real = load_config("siamrpn_alex_dwxcorr").to_dict()

    def replaced(pair: tuple[str, object]) -> dict:
        section, value = pair
        out = json.loads(json.dumps(real))
        keys = section.split(".")
        out[keys[0]][keys[1]] = value
        return out

    fields = [
        "tracker.instance_size",
        "tracker.exemplar_size",
        "tracker.context_amount",
        "anchor.stride",
        "anchor.ratios",
        "model.backbone",
        "tracker.lr",
    ]
    nested = st.recursive(
        any_value(), lambda c: st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=12
    )
    return st.one_of(st.tuples(st.sampled_from(fields), any_value()).map(replaced), nested)


_CACHE: dict[str, Path] = {}


def _cached_checkpoint(factory) -> Path:
    if "good" not in _CACHE:
        _CACHE["good"] = _good_checkpoint(factory.mktemp("good"))
    return _CACHE["good"]


class _Boom:
    """A pickle that would run code when loaded unsafely (it must never be)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "tensor_beside"])
def test_pickles_with_code_never_run(tmp_path: Path, wrap: str) -> None:
    marker = tmp_path / "pwned"
    payload = _Boom(marker)
    obj = {"bare": payload, "state_dict": {"state_dict": payload}}.get(
        wrap, {"w": torch.zeros(1), "x": payload}
    )
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump(obj, fh)
    torch_path = tmp_path / "evil_torch.pth"
    torch.save(obj, torch_path)
    for candidate in (path, torch_path):
        with pytest.raises(ValueError) as info:
            read_state_dict(candidate)
        assert "weights_only=False" not in str(info.value)
        assert "not a safe checkpoint" in str(info.value)
    assert not marker.exists()


def test_unsafe_pickle_says_not_a_safe_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"w": _Boom(tmp_path / "pwned")}, path)
    with pytest.raises(ValueError, match="not a safe checkpoint"):
        read_state_dict(path)


def test_absurd_embedded_config_is_refused(tmp_path: Path) -> None:
    cfg = load_config("siamrpn_alex_dwxcorr").to_dict()
    cfg["tracker"]["instance_size"] = 10**7
    path = tmp_path / "absurd.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"config": json.dumps(cfg)})
    with pytest.raises(ValueError, match="instance_size must be <= 2048"):
        read_config(path)
    cfg = load_config("siamrpn_alex_dwxcorr").to_dict()
    cfg["anchor"]["stride"] = float("inf")  # found by the fuzz: an OverflowError escaped
    save_file({"w": torch.zeros(1)}, str(path), metadata={"config": json.dumps(cfg)})
    with pytest.raises(ValueError, match="anchor settings must be numbers"):
        read_config(path)


# -- dataset and ground-truth files --------------------------------------------------------------
@FUZZ
@given(text=st.text(alphabet="0123456789.,-+eEinfaN \t\n", max_size=200), frames=st.integers(1, 3))
def test_ground_truth_files_load_or_say_why(tmp_path_factory, text, frames) -> None:
    folder = tmp_path_factory.mktemp("seq")
    (folder / "img").mkdir()
    for k in range(1, frames + 1):
        cv2.imwrite(str(folder / "img" / f"{k:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (folder / "groundtruth_rect.txt").write_text(text)
    try:
        seq = load_sequence(folder)
    except ValueError as exc:
        assert str(exc)
        return
    assert len(seq) == frames


# -- siam-track arguments -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(2)
    for k in range(3):
        cv2.imwrite(str(folder / f"{k:04d}.png"), rng.integers(0, 255, (48, 64, 3), np.uint8))
    return folder


@FUZZ
@given(
    init=st.one_of(box_values().map(lambda b: ",".join(map(str, b))), st.text(max_size=20)),
    extra=st.lists(
        st.sampled_from(
            [
                "--threads",
                "--max-frames",
                "--device",
                "--model",
                "-1",
                "0",
                "2",
                "cpu",
                "cuda:7",
                "nope",
                "--quiet",
            ]
        ),
        max_size=3,
    ),
    out_is_dir=st.booleans(),
)
def test_siam_track_arguments_never_leak_a_traceback(
    frames_dir, tmp_path_factory, init, extra, out_is_dir, capsys
) -> None:
    out = tmp_path_factory.mktemp("out")
    target = out if out_is_dir else out / "t.json"
    argv = [
        str(frames_dir),
        "--model",
        "siamrpn_alex_dwxcorr",
        "--weights",
        str(_alex(tmp_path_factory)),
        "--device",
        "cpu",
        "--quiet",
        "--out",
        str(target),
        "--init",
        init,
        *extra,
    ]
    try:
        code = track.main(argv)
    except SystemExit as exc:  # argparse: usage error, status 2
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), code
    assert "Traceback" not in err
    if code == 1:
        assert err.startswith("siam-track: error:") or err.startswith("siam-track: internal"), err
        assert "internal error" not in err, err


def _alex(factory) -> Path:
    return _cached_checkpoint(factory)
