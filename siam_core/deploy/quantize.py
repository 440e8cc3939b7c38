"""int8 graphs: static QDQ quantisation of an export, calibrated on crops of training sequences.

The per-frame graphs of an export (``features.onnx`` and every ``head_b{N}.onnx``) are
quantised with ONNX Runtime's static quantiser into QDQ form: int8 weights per output channel,
uint8 activations whose ranges were measured on real crops; in the backbone every operator the
quantiser knows, in the head its constant-weight convolutions (``_quantise``). The template
graph runs once per target and stays float32, as do the head's correlations, whose "weights"
are the template's kernels (an input, not a constant). ONNX Runtime runs the QDQ pairs as int8
kernels (AVX512-VNNI/AMX where the CPU has them); OpenVINO folds the same pairs into its int8
layers, so one int8 export serves both.

Calibration crops come from training sequences only (``../shared/data/train_extra`` by default):
per sequence an exemplar on its first frame's box and search crops of later frames cut around the
previous frame's box, as the tracker cuts them. The six shared test sequences are refused, even
if a folder of that name is passed. The manifest records the method, the sequences and the
number of crops.

A weights file can ship its int8 graphs beside it (``ship``: ``<stem>-int8/``, the per-frame
graphs and a record of the exact weights, config and quantiser they belong to), so that int8 runs
where no calibration data is: the embedded default model ships them, and ``backend auto`` picks
OpenVINO int8 for it (``siam_core.zoo.resolve_runtime``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from siam_core.deploy.export import MANIFEST, head_file, merge_search, read_manifest, search_file

# Never calibrated on: the shared test sequences (shared/data/README's split).
TEST_SEQUENCES = frozenset(
    {"crossing", "bag", "book", "wakeboard7", "motorrolling", "ball1_vot2015"}
)
TRAIN_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "train_extra"
SEARCHES_PER_SEQUENCE = 2
# What the int8 cache's key names besides calibration set and quantiser version
RECIPE = (
    "onnxruntime quantize_static, QDQ, per-channel s8 weights, u8 activations, MinMax ranges; "
    "backbone: all operators; head: constant-weight Convs"
)
# The same with 7-bit weights (reduce_range), for CPUs without an int8 dot product: there x86
# int8 kernels sum u8 x s8 products in int16 pairs, which 255 * 127 * 2 overflows and
# 255 * 63 * 2 does not. Measured on an AVX2 EPYC, one step from fp32's state on bag.avi,
# OpenVINO: median 1.30 px against 7.69 px with 8-bit weights, at the same 42 ms a frame.
RECIPES = {8: RECIPE, 7: RECIPE + "; 7-bit weights (reduce_range)"}
CALIBRATION_PAIRS = 64  # search crops (and heads' inputs); one exemplar per sequence used
SHIPPED_RECORD = "int8.json"
SHIPPED_GRAPHS = ("features.onnx", head_file(1))  # the template graph stays float32 (module doc)


def _is_test_sequence(folder: Path) -> bool:
    """True for a test sequence's folder, also as ``<source>_<name>`` (train_extra's names)."""
    name = folder.name.lower()
    return name in TEST_SEQUENCES or name.split("_", 1)[-1] in TEST_SEQUENCES


def training_sequences(root: str | Path | None = None) -> list[Path]:
    """The OTB-layout sequence folders under ``root`` (default train_extra), test ones refused."""
    base = Path(root) if root is not None else TRAIN_ROOT
    if not base.is_dir():
        raise FileNotFoundError(
            f"int8 calibration needs training sequences: {base} not found (the shared data's "
            "train_extra, or name a folder of OTB-layout sequences)"
        )
    folders = sorted(p for p in base.iterdir() if (p / "groundtruth_rect.txt").is_file())
    tests = [p.name for p in folders if _is_test_sequence(p)]
    if tests:
        raise ValueError(f"{base}: {tests} are shared test sequences, never calibrated on")
    if not folders:
        raise FileNotFoundError(f"{base}: no sequence folders with groundtruth_rect.txt")
    return folders


def calibration_crops(
    tracker: Any, root: str | Path | None = None, pairs: int = CALIBRATION_PAIRS
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(exemplar crops, search crops, sequence names): ``pairs`` search crops spread over the
    training sequences (``SEARCHES_PER_SEQUENCE`` each, evenly spaced frames), each cut around
    the previous frame's true box by ``tracker`` (a float32 ``SiamRPNTracker``), and one
    exemplar per sequence on its first box."""
    from siam_core.data.sequences import load_otb

    folders = training_sequences(root)
    wanted = max(1, -(-pairs // SEARCHES_PER_SEQUENCE))
    step = max(1, len(folders) // wanted)
    exemplars, searches, names = [], [], []
    for folder in folders[::step][:wanted]:
        seq = load_otb(folder, allow_nan=True)
        visible = [i for i in range(1, len(seq)) if not seq.absent[i] and not seq.absent[i - 1]]
        if not visible:
            continue
        z, _ = tracker.patches(seq.read(0), seq.init_box)
        exemplars.append(z)
        picks = np.linspace(0, len(visible) - 1, SEARCHES_PER_SEQUENCE + 1)[1:].round()
        for k in dict.fromkeys(picks.astype(int).tolist()):
            i = visible[k]
            _, x = tracker.patches(seq.read(i), tuple(float(v) for v in seq.gt[i - 1]))
            searches.append(x)
        names.append(seq.name)
    return exemplars, searches[:pairs], names


def _blob(patch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None], dtype=np.float32)


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of input feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _convs(path: Path) -> tuple[list[str], list[str]]:
    """(Conv nodes with constant weights, Conv nodes whose weights are graph values: the
    correlations with the template's kernels, which stay float32)."""
    import onnx

    graph = onnx.load(str(path)).graph
    inits = {t.name for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    return (
        [n.name for n in convs if n.input[1] in inits],
        [n.name for n in convs if n.input[1] not in inits],
    )


def weight_bits_for_cpu() -> int:
    """The int8 graphs' weight bits this CPU runs faithfully: 8 with an int8 dot-product
    instruction (``int8_dot_product``), else 7."""
    from siam_core.deploy.runtime import int8_dot_product

    return 8 if int8_dot_product() else 7


def _check_bits(weight_bits: int) -> None:
    if weight_bits not in RECIPES:
        raise ValueError(f"weight_bits must be one of {sorted(RECIPES)}, got {weight_bits!r}")


def _quantise(
    src: Path,
    dst: Path,
    feeds: list[dict[str, np.ndarray]],
    convs_only: bool,
    weight_bits: int = 8,
) -> dict[str, Any]:
    """Pre-process (shape inference, fusions) and quantise one graph: every operator the
    quantiser knows (backbone, ``convs_only=False``), or only the constant-weight Convs (the
    head). Measured on the default model (60 frames of bag.avi from fp32's state): quantising
    the backbone's adds and clips too keeps int8 between layers, median box difference 0.86 px
    at 23 (ONNX Runtime) / 18 ms (OpenVINO) per frame against 1.65 px at 32 / 31 ms for its
    Convs alone; the head's other operators (the levels' weighted sum) gained nothing."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    convs, kept = _convs(pre)
    quantize_static(
        str(pre),
        str(dst),
        _Reader(feeds),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"] if convs_only else None,
        per_channel=True,
        activation_type=QuantType.QUInt8,  # u8 activations, s8 weights: the VNNI kernels' pair
        weight_type=QuantType.QInt8,
        nodes_to_quantize=convs if convs_only else None,
        nodes_to_exclude=kept,
        calibrate_method=CalibrationMethod.MinMax,
        reduce_range=weight_bits == 7,
    )
    pre.unlink()
    return {"int8_convs": len(convs), "float32_convs": len(kept), "convs_only": convs_only}


def quantize_export(
    src_dir: str | Path,
    out_dir: str | Path,
    tracker: Any,
    calibration: str | Path | None = None,
    pairs: int = CALIBRATION_PAIRS,
    weight_bits: int = 8,
) -> dict[str, Any]:
    """Write the int8 version of the float32 export ``src_dir`` into ``out_dir``, calibrated on
    ``pairs`` crops of the training sequences under ``calibration`` cut by ``tracker`` (the
    float32 tracker of the exported model), with ``weight_bits`` (8, or 7: ``RECIPES``).
    Returns the new manifest."""
    _check_bits(weight_bits)
    from siam_core.deploy.runtime import OnnxNet

    src, out = Path(src_dir), Path(out_dir)
    manifest = read_manifest(src)
    if manifest.get("precision", "fp32") != "fp32":
        raise ValueError(f"{src}: quantisation starts from a float32 export")
    if any(manifest.get("folded_levels", [])):
        raise ValueError(f"{src}: quantisation starts from an unfolded export (fold=False)")
    out.mkdir(parents=True, exist_ok=True)
    exemplars, searches, names = calibration_crops(tracker, calibration, pairs)
    if not searches:
        raise ValueError(f"no usable calibration frames under {calibration or TRAIN_ROOT}")
    fp32 = OnnxNet(src, "onnxruntime", threads=0)
    kernels = [fp32._template([_blob(z)]) for z in exemplars]
    features = [fp32._features([_blob(x)]) for x in searches]
    f_feeds = [{"x": _blob(x)} for x in searches]
    shutil.copyfile(src / "template.onnx", out / "template.onnx")
    features_graph = _quantise(
        src / "features.onnx", out / "features.onnx", f_feeds, False, weight_bits
    )
    report = {"features": features_graph}
    k_names = [f"kernel_{i}" for i in range(int(manifest["num_kernels"]))]
    f_names = [f"feat_{i}" for i in range(int(manifest["num_features"]))]
    for batch in manifest.get("head_batches", [1]):
        feeds = []
        for i in range(len(features)):  # batch rows: consecutive pairs, kernels cycled
            rows = [(i + r) % len(features) for r in range(batch)]
            ks = [
                np.concatenate([kernels[r % len(kernels)][j] for r in rows])
                for j in range(len(k_names))
            ]
            fs = [np.concatenate([features[r][j] for r in rows]) for j in range(len(f_names))]
            feeds.append(dict(zip(k_names + f_names, ks + fs, strict=True)))
        name = head_file(batch)
        report[name] = _quantise(src / name, out / name, feeds, True, weight_bits)
        if batch in manifest.get("search_batches", []):
            merge_search(out / "features.onnx", out / name, out / search_file(batch))
    new = copy.deepcopy(manifest)
    new["precision"] = "int8"
    new["quantisation"] = {
        "method": RECIPES[weight_bits],
        "weight_bits": weight_bits,
        "calibration_sequences": names,
        "search_crops": len(searches),
        "exemplar_crops": len(exemplars),
        "graphs": report,
        "float32_source": str(src),
    }
    if "check" in new:  # the float32 graphs' check against PyTorch, before quantisation
        new["check"]["graphs"] = "float32, before quantisation"
    (out / MANIFEST).write_text(json.dumps(new, indent=2))
    return new


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_dir(weights: str | Path, weight_bits: int = 8) -> Path:
    """Where a weights file's shipped int8 graphs live: ``<stem>-int8/`` beside it, those with
    7-bit weights in ``<stem>-int8-7bit/``."""
    _check_bits(weight_bits)
    path = Path(weights)
    return path.with_name(f"{path.stem}-int8" + ("-7bit" if weight_bits == 7 else ""))


def ship(int8_dir: str | Path, weights: str | Path) -> Path:
    """Copy the batch-1 per-frame graphs of the int8 export ``int8_dir`` (made from ``weights``)
    beside ``weights`` with a record of what they belong to; returns the folder. Only those two
    graphs travel: the float32 template graph and the merged search graph are made again from
    the weights on first use (``assemble_shipped``), which keeps the shipped copy small."""
    src = Path(int8_dir)
    manifest = read_manifest(src)
    if manifest.get("precision") != "int8" or 1 not in manifest.get("head_batches", []):
        raise ValueError(f"{src}: ship takes an int8 export with a batch-1 head")
    bits = int(manifest["quantisation"].get("weight_bits", 8))
    out = shipped_dir(weights, bits)
    out.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_GRAPHS:
        shutil.copyfile(src / name, out / name)
    local = ("float32_source", "shipped")  # paths on the machine that made the export
    quantisation = {k: v for k, v in manifest["quantisation"].items() if k not in local}
    record = {
        "weights_sha256": _sha256(Path(weights)),
        "config": manifest["config"],
        "recipe": RECIPES[bits],
        "quantisation": quantisation,
        "files": {name: _sha256(out / name) for name in SHIPPED_GRAPHS},
    }
    (out / SHIPPED_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))
    return out


def shipped_int8(
    weights: str | Path, config: dict[str, Any], weight_bits: int = 8
) -> dict[str, Any] | None:
    """The record of the int8 graphs with ``weight_bits`` shipped beside ``weights`` (``ship``)
    when they belong to exactly these weights, ``config`` and this quantiser recipe, with
    ``dir`` and ``id`` (a hash of the record) added; None where none ship or they belong to
    something else. A record whose graphs are not the files it names is an error: a damaged
    copy never runs."""
    folder = shipped_dir(weights, weight_bits)
    path = folder / SHIPPED_RECORD
    if not path.is_file():
        return None
    text = path.read_text()
    try:
        record = json.loads(text)
        files = dict(record["files"])
        matches = (
            record["weights_sha256"] == _sha256(Path(weights))
            and record["config"] == config
            and record["recipe"] == RECIPES[weight_bits]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a shipped int8 record ({exc})") from exc
    if not matches:
        return None
    for name in SHIPPED_GRAPHS:
        graph = folder / name
        if not graph.is_file() or _sha256(graph) != files.get(name):
            raise ValueError(
                f"{graph}: missing or not the graph {path.name} records (damaged copy); "
                "run siam-export --precision int8 --ship again, or use precision fp32"
            )
    record["dir"] = str(folder)
    record["id"] = hashlib.sha256(text.encode()).hexdigest()[:8]
    return record


def assemble_shipped(src_dir: str | Path, out_dir: str | Path, record: dict[str, Any]) -> None:
    """Write an int8 export into ``out_dir`` from the float32 unfolded export ``src_dir`` of the
    same weights (its template graph) and the shipped graphs of ``record`` (``shipped_int8``)."""
    src, out = Path(src_dir), Path(out_dir)
    manifest = read_manifest(src)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "template.onnx", out / "template.onnx")
    for name in SHIPPED_GRAPHS:
        shutil.copyfile(Path(record["dir"]) / name, out / name)
    merge_search(out / "features.onnx", out / head_file(1), out / search_file(1))
    new = copy.deepcopy(manifest)
    new.update(precision="int8", head_batches=[1], search_batches=[1])
    kept = ("template", "features", head_file(1)[:-5], search_file(1)[:-5])
    new["graphs"] = {k: v for k, v in manifest["graphs"].items() if k in kept}
    new["quantisation"] = {**record["quantisation"], "shipped": record["dir"]}
    if "check" in new:
        new["check"]["graphs"] = "float32, before quantisation"
    (out / MANIFEST).write_text(json.dumps(new, indent=2))
