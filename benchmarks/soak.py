"""Soak benchmark (not a test): tracker nodes under a camera-rate stream for a long time.

This process plays a real clip at camera rate to tracker nodes, each in its own process and
namespace, all subscribed to one image topic, and does what a long day does to them: a new
init_target every ``--reinit`` seconds, and every ``--occlude-every`` seconds a few seconds of
blank frames (the target vanishes: long-term mode goes LOST, then RECOVERED when it returns).
It samples each node's RSS (``/proc/<pid>/status``; GPU memory through ``nvidia-smi`` where
there is one) and collects every TrackerStatus.

Two nodes run side by side on the same frames, identical except for the C allocator's
settings: ``default`` (glibc as it comes) and ``tuned`` (``MALLOC_ARENA_MAX=2`` and a fixed
``MALLOC_MMAP_THRESHOLD_``, so image-sized buffers go back to the system when freed). A leak
grows both; allocator growth (glibc keeping freed image buffers in per-thread arenas) only
the default one. The report gives per node the RSS slope after warm-up (least squares,
MB/min, with its standard error), RSS at start/end, latency percentiles and the counters.

    nice -n 19 .venv/bin/python benchmarks/soak.py --minutes 60 [--rate 30] [--out soak.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from siam_tracker_ros.conversions import bgr_to_image, box_to_bbox
from siam_tracker_ros.msg import TrackerStatus
from siam_tracker_ros.srv import InitTarget

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PARITY = SHARED / "parity" / "pysot_siamrpn_alex_dwxcorr" / "weights.safetensors"
INIT = (315.0, 140.0, 112.0, 112.0)  # the bag in bag.avi's first frame
ALLOCATORS = {
    "default": {},
    "tuned": {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"},
}
STATE_NAMES = {0: "IDLE", 1: "TRACKING", 2: "LOST", 3: "RECOVERED"}


def clip(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(SHARED / "bag.avi"))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    if not frames:
        raise SystemExit(f"cannot read {SHARED / 'bag.avi'} (shared data)")
    return frames


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gpu_mb() -> dict[int, float]:
    """Per-process GPU memory (MiB) from nvidia-smi; empty without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return {}
    query = ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"]
    out = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
    usage = {}
    for line in out.splitlines():
        pid, used = (v.strip() for v in line.split(","))
        usage[int(pid)] = float(used.split()[0])
    return usage


def slope(times_s: list[float], values: list[float]) -> tuple[float, float]:
    """Least-squares slope (per minute) and its standard error."""
    t = np.asarray(times_s) / 60.0
    v = np.asarray(values)
    if len(t) < 3:
        return float("nan"), float("nan")
    design = np.vstack([t, np.ones_like(t)]).T
    coef, residual, *_ = np.linalg.lstsq(design, v, rcond=None)
    dof = len(t) - 2
    sigma2 = float(residual[0]) / dof if len(residual) else 0.0
    stderr = float(np.sqrt(sigma2 / np.sum((t - t.mean()) ** 2)))
    return float(coef[0]), stderr


def start_node(name: str, env: dict[str, str], weights: str, model: str) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "siam-tracker-node"), "--ros-args"]
    cmd += ["-r", f"__ns:=/{name}"]
    params = ["image_topic:=/soak/image_raw", "long_term:=true", "torch_threads:=1"]
    params += [f"weights:={weights}", f"model:={model}"]
    for param in params:
        cmd += ["-p", param]
    node_env = dict(env, **ALLOCATORS[name])
    log = open(Path(env["ROS_LOG_DIR"]) / f"{name}.out", "w")  # noqa: SIM115 (lives with proc)
    return subprocess.Popen(cmd, env=node_env, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--reinit", type=float, default=60.0, help="seconds between inits")
    parser.add_argument("--occlude-every", type=float, default=90.0, help="seconds")
    parser.add_argument("--occlude-for", type=float, default=4.0, help="seconds of blank frames")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the slope")
    parser.add_argument("--weights", default=str(PARITY) if PARITY.exists() else "")
    parser.add_argument("--model", default="siamrpn_alex_dwxcorr" if PARITY.exists() else "")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()

    frames = clip(300)
    blank = np.full_like(frames[0], 127)
    tmp = tempfile.mkdtemp(prefix="soak-")
    domain = str(150 + os.getpid() % 50)
    env = dict(os.environ, ROS_DOMAIN_ID=domain, ROS_LOG_DIR=tmp, OMP_NUM_THREADS="1")
    os.environ.update(ROS_DOMAIN_ID=domain, ROS_LOG_DIR=tmp)
    procs = {name: start_node(name, env, args.weights, args.model) for name in ALLOCATORS}
    rclpy.init()
    node = rclpy.create_node("soak_driver")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    publisher = node.create_publisher(type(bgr_to_image(frames[0])), "/soak/image_raw", qos)
    statuses: dict[str, list[tuple[float, int, float, int, int, int, int, int]]] = {}
    clients = {}
    for name in procs:
        statuses[name] = []

        def keep(msg: TrackerStatus, log: list = statuses[name]) -> None:
            log.append(
                (
                    time.monotonic(),
                    msg.state,
                    msg.latency_ms,
                    msg.frames_received,
                    msg.frames_processed,
                    msg.frames_dropped,
                    msg.frames_rejected,
                    msg.errors,
                )
            )

        node.create_subscription(TrackerStatus, f"/{name}/status", keep, 50)
        clients[name] = node.create_client(InitTarget, f"/{name}/init_target")
    for name, client in clients.items():
        if not client.wait_for_service(timeout_sec=120.0):
            raise SystemExit(f"node {name} did not start; log in {tmp}")
    msgs = [bgr_to_image(f) for f in frames]
    blank_msg = bgr_to_image(blank)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in procs}
    inits = {"ok": 0, "failed": 0}

    def init_all() -> None:
        futures = [
            c.call_async(InitTarget.Request(box=box_to_bbox(INIT))) for c in clients.values()
        ]
        end = time.monotonic() + 10.0
        while not all(f.done() for f in futures) and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
        for f in futures:
            inits["ok" if f.done() and f.result().success else "failed"] += 1

    start = time.monotonic()
    duration = args.minutes * 60.0
    k = 0
    next_sample = next_init = 0.0
    sent = 0
    print(f"soak: {args.minutes:g} min at {args.rate:g} Hz, nodes {list(procs)}, logs in {tmp}")
    while (now := time.monotonic() - start) < duration:
        due = k / args.rate
        while time.monotonic() - start < due:
            rclpy.spin_once(node, timeout_sec=0.002)
        occluded = (now % args.occlude_every) > args.occlude_every - args.occlude_for
        frame_index = k % len(msgs)
        msg = blank_msg if occluded else msgs[frame_index]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(10**12 + k * 33_333_333, 10**9)
        publisher.publish(msg)
        sent += 1
        k += 1
        if now >= next_init and 0 < frame_index < 5 and not occluded:
            # just after the clip restarted, where the bag is at INIT: init on the newest frame
            init_all()
            next_init = now + args.reinit
        if now >= next_sample:
            gpu = gpu_mb()
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"node {name} died ({proc.returncode}); log in {tmp}")
                samples[name].append((now, rss_mb(proc.pid), gpu.get(proc.pid, float("nan"))))
            next_sample = now + args.sample
            if len(samples["default"]) % 30 == 1:
                line = ", ".join(f"{n} {s[-1][1]:.1f} MB" for n, s in samples.items())
                print(f"  {now / 60:6.1f} min  sent {sent}  RSS {line}", flush=True)
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.02)

    report: dict = {
        "minutes": args.minutes,
        "rate_hz": args.rate,
        "frames_sent": sent,
        "inits": inits,
        "model": args.model or "default",
        "nodes": {},
    }
    for name, proc in procs.items():
        rows = samples[name]
        warm = [r for r in rows if r[0] >= args.warmup * 60.0]
        mb_per_min, stderr = slope([r[0] for r in warm], [r[1] for r in warm])
        half = len(warm) // 2
        first, _ = slope([r[0] for r in warm[:half]], [r[1] for r in warm[:half]])
        second, _ = slope([r[0] for r in warm[half:]], [r[1] for r in warm[half:]])
        log = statuses[name]
        latency = np.array([s[2] for s in log if s[1] != 0]) if log else np.zeros(1)
        last = max(log, key=lambda s: s[3]) if log else (0,) * 8
        states = {STATE_NAMES[v]: sum(1 for s in log if s[1] == v) for v in STATE_NAMES}
        report["nodes"][name] = {
            "allocator_env": ALLOCATORS[name],
            "alive": proc.poll() is None,
            "rss_mb_start_end": [rows[0][1], rows[-1][1]] if rows else [],
            "rss_mb_after_warmup_min_max": [min(r[1] for r in warm), max(r[1] for r in warm)]
            if warm
            else [],
            "rss_slope_mb_per_min": mb_per_min,
            "rss_slope_stderr": stderr,
            "rss_slope_first_half_second_half": [first, second],
            "gpu_mb_end": rows[-1][2] if rows else float("nan"),
            "latency_ms_p50_p90_p99_max": [
                float(v) for v in np.percentile(latency, [50, 90, 99, 100])
            ],
            "frames_received_processed_dropped_rejected": list(last[3:7]),
            "errors": last[7],
            "status_messages_by_state": states,
            "rss_samples": rows,
        }
    for proc in procs.values():  # all at once, then give each 15 s before killing it
        proc.terminate()
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        if proc.poll() is None:
            proc.kill()
    node.destroy_node()
    rclpy.shutdown()

    print(f"\nframes sent {sent} at {args.rate:g} Hz over {args.minutes:g} min; inits {inits}")
    header = f"{'node':>8} {'RSS start':>9} {'end':>7} {'slope MB/min':>16} {'halves':>15}"
    print(header + f" {'lat p50/p99 ms':>15} {'recv/proc/drop/rej':>24} {'errors':>6}")
    for name, r in report["nodes"].items():
        s0, s1 = r["rss_mb_start_end"] or [float("nan")] * 2
        h0, h1 = r["rss_slope_first_half_second_half"]
        p50, _, p99, _ = r["latency_ms_p50_p90_p99_max"]
        counts = "/".join(str(v) for v in r["frames_received_processed_dropped_rejected"])
        print(
            f"{name:>8} {s0:9.1f} {s1:7.1f} {r['rss_slope_mb_per_min']:8.3f} ± "
            f"{r['rss_slope_stderr']:5.3f} {h0:7.3f}/{h1:7.3f} {p50:7.1f}/{p99:7.1f} "
            f"{counts:>24} {r['errors']:6d}"
        )
        print(f"{'':>8} states seen: {r['status_messages_by_state']}")
    default, tuned = (report["nodes"][n]["rss_slope_mb_per_min"] for n in ("default", "tuned"))
    print(f"slope ratio default/tuned: {default / tuned if tuned else float('inf'):.2f}")
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
