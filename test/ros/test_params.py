"""The node's parameter table, the shipped config file and their validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from siam_tracker_ros.params import DEFAULTS, PARAMETERS, ParamError, load_params_file, validate

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
        ({"qos_depht": 1}, "qos_depht=1: unknown tracker parameter"),
        ({"qos_depth": "1"}, "qos_depth='1': must be int"),
        ({"long_term": 1}, "long_term=1: must be bool"),
        ({"qos_depth": True}, "qos_depth=True: must be int"),
        ({"qos_reliability": "sometimes"}, "qos_reliability='sometimes': must be one of"),
        ({"buffer_size": 0}, "buffer_size=0: must lie in [1, 300]"),
        ({"mono16_max": 0.0}, "mono16_max=0.0: must lie in [1, 65535]"),
        ({"mono16_max": float("nan")}, "mono16_max=nan: must be a finite number"),
        ({"torch_threads": 1000000}, "torch_threads=1000000: must lie in [0, 256]"),
        ({"torch_threads": -5}, "torch_threads=-5: must lie in [0, 256]"),
        ({"image_topic": "bad topic!"}, "image_topic='bad topic!': not a ROS topic name"),
        ({"image_topic": "cam//raw"}, "not a ROS topic name"),
        ({"device": "cuda:x"}, "device='cuda:x': must be auto, cpu, cuda or cuda:N"),
        ({"lost_threshold": 2.0}, "lost_threshold=2.0: must lie in [-1, 1]"),
        ({"lost_threshold": -0.5}, "lost_threshold=-0.5: must be -1"),
        ({"lost_threshold": 0.9, "recover_threshold": 0.5}, "must be below recover_threshold"),
        ({"appearance_low": 1.5}, "appearance_low=1.5: must lie in [-1, 1]"),
        ({"appearance_high": -0.2}, "appearance_high=-0.2: must be -1"),
        ({"appearance_low": 0.6, "appearance_high": 0.5}, "must not exceed appearance_high"),
        ({"max_image_pixels": 0}, "max_image_pixels=0: must lie in"),
        ({"backend": "tflite"}, "backend='tflite': must be one of"),
        ({"backend": "openvino", "device": "cuda"}, "runs on the CPU"),
        ({"backend": "tensorrt", "device": "cpu"}, "backend tensorrt runs on CUDA"),
        ({"precision": "fp8"}, "precision='fp8': must be one of"),
        ({"graph_mode": "jit"}, "graph_mode='jit': must be one of"),
        ({"graph_mode": "cuda_graph", "device": "cpu"}, "CUDA graphs need"),
        ({"backend": "onnxruntime", "graph_mode": "compile"}, "an option of the torch backend"),
        ({"backend": "onnxruntime", "precision": "fp16"}, "backend onnxruntime takes"),
        ({"backend": "tensorrt", "precision": "bf16"}, "backend tensorrt takes"),
    ],
)
def test_bad_values_are_named(values, words) -> None:
    with pytest.raises(ParamError) as info:
        validate(values)
    assert words in str(info.value)


def test_backend_and_precision_default_to_auto() -> None:
    """``auto`` is resolved when the tracker is built (``siam_core.zoo.resolve_runtime``), so
    it combines with the torch backend's own options and any backend's precisions."""
    merged = validate({})
    assert (merged["backend"], merged["precision"]) == ("auto", "auto")
    assert validate({"graph_mode": "compile"})["backend"] == "auto"
    assert validate({"backend": "openvino"})["precision"] == "auto"
    assert validate({"precision": "bf16"})["backend"] == "auto"


@pytest.mark.parametrize("topic", ["image_raw", "/cam/image_raw", "~/image", "cam_1/raw"])
def test_good_topics_pass(topic: str) -> None:
    assert validate({"image_topic": topic})["image_topic"] == topic
