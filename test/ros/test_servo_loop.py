"""Closed loop over a real graph: simulated pan-tilt camera, tracker node, servo (three processes).

The camera looks into UAV123's wakeboard7 (1280x720, real frames) through a distorted 640x480
viewport that starts 7.6 degrees off the wakeboarder; the servo sees only the tracker's
``target`` messages. Lockstep on simulated time (one frame of actuation delay), so the outcome
does not depend on how fast this machine tracks (two runs gave identical numbers). The ground
truth scores where the camera pointed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from siam_core.zoo import DEFAULT_WEIGHTS
from siam_tracker_ros.servo import AxisPI
from siam_tracker_ros.servo_demo import SEQUENCE, run_loop, sign_changes_per_s

pytestmark = [pytest.mark.ros]


@pytest.mark.slow
def test_closed_loop_keeps_the_target_centred(ros_env: dict[str, str], tmp_path: Path) -> None:
    if not SEQUENCE.is_dir():
        pytest.skip(f"{SEQUENCE} absent: the shared data is not beside the repository")
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"default model {DEFAULT_WEIGHTS} absent")
    summary = run_loop(tmp_path / "servo", ros_env, timeout=400.0)
    print(summary)
    assert summary["frames"] == 67
    assert summary["initial_error_deg"] > 7.0
    # After 0.5 s the target stays within 3 degrees of the optical axis in at least 90% of the
    # frames (the viewport's half-width is 15 degrees) and within 2 degrees in most of them
    # (measured: 100%, 82%, median 1.41 degrees).
    assert summary["within_3deg"] >= 0.9, summary
    assert summary["within_2deg"] >= 0.6, summary
    assert summary["error_deg_median"] < 2.0, summary
    # No oscillation: beyond the +-0.5 degree deadband the error changes sign at most 6 times
    # a second on either axis, i.e. nothing like a limit cycle at 3 Hz or faster (measured 4.2
    # and 1.8: the loop follows the wakeboarder's weaving about once a second).
    assert summary["azimuth_sign_changes_per_s"] <= 6.0, summary
    assert summary["elevation_sign_changes_per_s"] <= 6.0, summary
    # The tracker's own bearing agrees with the truth to a fraction of the target's size
    # (about 2 degrees tall; measured median 0.50 degrees).
    assert summary["bearing_error_deg_median"] < 1.0, summary
    assert summary["loop_latency_ms_median"] > 0
    assert (tmp_path / "servo" / "angle_error.png").stat().st_size > 10_000


def test_pi_axis_limits_and_no_wind_up() -> None:
    # Acceleration limit: from rest the output grows by at most max_accel * dt per step.
    axis = AxisPI(kp=4.0, ki=2.0, max_rate=1.0, max_accel=10.0)
    outputs = [axis.step(1.0, 0.05) for _ in range(10)]
    assert outputs[0] == pytest.approx(0.5)  # 10 rad/s^2 * 0.05 s
    assert max(outputs) == pytest.approx(1.0)  # rate limit
    assert axis.integral == pytest.approx(0.0)  # saturated all along: nothing integrated
    # Small errors: plain PI, the integral accumulates.
    axis = AxisPI(kp=4.0, ki=2.0, max_rate=1.0, max_accel=100.0)
    first = axis.step(0.01, 0.1)
    assert first == pytest.approx(4.0 * 0.01 + 2.0 * 0.001)
    assert axis.step(0.01, 0.1) == pytest.approx(4.0 * 0.01 + 2.0 * 0.002)
    # No target: the command decays to zero at the acceleration limit, the integral is cleared.
    assert axis.step(None, 0.1) == 0.0 and axis.integral == 0.0


def test_sign_changes_ignore_the_deadband() -> None:
    t = np.linspace(0, 2, 61)
    wave = np.sin(2 * math.pi * 1.5 * t)  # 3 zero crossings a second
    assert sign_changes_per_s(wave, 2.0, 0.1) == pytest.approx(3.0, abs=0.5)
    assert sign_changes_per_s(0.05 * wave, 2.0, 0.1) == 0.0
