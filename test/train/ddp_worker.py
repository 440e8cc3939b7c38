"""Worker for the DDP test, launched twice by ``torch.distributed.run`` (gloo on CPU).

Trains the recipe given on the command line, then every rank saves its replica's weights and
the pair indices it trained on, so the test can compare the ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from siam_core.train.config import load_train_config
from siam_core.train.trainer import BatchIndices, Trainer, setup_distributed


def main() -> None:
    cfg = load_train_config(sys.argv[1])
    out = Path(sys.argv[2])
    rank, world, device = setup_distributed()
    assert world == 2 and dist.get_backend() == "gloo"
    trainer = Trainer(cfg, out, device, rank, world)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        torch.save(trainer.model.state_dict(), out / "init.pt")
    trainer.fit()
    trainer.export()
    torch.save(trainer.model.state_dict(), out / f"rank{rank}.pt")
    s = cfg.solver
    seen = [i for b in BatchIndices(0, s.pairs_per_epoch, s.batch_size, rank, world) for i in b]
    np.save(out / f"indices{rank}.npy", np.array(seen))
    trainer.close()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
