"""The node's parameter table, the shipped config file and their validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from siam_tracker_ros.params import DEFAULTS, PARAMETERS, load_params_file, validate

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_lists_every_parameter_with_its_default() -> None:
    import yaml

    section = yaml.safe_load((ROOT / "config" / "tracker.yaml").read_text())["/**"]
    assert section["ros__parameters"] == DEFAULTS
    assert load_params_file(ROOT / "config" / "tracker.yaml") == DEFAULTS


def test_every_parameter_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in PARAMETERS if f"`{p.name}`" not in readme]
    assert not missing, f"README lacks parameters {missing}"


def test_node_sections_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "/cam/tracker_node:\n  ros__parameters:\n    qos_depth: 3\n    mono16_max: 4095\n"
        "other_node:\n  ros__parameters:\n    ignored: 1\n"
    )
    values = load_params_file(path)
    assert values["qos_depth"] == 3 and values["mono16_max"] == 4095.0


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"qos_depht": 1}, "unknown tracker parameters"),
        ({"qos_depth": "1"}, "must be int"),
        ({"long_term": 1}, "must be bool"),
        ({"qos_depth": True}, "must be int"),
        ({"qos_reliability": "sometimes"}, "qos_reliability must be one of"),
        ({"buffer_size": 0}, "buffer_size must be >= 1"),
        ({"mono16_max": 0.0}, "mono16_max must be > 0"),
        ({"backend": "tensorrt"}, "backend must be one of"),
        ({"backend": "openvino", "device": "cuda"}, "runs on the CPU"),
    ],
)
def test_bad_values_are_named(values, words) -> None:
    with pytest.raises(ValueError, match=words):
        validate(values)
