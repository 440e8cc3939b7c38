"""First-frame augmentations of DROL's classifier (spec §6.9.2; ATOM's set).

Facts from DROL ``pysot/tracker/classifier/libs/augmentation.py`` and ``base_classifier.py``:
each transform works on the (1, 3, 2S, 2S) float crop around the first target and crops the
result back to S × S around the centre plus its ``shift`` (y, x) with replicate padding where it
would leave the image; flip, blur and rotation draw a random shift of up to ±S/6 each
(``(rand(2) − 0.5) · S · factor``, truncated towards zero) in the order flip, blurs, rotations;
the relative shifts are ``int(±0.6 · S / 2)``; blur is a separable, sum-normalised Gaussian of
half-width ``ceil(2σ)`` with zero padding; rotation is OpenCV's bilinear ``warpAffine`` about the
crop centre with replicated borders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from siam_core.config import OnlineConfig


@dataclass(frozen=True)
class Augmentation:
    """One transform: ``kind`` (identity, shift, flip, blur, rotate), its parameter and the
    (dy, dx) shift of its output window, which also moves the label's centre."""

    kind: str
    shift: tuple[int, int] = (0, 0)
    sigma: tuple[float, float] = (0.0, 0.0)
    angle_deg: float = 0.0

    def __call__(self, image: torch.Tensor, output_size: int) -> torch.Tensor:
        if self.kind in ("identity", "shift"):
            out = image
        elif self.kind == "flip":
            out = image.flip((3,))
        elif self.kind == "blur":
            out = _blur(image, self.sigma)
        elif self.kind == "rotate":
            out = _rotate(image, self.angle_deg)
        else:
            raise ValueError(f"unknown augmentation {self.kind!r}")
        return crop_to_output(out, output_size, self.shift)


def crop_to_output(image: torch.Tensor, output_size: int, shift: tuple[int, int]) -> torch.Tensor:
    """The ``output_size`` square of ``image`` centred (floor side first) and moved by
    ``shift``; parts outside the image replicate its border (DROL ``crop_to_output``)."""
    h, w = image.shape[2:]
    pad_h = (output_size - h) / 2
    pad_w = (output_size - w) / 2
    pads = [
        math.floor(pad_w) + shift[1],
        math.ceil(pad_w) - shift[1],
        math.floor(pad_h) + shift[0],
        math.ceil(pad_h) - shift[0],
    ]
    left, right, top, bottom = (-min(p, 0) for p in pads)
    out = image[:, :, top : h - bottom, left : w - right]
    grow = [max(p, 0) for p in pads]
    if any(grow):
        out = F.pad(out, grow, mode="replicate")
    return out


def _blur(image: torch.Tensor, sigma: tuple[float, float]) -> torch.Tensor:
    size = [math.ceil(2 * s) for s in sigma]
    taps = []
    for half, s in zip(size, sigma, strict=True):
        x = torch.arange(-half, half + 1, dtype=torch.float32)
        k = torch.exp(-(x**2) / (2 * s**2))
        taps.append(k / k.sum())
    h, w = image.shape[2:]
    planes = image.reshape(-1, 1, h, w)
    planes = F.conv2d(planes, taps[0].view(1, 1, -1, 1), padding=(size[0], 0))
    planes = F.conv2d(planes, taps[1].view(1, 1, 1, -1), padding=(0, size[1]))
    return planes.reshape(1, -1, h, w)


def _rotate(image: torch.Tensor, angle_deg: float) -> torch.Tensor:
    arr = image.squeeze(0).permute(1, 2, 0).numpy()
    a = math.pi * angle_deg / 180
    c = (np.array(arr.shape[:2], dtype=np.float64).reshape(2, 1) - 1) / 2
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    m = np.concatenate([rot, c - rot @ c], 1)
    out = cv2.warpAffine(arr, m, arr.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(out).float().permute(2, 0, 1).unsqueeze(0)


def build_augmentations(
    sample_size: int, cfg: OnlineConfig, generator: torch.Generator
) -> list[Augmentation]:
    """The transforms ``cfg``'s ``augment_*`` fields ask for, in DROL's order (identity, shifts,
    flip, blurs, rotations), drawing the random shifts from ``generator`` in that order."""
    size = torch.tensor([float(sample_size)] * 2)
    random_shift_factor = cfg.random_shift_factor

    def rand_shift() -> tuple[int, int]:
        if random_shift_factor <= 0:
            return (0, 0)
        r = ((torch.rand(2, generator=generator) - 0.5) * size * random_shift_factor).long()
        return (int(r[0]), int(r[1]))

    out = [Augmentation("identity")]
    for rel in cfg.augment_relative_shift:
        absolute = (torch.tensor(rel, dtype=torch.float32) * size / 2).long()
        out.append(Augmentation("shift", shift=(int(absolute[0]), int(absolute[1]))))
    if cfg.augment_fliplr:
        out.append(Augmentation("flip", shift=rand_shift()))
    for sigma in cfg.augment_blur:
        out.append(Augmentation("blur", shift=rand_shift(), sigma=(sigma[0], sigma[1])))
    for angle in cfg.augment_rotate:
        out.append(Augmentation("rotate", shift=rand_shift(), angle_deg=float(angle)))
    return out
