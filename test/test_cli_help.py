"""Every console script answers ``--help`` at once: without loading PyTorch (7-9 s on a busy
machine) and, for the nodes, without starting anything on a ROS graph.

The scripts are read from setup.py, so a new console script is covered as soon as it exists.
Checked by what the process imported (``sys.modules``), never by timing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = re.findall(
    r'"([\w-]+) = ([\w.]+):(\w+)"', (ROOT / "setup.py").read_text(encoding="utf-8")
)
PROBE = """
import sys
sys.argv = [{name!r}, "--help"]
from {module} import {function} as entry
try:
    code = entry()
except SystemExit as stop:
    code = stop.code
print("TORCH_LOADED", "torch" in sys.modules)
print("RCLPY_INITIALISED", "rclpy" in sys.modules and sys.modules["rclpy"].ok())
sys.exit(code or 0)
"""


def test_setup_declares_the_scripts() -> None:
    names = {name for name, _, _ in SCRIPTS}
    assert {"siam-track", "siam-train", "siam-eval", "siam-tracker-node", "siam-demo"} <= names


@pytest.mark.parametrize(("name", "module", "function"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_help_without_torch_or_a_ros_graph(name: str, module: str, function: str) -> None:
    code = PROBE.format(name=name, module=module, function=function)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "usage:" in out, out
    assert "TORCH_LOADED False" in out, f"{name} --help imported torch"
    assert "RCLPY_INITIALISED True" not in out, f"{name} --help started ROS"
    assert f"{name} [" in out or f"usage: {name}" in out, out
