"""The trainer on real frames: the loss falls, resume is exact, DDP replicas agree."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import assert_same_weights, tiny_model

from siam_core.train.config import train_config_from_dict
from siam_core.train.losses import rpn_loss
from siam_core.train.trainer import BatchIndices, Trainer, fold_input_normalisation, lr_at


def recipe(seq: Path, **solver) -> dict:
    """Real training sequences (the suggested training split of shared/data)."""
    return {
        "name": "tiny",
        "model": tiny_model(),
        "data": {
            "sources": [
                {"type": "sequences", "root": str(seq / "uav123_half"), "frame_range": 30},
                {"type": "sequences", "paths": [str(seq / "otb/Human3")], "frame_range": 30},
            ],
            "negative": {"prob": 0.1},
            "gray": 0.1,
            "template_aug": {"shift": 4, "scale": 0.05},
            "search_aug": {"shift": 16, "scale": 0.1, "color": 0.3, "blur": 0.1},
        },
        "solver": {
            "epochs": 2,
            "pairs_per_epoch": 64,
            "batch_size": 8,
            "lr": {"start": 0.01, "end": 0.005},
            "amp": False,
            **solver,
        },
        "runtime": {"num_workers": 0, "log_every": 2, "image_every": 4, "seed": 3},
    }


def fixed_batch(trainer: Trainer, n: int = 16) -> dict[str, torch.Tensor]:
    """Pairs from an epoch the run never trains on, to measure the loss before and after."""
    items = [trainer.dataset[99 * trainer.dataset.per_epoch + i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def held_out_loss(trainer: Trainer, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    model = trainer.model
    model.eval()
    with torch.no_grad():
        cls, loc = model(batch["template"].float(), batch["search"].float())
        loss = rpn_loss(
            cls,
            loc,
            batch["label_cls"],
            batch["label_loc"],
            batch["label_weight"],
            trainer.cfg.loss,
        )
    model.train()
    return {k: float(v) for k, v in loss.items()}


@pytest.mark.slow
def test_loss_decreases_on_real_frames(sequences, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    cfg = train_config_from_dict(recipe(sequences, epochs=2, pairs_per_epoch=128), tmp_path)
    trainer = Trainer(cfg, tmp_path / "run")
    batch = fixed_batch(trainer)
    before = held_out_loss(trainer, batch)
    trainer.fit()
    after = held_out_loss(trainer, batch)
    trainer.close()
    print(f"held-out loss {before} -> {after}")
    assert after["total"] < 0.85 * before["total"], f"held-out loss {before} -> {after}"
    # Classification beats chance (ln 2 per balanced term) on pairs it never saw.
    assert after["cls"] < 0.9 * math.log(2), f"cls {after['cls']:.3f} not below chance"
    exported = trainer.export()
    assert exported is not None and exported.is_file()
    from siam_core.checkpoint import load_checkpoint

    _model, config = load_checkpoint(exported)
    assert config.name == "tiny_alex_dw"
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 1000


@pytest.mark.slow
def test_resume_reproduces_the_next_steps(sequences, tmp_path: Path) -> None:
    """Stop mid-epoch (step 3 of 4) before the backbone unfreezes at epoch 1, resume, and
    get bit-identical weights and momentum to the uninterrupted run."""
    torch.set_num_threads(2)
    solver = {"pairs_per_epoch": 32, "backbone": {"unfreeze_epoch": 1, "lr_mult": 0.5}}
    cfg = train_config_from_dict(
        {**recipe(sequences, **solver), "runtime": {"num_workers": 0, "checkpoint_every": 3}},
        tmp_path,
    )
    full = Trainer(cfg, tmp_path / "full")
    full.fit()
    full.close()
    ckpt = full.checkpoint_path(3)
    assert ckpt.is_file()

    resumed = Trainer(cfg, tmp_path / "resumed")
    resumed.resume(ckpt)
    assert (resumed.epoch, resumed.batch, resumed.global_step) == (0, 3, 3)
    resumed.fit()
    resumed.close()
    assert resumed.global_step == full.global_step == 8
    assert_same_weights(full.model, resumed.model)
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        sa, sb = full.optimizer.state.get(pa, {}), resumed.optimizer.state.get(pb, {})
        assert sa.keys() == sb.keys()
        if "momentum_buffer" in sa:
            assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    # The backbone did train after unfreezing: differs from a fresh init at the same seed.
    fresh = Trainer(cfg, tmp_path / "fresh")
    w0 = fresh.model.backbone.features[0].weight
    assert not torch.equal(w0, full.model.backbone.features[0].weight)


def test_schedule_and_stages(sequences, tmp_path: Path) -> None:
    solver = {
        "epochs": 20,
        "warmup": {"epochs": 5, "start_lr": 0.001, "end_lr": 0.005},
        "lr": {"start": 0.005, "end": 0.0005},
        "backbone": {"train_layers": ["features"], "unfreeze_epoch": 5, "lr_mult": 0.1},
    }
    cfg = train_config_from_dict(recipe(sequences, **solver), tmp_path)
    s = cfg.solver
    assert lr_at(s, 0) == pytest.approx(0.001)
    assert lr_at(s, 4) == pytest.approx(0.001 * 5 ** (4 / 5))
    assert lr_at(s, 5) == pytest.approx(0.005)
    assert lr_at(s, 19) == pytest.approx(0.0005)
    assert lr_at(s, 12) == pytest.approx(0.005 * 0.1 ** (7 / 14))
    trainer = Trainer(cfg, tmp_path / "run")
    trainer._apply_stage(4)
    assert not any(p.requires_grad for p in trainer.model.backbone.parameters())
    assert all(p.requires_grad for p in trainer.model.rpn_head.parameters())
    assert not trainer.model.backbone.features[1].training  # frozen BatchNorm
    trainer._apply_stage(5)
    assert all(p.requires_grad for p in trainer.model.backbone.parameters())
    groups = trainer.optimizer.param_groups
    assert groups[0]["lr"] == pytest.approx(0.1 * groups[1]["lr"]) and groups[1]["lr"] == 0.005
    bad = {**solver, "backbone": {"train_layers": ["layer9"], "unfreeze_epoch": 0}}
    trainer = Trainer(train_config_from_dict(recipe(sequences, **bad), tmp_path), tmp_path / "x")
    with pytest.raises(ValueError, match="layer9"):
        trainer._apply_stage(0)


def test_batch_indices_split_the_global_batch() -> None:
    ranks = [list(BatchIndices(2, 100, 4, r, 2)) for r in range(2)]
    assert len(ranks[0]) == 100 // 8
    assert ranks[0][0] == [200, 201, 202, 203] and ranks[1][0] == [204, 205, 206, 207]
    flat = [i for r in ranks for b in r for i in b]
    assert len(flat) == len(set(flat)) == 96
    assert list(BatchIndices(0, 100, 4, 0, 1, start=24)) == [[96, 97, 98, 99]]


def test_fold_input_normalisation_is_exact() -> None:
    """Folding ImageNet's RGB mean/std into an unpadded stem gives the same features for BGR
    0..255 input as the original net on normalised RGB input."""
    torch.manual_seed(0)
    stem = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, bias=False), torch.nn.BatchNorm2d(8)
    )
    stem[1].running_mean.normal_()
    stem[1].running_var.uniform_(0.5, 2)
    stem.eval()
    bgr = torch.rand(2, 3, 21, 21) * 255
    rgb = bgr.flip(1) / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = stem((rgb - mean) / std)
    fold_input_normalisation(stem)
    torch.testing.assert_close(stem(bgr), expected, atol=1e-4, rtol=1e-4)
    padded = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8)
    )
    with pytest.raises(ValueError, match="unpadded"):
        fold_input_normalisation(padded)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_identical(sequences, tmp_path: Path) -> None:
    """torchrun launches 2 gloo processes; both replicas end with the same weights, which
    differ from the initial ones (so gradients were really averaged and applied)."""
    data = recipe(sequences, epochs=1, pairs_per_epoch=48, batch_size=4)
    data["solver"]["backbone"] = {"unfreeze_epoch": 0, "lr_mult": 0.5}
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(worker),
        str(cfg_path),
        str(tmp_path / "out"),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    states = [torch.load(tmp_path / "out" / f"rank{r}.pt", weights_only=True) for r in range(2)]
    init = torch.load(tmp_path / "out" / "init.pt", weights_only=True)
    changed = 0
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), f"replicas differ at {key}"
        changed += int(not torch.equal(states[0][key], init[key]))
    assert changed > len(init) // 2
    assert (tmp_path / "out" / "model.safetensors").is_file()
    seen = [np.load(tmp_path / "out" / f"indices{r}.npy") for r in range(2)]
    assert len(np.intersect1d(seen[0], seen[1])) == 0, "ranks trained on the same pairs"
