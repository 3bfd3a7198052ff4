"""estimate_foreground: Blur-Fusion x2 (Forte & Pitie 2021), only at soft pixels, against a direct implementation.

Images over a megapixel run both passes on a grid of samples; the tests force that grid on small images too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from cutout.refine import foreground
from cutout.refine.foreground import SOFT_HIGH, SOFT_LOW, blur_radii, estimate_foreground, sample_step

GREEN = np.array([0.0, 255.0, 0.0])


@pytest.fixture
def sampled(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, int, int], None]:
    """Makes images of the given size run on every ``step``-th pixel, as those over a megapixel do."""

    def sample_every(step: int, height: int, width: int) -> None:
        monkeypatch.setattr(foreground, "_FULL_PIXELS", 0)
        monkeypatch.setattr(foreground, "_GRID_PIXELS", height * width / (step * step - 0.5))
        assert sample_step(height, width) == step

    return sample_every


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2 radius + 1)-square window of each pixel, of the pixels inside the image (integral image)."""
    height, width = values.shape[:2]
    integral = np.zeros((height + 1, width + 1, values.shape[2]))
    integral[1:, 1:] = values.cumsum(0).cumsum(1)
    top, bottom = np.maximum(np.arange(height) - radius, 0), np.minimum(np.arange(height) + radius + 1, height)
    left, right = np.maximum(np.arange(width) - radius, 0), np.minimum(np.arange(width) + radius + 1, width)
    sums = integral[bottom][:, right] - integral[top][:, right] - integral[bottom][:, left] + integral[top][:, left]
    return sums / ((bottom - top)[:, None] * (right - left))[..., None]


def _blur_fusion(image: np.ndarray, f: np.ndarray, b: np.ndarray, alpha: np.ndarray, radius: int) -> tuple:
    """One pass of the authors' FB_blur_fusion_foreground_estimator, means over in-image pixels, no epsilon."""
    blurred_alpha = _box_mean(alpha, radius)
    f_blur = np.divide(_box_mean(f * alpha, radius), blurred_alpha, np.zeros_like(f), where=blurred_alpha > 0)
    b_blur = np.divide(_box_mean(b * (1 - alpha), radius), 1 - blurred_alpha, np.zeros_like(b), where=blurred_alpha < 1)
    f_hat = np.clip(f_blur + alpha * (image - alpha * f_blur - (1 - alpha) * b_blur), 0, 1)
    return f_hat, b_blur


def _reference(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blur-Fusion x2 at full resolution: large radius on (I, I), then small radius on (F_hat, B_blur)."""
    large, small = blur_radii(*alpha.shape)
    colour, weight = image / 255.0, alpha[..., None] / 255.0
    f_hat, b_blur = _blur_fusion(colour, colour, colour, weight, large)
    f_hat, _ = _blur_fusion(colour, f_hat, b_blur, weight, small)
    return np.rint(f_hat * 255).astype(np.uint8)


def _disc_composite(height: int, width: int, ramp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth orange-to-blue foreground disc with a soft edge ``ramp`` pixels wide, composited over green.

    Returns the composite image, the alpha and the true foreground, uint8.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = (xx / max(1, width - 1))[..., None]
    foreground = (1 - t) * np.array([230.0, 120.0, 40.0]) + t * np.array([60.0, 80.0, 220.0])
    distance = np.hypot(yy - height / 2, xx - width / 2)
    alpha = np.clip((0.35 * min(height, width) - distance) / ramp + 0.5, 0, 1)
    alpha = np.rint(alpha * 255).astype(np.uint8)
    weight = alpha[..., None] / 255.0
    image = np.rint(weight * foreground + (1 - weight) * GREEN).astype(np.uint8)
    return image, alpha, np.rint(foreground).astype(np.uint8)


def test_only_soft_pixels_change_and_the_input_is_left_alone() -> None:
    image, alpha, _ = _disc_composite(120, 160, ramp=10)
    before = image.copy(), alpha.copy()
    out = estimate_foreground(image, alpha)
    assert out.dtype == np.uint8 and out.shape == image.shape
    hard = (alpha < SOFT_LOW) | (alpha > SOFT_HIGH)
    np.testing.assert_array_equal(out[hard], image[hard])
    assert np.any(out[~hard] != image[~hard])
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(alpha, before[1])


@pytest.mark.parametrize(("height", "width"), [(120, 160), (600, 800)])
def test_the_foreground_is_recovered_in_the_soft_band(height: int, width: int) -> None:
    # An edge 4 or 20 pixels wide: the radii (12 and 1, or 62 and 4) grow with the image, as edges do.
    image, alpha, truth = _disc_composite(height, width, ramp=height / 30)
    soft = (alpha >= SOFT_LOW) & (alpha <= SOFT_HIGH)
    estimate = estimate_foreground(image, alpha)
    raw_error = np.abs(image[soft].astype(float) - truth[soft]).mean()
    error = np.abs(estimate[soft].astype(float) - truth[soft]).mean()
    assert raw_error > 60  # green shows through the edge
    assert error < 0.15 * raw_error, (error, raw_error)
    green_excess = estimate[soft][:, 1].astype(float) - truth[soft][:, 1]
    assert green_excess.mean() < 10, green_excess.mean()


def test_matches_a_direct_implementation_where_no_coarse_grid_is_used() -> None:
    # Up to about 7,900 pixels the large radius is under 8 and the first pass runs on every pixel: exact but rounding.
    image, alpha, _ = _disc_composite(48, 64, ramp=6)
    image = np.clip(image.astype(int) + np.random.default_rng(3).integers(-30, 31, image.shape), 0, 255).astype(
        np.uint8
    )
    soft = (alpha >= SOFT_LOW) & (alpha <= SOFT_HIGH)
    difference = np.abs(estimate_foreground(image, alpha)[soft].astype(int) - _reference(image, alpha)[soft])
    assert difference.max() <= 1


def test_stays_close_to_a_direct_implementation_on_the_coarse_grid() -> None:
    image, alpha, _ = _disc_composite(150, 200, ramp=8)
    image = np.clip(image.astype(int) + np.random.default_rng(4).integers(-30, 31, image.shape), 0, 255).astype(
        np.uint8
    )
    soft = (alpha >= SOFT_LOW) & (alpha <= SOFT_HIGH)
    difference = np.abs(estimate_foreground(image, alpha)[soft].astype(float) - _reference(image, alpha)[soft])
    assert difference.mean() < 1.5, difference.mean()


@pytest.mark.parametrize("level", [0, 255])
def test_a_hard_alpha_returns_the_input_values(level: int) -> None:
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = estimate_foreground(image, np.full((37, 53), level, np.uint8))
    np.testing.assert_array_equal(out, image)
    out[0, 0] = 255 - image[0, 0]
    assert not np.array_equal(out[0, 0], image[0, 0])  # a new array


ODD_SIZES = [(1, 1), (1, 7), (9, 1), (1, 300), (300, 1), (2, 3), (33, 65)]


def _check_odd_size(height: int, width: int) -> None:
    """Any size works, and hard pixels keep the image's colours."""
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = rng.choice(np.array([0, 255, 40, 128, 220], np.uint8), (height, width))
    out = estimate_foreground(image, alpha)
    assert out.dtype == np.uint8 and out.shape == image.shape
    hard = (alpha < SOFT_LOW) | (alpha > SOFT_HIGH)
    np.testing.assert_array_equal(out[hard], image[hard])


@pytest.mark.parametrize(("height", "width"), ODD_SIZES)
def test_odd_sizes(height: int, width: int) -> None:
    _check_odd_size(height, width)


def test_a_strided_view_gives_the_same_result_as_a_copy() -> None:
    image, alpha, _ = _disc_composite(90, 140, ramp=7)
    view_image, view_alpha = image[::-1, ::2], alpha[::-1, ::2]
    np.testing.assert_array_equal(
        estimate_foreground(view_image, view_alpha), estimate_foreground(view_image.copy(), view_alpha.copy())
    )


def test_the_radii_grow_with_the_image_and_never_reach_zero() -> None:
    assert blur_radii(1000, 1000) == (90, 6)
    assert blur_radii(1500, 2000) == (156, 10)
    assert blur_radii(1, 1) == (1, 1)


@pytest.mark.parametrize(
    ("image", "alpha", "message"),
    [
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), r"\(H, W, 3\) uint8 image, got \(4, 4\)"),
        (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), "uint8 image, got .* float32"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8), r"alpha of shape \(4, 4\) .* got \(4, 5\)"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32), "uint8 alpha .* float32"),
    ],
)
def test_bad_input_says_what_was_given(image: np.ndarray, alpha: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_foreground(image, alpha)


def test_the_sample_step_leaves_at_most_a_grid_of_0_6_megapixels_above_one_megapixel() -> None:
    assert sample_step(768, 1024) == 1
    assert sample_step(1000, 1000) == 1
    assert sample_step(1000, 1001) == 2
    assert sample_step(1500, 2000) == 3
    assert sample_step(3000, 4000) == 5
    assert sample_step(3024, 4032) == 5
    for height, width in [(1000, 1001), (1200, 2000), (2128, 2832), (3000, 4000), (4000, 6000), (1, 3_000_000)]:
        step = sample_step(height, width)
        assert (height / step) * (width / step) <= 6e5 < (height / (step - 1)) * (width / (step - 1))


@pytest.mark.parametrize("step", [2, 3, 5])
@pytest.mark.parametrize(("height", "width"), [(120, 160), (121, 163)])
def test_sampled_only_soft_pixels_change_and_the_input_is_left_alone(
    sampled: Callable[[int, int, int], None], step: int, height: int, width: int
) -> None:
    # 121 x 163 leaves cells cut off at the bottom and right for every step.
    sampled(step, height, width)
    image, alpha, _ = _disc_composite(height, width, ramp=12)
    image[:, -1], alpha[-1, :] = 90, 128  # soft pixels in the last row and column too
    before = image.copy(), alpha.copy()
    image.flags.writeable, alpha.flags.writeable = False, False  # as np.asarray gives for a PIL image
    out = estimate_foreground(image, alpha)
    assert out.dtype == np.uint8 and out.shape == image.shape and out.flags.writeable
    hard = (alpha < SOFT_LOW) | (alpha > SOFT_HIGH)
    np.testing.assert_array_equal(out[hard], image[hard])
    assert np.mean(out[~hard] != image[~hard]) > 0.5
    assert np.any(out[-1, :] != image[-1, :]) and np.any(out[:, -1] != image[:, -1])
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(alpha, before[1])


@pytest.mark.parametrize(("height", "width", "step"), [(600, 800, 2), (600, 800, 4), (1000, 1100, 0)])
def test_sampled_the_foreground_is_recovered_in_the_soft_band(
    sampled: Callable[[int, int, int], None], height: int, width: int, step: int
) -> None:
    if step:
        sampled(step, height, width)
    else:  # over a megapixel: sampled anyway
        assert sample_step(height, width) == 2
    image, alpha, truth = _disc_composite(height, width, ramp=height / 30)
    soft = (alpha >= SOFT_LOW) & (alpha <= SOFT_HIGH)
    estimate = estimate_foreground(image, alpha)
    raw_error = np.abs(image[soft].astype(float) - truth[soft]).mean()
    error = np.abs(estimate[soft].astype(float) - truth[soft]).mean()
    assert error < 0.15 * raw_error, (error, raw_error)
    green_excess = estimate[soft][:, 1].astype(float) - truth[soft][:, 1]
    assert green_excess.mean() < 10, green_excess.mean()


@pytest.mark.parametrize("step", [3, 5])
def test_sampled_stays_close_to_every_pixel(sampled: Callable[[int, int, int], None], step: int) -> None:
    # F_blur and B_blur interpolated from the samples, the final estimate at every soft pixel: about 1.5 and 2 (of
    # 255) from running on every pixel.
    image, alpha, _ = _disc_composite(601, 803, ramp=20)
    image = np.clip(image.astype(int) + np.random.default_rng(5).integers(-30, 31, image.shape), 0, 255).astype(
        np.uint8
    )
    soft = (alpha >= SOFT_LOW) & (alpha <= SOFT_HIGH)
    every_pixel = estimate_foreground(image, alpha)
    sampled(step, 601, 803)
    difference = np.abs(estimate_foreground(image, alpha)[soft].astype(float) - every_pixel[soft])
    assert difference.mean() < 2.5, difference.mean()


def test_a_strand_between_the_samples_takes_the_large_pass_colours(sampled: Callable[[int, int, int], None]) -> None:
    # A half-transparent red strand on row 102 that no sample (rows 100 and 104) sees: the small pass's windows
    # hold no subject, and the large pass's F_blur (the red square nearby) stands in, not black.
    red = np.array([200.0, 60.0, 40.0])
    image, alpha = np.tile(GREEN, (200, 200, 1)), np.zeros((200, 200))
    image[60:140, 40:110], alpha[60:140, 40:110] = red, 1
    image[102, 122:129], alpha[102, 122:129] = 0.5 * red + 0.5 * GREEN, 0.5
    image, alpha = np.rint(image).astype(np.uint8), np.rint(alpha * 255).astype(np.uint8)
    sampled(4, 200, 200)
    strand = estimate_foreground(image, alpha)[102, 122:129].astype(float)
    assert np.all(strand[:, 0] > 0.4 * red[0]), strand
    assert np.all(strand[:, 1] < red[1] + 5), strand  # none of the green left


@pytest.mark.parametrize("step", [2, 3])
@pytest.mark.parametrize(("height", "width"), ODD_SIZES)
def test_sampled_odd_sizes(sampled: Callable[[int, int, int], None], step: int, height: int, width: int) -> None:
    sampled(step, height, width)
    _check_odd_size(height, width)


@pytest.mark.parametrize("level", [0, 255])
def test_sampled_a_hard_alpha_returns_the_input_values(sampled: Callable[[int, int, int], None], level: int) -> None:
    sampled(3, 37, 53)
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(estimate_foreground(image, np.full((37, 53), level, np.uint8)), image)


def test_sampled_a_strided_view_gives_the_same_result_as_a_copy(sampled: Callable[[int, int, int], None]) -> None:
    image, alpha, _ = _disc_composite(90, 140, ramp=7)
    view_image, view_alpha = image[::-1, ::2], alpha[::-1, ::2]
    sampled(3, 90, 70)
    np.testing.assert_array_equal(
        estimate_foreground(view_image, view_alpha), estimate_foreground(view_image.copy(), view_alpha.copy())
    )


@pytest.mark.parametrize("radius", [0.5, 2, 2.25])
def test_box_sums_with_a_fractional_radius_weight_the_two_values_beyond_it(radius: float) -> None:
    values = np.random.default_rng(2).random((11, 3))
    whole, part = int(radius), radius - int(radius)
    weights = np.zeros((11, 11))  # weights[i, j]: of value j in the sum at i
    for offset in range(-whole - 1, whole + 2):
        diagonal = np.eye(11, k=offset)
        weights += diagonal * (1 if abs(offset) <= whole else part)
    np.testing.assert_allclose(foreground._box_sum(values, radius, 0), weights @ values)
    np.testing.assert_allclose(foreground._box_sum(values.T, radius, 1), (weights @ values).T)


@pytest.mark.parametrize("radius", [4.7, 5.9, 7.0])
def test_the_large_blurs_stay_in_range_where_a_window_is_all_subject(radius: float) -> None:
    # With a fractional radius the background weight of such a window is rounding noise, not 0: no ratio of noise.
    image = np.random.default_rng(0).integers(0, 256, (400, 500, 3), dtype=np.uint8)
    alpha = np.full((400, 500), 255, np.uint8)
    alpha[200, 250] = 128
    blurs = foreground._coarse_blurs(image, alpha, radius, 8)
    assert blurs.min() >= 0 and blurs.max() <= 255


@pytest.mark.parametrize("step", [1, 2, 5])
@pytest.mark.parametrize(("height", "width"), [(120, 160), (121, 163)])
def test_in_place_writes_the_same_colours_into_the_image(
    sampled: Callable[[int, int, int], None], step: int, height: int, width: int
) -> None:
    if step > 1:
        sampled(step, height, width)
    image, alpha, _ = _disc_composite(height, width, ramp=12)
    image[:, -1], alpha[-1, :] = 90, 128  # soft pixels in the last row and column too
    expected = estimate_foreground(image, alpha)
    out = estimate_foreground(image, alpha, in_place=True)
    assert out is image  # no copy of the photo was made
    np.testing.assert_array_equal(out, expected)

    image, _, _ = _disc_composite(height, width, ramp=12)
    image[:, -1] = 90
    image.flags.writeable = False  # as Pillow's pixels are: a new array, the image left alone
    out = estimate_foreground(image, alpha, in_place=True)
    assert out is not image and out.flags.writeable
    np.testing.assert_array_equal(out, expected)
