"""SiamDW training on real frames: SiamFC+'s logistic loss falls and resumes exactly across the
staged unfreezing (one more CIR block per stage), SiamRPN+'s sigmoid-anchor loss falls, and the
shipped recipes carry the paper's schedule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_weights

from siam_core.train.config import load_train_config, train_config_from_dict
from siam_core.train.losses import LossConfig, cls_loss, response_loss
from siam_core.train.targets import ResponseTargets
from siam_core.train.trainer import Trainer

RECIPES = Path(__file__).resolve().parents[2] / "siam_core" / "configs" / "train"
# a narrow CIResNet (CIR and CIR-D units, stride 8) so a few steps fit two CPU cores
TINY_BACKBONE = {
    "type": "CIResNet",
    "blocks": [2, 2],
    "widths": [8, 16],
    "downsample_at": [-1, 0],
    "stem_pool": True,
}
ORDER = ["layer2.2", "layer2.0", "layer1.1", "layer1.0"]


def tiny_siamfc() -> dict:
    return {
        "name": "tiny_siamfcplus",
        "model": {"backbone": TINY_BACKBONE, "head": {"type": "XCorrHead", "out_scale": 0.1}},
        "anchor": {"stride": 8},
        "tracker": {
            "window_influence": 0.35,
            "scale_num": 3,
            "scale_step": 1.0482,
            "scale_penalty": 0.9745,
            "scale_lr": 0.3629,
            "response_up": 16,
        },
    }


def tiny_siamrpnplus() -> dict:
    head = {
        "type": "UPChannelRPN",
        "anchor_num": 5,
        "feature_in": 64,
        "out_channels": 16,
        "cls_per_anchor": 1,
    }
    return {
        "name": "tiny_siamrpnplus",
        "model": {"backbone": TINY_BACKBONE, "head": head},
        "anchor": {"stride": 8, "ratios": [0.33, 0.5, 1, 2, 3], "scales": [8]},
        "tracker": {"penalty_k": 0.1, "window_influence": 0.4, "lr": 0.4},
    }


def recipe(seq: Path, model: dict, **solver) -> dict:
    """Real training sequences (the suggested training split of shared/data)."""
    return {
        "name": model["name"],
        "model": model,
        "data": {
            "search_size": 191,
            "sources": [
                {"type": "sequences", "root": str(seq / "uav123_half"), "frame_range": 30},
                {"type": "sequences", "paths": [str(seq / "otb/Human3")], "frame_range": 30},
            ],
            "negative": {"prob": 0.1},
            "template_aug": {"shift": 4, "scale": 0.05},
            "search_aug": {"shift": 16, "scale": 0.05, "color": 0.3},
        },
        "loss": {"loc_type": "smooth_l1", "loc_weight": 1.0},
        "solver": {
            "epochs": 2,
            "pairs_per_epoch": 32,
            "batch_size": 8,
            "lr": {"start": 0.05, "end": 0.02},
            "weight_decay": 0.0001,
            "amp": False,
            "backbone": {
                "train_layers": ORDER,
                "unfreeze_epoch": 0,
                "unfreeze_every": 1,
                "lr_mult": 1.0,
            },
            **solver,
        },
        "runtime": {"num_workers": 0, "log_every": 0, "image_every": 0, "seed": 5},
    }


def held_out(trainer: Trainer, n: int = 8) -> float:
    """The classification loss on pairs of an epoch the run never trains on."""
    items = [trainer.dataset[99 * trainer.dataset.per_epoch + i] for i in range(n)]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    model = trainer.model
    model.eval()
    with torch.no_grad():
        out = model(batch["template"].float(), batch["search"].float())
    model.train()
    cls = out if isinstance(out, torch.Tensor) else out[0]
    return float(cls_loss(cls, batch["label_cls"]))


def test_response_labels_follow_the_target_and_the_loss_balances_classes() -> None:
    targets = ResponseTargets(score_size=17, search_size=255, stride=8)
    rng = np.random.default_rng(0)
    centred = targets(np.array([100.0, 100.0, 155.0, 155.0]), False, rng).cls[0]
    assert centred.sum() == 13 and centred[8, 8] == 1 and centred[8, 10] == 1
    assert centred[8, 11] == 0 and centred[9, 9] == 1 and centred[10, 9] == 0
    shifted = targets(np.array([116.0, 100.0, 171.0, 155.0]), False, rng).cls[0]
    assert shifted[8, 10] == 1 and shifted[8, 8] == 1 and shifted[8, 7] == 0
    assert targets(np.array([100.0, 100.0, 155.0, 155.0]), True, rng).cls.sum() == 0
    # balanced: half the loss on the 13 positives, half on the 276 negatives (SiamDW)
    logits = torch.randn(1, 1, 17, 17)
    label = torch.from_numpy(centred[None, None])
    pos, neg = label == 1, label == 0
    expected = 0.5 * F.softplus(-logits[pos]).mean() + 0.5 * F.softplus(logits[neg]).mean()
    loss = response_loss(logits, label, LossConfig())
    torch.testing.assert_close(loss["total"], expected)


@pytest.mark.slow
def test_siamfcplus_loss_falls_and_blocks_unfreeze_one_per_stage(sequences, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    cfg = train_config_from_dict(recipe(sequences, tiny_siamfc()), tmp_path)
    trainer = Trainer(cfg, tmp_path / "run")
    assert trainer.score_size == 9 and isinstance(trainer.targets, ResponseTargets)
    trainable = [
        {n.split(".")[0] + "." + n.split(".")[1] for n in trainer._backbone_trainable(e)}
        for e in (0, 1)
    ]
    assert trainable == [{"layer2.2"}, {"layer2.2", "layer2.0"}]
    assert not any("conv1" in n and "layer" not in n for n in trainer._backbone_trainable(5))
    before = held_out(trainer)
    trainer.fit()
    after = held_out(trainer)
    trainer.close()
    assert after < 0.8 * before, f"held-out loss {before:.3f} -> {after:.3f}"
    stem = trainer.model.backbone.conv1.weight
    fresh = Trainer(cfg, tmp_path / "fresh").model.backbone
    assert torch.equal(stem, fresh.conv1.weight)  # the 7x7 conv never trains
    assert not torch.equal(
        trainer.model.backbone.layer2[2].conv2.weight, fresh.layer2[2].conv2.weight
    )


@pytest.mark.slow
def test_siamfcplus_resume_is_exact_across_an_unfreeze(sequences, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    data = {
        **recipe(sequences, tiny_siamfc()),
        "runtime": {"num_workers": 0, "checkpoint_every": 3},
    }
    cfg = train_config_from_dict(data, tmp_path)
    full = Trainer(cfg, tmp_path / "full")
    full.fit()
    full.close()
    resumed = Trainer(cfg, tmp_path / "resumed")
    resumed.resume(full.checkpoint_path(3))
    resumed.fit()
    resumed.close()
    assert resumed.global_step == full.global_step == 8
    assert_same_weights(full.model, resumed.model)


@pytest.mark.slow
def test_siamrpnplus_sigmoid_anchor_loss_falls(sequences, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    data = recipe(sequences, tiny_siamrpnplus())
    cfg = train_config_from_dict(data, tmp_path)
    trainer = Trainer(cfg, tmp_path / "run")
    before = held_out(trainer)
    trainer.fit()
    after = held_out(trainer)
    trainer.close()
    assert after < 0.85 * before, f"held-out cls loss {before:.3f} -> {after:.3f}"


def test_shipped_recipes_carry_the_papers_schedule(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIAM_DATA", str(tmp_path))
    fc = load_train_config(RECIPES / "siamfcplus_ciresnet22.yaml", check_paths=False)
    rpn = load_train_config(RECIPES / "siamrpnplus_ciresnet22.yaml", check_paths=False)
    for cfg, lr in ((fc, (1e-3, 1e-7)), (rpn, (1e-2, 1e-5))):
        s = cfg.solver
        assert (s.epochs, s.lr.start, s.lr.end) == (50, *lr)
        assert (s.momentum, s.weight_decay, s.batch_size) == (0.9, 1e-4, 32)
        assert s.backbone.unfreeze_every == 5 and s.backbone.train_layers[0] == "layer2.4"
        assert not any(layer.startswith("conv1") for layer in s.backbone.train_layers)
    assert fc.model.tracker.is_siamfc and not rpn.model.tracker.is_siamfc
