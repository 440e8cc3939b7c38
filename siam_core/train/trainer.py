"""The training loop: SGD, warm-up and log-space decay, staged backbone unfreezing, DDP.

Schedules follow seeds-spec §5.5: SGD with momentum and weight decay; ``warmup.epochs`` whose lr
steps geometrically from ``warmup.start_lr`` towards ``warmup.end_lr`` (pysot's "step" warm-up),
then a per-epoch log-space decay from ``lr.start`` to ``lr.end`` (SiamRPN, SiamRPN++). The
backbone is frozen until ``backbone.unfreeze_epoch`` and then trains ``train_layers`` at
``lr_mult`` times the lr (SiamRPN++: 5 head-only epochs, 0.1x backbone lr; pysot keeps
conv1/layer1 frozen). Frozen layers keep BatchNorm in eval mode.

Determinism and exact resume: every pair is a function of (seed, epoch, index) (see
``sampling``), the model is initialised from the seed, and a checkpoint stores model,
optimiser, AMP scaler, torch RNG and the position (epoch, batch), so a resumed run draws the
same batches and reproduces the same steps. Distributed data parallel uses
``torch.distributed`` as ``torchrun`` sets it up (NCCL on CUDA, gloo on CPU); rank r takes the
r-th slice of every global batch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from siam_core.checkpoint import load_weights, read_state_dict, save_checkpoint
from siam_core.models.model import SiameseFC, SiameseRPN, build_model
from siam_core.train.config import SolverConfig, TrainConfig
from siam_core.train.data import build_sources
from siam_core.train.feature_cache import (
    FeatureCache,
    backbone_maps,
    build_feature_cache,
    cache_order,
    fingerprint,
)
from siam_core.train.losses import response_loss, rpn_loss
from siam_core.train.sampling import PairDataset
from siam_core.train.targets import AnchorTargets, ResponseTargets

# torchvision's ImageNet input normalisation (RGB, 0..1), folded into the stem when a backbone
# initialised from torchvision weights is fed BGR 0..255 patches as every model here is.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def lr_at(solver: SolverConfig, epoch: int) -> float:
    """Learning rate of a (0-based) epoch."""
    w = solver.warmup
    if epoch < w.epochs:
        return w.start_lr * (w.end_lr / w.start_lr) ** (epoch / w.epochs)
    n = solver.epochs - w.epochs
    j = epoch - w.epochs
    if n <= 1:
        return solver.lr.start
    return solver.lr.start * (solver.lr.end / solver.lr.start) ** (j / (n - 1))


class BatchIndices(Sampler[list[int]]):
    """This rank's slice of each global batch of one epoch, from batch ``start`` on."""

    def __init__(
        self, epoch: int, per_epoch: int, batch: int, rank: int, world: int, start: int = 0
    ) -> None:
        self.epoch, self.per_epoch, self.batch = epoch, per_epoch, batch
        self.rank, self.world, self.start = rank, world, start
        self.steps = per_epoch // (batch * world)

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for b in range(self.start, self.steps):
            base = self.epoch * self.per_epoch + (b * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))


def fold_input_normalisation(backbone: nn.Module) -> None:
    """Make a stem trained on RGB ``(x/255 - mean)/std`` accept BGR 0..255 input exactly.

    The first conv's input channels are reversed and scaled by 1/(255 std); its constant offset
    ``-sum W mean/std`` moves into the following BatchNorm's running mean. Exact only for an
    unpadded stem (padding would add the offset at the border), which is what the tracking
    backbones use; anything else is refused.
    """
    modules = list(backbone.modules())
    conv = next((m for m in modules if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels != 3:
        raise ValueError("cannot fold input normalisation: no 3-channel stem convolution")
    bn = next((m for m in modules[modules.index(conv) :] if isinstance(m, nn.BatchNorm2d)), None)
    if bn is None or conv.bias is not None or any(p != 0 for p in conv.padding):
        raise ValueError(
            "cannot fold input normalisation: the stem must be an unpadded conv without bias "
            "followed by BatchNorm"
        )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        w = conv.weight.clone()
        offset = -(w * (mean / std)).sum(dim=(1, 2, 3))
        conv.weight.copy_((w / (255.0 * std)).flip(1))
        bn.running_mean.sub_(offset)


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def setup_distributed() -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` describes; (rank, world, device).

    NCCL with one GPU per process on CUDA machines, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world, device


class Trainer:
    """Trains one model from one ``TrainConfig`` into ``out_dir``."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path,
        device: torch.device | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.rank, self.world = rank, world
        self.device = device or torch.device("cpu")
        solver = cfg.solver
        torch.manual_seed(cfg.runtime.seed)
        self.model: SiameseRPN | SiameseFC = build_model(cfg.model)
        self._init_weights()
        self.model.to(self.device)
        self.score_size = self._score_size()
        self.targets: AnchorTargets | ResponseTargets
        if isinstance(self.model, SiameseFC):  # SiamFC(+): logistic labels on the response
            self.targets = ResponseTargets(
                self.score_size, cfg.data.search_size, cfg.model.anchor.stride
            )
        else:
            self.targets = AnchorTargets(
                cfg.model.anchor, self.score_size, cfg.data.search_size, cfg.targets
            )
        self.anchors = torch.from_numpy(np.moveaxis(self.targets.anchors, -1, 0).copy()).to(
            self.device
        )
        self.dataset = PairDataset(cfg, build_sources(cfg), self.targets)
        backbone = list(self.model.backbone.parameters())
        ids = {id(p) for p in backbone}
        rest = [p for p in self.model.parameters() if id(p) not in ids]
        self.optimizer = torch.optim.SGD(
            [
                {"params": backbone, "lr_mult": solver.backbone.lr_mult},
                {"params": rest, "lr_mult": 1.0},
            ],
            lr=lr_at(solver, 0),
            momentum=solver.momentum,
            weight_decay=solver.weight_decay,
        )
        self.amp = solver.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.steps_per_epoch = solver.pairs_per_epoch // (solver.batch_size * world)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"solver.pairs_per_epoch ({solver.pairs_per_epoch}) is smaller than one global "
                f"batch ({solver.batch_size} x {world} processes)"
            )
        self.epoch, self.batch, self.global_step = 0, 0, 0
        self._trainable: frozenset[str] | None = None
        self.net: nn.Module = self.model
        self.writer = None
        self.cache: FeatureCache | None = None
        if solver.feature_cache.pairs and world > 1:
            raise ValueError("solver.feature_cache needs a single process (not torchrun)")

    # ----------------------------------------------------------------------------- setup
    def _init_weights(self) -> None:
        init = self.cfg.init
        if init.weights:
            load_weights(self.model, self.cfg.path(init.weights))
        if init.backbone:
            backbone = self.model.backbone
            if type(backbone).__name__ == "MobileNetV2TV":
                from siam_core.models.mobilenet import load_imagenet_weights

                path = None if init.backbone == "imagenet" else self.cfg.path(init.backbone)
                load_imagenet_weights(backbone, path)
                fold_input_normalisation(backbone)
            else:
                load_weights(backbone, read_state_dict(self.cfg.path(init.backbone)))

    def _score_size(self) -> int:
        d = self.cfg.data
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            z = torch.zeros(1, 3, d.template_size, d.template_size, device=self.device)
            x = torch.zeros(1, 3, d.search_size, d.search_size, device=self.device)
            out = self.model(z, x)
        self.model.train(was)
        cls, loc = out if isinstance(out, tuple) else (out, out)
        if cls.shape[-1] != cls.shape[-2] or loc.shape[-1] != cls.shape[-1]:
            raise RuntimeError(f"model outputs are not square maps: {tuple(cls.shape)}")
        return int(cls.shape[-1])

    def _backbone_trainable(self, epoch: int) -> frozenset[str]:
        """Names of backbone parameters that train in ``epoch``."""
        sched = self.cfg.solver.backbone
        if epoch < sched.unfreeze_epoch:
            return frozenset()
        names = [n for n, _ in self.model.backbone.named_parameters()]
        if not sched.train_layers:
            return frozenset(names)
        layers = sched.train_layers
        if sched.unfreeze_every:  # one more layer every unfreeze_every epochs, in listed order
            layers = layers[: 1 + (epoch - sched.unfreeze_epoch) // sched.unfreeze_every]
        prefixes = tuple(f"{layer}." for layer in layers)
        missing = [p[:-1] for p in prefixes if not any(n.startswith(p) for n in names)]
        if missing:
            children = sorted(n for n, _ in self.model.backbone.named_children())
            raise ValueError(
                f"solver.backbone.train_layers {missing} name no backbone parameters; "
                f"the backbone's layers are {children}"
            )
        return frozenset(n for n in names if n.startswith(prefixes))

    def _apply_stage(self, epoch: int) -> None:
        """Freeze/unfreeze the backbone for ``epoch``; re-wrap DDP when the set changes."""
        trainable = self._backbone_trainable(epoch)
        for name, p in self.model.backbone.named_parameters():
            p.requires_grad_(name in trainable)
        self.model.train()
        for name, m in self.model.backbone.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                own = [f"{name}.{n}" if name else n for n, _ in m.named_parameters()]
                frozen = not own or not all(n in trainable for n in own)
                if frozen or not self.cfg.solver.backbone.train_bn:
                    m.eval()
        if trainable != self._trainable:
            self._trainable = trainable
            if self.world > 1:
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.net = DistributedDataParallel(self.model, device_ids=ids)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.cfg.solver, epoch) * group["lr_mult"]

    # ------------------------------------------------------------------------ checkpoints
    def checkpoint_path(self, step: int) -> Path:
        return self.out / "checkpoints" / f"step_{step:08d}.pt"

    def _sync_buffers(self) -> None:
        """Give every replica rank 0's buffers (BatchNorm statistics): DDP averages gradients,
        so parameters agree, but each rank updates its running statistics on its own batches."""
        if dist.is_initialized() and self.world > 1:
            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def save(self) -> Path | None:
        """Write the full training state (rank 0 only); returns the file."""
        self._sync_buffers()
        if not _is_main():
            return None
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "global_step": self.global_step,
            "torch_rng": torch.get_rng_state(),
            "config": json.dumps(self.cfg.to_dict()),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        path = self.checkpoint_path(self.global_step)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        (self.out / "checkpoints" / "last.txt").write_text(path.name + "\n")
        return path

    def resume(self, path: str | Path) -> None:
        """Restore a state saved by :meth:`save` (read with ``weights_only=True``)."""
        path = Path(path)
        if path.is_dir():
            last = path / "checkpoints" / "last.txt"
            if not last.is_file():
                raise ValueError(f"{path} holds no checkpoint (no checkpoints/last.txt)")
            path = path / "checkpoints" / last.read_text().strip()
        if not path.is_file():
            raise ValueError(f"checkpoint not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = {"model", "optimizer", "epoch", "batch", "global_step"} - set(state)
        if missing:
            raise ValueError(f"{path} is not a training checkpoint: missing {sorted(missing)}")
        self.model.load_state_dict(state["model"])
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self.global_step = int(state["global_step"])
        # The optimiser's groups must exist with the same parameters before loading its state.
        self._apply_stage(self.epoch)
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    # -------------------------------------------------------------------------- training
    def _loader(self, epoch: int, start: int) -> DataLoader:
        sampler = BatchIndices(
            epoch,
            self.cfg.solver.pairs_per_epoch,
            self.cfg.solver.batch_size,
            self.rank,
            self.world,
            start,
        )
        workers = self.cfg.runtime.num_workers
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers > 0 else None,
        )

    def _uses_cache(self, epoch: int) -> bool:
        """Cached maps serve ``epoch`` when the cache is on and the backbone is frozen in it."""
        return bool(self.cfg.solver.feature_cache.pairs) and not self._backbone_trainable(epoch)

    def cache_dir(self) -> Path:
        folder = self.cfg.solver.feature_cache.dir
        return self.cfg.path(folder) if folder else self.out / "feature_cache"

    def open_cache(self) -> FeatureCache:
        """Build (or finish, or reuse) this recipe's feature cache with the frozen backbone."""
        if self.cache is None:
            fc = self.cfg.solver.feature_cache
            # Frozen means eval mode throughout (BatchNorm on its running statistics), which
            # is the state every frozen-backbone epoch trains in; _apply_stage restores the rest.
            self.model.backbone.eval()
            self.cache = build_feature_cache(
                self.cache_dir(),
                self.model,
                self.dataset,
                fc.pairs,
                fc.dtype,
                fingerprint(self.cfg.to_dict(), fc.dtype),
                self.cfg.solver.batch_size,
                self.cfg.runtime.num_workers,
                self.device,
                log=tqdm.write,
            )
            self._apply_stage(self.epoch)
        return self.cache

    def _cached_batches(self, epoch: int, start: int) -> Iterator[dict]:
        cache = self.open_cache()
        self._apply_stage(epoch)
        n = self.cfg.solver.batch_size
        order = cache_order(self.cfg.runtime.seed, epoch, self.steps_per_epoch * n, cache.pairs)
        for b in range(start, self.steps_per_epoch):
            yield cache.batch(order[b * n : (b + 1) * n])

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on one batch of image pairs; returns the loss terms."""
        dev = self.device
        z = batch["template"].to(dev, non_blocking=True).float()
        x = batch["search"].to(dev, non_blocking=True).float()
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=self.amp):
            out = self.net(z, x)
        return self._update(out, batch)

    def cached_step(self, batch: dict) -> dict[str, float]:
        """The same step from the frozen backbone's maps (``zf``, ``xf`` lists) onwards."""
        if self._trainable:
            raise RuntimeError("a cached step needs the backbone frozen in this epoch")
        if isinstance(self.model, SiameseFC):
            raise RuntimeError("cached backbone maps are for RPN-family models")
        dev = self.device
        zf = [f.to(dev, non_blocking=True) for f in batch["zf"]]
        xf = [f.to(dev, non_blocking=True) for f in batch["xf"]]
        if self.cache is not None and self.cache.tensor_output:
            zf, xf = zf[0], xf[0]
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=self.amp):
            out = self.model.forward_backbone_maps(zf, xf)
        return self._update(out, batch)

    def _update(self, out: Any, batch: dict) -> dict[str, float]:
        """Loss of the network's outputs, backward pass and optimiser step."""
        dev = self.device
        if isinstance(self.model, SiameseFC):
            losses = response_loss(out, batch["label_cls"].to(dev), self.cfg.loss)
        else:
            losses = rpn_loss(
                out[0],
                out[1],
                batch["label_cls"].to(dev),
                batch["label_loc"].to(dev),
                batch["label_weight"].to(dev),
                self.cfg.loss,
                self.anchors,
            )
        total = losses["total"]
        if not torch.isfinite(total):
            raise RuntimeError(f"loss is not finite at step {self.global_step}: {total.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        clip = self.cfg.solver.grad_clip
        out = {k: float(v.detach()) for k, v in losses.items()}
        if clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            out["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return out

    @property
    def finished(self) -> bool:
        """Whether every epoch of the recipe has been trained."""
        return self.epoch >= self.cfg.solver.epochs

    def fit(self, max_steps: int | None = None) -> dict[str, float]:
        """Train from the current position to the last epoch, or until the run has made
        ``max_steps`` optimisation steps in all (then checkpointed, so it can be resumed);
        returns the last step's losses."""
        cfg = self.cfg
        main = _is_main()
        if main and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.out.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        last: dict[str, float] = {}
        while self.epoch < cfg.solver.epochs:
            self._apply_stage(self.epoch)
            bar = tqdm(
                total=self.steps_per_epoch,
                initial=self.batch,
                desc=f"epoch {self.epoch + 1}/{cfg.solver.epochs}",
                disable=not main,
                dynamic_ncols=True,
            )
            t0 = time.perf_counter()
            cached = self._uses_cache(self.epoch)
            batches = self._cached_batches if cached else self._loader
            for batch in batches(self.epoch, self.batch):
                last = self.cached_step(batch) if cached else self.step(batch)
                self.batch += 1
                self.global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{last['total']:.3f}")
                self._log(batch, last, time.perf_counter() - t0)
                t0 = time.perf_counter()
                every = cfg.runtime.checkpoint_every
                if every and self.global_step % every == 0:
                    self.save()
                if max_steps is not None and self.global_step >= max_steps:
                    break
            bar.close()
            if self.batch >= self.steps_per_epoch:
                self.epoch += 1
                self.batch = 0
            self.save()
            if max_steps is not None and self.global_step >= max_steps:
                break
        return last

    def export(self, path: str | Path | None = None) -> Path | None:
        """Write the trained weights with their config embedded (rank 0 only)."""
        if not _is_main():
            return None
        path = Path(path) if path is not None else self.out / "model.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint(self.model, self.cfg.model, path, fp16=self.cfg.runtime.export_fp16)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # --------------------------------------------------------------------------- logging
    def _log(self, batch: dict[str, torch.Tensor], losses: dict[str, float], dt: float) -> None:
        if self.writer is None:
            return
        rt, step = self.cfg.runtime, self.global_step
        if rt.log_every and step % rt.log_every == 0:
            for key, value in losses.items():
                self.writer.add_scalar(f"loss/{key}" if key != "grad_norm" else key, value, step)
            self.writer.add_scalar("lr", self.optimizer.param_groups[1]["lr"], step)
            self.writer.add_scalar("seconds_per_step", dt, step)
            positives = (batch["label_cls"] == 1).flatten(1).sum(1).float().mean()
            self.writer.add_scalar("positives_per_pair", float(positives), step)
        if rt.image_every and step % rt.image_every == 0 and "template" in batch:
            self.writer.add_image("pair", pair_image(batch, self.targets), step, dataformats="HWC")


def pair_image(
    batch: dict[str, torch.Tensor], targets: AnchorTargets | ResponseTargets, i: int = 0
) -> np.ndarray:
    """RGB picture of pair ``i``: template beside search, target box green, positive anchor
    centres red and sampled negatives blue, so label assignment can be checked by eye."""
    z = batch["template"][i].permute(1, 2, 0).numpy().copy()
    x = batch["search"][i].permute(1, 2, 0).numpy().copy()
    box = batch["box"][i].numpy()
    cv2.rectangle(x, (round(box[0]), round(box[1])), (round(box[2]), round(box[3])), (0, 255, 0))
    labels = batch["label_cls"][i].numpy()
    for value, colour in ((0, (255, 0, 0)), (1, (0, 0, 255))):
        for a, yy, xx in zip(*np.nonzero(labels == value), strict=True):
            cx, cy = targets.anchors[a, yy, xx, :2]
            cv2.circle(x, (round(cx), round(cy)), 2, colour, -1)
    canvas = np.zeros((x.shape[0], z.shape[1] + x.shape[1], 3), np.uint8)
    canvas[: z.shape[0], : z.shape[1]] = z
    canvas[:, z.shape[1] :] = x
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)


def time_steps(cfg: TrainConfig, steps: int) -> dict[str, float]:
    """Median seconds per optimisation step on one real batch, before and after the backbone
    unfreezes (the costs that decide a run's length); the model is thrown away.

    With ``solver.feature_cache`` on, the frozen-backbone step is also timed from cached maps
    (``cached``), and ``head-only`` includes reading and cutting the batch's frames, as a
    training step pays it; the backbone stage is timed on the prepared batch alone.
    """
    import statistics
    import tempfile

    rank, world, device = setup_distributed()
    if world > 1:
        raise ValueError("time the steps in one process, not under torchrun")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp, device, rank, world)
        n = cfg.solver.batch_size
        items = [trainer.dataset[i] for i in range(n)]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        stages = {"head-only": 0}
        unfreeze = cfg.solver.backbone.unfreeze_epoch
        if 0 < unfreeze < cfg.solver.epochs:
            stages = {"head-only": 0, "backbone": unfreeze}
        elif unfreeze == 0:
            stages = {"backbone": 0}
        cache = bool(cfg.solver.feature_cache.pairs) and "head-only" in stages

        def load_and_step() -> None:
            fresh = [trainer.dataset[i] for i in range(n)]
            trainer.step({k: torch.stack([it[k] for it in fresh]) for k in fresh[0]})

        def timed(fn) -> float:
            fn()  # warm-up: allocations, lazy init
            times = []
            for _ in range(steps):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        out = {}
        for name, epoch in stages.items():
            trainer._apply_stage(epoch)
            if name == "head-only" and cache:
                out[name] = timed(load_and_step)
                with torch.no_grad():
                    maps = {
                        "zf": backbone_maps(trainer.model.backbone, batch["template"].float())[0],
                        "xf": backbone_maps(trainer.model.backbone, batch["search"].float())[0],
                    }
                cached = {**maps, **{k: batch[k] for k in ("label_cls", "label_loc")}}
                cached["label_weight"] = batch["label_weight"]
                out["cached"] = timed(lambda c=cached: trainer.cached_step(c))
            else:
                out[name] = timed(lambda: trainer.step(batch))
        trainer.close()
    return out


class RunFinished(Exception):
    """Resuming a run that has trained all its epochs: nothing to do (``--export`` re-exports)."""


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: str | Path | None = None,
    export_only: bool = False,
    max_steps: int | None = None,
) -> Path | None:
    """Train end to end (under ``torchrun`` too) and export; returns the exported file.

    ``export_only`` writes the weights of the ``resume`` checkpoint without training further
    (an intermediate model, e.g. to evaluate it). ``max_steps`` stops the run at that many
    optimisation steps in all (a smoke run, or a run cut into pieces; resume continues it).
    Resuming a finished run raises :class:`RunFinished` instead of silently exporting again.
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if export_only and not resume:
        raise ValueError("exporting needs a checkpoint to export: pass --resume")
    rank, world, device = setup_distributed()
    trainer = Trainer(cfg, out_dir, device, rank, world)
    try:
        if resume:
            trainer.resume(resume)
        if not export_only:
            if trainer.finished:
                raise RunFinished(
                    f"{resume} finished its {cfg.solver.epochs} epochs at step "
                    f"{trainer.global_step}: nothing to train (add --export to write its "
                    "weights again)"
                )
            if max_steps is not None and trainer.global_step >= max_steps:
                raise RunFinished(
                    f"{resume} is at step {trainer.global_step}, not before --max-steps "
                    f"{max_steps}: nothing to train"
                )
            trainer.fit(max_steps)
        return trainer.export()
    finally:
        trainer.close()
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
