"""What ``launch/tracker.launch.py`` configures, as plain data, so it is testable without launch.

The launch file only turns launch arguments into a call of :func:`tracker_node_settings` and the
result into a ``launch_ros`` ``Node`` or ``LifecycleNode``; everything else is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from siam_tracker_ros.params import DEFAULTS, load_params_file

PACKAGE = "siam_tracker_ros"
NODE_NAME = "tracker_node"
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    "model": ("", "model config name or YAML; empty: from params_file (default model)"),
    "weights": ("", "weights file; empty: from params_file"),
    "params_file": ("", "ROS parameters YAML; empty: the package's config/tracker.yaml"),
    "image_topic": ("", "camera topic to remap the node's image_raw to; empty: no remap"),
    "namespace": ("", "namespace of the node and all its topics and services"),
    "lifecycle": ("false", "true: start the managed (lifecycle) node"),
}


@dataclass(frozen=True)
class NodeSettings:
    executable: str
    name: str
    namespace: str
    parameters: list = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)


def as_bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"expected true or false, got '{text}'")
    return value in ("true", "1")


def tracker_node_settings(
    default_params_file: str | Path,
    model: str = "",
    weights: str = "",
    params_file: str = "",
    image_topic: str = "",
    namespace: str = "",
    lifecycle: str = "false",
) -> NodeSettings:
    """The node to start: the params file (validated now, not at node start-up), then
    ``model``/``weights`` overrides, and remappings of the image topics."""
    path = Path(params_file or default_params_file)
    if not path.is_file():
        raise FileNotFoundError(f"params_file not found: {path}")
    load_params_file(path, NODE_NAME)  # fail in the launch, with the file named
    overrides = {k: v for k, v in (("model", model), ("weights", weights)) if v}
    remappings = []
    if image_topic:
        base = DEFAULTS["image_topic"]
        remappings = [(base, image_topic), (f"{base}/compressed", f"{image_topic}/compressed")]
    return NodeSettings(
        executable="lifecycle_tracker_node" if as_bool(lifecycle) else "tracker_node",
        name=NODE_NAME,
        namespace=namespace,
        parameters=[str(path), *([overrides] if overrides else [])],
        remappings=remappings,
    )
