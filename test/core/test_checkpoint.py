"""Checkpoints: pysot model.pth variants (DataParallel prefix, nested state_dict, no
num_batches_tracked), safe loading only, our safetensors format with embedded config, fp16,
mismatch messages, and the siam-convert CLI, all on the real parity weights."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch
from _siamrpn_data import BAG, PARITY, need, read_video
from safetensors.torch import save_file

from siam_core.checkpoint import (
    load_checkpoint,
    load_weights,
    read_config,
    read_state_dict,
    save_checkpoint,
)
from siam_core.cli.convert import main as convert_main
from siam_core.config import load_config
from siam_core.models.model import build_model
from siam_core.tracker.siamrpn import build_tracker

NAME = "siamrpn_alex_dwxcorr"


@pytest.fixture(scope="module")
def parity_sd() -> dict[str, torch.Tensor]:
    return read_state_dict(need(PARITY) / "weights.safetensors")


def test_fp16_safetensors_load_as_float32(parity_sd: dict[str, torch.Tensor]) -> None:
    assert len(parity_sd) == 75
    assert parity_sd["backbone.features.0.weight"].dtype == torch.float32
    assert parity_sd["backbone.features.1.num_batches_tracked"].dtype == torch.int64


def _same_weights(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(value, sd[key], rtol=0, atol=0)


@pytest.mark.parametrize("variant", ["plain", "module_prefix", "nested", "no_batches_tracked"])
def test_pysot_pth_variants(
    variant: str, parity_sd: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    sd: dict = dict(parity_sd)
    if variant == "module_prefix":
        sd = {f"module.{k}": v for k, v in sd.items()}
    elif variant == "nested":
        sd = {"epoch": 20, "state_dict": sd, "optimizer": {"lr": 0.005}}
    elif variant == "no_batches_tracked":
        sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "model.pth"
    torch.save(sd, path)
    model, cfg = load_checkpoint(path, load_config(NAME))
    assert cfg.name == NAME and not model.training
    _same_weights(model, parity_sd)


def test_mismatch_names_missing_unexpected_and_shapes(
    parity_sd: dict[str, torch.Tensor],
) -> None:
    sd = dict(parity_sd)
    del sd["rpn_head.cls.head.3.bias"]
    sd["rpn_head.extra.weight"] = torch.zeros(3)
    sd["backbone.features.0.weight"] = torch.zeros(96, 3, 5, 5)
    model = build_model(load_config(NAME))
    with pytest.raises(ValueError) as err:
        load_weights(model, sd)
    text = str(err.value)
    assert "missing keys (1): [rpn_head.cls.head.3.bias]" in text
    assert "unexpected keys (1): [rpn_head.extra.weight]" in text
    assert "backbone.features.0.weight: checkpoint (96, 3, 5, 5) vs model (96, 3, 11, 11)" in text


def test_wrong_model_for_the_weights(parity_sd: dict[str, torch.Tensor], tmp_path: Path) -> None:
    path = tmp_path / "alex.pth"
    torch.save(parity_sd, path)
    with pytest.raises(ValueError, match=r"missing keys \(377\).*unexpected keys \(75\)"):
        load_checkpoint(path, load_config("siamrpn_mobilev2_l234_dwxcorr"))
    with pytest.raises(ValueError, match=r"no embedded config.*--model"):
        load_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_pickles_load_only_tensors(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"backbone.features.0.weight": _Payload()}, fh, protocol=2)
    with pytest.raises(ValueError, match="not a safe checkpoint") as info:
        read_state_dict(path)
    assert "weights_only" not in str(info.value) and "add_safe_globals" not in str(info.value)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_state_dict(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    with pytest.raises(ValueError, match="not a safe checkpoint"):
        read_state_dict(junk)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_state_dict(bad_st)
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with pytest.raises(ValueError, match="non-empty mapping"):
        read_state_dict(empty)
    with pytest.raises(ValueError, match="not a tensor"):
        torch.save({"a": 1}, empty)
        read_state_dict(empty)


@pytest.mark.parametrize("fp16", [False, True])
def test_own_format_rebuilds_its_model(
    fp16: bool, parity_sd: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    cfg = load_config(NAME).replace_tracker(penalty_k=0.2)
    model = build_model(cfg)
    load_weights(model, parity_sd)
    path = save_checkpoint(model, cfg, tmp_path / "ours.safetensors", fp16=fp16)
    meta_cfg = read_config(path)
    assert meta_cfg == cfg
    loaded, loaded_cfg = load_checkpoint(path)
    assert loaded_cfg.tracker.penalty_k == 0.2
    # parity weights are exactly representable in fp16, so even fp16 files are lossless
    _same_weights(loaded, parity_sd)
    assert all(v.dtype != torch.float16 for v in loaded.state_dict().values())


def test_foreign_safetensors_without_config(
    parity_sd: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({k: v.contiguous() for k, v in parity_sd.items()}, str(path), metadata={"a": "b"})
    assert read_config(path) is None


def test_siam_convert_cli_end_to_end(
    parity_sd: dict[str, torch.Tensor], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "model.pth"
    torch.save({f"module.{k}": v for k, v in parity_sd.items()}, src)
    dst = tmp_path / "alex.safetensors"
    assert convert_main([str(src), str(dst), "--model", NAME, "--fp16"]) == 0
    assert "wrote" in capsys.readouterr().out
    # the converted file alone rebuilds a tracker that still matches pysot's output
    reference = json.loads((PARITY / "reference.json").read_text())
    frames = read_video(need(BAG), limit=8)
    tracker = build_tracker(weights=dst)
    assert tracker.cfg.name == NAME
    tracker.init(frames[0], reference["init"])
    for i, frame in enumerate(frames[1:], start=1):
        result = tracker.track(frame)
        exp = reference["frames"][i]
        assert max(abs(a - b) for a, b in zip(result.box, exp["bbox"], strict=True)) < 0.5
        assert abs(result.score - exp["best_score"]) < 1e-3
    # errors: no config, wrong suffix, missing input
    assert convert_main([str(src), str(tmp_path / "x.safetensors")]) == 1
    assert "no embedded config" in capsys.readouterr().err
    assert convert_main([str(src), str(tmp_path / "x.pth"), "--model", NAME]) == 1
    assert convert_main([str(tmp_path / "absent.pth"), str(dst), "--model", NAME]) == 1
    assert "not found" in capsys.readouterr().err


def test_saved_files_get_the_umask_permissions(tmp_path: Path) -> None:
    """safetensors alone writes 0600, which a node running as another user cannot read."""
    cfg = load_config(NAME)
    old = os.umask(0o022)
    try:
        path = save_checkpoint(build_model(cfg), cfg, tmp_path / "shared.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
