"""DaSiamRPN as its authors' code runs it, optionally with the distractor-aware module.

The official tracker (foolwood/DaSiamRPN ``code/run_SiamRPN.py``) is pysot's SiamRPN procedure
(our ``SiamRPNTracker``) with three conventions of its own:

* a box (x, y, w, h) is centred at (x + w / 2, y + h / 2) (``rect_2_cxy_wh``), where pysot uses
  x + (w - 1) / 2; the reported box is centre - size / 2 in both;
* SiamRPNBIG (``adaptive``) searches at 287 instead of 271 when the first box covers less than
  0.4 % of the frame;
* the released code ran on Python 2, whose ``round`` sends halves away from zero: the template
  and search sides and the crop origins (``utils.get_subwindow_tracking``:
  ``round(pos - (sz + 1) / 2)``) are rounded that way here, where pysot rounds origins half up
  (``floor(v + 0.5)``). They part on negative halves, i.e. whenever a crop of even side reaches
  past the top or left border from an integer centre: the bag clip from the box
  315,140,112,112 starts its first search crop at y = -44 officially, -43 the pysot way.

Its Python 2 integer division gives score size 19 at 271 and the anchor origin
-(19 / 2) * 8 = -72, which is what ``anchor_grid`` computes, so no setting is needed for those.
(Run under Python 3 the same text would put the origin at -76, half a stride off the trained
geometry; that is not the released code's behaviour and is not reproduced.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from siam_core.config import Config
from siam_core.models.dasiamrpn_compat import load_dasiamrpn
from siam_core.tracker.base import Box
from siam_core.tracker.distractor import DistractorAwareTracker, DistractorConfig
from siam_core.tracker.siamrpn import SiamRPNTracker, round_half_away


@dataclass(frozen=True)
class OfficialSettings:
    """The official code's conventions that our config schema does not carry."""

    centre_offset: float = 0.5  # centre = x + (w - 1) / 2 + offset: 0.5 gives x + w / 2
    small_target_instance_size: int | None = None  # SiamRPNBIG: 287
    small_target_area: float = 0.004  # fraction of the frame below which it applies

    def __post_init__(self) -> None:
        offset = self.centre_offset
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not abs(offset) <= 1:
            raise ValueError(f"centre_offset must be a number in [-1, 1], got {offset!r}")
        size = self.small_target_instance_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"small_target_instance_size must be a positive integer, got {size!r}")
        if not 0.0 <= self.small_target_area <= 1.0:
            raise ValueError(f"small_target_area must lie in [0, 1], got {self.small_target_area}")


# foolwood/DaSiamRPN code/net.py: only SiamRPNBIG has 'adaptive': True
OFFICIAL = {
    "dasiamrpn_big": OfficialSettings(small_target_instance_size=287),
    "dasiamrpn_vot": OfficialSettings(),
    "dasiamrpn_otb": OfficialSettings(),
}


class _OfficialInit:
    """``_init`` with the official centre convention and small-target search size, and the
    released code's Python 2 rounding of crop sides and origins (halves away from zero)."""

    round_size = staticmethod(round_half_away)
    round_origin = staticmethod(round_half_away)
    softmax_last_axis = False  # F.softmax(score.view(2, -1), dim=0)
    official: OfficialSettings
    base_cfg: Config
    cfg: Config

    def _init(self, image: np.ndarray, box: Box) -> None:
        x, y, w, h = box
        s = self.official
        small = s.small_target_instance_size is not None and (
            w * h / float(image.shape[0] * image.shape[1]) < s.small_target_area
        )
        self.cfg = (
            self.base_cfg.replace_tracker(instance_size=s.small_target_instance_size)
            if small
            else self.base_cfg
        )
        shift = s.centre_offset
        super()._init(image, (x + shift, y + shift, w, h))  # type: ignore[misc]


class OfficialSiamRPNTracker(_OfficialInit, SiamRPNTracker):
    """The official DaSiamRPN tracker (plain SiamRPN procedure, official conventions)."""

    def __init__(
        self, model: Any, cfg: Config, official: OfficialSettings | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model, cfg, **kwargs)
        self.base_cfg = cfg
        self.official = (
            official if official is not None else OFFICIAL.get(cfg.name, OfficialSettings())
        )


class DaSiamRPNTracker(_OfficialInit, DistractorAwareTracker):
    """The official conventions plus distractor-aware re-ranking and template learning."""

    def __init__(
        self,
        model: Any,
        cfg: Config,
        config: DistractorConfig | None = None,
        official: OfficialSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, cfg, config, **kwargs)
        self.base_cfg = cfg
        self.official = (
            official if official is not None else OFFICIAL.get(cfg.name, OfficialSettings())
        )


def build_dasiamrpn_tracker(
    weights: str | Path,
    name: str | Config | None = None,
    device: str | torch.device = "cpu",
    distractor: DistractorConfig | bool = True,
) -> SiamRPNTracker:
    """A tracker from an official DaSiamRPN checkpoint (``SiamRPNBIG.model`` etc.).

    ``distractor=True`` (default) adds the distractor-aware module with the paper's settings,
    a ``DistractorConfig`` sets them, ``False`` runs exactly the official code's tracker.
    Wrap the result in ``LongTermTracker`` for long-term mode.
    """
    model, cfg = load_dasiamrpn(weights, name)
    if distractor is False:
        return OfficialSiamRPNTracker(model, cfg, device=device)
    config = distractor if isinstance(distractor, DistractorConfig) else DistractorConfig()
    return DaSiamRPNTracker(model, cfg, config, device=device)
