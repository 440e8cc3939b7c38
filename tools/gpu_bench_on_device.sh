#!/usr/bin/env bash
# The GPU path's benchmark on a lent CUDA machine (bare image with PyTorch): one command,
# under 5 minutes on an H200. Leaves in $OUT: gpu_bench.txt (environment + table) and
# gpu_bench.json (the rows). benchmarks/bench_deploy.py --device cuda does the work (its doc
# says what each row is); the issue's targets are printed under the table.
#
# Prepare here, once per session (.benchdata/ is git-ignored and travels with `carry`):
#   tools/gpu_bench_on_device.sh pack          # bag.avi + the parity weights, ~13 MiB
# Run there (device tool):  bash tools/gpu_bench_on_device.sh   with carry [".benchdata"]
# (and ".whl" if tools/download_device_wheels.sh fetched anything the image lacks).
#
# Environment: OUT (required to run), BENCH_DATA (default .benchdata), PYTHON (default
# python3), BENCH_DEVICE (default cuda; the CPU rehearsal in
# test/core/test_gpu_path.py runs this same file with cpu), BENCH_SECONDS (default 290: the
# benchmark is stopped there), BENCH_ARGS (extra bench_deploy arguments, e.g. quick runs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${BENCH_DATA:-.benchdata}
PY=${PYTHON:-python3}

if [[ "${1:-}" == "pack" ]]; then
    SHARED=${SHARED_DATA:-../shared/data}
    mkdir -p "$DATA/parity/pysot_siamrpn_alex_dwxcorr"
    cp "$SHARED/bag.avi" "$DATA/bag.avi"
    cp "$SHARED/parity/pysot_siamrpn_alex_dwxcorr/weights.safetensors" \
        "$DATA/parity/pysot_siamrpn_alex_dwxcorr/weights.safetensors"
    du -sh "$DATA"
    exit 0
fi

OUT=${OUT:?set OUT to the folder that receives the results}
DEVICE=${BENCH_DEVICE:-cuda}
mkdir -p "$OUT"
if [[ ! -f "$DATA/bag.avi" ]]; then
    echo "gpu_bench_on_device: $DATA/bag.avi missing: run tools/gpu_bench_on_device.sh pack" >&2
    exit 2
fi
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/siam-site .whl/*.whl
    export PYTHONPATH="/tmp/siam-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 SIAM_BENCH_DATA="$DATA"
"$PY" - <<'PYEOF' 2>&1 | tee "$OUT/gpu_bench.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
try:
    import onnxruntime as ort
    print("onnxruntime", ort.__version__, ort.get_available_providers())
except ImportError:
    print("onnxruntime: not installed")
PYEOF
DEVICE_ARGS=(--device "$DEVICE")
[[ "$DEVICE" == cpu* ]] && DEVICE_ARGS+=(--gpu-path)
# shellcheck disable=SC2086  # BENCH_ARGS is a list of words
timeout --signal=INT "${BENCH_SECONDS:-290}" "$PY" benchmarks/bench_deploy.py \
    "${DEVICE_ARGS[@]}" --json "$OUT/gpu_bench.json" ${BENCH_ARGS:-} 2>&1 \
    | tee -a "$OUT/gpu_bench.txt"
echo "gpu_bench_on_device: done; results in $OUT"
