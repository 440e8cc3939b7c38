"""Crop geometry and augmentation of training patches.

Every patch is cut straight from the source image (a full frame or a pysot 511-px crop) by one
affine warp, so shift and scale jitter cost no extra resampling. The crop follows the SiamRPN
context rule (seeds-spec §1.4): the template context square ``sqrt((w+p)(h+p))``, ``p = (w+h)/2``
maps to ``template_size`` pixels and the search patch keeps the same scale, so a search patch of
``search_size`` covers ``search_size / template_size`` times the context square. The target
centre lands on pixel ``(size - 1) / 2`` (pysot's convention, which puts it on the anchor grid's
centre ``size // 2`` for odd sizes) before the random shift.

Boxes are float ``(x1, y1, x2, y2)`` corners in pixels, as in pysot's training code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PatchAugment:
    """Augmentation of one patch kind (template or search); every field comes from the config.

    ``shift`` is the largest target displacement in patch pixels (uniform in ±shift on each axis;
    SiamRPN++'s spatial-aware sampling uses 64 for the search patch), ``scale`` the per-axis scale
    jitter (factor uniform in ``[1 - scale, 1 + scale]``, pysot's 0.18 for search). ``blur``,
    ``motion_blur``, ``color`` and ``flip`` are probabilities; their ranges follow.
    """

    shift: float = 0.0
    scale: float = 0.0
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    motion_blur: float = 0.0
    motion_blur_length: tuple[int, int] = (5, 15)
    color: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    flip: float = 0.0

    def __post_init__(self) -> None:
        for name in ("blur", "motion_blur", "color", "flip"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augment.{name} is a probability in [0, 1], got {value}")
        for name in ("shift", "brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.scale < 1.0:
            raise ValueError(f"augment.scale must be in [0, 1), got {self.scale}")
        lo, hi = self.blur_sigma
        if not 0 < lo <= hi:
            raise ValueError(f"augment.blur_sigma must be 0 < lo <= hi, got {self.blur_sigma}")
        lo, hi = self.motion_blur_length
        if not 3 <= lo <= hi:
            raise ValueError(
                f"augment.motion_blur_length must be 3 <= lo <= hi, got {self.motion_blur_length}"
            )


def context_side(width: float, height: float, context_amount: float = 0.5) -> float:
    """Side of the template context square, ``sqrt((w + p)(h + p))`` with ``p = c (w + h)``."""
    pad = context_amount * (width + height)
    return math.sqrt((width + pad) * (height + pad))


def crop_transform(
    box: np.ndarray,
    out_size: int,
    template_size: int,
    context_amount: float = 0.5,
    shift: tuple[float, float] = (0.0, 0.0),
    scale: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """2x3 affine map from source pixels to patch pixels for a target ``box`` (x1, y1, x2, y2).

    ``shift`` moves the target by (dx, dy) patch pixels; ``scale`` (sx, sy) enlarges the crop
    window per axis, so the target appears ``1/sx`` as wide (pysot's crop-box scaling).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise ValueError(f"box {list(box)} has no area")
    base = template_size / context_side(w, h, context_amount)
    kx, ky = base / scale[0], base / scale[1]
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    mid = (out_size - 1) / 2.0
    return np.array(
        [[kx, 0.0, mid + shift[0] - kx * cx], [0.0, ky, mid + shift[1] - ky * cy]],
        dtype=np.float64,
    )


def apply_to_box(matrix: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Map corners (x1, y1, x2, y2) through an axis-aligned 2x3 affine map."""
    x1 = matrix[0, 0] * box[0] + matrix[0, 2]
    x2 = matrix[0, 0] * box[2] + matrix[0, 2]
    y1 = matrix[1, 1] * box[1] + matrix[1, 2]
    y2 = matrix[1, 1] * box[3] + matrix[1, 2]
    return np.array([x1, y1, x2, y2], dtype=np.float32)


def warp_patch(image: np.ndarray, matrix: np.ndarray, out_size: int) -> np.ndarray:
    """Resample the patch; pixels outside the image get the frame's mean colour (seeds §1.4)."""
    pad = tuple(float(v) for v in image.reshape(-1, image.shape[2]).mean(axis=0))
    return cv2.warpAffine(
        image,
        matrix,
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=pad,
    )


def to_gray(image: np.ndarray) -> np.ndarray:
    """Three-channel grayscale, so gray pairs go through the same network input."""
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)


def motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """Linear motion blur: average along a line of ``length`` px at ``angle_deg`` (DA §3.2)."""
    length = length | 1
    kernel = np.zeros((length, length), dtype=np.float32)
    c = length // 2
    dx = math.cos(math.radians(angle_deg)) * c
    dy = math.sin(math.radians(angle_deg)) * c
    p0 = (round(c - dx), round(c - dy))
    p1 = (round(c + dx), round(c + dy))
    cv2.line(kernel, p0, p1, color=1.0, thickness=1)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def color_jitter(
    image: np.ndarray, brightness: float, contrast: float, saturation: float
) -> np.ndarray:
    """Scale brightness, contrast (around the mean gray) and saturation (around the gray image)."""
    img = image.astype(np.float32)
    img *= brightness
    gray = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    img = (img - gray.mean()) * contrast + gray.mean()
    gray3 = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    gray3 = gray3.astype(np.float32)[..., None]
    img = gray3 + (img - gray3) * saturation
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def flip_horizontal(patch: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the patch; the box's corners mirror about the patch's pixel centre line."""
    width = patch.shape[1]
    flipped = np.ascontiguousarray(patch[:, ::-1])
    return flipped, np.array(
        [width - 1 - box[2], box[1], width - 1 - box[0], box[3]], dtype=np.float32
    )


class PatchAugmenter:
    """Cuts and augments one patch kind; all randomness comes from the caller's generator."""

    def __init__(
        self, cfg: PatchAugment, template_size: int = 127, context_amount: float = 0.5
    ) -> None:
        self.cfg = cfg
        self.template_size = template_size
        self.context_amount = context_amount

    def __call__(
        self,
        image: np.ndarray,
        box: np.ndarray,
        out_size: int,
        rng: np.random.Generator,
        gray: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the (out_size, out_size, 3) uint8 patch and the target box in it."""
        cfg = self.cfg
        # Draw every random number in a fixed order, whatever is enabled, so changing one
        # probability does not reshuffle the others' draws.
        u = rng.random(12)
        shift = ((u[0] * 2 - 1) * cfg.shift, (u[1] * 2 - 1) * cfg.shift)
        scale = (1.0 + (u[2] * 2 - 1) * cfg.scale, 1.0 + (u[3] * 2 - 1) * cfg.scale)
        matrix = crop_transform(
            box, out_size, self.template_size, self.context_amount, shift=shift, scale=scale
        )
        if gray:
            image = to_gray(image)
        patch = warp_patch(image, matrix, out_size)
        out_box = apply_to_box(matrix, box)
        if u[4] < cfg.color:
            jitter = (u[5:8] * 2 - 1) * np.array([cfg.brightness, cfg.contrast, cfg.saturation])
            patch = color_jitter(patch, *(1.0 + jitter))
        if u[8] < cfg.blur:
            lo, hi = cfg.blur_sigma
            patch = gaussian_blur(patch, lo + (hi - lo) * u[9])
        if u[10] < cfg.motion_blur:
            lo, hi = cfg.motion_blur_length
            patch = motion_blur(patch, int(rng.integers(lo, hi + 1)), float(rng.uniform(0, 180)))
        if u[11] < cfg.flip:
            patch, out_box = flip_horizontal(patch, out_box)
        return patch, out_box
