"""``siam-bag`` on real rosbag2 files written from the shared sequences (no live graph here).

Bags are written by the project (``from-sequence``) from real frames; replays use pysot's
seeded ``siamrpn_alex_dwxcorr`` parity weights (a meaningless but exactly known track, cheap
enough for tests) through the node's conversion and worker code.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from vision_msgs.msg import Detection2D, Detection2DArray

from siam_core.data.sequences import load_sequence
from siam_tracker_ros.bag import cli, groundtruth
from siam_tracker_ros.bag.bagfile import (
    BagError,
    RecordedInit,
    add_topic,
    frame_stamps,
    frames,
    image_connection,
    image_message,
    open_bag,
    open_writer,
)
from siam_tracker_ros.bag.groundtruth import interpolate, read_ground_truth
from siam_tracker_ros.bag.jobs import Job, _ground_truth_init, build_tracker, recorded_run
from siam_tracker_ros.bag.replay import FrameTable, replay
from siam_tracker_ros.conversions import box_to_bbox, message_to_bgr
from siam_tracker_ros.msg import TrackerStatus

pytestmark = [pytest.mark.ros]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
BAG_SEQ = SHARED / "sequences" / "vot" / "bag"
N = 16  # frames of the test bag
CROSSING = SHARED / "sequences" / "otb" / "Crossing"
PARITY = SHARED / "parity" / "pysot_siamrpn_alex_dwxcorr" / "weights.safetensors"
ALEX = f"node:siamrpn_alex_dwxcorr:{PARITY}"


@pytest.fixture(scope="module")
def shared() -> None:
    if not BAG_SEQ.is_dir() or not CROSSING.is_dir() or not PARITY.is_file():
        pytest.skip(f"shared sequences or parity weights absent under {SHARED}")


@pytest.fixture(scope="module")
def bag_dir(tmp_path_factory, shared) -> Path:
    """The VOT ``bag`` sequence's first 16 frames as a raw-image mcap bag with its GT."""
    out = tmp_path_factory.mktemp("bags") / "vot_bag"
    assert (
        cli.main(["from-sequence", str(BAG_SEQ), str(out), "--fps", "25", "--max-frames", "16"])
        == 0
    )
    return out


def test_from_sequence_writes_frames_stamps_and_ground_truth(bag_dir: Path) -> None:
    seq = load_sequence(BAG_SEQ).head(N)
    reader = open_bag(bag_dir)
    try:
        connection = image_connection(reader, "image_raw")
        assert connection.topic == "/image_raw" and connection.msgcount == N
        decoded = list(frames(reader, connection))
        stamps = frame_stamps(reader, connection)
    finally:
        reader.close()
    assert [f.stamp_ns for f in decoded] == stamps
    assert np.diff(stamps).tolist() == [40_000_000] * (N - 1)  # 25 fps
    assert np.array_equal(message_to_bgr(decoded[5].msg), seq.read(5))  # raw bgr8: lossless
    gt = read_ground_truth(bag_dir / "groundtruth.csv", stamps, "/image_raw")
    np.testing.assert_allclose(gt.boxes, seq.gt, atol=0.01)
    assert gt.unlabelled == 0 and not gt.absent.any()


def test_compressed_sqlite3_bag_and_to_frames_round_trip(tmp_path: Path, shared) -> None:
    bag = tmp_path / "crossing"
    argv = ["from-sequence", str(CROSSING), str(bag), "--compressed", "--storage", "sqlite3"]
    assert cli.main([*argv, "--max-frames", "12"]) == 0
    assert list(bag.glob("*.db3"))
    out = tmp_path / "frames" / "Crossing"
    assert cli.main(["to-frames", str(bag), str(out), "--topic", "image_raw"]) == 0
    seq = load_sequence(out)  # what siam-eval reads: the OTB layout
    assert seq.layout == "otb" and len(seq) == 12
    np.testing.assert_allclose(seq.gt, load_sequence(CROSSING).gt[:12], atol=0.01)
    original = load_sequence(CROSSING).read(3).astype(int)
    assert np.abs(seq.read(3).astype(int) - original).mean() < 4  # JPEG in the bag


def test_every_frame_replay_is_deterministic_and_follows_the_parity_track(bag_dir) -> None:
    tables = []
    for _ in range(2):
        reader = open_bag(bag_dir)
        try:
            connection = image_connection(reader, "image_raw")
            job = Job(str(bag_dir), "image_raw", "alex", ALEX, "every-frame", 1.0, "", "", 0, "cpu")
            inits = _ground_truth_init(reader, connection, job)
            table, info = replay(build_tracker(ALEX), "alex", frames(reader, connection), N, inits)
        finally:
            reader.close()
        assert info.processed == N and info.dropped == 0 and info.bad_frames == 0
        tables.append(table)
    a, b = tables
    assert np.array_equal(a.boxes, b.boxes, equal_nan=True)
    assert np.array_equal(a.state, b.state) and a.init[0] and not a.init[1:].any()
    assert a.state[0] == 0 and (a.state[1:] == 1).all()  # IDLE on the init frame, then TRACKING


def test_eval_report_with_two_trackers_and_resume(bag_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["eval", str(bag_dir), "--tracker", f"alex={ALEX}", "--tracker", "KCF"]
    argv += ["--max-frames", "8"]  # two processes, one tracker each
    assert cli.main([*argv, "--out", str(out), "--workers", "2"]) == 0
    report = (out / "report.md").read_text()
    assert "Success AUC" in report and "| alex |" in report and "| KCF |" in report
    for name in ("summary.csv", "per_sequence.csv", "success.png", "precision.png"):
        assert (out / name).is_file(), name
    assert (out / "timeline_vot_bag.png").is_file() and "## Agreement between trackers" in report
    with (out / "run_stats.csv").open() as handle:
        stats = {row["tracker"]: row for row in csv.DictReader(handle)}
    assert stats["KCF"]["processed"] == "8" and stats["KCF"]["dropped"] == "0"
    assert float(stats["alex"]["time_tracking"]) > 0.9
    table = FrameTable.read_csv(out / "results" / "every-frame" / "vot_bag" / "alex.csv")
    assert len(table) == 8
    # A second eval finds the results and does not replay again.
    mtime = (out / "results" / "every-frame" / "vot_bag" / "alex.csv").stat().st_mtime_ns
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert (out / "results" / "every-frame" / "vot_bag" / "alex.csv").stat().st_mtime_ns == mtime


def test_realtime_replay_drops_what_the_tracker_cannot_follow(bag_dir: Path) -> None:
    """At 40× the recorded rate (1000 fps) the worker must skip frames, as the node does."""
    reader = open_bag(bag_dir)
    try:
        connection = image_connection(reader, "image_raw")
        stream = frames(reader, connection)
        first = next(iter(frames(reader, connection)))
        gt = load_sequence(BAG_SEQ).gt[0]
        inits = [RecordedInit(first.log_ns + 1, first.stamp_ns, tuple(gt), "bag")]
        table, info = replay(build_tracker(ALEX), "alex", stream, N, inits, "realtime", 40.0)
    finally:
        reader.close()
    assert info.dropped > 0 and info.processed + info.dropped == N
    assert int(table.processed.sum()) == info.processed
    assert info.inits_applied == 1


def test_ground_truth_import_formats_and_errors(bag_dir: Path, tmp_path: Path) -> None:
    reader = open_bag(bag_dir)
    try:
        stamps = frame_stamps(reader, image_connection(reader, "image_raw"))
    finally:
        reader.close()
    text = tmp_path / "short.txt"
    text.write_text("\n".join("10,20,30,40" for _ in range(N - 4)) + "\n")
    with pytest.raises(BagError, match=rf"short.txt: {N - 4} boxes, but /image_raw has {N} frames"):
        read_ground_truth(text, stamps, "/image_raw")
    by_stamp = tmp_path / "stamps.csv"
    by_stamp.write_text(
        f"stamp_ns,x,y,w,h,absent\n{stamps[0]},1,2,30,40,0\n{stamps[3]},,,,,1\n123,1,1,1,1,0\n"
    )
    gt = read_ground_truth(by_stamp, stamps, "/image_raw")
    assert gt.unmatched_rows == 1 and gt.absent[3] and gt.unlabelled == N - 2
    assert gt.boxes[0].tolist() == [1, 2, 30, 40]
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("stamp_ns,x,y,w,h\n5,1,1,1,1\n")
    with pytest.raises(BagError, match="none of its 1 rows matches a frame of /image_raw"):
        read_ground_truth(nothing, stamps, "/image_raw")
    copy = tmp_path / "imported"
    shutil.copytree(bag_dir, copy)
    (copy / "groundtruth.csv").unlink()
    assert cli.main(["import-gt", str(copy), str(by_stamp)]) == 0
    assert read_ground_truth(copy / "groundtruth.csv", stamps, "t").absent[3]


def test_headless_label_interpolates_keyframes(bag_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "labelled"
    shutil.copytree(bag_dir, copy)
    keys = tmp_path / "keys.csv"
    keys.write_text("frame,x,y,w,h\n0,100,100,50,50\n6,200,100,70,50\n9,,,,\n12,10,10,20,20\n")
    assert cli.main(["label", str(copy), "--keyframes", str(keys)]) == 0
    reader = open_bag(copy)
    try:
        stamps = frame_stamps(reader, image_connection(reader, "image_raw"))
    finally:
        reader.close()
    gt = read_ground_truth(copy / "groundtruth.csv", stamps, "/image_raw")
    np.testing.assert_allclose(gt.boxes[3], [150, 100, 60, 50])
    assert gt.absent[9:12].all() and not gt.absent[:9].any()
    assert np.isfinite(gt.boxes[12]).all()
    # Unlabelled: between a box and a later absent keyframe, and after the last keyframe.
    assert np.flatnonzero(~gt.labelled).tolist() == [7, 8, 13, 14, 15]
    assert interpolate({}, 4, "x").unlabelled == 4
    assert "HighGUI" in _label_without_display(copy)


def _label_without_display(bag: Path) -> str:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.MonkeyPatch.context() as mp:
        mp.delenv("DISPLAY", raising=False)
        mp.delenv("WAYLAND_DISPLAY", raising=False)
        assert cli.main(["label", str(bag)]) == 2
    return err.getvalue()


def test_long_term_ground_truth_gives_the_lost_aware_report(bag_dir, tmp_path) -> None:
    copy = tmp_path / "absent"
    shutil.copytree(bag_dir, copy)
    rows = (copy / "groundtruth.csv").read_text().splitlines()
    for i in (10, 11, 12):  # mark three frames absent
        cells = rows[i + 1].split(",")
        rows[i + 1] = ",".join(cells[:2] + [""] * 4 + ["1"])
    (copy / "groundtruth.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "report"
    assert cli.main(["eval", str(copy), "--tracker", "KCF", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "(vot-lt)" in report and "F-score" in report and "absent_frames" in report
    assert (out / "precision_recall.png").is_file()


def test_bad_bags_give_clear_errors(bag_dir: Path, tmp_path: Path, capsys) -> None:
    # Being written / recorder killed: storage without metadata.yaml.
    open_one = tmp_path / "open"
    shutil.copytree(bag_dir, open_one)
    (open_one / "metadata.yaml").unlink()
    with pytest.raises(BagError, match="still being written"):
        open_bag(open_one)
    # Truncated storage file.
    cut = tmp_path / "cut"
    shutil.copytree(bag_dir, cut)
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagError, match=r"cut.*truncated or corrupt.*siam-bag repair"):
        reader = open_bag(cut)
        try:
            list(frames(reader, image_connection(reader, "image_raw")))
        finally:
            reader.close()
    # The recorder died: cut storage and no metadata.yaml. repair rescues what is complete.
    (cut / "metadata.yaml").unlink()
    assert cli.main(["repair", str(cut), str(tmp_path / "rescued")]) == 0
    reader = open_bag(tmp_path / "rescued")
    try:
        connection = image_connection(reader, "image_raw")
        rescued = list(frames(reader, connection))
    finally:
        reader.close()
    assert 0 < len(rescued) < N and connection.msgcount == len(rescued)
    seq = load_sequence(BAG_SEQ)
    assert all(np.array_equal(message_to_bgr(f.msg), seq.read(f.index)) for f in rescued)
    # A topic that is not in the bag names the bag and what it holds.
    reader = open_bag(bag_dir)
    try:
        with pytest.raises(BagError, match=r"no image topic 'camera/color'.*/image_raw"):
            image_connection(reader, "camera/color")
    finally:
        reader.close()
    # eval keeps going: a broken bag is reported, the good one scored.
    out = tmp_path / "report"
    code = cli.main(["eval", str(bag_dir), str(open_one), "--tracker", "KCF", "--out", str(out)])
    assert code == 1
    assert "still being written" in capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert "| KCF |" in report and "still being written" in report


def test_unknown_encoding_frames_are_counted_not_fatal(tmp_path: Path, shared) -> None:
    seq = load_sequence(CROSSING).head(6)
    bag = tmp_path / "yuv"
    writer = open_writer(bag)
    connection = add_topic(writer, "/image_raw", "sensor_msgs/msg/Image")
    for k in range(6):
        msg = image_message(seq.read(k), 10**9 + k * 10**8, "cam", False)
        if k in (2, 4):
            msg.encoding = "yuv422"
        writer.write(connection, 10**9 + k * 10**8, serialize_message(msg))
    writer.close()
    (bag / "groundtruth.csv").write_text(
        "frame,x,y,w,h\n" + "".join(f"{k},{','.join(map(str, seq.gt[k]))}\n" for k in range(6))
    )
    reader = open_bag(bag)
    try:
        connection = image_connection(reader, "image_raw")
        first = next(iter(frames(reader, connection)))
        init = RecordedInit(first.log_ns + 1, first.stamp_ns, tuple(seq.gt[0]), "x")
        table, info = replay(build_tracker("KCF"), "KCF", frames(reader, connection), 6, [init])
    finally:
        reader.close()
    assert info.bad_frames == 2 and info.processed == 4
    assert "unsupported image encoding 'yuv422'" in info.warnings[0]
    assert not table.processed[2] and table.processed[3]


def test_without_ground_truth_the_recorded_init_defines_the_target(tmp_path, shared) -> None:
    """A field bag: images and the init the node accepted, no GT. The report has latency,
    states and agreement, no accuracy; a bag with neither GT nor init says what is missing."""
    seq = load_sequence(CROSSING).head(8)
    bag = tmp_path / "field"
    writer = open_writer(bag, "sqlite3")
    images = add_topic(writer, "/cam/image_raw", "sensor_msgs/msg/Image")
    inits = add_topic(writer, "/cam/init_accepted", "vision_msgs/msg/Detection2D")
    stamps = [10**9 + k * 10**8 for k in range(8)]
    for k, stamp in enumerate(stamps):
        writer.write(
            images, stamp, serialize_message(image_message(seq.read(k), stamp, "c", False))
        )
        if k == 2:  # the operator chose the target on frame 2, a little later
            init = Detection2D(bbox=box_to_bbox(seq.gt[2]), id="walker-1")
            init.header.stamp.sec, init.header.stamp.nanosec = divmod(stamp, 10**9)
            writer.write(inits, stamp + 5 * 10**7, serialize_message(init))
    writer.close()
    out = tmp_path / "report"
    argv = ["eval", str(bag), "--topic", "image_raw", "--tracker", "KCF", "--tracker", "CSRT"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "Success AUC" not in report and "accuracy not scored" in report
    assert "## Runs: frames, latency and states" in report and "| KCF | CSRT |" in report
    table = FrameTable.read_csv(out / "results" / "every-frame" / "field" / "CSRT.csv")
    assert table.init.tolist() == [False, False, True] + [False] * 5
    assert not np.isfinite(table.boxes[:2]).any() and np.isfinite(table.boxes[2:]).all()

    bare = tmp_path / "bare"
    assert cli.main(["from-sequence", str(CROSSING), str(bare), "--max-frames", "3"]) == 0
    (bare / "groundtruth.csv").unlink()
    code = cli.main(["eval", str(bare), "--tracker", "KCF", "--out", str(tmp_path / "r2")])
    assert code == 2  # nothing finished: no init recorded and no ground truth


def test_recorded_multi_target_run_scores_the_primary_target(tmp_path, shared) -> None:
    """A node run with two targets: the recorded box of a frame is the detection of the
    target ``status`` reports, never another target's (here while the primary is LOST)."""
    seq = load_sequence(CROSSING).head(3)
    bag = tmp_path / "multi"
    writer = open_writer(bag, "sqlite3")
    images = add_topic(writer, "/image_raw", "sensor_msgs/msg/Image")
    status = add_topic(writer, "/status", "siam_tracker_ros/msg/TrackerStatus")
    dets = add_topic(writer, "/detections", "vision_msgs/msg/Detection2DArray")
    boxes = {"a": (10.0, 20.0, 30.0, 40.0), "b": (100.0, 50.0, 20.0, 20.0)}
    states = [TrackerStatus.TRACKING, TrackerStatus.LOST, TrackerStatus.RECOVERED]
    for k, state in enumerate(states):
        stamp = 10**9 + k * 10**8
        image = image_message(seq.read(k), stamp, "c", False)
        writer.write(images, stamp, serialize_message(image))
        msg = TrackerStatus(header=image.header, state=state, target_id="a", score=0.5)
        writer.write(status, stamp + 10**6, serialize_message(msg))
        shown = ["b"] if state == TrackerStatus.LOST else ["a", "b"]
        found = [Detection2D(id=tid, bbox=box_to_bbox(boxes[tid])) for tid in shown]
        array = Detection2DArray(header=image.header, detections=found)
        writer.write(dets, stamp + 2 * 10**6, serialize_message(array))
    writer.close()
    reader = open_bag(bag)
    try:
        table, _ = recorded_run(reader, image_connection(reader, "image_raw"), 3)
    finally:
        reader.close()
    np.testing.assert_allclose(table.boxes[0], boxes["a"])
    assert not np.isfinite(table.boxes[1]).any()  # "b" is not the target being scored
    np.testing.assert_allclose(table.boxes[2], boxes["a"])
    assert table.state.tolist() == states


def test_gui_label_loop_with_scripted_keys(bag_dir: Path, monkeypatch) -> None:
    """The HighGUI mode's loop, driven by scripted key presses. OpenCV here is the headless
    wheel and there is no display, so the window calls are replaced (the one mock, for what
    cannot exist here); frames, keyframes, stepping and interpolation are real."""
    keys = iter([ord("r"), ord("n"), ord("n"), ord("r"), ord("n"), ord("a"), ord("b"), ord("q")])
    boxes = iter([(100, 100, 40, 40), (140, 100, 40, 40)])
    shown: list[tuple[int, ...]] = []
    monkeypatch.setattr(groundtruth.cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(groundtruth.cv2, "destroyWindow", lambda *a: None)
    monkeypatch.setattr(groundtruth.cv2, "imshow", lambda _w, image: shown.append(image.shape))
    monkeypatch.setattr(groundtruth.cv2, "waitKey", lambda *_: next(keys))
    monkeypatch.setattr(groundtruth.cv2, "selectROI", lambda *a, **k: next(boxes))
    reader = open_bag(bag_dir)
    try:
        stream = frames(reader, image_connection(reader, "image_raw"))
        saved: list[dict] = []
        result = groundtruth.label_gui(stream, N, {}, 5, saved.append)
    finally:
        reader.close()
    # Keyframes every 5 frames: box on 0, box on 10, absent on 15, then back and quit.
    assert sorted(result) == [0, 10, 15] and result[15] is None
    gt = interpolate(result, N, "gui")
    np.testing.assert_allclose(gt.boxes[5], [120, 100, 40, 40])
    assert gt.absent[15] and len(shown) == 8 and shown[0] == (360, 480, 3)
