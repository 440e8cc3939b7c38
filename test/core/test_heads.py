"""Correlation heads: grouped-convolution xcorr against explicit per-sample / per-channel
correlation, pysot key names, template/track split equal to the one-shot forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from siam_core.models.heads import (
    DepthwiseRPN,
    MultiRPN,
    UPChannelRPN,
    XCorrHead,
    xcorr_depthwise,
    xcorr_fast,
)
from siam_core.registry import HEADS


def _randomise_bn(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_xcorr_fast_matches_per_sample_correlation() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 12, 12, generator=g)
    kernel = torch.randn(3 * 5, 8, 4, 4, generator=g)  # 5 kernels per sample
    out = xcorr_fast(x, kernel)
    assert out.shape == (3, 5, 9, 9)
    for b in range(3):
        ref = F.conv2d(x[b : b + 1], kernel[b * 5 : (b + 1) * 5])
        torch.testing.assert_close(out[b : b + 1], ref, rtol=1e-5, atol=1e-5)


def test_xcorr_depthwise_matches_per_channel_correlation() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 10, 10, generator=g)
    kernel = torch.randn(2, 6, 3, 3, generator=g)
    out = xcorr_depthwise(x, kernel)
    assert out.shape == (2, 6, 8, 8)
    for b in range(2):
        for c in range(6):
            ref = F.conv2d(x[b : b + 1, c : c + 1], kernel[b : b + 1, c : c + 1])
            torch.testing.assert_close(out[b, c], ref[0, 0], rtol=1e-5, atol=1e-5)


def test_xcorr_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="xcorr_fast"):
        xcorr_fast(torch.zeros(2, 8, 10, 10), torch.zeros(3, 8, 3, 3))
    with pytest.raises(ValueError, match="xcorr_depthwise"):
        xcorr_depthwise(torch.zeros(1, 8, 10, 10), torch.zeros(1, 4, 3, 3))


def test_depthwise_rpn_keys_and_split() -> None:
    head = DepthwiseRPN(anchor_num=5, in_channels=32, out_channels=16).eval()
    _randomise_bn(head, 2)
    keys = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert keys["cls.conv_kernel.0.weight"] == (16, 32, 3, 3)
    assert keys["cls.conv_search.0.weight"] == (16, 32, 3, 3)
    assert keys["cls.head.0.weight"] == (16, 16, 1, 1)
    assert keys["cls.head.3.weight"] == (10, 16, 1, 1)
    assert keys["loc.head.3.bias"] == (20,)
    assert "cls.conv_kernel.0.bias" not in keys
    g = torch.Generator().manual_seed(3)
    z, x = torch.randn(2, 32, 6, 6, generator=g), torch.randn(2, 32, 22, 22, generator=g)
    with torch.no_grad():
        cls, loc = head([z], [x])
        kernels = head.template([z])
        cls2, loc2 = head.track(kernels, [x])
    assert cls.shape == (2, 10, 17, 17) and loc.shape == (2, 20, 17, 17)
    torch.testing.assert_close(cls, cls2)
    torch.testing.assert_close(loc, loc2)
    # the per-sample kernels really are per sample
    with torch.no_grad():
        single, _ = head([z[1:]], [x[1:]])
    torch.testing.assert_close(cls[1:], single, rtol=1e-5, atol=1e-5)


def test_upchannel_rpn_keys_shapes_and_precomputed_kernels() -> None:
    head = UPChannelRPN(anchor_num=5, feature_in=16).eval()
    keys = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert keys == {
        "template_cls_conv.weight": (160, 16, 3, 3),
        "template_cls_conv.bias": (160,),
        "template_loc_conv.weight": (320, 16, 3, 3),
        "template_loc_conv.bias": (320,),
        "search_cls_conv.weight": (16, 16, 3, 3),
        "search_cls_conv.bias": (16,),
        "search_loc_conv.weight": (16, 16, 3, 3),
        "search_loc_conv.bias": (16,),
        "loc_adjust.weight": (20, 20, 1, 1),
        "loc_adjust.bias": (20,),
    }
    g = torch.Generator().manual_seed(4)
    z, x = torch.randn(1, 16, 6, 6, generator=g), torch.randn(1, 16, 22, 22, generator=g)
    with torch.no_grad():
        kernels = head.template([z])
        cls, loc = head.track(kernels, [x])
        # channel n*C..(n+1)*C-1 of the lifted template is kernel n (pysot / DaSiamRPN)
        lifted = head.template_cls_conv(z)
        search = head.search_cls_conv(x)
        ref3 = F.conv2d(search, lifted[:, 3 * 16 : 4 * 16])
    assert [tuple(k.shape) for k in kernels] == [(10, 16, 4, 4), (20, 16, 4, 4)]
    assert cls.shape == (1, 10, 17, 17) and loc.shape == (1, 20, 17, 17)
    torch.testing.assert_close(cls[:, 3:4], ref3, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(head([z], [x])[1], loc)


@pytest.mark.parametrize("weighted", [True, False])
def test_multi_rpn_fusion(weighted: bool) -> None:
    head = MultiRPN(anchor_num=5, in_channels=[8, 12, 16], weighted=weighted).eval()
    _randomise_bn(head, 5)
    names = {k.split(".")[0] for k in head.state_dict()}
    assert names == (
        {"rpn2", "rpn3", "rpn4"} | ({"cls_weight", "loc_weight"} if weighted else set())
    )
    if weighted:
        head.cls_weight.data = torch.tensor([0.3, -1.0, 2.0])
        head.loc_weight.data = torch.tensor([1.5, 0.2, -0.4])
    g = torch.Generator().manual_seed(6)
    zs = [torch.randn(1, c, 7, 7, generator=g) for c in (8, 12, 16)]
    xs = [torch.randn(1, c, 31, 31, generator=g) for c in (8, 12, 16)]
    with torch.no_grad():
        cls, loc = head.track(head.template(zs), xs)
        parts = [getattr(head, f"rpn{i + 2}")([zs[i]], [xs[i]]) for i in range(3)]
        if weighted:
            wc, wl = F.softmax(head.cls_weight, 0), F.softmax(head.loc_weight, 0)
        else:
            wc = wl = torch.full((3,), 1 / 3)
        ref_cls = sum(parts[i][0] * wc[i] for i in range(3))
        ref_loc = sum(parts[i][1] * wl[i] for i in range(3))
    assert cls.shape == (1, 10, 25, 25)
    torch.testing.assert_close(cls, ref_cls, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loc, ref_loc, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="3 levels"):
        head.template(zs[:2])


def test_xcorr_head_is_scaled_correlation_plus_bias() -> None:
    head = XCorrHead(out_scale=0.01)
    head.bias.data.fill_(0.25)
    g = torch.Generator().manual_seed(7)
    z, x = torch.randn(2, 4, 6, 6, generator=g), torch.randn(2, 4, 22, 22, generator=g)
    with torch.no_grad():
        out = head([z], [x])
        ref = torch.cat([F.conv2d(x[b : b + 1], z[b : b + 1]) for b in range(2)]) * 0.01 + 0.25
    assert out.shape == (2, 1, 17, 17)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_heads_are_registered() -> None:
    for name in ("XCorrHead", "UPChannelRPN", "DepthwiseRPN", "MultiRPN"):
        assert name in HEADS
    with pytest.raises(ValueError, match="bad arguments"):
        HEADS.build({"type": "DepthwiseRPN", "channels": 3})
    with pytest.raises(ValueError, match="one feature level"):
        DepthwiseRPN(5, 8, 8).template([torch.zeros(1, 8, 6, 6)] * 2)
