"""The package layout promises: a ROS-free core, complete manifests, console scripts."""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROS_MODULES = {
    "rclpy",
    "rosidl_runtime_py",
    "rosbags",
    "ament_index_python",
    "launch",
    "launch_ros",
    "builtin_interfaces",
    "std_msgs",
    "std_srvs",
    "sensor_msgs",
    "geometry_msgs",
    "vision_msgs",
    "lifecycle_msgs",
    "cv_bridge",
    "siam_tracker_ros",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_never_imports_ros_in_source() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & ROS_MODULES)
        for path in (ROOT / "siam_core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_never_imports_ros_at_run_time() -> None:
    """Import every siam_core module in a fresh interpreter; no ROS module may get loaded."""
    code = (
        "import importlib, pkgutil, sys, siam_core\n"
        "for m in pkgutil.walk_packages(siam_core.__path__, 'siam_core.'):\n"
        "    if not m.name.rsplit('.', 1)[-1].startswith('__'):\n"
        "        importlib.import_module(m.name)\n"
        f"print(sorted({{n.split('.')[0] for n in sys.modules}} & set({sorted(ROS_MODULES)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def declared(package_xml: Path) -> dict[str, set[str]]:
    root = ET.parse(package_xml).getroot()
    assert root.get("format") == "3"
    kinds: dict[str, set[str]] = {}
    for element in root:
        if element.tag.endswith("depend"):
            kinds.setdefault(element.tag, set()).add(element.text or "")
    return kinds


def test_package_xml_declares_every_real_dependency() -> None:
    deps = declared(ROOT / "package.xml")
    every = set().union(*deps.values())
    for name in (
        "rclpy",
        "sensor_msgs",
        "std_msgs",
        "std_srvs",
        "geometry_msgs",
        "vision_msgs",
        "builtin_interfaces",
        "cv_bridge",
        "launch_ros",
        "launch_testing",
        "rosidl_default_generators",
        "rosidl_default_runtime",
        "ament_cmake_python",
    ):
        assert name in every, name
    assert "rosidl_default_generators" in deps["buildtool_depend"]


@pytest.mark.parametrize("manifest", ["package.xml", "vendor/vision_msgs/package.xml"])
def test_manifests_parse_with_catkin_pkg(manifest: str) -> None:
    catkin_pkg = pytest.importorskip("catkin_pkg.package", reason="catkin_pkg comes with setup")
    package = catkin_pkg.parse_package(ROOT / manifest)
    package.validate()
    assert package.package_format == 3


def test_vendored_vision_msgs_stays_out_of_colcon_workspaces() -> None:
    """A ROS install provides vision_msgs; colcon must not build our copy over it."""
    assert (ROOT / "vendor" / "vision_msgs" / "COLCON_IGNORE").exists()


def test_interface_definitions_are_in_the_layout() -> None:
    assert (ROOT / "msg" / "TrackerStatus.msg").is_file()
    assert (ROOT / "srv" / "InitTarget.srv").is_file()
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert '"msg/TrackerStatus.msg"' in cmake and '"srv/InitTarget.srv"' in cmake
