"""DROL's online module piece by piece: the solver, the Fourier upsampling, the cubic resize,
the augmentations, the sample memory, fusion and the configuration (no network needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from siam_core.config import Config, OnlineConfig, load_config
from siam_core.online.augment import build_augmentations, crop_to_output
from siam_core.online.classifier import (
    HARD_NEGATIVE,
    NOT_FOUND,
    UNCERTAIN,
    OnlineClassifier,
    conv_same,
    upsample_scores,
)
from siam_core.online.fusion import OnlineModule, normalise, resize_bicubic
from siam_core.online.optim import L2Problem, gauss_newton
from siam_core.tracker.drol import box_iou

PRESETS = (
    "drol_siamrpn_alex_dwxcorr_vot",
    "drol_siamrpn_alex_dwxcorr_otb",
    "drol_siamrpn_r50_l234_dwxcorr_vot",
    "drol_siamrpn_r50_l234_dwxcorr_otb",
    "drol_siamrpn_r50_l234_dwxcorr_votlt",
)


def test_gauss_newton_cg_solves_a_regularised_least_squares_problem() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 6, generator=g)
    y = torch.randn(40, generator=g)
    lam = 0.1

    def residuals(v: list[torch.Tensor]) -> list[torch.Tensor]:
        w = v[0].view(-1)
        return [a @ w - y, math.sqrt(lam) * v[0]]

    w = torch.zeros(1, 6, 1, 1)
    gauss_newton(L2Problem(residuals), [w], num_cg_iter=12, num_gn_iter=2)
    exact = torch.linalg.solve(a.T @ a + lam * torch.eye(6), a.T @ y)
    assert torch.allclose(w.view(-1), exact, atol=1e-4)
    assert not w.requires_grad


def test_gauss_newton_handles_a_nonlinear_residual_with_preconditioning() -> None:
    # factorised like DROL: response = act(p * f * x) with two blocks
    x = torch.linspace(-1, 1, 50)
    y = 0.5 * x

    def residuals(v: list[torch.Tensor]) -> list[torch.Tensor]:
        f, p = v
        return [(f.view(-1) * p.view(-1) * x) - y, 0.01 * f, 0.01 * p]

    f, p = torch.full((1, 1, 1, 1), 0.1), torch.full((1, 1, 1, 1), 0.1)
    gauss_newton(L2Problem(residuals, [1.0, 1.0]), [f, p], num_cg_iter=5, num_gn_iter=8)
    assert float(f * p) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("drol_order", [True, False])
def test_conv_same_keeps_the_size_with_an_even_kernel(drol_order: bool) -> None:
    x = torch.zeros(1, 2, 26, 26)
    x[0, :, 10, 12] = 1
    w = torch.ones(1, 2, 4, 4)
    out = conv_same(x, w, drol_order)
    assert out.shape == (1, 1, 26, 26)
    # an even kernel's response covers rows/cols centre-2 .. centre+1
    rows, cols = torch.nonzero(out[0, 0], as_tuple=True)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (9, 12, 11, 14)


@pytest.mark.parametrize("kernel", [(4, 4), (3, 5), (1, 1), (5, 2)])
@pytest.mark.parametrize("projected", [False, True])
def test_the_fast_order_is_drols_convolution_and_so_are_its_first_and_second_derivatives(
    kernel: tuple[int, int], projected: bool
) -> None:
    """The solver differentiates the filter's convolution twice (J p by double
    back-propagation), with respect to the filter and the projection folded into its taps: the
    fast order must agree with DROL's (conv1x1, then F.conv2d) there too, not only forward."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        t = torch.randn(*shape, generator=gen, dtype=torch.float64)
        return t.requires_grad_(True)

    x = randn(3, 8, 13, 11)
    proj = randn(5, 8, 1, 1) if projected else None
    w = randn(2, 5 if projected else 8, *kernel)
    g = randn(3, 2, 13, 11)
    inputs = (x, w) if proj is None else (x, w, proj)
    p = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in inputs]
    results = []
    for drol_order in (True, False):
        out = conv_same(x, w, drol_order, proj)
        first = torch.autograd.grad(out, inputs, g, create_graph=True)
        second = torch.autograd.grad(first, g, p)  # J p, as the solver forms it
        results.append((out, *first, *second))
    assert results[0][0].shape == (3, 2, 13, 11)
    for ours, theirs in zip(results[1], results[0], strict=True):
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", [26, 31])
def test_upsampled_scores_interpolate_the_map_onto_the_crop_grid(size: int) -> None:
    # a smooth bump at feature cell (r, c): its upsampled peak sits at the matching crop pixel
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r, c = 9, 17
    raw = torch.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 8.0).float().view(1, 1, size, size)
    out = upsample_scores(raw, 287, (4, 4))
    assert out.shape == (287, 287)
    peak = divmod(int(torch.argmax(out)), 287)
    # after DROL's shift by π and the (S+1)/2 roll, cell (r, c) lands on crop pixel
    # (r, c) * S / size: the map is registered with the crop it was computed from
    expect = [v * 287 / size for v in (r, c)]
    assert abs(peak[0] - expect[0]) <= 1.5 and abs(peak[1] - expect[1]) <= 1.5
    assert float(out.max()) == pytest.approx(float(raw.max()), rel=0.05)
    flat = upsample_scores(torch.full((1, 1, size, size), 0.3), 287, (4, 4))
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-5)


def test_resize_bicubic_is_pillows_default_resize() -> None:
    image_mod = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    rng = np.random.default_rng(0)
    a = rng.random((287, 287)).astype(np.float32)
    for size in (21, 25, 89):
        ours = resize_bicubic(a, size)
        pil = np.array(image_mod.fromarray(a).resize((size, size)))
        assert ours.dtype == np.float32 and ours.shape == (size, size)
        np.testing.assert_allclose(ours, pil, rtol=0, atol=2e-6)


def test_normalise_and_fusion_broadcast_over_anchors() -> None:
    assert np.array_equal(normalise(np.full(4, 2.0, np.float32)), np.zeros(4, np.float32))
    cfg = OnlineConfig(fusion_weight=0.8)
    module = OnlineModule(OnlineClassifier(cfg, 287, 127, 0.5, lambda x: x))
    module.confidence = np.array([0.0, 1.0, 0.5, 0.25])
    pscore = np.arange(8, dtype=np.float64) / 10  # 2 anchors x 4 positions, anchor-major
    fused = module.fuse(pscore)
    expect = np.concatenate(
        [pscore[:4] * 0.2 + module.confidence * 0.8] * 1
        + [pscore[4:] * 0.2 + module.confidence * 0.8]
    )
    np.testing.assert_allclose(fused, expect)
    module.confidence = np.ones(3)
    with pytest.raises(ValueError, match="not a multiple"):
        module.fuse(pscore)


def test_crop_to_output_moves_the_window_by_its_shift() -> None:
    image = torch.arange(10 * 10, dtype=torch.float32).view(1, 1, 10, 10)
    centre = crop_to_output(image, 4, (0, 0))
    assert torch.equal(centre, image[:, :, 3:7, 3:7])
    moved = crop_to_output(image, 4, (1, -2))  # content moves down 1 and left 2
    assert torch.equal(moved, image[:, :, 2:6, 5:9])
    edge = crop_to_output(image, 4, (5, 0))  # beyond the top: replicated border rows
    assert edge.shape == (1, 1, 4, 4) and torch.equal(edge[0, 0, 0], image[0, 0, 0, 3:7])


def test_augmentations_follow_drols_list_and_draw_order() -> None:
    cfg = OnlineConfig()
    gen = torch.Generator().manual_seed(12)
    augs = build_augmentations(287, cfg, gen)
    kinds = [a.kind for a in augs]
    assert kinds == ["identity"] + ["shift"] * 4 + ["flip"] + ["blur"] * 5 + ["rotate"] * 12
    assert [a.shift for a in augs[1:5]] == [(86, 86), (-86, 86), (86, -86), (-86, -86)]
    # random shifts: 18 draws of rand(2), in order, truncated towards zero, |shift| <= S/6
    ref = torch.Generator().manual_seed(12)
    for aug in augs[5:]:
        r = ((torch.rand(2, generator=ref) - 0.5) * 287 / 3).long()
        assert aug.shift == (int(r[0]), int(r[1]))
        assert max(abs(v) for v in aug.shift) <= 287 // 6
    assert cfg.initial_samples() == 30  # with the 7 dropout copies (spec §6.9.2)
    image = torch.rand(1, 3, 574, 574, generator=gen) * 255
    outs = [a(image, 287) for a in augs]
    assert all(o.shape == (1, 3, 287, 287) for o in outs)
    flip = next(a for a in augs if a.kind == "flip")
    assert torch.equal(flip(image, 287), crop_to_output(image.flip((3,)), 287, flip.shift))


def _memory_classifier(n_init: int = 30, size: int = 40) -> OnlineClassifier:
    cfg = OnlineConfig(sample_memory_size=size, augment_dropout=(n_init - 23, 0.2))
    clf = OnlineClassifier(cfg, 287, 127, 0.5, lambda x: x)
    clf.num_init = n_init
    clf.sample_weights = torch.zeros(size)
    clf.sample_weights[:n_init] = 1.0 / n_init
    clf.previous_replace = None
    clf.samples = torch.zeros(size, 2, 3, 3)
    clf.y = torch.zeros(size, 1, 3, 3)
    return clf


def test_memory_weights_follow_the_learning_rate_rule_and_replace_the_oldest() -> None:
    clf = _memory_classifier()
    w = clf.sample_weights
    for k in range(10):
        clf._store(torch.full((1, 2, 3, 3), float(k + 1)), torch.zeros(1, 1, 3, 3), 0.01)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6)
        assert float(w[: clf.num_init].sum()) >= 0.25 - 1e-6
    # newer samples weigh more: each new weight is the previous one / (1 - rate)
    stored = w[30:40]
    assert torch.all(stored[1:] > stored[:-1])
    assert float(stored[1] / stored[0]) == pytest.approx(1 / 0.99, rel=1e-5)
    # memory full: the next sample replaces the lowest weight past the first-frame ones
    clf._store(torch.full((1, 2, 3, 3), 99.0), torch.zeros(1, 1, 3, 3), 0.02)
    assert float(clf.samples[30, 0, 0, 0]) == 99.0
    assert float(clf.samples[31, 0, 0, 0]) == 2.0


def test_first_frame_samples_keep_a_quarter_of_the_weight() -> None:
    clf = _memory_classifier(size=400)
    for _ in range(300):
        clf._store(torch.ones(1, 2, 3, 3), torch.zeros(1, 1, 3, 3), 0.01)
    assert float(clf.sample_weights[:30].sum()) == pytest.approx(0.25, abs=1e-5)
    assert torch.allclose(clf.sample_weights[:30], torch.full((30,), 0.25 / 30))


def _states(scores: torch.Tensor) -> str | None:
    clf = OnlineClassifier(OnlineConfig(), 101, 127, 0.5, lambda x: x)
    clf.img_sample_sz = torch.tensor([101.0, 101.0])
    clf.target_sz = torch.tensor([10.0, 10.0])
    clf.scale = np.float32(1.0)
    return clf._states(scores).flag


def test_localisation_states_follow_spec_6_9_3() -> None:
    s = torch.zeros(101, 101)
    s[50, 50] = 0.2
    assert _states(s) == NOT_FOUND  # peak below 0.25
    s[50, 50] = 0.9
    assert _states(s) is None  # one clear peak
    s[50, 70] = 0.6  # second peak > 0.5 x first, outside the 2.2x neighbourhood
    assert _states(s) == HARD_NEGATIVE
    s[50, 70] = 0.85  # > 0.8 x first, both near the centre: uncertain
    assert _states(s) == UNCERTAIN
    s[50, 70] = 0.0
    s[50, 99] = 0.85  # > 0.8 x first and far off while the peak is central: a distractor
    assert _states(s) == HARD_NEGATIVE
    s[50, 52] = 0.0
    s[50, 45] = 0.8  # inside the target's neighbourhood: masked, not a second peak
    s[50, 99] = 0.0
    assert _states(s) is None


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name: str) -> None:
    cfg = load_config(name)
    assert cfg.online is not None
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg


def test_preset_settings_are_drols() -> None:
    alex_otb = load_config("drol_siamrpn_alex_dwxcorr_otb")
    assert alex_otb.online.use_attention and alex_otb.online.short_term_drift
    assert alex_otb.online.seed == 123456
    r50_otb = load_config("drol_siamrpn_r50_l234_dwxcorr_otb")
    assert r50_otb.online.template_update and r50_otb.tracker.penalty_k == 0.24
    assert r50_otb.tracker.window_influence == 0.25 and r50_otb.tracker.lr == 0.25
    r50_vot = load_config("drol_siamrpn_r50_l234_dwxcorr_vot")
    assert r50_vot.online.seed == 123 and r50_vot.online.feature_level is None
    assert (r50_vot.tracker.penalty_k, r50_vot.tracker.window_influence) == (0.05, 0.35)
    lt = load_config("drol_siamrpn_r50_l234_dwxcorr_votlt")
    assert lt.online.fusion_weight == 0.6 and lt.online.target_not_found_threshold == 0.2
    assert lt.online.feature_level == 1 and lt.tracker.lost_instance_size == 831
    assert (lt.tracker.confidence_low, lt.tracker.confidence_high) == (0.85, 0.998)


def test_online_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        OnlineConfig.from_dict({"fusion": 0.8})
    with pytest.raises(ValueError, match="fusion_weight"):
        OnlineConfig(fusion_weight=1.5)
    with pytest.raises(ValueError, match="sample_memory_size"):
        OnlineConfig(sample_memory_size=10)
    with pytest.raises(ValueError, match="multiple"):
        OnlineConfig(init_cg_iter=7, init_gn_iter=2)
    with pytest.raises(ValueError, match="activation"):
        OnlineConfig.from_dict({"response_activation": ["bogus", 1.0]})
    assert OnlineConfig().replace(fusion_weight=0.6).fusion_weight == 0.6
