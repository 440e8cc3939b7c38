"""Several targets in one batched network pass per frame.

Each target keeps its own tracker (``SiamRPNTracker``, or one wrapped by ``LongTermTracker``):
its state, template kernels and long-term state machine. All of them share one network. Per
frame the targets are grouped by the search size they ask for (a lost long-term target widens
its search), each group's crops are stacked into one batch, the backbone and the head run once
per group with the targets' kernels stacked, and each target's outputs are handed to its own
tracker (``SiamRPNTracker.prefetch``). Its ``track`` then runs unchanged: the selection,
smoothing, clipping and long-term logic are the single-target code, not a copy.

With ``online`` every target is a ``DROLTracker`` with a classifier of its own (memory, filter,
states): its slice of the batched features goes to its classifier through the tracker's own
hook (``_score_features``) before its own ``select`` fuses the map in, so a target follows the
track it would follow alone. Asynchronous classifiers share one low-priority worker thread,
which runs every target's first-frame training and updates in the order they were asked for.

Distractor-aware trackers re-rank with per-target template sets and run on their own. With
device crops (the GPU path) the frame is uploaded once per frame for all targets, and each
target's crop is cut from it on the device.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from siam_core.config import Config, OnlineConfig
from siam_core.models.model import SiameseRPN
from siam_core.online.classifier import background_worker
from siam_core.tracker.base import Tracker, TrackResult, TrackState, check_image
from siam_core.tracker.distractor import DistractorAwareTracker
from siam_core.tracker.drol import DROLTracker
from siam_core.tracker.longterm import LongTermConfig, LongTermTracker
from siam_core.tracker.siamrpn import SearchPatch, SiamRPNTracker

TargetId = Hashable


class MultiTracker:
    """Targets added and removed at any frame; ``track`` returns one result per target.

    ``long_term`` (a mapping, possibly empty) wraps every target in the long-term state
    machine with the config's settings and the mapping's overrides, as ``zoo.load_tracker``.
    ``online`` gives every target DROL's online classifier with these settings;
    ``shared_worker=False`` gives each asynchronous classifier a worker thread of its own
    instead of the one shared by all (measured in ``benchmarks/bench_online.py``).
    """

    def __init__(
        self,
        model: SiameseRPN,
        cfg: Config,
        device: str | torch.device = "cpu",
        long_term: Mapping[str, Any] | None = None,
        runtime: Any = None,
        online: OnlineConfig | None = None,
        shared_worker: bool = True,
        **gpu: Any,
    ) -> None:
        """``gpu``: ``SiamRPNTracker``'s GPU-path options (precision, graph_mode, device_crops)."""
        prototype = SiamRPNTracker(model, cfg, device=device, runtime=runtime, **gpu)
        self._share(prototype, long_term, online, shared_worker)

    @classmethod
    def from_tracker(
        cls,
        tracker: SiamRPNTracker,
        long_term: Mapping[str, Any] | None = None,
        shared_worker: bool = True,
    ) -> MultiTracker:
        """A multi-target tracker sharing ``tracker``'s (already optimised) network; a
        ``DROLTracker`` gives every target a classifier with its settings."""
        multi = cls.__new__(cls)
        online = tracker.online_cfg if isinstance(tracker, DROLTracker) else None
        multi._share(tracker, long_term, online, shared_worker)
        return multi

    def _share(
        self,
        prototype: SiamRPNTracker,
        long_term: Mapping[str, Any] | None,
        online: OnlineConfig | None,
        shared_worker: bool,
    ) -> None:
        self._prototype = prototype
        self.cfg = prototype.cfg
        self.name = f"{prototype.cfg.name}+multi"
        self.long_term = dict(long_term) if long_term is not None else None
        self.online = online
        self._shared_worker = shared_worker
        self._worker: ThreadPoolExecutor | None = None
        self._targets: dict[TargetId, Tracker] = {}

    @property
    def ids(self) -> list[TargetId]:
        return list(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def state(self, target_id: TargetId) -> TrackState:
        target = self._targets[target_id]
        if isinstance(target, LongTermTracker):
            return target.state
        return TrackState.TRACKING if target.initialized else TrackState.IDLE

    def _classifier_worker(self) -> ThreadPoolExecutor | None:
        """The worker every asynchronous classifier shares (None: each starts its own)."""
        if self.online is None or not self.online.async_update or not self._shared_worker:
            return None
        if self._worker is None:
            self._worker = background_worker()
        return self._worker

    def _new_target(self) -> Tracker:
        p = self._prototype
        online = self.online
        kind = SiamRPNTracker if online is None else DROLTracker
        inner = kind.__new__(kind)
        # the prototype's network, device and caches; fresh per-target state
        inner.__dict__.update(p.__dict__)
        inner._initialized = False
        inner._kernels = None
        inner._reference = None
        inner._prefetched = None
        inner._shared_frame = None
        inner._buffers = {}  # a batch pass reads several targets' crops at once
        if online is not None:  # a classifier of its own
            inner._setup_online(self.cfg, online, self._classifier_worker())  # type: ignore[attr-defined]
        if self.long_term is None:
            return inner
        return LongTermTracker(inner, LongTermConfig.for_tracker(inner, **self.long_term))

    def add(self, target_id: TargetId, image: np.ndarray, box: Sequence[float]) -> None:
        """Start tracking ``box`` of ``image`` as ``target_id``, replacing a target of that id.

        A failed init (bad box) raises and leaves every existing target as it was.
        """
        target = self._new_target()
        try:
            target.init(image, box)
        except Exception:
            self._discard(target)  # an online target's classifier may have started
            raise
        old = self._targets.get(target_id)
        self._targets[target_id] = target
        if old is not None:
            self._discard(old)

    def _discard(self, target: Tracker) -> None:
        """An online target's queued or running classifier job is cancelled, not waited for
        (``OnlineClassifier.close(wait=False)``): removing a target returns at once."""
        inner = self._inner(target)
        if isinstance(inner, DROLTracker):
            inner.online.classifier.close(wait=False)

    def remove(self, target_id: TargetId) -> bool:
        """Stop tracking ``target_id``; False if there was no such target."""
        target = self._targets.pop(target_id, None)
        if target is None:
            return False
        self._discard(target)
        return True

    def clear(self) -> None:
        """Stop tracking every target."""
        while self._targets:
            self._discard(self._targets.popitem()[1])

    def close(self) -> None:
        """Forget every target and stop the shared classifier worker."""
        self.clear()
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def configure_long_term(self, config: LongTermConfig) -> None:
        """New long-term settings (e.g. thresholds changed live) for every long-term target
        and for those added later."""
        if self.long_term is None:
            raise ValueError("configure_long_term: this MultiTracker has no long-term mode")
        config.check_for(self.cfg)
        self.long_term = asdict(config)
        for target in self._targets.values():
            target.config = target.machine.config = config  # type: ignore[attr-defined]

    @staticmethod
    def _inner(target: Tracker) -> SiamRPNTracker:
        return target.tracker if isinstance(target, LongTermTracker) else target  # type: ignore[return-value]

    def _plan(self, target: Tracker) -> tuple[int | None, float | None]:
        """The (instance size, window) the target's own ``track`` will ask ``search`` for."""
        if isinstance(target, LongTermTracker):
            return target.search_plan()
        return None, None

    def track(self, image: np.ndarray) -> dict[TargetId, TrackResult]:
        """Track every target in ``image``: one backbone and head pass per search size."""
        frame = check_image(image)
        groups: dict[int, list[tuple[TargetId, Tracker, tuple, SearchPatch]]] = {}
        p = self._prototype
        # device crops: the frame goes to the device once for all targets
        upload = p.device_crops and self._targets
        uploaded = torch.from_numpy(frame).to(p.device) if upload else None
        for tid, target in self._targets.items():
            inner = self._inner(target)
            if isinstance(inner, DistractorAwareTracker):
                continue
            if uploaded is not None:
                inner.share_frame(frame, uploaded)
            plan = self._plan(target)
            sp = inner._search_patch(frame, plan[0], plan[1], with_features=False)
            groups.setdefault(sp.size, []).append((tid, target, plan, sp))
        net = self._prototype.net
        for members in groups.values():
            t0 = time.perf_counter()
            # one merged graph where nobody reads the maps (no online target in the group)
            fused = all(self._inner(m[1]).fused_search for m in members)
            feats: list[torch.Tensor] = []
            with torch.inference_mode():
                batch = torch.cat([self._inner(m[1])._to_tensor(m[3].features) for m in members])
                kernels = [
                    torch.cat([self._inner(m[1])._kernels[i] for m in members])  # type: ignore[index]
                    for i in range(len(self._inner(members[0][1])._kernels))  # type: ignore[arg-type]
                ]
                if fused:
                    cls, loc = net.search(batch, kernels)
                else:
                    feats = net.features(batch)
                    cls, loc = net.rpn_head.track(kernels, feats)
                self._prototype._sync()
            share = (time.perf_counter() - t0) / len(members)
            for row, (_, target, plan, crop) in enumerate(members):
                inner = self._inner(target)
                crop.timings["network"] = share
                sp = crop
                if feats:
                    sp = replace(crop, features=[f[row : row + 1] for f in feats])
                    inner._score_features(sp)  # an online target's classifier scores its slice
                res = inner.select(cls[row : row + 1], loc[row : row + 1], sp)
                inner.prefetch(frame, res, plan[0], plan[1])
        return {tid: target.track(frame) for tid, target in self._targets.items()}
