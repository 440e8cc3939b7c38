#!/usr/bin/env bash
# Train the default recipe on a lent CUDA machine (bare image with PyTorch) in a time budget
# and leave in $OUT: model.safetensors, train.log, the evaluation on the six test sequences
# (eval_report.md, eval_summary.csv, eval_per_sequence.csv, eval.log) and the recipe it ran (recipe.yaml).
#
# Prepare here, once per session (both folders are git-ignored and travel with `carry`):
#   .venv/bin/python tools/pack_device_data.py --out .devdata    # data + recipe, ~36 MiB
#   tools/download_device_wheels.sh                              # what the image lacks -> .whl/
# Run there (device tool):  bash tools/train_on_device.sh   with carry [".devdata", ".whl"]
# Then here: evaluate $OUT's model beside the shipped one with siam-eval, keep the better.
#
# Environment: OUT (required), DEVICE_DATA (default .devdata), TRAIN_SECONDS (default 420:
# training stops there, the last checkpoint is exported; 8 min with the evaluation),
# PYTHON (default python3), EVAL_MAX_FRAMES (optional, quick runs).
# The CPU rehearsal in test/train/test_device_script.py runs this same file.
set -euo pipefail

OUT=${OUT:?set OUT to the folder that receives the results}
DATA=${DEVICE_DATA:-.devdata}
SECONDS_BUDGET=${TRAIN_SECONDS:-420}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/siam-site .whl/*.whl
    export PYTHONPATH="/tmp/siam-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ ! -f "$DATA/recipe.yaml" ]]; then
    echo "train_on_device: $DATA/recipe.yaml missing: run tools/pack_device_data.py first" >&2
    exit 2
fi
"$PY" - <<'EOF' 2>&1 | tee "$OUT/train.log"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
EOF

RUN="$DATA/run"
set +e
timeout --signal=INT "$SECONDS_BUDGET" "$PY" -m siam_core.cli.train "$DATA/recipe.yaml" \
    --out "$RUN" --resume-if-any 2>&1 | tr '\r' '\n' | tee -a "$OUT/train.log"
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
    # Out of time (or failed): export the last checkpoint, if there is one.
    echo "train_on_device: training ended with status $status; exporting the last checkpoint" \
        | tee -a "$OUT/train.log"
    "$PY" -m siam_core.cli.train "$DATA/recipe.yaml" --out "$RUN" --resume "$RUN" --export \
        2>&1 | tee -a "$OUT/train.log"
fi
cp "$RUN/model.safetensors" "$OUT/model.safetensors"
cp "$DATA/recipe.yaml" "$OUT/recipe.yaml"

mapfile -t TESTS < <(find "$DATA/test" -mindepth 1 -maxdepth 1 -type d | sort)
"$PY" -m siam_core.cli.eval all --paths "${TESTS[@]}" --name device-test \
    --tracker "device=siamrpn::$OUT/model.safetensors" \
    ${EVAL_MAX_FRAMES:+--max-frames "$EVAL_MAX_FRAMES"} \
    --results "$DATA/eval/results" --out "$DATA/eval/report" 2>&1 | tee "$OUT/eval.log"
for f in "$DATA"/eval/report/report.md "$DATA"/eval/report/summary.csv \
    "$DATA"/eval/report/per_sequence.csv; do
    [[ -f "$f" ]] && cp "$f" "$OUT/eval_$(basename "$f")"
done
echo "train_on_device: done; results in $OUT"
