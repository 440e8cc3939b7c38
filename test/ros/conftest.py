"""Fixtures for tests over a real rclpy graph (ros-* wheels on a bare machine, or a ROS distro).

Each test gets its own ROS_DOMAIN_ID and a ROS_LOG_DIR inside its temp dir, so test runs do not
see each other's nodes and leave no logs behind. Peer processes inherit that environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy missing: run `make setup` to build the venv")

from _domains import next_domain  # noqa: E402

import siam_tracker_ros  # noqa: E402,F401  (applies the loopback-only DDS profile)

PEERS = Path(__file__).parent / "peers"


@pytest.fixture
def ros_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's ROS environment, applied to this process and returned for subprocesses."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(next_domain()))
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "ros_log"))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return dict(os.environ)


@pytest.fixture
def ros_context(ros_env: dict[str, str]) -> Iterator[rclpy.context.Context]:
    """An initialised rclpy context of its own (no global rclpy state shared between tests)."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


class Peer:
    """A peer node in a separate Python process; killed at teardown if still running."""

    def __init__(self, script: str, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PEERS / script), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish(self, timeout: float = 30.0) -> str:
        """Wait for the peer to exit; return its output, failing the test if it failed."""
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"peer failed ({self.proc.returncode}):\n{out}"
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def spawn_peer(ros_env: dict[str, str]) -> Iterator:
    peers: list[Peer] = []

    def spawn(script: str, *args: str) -> Peer:
        peer = Peer(script, list(args), ros_env)
        peers.append(peer)
        return peer

    yield spawn
    for peer in peers:
        peer.kill()
