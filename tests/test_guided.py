"""The guided filter against a direct per-pixel implementation, its fast variant, and the torch version."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from cutout.refine.guided import (
    box_mean,
    evaluate_at,
    fast_guided_filter,
    guided_coefficients,
    guided_filter,
    refine_alpha_guided,
    refine_settings,
)
from cutout.refine.trimap import trimap_from_alpha


def _random_pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((height, width, 3), dtype=np.float32), rng.random((height, width), dtype=np.float32)


def _window(y: int, x: int, radius: int) -> tuple[slice, slice]:
    return slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1)


def _brute_guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s equations pixel by pixel in float64: a ridge fit per window, averaged over the windows."""
    height, width = source.shape
    guide, source = guide.astype(np.float64), source.astype(np.float64)
    a, b = np.zeros((height, width, 3)), np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            colours = guide[_window(y, x, radius)].reshape(-1, 3)
            values = source[_window(y, x, radius)].reshape(-1)
            mean_colour, mean_value = colours.mean(axis=0), values.mean()
            covariance = colours.T @ colours / len(values) - np.outer(mean_colour, mean_colour)
            cross = colours.T @ values / len(values) - mean_colour * mean_value
            a[y, x] = np.linalg.solve(covariance + eps * np.eye(3), cross)
            b[y, x] = mean_value - a[y, x] @ mean_colour
    out = np.empty((height, width))
    for y in range(height):
        for x in range(width):
            window = _window(y, x, radius)
            out[y, x] = a[window].reshape(-1, 3).mean(axis=0) @ guide[y, x] + b[window].mean()
    return out


def test_box_mean_equals_brute_force() -> None:
    values = np.random.default_rng(1).random((3, 11, 17), dtype=np.float32)
    expected = np.empty_like(values)
    for y in range(11):
        for x in range(17):
            expected[:, y, x] = values[(slice(None), *_window(y, x, 4))].mean(axis=(1, 2))
    np.testing.assert_allclose(box_mean(values, 4), expected, atol=1e-6)


@pytest.mark.parametrize(("radius", "eps"), [(1, 1e-2), (3, 1e-3), (20, 1e-1)])
def test_guided_filter_equals_the_direct_implementation(radius: int, eps: float) -> None:
    guide, source = _random_pair(13, 16)
    result = guided_filter(guide, source, radius, eps)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, _brute_guided_filter(guide, source, radius, eps), atol=1e-5)


def test_fast_guided_filter_at_scale_1_is_the_guided_filter() -> None:
    guide, source = _random_pair(29, 37)
    np.testing.assert_allclose(
        fast_guided_filter(guide, source, 3, 1e-3, 1), guided_filter(guide, source, 3, 1e-3), atol=1e-6
    )


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_evaluate_at_equals_the_full_output_there(scale: int) -> None:
    guide, source = _random_pair(41, 53)
    full = fast_guided_filter(guide, source, 6, 1e-2, scale)
    rng = np.random.default_rng(scale)
    rows, cols = rng.integers(0, 41, 200), rng.integers(0, 53, 200)
    rows[:4], cols[:4] = [0, 0, 40, 40], [0, 52, 0, 52]  # the clamped corners
    mean_a, mean_b = guided_coefficients(guide, source, 6, 1e-2, scale)
    assert mean_a.shape == (-(-41 // scale), -(-53 // scale), 3) and mean_b.shape == mean_a.shape[:2]
    np.testing.assert_allclose(evaluate_at(mean_a, mean_b, guide, scale, rows, cols), full[rows, cols], atol=1e-6)


def test_a_constant_guide_gives_the_box_smoothed_input() -> None:
    source = np.random.default_rng(2).random((20, 24), dtype=np.float32)
    guide = np.full((20, 24, 3), 0.4, np.float32)
    np.testing.assert_allclose(guided_filter(guide, source, 3, 1e-2), box_mean(box_mean(source, 3), 3), atol=1e-5)


def test_the_output_is_sharp_where_the_guide_has_an_edge() -> None:
    guide = np.full((32, 64, 3), 0.2, np.float32)
    guide[:, 32:] = 0.8
    blurred = np.clip((np.arange(64, dtype=np.float32) - 31.5) / 16 + 0.5, 0, 1)  # a ramp 16 px wide
    source = np.broadcast_to(blurred, (32, 64)).copy()
    result = guided_filter(guide, source, 4, 1e-4)
    input_step, output_step = source[16, 32] - source[16, 31], result[16, 32] - result[16, 31]
    assert output_step > 4 * input_step
    assert np.argmax(np.diff(result[16])) == 31  # the steepest step is the guide's edge


def _soft_disc_scene(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy orange disc on blue, and an alpha whose edge is soft over 12 px and 2 px too far out."""
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - height * 0.45, xx - width * 0.55)
    radius = min(height, width) / 4
    colours = np.where(distance[..., None] < radius, [200, 120, 60], [30, 80, 160])
    noise = np.random.default_rng(0).normal(0, 8, (height, width, 3))
    image = np.clip(colours + noise, 0, 255).astype(np.uint8)
    alpha = np.rint(np.clip((radius + 2 - distance) / 12 + 0.5, 0, 1) * 255).astype(np.uint8)
    return image, alpha


def test_refine_changes_only_unknown_pixels_and_equals_the_whole_image_filter_there() -> None:
    image, alpha = _soft_disc_scene(390, 1000)  # scale 3, band radius 5, filter radius 10
    trimap = trimap_from_alpha(alpha)
    refined = refine_alpha_guided(image, alpha)
    assert refined.dtype == np.uint8 and refined.shape == alpha.shape
    known = trimap != 128
    np.testing.assert_array_equal(refined[known], alpha[known])
    radius, eps, scale = refine_settings(*alpha.shape)
    whole = fast_guided_filter(image / np.float32(255), alpha / np.float32(255), radius, eps, scale)
    expected = np.rint(np.clip(whole, 0, 1) * 255)
    assert np.abs(refined[~known] - expected[~known]).max() <= 1
    assert np.abs(refined[~known].astype(int) - alpha[~known]).max() > 50  # it did refine


def test_refine_makes_no_float_copy_of_the_image() -> None:
    # it did (guide and alpha as float32 over the band's box): +190 MB at 12 megapixels for every image in flight
    image, alpha = _soft_disc_scene(1500, 2000)
    tracemalloc.start()
    try:
        refine_alpha_guided(image, alpha)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * image.nbytes  # what a float32 copy of the image alone takes; measured: 3.0x (was 4.7x)


def test_refine_moves_the_soft_edge_onto_the_image_edge() -> None:
    image, alpha = _soft_disc_scene(300, 400)  # in row 135 the disc ends at column 294; alpha's 0.5 is at 296.5
    refined = refine_alpha_guided(image, alpha)
    row_before, row_after = alpha[135, 220:].astype(int), refined[135, 220:].astype(int)
    assert abs(np.argmin(np.diff(row_after)) + 220 - 294) <= 1  # the steepest step: from column 294 or 295
    assert -np.diff(row_after).min() > 3 * -np.diff(row_before).min()
    yy, xx = np.mgrid[0:300, 0:400]
    truth = np.hypot(yy - 135, xx - 220) < 75
    assert np.abs(refined / 255 - truth).mean() < np.abs(alpha / 255 - truth).mean()


def test_refine_with_an_explicit_trimap_and_without_unknown_pixels() -> None:
    image, alpha = _soft_disc_scene(60, 80)
    trimap = np.where(alpha > 127, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(refine_alpha_guided(image, alpha, trimap), alpha)
    trimap[30, 40] = 128
    refined = refine_alpha_guided(image, alpha, trimap)
    assert (refined != alpha).sum() <= 1


def test_refine_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="uint8 alpha"):
        refine_alpha_guided(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.uint8))
    with pytest.raises(ValueError, match="trimap"):
        refine_alpha_guided(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8), np.zeros((9, 10), np.uint8))


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_torch_version_agrees_with_numpy(scale: int, eps: float) -> None:
    torch = pytest.importorskip("torch")
    from cutout.refine.guided_torch import fast_guided_filter_torch

    pairs = [_random_pair(97, 131, seed) for seed in range(2)]
    expected = np.stack([fast_guided_filter(guide, source, 8, eps, scale) for guide, source in pairs])
    guide = torch.from_numpy(np.stack([guide for guide, _ in pairs])).permute(0, 3, 1, 2)
    source = torch.from_numpy(np.stack([source for _, source in pairs]))[:, None]
    result = fast_guided_filter_torch(guide, source, 8, eps, scale)
    assert result.shape == (2, 1, 97, 131) and result.dtype == torch.float32
    np.testing.assert_allclose(result[:, 0].numpy(), expected, atol=1e-4)


def test_refine_on_a_torch_device_equals_the_numpy_refine() -> None:
    torch = pytest.importorskip("torch")
    from cutout.refine.guided_torch import refine_alpha_guided_torch

    image, alpha = _soft_disc_scene(390, 1000)
    numpy_result = refine_alpha_guided(image, alpha)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_result = refine_alpha_guided_torch(image, alpha, device)
    assert np.abs(numpy_result.astype(int) - torch_result).max() <= 1
    assert not np.array_equal(numpy_result, alpha)


def test_refine_on_a_torch_device_takes_a_read_only_image_without_a_warning() -> None:
    # a decoded PIL image is read-only; torch.from_numpy warned that it cannot share such an array. In a fresh
    # process: torch gives that warning once per process, so another test could have used it up
    pytest.importorskip("torch")
    code = (
        "import warnings, numpy as np\n"
        "from cutout.refine.guided_torch import refine_alpha_guided_torch\n"
        "warnings.simplefilter('error')\n"
        "image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)\n"
        "alpha = np.zeros((60, 80), np.uint8); alpha[20:40, 20:60] = 255\n"
        "image.flags.writeable = False; alpha.flags.writeable = False\n"
        "refine_alpha_guided_torch(image, alpha, 'cpu')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
