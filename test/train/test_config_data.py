"""Training-config validation, the data readers and pair sampling on real frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SEQUENCES, frame_and_box, tiny_model

from siam_core.train.config import (
    SourceConfig,
    load_train_config,
    resolve_path,
    train_config_from_dict,
)
from siam_core.train.curate import curate
from siam_core.train.data import CocoSource, open_source
from siam_core.train.sampling import PairSampler, pair_rng

RECIPES = Path(__file__).resolve().parents[2] / "siam_core" / "configs" / "train"


def minimal(seq: Path) -> dict:
    return {
        "name": "t",
        "model": tiny_model(),
        "data": {"sources": [{"type": "sequences", "paths": [str(seq / "otb/Human3")]}]},
    }


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"solver": {"epochz": 3}}, r"solver: unknown key\(s\) \['epochz'\]"),
        (
            {"solver": {"warmup": {"epochs": 2, "lr": 1}}},
            r"solver.warmup: unknown key\(s\) \['lr'\]",
        ),
        ({"optimiser": {}}, r"unknown key\(s\) \['optimiser'\]"),
        ({"solver": {"batch_size": "16"}}, "solver.batch_size: expected an integer"),
        ({"solver": {"amp": 1}}, "solver.amp: expected true or false"),
        ({"loss": {"loc_type": "l2"}}, "loc_type"),
        ({"data": {"sources": []}}, "data.sources is empty"),
        ({"data": {"sources": [{"type": "vid"}]}}, "unknown source type 'vid'"),
        ({"data": {"sources": [{"type": "coco", "root": "x"}]}}, "needs 'anno'"),
        ({"data": {"sources": [{"type": "sequences", "pathz": ["x"]}]}}, r"\['pathz'\]"),
        (
            {"data": {"sources": [{"type": "sequences", "paths": ["nowhere/seq"]}]}},
            "does not exist",
        ),
        ({"init": {"weights": "missing.safetensors"}}, "init.weights: path does not exist"),
        ({"model": "no_such_model"}, "model: unknown config 'no_such_model'"),
        ({"data": {"sources": [{"type": "sequences", "paths": ["."]}], "gray": 2}}, "gray"),
    ],
)
def test_config_errors_are_clear(sequences, patch: dict, message: str) -> None:
    data = {**minimal(sequences), **patch}
    with pytest.raises(ValueError, match=message):
        train_config_from_dict(data, Path.cwd())


def test_missing_keys_and_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing required key 'data'"):
        train_config_from_dict({"name": "x", "model": tiny_model()})
    with pytest.raises(ValueError, match="not found"):
        load_train_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_train_config(bad)


def test_paths_resolve_against_the_recipe(tmp_path: Path) -> None:
    assert resolve_path("a/b", tmp_path) == tmp_path / "a/b"
    assert resolve_path("/abs", tmp_path) == Path("/abs")
    assert resolve_path("pkg://siam_core/configs", tmp_path).is_dir()
    with pytest.raises(ValueError, match="not installed"):
        resolve_path("pkg://no_such_package_xyz/data", tmp_path)


def test_recipes_validate() -> None:
    """Every shipped recipe parses; the full-data ones need $SIAM_DATA, so paths aren't checked."""
    names = sorted(p.stem for p in RECIPES.glob("*.yaml"))
    assert {
        "siamrpn_alex_upchannel",
        "dasiamrpn_alex",
        "siamrpnpp_r50",
        "siamrpnpp_mobilev2",
        "siamrpnpp_alex_dw",
        "default_mobilenet",
    } <= set(names)
    for name in names:
        cfg = load_train_config(RECIPES / f"{name}.yaml", check_paths=False)
        assert cfg.name == name
    dasiam = load_train_config(RECIPES / "dasiamrpn_alex.yaml", check_paths=False)
    assert dasiam.data.negative.prob == 0.2 and dasiam.data.gray == 0.25
    rpnpp = load_train_config(RECIPES / "siamrpnpp_r50.yaml", check_paths=False)
    assert rpnpp.data.search_aug.shift == 64 and rpnpp.solver.backbone.lr_mult == 0.1
    assert rpnpp.solver.warmup.epochs == rpnpp.solver.backbone.unfreeze_epoch == 5


def test_extends_overrides_key_by_key(tmp_path: Path) -> None:
    """A follow-up stage restates only what changes: mappings merge, lists and scalars replace,
    and the shipped fine-tune keeps every data source of the recipe it extends."""
    base = {
        "name": "stage1",
        "model": tiny_model(),
        "data": {"sources": [{"type": "sequences", "paths": ["seq"]}]},
        "solver": {"epochs": 4, "lr": {"start": 0.01, "end": 0.001}},
    }
    (tmp_path / "stage1.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "stage2.yaml").write_text(
        "extends: stage1.yaml\nname: stage2\nsolver: {lr: {start: 0.003}}\n"
    )
    cfg = load_train_config(tmp_path / "stage2.yaml", check_paths=False)
    assert cfg.name == "stage2" and cfg.solver.epochs == 4
    assert (cfg.solver.lr.start, cfg.solver.lr.end) == (0.003, 0.001)
    assert [list(s.paths) for s in cfg.data.sources] == [["seq"]]
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\nname: loop\n")
    with pytest.raises(ValueError, match="cycle"):
        load_train_config(tmp_path / "loop.yaml", check_paths=False)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.yaml").write_text("extends: ../stage1.yaml\nname: x\n")
    with pytest.raises(ValueError, match="same folder"):
        load_train_config(tmp_path / "sub" / "x.yaml", check_paths=False)
    (tmp_path / "odd.yaml").write_text("extends: 3\nname: odd\n")
    with pytest.raises(ValueError, match="must name a training YAML"):
        load_train_config(tmp_path / "odd.yaml", check_paths=False)
    stage1 = load_train_config(RECIPES / "default_mobilenet.yaml", check_paths=False)
    stage2 = load_train_config(RECIPES / "default_mobilenet_ft.yaml", check_paths=False)
    assert stage2.data == stage1.data and stage2.model == stage1.model
    assert stage2.runtime.seed != stage1.runtime.seed and stage2.init.weights


def test_semantic_negatives_label_every_training_sequence() -> None:
    """Stage 3 of the default model labels each training sequence with a category, so its
    same-category negatives exist for all of them; no test sequence is named."""
    if not (SEQUENCES.is_dir() and (SEQUENCES.parent / "train_extra").is_dir()):
        pytest.skip(f"shared data (sequences, train_extra) not found beside {SEQUENCES}")
    from siam_core.deploy.quantize import TEST_SEQUENCES
    from siam_core.train.data import SequenceSource, build_sources

    cfg = load_train_config(RECIPES / "default_mobilenet_sem.yaml", check_paths=False)
    labels = cfg.data.negative.labels()
    assert not {n.lower() for n in labels} & TEST_SEQUENCES  # all six, wakeboard7 included
    sources = build_sources(cfg)
    sampler = PairSampler(sources, cfg.data.negative.prob, 1.0, 0.0, labels)
    videos = [t.video for s in sources if isinstance(s, SequenceSource) for t in s.tracks]
    assert len(videos) == 49 and set(videos) - set(labels) == {"siamfc_ball2"}  # the one ball
    assert all(len(tracks) >= 2 for tracks in sampler.by_category.values())


def test_default_recipe_finds_its_data() -> None:
    if not SEQUENCES.is_dir():
        pytest.skip(f"shared data not found at {SEQUENCES}")
    cfg = load_train_config(RECIPES / "default_mobilenet.yaml")
    used = {Path(p).name for s in cfg.data.sources for p in s.paths}
    assert {"Human3", "basketball"} <= used
    assert not used & {"Crossing", "bag", "book", "MotorRolling", "ball1_vot2015", "wakeboard7"}
    extra = SEQUENCES.parent / "train_extra"
    if not extra.is_dir():
        return
    from siam_core.train.data import build_sources

    sources = {s.name: s for s in build_sources(cfg)}
    named = {n for s in cfg.data.sources for n in s.names}
    on_disk = {p.name for p in extra.iterdir() if (p / "img").is_dir()}
    assert named == on_disk, "every train_extra sequence, each in one stride group"
    # UAV123 rows marked NaN (target absent) are read, and never become a pair's frame.
    aerial = sources["extra_stride5_12"]
    track = next(i for i, t in enumerate(aerial.tracks) if t.video == "pbbat_group3_2")
    absent = np.isnan(aerial.boxes[track]).any(axis=1)
    assert absent.sum() == 6 and not set(np.flatnonzero(absent)) & set(aerial.tracks[track].frames)
    # Five-digit frame names (00001.jpg) are found.
    assert aerial.frame_path(track, 0).name == "00001.jpg"


def test_curate_then_read_pysot_crops(sequences, tmp_path: Path) -> None:
    """siam-curate's 511-px crops read back through the pysot-layout reader: the box lands on
    the target (same content as the original frame's box)."""
    src = open_source(SourceConfig(type="sequences", paths=(str(sequences / "vot/bag"),)))
    anno = curate([src], tmp_path / "crops", workers=2, progress=False)
    meta = json.loads(anno.read_text())
    assert list(meta) == ["bag"] and len(meta["bag"]["00"]) == 196
    crops = open_source(
        SourceConfig(type="pysot_crops", root=str(tmp_path / "crops"), anno=str(anno))
    )
    assert len(crops.tracks) == 1 and len(crops.tracks[0].frames) == 196
    image, box = crops.load(0, 40)
    assert image.shape == (511, 511, 3)
    assert (box[0] + box[2]) / 2 == pytest.approx(255) and (box[1] + box[3]) / 2 == pytest.approx(
        255
    )
    frame, gt = frame_and_box(sequences, "vot/bag", 40)

    def gray(img: np.ndarray, b: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (round(float(v)) for v in b)
        return cv2.resize(cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), (20, 20)).astype(
            float
        )

    a, b = gray(image, box), gray(frame, gt)
    a, b = a - a.mean(), b - b.mean()
    assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.9


def test_coco_reader(sequences, tmp_path: Path) -> None:
    """A COCO-style file over real frames: boxes (x, y, w, h) become corners; crowd and tiny
    boxes are skipped; category names come from the categories table."""
    frames = sorted((sequences / "otb/Crossing/img").glob("*.jpg"))[:2]
    meta = {
        "images": [{"id": i, "file_name": f.name} for i, f in enumerate(frames)],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"image_id": 0, "bbox": [205, 151, 17, 50], "category_id": 1},
            {"image_id": 1, "bbox": [100, 100, 40, 30], "category_id": 2},
            {"image_id": 1, "bbox": [10, 10, 50, 50], "category_id": 2, "iscrowd": 1},
            {"image_id": 1, "bbox": [10, 10, 1, 1], "category_id": 2},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(meta))
    cfg = SourceConfig(type="coco", root=str(frames[0].parent), anno=str(tmp_path / "x.json"))
    src = CocoSource(cfg, frames[0].parent, tmp_path / "instances.json")
    assert [t.category for t in src.tracks] == ["person", "car"]
    image, box = src.load(0, 0)
    assert image.shape == (240, 360, 3)
    np.testing.assert_allclose(box, [205, 151, 222, 201])
    (tmp_path / "broken.json").write_text("{}")
    with pytest.raises(ValueError, match="not a COCO-style"):
        CocoSource(cfg, frames[0].parent, tmp_path / "broken.json")


def test_image_source_boxes_lie_inside(tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    photo = resolve_path("pkg://skimage/data/astronaut.png", tmp_path)
    whole = open_source(SourceConfig(type="images", paths=(str(photo),)))
    image, box = whole.load(0, 0)
    np.testing.assert_allclose(box, [0, 0, image.shape[1], image.shape[0]])
    rand = open_source(
        SourceConfig(type="images", paths=(str(photo),), box="random", regions=10), seed=4
    )
    assert len(rand.tracks) == 10
    for t in range(10):
        _, b = rand.load(t, 0)
        assert 0 <= b[0] < b[2] <= image.shape[1] and 0 <= b[1] < b[3] <= image.shape[0]
        area = (b[2] - b[0]) * (b[3] - b[1]) / (image.shape[0] * image.shape[1])
        assert 0.01 < area <= 0.31


def test_pairs_positive_range_and_negative_categories(sequences) -> None:
    """Positive pairs stay within frame_range; negatives never show the template's object and
    split between same and different categories at the configured ratio."""
    paths = tuple(str(sequences / p) for p in ("otb/Human3", "vot/basketball", "otb/Crossing"))
    people = open_source(
        SourceConfig(type="sequences", paths=paths, frame_range=5, category="person")
    )
    aerial = open_source(
        SourceConfig(type="sequences", root=str(sequences / "uav123_half"), category="aerial")
    )
    sampler = PairSampler([people, aerial], neg_prob=0.5, same_category=0.75, gray=0.25)
    n, neg, same, gray = 600, 0, 0, 0
    for i in range(n):
        spec = sampler.sample(pair_rng(0, 0, i))
        gray += spec.gray
        t_track = sampler.sources[spec.template.source].tracks[spec.template.track]
        s_track = sampler.sources[spec.search.source].tracks[spec.search.track]
        if not spec.negative:
            assert t_track == s_track
            frames = t_track.frames
            gap = abs(frames.index(spec.template.frame) - frames.index(spec.search.frame))
            assert gap <= sampler.sources[spec.template.source].frame_range
            continue
        neg += 1
        assert t_track.video != s_track.video
        assert spec.same_category == (t_track.category == s_track.category)
        same += spec.same_category
    assert 0.4 < neg / n < 0.6 and 0.15 < gray / n < 0.35
    assert 0.6 < same / neg < 0.9
    again = sampler.sample(pair_rng(0, 0, 17))
    assert again == sampler.sample(pair_rng(0, 0, 17)), "pairs are a function of the index"


def test_negative_categories_label_sequences_without_classes(sequences, tmp_path: Path) -> None:
    """OTB/VOT/UAV123 layouts carry no classes: ``negative.categories`` labels their sequences,
    so a same-category negative shows another sequence of the template's category (DaSiamRPN's
    semantic negatives), where without labels every negative is just another sequence."""
    otb = ("otb/Human3", "vot/basketball", "otb/Crossing")
    video = open_source(
        SourceConfig(type="sequences", paths=tuple(str(sequences / p) for p in otb))
    )
    aerial = open_source(SourceConfig(type="sequences", root=str(sequences / "uav123_half")))
    labels = {"Human3": "person", "basketball": "person", "person12": "person", "boat1": "boat"}
    sampler = PairSampler([video, aerial], 1.0, 1.0, 0.0, labels)
    unlabelled = PairSampler([video, aerial], 1.0, 1.0, 0.0)
    people = {"Human3", "basketball", "person12"}
    seen = set()
    for i in range(300):
        spec = sampler.sample(pair_rng(0, 0, i))
        t = sampler.sources[spec.template.source].tracks[spec.template.track].video
        s = sampler.sources[spec.search.source].tracks[spec.search.track].video
        if t in people:
            assert spec.same_category and s in people - {t}
            seen.add(s)
        else:  # unlabelled (Crossing, the other aerial clips) or alone in its category (boat1)
            assert not spec.same_category
        assert not unlabelled.sample(pair_rng(0, 0, i)).same_category
    assert seen == people
    with pytest.raises(ValueError, match=r"no source holds: \['Humna3'\]"):
        PairSampler([video], 1.0, 1.0, 0.0, {"Humna3": "person"})
    recipe = minimal(sequences)
    recipe["data"]["negative"] = {"prob": 0.2, "categories": {"person": ["Human3", "x"]}}
    cfg = train_config_from_dict(recipe, sequences)
    assert cfg.data.negative.labels() == {"Human3": "person", "x": "person"}
    dumped = tmp_path / "dump.yaml"
    dumped.write_text(yaml.safe_dump(cfg.to_dict()))  # as checkpoints store the recipe
    assert load_train_config(dumped).data == cfg.data
    recipe["data"]["negative"]["categories"] = {"person": ["Human3"], "face": ["Human3"]}
    with pytest.raises(ValueError, match=r"\['Human3'\] under more than one category"):
        train_config_from_dict(recipe, sequences)
    recipe["data"]["negative"]["categories"] = ["Human3"]
    with pytest.raises(ValueError, match="categories: expected a mapping"):
        train_config_from_dict(recipe, sequences)


def test_negative_without_other_category_is_an_error(sequences) -> None:
    src = open_source(
        SourceConfig(type="sequences", paths=(str(sequences / "otb/Human3"),), category="person")
    )
    sampler = PairSampler([src], neg_prob=1.0, same_category=0.0)
    with pytest.raises(RuntimeError, match="negative partner"):
        sampler.sample(pair_rng(0, 0, 0))


def test_written_recipe_roundtrip(sequences, tmp_path: Path) -> None:
    """to_dict gives absolute paths, so a dumped config (as checkpoints store it) reloads."""
    cfg = train_config_from_dict(minimal(sequences), sequences)
    dumped = tmp_path / "dump.yaml"
    dumped.write_text(yaml.safe_dump(cfg.to_dict()))
    again = load_train_config(dumped)
    assert again.data == cfg.data and again.solver == cfg.solver
