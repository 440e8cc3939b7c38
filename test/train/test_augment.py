"""Every augmentation on real frames: the returned box must still cover the target.

"Covers the target" is checked on pixels, not only on arithmetic: the patch content inside the
returned box must match the target's appearance in the original frame (normalised
cross-correlation of the two regions resampled to 24x24 gray), and clearly better than the
same box moved by its own width (a control that shows the check can fail).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import frame_and_box

from siam_core.train.augment import PatchAugment, PatchAugmenter, context_side

CASES = [
    ("vot/bag", 0),  # 480x360, medium target
    ("otb/Crossing", 10),  # small pedestrian
    ("uav123_half/anno/boat1.txt", 5),  # aerial
]
AUGS = {
    "none": PatchAugment(),
    "shift": PatchAugment(shift=64),
    "scale": PatchAugment(scale=0.18),
    "blur": PatchAugment(blur=1.0, blur_sigma=(1.5, 1.5)),
    "motion_blur": PatchAugment(motion_blur=1.0, motion_blur_length=(9, 9)),
    "color": PatchAugment(color=1.0, brightness=0.3, contrast=0.3, saturation=0.3),
    "flip": PatchAugment(flip=1.0),
    "all": PatchAugment(
        shift=64,
        scale=0.18,
        blur=1.0,
        motion_blur=1.0,
        color=1.0,
        flip=1.0,
        blur_sigma=(1.0, 1.0),
        motion_blur_length=(7, 7),
    ),
}


def region(image: np.ndarray, box: np.ndarray, n: int = 24) -> np.ndarray:
    """The box's content resampled to n x n gray, float."""
    x1, y1, x2, y2 = (float(v) for v in box)
    m = np.array([[n / (x2 - x1), 0, -x1 * n / (x2 - x1)], [0, n / (y2 - y1), -y1 * n / (y2 - y1)]])
    patch = cv2.warpAffine(image, m, (n, n), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float64)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


@pytest.mark.parametrize("aug", sorted(AUGS))
@pytest.mark.parametrize("which,index", CASES)
def test_box_covers_target(sequences, which: str, index: int, aug: str) -> None:
    image, box = frame_and_box(sequences, which, index)
    cfg = AUGS[aug]
    rng = np.random.default_rng(7)
    patch, out = PatchAugmenter(cfg)(image, box, 255, rng)
    assert patch.shape == (255, 255, 3) and patch.dtype == np.uint8
    reference = region(image, box)
    if cfg.flip:
        reference = reference[:, ::-1]
    score = ncc(region(patch, out), reference)
    moved = out + np.array([1, 0, 1, 0]) * (out[2] - out[0])
    control = ncc(region(patch, moved), reference)
    assert score > 0.8, f"{aug}: target content lost (NCC {score:.2f})"
    assert score > control + 0.2, f"{aug}: NCC {score:.2f} vs moved box {control:.2f}"


@pytest.mark.parametrize("which,index", CASES)
def test_geometry(sequences, which: str, index: int) -> None:
    """Without jitter the target's context square is 127 px at the patch centre; shift moves it
    by at most ``shift``, scale changes its size by at most the configured factor, photometric
    augmentations leave the box alone and flip mirrors it."""
    image, box = frame_and_box(sequences, which, index)
    rng = np.random.default_rng(3)
    _, plain = PatchAugmenter(AUGS["none"])(image, box, 255, rng)
    w, h = plain[2] - plain[0], plain[3] - plain[1]
    assert context_side(w, h) == pytest.approx(127, rel=1e-4)
    assert (plain[0] + plain[2]) / 2 == pytest.approx(127, abs=1e-3)
    assert (plain[1] + plain[3]) / 2 == pytest.approx(127, abs=1e-3)
    shifts = []
    for seed in range(20):
        _, out = PatchAugmenter(AUGS["shift"])(image, box, 255, np.random.default_rng(seed))
        d = (out[:2] + out[2:]) / 2 - 127
        assert np.all(np.abs(d) <= 64 + 1e-3)
        assert out[2] - out[0] == pytest.approx(w, rel=1e-4)
        shifts.append(d)
    assert np.abs(np.array(shifts)).max() > 32, "shift never moved the target far"
    for seed in range(20):
        _, out = PatchAugmenter(AUGS["scale"])(image, box, 255, np.random.default_rng(seed))
        ratio = (out[2] - out[0]) / w
        assert 1 / 1.18 - 1e-4 <= ratio <= 1 / 0.82 + 1e-4
    for name in ("blur", "motion_blur", "color"):
        _, out = PatchAugmenter(AUGS[name])(image, box, 255, np.random.default_rng(3))
        np.testing.assert_allclose(out, plain, atol=1e-4)
    _, flipped = PatchAugmenter(AUGS["flip"])(image, box, 255, np.random.default_rng(3))
    np.testing.assert_allclose(flipped, [254 - plain[2], plain[1], 254 - plain[0], plain[3]])


def test_gray_pair(sequences) -> None:
    image, box = frame_and_box(sequences, "vot/bag")
    patch, out = PatchAugmenter(PatchAugment())(
        image, box, 127, np.random.default_rng(0), gray=True
    )
    assert np.array_equal(patch[..., 0], patch[..., 1]) and np.array_equal(
        patch[..., 1], patch[..., 2]
    )
    colour, _ = PatchAugmenter(PatchAugment())(image, box, 127, np.random.default_rng(0))
    assert not np.array_equal(colour[..., 0], colour[..., 2])
    assert ncc(region(patch, out), region(image, box)) > 0.9


def test_photometric_changes_pixels(sequences) -> None:
    """Each photometric augmentation really alters the patch (else the box tests prove nothing)."""
    image, box = frame_and_box(sequences, "vot/bag")
    plain, _ = PatchAugmenter(AUGS["none"])(image, box, 255, np.random.default_rng(1))
    for name in ("blur", "motion_blur", "color"):
        patch, _ = PatchAugmenter(AUGS[name])(image, box, 255, np.random.default_rng(1))
        diff = np.abs(patch.astype(int) - plain.astype(int)).mean()
        assert diff > 1.0, f"{name} changed almost nothing ({diff:.2f})"


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="blur is a probability"):
        PatchAugment(blur=1.5)
    with pytest.raises(ValueError, match="scale"):
        PatchAugment(scale=1.0)
    with pytest.raises(ValueError, match="shift"):
        PatchAugment(shift=-1)
