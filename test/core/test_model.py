"""Every built-in config builds a model with pysot's key names, tensor shapes, parameter
counts and output sizes (pysot-compat.md), and the template/track split equals forward()."""

from __future__ import annotations

import pytest
import torch

from siam_core.config import list_configs, load_config
from siam_core.models.model import SiameseRPN, build_model

PYSOT = [
    "siamrpn_alex_dwxcorr",
    "siamrpn_alex_dwxcorr_otb",
    "siamrpn_mobilev2_l234_dwxcorr",
    "siamrpn_r50_l234_dwxcorr",
    "siamrpn_r50_l234_dwxcorr_otb",
    "siamrpn_r50_l234_dwxcorr_lt",
]

# pysot-compat.md: key counts and parameters (millions, two decimals)
LAYOUT = {
    "siamrpn_alex_dwxcorr": (75, 6.25),
    "siamrpn_alex_dwxcorr_otb": (75, 6.25),
    "siamrpn_mobilev2_l234_dwxcorr": (450, 11.15),
    "siamrpn_r50_l234_dwxcorr": (458, 53.95),
    "siamrpn_r50_l234_dwxcorr_otb": (456, 53.95),  # pysot's OTB YAML: weighted False
    "siamrpn_r50_l234_dwxcorr_lt": (458, 60.02),
}

SHAPES = {
    "siamrpn_alex_dwxcorr": {
        "backbone.features.0.weight": (96, 3, 11, 11),
        "backbone.features.4.weight": (256, 96, 5, 5),
        "backbone.features.8.weight": (384, 256, 3, 3),
        "backbone.features.11.weight": (384, 384, 3, 3),
        "backbone.features.14.weight": (256, 384, 3, 3),
        "backbone.features.15.running_var": (256,),
        "rpn_head.cls.conv_kernel.0.weight": (256, 256, 3, 3),
        "rpn_head.loc.conv_search.1.weight": (256,),
        "rpn_head.cls.head.3.weight": (10, 256, 1, 1),
        "rpn_head.loc.head.3.weight": (20, 256, 1, 1),
    },
    "siamrpn_mobilev2_l234_dwxcorr": {
        "backbone.layer0.0.weight": (44, 3, 3, 3),
        "backbone.layer1.0.conv.0.weight": (44, 44, 1, 1),
        "neck.downsample2.downsample.0.weight": (256, 44, 1, 1),
        "neck.downsample3.downsample.0.weight": (256, 134, 1, 1),
        "neck.downsample4.downsample.0.weight": (256, 448, 1, 1),
        "rpn_head.rpn4.loc.head.3.weight": (20, 256, 1, 1),
    },
    "siamrpn_r50_l234_dwxcorr": {
        "backbone.conv1.weight": (64, 3, 7, 7),
        "backbone.layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "backbone.layer2.0.downsample.0.weight": (512, 256, 3, 3),
        "backbone.layer3.0.downsample.0.weight": (1024, 512, 3, 3),
        "backbone.layer4.0.downsample.0.weight": (2048, 1024, 3, 3),
        "neck.downsample4.downsample.0.weight": (256, 2048, 1, 1),
        "rpn_head.cls_weight": (3,),
        "rpn_head.loc_weight": (3,),
        "rpn_head.rpn3.cls.conv_kernel.0.weight": (256, 256, 3, 3),
    },
    "siamrpn_r50_l234_dwxcorr_lt": {
        "neck.downsample2.downsample.0.weight": (128, 512, 1, 1),
        "neck.downsample3.downsample.0.weight": (256, 1024, 1, 1),
        "neck.downsample4.downsample.0.weight": (512, 2048, 1, 1),
        "rpn_head.rpn2.cls.conv_kernel.0.weight": (128, 128, 3, 3),
        "rpn_head.rpn4.loc.head.3.weight": (20, 512, 1, 1),
    },
}


def test_every_pysot_config_is_built_in() -> None:
    assert set(PYSOT) | {"siamrpn_alex_upchannel"} <= set(list_configs())


@pytest.mark.parametrize("name", PYSOT)
def test_pysot_layout(name: str) -> None:
    model = build_model(load_config(name))
    sd = model.state_dict()
    keys, params = LAYOUT[name]
    assert len(sd) == keys
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == params
    assert ("neck" in dict(model.named_children())) == ("alex" not in name)
    for key, shape in SHAPES.get(name, {}).items():
        assert tuple(sd[key].shape) == shape, key


# the _otb variants share their architecture with the VOT ones (checked in test_pysot_layout)
SPLIT = [
    "siamrpn_alex_dwxcorr",
    "siamrpn_alex_upchannel",
    "siamrpn_mobilev2_l234_dwxcorr",
    "siamrpn_r50_l234_dwxcorr",
    "siamrpn_r50_l234_dwxcorr_lt",
]
# documented feature sizes (seeds-spec §2.1-2.2): template, search maps after backbone + neck
FEATURES = {
    "siamrpn_alex_dwxcorr": ([(1, 256, 6, 6)], [(1, 256, 26, 26)]),
    "siamrpn_r50_l234_dwxcorr": ([(1, 256, 7, 7)] * 3, [(1, 256, 31, 31)] * 3),
}


@pytest.mark.parametrize("name", SPLIT)
def test_output_sizes_and_split(name: str) -> None:
    cfg = load_config(name)
    model = build_model(cfg).eval()
    size = cfg.tracker.instance_size
    g = torch.Generator().manual_seed(0)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    x = torch.rand(1, 3, size, size, generator=g) * 255
    with torch.inference_mode():
        kernels = model.template(z)
        cls, loc = model.track(x, kernels)
        cls2, loc2 = model(z, x)
        if name in FEATURES:
            zf, xf = model.features(z), model.features(x)
            assert [tuple(f.shape) for f in zf] == FEATURES[name][0]
            assert [tuple(f.shape) for f in xf] == FEATURES[name][1]
    s = cfg.score_size()
    assert cls.shape == (1, 2 * cfg.anchor.num, s, s)
    assert loc.shape == (1, 4 * cfg.anchor.num, s, s)
    torch.testing.assert_close(cls, cls2)
    torch.testing.assert_close(loc, loc2)
    if "alex" in name:
        assert s == (17 if "upchannel" in name else 21)
    else:
        assert s == 25


@pytest.mark.slow
def test_long_term_search_size_gives_97() -> None:
    cfg = load_config("siamrpn_r50_l234_dwxcorr_lt")
    model = build_model(cfg).eval()
    lost = cfg.tracker.lost_instance_size
    assert lost == 831 and cfg.score_size(lost) == 97
    with torch.inference_mode():
        cls, loc = model(torch.zeros(1, 3, 127, 127), torch.zeros(1, 3, lost, lost))
    assert cls.shape[-2:] == (97, 97) and loc.shape == (1, 20, 97, 97)


def test_build_model_accepts_mappings_and_keeps_configs_apart() -> None:
    cfg = load_config("siamrpn_alex_dwxcorr")
    narrow = cfg.to_dict()
    narrow["model"]["backbone"]["width_mult"] = 0.5
    narrow["model"]["head"]["in_channels"] = 128
    a, b = build_model(cfg), build_model(narrow)
    c = build_model(cfg.model.to_dict())
    assert isinstance(b, SiameseRPN)
    assert a.state_dict()["backbone.features.14.weight"].shape == (256, 384, 3, 3)
    assert b.state_dict()["backbone.features.14.weight"].shape == (128, 192, 3, 3)
    assert c.state_dict().keys() == a.state_dict().keys()


def test_bad_inputs_to_the_model() -> None:
    model = build_model(load_config("siamrpn_alex_dwxcorr")).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.template(torch.zeros(3, 127, 127))
    with pytest.raises(ValueError, match="floating-point"):
        model.template(torch.zeros(1, 3, 127, 127, dtype=torch.uint8))
    with pytest.raises(ValueError, match="Config or a mapping"):
        build_model("siamrpn_alex_dwxcorr")
    with pytest.raises(ValueError, match="not an RPN head"):
        bad = load_config("siamrpn_alex_dwxcorr").to_dict()
        bad["model"]["head"] = {"type": "XCorrHead"}
        build_model(bad)
