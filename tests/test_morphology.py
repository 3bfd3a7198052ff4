"""clean_mask: rembg's --post-process-mask (opening, 5 x 5 Gaussian, threshold at 127) without OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from cutout.refine import clean_mask

# rembg's post_process(mask) on _noisy_disk(), computed with opencv-python-headless 5.0 as
#   cv2.morphologyEx(m, MORPH_OPEN, getStructuringElement(MORPH_ELLIPSE, (3, 3)));
#   cv2.GaussianBlur(m, (5, 5), sigmaX=2, sigmaY=2); np.where(m < 127, 0, 255)
# and stored as np.packbits(result > 0).hex().
OPENCV_RESULT = (
    "0000000000000000000000000000000000000000000000000003fe00000fff00001fff80003fff80007fffc0007fffc0007fffc000"
    "7fffc0007fffc0007fffc0007fffc0003fffc0003fffc0003fff80001fff00000ffe000003fc0000000000000000000000000000000000"
    "0000000000000000000000000000000000000000"
)


def _noisy_disk() -> np.ndarray:
    yy, xx = np.mgrid[0:32, 0:32]
    disk = np.where((yy - 14) ** 2 + (xx - 17) ** 2 < 100, 200, 50)
    noise = np.random.default_rng(7).integers(-90, 91, (32, 32))
    return np.clip(disk + noise, 0, 255).astype(np.uint8)


def test_a_one_pixel_speck_is_removed() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[5, 5] = 255
    mask[12:14, 12:14] = 255  # a 2 x 2 speck goes too
    np.testing.assert_array_equal(clean_mask(mask), 0)


def test_a_one_pixel_hole_is_filled() -> None:
    mask = np.full((20, 20), 255, np.uint8)
    mask[10, 10] = 0
    np.testing.assert_array_equal(clean_mask(mask), 255)


def test_a_subject_keeps_its_shape_and_the_output_is_hard() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    disk = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20**2).astype(np.uint8) * 255
    soft = np.clip(disk.astype(int) + np.random.default_rng(0).integers(-60, 61, disk.shape), 0, 255).astype(np.uint8)
    cleaned = clean_mask(soft)
    assert set(np.unique(cleaned)) <= {0, 255}
    inside, outside = cleaned > 0, disk > 0
    assert (inside & outside).sum() / (inside | outside).sum() > 0.95


def test_same_result_as_opencv() -> None:
    expected = np.unpackbits(np.frombuffer(bytes.fromhex(OPENCV_RESULT), np.uint8)).reshape(32, 32) * 255
    np.testing.assert_array_equal(clean_mask(_noisy_disk()), expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 3), (3, 70000 // 3)])
def test_any_size(shape: tuple[int, int]) -> None:
    mask = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    cleaned = clean_mask(mask)
    assert cleaned.shape == shape and cleaned.dtype == np.uint8 and set(np.unique(cleaned)) <= {0, 255}
    np.testing.assert_array_equal(clean_mask(np.full(shape, 255, np.uint8)), 255)


def test_bad_masks_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\(H, W\) uint8 mask, got shape \(4, 4, 3\)"):
        clean_mask(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype float32"):
        clean_mask(np.zeros((4, 4), np.float32))
