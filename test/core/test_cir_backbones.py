"""SiamDW's CIR backbones against the paper's Table 3 (seeds-spec §2.4.3), measured, not stated.

Stride and receptive field are measured by back-propagating from one output feature; output
sizes by running 127 / 255 patches; parameters by counting. The padding removal that CIR units
exist for (seeds-spec §1.3) is checked directly: the template's features equal the matching
window of the search features, which only holds when no zero padding reaches them.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from siam_core.config import load_config
from siam_core.models.cir import CIResNet, CIRUnit
from siam_core.registry import BACKBONES

# DW Table 3 (paper), with the official code's values where they differ (README "SiamDW"):
# name -> (config, stride, RF, OFS at z=127, params in M as printed, channels)
TABLE3 = {
    "CIResNet-16": ("siamfcplus_ciresnet16", 8, 77, 7, 1.304, 512),
    "CIResNet-19": ("siamfcplus_ciresnet19", 8, 85, 6, 1.374, 512),
    "CIResNet-22": ("siamfcplus_ciresnet22_vot", 8, 93, 5, 1.445, 512),
    # the official Incep22 / ResNeXt22 stems (unpadded 7x7, 3x3/2 pool) give RF 95, not 93
    "CIResInception-22": ("siamfcplus_ciresinception22_vot", 8, 95, 5, 1.695, 640),
    "CIResNeXt-22": ("siamfcplus_ciresnext22_vot", 8, 95, 5, 1.417, 512),
    "CIResNet-43": ("siamfcplus_ciresnet43", 4, 105, 6, 1.010, 256),
}


def _backbone(config: str) -> nn.Module:
    return BACKBONES.build(load_config(config).model.backbone).eval()


def _positive_copy(net: nn.Module) -> nn.Module:
    """A copy where every path passes gradient: positive weights, identity BN, average pools
    (same window as the max-pools, so the same receptive field)."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.abs_().add_(1e-3)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.reset_parameters()
        elif isinstance(m, nn.Sequential):  # the CIR-D pools sit inside the stages
            for i, child in enumerate(m):
                if isinstance(child, nn.MaxPool2d):
                    m[i] = nn.AvgPool2d(child.kernel_size, child.stride)
    for attr in ("maxpool", "maxpool1"):  # the stem pools
        pool = getattr(net, attr, None)
        if isinstance(pool, nn.MaxPool2d):
            setattr(net, attr, nn.AvgPool2d(pool.kernel_size, pool.stride))
    return net.eval()


def _support(net: nn.Module, size: int, row: int, col: int) -> tuple[int, int]:
    """(first, last) input column that feature (row, col) depends on."""
    x = torch.rand(1, 3, size, size, requires_grad=True)
    net(x)[0, :, row, col].sum().backward()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)) > 0).flatten()
    return int(cols[0]), int(cols[-1])


@pytest.mark.parametrize("name", list(TABLE3))
def test_table3_stride_rf_output_size_params(name: str) -> None:
    config, stride, rf, ofs, params, channels = TABLE3[name]
    net = _backbone(config)
    with torch.no_grad():
        z = net(torch.rand(1, 3, 127, 127))
    assert z.shape[1:] == (channels, ofs, ofs)
    count = sum(p.numel() for p in net.parameters()) / 1e6
    # CIResNet-43 counts 1.000 M: the table's 1.010 M fits no layout of its stated units
    assert count == pytest.approx(params, abs=0.001 if name != "CIResNet-43" else 0.011)
    probe = _positive_copy(net)
    first, last = _support(probe, 191, 4, 4)
    assert last - first + 1 == rf
    shifted = _support(probe, 191, 4, 5)
    assert shifted[0] - first == stride


@pytest.mark.parametrize("name", list(TABLE3))
def test_template_features_are_a_window_of_search_features(name: str) -> None:
    """No padding reaches the output: f(z) == f(x)[window] for z cut from x at a multiple of
    the stride (strict translation invariance, seeds-spec §1.2)."""
    config, stride, _, ofs, _, _ = TABLE3[name]
    net = _backbone(config)
    g = torch.Generator().manual_seed(0)
    for m in net.modules():  # non-trivial BN so every layer matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    x = torch.rand(1, 3, 255, 255, generator=g) * 255
    a, b = 3, 5
    z = x[:, :, a * stride : a * stride + 127, b * stride : b * stride + 127]
    with torch.no_grad():
        fz, fx = net(z), net(x)
    # float32 rounding only (exact in float64); CIResNet-43's features reach 1e5
    atol = 1e-5 * float(fx.abs().max())
    torch.testing.assert_close(fz, fx[:, :, a : a + ofs, b : b + ofs], rtol=1e-4, atol=atol)


def test_search_response_sizes() -> None:
    """Response side for a 255 search: 17 at stride 8, 33 for CIResNet-43 (spec §2.4.3)."""
    for name, (config, stride, _, ofs, _, _) in TABLE3.items():
        net = _backbone(config)
        with torch.no_grad():
            side = net(torch.rand(1, 3, 255, 255)).shape[-1]
        assert side - ofs + 1 == (255 - 127) // stride + 1, name
        assert load_config(config).score_size() == side - ofs + 1, name


def test_cir_unit_crops_after_the_addition() -> None:
    unit = CIRUnit(32, 16).eval()
    assert unit.downsample is not None  # 32 -> 64 channels needs the projection shortcut
    assert CIRUnit(64, 16).downsample is None  # 64 -> 64: identity shortcut
    with torch.no_grad():
        out = unit(torch.rand(2, 32, 12, 12))
    assert out.shape == (2, 64, 10, 10)
    assert (out >= 0).all()
    last = CIRUnit(32, 16, last_relu=False).eval()
    last.load_state_dict(unit.state_dict())
    with torch.no_grad():
        raw = last(torch.rand(1, 32, 9, 9) - 5)
    assert raw.shape == (1, 64, 7, 7)
    assert (raw < 0).any()  # the network's last unit keeps negative values (no ReLU)


def test_bad_layouts_are_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per stage"):
        CIResNet(blocks=(3, 4), widths=(64,), downsample_at=(-1, 0))
    with pytest.raises(ValueError, match="CIR-D"):
        CIResNet(blocks=(3,), widths=(64,), downsample_at=(5,))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        CIResNet()(torch.zeros(1, 4, 127, 127))
