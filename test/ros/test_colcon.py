"""``colcon build`` of this repository in a fresh workspace, against the ros-* wheels' ament.

That is as close to a ROS 2 distribution as a bare machine gets. It proves that the package
metadata (package.xml, CMakeLists.txt) is what colcon and ament_cmake accept; that the one
package generates its interfaces and installs the Python packages, node executables, launch
file and configs where ``ros2 run``/``ros2 launch`` look for them; and that the install space,
sourced on its own, imports the merged ``siam_tracker_ros`` (code + generated messages) and
runs a node executable. It cannot prove what only a distribution has: ``ros2 launch`` (the
launch packages are not on PyPI), rosdep keys, or the distribution's own vision_msgs (the
vendored copy stands in, with the same type hashes).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".venv", ".git", "out", "runs", "build", "install", "log", "__pycache__", ".pytest_cache"
)


def _setup_env():
    """tools/setup_env.py, whose CMake environment for the wheels this build shares."""
    spec = importlib.util.spec_from_file_location("setup_env", ROOT / "tools" / "setup_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_colcon_builds_and_installs_the_package(tmp_path: Path) -> None:
    colcon = Path(sys.executable).parent / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in the venv (make setup: requirements/dev.txt)")
    missing = [tool for tool in ("cmake", "make", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"build tools missing: {missing} (make setup installs them as root)")
    setup_env = _setup_env()
    ws = tmp_path / "ws"
    shutil.copytree(ROOT, ws / "src" / "siam_tracker", ignore=SKIP)
    env = setup_env.cmake_env()
    cmd = [str(colcon), "--log-base", str(ws / "log"), "build", "--base-paths", str(ws / "src")]
    cmd += ["--build-base", str(ws / "build"), "--install-base", str(ws / "install")]
    cmd += ["--event-handlers", "console_direct-", "--cmake-args"]
    cmd += [
        f"-DPython3_EXECUTABLE={sys.executable}",
        f"-DCMAKE_PROJECT_INCLUDE={setup_env.CMAKE_HELPER}",
        "-DBUILD_TESTING=OFF",
    ]
    done = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert "Finished <<< siam_tracker_ros" in done.stdout, done.stdout[-3000:]

    prefix = ws / "install" / "siam_tracker_ros"
    share = prefix / "share" / "siam_tracker_ros"
    for path in ("package.xml", "launch/tracker.launch.py", "config/tracker.yaml"):
        assert (share / path).is_file(), path
    assert (share / "config" / "fastdds_localhost.xml").is_file()
    index = prefix / "share" / "ament_index" / "resource_index" / "packages" / "siam_tracker_ros"
    assert index.is_file()
    for script in ("tracker_node", "lifecycle_tracker_node"):
        assert os.access(prefix / "lib" / "siam_tracker_ros" / script, os.X_OK), script

    # The install space on its own: its siam_tracker_ros (code and generated messages merged)
    # and siam_core come first, and a node executable runs.
    probe = (
        "import siam_core, siam_tracker_ros; from siam_tracker_ros.msg import TrackerStatus; "
        "from siam_tracker_ros.srv import InitTarget; from siam_core.config import load_config; "
        "load_config('siamrpn_alex_dwxcorr'); "
        "print(siam_tracker_ros.__file__); print(siam_core.__file__); "
        "print(TrackerStatus.__module__)"
    )
    script = prefix / "lib" / "siam_tracker_ros" / "tracker_node"
    shell = f'. "{ws / "install" / "setup.sh"}" && python -c "{probe}" && "{script}" --help'
    run_env = {k: v for k, v in env.items() if k not in ("AMENT_PREFIX_PATH", "PYTHONPATH")}
    ran = subprocess.run(
        ["bash", "-c", shell], cwd=tmp_path, env=run_env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith(str(prefix)) and lines[1].startswith(str(prefix)), lines
    assert lines[2] == "siam_tracker_ros.msg._tracker_status"
    assert "usage: tracker_node" in ran.stdout
