"""Long-term tracking: an explicit TRACKING / LOST / RECOVERED state machine and local-to-global
search for every RPN-family tracker and the SiamFC family (DaSiamRPN §3.4, seeds-spec §6.8).

The machine is driven by the score of the chosen position: an RPN tracker's raw foreground
probability of the chosen proposal (spec I8), a SiamFC tracker's relative prominence (the chosen
response's height above its map's mean as a fraction of the first frame's, in [0, 1]; see
``siam_core.tracker.siamfc``). The two are different quantities, so a SiamFC config without
thresholds of its own gets ``SIAMFC_ENTER`` / ``SIAMFC_LEAVE`` instead of the paper's:

* TRACKING or RECOVERED -> LOST when the score drops below ``enter_threshold``;
* LOST -> RECOVERED when the score exceeds ``leave_threshold``;
* RECOVERED -> TRACKING on the next frame whose score is at least ``enter_threshold``;
* anything else keeps the state.

While LOST the search region grows through ``lost_instance_sizes`` (one size per
``frames_per_step`` lost frames, the last one held) with window influence
``lost_window_influence``; the paper uses one step 255 -> 767 with thresholds 0.8 / 0.95, pysot's
``SiamRPNLTTracker`` one step to 831 with window 0.001 and thresholds 0.8 / 0.998.

With ``redetect=False`` the machine only reports: the wrapped tracker runs its own short-term
step unchanged (same boxes, same search, no box held, no wider search, no appearance check
unless asked for), and the state says where its score fell. This is the node's default
(``report_lost``): a short-term tracker whose box sits on background at a score of 0.02 says
LOST instead of TRACKING, at no cost in accuracy and with no extra network pass.

Box updates follow pysot's ``SiamRPNLTTracker`` exactly (``pysot/tracker/siamrpnlt_tracker.py``):
a frame whose score is below ``enter_threshold`` keeps the previous centre and size (the last
confident box is held and reported, clipped to the image); any other frame updates them, also
while LOST (a candidate that is not yet trusted enough to leave the lost state); the stored
centre and size are the unclipped values, only the reported box is clipped. A SiamFC tracker
takes over its own search's values (centre and size clipped as SiamFC clips them, and the damped
search side) and reports its own box, so while confident it runs exactly as it does alone.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from siam_core.config import MAX_INPUT_SIDE, Config
from siam_core.tracker.base import Box, Tracker, TrackResult, TrackState
from siam_core.tracker.distractor import DistractorAwareTracker, DistractorConfig
from siam_core.tracker.drol import DROLTracker
from siam_core.tracker.siamfc import SiamFCTracker
from siam_core.tracker.siamrpn import SiamRPNTracker, build_tracker, clip_box

# DaSiamRPN §4.1: enter failure mode below 0.8, leave it above 0.95, search 255 -> 767.
PAPER_ENTER = 0.8
PAPER_LEAVE = 0.95
PAPER_LOST_SIZE = 767
# pysot SiamRPNLTTracker hard-codes this window influence while lost.
PYSOT_LOST_WINDOW = 0.001
# SiamFC family: thresholds on the relative prominence (1: the chosen response stands as far
# above its map's mean as the target's did on the first frame; 0: no further than the mean).
# Measured with tools/siamfc_thresholds.py on an ImageNet-feature SiamFC over 16 training
# sequences (README, "Long-term tracking"): with the target hidden the best match reaches 0.29
# (90th percentile), 0.38 (99th); a visible target has a median of 0.48. LOST below 0.3,
# RECOVERED above 0.45 (0.4 % of hidden frames).
SIAMFC_ENTER = 0.3
SIAMFC_LEAVE = 0.45
# The overrides that make a long-term config report only (the node's ``report_lost``,
# ``siam-track --report-lost``): no wider search, no held box, no appearance check (its
# template pass costs about a quarter of a frame, and with the default model it calls 14 % of
# on-target frames LOST: MODEL_CARD "Appearance check").
REPORT_ONLY: Mapping[str, Any] = MappingProxyType(
    {"redetect": False, "appearance_low": 0.0, "appearance_high": 0.0}
)


@dataclass(frozen=True)
class LongTermConfig:
    """What a user tunes for long-term mode; validated here, at configuration time."""

    enter_threshold: float = PAPER_ENTER
    leave_threshold: float = PAPER_LEAVE
    lost_instance_sizes: tuple[int, ...] = (PAPER_LOST_SIZE,)
    lost_window_influence: float = PYSOT_LOST_WINDOW
    frames_per_step: int = 1
    appearance_low: float = 0.0  # LOST below this appearance similarity; 0: no check
    appearance_high: float = 0.0  # RECOVERED needs more than this as well; 0: no check
    redetect: bool = True  # False: report the state only, the short-term track unchanged

    @property
    def checks_appearance(self) -> bool:
        """Whether the appearance check runs: ``appearance_high`` > 0 (it is at least ``low``)."""
        return self.appearance_high > 0

    def __post_init__(self) -> None:
        for name in (
            "enter_threshold",
            "leave_threshold",
            "lost_window_influence",
            "appearance_low",
            "appearance_high",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"longterm.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"longterm.{name} must lie in [0, 1], got {value}")
        if self.enter_threshold >= self.leave_threshold:
            raise ValueError(
                f"longterm.enter_threshold ({self.enter_threshold}) must be below "
                f"leave_threshold ({self.leave_threshold}), or the tracker could never leave "
                "the lost state on a score that does not also put it back"
            )
        if self.appearance_low > self.appearance_high:
            raise ValueError(
                f"longterm.appearance_low ({self.appearance_low}) must not exceed "
                f"appearance_high ({self.appearance_high})"
            )
        sizes = self.lost_instance_sizes
        if not isinstance(sizes, tuple) or not sizes:
            raise ValueError(
                f"longterm.lost_instance_sizes must be a non-empty tuple, got {sizes!r}"
            )
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"longterm.lost_instance_sizes must be positive integers: {sizes}")
            if size > MAX_INPUT_SIDE:
                raise ValueError(
                    f"longterm.lost_instance_sizes must be <= {MAX_INPUT_SIDE}: {sizes}"
                )
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise ValueError(f"longterm.lost_instance_sizes must increase strictly, got {sizes}")
        if not isinstance(self.redetect, bool):
            raise ValueError(f"longterm.redetect must be true or false, got {self.redetect!r}")
        steps = self.frames_per_step
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"longterm.frames_per_step must be an integer >= 1, got {steps!r}")

    @classmethod
    def from_config(cls, cfg: Config, online: bool = False, **overrides: Any) -> LongTermConfig:
        """The long-term settings a model config carries (pysot's LT keys), else the paper's
        (a SiamFC config's thresholds: ``SIAMFC_ENTER`` / ``SIAMFC_LEAVE``); with ``online``
        (DROL's classifier runs) the model's ``online_confidence_low/high`` come first.
        ``overrides`` replace single fields (e.g. ``leave_threshold=0.95``)."""
        t = cfg.tracker
        values: dict[str, Any] = {}
        if t.is_siamfc:
            values.update(enter_threshold=SIAMFC_ENTER, leave_threshold=SIAMFC_LEAVE)
        low, high = t.confidence_low, t.confidence_high
        if online:
            low = t.online_confidence_low if t.online_confidence_low is not None else low
            high = t.online_confidence_high if t.online_confidence_high is not None else high
        if low is not None:
            values["enter_threshold"] = low
        if high is not None:
            values["leave_threshold"] = high
        if t.lost_instance_size is not None:
            values["lost_instance_sizes"] = (t.lost_instance_size,)
        if t.lost_window_influence is not None:
            values["lost_window_influence"] = t.lost_window_influence
        if t.appearance_low is not None:
            values["appearance_low"] = t.appearance_low
        if t.appearance_high is not None:
            values["appearance_high"] = t.appearance_high
        values.update(cls.check_keys(overrides))
        return cls(**values)

    @classmethod
    def for_tracker(cls, tracker: Tracker, **overrides: Any) -> LongTermConfig:
        """``from_config`` for the tracker it will wrap: online thresholds where that tracker
        runs DROL's classifier."""
        return cls.from_config(tracker.cfg, isinstance(tracker, DROLTracker), **overrides)

    @classmethod
    def check_keys(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A settings mapping (a YAML section, ROS parameters) with its keys checked and a
        single lost size accepted for ``lost_instance_sizes``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"longterm settings must be a mapping, got {data!r}")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"longterm: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        values = dict(data)
        sizes = values.get("lost_instance_sizes")
        if isinstance(sizes, int) and not isinstance(sizes, bool):
            values["lost_instance_sizes"] = (sizes,)
        elif isinstance(sizes, list):
            values["lost_instance_sizes"] = tuple(sizes)
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LongTermConfig:
        """From a mapping; fields it leaves out take the paper's values."""
        return cls(**cls.check_keys(data))

    def check_for(self, cfg: Config) -> None:
        """Reject lost sizes the model cannot search at: each must exceed the short-term size
        and lie on the stride grid, (size - exemplar) divisible by the stride, so the score
        map stays centred on the search patch as the anchors assume (pysot: 255, 831).
        Reporting only (``redetect`` false) never searches at them, so nothing is checked."""
        if not self.redetect:
            return
        t, stride = cfg.tracker, cfg.anchor.stride
        for size in self.lost_instance_sizes:
            if size <= t.instance_size:
                raise ValueError(
                    f"longterm: lost search size {size} must exceed the short-term size "
                    f"{t.instance_size} of '{cfg.name}'"
                )
            if (size - t.exemplar_size) % stride:
                below = size - (size - t.exemplar_size) % stride
                raise ValueError(
                    f"longterm: lost search size {size} is off the stride-{stride} grid of "
                    f"'{cfg.name}' ((size - {t.exemplar_size}) must be a multiple of {stride}); "
                    f"use {below} or {below + stride}"
                )


class LostStateMachine:
    """The TRACKING / LOST / RECOVERED machine and the search plan it implies.

    Pure logic, no images: ``update(score)`` applies one frame's score and returns the new
    state; ``plan(short_size, short_window)`` says where the next frame is searched.
    """

    def __init__(self, config: LongTermConfig) -> None:
        self.config = config
        self.state = TrackState.TRACKING
        self.lost_frames = 0

    def reset(self) -> None:
        self.state = TrackState.TRACKING
        self.lost_frames = 0

    def confident(self, score: float, appearance: float = 1.0) -> bool:
        """Whether a frame's score is trusted enough to move the box (pysot: >= low), and its
        box looks enough like the target (``appearance``, 1.0 where no check runs)."""
        return score >= self.config.enter_threshold and appearance >= self.config.appearance_low

    def update(self, score: float, appearance: float = 1.0) -> TrackState:
        """Apply one frame's score and, with the appearance check on, the similarity of its
        box to the first frame's target (``LongTermTracker``)."""
        if not (math.isfinite(score) and math.isfinite(appearance)):
            raise ValueError(f"score and appearance must be finite, got {score}, {appearance}")
        c = self.config
        if self.state is TrackState.LOST:
            if score > c.leave_threshold and appearance > c.appearance_high:
                self.state, self.lost_frames = TrackState.RECOVERED, 0
            else:
                self.lost_frames += 1
        elif score < c.enter_threshold or appearance < c.appearance_low:
            self.state, self.lost_frames = TrackState.LOST, 1
        else:
            self.state = TrackState.TRACKING
        return self.state

    def plan(self, short_size: int, short_window: float) -> tuple[int, float]:
        """(instance size, window influence) for the next frame."""
        if self.state is not TrackState.LOST:
            return short_size, short_window
        c = self.config
        step = min((self.lost_frames - 1) // c.frames_per_step, len(c.lost_instance_sizes) - 1)
        return c.lost_instance_sizes[step], c.lost_window_influence


class LongTermTracker(Tracker):
    """Wraps any RPN-family tracker (``SiamRPNTracker`` or ``DistractorAwareTracker``) or a
    SiamFC-family one (``SiamFCTracker``) with the long-term state machine and local-to-global
    search.

    With ``siamrpn_r50_l234_dwxcorr_lt`` and its config's settings this is pysot's
    ``SiamRPNLTTracker``, frame for frame. A distractor-aware inner tracker learns its templates
    only on confident frames outside the lost state (as DROL adds no samples while lost).
    With ``config.redetect`` False it only reports the state of the wrapped tracker's own,
    unchanged track (the module's docstring).
    """

    def __init__(
        self, tracker: SiamRPNTracker | SiamFCTracker, config: LongTermConfig | None = None
    ) -> None:
        super().__init__()
        if not isinstance(tracker, SiamRPNTracker | SiamFCTracker):
            raise ValueError(
                "LongTermTracker wraps an RPN-family or SiamFC-family tracker, got "
                f"{type(tracker).__name__}"
            )
        self.config = config if config is not None else LongTermConfig.for_tracker(tracker)
        self.config.check_for(tracker.cfg)
        if isinstance(tracker, SiamFCTracker) and self.config.checks_appearance:
            raise ValueError(
                "longterm.appearance_low/high: the appearance check compares RPN-family "
                f"template kernels; {tracker.name} is a SiamFC-family tracker"
            )
        self.tracker = tracker
        self.machine = LostStateMachine(self.config)
        # reporting only tracks as the wrapped tracker does, so it keeps that tracker's name
        self.name = f"{tracker.name}+longterm" if self.config.redetect else tracker.name

    @property
    def state(self) -> TrackState:
        return self.machine.state if self.initialized else TrackState.IDLE

    @property
    def cfg(self) -> Config:
        """The wrapped tracker's model config."""
        return self.tracker.cfg

    @property
    def device(self) -> torch.device:
        return self.tracker.device

    def reset(self) -> None:
        super().reset()
        self.tracker.reset()
        self.machine.reset()

    def wait_background(self) -> None:
        self.tracker.wait_background()

    def _init(self, image: np.ndarray, box: Box) -> None:
        self.tracker.init(image, box)
        self.config.check_for(self.tracker.cfg)  # a tracker may pick its size per target
        self.machine.reset()

    def search_plan(self) -> tuple[int | None, float | None]:
        """The (instance size, window influence) this frame's search will ask for; (None,
        None) where it is the wrapped tracker's own (reporting only, ``redetect=False``), so a
        batched pass (``MultiTracker``) prefetches exactly what the step will read."""
        if not self.config.redetect:
            return None, None
        t = self.tracker.cfg.tracker
        return self.machine.plan(t.instance_size, t.window_influence)

    def _appearance(self, image: np.ndarray, box: Box, score: float) -> float | None:
        """The appearance check's similarity at ``box``, or None where it does not run (off,
        or the score alone already puts the frame below ``enter_threshold``)."""
        if not self.config.checks_appearance or score < self.config.enter_threshold:
            return None
        return self.tracker.appearance(image, box)  # type: ignore[union-attr]

    def _gated(self, score: float) -> float:
        """The score the machine sees: an online classifier may veto the Siamese score
        (``DROLTracker.gate_score``)."""
        inner = self.tracker
        return inner.gate_score(score) if isinstance(inner, DROLTracker) else score

    def _report(self, image: np.ndarray) -> TrackResult:
        """``redetect=False``: the wrapped tracker's own step, its state from its score."""
        res = self.tracker._track(image)  # the image is validated by ``track``
        score = self._gated(res.score)
        t0 = time.perf_counter()
        appearance = self._appearance(image, res.box, score)
        timings = dict(res.timings)
        if appearance is not None:
            timings["appearance"] = time.perf_counter() - t0
        state = self.machine.update(score, 1.0 if appearance is None else appearance)
        return replace(res, state=state, timings=timings, appearance=appearance)

    def _track(self, image: np.ndarray) -> TrackResult:
        if not self.config.redetect:
            return self._report(image)
        inner = self.tracker
        size, window = self.search_plan()
        was_lost = self.machine.state is TrackState.LOST
        res = inner.search(image, instance_size=size, window_influence=window)
        t0 = time.perf_counter()
        score = self._gated(res.score)
        timings = dict(res.timings)
        found = (res.cx - res.width / 2, res.cy - res.height / 2, res.width, res.height)
        t1 = time.perf_counter()
        appearance = self._appearance(image, found, score)
        if appearance is not None:
            timings["appearance"] = time.perf_counter() - t1
        check = 1.0 if appearance is None else appearance
        confident = self.machine.confident(score, check)
        if confident and isinstance(inner, SiamFCTracker):
            inner.adopt(res)  # centre, size and search side, as SiamFC alone takes them
        elif confident:  # pysot LT keeps the unclipped values as its state
            inner.center_pos = np.array([res.cx, res.cy])
            inner.size = np.array([res.width, res.height])
        state = self.machine.update(score, check)
        if isinstance(inner, DistractorAwareTracker):
            if confident and state is not TrackState.LOST:
                inner.learn(image)
                timings["learn"] = time.perf_counter() - t0
            else:
                inner.discard_sample()
        cx, cy, w, h = clip_box(
            float(inner.center_pos[0]),
            float(inner.center_pos[1]),
            float(inner.size[0]),
            float(inner.size[1]),
            image.shape,
        )
        box = (
            inner.report(cx, cy, w, h)
            if isinstance(inner, SiamFCTracker)
            else (cx - w / 2, cy - h / 2, w, h)
        )
        if isinstance(inner, DROLTracker) and not was_lost:
            timings["learn"] = inner.learn(image, box)  # DROL LT: no samples while lost
        return TrackResult(box, res.score, state, res.search_region, timings, appearance)


def build_longterm_tracker(
    name_or_cfg: str | Path | Config | dict[str, Any] | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    config: LongTermConfig | Mapping[str, Any] | None = None,
    distractor: DistractorConfig | Mapping[str, Any] | None = None,
) -> LongTermTracker:
    """A long-term tracker for a model (named as ``build_tracker`` takes it).

    ``config`` is a ``LongTermConfig``, or a mapping whose keys replace single fields of the
    model config's long-term settings; ``distractor`` (a ``DistractorConfig`` or a mapping)
    turns on distractor-aware inference. DaSiamRPN's official files load through
    ``siam_core.tracker.dasiamrpn.build_dasiamrpn_tracker`` and wrap the same way.
    """
    base = build_tracker(name_or_cfg, weights, device=device)
    if distractor is not None:
        settings = (
            distractor
            if isinstance(distractor, DistractorConfig)
            else DistractorConfig.from_dict(distractor)
        )
        base = DistractorAwareTracker(base.model, base.cfg, settings, device=device)
    if not isinstance(config, LongTermConfig):
        config = LongTermConfig.from_config(base.cfg, **LongTermConfig.check_keys(config or {}))
    return LongTermTracker(base, config)


def lost_sizes_between(cfg: Config, last: int, steps: int) -> tuple[int, ...]:
    """``steps`` lost search sizes growing evenly from the short-term size to ``last``, each
    snapped to the model's stride grid (e.g. 255 -> (511, 767) for two steps to 767)."""
    t, stride = cfg.tracker, cfg.anchor.stride
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if last <= t.instance_size:
        raise ValueError(f"the last size {last} must exceed the short-term size {t.instance_size}")
    out: list[int] = []
    for i in range(1, steps + 1):
        raw = t.instance_size + (last - t.instance_size) * i / steps
        cells = round((raw - t.exemplar_size) / stride)
        size = t.exemplar_size + cells * stride
        if not out or size > out[-1]:
            out.append(size)
    return tuple(out)
