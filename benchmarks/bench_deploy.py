"""Deployment speed: model x backend x targets, crop included, beside the pysot procedure.

For each model the same real clip is tracked frame by frame by every configuration, timed in
turn on each frame so that all see the same machine load:

* ``pysot``: the literal pysot procedure (``test/core/_pysot_procedure.py``), one target;
* ``backend[:precision]`` (``--runs``): ``SiamRPNTracker`` with the network in that runtime
  (the ONNX graphs exported and checked by ``siam_core.deploy.export``; ``int8``: quantised by
  ``siam_core.deploy.quantize`` on training crops), one target; ``torch`` is the channels-last
  fp32 network, ``torch:contiguous`` the same without the channels-last copy, ``torch:bf16``
  bf16 autocast (AMX where the CPU has it);
* ``<run> xN`` (``--multi``): ``MultiTracker`` with N targets in one batched pass per frame;
* ``<run> 10 sep.``: ten separate single-target trackers, the baseline multi-target beats.

Prints median ms per frame (all targets), per target, the ratio of the pysot procedure to each
single-target row, each row's largest box difference from PyTorch fp32 (target 0), and the
issue's CPU goals against them.

    .venv/bin/python benchmarks/bench_deploy.py [--models alex default] [--frames 31]
        [--runs torch torch:bf16 onnxruntime:int8 ...] [--multi torch:bf16 ...]
        [--targets 1 4 10] [--threads 1]

GPU path (``--device cuda``; tools/gpu_bench_on_device.sh runs it on a lent machine): the
PyTorch tracker in each ``--modes`` entry, ``precision[+graph|+compile][+hostcrop]``
(``fp16+graph``: fp16 autocast with CUDA graphs; ``+hostcrop``: crops cut on the host and
uploaded, the path without device crops), batch 1 crop included, beside ``fp32`` (device
crops, eager); ``MultiTracker`` at each ``--targets`` count for ``fp32`` and the last mode;
ten separate fp32 trackers. Boxes are compared with fp32's on the whole parity clip twice:
free-running, and from fp32's state on every frame (one step's difference, as the issue's
1 px asks). It prints FPS and the issue's targets (H100/H200 class: SiamRPN++ ResNet-50 >= 500
FPS, AlexNet >= 2000 FPS). The pysot procedure is a CPU baseline and is not run there.

    python benchmarks/bench_deploy.py --device cuda [--models alex r50] [--frames 196]
        [--modes fp32 fp16 bf16 fp32+graph fp16+graph fp32+hostcrop] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test" / "core"))
sys.path.insert(0, str(REPO / "benchmarks"))

from _pysot_procedure import PysotProcedure  # noqa: E402
from bench_track import BAG_INIT, DATA, make_model  # noqa: E402

from siam_core import zoo  # noqa: E402
from siam_core.checkpoint import load_checkpoint  # noqa: E402
from siam_core.deploy.export import export_onnx  # noqa: E402
from siam_core.deploy.quantize import CALIBRATION_PAIRS, quantize_export  # noqa: E402
from siam_core.deploy.runtime import OnnxNet  # noqa: E402
from siam_core.io.frames import read_frames  # noqa: E402
from siam_core.tracker.multi import MultiTracker  # noqa: E402
from siam_core.tracker.siamrpn import SiamRPNTracker  # noqa: E402

MODELS = {
    "alex": "siamrpn_alex_dwxcorr",
    "mobilev2": "siamrpn_mobilev2_l234_dwxcorr",
    "r50": "siamrpn_r50_l234_dwxcorr",
}
# CPU runs (backend:precision); torch is channels-last fp32, torch:contiguous without that copy,
# :unfolded the float32 graphs as the network is, without siam_core.deploy.fold
CPU_RUNS = [
    "torch:contiguous",
    "torch",
    "torch:bf16",
    "onnxruntime:unfolded",
    "onnxruntime",
    "onnxruntime:int8",
    "openvino:unfolded",
    "openvino",
    "openvino:bf16",
    "openvino:int8",
]
CPU_MULTI = [
    "torch",
    "torch:bf16",
    "onnxruntime",
    "onnxruntime:int8",
    "openvino:bf16",
    "openvino:int8",
]
GPU_TARGET_FPS = {"siamrpn_alex_dwxcorr": 2000.0, "siamrpn_r50_l234_dwxcorr": 500.0}  # issue 15


def _boxes(n: int) -> list[tuple[float, float, float, float]]:
    """N targets: the parity box and boxes shifted around it (all inside the 480x360 clip)."""
    x, y, w, h = BAG_INIT
    offsets = [(0, 0), (-120, 0), (-240, 40), (60, 100), (-60, -100), (-200, -100)]
    offsets += [(-280, 120), (20, -110), (-150, 150), (-300, -120)]
    return [(x + dx, y + dy, w, h) for dx, dy in offsets[:n]]


def _model(key: str, frame: np.ndarray):
    if key == "default":
        model, cfg = load_checkpoint(zoo.DEFAULT_WEIGHTS)
        return model, cfg, "embedded default model"
    return make_model(MODELS[key], frame)


def parse_run(spec: str) -> tuple[str, str]:
    """``backend[:precision]`` (``torch:bf16``, ``onnxruntime:int8``; ``torch:contiguous`` is
    PyTorch fp32 without the channels-last copy, ``onnxruntime:unfolded`` / ``openvino:unfolded``
    the float32 graphs without ``siam_core.deploy.fold``) -> (backend, precision)."""
    backend, _, precision = spec.partition(":")
    if backend not in ("torch", "onnxruntime", "openvino"):
        raise SystemExit(f"run {spec!r}: backend must be torch, onnxruntime or openvino")
    return backend, precision or "fp32"


def bench(
    key: str,
    frames: list[np.ndarray],
    specs: list[str],
    multi: list[str],
    targets: list[int],
    calibration: int,
) -> list:
    """One model: the pysot procedure, every ``specs`` run (one target), ``multi`` runs with
    each count of ``targets`` batched and as ten separate trackers, timed frame by frame."""
    model, cfg, weights = _model(key, frames[0])
    export = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    fp32 = SiamRPNTracker(model, cfg, optimize=False)
    z, x = fp32.patches(frames[0], BAG_INIT)
    manifest = export_onnx(model, cfg, export, z, x, batches=tuple(n for n in targets if n > 1))
    exports = {"fp32": export}
    wanted = {parse_run(s)[1] for s in [*specs, *multi]}
    if wanted & {"int8", "unfolded"}:  # unfolded: also the quantiser's source
        exports["unfolded"] = export.with_name(export.name + "-unfolded")
        heads = tuple(n for n in targets if n > 1)
        export_onnx(model, cfg, exports["unfolded"], z, x, batches=heads, fold=False)
    if "int8" in wanted:
        started = time.perf_counter()
        exports["int8"] = export.with_name(export.name + "-int8")
        quantize_export(exports["unfolded"], exports["int8"], fp32, pairs=calibration)
        print(f"{cfg.name}: int8 graphs quantised in {time.perf_counter() - started:.0f} s")
    runtimes: dict[str, OnnxNet] = {}

    def single(spec: str) -> SiamRPNTracker:
        backend, precision = parse_run(spec)
        if backend == "torch":
            if precision == "contiguous":
                return SiamRPNTracker(model, cfg, optimize=False)
            return SiamRPNTracker(model, cfg, precision=precision)
        if spec not in runtimes:
            graphs = exports[precision if precision in ("int8", "unfolded") else "fp32"]
            precision = "fp32" if precision == "unfolded" else precision
            runtimes[spec] = OnnxNet(graphs, backend, torch.get_num_threads(), precision=precision)
        return SiamRPNTracker(model, cfg, runtime=runtimes[spec])

    runs: dict[str, tuple[Callable[[np.ndarray], tuple], int]] = {}
    pysot = PysotProcedure(model, cfg)
    pysot.init(frames[0], BAG_INIT)

    def run_pysot(frame: np.ndarray) -> tuple:
        with torch.no_grad():
            return pysot.track(frame)[0]

    runs["pysot"] = (run_pysot, 1)
    for spec in specs:
        t = single(spec)
        t.init(frames[0], BAG_INIT)
        runs[spec] = ((lambda f, t=t: t.track(f).box), 1)
    for spec in multi:
        for n in targets:
            if n == 1:
                continue
            multi_tracker = MultiTracker.from_tracker(single(spec))
            for i, box in enumerate(_boxes(n)):
                multi_tracker.add(i, frames[0], box)
            runs[f"{spec} x{n}"] = ((lambda f, m=multi_tracker: m.track(f)[0].box), n)
        if 10 in targets:
            seps = [single(spec) for _ in range(10)]
            for t, box in zip(seps, _boxes(10), strict=True):
                t.init(frames[0], box)
            runs[f"{spec} 10 sep."] = ((lambda f, s=seps: [t.track(f) for t in s][0].box), 10)  # noqa: RUF015

    for fn, _ in runs.values():  # warm-up: oneDNN/OpenVINO kernel choice on the first call
        fn(frames[1])
    times, diffs = _time_runs({name: r[0] for name, r in runs.items()}, frames[2:], "torch")
    rows = []
    base = statistics.median(times["pysot"])
    for name, (_, n) in runs.items():
        med = statistics.median(times[name])
        rows.append(
            {
                "model": cfg.name,
                "run": name,
                "targets": n,
                "ms": 1000 * med,
                "ms_per_target": 1000 * med / n,
                "speedup": base / med if n == 1 else float("nan"),
                "diff": diffs[name],
            }
        )
    worst = max(manifest["check"]["max_relative_error"].values())
    print(f"{cfg.name}: weights {weights}; export max relative deviation {worst:.1e}")
    return rows


def print_goals(rows: list[dict]) -> None:
    """The issue's CPU goals against this run's rows."""
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        singles = [r for r in mine if r["targets"] == 1 and r["run"] != "pysot"]
        exact = [r for r in singles if r["diff"] <= 0.5 and parse_run(r["run"])[1] == "fp32"]
        if all(r["diff"] != r["diff"] for r in singles):
            print(f"{model}: no torch run, so no box differences and no 0.5 px check")
        elif exact:
            best = max(exact, key=lambda r: r["speedup"])
            print(
                f"{model}: best fp32 path within 0.5 px: {best['run']} {best['speedup']:.2f}x the "
                f"pysot procedure, {best['ms']:.1f} ms (goal 2.5x: "
                f"{'met' if best['speedup'] >= 2.5 else 'NOT met'})"
            )
        fastest = max(singles, key=lambda r: r["speedup"])
        print(
            f"{model}: fastest run {fastest['run']} {fastest['speedup']:.2f}x, "
            f"{fastest['ms']:.1f} ms/frame, free-running box diff {fastest['diff']:.2f} px"
        )
        for r in mine:
            if r["run"].endswith(" x10"):
                spec = r["run"][: -len(" x10")]
                sep = next((x for x in mine if x["run"] == f"{spec} 10 sep."), None)
                if sep is not None:
                    print(
                        f"{model}: {spec}: 10 targets batched {r['ms']:.0f} ms, 10 separate "
                        f"{sep['ms']:.0f} ms: batched costs {r['ms'] / sep['ms']:.2f}x"
                    )


def parse_mode(mode: str) -> dict:
    """``precision[+graph|+compile][+hostcrop]`` -> ``SiamRPNTracker`` GPU-path options."""
    parts = mode.split("+")
    options = {"precision": parts[0], "graph_mode": "eager", "device_crops": None}
    for extra in parts[1:]:
        if extra == "graph":
            options["graph_mode"] = "cuda_graph"
        elif extra == "compile":
            options["graph_mode"] = "compile"
        elif extra == "hostcrop":
            options["device_crops"] = False
        else:
            raise SystemExit(f"mode {mode!r}: unknown part {extra!r} (graph, compile, hostcrop)")
    return options


def _one_step_diff(model, cfg, device: str, options: dict, frames: list[np.ndarray]) -> float:
    """Largest box difference from fp32 eager over the clip, each frame tracked from fp32's
    state: the difference one step makes, before free-running drift compounds it."""
    ref = SiamRPNTracker(model, cfg, device=device)
    got = SiamRPNTracker(model, cfg, device=device, **options)
    ref.init(frames[0], BAG_INIT)
    got.init(frames[0], BAG_INIT)
    worst = 0.0
    for frame in frames[1:]:
        got.center_pos, got.size = ref.center_pos.copy(), ref.size.copy()
        a, b = ref.track(frame).box, got.track(frame).box
        worst = max(worst, float(np.abs(np.subtract(a, b)).max()))
    return worst


def bench_device(
    key: str, frames: list[np.ndarray], device: str, modes: list[str], targets: list[int]
) -> list[dict]:
    """The GPU path of one model on ``device``: every mode at batch 1, MultiTracker counts for
    fp32 and the last mode, ten separate trackers; FPS and box agreement with fp32."""
    model, cfg, weights = _model(key, frames[0])
    modes = ["fp32", *[m for m in modes if m != "fp32"]]
    runs: dict[str, tuple[Callable[[np.ndarray], tuple], int, dict]] = {}
    for mode in modes:
        options = parse_mode(mode)
        t = SiamRPNTracker(model, cfg, device=device, **options)
        t.init(frames[0], BAG_INIT)
        runs[mode] = ((lambda f, t=t: t.track(f).box), 1, options)
    for mode in dict.fromkeys([modes[0], modes[-1]]):
        for n in targets:
            if n == 1:
                continue
            options = parse_mode(mode)
            multi = MultiTracker(model, cfg, device=device, **options)
            for i, box in enumerate(_boxes(n)):
                multi.add(i, frames[0], box)
            runs[f"{mode} x{n}"] = ((lambda f, m=multi: m.track(f)[0].box), n, options)
    if 10 in targets:
        seps = [SiamRPNTracker(model, cfg, device=device) for _ in range(10)]
        for t, box in zip(seps, _boxes(10), strict=True):
            t.init(frames[0], box)
        runs["fp32 10 sep."] = ((lambda f: [t.track(f) for t in seps][0].box), 10, {})  # noqa: RUF015
    for fn, _, _ in runs.values():  # warm-up: cuDNN algorithm choice, graph capture, compile
        fn(frames[1])
    times, diffs = _time_runs({name: r[0] for name, r in runs.items()}, frames[2:], "fp32")
    base = statistics.median(times["fp32"])
    rows = []
    for name, (_, n, options) in runs.items():
        med = statistics.median(times[name])
        step = _one_step_diff(model, cfg, device, options, frames) if n == 1 else float("nan")
        rows.append(
            {
                "model": cfg.name,
                "run": name,
                "targets": n,
                "ms": 1000 * med,
                "fps": 1 / med,
                "ms_per_target": 1000 * med / n,
                "vs_fp32": base / med * n,
                "diff": diffs[name],
                "step_diff": step,
            }
        )
    print(f"{cfg.name}: weights {weights}")
    return rows


def _time_runs(
    runs: dict[str, Callable[[np.ndarray], tuple]], frames: list[np.ndarray], ref_name: str
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every run on every frame, timed in turn (all see the same load); per run the seconds
    per frame and the largest free-running box difference from ``ref_name``'s (target 0)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    # without the reference run there is nothing to compare with: NaN, printed as such
    diffs: dict[str, float] = dict.fromkeys(runs, 0.0 if ref_name in runs else float("nan"))
    for frame in frames:
        boxes = {}
        for name, fn in runs.items():
            start = time.perf_counter()
            boxes[name] = fn(frame)
            times[name].append(time.perf_counter() - start)
        ref = boxes.get(ref_name)
        if ref is not None:
            for name, box in boxes.items():
                diffs[name] = max(diffs[name], float(np.abs(np.subtract(box, ref)).max()))
    return times, diffs


def print_table(head: str, lines: list[str]) -> None:
    print(head + "\n" + "-" * len(head) + "\n" + "\n".join(lines))


def print_device_rows(rows: list[dict], device: str) -> None:
    head = (
        f"{'model':26} {'run':20} {'targets':>7} {'ms/frame':>9} {'FPS':>8} {'ms/target':>9} "
        f"{'target-FPS/fp32':>15} {'max|dbox| free':>14} {'per frame':>10}"
    )
    lines = []
    for r in rows:
        step = "" if r["step_diff"] != r["step_diff"] else f"{r['step_diff']:.3f}"
        lines.append(
            f"{r['model']:26} {r['run']:20} {r['targets']:7d} {r['ms']:9.3f} {r['fps']:8.1f} "
            f"{r['ms_per_target']:9.3f} {r['vs_fp32']:14.2f}x {r['diff']:14.3f} {step:>10}"
        )
    print_table(head, lines)
    print(
        "\nFPS: frames per second (all targets); target-FPS/fp32: target-frames per second "
        "over fp32's at batch 1; max|dbox|: px from fp32 (target 0), free-running and from "
        "fp32's state on each frame"
    )
    for r in rows:
        if r["targets"] == 10 and not r["run"].endswith("sep."):
            mode = r["run"].split(" ")[0]
            single = next(x for x in rows if x["model"] == r["model"] and x["run"] == mode)
            share = (10 / r["ms"]) / (1 / single["ms"])
            print(
                f"{r['model']} {mode}: 10 targets give {100 * share:.0f} % of single-target FPS "
                "per target (issue goal on GPU: >= 50 %)"
            )
    for model, goal in GPU_TARGET_FPS.items():
        mine = [r for r in rows if r["model"] == model and r["targets"] == 1]
        if mine:
            agree = [r for r in mine if r["step_diff"] <= 1.0]  # the fastest that holds boxes
            best = max(agree or mine, key=lambda r: r["fps"])
            ok = best["fps"] >= goal and best["step_diff"] <= 1.0
            print(
                f"issue target {model}: >= {goal:.0f} FPS on {device} with boxes within 1 px: "
                f"best {best['run']} {best['fps']:.0f} FPS, per-frame box diff "
                f"{best['step_diff']:.3f} px -> {'met' if ok else 'NOT met'}"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--models",
        nargs="+",
        help="alex, mobilev2, r50, default (CPU: alex default; GPU: alex r50)",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        default=CPU_RUNS,
        help="CPU: backend[:precision] runs, one target (torch:contiguous: no channels-last)",
    )
    p.add_argument(
        "--multi", nargs="*", default=CPU_MULTI, help="CPU: runs timed with several targets"
    )
    p.add_argument(
        "--calibration", type=int, default=CALIBRATION_PAIRS, help="int8: calibration crops"
    )
    p.add_argument("--targets", nargs="+", type=int, default=[1, 4, 10])
    p.add_argument(
        "--frames", type=int, help="frames per model, the first is init (CPU 61, GPU 196: all)"
    )
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every runtime")
    p.add_argument("--video", type=Path, default=DATA / "bag.avi")
    p.add_argument("--device", default="cpu", help="cpu, or cuda[:N] for the GPU path (doc)")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["fp16", "bf16", "fp32+hostcrop", "fp32+graph", "fp16+graph"],
        help="GPU path: precision[+graph|+compile][+hostcrop] per run (fp32 always runs)",
    )
    p.add_argument(
        "--gpu-path", action="store_true", help="the GPU path's table (implied by a CUDA device)"
    )
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    if not args.video.is_file():
        raise SystemExit(f"clip not found: {args.video}")
    torch.set_num_threads(args.threads)
    if args.gpu_path or args.device != "cpu":
        return main_device(args)
    args.models = args.models or ["alex", "default"]
    frames = read_frames(args.video, args.frames or 61)
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
        f"torch {torch.__version__}, {args.threads} threads per runtime; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    rows = [
        r
        for key in args.models
        for r in bench(key, frames, args.runs, args.multi, args.targets, args.calibration)
    ]
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    head = (
        f"{'model':30} {'run':18} {'targets':>7} {'ms/frame':>9} {'ms/target':>9} "
        f"{'pysot/run':>9} {'max |dbox| vs torch':>20}"
    )
    lines = []
    for r in rows:
        speed = "" if r["speedup"] != r["speedup"] else f"{r['speedup']:8.2f}x"
        lines.append(
            f"{r['model']:30} {r['run']:18} {r['targets']:7d} {r['ms']:9.1f} "
            f"{r['ms_per_target']:9.1f} {speed:>9} {r['diff']:20.2e}"
        )
    print_table(head, lines)
    print(
        f"\nmedians over {len(frames) - 2} frames of {args.video.name} (frame 1: warm-up), "
        "crop included; max |dbox|: free-running, px from torch fp32 (target 0)"
    )
    print_goals(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def main_device(args: argparse.Namespace) -> int:
    """``--device cuda``: the GPU path's table (module doc)."""
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: PyTorch sees no CUDA device")
        torch.backends.cudnn.benchmark = True  # fixed crop sizes: pick the fastest algorithms
        name = torch.cuda.get_device_name(device)
    else:  # a CPU rehearsal of the GPU path (--gpu-path; tests run it so)
        name = platform.processor() or platform.machine()
    frames = read_frames(args.video, args.frames or 196)
    args.models = args.models or ["alex", "r50"]
    print(
        f"device: {name}, torch {torch.__version__}, cuDNN benchmark "
        f"{torch.backends.cudnn.benchmark}, TF32 convolutions {torch.backends.cudnn.allow_tf32}; "
        f"{len(frames) - 2} timed frames of {args.video.name} (frame 1: warm-up)"
    )
    rows = [
        r
        for key in args.models
        for r in bench_device(key, frames, args.device, args.modes, args.targets)
    ]
    print_device_rows(rows, name)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
