"""The long-term state machine on hand-built score sequences, the search-growth schedule, and
configuration errors raised at configuration time."""

from __future__ import annotations

import numpy as np
import pytest

from siam_core.config import load_config
from siam_core.tracker.base import TrackState
from siam_core.tracker.longterm import LongTermConfig, LostStateMachine, lost_sizes_between

T, L, R = TrackState.TRACKING, TrackState.LOST, TrackState.RECOVERED


def run(machine: LostStateMachine, scores) -> list[TrackState]:
    return [machine.update(s) for s in scores]


def test_paper_transitions() -> None:
    m = LostStateMachine(LongTermConfig())  # 0.8 / 0.95
    scores = [0.99, 0.85, 0.79, 0.5, 0.9, 0.95, 0.951, 0.81, 0.3, 0.97, 0.2, 0.99, 0.8]
    expect = [T, T, L, L, L, L, R, T, L, R, L, R, T]
    assert run(m, scores) == expect


def test_recovered_lasts_one_frame_and_needs_a_confident_frame() -> None:
    m = LostStateMachine(LongTermConfig(enter_threshold=0.5, leave_threshold=0.9))
    assert run(m, [0.4, 0.95, 0.5]) == [L, R, T]  # 0.5 is confident (>= enter)
    assert run(m, [0.4, 0.95, 0.49]) == [L, R, L]


def test_threshold_edges_follow_pysot() -> None:
    """pysot: lost when score < low, back when score > high, box moves when score >= low."""
    m = LostStateMachine(LongTermConfig(enter_threshold=0.8, leave_threshold=0.998))
    assert m.update(0.8) is T and m.confident(0.8)
    assert m.update(0.7999) is L and not m.confident(0.7999)
    assert m.update(0.998) is L  # equal to high is not above it
    assert m.update(0.9981) is R


def test_matches_pysot_flag_on_random_scores() -> None:
    """Lost mode (state LOST) equals pysot's ``longterm_state`` flag on every frame."""
    rng = np.random.default_rng(7)
    low, high = 0.8, 0.998
    m = LostStateMachine(LongTermConfig(enter_threshold=low, leave_threshold=high))
    flag = False
    scores = np.concatenate([rng.uniform(0.6, 1.0, 500), rng.uniform(0.99, 1.0, 500)])
    seen = set()
    for s in scores:
        if s < low:
            flag = True
        elif s > high:
            flag = False
        state = m.update(float(s))
        seen.add(state)
        assert (state is L) == flag
    assert seen == {T, L, R}


def test_search_plan_grows_in_steps_and_holds_the_last_size() -> None:
    cfg = LongTermConfig(lost_instance_sizes=(383, 511, 767), frames_per_step=2)
    m = LostStateMachine(cfg)
    plans = [m.plan(255, 0.4)]
    for _ in range(8):
        m.update(0.1)
        plans.append(m.plan(255, 0.4))
    sizes = [p[0] for p in plans]
    assert sizes == [255, 383, 383, 511, 511, 767, 767, 767, 767]
    assert all(p[1] == 0.001 for p in plans[1:])
    m.update(0.99)  # recovered: back to the short-term search at once
    assert m.plan(255, 0.4) == (255, 0.4)
    m.update(0.1)
    assert m.plan(255, 0.4) == (383, 0.001)  # growth restarts from the first step


def test_paper_and_pysot_schedules() -> None:
    m = LostStateMachine(LongTermConfig())
    m.update(0.1)
    assert m.plan(255, 0.44) == (767, 0.001)
    lt = LongTermConfig.from_config(load_config("siamrpn_r50_l234_dwxcorr_lt"))
    assert lt == LongTermConfig(0.8, 0.998, (831,), 0.001, 1)
    m = LostStateMachine(lt)
    m.update(0.5)
    assert m.plan(255, 0.28) == (831, 0.001)
    lt.check_for(load_config("siamrpn_r50_l234_dwxcorr_lt"))


def test_from_config_defaults_and_overrides() -> None:
    cfg = load_config("siamrpn_r50_l234_dwxcorr")  # no long-term keys: the paper's values
    assert LongTermConfig.from_config(cfg) == LongTermConfig()
    lt = LongTermConfig.from_config(
        load_config("siamrpn_r50_l234_dwxcorr_lt"), leave_threshold=0.95, lost_instance_sizes=767
    )
    assert (lt.enter_threshold, lt.leave_threshold, lt.lost_instance_sizes) == (0.8, 0.95, (767,))
    assert LongTermConfig.from_dict({"lost_instance_sizes": [511, 767]}).lost_instance_sizes == (
        511,
        767,
    )


def test_online_thresholds_come_first_when_the_classifier_runs() -> None:
    """A model's ``online_confidence_low/high`` are its thresholds with DROL's classifier on
    (the fused choice's Siamese score sits lower); without the classifier, or without them,
    the plain ones (or the paper's) hold, and explicit overrides win either way."""
    cfg = load_config("siamrpn_r50_l234_dwxcorr_lt")
    tuned = cfg.replace_tracker(online_confidence_low=0.2, online_confidence_high=0.6)
    on = LongTermConfig.from_config(tuned, online=True)
    assert (on.enter_threshold, on.leave_threshold) == (0.2, 0.6)
    off = LongTermConfig.from_config(tuned)
    assert (off.enter_threshold, off.leave_threshold) == (0.8, 0.998)
    assert LongTermConfig.from_config(cfg, online=True) == off  # none tuned: the plain ones
    half = cfg.replace_tracker(online_confidence_low=0.3)
    assert LongTermConfig.from_config(half, online=True).leave_threshold == 0.998
    assert LongTermConfig.from_config(tuned, True, enter_threshold=0.1).enter_threshold == 0.1
    with pytest.raises(ValueError, match="online_confidence_low must not exceed"):
        cfg.replace_tracker(online_confidence_low=0.7, online_confidence_high=0.5)
    with pytest.raises(ValueError, match="online_confidence_high"):
        cfg.replace_tracker(online_confidence_high=1.5)
    assert tuned.to_dict()["tracker"]["online_confidence_low"] == 0.2


def test_appearance_check_reports_a_look_alike_and_gates_recovery() -> None:
    """With ``appearance_low/high`` a confident score on a box that does not look like the
    target is LOST (and does not move the box); leaving LOST needs both a score above
    ``leave_threshold`` and an appearance above ``appearance_high``. Without them (0) the
    machine is the score's alone."""
    c = LongTermConfig(
        enter_threshold=0.8, leave_threshold=0.95, appearance_low=0.45, appearance_high=0.5
    )
    m = LostStateMachine(c)
    assert m.update(0.99, 0.6) is T and m.confident(0.99, 0.6)
    assert m.update(0.99, 0.44) is L and not m.confident(0.99, 0.44)  # a look-alike
    assert m.update(1.0, 0.5) is L  # equal to high is not above it
    assert m.update(0.9, 0.9) is L  # the score is not above leave_threshold
    assert m.update(0.96, 0.51) is R
    assert m.update(0.85, 0.45) is T  # equal to low is kept
    plain = LostStateMachine(LongTermConfig())
    assert run(plain, [0.99, 0.79, 0.96]) == [T, L, R]
    assert plain.update(0.99, 0.0) is T  # appearance_low 0: nothing is below it
    assert LongTermConfig().appearance_low == LongTermConfig().appearance_high == 0.0
    with pytest.raises(ValueError, match="finite"):
        m.update(0.9, float("nan"))


def test_appearance_thresholds_come_from_the_model_config() -> None:
    cfg = load_config("siamrpn_r50_l234_dwxcorr_lt")
    tuned = cfg.replace_tracker(appearance_low=0.4, appearance_high=0.5)
    for online in (False, True):
        lt = LongTermConfig.from_config(tuned, online=online)
        assert (lt.appearance_low, lt.appearance_high) == (0.4, 0.5)
    assert LongTermConfig.from_config(tuned, appearance_low=0.0).appearance_low == 0.0
    assert LongTermConfig.from_config(cfg).appearance_high == 0.0
    assert tuned.to_dict()["tracker"]["appearance_high"] == 0.5
    with pytest.raises(ValueError, match="appearance_low must not exceed"):
        cfg.replace_tracker(appearance_low=0.6, appearance_high=0.5)
    with pytest.raises(ValueError, match="appearance_high"):
        cfg.replace_tracker(appearance_high=1.5)


def test_lost_sizes_between_snaps_to_the_stride_grid() -> None:
    cfg = load_config("siamrpn_r50_l234_dwxcorr")
    assert lost_sizes_between(cfg, 767, 1) == (767,)
    assert lost_sizes_between(cfg, 767, 2) == (511, 767)
    assert lost_sizes_between(cfg, 831, 3) == (447, 639, 831)
    for size in lost_sizes_between(cfg, 831, 5):
        assert (size - 127) % 8 == 0
    LongTermConfig(lost_instance_sizes=lost_sizes_between(cfg, 831, 4)).check_for(cfg)
    with pytest.raises(ValueError, match="exceed"):
        lost_sizes_between(cfg, 255, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"enter_threshold": 1.2}, r"enter_threshold must lie in \[0, 1\]"),
        ({"enter_threshold": -0.1}, r"enter_threshold must lie in \[0, 1\]"),
        ({"leave_threshold": float("nan")}, r"leave_threshold must lie in \[0, 1\]"),
        ({"enter_threshold": 0.9, "leave_threshold": 0.9}, "must be below leave_threshold"),
        ({"enter_threshold": 0.95, "leave_threshold": 0.8}, "must be below leave_threshold"),
        ({"lost_window_influence": 2.0}, r"lost_window_influence must lie in \[0, 1\]"),
        ({"enter_threshold": True}, "must be a number"),
        ({"enter_threshold": "0.8"}, "must be a number"),
        ({"lost_instance_sizes": ()}, "non-empty tuple"),
        ({"lost_instance_sizes": [767]}, "non-empty tuple"),
        ({"lost_instance_sizes": (767, 511)}, "increase strictly"),
        ({"lost_instance_sizes": (511, 511)}, "increase strictly"),
        ({"lost_instance_sizes": (767.0,)}, "positive integers"),
        ({"lost_instance_sizes": (0,)}, "positive integers"),
        ({"frames_per_step": 0}, "frames_per_step"),
        ({"appearance_low": 1.5, "appearance_high": 1.5}, r"appearance_low must lie in \[0, 1\]"),
        ({"appearance_low": 0.5, "appearance_high": 0.4}, "must not exceed appearance_high"),
        ({"appearance_high": float("inf")}, r"appearance_high must lie in \[0, 1\]"),
    ],
)
def test_bad_settings_fail_at_configuration(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LongTermConfig(**kwargs)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((255,), "must exceed the short-term size 255"),
        ((200, 767), "must exceed the short-term size"),
        ((770,), r"off the stride-8 grid .* use 767 or 775"),
    ],
)
def test_sizes_checked_against_the_model(sizes: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LongTermConfig(lost_instance_sizes=sizes).check_for(load_config("siamrpn_r50_l234_dwxcorr"))


def test_bad_mappings() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['enter'\]"):
        LongTermConfig.from_dict({"enter": 0.8})
    with pytest.raises(ValueError, match="must be a mapping"):
        LongTermConfig.from_dict([0.8, 0.95])
    with pytest.raises(ValueError, match="must be below"):
        LongTermConfig.from_config(
            load_config("siamrpn_r50_l234_dwxcorr_lt"), enter_threshold=0.999
        )


def test_non_finite_score_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        LostStateMachine(LongTermConfig()).update(float("nan"))
