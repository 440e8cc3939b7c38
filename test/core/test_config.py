"""Config loading and validation: built-in names with pysot's exact tracker settings, YAML
paths, unknown keys and bad values rejected with messages that name them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from siam_core.config import Config, list_configs, load_config

# pysot's experiments/*/config.yaml TRACK sections (pysot-compat.md table)
PYSOT_TRACK = {
    "siamrpn_alex_dwxcorr": (0.16, 0.40, 0.30, 287, 0),
    "siamrpn_alex_dwxcorr_otb": (0.16, 0.40, 0.30, 287, 0),
    "siamrpn_mobilev2_l234_dwxcorr": (0.04, 0.40, 0.50, 255, 8),
    "siamrpn_r50_l234_dwxcorr": (0.05, 0.42, 0.38, 255, 8),
    "siamrpn_r50_l234_dwxcorr_otb": (0.24, 0.50, 0.25, 255, 8),
    "siamrpn_r50_l234_dwxcorr_lt": (0.05, 0.28, 0.22, 255, 8),
}


@pytest.mark.parametrize("name", sorted(PYSOT_TRACK))
def test_pysot_tracker_settings(name: str) -> None:
    cfg = load_config(name)
    k, wi, lr, inst, base = PYSOT_TRACK[name]
    t = cfg.tracker
    assert (t.penalty_k, t.window_influence, t.lr, t.instance_size, t.base_size) == (
        k,
        wi,
        lr,
        inst,
        base,
    )
    assert (t.exemplar_size, t.context_amount) == (127, 0.5)
    assert cfg.anchor.ratios == (0.33, 0.5, 1.0, 2.0, 3.0) and cfg.anchor.scales == (8.0,)
    assert cfg.name == name


def test_long_term_settings() -> None:
    t = load_config("siamrpn_r50_l234_dwxcorr_lt").tracker
    assert (t.lost_instance_size, t.confidence_low, t.confidence_high) == (831, 0.8, 0.998)
    assert t.lost_window_influence == 0.001
    assert load_config("siamrpn_r50_l234_dwxcorr").tracker.lost_instance_size is None


def test_upchannel_config() -> None:
    cfg = load_config("siamrpn_alex_upchannel")
    assert cfg.model.head["type"] == "UPChannelRPN"
    assert cfg.tracker.instance_size == 255 and cfg.score_size() == 17


def test_round_trip_and_yaml_path(tmp_path: Path) -> None:
    for name in list_configs():
        cfg = load_config(name)
        assert Config.from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "mine.yaml"
    data = load_config("siamrpn_alex_dwxcorr").to_dict()
    data["name"] = "mine"
    data["tracker"]["penalty_k"] = 0.2
    path.write_text(yaml.safe_dump(data))
    mine = load_config(path)
    assert mine.name == "mine" and mine.tracker.penalty_k == 0.2
    # two configs coexist; the built-in one is untouched
    assert load_config("siamrpn_alex_dwxcorr").tracker.penalty_k == 0.16
    assert load_config(str(path)) == mine


def _bad(mutate) -> dict:
    data = load_config("siamrpn_alex_dwxcorr").to_dict()
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), r"config: unknown key\(s\) \['extra'\]"),
        (lambda d: d["model"].update(adjust=True), r"model: unknown key\(s\) \['adjust'\]"),
        (lambda d: d["tracker"].update(INSTANCE_SIZE=255), r"tracker: unknown key\(s\)"),
        (lambda d: d["anchor"].update(num=5), "unknown anchor keys"),
        (lambda d: d["tracker"].pop("lr"), r"missing required key\(s\) \['lr'\]"),
        (lambda d: d.pop("model"), "missing 'model'"),
        (lambda d: d["model"].update(backbone="AlexNetLegacy"), "string 'type'"),
        (lambda d: d["tracker"].update(window_influence=1.5), "window_influence must lie"),
        (lambda d: d["tracker"].update(instance_size=100), "must be >= exemplar_size"),
        (lambda d: d["tracker"].update(instance_size=287.5), "positive integer"),
        (lambda d: d["tracker"].update(lr="fast"), "finite number"),
        (lambda d: d["anchor"].update(ratios=[1, 2]), "anchor_num"),
        (lambda d: d.update(name=""), "non-empty string"),
    ],
)
def test_bad_configs_are_rejected(mutate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.from_dict(_bad(mutate))


def test_unknown_names_and_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown config 'nope'.*siamrpn_alex_dwxcorr"):
        load_config("nope")
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_config(listed)


def test_unknown_part_type_names_known_ones() -> None:
    from siam_core.models.model import build_model

    data = _bad(lambda d: d["model"]["backbone"].update(type="VGG16"))
    with pytest.raises(ValueError, match=r"unknown backbone 'VGG16'.*AlexNetLegacy"):
        build_model(data)
