"""CPU rehearsal of the GPU run: pack the default recipe's data, run tools/train_on_device.sh.

The script is the one a lent CUDA machine runs (there with the full schedule and AMP); here it
runs on the CPU with two steps of two pairs (one frozen-backbone epoch, one fine-tuning epoch)
on a few frames per sequence, and must leave the exported model, the training log and the
evaluation in $OUT, as it would there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from siam_core.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_device_script_rehearsal_on_cpu(sequences, tmp_path: Path) -> None:
    if not (sequences.parent / "train_extra").is_dir():
        pytest.skip(f"train_extra not found beside {sequences}")
    data = tmp_path / "devdata"
    pack = [
        sys.executable,
        str(ROOT / "tools" / "pack_device_data.py"),
        "--out",
        str(data),
        "--stride",
        "25",
        "--max-side",
        "160",
        "--max-frames",
        "4",
        "--test",
        "otb/Crossing",
        "--epochs",
        "2",
        "--pairs-per-epoch",
        "2",
        "--batch-size",
        "2",
        "--unfreeze-epoch",
        "1",
        "--warmup-epochs",
        "1",
        "--workers",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(pack, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    recipe = yaml.safe_load((data / "recipe.yaml").read_text())
    roots = [s.get("root") for s in recipe["data"]["sources"] if s["type"] == "sequences"]
    assert roots and all(r.startswith("train/") for r in roots)  # relative: travels
    assert recipe["solver"]["feature_cache"]["pairs"] == 0
    assert (data / "test" / "Crossing" / "groundtruth_rect.txt").is_file()

    out = tmp_path / "out"
    env |= {
        "OUT": str(out),
        "DEVICE_DATA": str(data),
        "PYTHON": sys.executable,
        "EVAL_MAX_FRAMES": "3",
        "TRAIN_SECONDS": "900",
    }
    script = ROOT / "tools" / "train_on_device.sh"
    run = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=1200, env=env
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "weights written" in log and "epoch 2/2" in log
    _model, config = load_checkpoint(out / "model.safetensors")
    assert config.name == "siamrpnpp_mobilev2tv_default"
    assert "device" in (out / "eval_report.md").read_text()
    assert "Crossing" in (out / "eval_per_sequence.csv").read_text()
    assert (out / "recipe.yaml").is_file() and (out / "eval.log").is_file()
