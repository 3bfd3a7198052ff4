"""Trimaps: square erosion and dilation on packed bits, checked against brute force and running sums, and the
trimap's levels."""

from __future__ import annotations

import numpy as np
import pytest

from cutout.refine.trimap import HIGH, LOW, band_radius, dilate, erode, trimap_from_alpha, unknown_box, window_sum


def _brute_morphology(mask: np.ndarray, radius: int, erosion: bool) -> np.ndarray:
    """The window's all (erosion) or any (dilation) over its in-image pixels, pixel by pixel."""
    height, width = mask.shape
    out = np.empty_like(mask)
    for y in range(height):
        for x in range(width):
            window = mask[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
            out[y, x] = window.all() if erosion else window.any()
    return out


def _disc_alpha(height: int, width: int, radius: float, softness: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - height // 2, xx - width // 2)
    if softness == 0:
        return np.where(distance < radius, 255, 0).astype(np.uint8)
    return np.rint(np.clip((radius - distance) / softness + 0.5, 0, 1) * 255).astype(np.uint8)


def _reference_trimap(alpha: np.ndarray, radius: int, low: int = LOW, high: int = HIGH) -> np.ndarray:
    """The trimap's definition with window_sum's box counts: foreground where no pixel of the window is below high,
    background (which wins) where none is above low."""
    trimap = np.full(alpha.shape, 128, np.uint8)
    trimap[window_sum(alpha < high, radius) == 0] = 255
    trimap[window_sum(alpha > low, radius) == 0] = 0
    return trimap


def _random_blobs(height: int, width: int, seed: int, softness: float) -> np.ndarray:
    """A few overlapping soft-edged ellipses, some partly outside the image.

    Shape: (height, width) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    inside = np.full((height, width), -np.inf)
    for _ in range(4):
        cy, cx = rng.uniform(-0.2, 1.2) * height, rng.uniform(-0.2, 1.2) * width
        ry, rx = rng.uniform(0.1, 0.5) * max(height, 8), rng.uniform(0.1, 0.5) * max(width, 8)
        inside = np.maximum(inside, (1 - np.hypot((yy - cy) / ry, (xx - cx) / rx)) * max(ry, rx))  # ~ px inside
    return np.rint(np.clip(inside / softness + 0.5, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 40, 63, 64, 70])
@pytest.mark.parametrize("density", [0.1, 0.5, 0.95])
@pytest.mark.parametrize("shape", [(23, 31), (7, 150), (140, 5)])
def test_erode_and_dilate_equal_brute_force(radius: int, density: float, shape: tuple[int, int]) -> None:
    mask = np.random.default_rng(radius).random(shape) < density
    np.testing.assert_array_equal(erode(mask, radius), _brute_morphology(mask, radius, erosion=True))
    np.testing.assert_array_equal(dilate(mask, radius), _brute_morphology(mask, radius, erosion=False))


def test_window_sum_of_floats_equals_brute_force() -> None:
    values = np.random.default_rng(3).random((2, 9, 14)).astype(np.float32)
    expected = np.zeros_like(values)
    for y in range(9):
        for x in range(14):
            expected[:, y, x] = values[:, max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].sum(axis=(1, 2))
    result = window_sum(values, 3)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_the_border_does_not_erode() -> None:
    assert erode(np.ones((6, 7), bool), 3).all()
    assert not dilate(np.zeros((6, 7), bool), 3).any()


def test_morphology_of_empty_masks_and_negative_radii() -> None:
    assert erode(np.zeros((0, 5), bool), 3).shape == (0, 5) and dilate(np.zeros((4, 0), bool), 3).shape == (4, 0)
    assert trimap_from_alpha(np.zeros((0, 5), np.uint8)).shape == (0, 5)
    with pytest.raises(ValueError, match="radius"):
        dilate(np.ones((3, 3), bool), -1)


def test_band_radius_follows_the_image_size() -> None:
    assert band_radius(10, 10) == 2
    assert band_radius(1500, 2000) == 14
    assert band_radius(3000, 4000) == 28


def test_trimap_has_three_levels_and_every_soft_pixel_is_unknown() -> None:
    alpha = np.random.default_rng(0).integers(0, 256, (40, 50)).astype(np.uint8)
    alpha[:10] = 0
    alpha[-10:] = 255
    trimap = trimap_from_alpha(alpha, radius=2)
    assert trimap.dtype == np.uint8
    assert set(np.unique(trimap)) <= {0, 128, 255}
    soft = (alpha > 25) & (alpha < 230)
    assert (trimap[soft] == 128).all()
    assert (trimap[:8] == 0).all() and (trimap[-8:] == 255).all()


# Shapes around the 8-pixel bytes and 64-pixel words of the packed masks; radii below, at and past a word, and past
# the image.
@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (200, 3), (64, 64), (97, 301), (480, 641)])
@pytest.mark.parametrize("radius", [0, 1, 3, 7, 28, 63, 64, 65, 150])
def test_trimap_equals_its_definition_on_random_blobs(shape: tuple[int, int], radius: int) -> None:
    seed = shape[0] * 1000 + shape[1] + radius
    for softness in (1.0, 12.0):
        alpha = _random_blobs(*shape, seed, softness)
        np.testing.assert_array_equal(trimap_from_alpha(alpha, radius), _reference_trimap(alpha, radius))


@pytest.mark.parametrize(("low", "high"), [(0, 255), (100, 150), (200, 50)])
def test_trimap_equals_its_definition_with_other_thresholds(low: int, high: int) -> None:
    alpha = np.random.default_rng(low).integers(0, 256, (50, 130)).astype(np.uint8)
    alpha[:, :60] = np.where(alpha[:, :60] > 128, 255, 0)  # hard as well as noisy parts
    for radius in (0, 2, 9):
        expected = _reference_trimap(alpha, radius, low, high)
        np.testing.assert_array_equal(trimap_from_alpha(alpha, radius, low, high), expected)


def test_a_hard_disc_gives_a_ring_of_twice_the_radius() -> None:
    trimap = trimap_from_alpha(_disc_alpha(121, 141, 40), radius=4)
    centre_row, centre_col = trimap[60], trimap[:, 70]
    for line in (centre_row[70:], centre_row[70::-1], centre_col[60:], centre_col[60::-1]):
        unknown = np.flatnonzero(line == 128)
        # inside: 36..39 lose their full window, outside: 40..43 are within 4 px of the disc
        np.testing.assert_array_equal(unknown, np.arange(36, 44))
    yy, xx = np.nonzero(trimap == 128)
    distance = np.hypot(yy - 60, xx - 70)
    assert distance.min() > 40 - 4 * np.sqrt(2) - 1 and distance.max() < 40 + 4 * np.sqrt(2)


def test_the_default_radius_is_the_band_radius() -> None:
    alpha = _disc_alpha(300, 400, 100)
    np.testing.assert_array_equal(trimap_from_alpha(alpha), trimap_from_alpha(alpha, radius=band_radius(300, 400)))


@pytest.mark.parametrize("value", [0, 255])
def test_a_uniform_alpha_has_no_unknown_pixels(value: int) -> None:
    trimap = trimap_from_alpha(np.full((30, 40), value, np.uint8))
    assert (trimap == value).all()
    assert unknown_box(trimap) is None


def test_unknown_box_bounds_the_unknown_pixels() -> None:
    trimap = np.zeros((20, 30), np.uint8)
    trimap[5, 7] = trimap[12, 3] = trimap[9, 21] = 128
    top, bottom, left, right = unknown_box(trimap) or (0, 0, 0, 0)
    assert (top, bottom, left, right) == (5, 13, 3, 22)
    assert (trimap[top:bottom, left:right] == 128).sum() == 3


def test_trimap_rejects_a_float_alpha() -> None:
    with pytest.raises(ValueError, match="uint8"):
        trimap_from_alpha(np.zeros((4, 4), np.float32))
