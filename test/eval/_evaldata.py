"""Helpers for the evaluation tests: the real sequences under ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEQUENCES = REPO.parent / "shared" / "data" / "sequences"


def seqdir() -> Path:
    """``../shared/data/sequences``, or skip saying it is absent."""
    if not SEQUENCES.is_dir():
        pytest.skip(f"shared test sequences not found: {SEQUENCES}")
    return SEQUENCES


def link_frames(src: list[Path], dst: Path, names: list[str]) -> None:
    """Put real frames into a synthetic layout under ``dst`` (symlinks, no copies)."""
    dst.mkdir(parents=True, exist_ok=True)
    for path, name in zip(src, names, strict=True):
        os.symlink(path, dst / name)


def write_rows(path: Path, rows, sep: str = ",") -> Path:
    """Write one row of numbers per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(sep.join(f"{v:g}" for v in row) + "\n" for row in rows))
    return path
