"""Anchor labels and losses on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from siam_core.models.anchors import AnchorSpec
from siam_core.train.losses import LossConfig, cls_loss, iou_loss, loc_loss, rpn_loss, smooth_l1
from siam_core.train.targets import AnchorTargets, TargetConfig, iou_xyxy

SPEC = AnchorSpec()  # stride 8, ratios 0.33..3, scale 8: (104,32) (88,40) (64,64) (40,80) (32,96)
SQUARE = 2  # index of the 64x64 anchor


def targets(**kw) -> AnchorTargets:
    return AnchorTargets(SPEC, 17, 255, TargetConfig(**kw))


def test_grid_and_iou() -> None:
    t = targets()
    # Centre cell of the 17x17 map sits on the patch centre 255 // 2 = 127 (pysot).
    assert t.anchors[SQUARE, 8, 8].tolist() == [127, 127, 64, 64]
    assert t.anchors[SQUARE, 8, 9, 0] == 135
    assert iou_xyxy(np.array([0, 0, 64, 64.0]), np.array([16, 0, 80, 64.0])) == pytest.approx(
        48 * 64 / (2 * 64 * 64 - 48 * 64)
    )


def test_square_target_on_the_centre_anchor() -> None:
    """A 64x64 box at the centre. By hand, for the 64x64 anchors: offset (8,0) gives IoU
    56*64/(8192-3584) = 0.78, (16,0) 0.6, (8,8) 0.62, (16,8) 0.49 -> 1 + 4 + 4 + 4 = 13 positives;
    the other shapes reach at most 64*40/5056 = 0.51, so no positives. The 64 - 13 = 51
    negatives fill the budget (paper); pysot's fixed count gives 16 negatives."""
    box = np.array([95, 95, 159, 159], np.float32)
    labels = targets()(box, False, np.random.default_rng(0))
    pos = np.argwhere(labels.cls == 1)
    assert len(pos) == 13
    assert set(pos[:, 0]) == {SQUARE}
    offsets = {(int(y) - 8, int(x) - 8) for _, y, x in pos}
    expected = {(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (0, 2), (0, -2), (2, 0), (-2, 0)}
    expected |= {(1, 1), (1, -1), (-1, 1), (-1, -1)}
    assert offsets == expected
    assert (labels.cls == 0).sum() == 51
    assert labels.weight.sum() == pytest.approx(1.0)
    assert labels.weight[SQUARE, 8, 8] == pytest.approx(1 / 13)
    # Regression targets (seeds-spec 4.6): zero on the matching anchor; one cell right the
    # anchor centre is 135, so dx = (127 - 135) / 64 = -0.125; dw = ln(64 / 104) on the wide one.
    np.testing.assert_allclose(labels.delta[:, SQUARE, 8, 8], 0, atol=1e-6)
    assert labels.delta[0, SQUARE, 8, 9] == pytest.approx(-0.125)
    assert labels.delta[2, 0, 8, 8] == pytest.approx(math.log(64 / 104))
    fixed = targets(neg_num=16)(box, False, np.random.default_rng(0))
    assert (fixed.cls == 0).sum() == 16 and (fixed.cls == 1).sum() == 13
    # Every labelled negative has IoU <= 0.3, every ignored anchor lies in between.
    iou = iou_xyxy(targets().corners, box)
    assert iou[labels.cls == 0].max() <= 0.3
    # Anchors between the thresholds stay ignored (-1), never sampled as negatives.
    between = (iou > 0.3) & (iou < 0.6)
    assert between.sum() > 0 and np.all(labels.cls[between] == -1)


def test_at_most_16_positives_of_64() -> None:
    """With the positive threshold at 0.45 the 64x64 box has 21 + candidates (the 8 anchors
    at offsets (16, 8) have IoU 0.49): 16 are kept, 48 negatives fill the 64."""
    box = np.array([95, 95, 159, 159], np.float32)
    t = targets(pos_iou=0.45)
    assert (iou_xyxy(t.corners, box) >= 0.45).sum() > 16
    labels = t(box, False, np.random.default_rng(1))
    assert (labels.cls == 1).sum() == 16
    assert (labels.cls == 0).sum() == 48
    assert labels.weight[labels.cls == 1] == pytest.approx(np.full(16, 1 / 16))
    other = t(box, False, np.random.default_rng(2))
    assert not np.array_equal(other.cls, labels.cls), "positives are sampled at random"


def test_negative_pair_labels_near_the_object() -> None:
    box = np.array([95 + 16, 95, 159 + 16, 159], np.float32)  # object centre 2 cells right
    labels = targets()(box, True, np.random.default_rng(0))
    assert (labels.cls == 1).sum() == 0
    neg = np.argwhere(labels.cls == 0)
    assert len(neg) == 16
    assert np.all(np.abs(neg[:, 1] - 8) <= 3) and np.all(np.abs(neg[:, 2] - 10) <= 3)
    assert labels.weight.sum() == 0


def test_target_config_errors() -> None:
    with pytest.raises(ValueError, match="neg_iou < pos_iou"):
        TargetConfig(pos_iou=0.3, neg_iou=0.6)
    with pytest.raises(ValueError, match="max_pos"):
        TargetConfig(max_pos=100)


def _cls_map(k: int, s: int, bg: float, fg: float) -> torch.Tensor:
    cls = torch.zeros(1, 2 * k, s, s)
    cls[:, :k] = bg
    cls[:, k:] = fg
    return cls


def test_cross_entropy_by_hand() -> None:
    k, s = 5, 3
    label = torch.full((1, k, s, s), -1)
    label[0, 0, 0, 0] = 1
    label[0, 1, 1, 1] = 0
    label[0, 2, 2, 2] = 0
    # Equal logits: every term is ln 2.
    assert cls_loss(_cls_map(k, s, 0, 0), label).item() == pytest.approx(math.log(2))
    # fg logit 2, bg 0: positive -log(e^2/(1+e^2)) = ln(1+e^-2), negatives ln(1+e^2).
    cls = _cls_map(k, s, 0.0, 2.0)
    lp, ln_ = math.log1p(math.exp(-2)), math.log1p(math.exp(2))
    assert cls_loss(cls, label, balance=True).item() == pytest.approx(0.5 * lp + 0.5 * ln_)
    assert cls_loss(cls, label, balance=False).item() == pytest.approx((lp + 2 * ln_) / 3)
    # Ignored anchors do not count, whatever their logits.
    cls2 = cls.clone()
    cls2[0, k + 4] = 100.0
    assert cls_loss(cls2, label).item() == pytest.approx(cls_loss(cls, label).item())


def test_regression_losses_by_hand() -> None:
    k, s = 5, 2
    loc = torch.zeros(2, 4 * k, s, s)
    target = torch.zeros(2, 4, k, s, s)
    weight = torch.zeros(2, k, s, s)
    target[0, :, 3, 1, 0] = torch.tensor([0.5, -0.25, 0.1, 0.0])
    weight[0, 3, 1, 0] = 1.0
    # weighted L1 (pysot): (0.5 + 0.25 + 0.1) * 1 / batch 2
    assert loc_loss(loc, target, weight, "l1").item() == pytest.approx(0.85 / 2)
    # smooth L1, sigma 3: |x| >= 1/9 -> |x| - 1/18; |0.1| < 1/9 -> 0.5 * 9 * 0.01
    sl1 = (0.5 - 1 / 18) + (0.25 - 1 / 18) + 0.045
    assert loc_loss(loc, target, weight, "smooth_l1", 3.0).item() == pytest.approx(sl1 / 2)
    assert smooth_l1(torch.tensor(0.0), 3.0).item() == 0.0
    # The layout: dx of anchor a lives in channel a, dy in k + a, ...
    loc2 = loc.clone()
    loc2[0, 3, 1, 0] = 0.5  # dx of anchor 3
    loc2[0, k + 3, 1, 0] = -0.25  # dy of anchor 3
    loc2[0, 2 * k + 3, 1, 0] = 0.1
    assert loc_loss(loc2, target, weight, "l1").item() == pytest.approx(0.0, abs=1e-7)


def test_iou_loss_by_hand() -> None:
    k, s = 1, 1
    anchors = torch.tensor([127.0, 127.0, 64.0, 64.0]).view(4, 1, 1, 1)
    target = torch.zeros(1, 4, k, s, s)
    weight = torch.ones(1, k, s, s)
    assert iou_loss(torch.zeros(1, 4, 1, 1), target, weight, anchors).item() == pytest.approx(0)
    pred = torch.zeros(1, 4, 1, 1)
    pred[0, 2] = math.log(2.0)  # twice as wide, same centre: IoU 1/2
    assert iou_loss(pred, target, weight, anchors).item() == pytest.approx(0.5, abs=1e-6)


def test_total_loss_weights() -> None:
    k, s = 5, 2
    cls = _cls_map(k, s, 0, 0)
    loc = torch.zeros(1, 4 * k, s, s)
    label = torch.zeros(1, k, s, s, dtype=torch.long)
    label[0, 0, 0, 0] = 1
    target = torch.zeros(1, 4, k, s, s)
    target[0, 0, 0, 0, 0] = 1.0
    weight = torch.zeros(1, k, s, s)
    weight[0, 0, 0, 0] = 1.0
    out = rpn_loss(cls, loc, label, target, weight, LossConfig(cls_weight=1.0, loc_weight=1.2))
    assert out["total"].item() == pytest.approx(math.log(2) + 1.2 * 1.0)
    with pytest.raises(ValueError, match="anchor grid"):
        rpn_loss(cls, loc, label, target, weight, LossConfig(iou_weight=1.0))
    with pytest.raises(ValueError, match="loc_type"):
        LossConfig(loc_type="l2")
