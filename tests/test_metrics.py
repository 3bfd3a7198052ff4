"""train.metrics: saliency metrics (against py_sod_metrics and by hand) and DIM's matting errors.

Run with ``python -m pytest tests/test_metrics.py -q``.
"""

from __future__ import annotations

import warnings

import numpy as np
import py_sod_metrics
import pytest

from cutout.models.mnet import TRIMAP_HIGH as MNET_TRIMAP_HIGH
from cutout.models.mnet import TRIMAP_LOW as MNET_TRIMAP_LOW
from train.metrics import (
    TRIMAP_HIGH,
    TRIMAP_LOW,
    MattingAccumulator,
    SaliencyAccumulator,
    gaussian_gradient_magnitude,
    matting_metrics,
    saliency_metrics,
    unknown_mask,
)


def _u8(rows: list[list[int]]) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


# --- saliency ---------------------------------------------------------------------------------------------


def test_saliency_metrics_match_py_sod_metrics_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(3)]
    gts = [(rng.random((24, 32)) > 0.6).astype(np.uint8) * 255 for _ in range(3)]
    ours = saliency_metrics(preds, gts)
    mae, smeasure = py_sod_metrics.MAE(), py_sod_metrics.Smeasure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmeasure = py_sod_metrics.Fmeasure()
    for pred, gt in zip(preds, gts, strict=True):
        for metric in (mae, fmeasure, smeasure):
            metric.step(pred, gt)
    assert ours["mae"] == pytest.approx(mae.get_results()["mae"])
    assert ours["max_f"] == pytest.approx(fmeasure.get_results()["fm"]["curve"].max())
    assert ours["s_measure"] == pytest.approx(smeasure.get_results()["sm"])


def test_saliency_metrics_hand_computed_on_2x2_blocks() -> None:
    block = np.ones((2, 2), dtype=np.uint8)  # 4x4 images made of 2x2 blocks (S-measure needs more than 2x2)
    pred = np.kron(_u8([[0, 255], [255, 0]]), block)
    gt = np.kron(_u8([[0, 255], [0, 0]]), block)
    result = saliency_metrics([pred], [gt])
    assert result["mae"] == pytest.approx(0.25)  # one wrong block of four
    assert result["mean_iou"] == pytest.approx(0.5)  # intersection 1, union 2
    precision, recall, beta2 = 0.5, 1.0, 0.3  # best threshold selects both 255 pixels
    assert result["max_f"] == pytest.approx((1 + beta2) * precision * recall / (beta2 * precision + recall))


def test_s_measure_of_an_all_background_mask_is_one_minus_the_mean_prediction() -> None:
    result = saliency_metrics([_u8([[0, 255], [0, 0]])], [_u8([[0, 0], [0, 0]])])
    assert result["s_measure"] == pytest.approx(0.75)


def test_mean_iou_thresholds_predictions_at_half_and_counts_empty_pairs_as_perfect() -> None:
    pred = _u8([[127, 128], [0, 0]])  # only 128 reaches 0.5 of 255
    gt = _u8([[255, 255], [0, 0]])
    empty = _u8([[0, 0], [0, 0]])
    result = saliency_metrics([pred, empty], [gt, empty])
    assert result["mean_iou"] == pytest.approx((0.5 + 1.0) / 2)


def test_saliency_accumulator_equals_the_function_and_rejects_bad_input() -> None:
    rng = np.random.default_rng(1)
    pairs = [(rng.integers(0, 256, (8, 8), dtype=np.uint8), rng.integers(0, 2, (8, 8), dtype=np.uint8) * 255)]
    accumulator = SaliencyAccumulator()
    with pytest.raises(ValueError, match="no images"):
        accumulator.compute()
    accumulator.update(*pairs[0])
    assert accumulator.count == 1
    assert accumulator.compute() == saliency_metrics([pairs[0][0]], [pairs[0][1]])
    with pytest.raises(ValueError, match=r"uint8 .* got float64 and uint8"):
        accumulator.update(pairs[0][0] / 255.0, pairs[0][1])
    with pytest.raises(ValueError, match=r"got \(8, 8\) and \(8, 7\)"):
        accumulator.update(pairs[0][0], pairs[0][1][:, :7])
    with pytest.raises(ValueError):
        saliency_metrics([pairs[0][0]], [])


# --- matting ----------------------------------------------------------------------------------------------


def test_sad_and_mse_by_hand_whole_image_and_unknown_region() -> None:
    gt = np.zeros((4, 4))
    gt[1, 2] = 1.0
    pred = np.zeros((4, 4))
    trimap = np.zeros((4, 4), dtype=np.uint8)
    trimap[1, :] = 128  # the four pixels of row 1 are unknown
    result = matting_metrics(pred, gt, trimap)
    assert result["sad"] == pytest.approx(1 / 1000) and result["sad_unknown"] == pytest.approx(1 / 1000)
    assert result["mse"] == pytest.approx(1 / 16) and result["mse_unknown"] == pytest.approx(1 / 4)
    trimap[1, 2] = 255  # the wrong pixel is now known foreground: no error in the unknown region
    result = matting_metrics(pred, gt, trimap)
    assert result["sad_unknown"] == 0 and result["mse_unknown"] == 0 and result["grad_unknown"] > 0


def test_uint8_and_float_alphas_and_trimaps_give_the_same_metrics() -> None:
    rng = np.random.default_rng(2)
    pred, gt = rng.integers(0, 256, (10, 12), dtype=np.uint8), rng.integers(0, 256, (10, 12), dtype=np.uint8)
    trimap = rng.choice(np.array([0, 128, 255], dtype=np.uint8), (10, 12))
    as_uint8 = matting_metrics(pred, gt, trimap)
    as_float = matting_metrics(pred / 255.0, gt / 255.0, np.round(trimap / 255.0 * 2) / 2)
    assert as_float == pytest.approx(as_uint8)
    assert set(matting_metrics(pred, gt)) == {"sad", "mse", "grad"}


def test_unknown_mask_levels_and_shared_thresholds() -> None:
    assert unknown_mask(_u8([[0, 127, 128, 255]])).tolist() == [[False, True, True, False]]
    assert unknown_mask(np.array([[0.0, 0.5, 1.0]])).tolist() == [[False, True, False]]
    assert (TRIMAP_LOW, TRIMAP_HIGH) == (MNET_TRIMAP_LOW, MNET_TRIMAP_HIGH)


def _dim_kernel(sigma: float = 1.4) -> np.ndarray:
    """DIM's 2-D x-derivative kernel, built the way its benchmark code describes: g(row) * g'(col), L2 = 1."""
    half = 4  # ceil(sigma * sqrt(-2 log(sqrt(2 pi) sigma 0.01))) at sigma 1.4
    offsets = np.arange(-half, half + 1)

    def gauss(x: np.ndarray) -> np.ndarray:
        return np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))

    kernel = gauss(offsets)[:, None] * (-offsets * gauss(offsets) / sigma**2)[None, :]
    return kernel / np.sqrt((kernel**2).sum())


def _direct_filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    half = kernel.shape[0] // 2
    padded = np.pad(image, half, mode="edge")
    out = np.zeros_like(image)
    for row in range(image.shape[0]):
        for column in range(image.shape[1]):
            out[row, column] = (padded[row : row + 2 * half + 1, column : column + 2 * half + 1] * kernel).sum()
    return out


def test_gaussian_gradient_matches_a_direct_2d_filter_with_dims_kernel() -> None:
    image = np.random.default_rng(3).random((11, 14))
    kernel = _dim_kernel()
    expected = np.hypot(_direct_filter(image, kernel), _direct_filter(image, kernel.T))
    assert np.allclose(gaussian_gradient_magnitude(image), expected, atol=1e-12)


def test_gradient_error_is_zero_for_equal_alphas_positive_otherwise_and_blind_to_constant_shifts() -> None:
    rng = np.random.default_rng(4)
    gt = rng.random((16, 16)) * 0.8
    assert matting_metrics(gt, gt)["grad"] == 0.0
    assert matting_metrics(np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1), gt)["grad"] > 0
    # derivative taps sum to zero and borders repeat edge values, so a constant offset has no gradient, even
    # at the borders; SAD and MSE do see it
    shifted = matting_metrics(gt + 0.1, gt)
    assert shifted["grad"] == pytest.approx(0.0, abs=1e-20)
    assert shifted["sad"] == pytest.approx(256 * 0.1 / 1000) and shifted["mse"] == pytest.approx(0.01)


def test_gradient_magnitude_is_zero_on_constants_and_the_same_for_transposed_ramps() -> None:
    assert np.abs(gaussian_gradient_magnitude(np.full((7, 9), 0.4))).max() < 1e-15
    ramp = np.tile(np.linspace(0, 1, 12), (10, 1))
    assert np.allclose(gaussian_gradient_magnitude(ramp).T, gaussian_gradient_magnitude(ramp.T))
    interior = gaussian_gradient_magnitude(ramp)[:, 4:-4]
    assert np.allclose(interior, interior[0, 0]) and interior[0, 0] > 0  # a ramp's gradient is constant inside


def test_matting_accumulator_averages_each_key_over_the_images_that_have_it() -> None:
    gt = np.zeros((4, 4))
    one_wrong, two_wrong = gt.copy(), gt.copy()
    one_wrong[0, 0] = 1.0
    two_wrong[0, :2] = 1.0
    accumulator = MattingAccumulator()
    with pytest.raises(ValueError, match="no images"):
        accumulator.compute()
    first = accumulator.update(one_wrong, gt, np.full((4, 4), 0.5))
    accumulator.update(two_wrong, gt)
    assert first["sad_unknown"] == pytest.approx(0.001)
    means = accumulator.compute()
    assert accumulator.count == 2
    assert means["sad"] == pytest.approx((0.001 + 0.002) / 2)
    assert means["mse"] == pytest.approx((1 / 16 + 2 / 16) / 2)
    assert means["sad_unknown"] == pytest.approx(0.001)  # only the first image had a trimap


def test_matting_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match=r"got \(4, 4\) and \(4, 5\)"):
        matting_metrics(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="uint8 .* or float .* got dtype int64"):
        matting_metrics(np.zeros((4, 4), dtype=np.int64), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="trimap"):
        matting_metrics(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((3, 4)))
