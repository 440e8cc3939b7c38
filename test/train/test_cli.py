"""siam-train and siam-curate through their ``main([...])`` entry points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import tiny_model

from siam_core.cli import curate as curate_cli
from siam_core.cli import train as train_cli


def write_recipe(tmp_path: Path, seq: Path, **solver) -> Path:
    data = {
        "name": "cli",
        "model": tiny_model(),
        "data": {"sources": [{"type": "sequences", "paths": [str(seq / "otb/Human3")]}]},
        "solver": {"epochs": 1, "pairs_per_epoch": 16, "batch_size": 8, "amp": False, **solver},
        "runtime": {"num_workers": 0, "seed": 2},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_train_cli_end_to_end(sequences, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = write_recipe(tmp_path, sequences)
    assert train_cli.main([str(recipe), "--check-only"]) == 0
    out = capsys.readouterr().out
    assert "Human3" in out
    assert out.strip().splitlines()[-1].startswith(f"OK: {recipe} is valid"), out
    assert train_cli.main([str(recipe), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoints" / "last.txt").read_text().strip() == "step_00000002.pt"
    capsys.readouterr()
    # Resuming a finished run says so; it neither trains nor silently exports again.
    exported = (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns
    assert train_cli.main([str(recipe), "--resume", str(tmp_path / "run")]) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns == exported
    assert not (tmp_path / "runs").exists()


def test_max_steps_then_resume_in_the_same_folder(
    sequences, tmp_path: Path, capsys, monkeypatch
) -> None:
    """A smoke run stops at --max-steps; --resume without --out continues in that folder."""
    monkeypatch.chdir(tmp_path)  # where runs/<recipe name> would appear by mistake
    recipe = write_recipe(tmp_path, sequences, epochs=2)  # 2 steps per epoch, 4 in all
    run = tmp_path / "smoke"
    assert train_cli.main([str(recipe), "--max-steps", "3", "--out", str(run)]) == 0
    assert (run / "model.safetensors").is_file()
    assert (run / "checkpoints" / "last.txt").read_text().strip() == "step_00000003.pt"
    assert train_cli.main([str(recipe), "--resume", str(run)]) == 0
    assert (run / "checkpoints" / "last.txt").read_text().strip() == "step_00000004.pt"
    assert not (tmp_path / "runs").exists()
    # A checkpoint file resumes into the run that holds it.
    ckpt = run / "checkpoints" / "step_00000003.pt"
    assert train_cli.run_folder(str(ckpt)) == run
    assert train_cli.main([str(recipe), "--max-steps", "0", "--out", str(run)]) == 2
    assert "max_steps must be >= 1" in capsys.readouterr().err


def test_copied_recipe_with_data_root(sequences, tmp_path: Path, capsys) -> None:
    """A recipe with relative data paths, copied elsewhere, finds its data via --data-root."""
    home = tmp_path / "recipes"
    home.mkdir()
    (home / "data").symlink_to(sequences)
    recipe = write_recipe(home, Path("data"))  # relative: data/otb/Human3
    copy = tmp_path / "copy.yaml"
    copy.write_text(recipe.read_text())
    assert train_cli.main([str(copy), "--check-only"]) == 2
    assert "path does not exist" in capsys.readouterr().err
    assert train_cli.main([str(copy), "--check-only", "--data-root", str(home)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("OK: ")


def test_train_cli_time_steps(sequences, tmp_path: Path, capsys) -> None:
    recipe = write_recipe(tmp_path, sequences, epochs=2, backbone={"unfreeze_epoch": 1})
    assert train_cli.main([str(recipe), "--time-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "head-only: median" in out and "backbone: median" in out and "ratio" in out


def test_train_cli_reports_bad_config(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "model": tiny_model(),
                "data": {"sources": [{"type": "images", "root": "/no/such"}]},
            }
        )
    )
    assert train_cli.main([str(bad)]) == 2
    assert "data.sources[0].root: path does not exist" in capsys.readouterr().err


def test_curate_cli(sequences, tmp_path: Path, capsys) -> None:
    out = tmp_path / "crops"
    code = curate_cli.main(
        [
            str(out),
            "--type",
            "sequences",
            "--root",
            str(sequences / "uav123_half"),
            "--names",
            "wakeboard10",
            "--workers",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    meta = json.loads((out / "train.json").read_text())
    assert list(meta) == ["wakeboard10"]
    assert len(list((out / "wakeboard10").glob("*.00.x.jpg"))) == len(meta["wakeboard10"]["00"])
    assert curate_cli.main([str(out), "--type", "coco", "--root", str(tmp_path)]) == 2
    assert "needs 'anno'" in capsys.readouterr().err


def test_curate_cli_missing_path(tmp_path: Path, capsys) -> None:
    assert curate_cli.main([str(tmp_path / "o"), "--type", "sequences", "--paths", "/no/seq"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        curate_cli.main([str(tmp_path / "o"), "--type", "pysot_crops"])
