"""Training pairs: which template and search frames, and whether the pair is negative.

Every pair is a pure function of (seed, epoch, index): its random generator is seeded from
those three numbers, so any worker, process or resumed run draws exactly the same pair, and
distributed ranks simply take disjoint index ranges.

- Positive pairs (SiamRPN §3.3): one track, template frame uniform, search frame within
  ``frame_range`` positions of it (pysot: VID 100, YouTube-BB 3; still images 0 -> the same
  image, which the augmentation turns into a detection pair, DaSiamRPN §3.2).
- Negative pairs (DaSiamRPN §3.2) with probability ``negative.prob``: the search shows another
  object, from the same category with probability ``negative.same_category`` (instance-level
  discrimination), else from a different category (no drifting to arbitrary objects). A track's
  category is its layout's class, else the one ``negative.categories`` gives its sequence;
  tracks without one count as their own category; when no same-category partner exists the
  pair falls back to a different-category one.
- Grayscale (DaSiamRPN §4.1: 25 %) is decided per pair so both patches match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from siam_core.train.augment import PatchAugmenter
from siam_core.train.config import TrainConfig
from siam_core.train.data import TrainingSource
from siam_core.train.targets import AnchorTargets


@dataclass(frozen=True)
class FrameRef:
    source: int
    track: int
    frame: int


@dataclass(frozen=True)
class PairSpec:
    template: FrameRef
    search: FrameRef
    negative: bool
    gray: bool
    same_category: bool = False


def pair_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one pair; independent streams per (seed, epoch, index)."""
    return np.random.default_rng([seed, epoch, index])


class PairSampler:
    """Chooses pairs across sources in proportion to their ``num_use``."""

    def __init__(
        self,
        sources: list[TrainingSource],
        neg_prob: float = 0.0,
        same_category: float = 0.5,
        gray: float = 0.0,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if not sources:
            raise ValueError("the pair sampler needs at least one source")
        self.sources = sources
        self.labels = dict(labels or {})
        videos = {t.video for src in sources for t in src.tracks}
        unknown = sorted(set(self.labels) - videos)
        if unknown:
            raise ValueError(f"negative.categories name sequences no source holds: {unknown}")
        self.neg_prob = neg_prob
        self.same_category = same_category
        self.gray = gray
        share = np.array([s.num_use for s in sources], dtype=np.float64)
        if share.sum() <= 0:
            raise ValueError("every training source has num_use 0")
        self.share = share / share.sum()
        self.by_category: dict[str | None, list[tuple[int, int]]] = {}
        self.all_tracks: list[tuple[int, int]] = []
        for si, src in enumerate(sources):
            for ti in range(len(src.tracks)):
                self.all_tracks.append((si, ti))
                category = self._category(si, ti)[0]
                if category is not None:
                    self.by_category.setdefault(category, []).append((si, ti))

    def _random_frame(self, si: int, ti: int, rng: np.random.Generator) -> FrameRef:
        frames = self.sources[si].tracks[ti].frames
        return FrameRef(si, ti, int(frames[rng.integers(len(frames))]))

    def _category(self, si: int, ti: int) -> tuple[str | None, str]:
        t = self.sources[si].tracks[ti]
        return t.category or self.labels.get(t.video), f"{si}/{t.video}/{t.track}"

    def sample(self, rng: np.random.Generator) -> PairSpec:
        u = rng.random(3)
        si = int(rng.choice(len(self.sources), p=self.share))
        src = self.sources[si]
        video = src.videos[rng.integers(len(src.videos))]
        candidates = src.video_tracks[video]
        ti = candidates[rng.integers(len(candidates))]
        gray = bool(u[0] < self.gray)
        if u[1] < self.neg_prob:
            template = self._random_frame(si, ti, rng)
            partner, same = self._negative_partner(si, ti, bool(u[2] < self.same_category), rng)
            return PairSpec(template, self._random_frame(*partner, rng), True, gray, same)
        frames = src.tracks[ti].frames
        t_pos = int(rng.integers(len(frames)))
        lo = max(t_pos - src.frame_range, 0)
        hi = min(t_pos + src.frame_range, len(frames) - 1)
        s_pos = int(rng.integers(lo, hi + 1))
        return PairSpec(
            FrameRef(si, ti, int(frames[t_pos])), FrameRef(si, ti, int(frames[s_pos])), False, gray
        )

    def _negative_partner(
        self, si: int, ti: int, want_same: bool, rng: np.random.Generator
    ) -> tuple[tuple[int, int], bool]:
        """Another object: same category if wanted and possible, else a different category."""
        category, ident = self._category(si, ti)
        video = self.sources[si].tracks[ti].video
        if want_same and category is not None:
            pool = [
                (s, t)
                for s, t in self.by_category.get(category, [])
                if (s, t) != (si, ti) and not (s == si and self.sources[s].tracks[t].video == video)
            ]
            if pool:
                return pool[rng.integers(len(pool))], True
        for _ in range(100):
            s, t = self.all_tracks[rng.integers(len(self.all_tracks))]
            other, other_ident = self._category(s, t)
            if other_ident == ident or (s == si and self.sources[s].tracks[t].video == video):
                continue
            if category is None or other is None or other != category:
                return (s, t), False
        raise RuntimeError(
            "cannot find a negative partner: every other track shares the category "
            f"'{category}'; add data of other categories or set negative.prob to 0"
        )


class PairDataset(Dataset):
    """Map-style dataset; item ``epoch * pairs_per_epoch + i`` is pair i of that epoch."""

    def __init__(
        self,
        cfg: TrainConfig,
        sources: list[TrainingSource],
        targets: AnchorTargets,
    ) -> None:
        data = cfg.data
        self.cfg = cfg
        self.sampler = PairSampler(
            sources,
            data.negative.prob,
            data.negative.same_category,
            data.gray,
            data.negative.labels(),
        )
        self.template_aug = PatchAugmenter(
            data.template_aug, data.template_size, data.context_amount
        )
        self.search_aug = PatchAugmenter(data.search_aug, data.template_size, data.context_amount)
        self.targets = targets
        self.per_epoch = cfg.solver.pairs_per_epoch

    def __len__(self) -> int:
        return self.per_epoch * self.cfg.solver.epochs

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(int(index), self.per_epoch)
        return self.item(epoch, i)

    def item(self, epoch: int, i: int) -> dict[str, torch.Tensor]:
        """Pair ``i`` of stream ``epoch`` (any non-negative number, not only a trained epoch)."""
        rng = pair_rng(self.cfg.runtime.seed, epoch, i)
        spec = self.sampler.sample(rng)
        data = self.cfg.data
        t_img, t_box = self.sampler.sources[spec.template.source].load(
            spec.template.track, spec.template.frame
        )
        s_img, s_box = self.sampler.sources[spec.search.source].load(
            spec.search.track, spec.search.frame
        )
        template, _ = self.template_aug(t_img, t_box, data.template_size, rng, spec.gray)
        search, box = self.search_aug(s_img, s_box, data.search_size, rng, spec.gray)
        labels = self.targets(box, spec.negative, rng)
        return {
            "template": torch.from_numpy(np.ascontiguousarray(template.transpose(2, 0, 1))),
            "search": torch.from_numpy(np.ascontiguousarray(search.transpose(2, 0, 1))),
            "label_cls": torch.from_numpy(labels.cls),
            "label_loc": torch.from_numpy(labels.delta),
            "label_weight": torch.from_numpy(labels.weight),
            "box": torch.from_numpy(box),
            "negative": torch.tensor(spec.negative),
        }
