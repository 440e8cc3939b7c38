"""``siam-convert``: turn a pysot ``model.pth``, one of DaSiamRPN's official ``.model`` files
(``--model dasiamrpn_vot|otb|big``) or any accepted checkpoint into our format.

Our format is safetensors with the model's config embedded, so the file alone rebuilds the
model (``siam_core.checkpoint.load_checkpoint``). The written file is read back and compared
with the source before the command reports success.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from siam_core.checkpoint import load_checkpoint, read_config, read_state_dict, save_checkpoint
from siam_core.config import list_configs, load_config
from siam_core.models.dasiamrpn_compat import to_our_keys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="siam-convert",
        description="Convert a pysot model.pth (or a safetensors file) into a siam_core "
        "safetensors checkpoint with its config embedded.",
    )
    p.add_argument("src", type=Path, help="input checkpoint (.pth / .safetensors)")
    p.add_argument("dst", type=Path, help="output .safetensors file")
    p.add_argument(
        "--model",
        help=f"config name or YAML path (built-in: {', '.join(list_configs())}); "
        "optional when the input already embeds a config",
    )
    p.add_argument("--fp16", action="store_true", help="store floating tensors as float16")
    return p


def convert(src: Path, dst: Path, model: str | None = None, fp16: bool = False) -> Path:
    """Convert ``src`` to ``dst``; raises ``ValueError`` on any mismatch."""
    if dst.suffix != ".safetensors":
        raise ValueError(f"output must end in .safetensors, got {dst}")
    if dst.resolve() == src.resolve():
        raise ValueError("input and output are the same file")
    net, cfg = load_checkpoint(src, load_config(model) if model else None)
    save_checkpoint(net, cfg, dst, fp16=fp16)
    back, _ = load_checkpoint(dst)
    source = to_our_keys(read_state_dict(src))
    tol = 1e-3 if fp16 else 0.0
    for key, value in back.state_dict().items():
        if key in source and value.is_floating_point():
            ref = source[key]
            if not torch.allclose(value, ref, rtol=tol, atol=tol * float(ref.abs().max() + 1)):
                raise ValueError(f"verification failed: {key} differs after the round trip")
    return dst


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        out = convert(args.src, args.dst, args.model, args.fp16)
    except (ValueError, FileNotFoundError) as exc:
        print(f"siam-convert: error: {exc}", file=sys.stderr)
        return 1
    cfg = read_config(out)
    assert cfg is not None
    print(f"wrote {out} ({cfg.name}, {'fp16' if args.fp16 else 'fp32'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
