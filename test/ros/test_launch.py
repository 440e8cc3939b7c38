"""The launch file's decisions (launch_config), and the launch file itself where launch exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from siam_tracker_ros.launch_config import LAUNCH_ARGUMENTS, tracker_node_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config" / "tracker.yaml"


def test_defaults_start_the_plain_node_with_the_shipped_parameters() -> None:
    settings = tracker_node_settings(DEFAULT)
    assert settings.executable == "tracker_node" and settings.name == "tracker_node"
    assert settings.parameters == [str(DEFAULT)] and settings.remappings == []
    assert settings.namespace == ""


def test_arguments_override_and_remap(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text("/**:\n  ros__parameters:\n    qos_depth: 2\n")
    settings = tracker_node_settings(
        DEFAULT,
        model="siamrpn_alex_dwxcorr",
        weights="/w/model.pth",
        params_file=str(own),
        image_topic="/camera/color/image_raw",
        namespace="front",
        lifecycle="true",
    )
    assert settings.executable == "lifecycle_tracker_node" and settings.namespace == "front"
    assert settings.parameters == [
        str(own),
        {"model": "siamrpn_alex_dwxcorr", "weights": "/w/model.pth"},
    ]
    assert settings.remappings == [
        ("image_raw", "/camera/color/image_raw"),
        ("image_raw/compressed", "/camera/color/image_raw/compressed"),
    ]


def test_bad_arguments_fail_in_the_launch(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="params_file not found"):
        tracker_node_settings(DEFAULT, params_file=str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    qos_dept: 2\n")
    with pytest.raises(ValueError, match="unknown tracker parameter"):
        tracker_node_settings(DEFAULT, params_file=str(bad))
    with pytest.raises(ValueError, match="expected true or false"):
        tracker_node_settings(DEFAULT, lifecycle="maybe")


def test_launch_file_declares_the_arguments() -> None:
    """Runs only where ROS 2's launch and launch_ros exist (not on PyPI: skipped on a bare
    machine); there the launch file must declare exactly the arguments launch_config knows."""
    for module in ("launch", "launch_ros"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"'{module}' is not installed (ROS 2 distribution only, not on PyPI)")
    spec = importlib.util.spec_from_file_location(
        "tracker_launch", ROOT / "launch" / "tracker.launch.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {a.name for a in description.get_launch_arguments()}
    assert declared == set(LAUNCH_ARGUMENTS)
