"""``siam-train CONFIG``: train a tracker from a training recipe (works under ``torchrun``).

Single process: ``siam-train recipe.yaml``. Several GPUs or nodes: ``torchrun --nproc_per_node
8 -m siam_core.cli.train recipe.yaml`` (NCCL on GPUs, gloo on CPU); ``solver.batch_size`` is per
process. ``--resume`` continues from a checkpoint file or a run folder's last checkpoint and
reproduces the uninterrupted run's steps, in the run folder it resumes from unless ``--out``
says otherwise. ``--max-steps N`` stops after N steps in all (a smoke run:
``siam-train RECIPE --max-steps 4 --out /tmp/t``). PyTorch loads after the arguments are
parsed, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from siam_core.threads import AUTO, set_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siam-train", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="training recipe (YAML), e.g. siam_core/configs/train/*")
    parser.add_argument(
        "--out",
        help="run folder (default: the folder --resume names, else runs/<recipe name>)",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="with --resume: write <out>/model.safetensors from that checkpoint, no training",
    )
    parser.add_argument(
        "--resume", help="checkpoint file (.pt) or run folder to continue from its last checkpoint"
    )
    parser.add_argument(
        "--resume-if-any",
        action="store_true",
        help="continue from the run folder's last checkpoint when it has one (re-runnable jobs)",
    )
    parser.add_argument(
        "--time-steps",
        type=int,
        metavar="N",
        help="measure: median seconds per optimisation step over N steps, head-only stage, "
        "cached-feature stage (with solver.feature_cache) and backbone-training stage side by "
        "side, then exit without training",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop after N optimisation steps in all, checkpointed and exported (smoke runs)",
    )
    parser.add_argument(
        "--data-root",
        metavar="DIR",
        help="resolve the recipe's relative paths against DIR instead of the recipe's folder "
        "(for a copied recipe: the folder of the original, e.g. siam_core/configs/train)",
    )
    parser.add_argument(
        "--threads",
        default=AUTO,
        help="CPU threads for PyTorch per process: auto (default; see siam_core.threads) or N",
    )
    parser.add_argument(
        "--check-only",
        action="store_true",
        help="validate the recipe and its data paths, print the resolved config and exit",
    )
    return parser


def run_folder(resume: str) -> Path:
    """The run folder a ``--resume`` argument belongs to: the folder itself, or the run that
    holds a ``checkpoints/step_*.pt`` file."""
    path = Path(resume)
    if path.is_file() and path.parent.name == "checkpoints":
        return path.parent.parent
    return path if path.is_dir() else path.parent


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported after parsing: the training modules load PyTorch, which --help does not need.
    from siam_core.train.config import load_train_config

    try:
        cfg = load_train_config(args.config, base_dir=args.data_root)
        threads = set_threads(args.threads)
    except ValueError as exc:
        print(f"siam-train: {exc}", file=sys.stderr)
        return 2
    if args.check_only:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        solver = cfg.solver
        steps = solver.epochs * (solver.pairs_per_epoch // solver.batch_size)
        print(
            f"OK: {args.config} is valid and its {len(cfg.data.sources)} data source(s) exist; "
            f"{solver.epochs} epochs, {steps} steps of batch {solver.batch_size} "
            f"in one process"
        )
        return 0
    if args.time_steps:
        from siam_core.train.trainer import time_steps

        rows = time_steps(cfg, args.time_steps)
        for stage, seconds in rows.items():
            print(
                f"{stage}: median {seconds:.3f} s/step (batch {cfg.solver.batch_size}, "
                f"{threads} threads)"
            )
        base = rows.get("head-only")
        for stage, seconds in rows.items():
            if base and stage != "head-only":
                print(f"ratio {stage}/head-only: {seconds / base:.3f}")
        return 0
    from siam_core.train.trainer import RunFinished, train

    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = run_folder(args.resume)
    else:
        out = Path("runs") / cfg.name
    resume = args.resume
    if args.resume_if_any and not resume and (out / "checkpoints" / "last.txt").is_file():
        resume = str(out)
    try:
        exported = train(cfg, out, resume=resume, export_only=args.export, max_steps=args.max_steps)
    except RunFinished as done:
        print(f"siam-train: {done}")
        return 0
    except ValueError as exc:
        print(f"siam-train: {exc}", file=sys.stderr)
        return 2
    if exported is not None:
        print(f"siam-train: weights written to {exported}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
