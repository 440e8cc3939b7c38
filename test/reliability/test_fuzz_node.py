"""Property-based fuzzing of the ROS entry points: the conversions in this process, then one
live node in its own process, over a real graph.

Every case against the live node is counted: accepted, refused (with the reason's first
words), crashes (the process ended) and hangs (no answer to a service call within the time
limit). Both of the last two must stay 0. ``make fuzz`` runs this module with
``SIAM_FUZZ_EXAMPLES=2000`` (5 live properties: 10,000 cases) and prints the counts.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy missing: run `make setup` to build the venv")

from _fuzz_strategies import (
    EXAMPLES,
    any_value,
    box_values,
    compressed_bytes,
    edge_floats,
    image_fields,
)
from _live import INIT, Live, clip, have_data, ros_environment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rcl_interfaces.msg import ParameterValue
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose

from siam_tracker_ros.conversions import (
    box_to_bbox,
    compressed_to_bgr,
    image_to_bgr,
)
from siam_tracker_ros.params import DEFAULTS
from siam_tracker_ros.srv import InitTarget

pytestmark = [pytest.mark.ros, pytest.mark.slow]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
MAX_PIXELS = 200_000


# -- conversions, in this process -----------------------------------------------------------------
@FUZZ
@given(fields=image_fields(), mono16_max=st.floats(1, 65535))
def test_image_conversion_returns_bgr_or_says_why(fields, mono16_max) -> None:
    try:
        bgr = image_to_bgr(Image(**fields), mono16_max, max_pixels=2000)
    except ValueError as exc:
        assert str(exc)
        return
    assert bgr.dtype == np.uint8 and bgr.shape == (fields["height"], fields["width"], 3)
    assert fields["height"] * fields["width"] <= 2000


@FUZZ
@given(data=compressed_bytes())
def test_compressed_conversion_checks_the_header_first(data) -> None:
    try:
        bgr = compressed_to_bgr(CompressedImage(format="x", data=data), max_pixels=1000)
    except ValueError as exc:
        assert str(exc)
        return
    assert bgr.dtype == np.uint8 and bgr.shape[0] * bgr.shape[1] <= 1000


# -- one live node -------------------------------------------------------------------------------
class Tally:
    """Outcome counts of the live cases, printed at the end of the module."""

    def __init__(self) -> None:
        self.cases = 0
        self.accepted = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.crashes = 0
        self.hangs = 0

    def refuse(self, reason: str) -> None:
        self.refused[" ".join(reason.replace(":", " ").split()[:3])] += 1

    def report(self) -> str:
        lines = [
            f"live-node fuzz: {self.cases} cases, {self.accepted} accepted, "
            f"{sum(self.refused.values())} refused, {self.crashes} crashes, {self.hangs} hangs",
            "refusal reasons (first words, count):",
        ]
        lines += [f"  {count:6d}  {why}" for why, count in self.refused.most_common(25)]
        return "\n".join(lines)


TALLY = Tally()
REPORT = os.environ.get("SIAM_FUZZ_REPORT", "")


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    if not have_data():
        pytest.skip("parity weights or bag.avi absent under ../shared/data")
    tmp = tmp_path_factory.mktemp("fuzz")
    with ros_environment(tmp) as env:
        driver = Live(
            env,
            "/fuzz",
            "qos_reliability:=reliable",
            "qos_depth:=5",
            f"max_image_pixels:={MAX_PIXELS}",
        )
        try:
            driver.wait_ready()
            frame = driver.frame(clip(1)[0])
            driver.step(frame)
            assert driver.init(INIT).success
            yield driver
        finally:
            out = driver.close()
    print("\n" + TALLY.report())
    assert "Traceback" not in out, out
    assert TALLY.crashes == 0 and TALLY.hangs == 0


def checked(live: Live, call) -> object:
    """Run one case: count it, and turn a dead process or a missing answer into a failure."""
    TALLY.cases += 1
    try:
        result = call()
    except AssertionError:
        if live.proc.poll() is not None:
            TALLY.crashes += 1
        else:
            TALLY.hangs += 1
        raise
    if live.proc.poll() is not None:
        TALLY.crashes += 1
        pytest.fail(f"the node died:\n{live.output()}")
    return result


def heartbeat(live: Live) -> None:
    """Every 50 cases the node must answer within 30 s; the counts so far go to the file
    ``SIAM_FUZZ_REPORT`` names, if any (a long run can be followed, or cut short)."""
    if TALLY.cases % 50 == 0:
        checked(live, live.alive)
        if REPORT:
            Path(REPORT).write_text(TALLY.report() + "\n")


@FUZZ
@given(fields=image_fields())
def test_live_images(live, fields) -> None:
    msg = Image(**fields)
    msg.header.stamp.sec = next(live.stamp)
    checked(live, lambda: live.images.publish(msg))
    TALLY.accepted += 1  # a topic has no answer: survival is checked by the heartbeat
    live.executor.spin_once(timeout_sec=0)
    heartbeat(live)


@FUZZ
@given(
    box=box_values(),
    stamp=st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**32 - 1)),
    label=st.text(max_size=300),
    image=st.one_of(st.none(), image_fields()),
)
def test_live_init_target(live, box, stamp, label, image) -> None:
    request = InitTarget.Request(label=label)
    request.box.center.position.x, request.box.center.position.y = box[0], box[1]
    request.box.size_x, request.box.size_y = box[2], box[3]
    request.stamp.sec, request.stamp.nanosec = stamp
    if image is not None:
        request.image = Image(**image)
    response = checked(live, lambda: live.call(live.init_client, request, timeout=30.0))
    if response.success:
        TALLY.accepted += 1
    else:
        assert response.message
        TALLY.refuse(response.message)
    heartbeat(live)


@FUZZ
@given(
    box=box_values(),
    labels=st.lists(st.tuples(st.text(max_size=300), edge_floats()), max_size=3),
)
def test_live_detections(live, box, labels) -> None:
    detection = Detection2D(bbox=box_to_bbox((0, 0, 1, 1)))
    detection.bbox.center.position.x, detection.bbox.center.position.y = box[0], box[1]
    detection.bbox.size_x, detection.bbox.size_y = box[2], box[3]
    for class_id, score in labels:
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = class_id, score
        detection.results.append(hypothesis)
    checked(live, lambda: live.detector.publish(detection))
    TALLY.accepted += 1
    live.executor.spin_once(timeout_sec=0)
    heartbeat(live)


@st.composite
def parameter_values(draw) -> ParameterValue:
    """A ParameterValue of any type code 0..255, its fields filled at random."""
    value = ParameterValue(type=draw(st.one_of(st.integers(0, 9), st.integers(10, 255))))
    value.bool_value = draw(st.booleans())
    value.integer_value = draw(st.integers(-(2**63), 2**63 - 1))
    value.double_value = draw(edge_floats())
    value.string_value = draw(st.text(max_size=40))
    value.string_array_value = draw(st.lists(st.text(max_size=5), max_size=2))
    return value


# Values that would make the node reload, resubscribe or stop tracking are left out of the
# blind fuzz below (they are exercised on purpose in test_reliability.py); everything else,
# and every type, is fair game.
_SAFE = sorted(
    set(DEFAULTS)
    - {
        "model",
        "weights",
        "device",
        "long_term",
        "image_topic",
        "compressed",
        "qos_reliability",
        "qos_depth",
    }
)


@FUZZ
@given(name=st.one_of(st.sampled_from(_SAFE), st.text(max_size=12)), value=parameter_values())
def test_live_set_parameters_raw(live, name, value) -> None:
    response = checked(live, lambda: live.set_raw(name, value))
    (result,) = response.results
    if result.successful:
        TALLY.accepted += 1
    else:
        TALLY.refuse(result.reason or "refused")
    heartbeat(live)


@FUZZ
@given(values=st.dictionaries(st.sampled_from(_SAFE), any_value(), min_size=1, max_size=3))
def test_live_set_parameters_typed(live, values) -> None:
    from rclpy.parameter import Parameter

    params = []
    for name, value in values.items():
        try:
            params.append(Parameter(name, value=value).to_parameter_msg())
        except (TypeError, ValueError):  # not a ROS type at all: rclpy refuses to send it
            return
    from rcl_interfaces.srv import SetParameters

    request = SetParameters.Request(parameters=params)
    response = checked(live, lambda: live.call(live.set_client, request))
    TALLY.cases += len(params) - 1  # one case per parameter, as the other properties count
    for result in response.results:
        if result.successful:
            TALLY.accepted += 1
        else:
            TALLY.refuse(result.reason or "refused")
    heartbeat(live)


def test_live_node_still_tracks_after_the_fuzz(live) -> None:
    """After everything above, the node answers and tracks a clean frame end to end."""
    live.set(mono16_max=65535.0, buffer_size=30, max_image_pixels=MAX_PIXELS)
    frames = clip(2)
    live.step(live.frame(frames[0]))
    response = live.init(INIT)
    assert response.success, response.message
    start = time.monotonic()
    status = live.step(live.frame(frames[1]))
    assert status.state != 0 and time.monotonic() - start < 60
    assert status.errors >= 0
