"""Dataset loaders on the real shared sequences and on benchmark layouts built from real frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _evaldata import link_frames, seqdir, write_rows

from siam_core.data import (
    OTB,
    UAV123,
    VOT,
    VOTLT,
    GOT10k,
    LaSOT,
    NfS,
    SequenceFolder,
    SequenceList,
    TrackingNet,
    load_sequence,
    open_dataset,
    read_regions,
)
from siam_core.data.sequences import detect_layout, polygons_to_boxes


@pytest.fixture(scope="module")
def seqs() -> Path:
    return seqdir()


def _real_frames(seqs: Path, count: int) -> list[Path]:
    return sorted((seqs / "otb" / "Crossing" / "img").glob("*.jpg"))[:count]


# --------------------------------------------------------------------------- real layouts


def test_otb_tab_separated_crossing(seqs: Path) -> None:
    seq = load_sequence(seqs / "otb" / "Crossing")
    assert seq.layout == "otb" and seq.name == "Crossing" and len(seq) == 120
    np.testing.assert_array_equal(seq.gt[0], [205, 151, 17, 50])
    np.testing.assert_array_equal(
        seq.gt[-1], read_regions(seq.frames[0].parents[1] / "groundtruth_rect.txt")[-1]
    )
    assert seq.attributes == ("SV", "DEF", "FM", "OPR", "BC")
    image = seq.read(5)
    assert image.dtype == np.uint8 and image.shape == (240, 360, 3)
    assert seq.size == (360, 240)
    assert seq.frames[5].name == "0006.jpg"
    assert not seq.absent.any()


def test_otb_comma_separated_motorrolling(seqs: Path) -> None:
    seq = load_sequence(seqs / "otb" / "MotorRolling")
    assert len(seq) == 164
    np.testing.assert_array_equal(seq.gt[:2], [[117, 68, 122, 125], [110, 63, 122, 125]])
    assert "FM" in seq.attributes


def test_vot_polygons_and_tags_book(seqs: Path) -> None:
    seq = load_sequence(seqs / "vot" / "book")
    assert seq.layout == "vot" and len(seq) == 175
    assert seq.polygons is not None and seq.polygons.shape == (175, 8)
    # First polygon 199,49 287,49 287,113 199,113 -> its min/max box.
    np.testing.assert_allclose(seq.gt[0], [199, 49, 88, 64])
    p = seq.polygons[1]
    np.testing.assert_allclose(
        seq.gt[1], [p[0::2].min(), p[1::2].min(), np.ptp(p[0::2]), np.ptp(p[1::2])]
    )
    assert set(seq.tags) == {
        "camera_motion",
        "illum_change",
        "motion_change",
        "occlusion",
        "size_change",
    }
    flags = (seqs / "vot" / "book" / "camera_motion.tag").read_text().split()
    np.testing.assert_array_equal(seq.tags["camera_motion"], [f == "1" for f in flags])
    assert seq.frames[0].name == "00000001.jpg" and seq.frames[0].parent.name == "color"
    assert seq.read(174).shape == (480, 640, 3)


def test_vot_without_tags_bag(seqs: Path) -> None:
    seq = load_sequence(seqs / "vot" / "bag")
    assert len(seq) == 196 and seq.tags == {} and seq.polygons is not None


def test_uav123_from_anno_file_and_frame_folder(seqs: Path) -> None:
    a = load_sequence(seqs / "uav123" / "anno" / "wakeboard7.txt")
    b = load_sequence(seqs / "uav123" / "data_seq" / "wakeboard7")
    assert a.layout == b.layout == "uav" and len(a) == len(b) == 67
    np.testing.assert_array_equal(a.gt, b.gt)
    np.testing.assert_array_equal(a.gt[0], [623, 299, 11, 38])
    assert a.frames[0].name == "000001.jpg"


def test_uav123_dataset_uav123_half(seqs: Path) -> None:
    ds = UAV123(seqs / "uav123_half")
    assert ds.names() == ["boat1", "building4", "person12", "truck4", "wakeboard10", "wakeboard5"]
    assert len(ds["person12"]) == 201


def test_otb_dataset_and_folder_dataset(seqs: Path) -> None:
    ds = OTB(seqs / "otb", "otb2015")
    assert ds.names() == ["Crossing", "Human3", "MotorRolling"]
    assert ds["Human3"].attributes == ("SV", "OCC", "DEF", "OPR", "BC")
    assert OTB(seqs / "otb", "otb2013").names() == ["Crossing", "MotorRolling"]
    with pytest.raises(ValueError, match="sequences missing"):
        OTB(seqs / "otb", "otb2015", strict=True)
    folder = open_dataset("folder", seqs / "vot")
    assert isinstance(folder, SequenceFolder)
    assert folder.names() == ["bag", "ball1_vot2015", "basketball", "book"]
    mixed = SequenceList([seqs / "otb" / "Crossing", seqs / "uav123" / "anno" / "wakeboard7.txt"])
    assert [s.layout for s in mixed] == ["otb", "uav"]


def test_head_is_lazy_and_consistent(seqs: Path) -> None:
    seq = load_sequence(seqs / "vot" / "book").head(30)
    assert len(seq) == 30 and seq.polygons.shape == (30, 8)
    assert all(len(v) == 30 for v in seq.tags.values())
    assert seq._size is None  # no frame read yet
    with pytest.raises(ValueError, match="at least one frame"):
        seq.head(0)


# --------------------------------------------------------------------------- synthetic layouts


def test_otb_special_ranges_and_multi_target(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 8)
    gt = read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")
    # David starts at frame 300 (OTB toolkit).
    david = tmp_path / "David"
    link_frames(real[:5], david / "img", [f"{i:04d}.jpg" for i in range(300, 305)])
    write_rows(david / "groundtruth_rect.txt", gt[:5])
    seq = load_sequence(david)
    assert [p.name for p in seq.frames] == [f"{i:04d}.jpg" for i in range(300, 305)]
    # Jogging holds two targets; OTB names them Jogging-1 / Jogging-2.
    jog = tmp_path / "Jogging"
    link_frames(real[:4], jog / "img", [f"{i:04d}.jpg" for i in range(1, 5)])
    write_rows(jog / "groundtruth_rect.1.txt", gt[:4], "\t")
    write_rows(jog / "groundtruth_rect.2.txt", gt[4:8], " ")
    ds = OTB(tmp_path, "otb2013")
    assert ds.names() == ["David", "Jogging-1", "Jogging-2"]
    np.testing.assert_array_equal(ds["Jogging-2"].gt, gt[4:8])
    assert ds["Jogging-2"].attributes == ("OCC", "DEF", "OPR")
    with pytest.raises(ValueError, match=r"Jogging-1"):
        load_sequence(jog)  # no groundtruth_rect.txt: the error names the targets


def test_vot_sequence_file_dataset_and_long_term(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 6)
    polys = np.array([[10, 10, 60, 12, 58, 70, 8, 68]] * 6, dtype=float)
    for name in ("s1", "s2"):
        folder = tmp_path / name
        link_frames(real, folder / "imgs", [f"{i:08d}.jpg" for i in range(1, 7)])
        (folder / "sequence").write_text("channels.color=imgs/%08d.jpg\nname=x\n")
        write_rows(folder / "groundtruth.txt", polys)
    (tmp_path / "list.txt").write_text("s1\ns2\n")
    ds = VOT(tmp_path, 2018)
    assert ds.protocol == "vot" and ds.eao_interval == (100, 356) and ds.name == "VOT2018"
    assert len(ds["s2"]) == 6
    np.testing.assert_allclose(ds["s1"].gt[0], [8, 10, 52, 60])
    # A NaN row: an error for short-term VOT, an absent target for VOT long-term.
    rows = [",".join(f"{v:g}" for v in p) for p in polys]
    rows[3] = "nan,nan,nan,nan,nan,nan,nan,nan"
    (tmp_path / "s2" / "groundtruth.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"s2/groundtruth.txt:4: NaN box"):
        ds["s2"]
    lt = VOTLT(tmp_path, 2018)
    seq = lt["s2"]
    assert lt.protocol == "vot-lt" and lt.name == "VOT2018-LT"
    assert np.isnan(seq.gt[3]).all() and seq.absent.tolist() == [0, 0, 0, 1, 0, 0]


def test_lasot_layout_and_test_split(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 5)
    gt = read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")[:5]
    for name in ("airplane-1", "airplane-2"):
        folder = tmp_path / "airplane" / name
        link_frames(real, folder / "img", [f"{i:08d}.jpg" for i in range(1, 6)])
        write_rows(folder / "groundtruth.txt", gt)
        (folder / "full_occlusion.txt").write_text("0,0,1,0,0")
        (folder / "out_of_view.txt").write_text("0,0,0,0,1")
    seq = load_sequence(tmp_path / "airplane" / "airplane-1")
    assert seq.layout == "lasot"
    assert seq.absent.tolist() == [False, False, True, False, True]
    assert LaSOT(tmp_path, "test").names() == ["airplane-1"]  # airplane-2 is a training video
    assert LaSOT(tmp_path, "all").names() == ["airplane-1", "airplane-2"]


def test_got10k_val_and_test(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 5)
    gt = read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")[:5]
    val = tmp_path / "val" / "GOT-10k_Val_000001"
    link_frames(real, val, [f"{i:08d}.jpg" for i in range(1, 6)])
    write_rows(val / "groundtruth.txt", gt)
    (val / "absence.label").write_text("0\n0\n0\n1\n0\n")
    (val / "cover.label").write_text("8\n8\n0\n0\n5\n")
    (tmp_path / "val" / "list.txt").write_text("GOT-10k_Val_000001\n")
    test = tmp_path / "test" / "GOT-10k_Test_000001"
    link_frames(real, test, [f"{i:08d}.jpg" for i in range(1, 6)])
    write_rows(test / "groundtruth.txt", gt[:1])
    (tmp_path / "test" / "list.txt").write_text("GOT-10k_Test_000001\n")
    seq = GOT10k(tmp_path, "val")["GOT-10k_Val_000001"]
    assert seq.layout == "got10k" and seq.absent.tolist() == [0, 0, 1, 1, 0]
    np.testing.assert_array_equal(seq.values["cover"], [8, 8, 0, 0, 5])
    t = GOT10k(tmp_path, "test")["GOT-10k_Test_000001"]
    assert t.annotated == 1 and np.isnan(t.gt[1:]).all() and not t.absent.any()
    assert open_dataset("got10k-val", tmp_path).protocol == "got10k"


def test_trackingnet_and_nfs(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 4)
    gt = read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")[:4]
    link_frames(real, tmp_path / "TEST" / "frames" / "vid", [f"{i}.jpg" for i in range(4)])
    write_rows(tmp_path / "TEST" / "anno" / "vid.txt", gt[:1])
    seq = TrackingNet(tmp_path)["vid"]
    assert seq.annotated == 1 and [p.name for p in seq.frames] == [
        "0.jpg",
        "1.jpg",
        "2.jpg",
        "3.jpg",
    ]
    assert load_sequence(tmp_path / "TEST" / "frames" / "vid").name == "vid"
    # NfS: 30 fps frames with the 240 fps annotation (every 8th row used).
    nfs = tmp_path / "nfs" / "ball" / "30"
    link_frames(real, nfs / "ball", [f"{i:05d}.jpg" for i in range(1, 5)])
    lines = []
    for i in range(32):
        x, y, w, h = gt[i // 8] if i % 8 == 0 else (0, 0, 1, 1)
        occluded = int(i == 16)
        lines.append(f'{i + 1} {x:g} {y:g} {x + w:g} {y + h:g} {i + 1} 0 {occluded} 0 "ball"')
    (nfs / "ball.txt").write_text("\n".join(lines) + "\n")
    seq = NfS(tmp_path / "nfs", 30)["ball"]
    np.testing.assert_allclose(seq.gt, gt)
    assert seq.tags["occluded"].tolist() == [False, False, True, False]


def test_plain_folder_with_initial_box(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 5)
    link_frames(real, tmp_path / "clip", [f"frame_{i:03d}.jpg" for i in range(5)])
    (tmp_path / "clip" / "start.txt").write_text("205 151 17 50\n")
    seq = load_sequence(tmp_path / "clip")
    assert seq.layout == "folder" and seq.annotated == 1 and len(seq) == 5
    assert seq.init_box == (205.0, 151.0, 17.0, 50.0)
    assert detect_layout(tmp_path / "clip") == "folder"


def test_split_uav_sequence_starts_inside_shared_folder(seqs: Path, tmp_path: Path) -> None:
    # bird1_2 lives in data_seq/UAV123/bird1 from frame 775 (UAV123 toolkit table).
    real = _real_frames(seqs, 3)
    link_frames(
        real, tmp_path / "data_seq" / "UAV123" / "bird1", ["000775.jpg", "000776.jpg", "000777.jpg"]
    )
    write_rows(
        tmp_path / "anno" / "UAV123" / "bird1_2.txt", [[1, 2, 3, 4], [math.nan] * 4, [1, 2, 3, 4]]
    )
    seq = UAV123(tmp_path)["bird1_2"]
    assert [p.name for p in seq.frames] == ["000775.jpg", "000776.jpg", "000777.jpg"]
    assert seq.absent.tolist() == [False, True, False]  # NaN rows kept as absent


# --------------------------------------------------------------------------- bad input


@pytest.fixture()
def otb_copy(seqs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "Crossing"
    real = _real_frames(seqs, 6)
    link_frames(real, folder / "img", [p.name for p in real])
    gt = read_regions(seqs / "otb" / "Crossing" / "groundtruth_rect.txt")[:6]
    write_rows(folder / "groundtruth_rect.txt", gt, "\t")
    return folder


def test_missing_frame_names_the_file(otb_copy: Path) -> None:
    (otb_copy / "img" / "0004.jpg").unlink()
    with pytest.raises(ValueError, match=r"missing frame .*img/0004\.jpg"):
        load_sequence(otb_copy)


def test_gap_in_numbered_frames_is_a_missing_frame(seqs: Path, tmp_path: Path) -> None:
    real = _real_frames(seqs, 3)
    link_frames(real, tmp_path / "v" / "color", ["00000001.jpg", "00000002.jpg", "00000004.jpg"])
    write_rows(tmp_path / "v" / "groundtruth.txt", [[1, 1, 5, 5]] * 3)
    with pytest.raises(ValueError, match="frame number 3 is missing"):
        load_sequence(tmp_path / "v")


def test_wrong_row_count_names_the_file(seqs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "v"
    link_frames(_real_frames(seqs, 4), folder / "color", [f"{i:08d}.jpg" for i in range(1, 5)])
    write_rows(folder / "groundtruth.txt", [[1, 1, 5, 5]] * 3)
    with pytest.raises(ValueError, match=r"v/groundtruth.txt: 3 rows, but the sequence has 4"):
        load_sequence(folder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3,4\n1,2,3\n", r"gt.txt:2: 3 fields"),
        ("1,2,3,4\n1,2,3,4,5,6,7,8\n", r"gt.txt:2: 8 fields, but earlier rows have 4"),
        ("1,2,3,4\n1,x,3,4\n", r"gt.txt:2: not a number"),
        ("1,2,3,4\nnan,nan,nan,nan\n", r"gt.txt:2: NaN box"),
        ("1,2,3,4\n1,nan,3,4\n", r"gt.txt:2: partly NaN"),
        ("1,2,3,4\n\n1,2,3,4\n", r"gt.txt:2: empty line"),
        ("1,2,inf,4\n", r"gt.txt:1: infinite"),
        ("\n\n", r"gt.txt: file is empty"),
    ],
)
def test_bad_ground_truth_rows(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_regions(path)


def test_nan_in_otb_is_an_error_naming_line(otb_copy: Path) -> None:
    lines = (otb_copy / "groundtruth_rect.txt").read_text().splitlines()
    lines[2] = "NaN\tNaN\tNaN\tNaN"
    (otb_copy / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"groundtruth_rect.txt:3: NaN box"):
        load_sequence(otb_copy)


def test_tag_file_with_wrong_length(seqs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "v"
    link_frames(_real_frames(seqs, 3), folder / "color", [f"{i:08d}.jpg" for i in range(1, 4)])
    write_rows(folder / "groundtruth.txt", [[1, 1, 5, 5]] * 3)
    (folder / "occlusion.tag").write_text("0\n1\n")
    with pytest.raises(ValueError, match=r"occlusion.tag: 2 values, expected one per frame \(3\)"):
        load_sequence(folder)


def test_unreadable_frame_names_the_file(otb_copy: Path) -> None:
    bad = otb_copy / "img" / "0002.jpg"
    bad.unlink()
    bad.write_bytes(b"not a jpeg")
    seq = load_sequence(otb_copy)
    with pytest.raises(RuntimeError, match=r"cannot read frame 1 .*0002\.jpg"):
        seq.read(1)


def test_unknown_dataset_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("otb2099", tmp_path)
    with pytest.raises(ValueError, match="dataset root not found"):
        open_dataset("otb2015", tmp_path / "nope")
    with pytest.raises(ValueError, match="sequence path not found"):
        load_sequence(tmp_path / "nope")


def test_polygons_to_boxes_min_max() -> None:
    boxes = polygons_to_boxes(np.array([[3.0, 1.0, 7.0, 2.0, 6.0, 9.0, 2.0, 8.0]]))
    np.testing.assert_array_equal(boxes, [[2, 1, 5, 8]])
