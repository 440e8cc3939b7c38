"""Frame sources on real data: the bag.avi clip and OTB / VOT frame folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from _siamrpn_data import BAG, SEQUENCES, need, read_video

from siam_core.io.frames import FrameSource, numbered_frames, read_frames


def test_video_file() -> None:
    source = FrameSource(need(BAG))
    assert source.kind == "video" and len(source) == 196 and source.fps == pytest.approx(25)
    first = next(iter(source))
    assert first.dtype == np.uint8 and first.shape == (360, 480, 3)
    np.testing.assert_array_equal(first, read_video(BAG, limit=1)[0])
    assert sum(1 for _ in source) == 196  # iterating again restarts


def test_otb_and_vot_folders() -> None:
    otb = FrameSource(need(SEQUENCES / "otb" / "Crossing"))  # frames live in img/
    assert otb.kind == "folder" and len(otb) == 120 and otb.fps is None
    frame = next(iter(otb))
    np.testing.assert_array_equal(
        frame, cv2.imread(str(SEQUENCES / "otb" / "Crossing" / "img" / "0001.jpg"))
    )
    vot = numbered_frames(need(SEQUENCES / "vot" / "bag"))  # color/00000001.jpg ...
    assert len(vot) == 196 and vot[0].name == "00000001.jpg" and vot[-1].name == "00000196.jpg"


def test_numeric_order_not_lexical(tmp_path: Path) -> None:
    src = need(SEQUENCES / "otb" / "Crossing" / "img")
    for n in (1, 2, 10):
        shutil.copy(src / f"{n:04d}.jpg", tmp_path / f"frame_{n}.jpg")
    names = [p.name for p in numbered_frames(tmp_path)]
    assert names == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    frames = list(FrameSource(tmp_path))
    np.testing.assert_array_equal(frames[2], cv2.imread(str(src / "0010.jpg")))


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such video file or frame folder"):
        FrameSource(tmp_path / "absent.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        FrameSource(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ValueError, match=r"cannot open|no readable frames"):
        FrameSource(text)
    unnumbered = tmp_path / "unnumbered"
    unnumbered.mkdir()
    (unnumbered / "cover.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="must contain a frame number"):
        numbered_frames(unnumbered)
    dup = tmp_path / "dup"
    dup.mkdir()
    for name in ("a_1.jpg", "b_01.png"):
        (dup / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="same frame number 1"):
        numbered_frames(dup)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "0001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read frame image"):
        list(FrameSource(corrupt))


def test_read_frames_takes_the_first_frames_or_says_how_many_there_are() -> None:
    frames = read_frames(need(BAG), 3)
    assert len(frames) == 3 and frames[0].shape == (360, 480, 3)
    with pytest.raises(ValueError, match="has only 196 frames, 500 asked for"):
        read_frames(BAG, 500)
