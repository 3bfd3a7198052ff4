"""Validation metrics: salient-object segmentation (U-2-Net) and alpha matting (MODNet, MNet), in numpy.

* :func:`saliency_metrics` / :class:`SaliencyAccumulator` — MAE, max F-measure (beta^2 = 0.3) and S-measure
  from ``py_sod_metrics`` (the standard SOD protocol: predictions are min-max normalised per image, masks
  binarised at > 128), plus the mean IoU of the prediction thresholded at 0.5.
* :func:`matting_metrics` / :class:`MattingAccumulator` — the Deep Image Matting benchmark errors: SAD
  (sum of absolute differences / 1000), MSE and gradient error (squared difference of Gaussian-derivative
  gradient magnitudes, sigma 1.4, summed / 1000), on the whole image and, given a trimap, on its unknown
  region (where DIM reports them). Alphas are compared in [0, 1].

Example::

    acc = MattingAccumulator()
    for pred, gt, trimap in validation:
        acc.update(pred, gt, trimap)
    print(acc.compute())  # {"sad": ..., "mse": ..., "grad": ..., "sad_unknown": ..., ...}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
import py_sod_metrics

__all__ = [
    "MattingAccumulator",
    "SaliencyAccumulator",
    "gaussian_gradient_magnitude",
    "matting_metrics",
    "saliency_metrics",
    "unknown_mask",
]

# The same levels as cutout.models.mnet.TRIMAP_LOW/HIGH (not imported: this module stays torch-free).
TRIMAP_LOW, TRIMAP_HIGH = 0.25, 0.75
GRADIENT_SIGMA = 1.4


def _check_pair(pred: np.ndarray, gt: np.ndarray, what: str) -> None:
    if pred.ndim != 2 or pred.shape != gt.shape:
        raise ValueError(f"{what} must be two (H, W) arrays of one shape; got {pred.shape} and {gt.shape}.")


def _unit(array: np.ndarray, name: str) -> np.ndarray:
    """An alpha or trimap as float64 in [0, 1]: uint8 is divided by 255, floats are taken as they are."""
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float64)
    raise ValueError(f"{name} must be uint8 (0..255) or float (0..1); got dtype {array.dtype}.")


def unknown_mask(trimap: np.ndarray) -> np.ndarray:
    """True where a trimap is unknown: 128 of 0/128/255 (uint8) or 0.5 of 0/0.5/1 (float).

    Shape:
        trimap: (H, W); returns (H, W) bool.
    """
    level = _unit(np.asarray(trimap), "trimap")
    return (level >= TRIMAP_LOW) & (level <= TRIMAP_HIGH)


# --- salient-object segmentation ------------------------------------------------------------------------


def _iou_at_half(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of pred >= 128 (0.5 of 255) against gt > 128; 1.0 when both are empty."""
    pred_mask, gt_mask = pred >= 128, gt > 128
    union = np.logical_or(pred_mask, gt_mask).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred_mask, gt_mask).sum() / union)


class SaliencyAccumulator:
    """Collects prediction/mask pairs one at a time; :meth:`compute` gives the dataset's metrics."""

    def __init__(self) -> None:
        self._mae = py_sod_metrics.MAE()
        with warnings.catch_warnings():  # Fmeasure announces FmeasureV2; its results are the same
            warnings.filterwarnings("ignore", message=".*FmeasureV2.*", category=UserWarning)
            self._fmeasure = py_sod_metrics.Fmeasure()
        self._smeasure = py_sod_metrics.Smeasure()
        self._ious: list[float] = []

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Adds one image.

        Shape:
            pred: (H, W) uint8 saliency map; gt: (H, W) uint8 mask (foreground > 128).
        """
        pred, gt = np.asarray(pred), np.asarray(gt)
        _check_pair(pred, gt, "pred and gt")
        if pred.dtype != np.uint8 or gt.dtype != np.uint8:
            raise ValueError(f"pred and gt must be uint8 (0..255); got {pred.dtype} and {gt.dtype}.")
        self._mae.step(pred, gt)
        self._fmeasure.step(pred, gt)
        self._smeasure.step(pred, gt)
        self._ious.append(_iou_at_half(pred, gt))

    @property
    def count(self) -> int:
        return len(self._ious)

    def compute(self) -> dict[str, float]:
        """{"mae", "max_f", "s_measure", "mean_iou"} averaged over the images added so far.

        Raises:
            ValueError: when no image was added.
        """
        if not self._ious:
            raise ValueError("no images were added; call update(pred, gt) for each validation image first.")
        return {
            "mae": float(self._mae.get_results()["mae"]),
            "max_f": float(np.max(self._fmeasure.get_results()["fm"]["curve"])),
            "s_measure": float(self._smeasure.get_results()["sm"]),
            "mean_iou": float(np.mean(self._ious)),
        }


def saliency_metrics(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray]) -> dict[str, float]:
    """MAE, max F-measure, S-measure and mean IoU at 0.5 of paired saliency maps and masks.

    Shape:
        each pred and gt: (H, W) uint8; pairs may differ in size from one another.

    Raises:
        ValueError: for unequal numbers of predictions and masks, a bad pair, or no pairs at all.
    """
    accumulator = SaliencyAccumulator()
    for pred, gt in zip(preds, gts, strict=True):
        accumulator.update(pred, gt)
    return accumulator.compute()


# --- alpha matting ----------------------------------------------------------------------------------------


def _gaussian_derivative_taps(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """1-D Gaussian and first-derivative-of-Gaussian taps, each scaled to unit L2 norm.

    DIM's benchmark builds the 2-D kernel g(y) * g'(x) with a half-width where the Gaussian density falls
    below ``epsilon`` (4 at sigma 1.4, so 9 x 9) and divides it by its L2 norm; that kernel is the outer
    product of these two unit-norm vectors, so filtering with them separably gives the same result.
    """
    half = math.ceil(math.sqrt(-2 * sigma**2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2 * sigma**2))
    derivative = -x * gauss
    return gauss / np.linalg.norm(gauss), derivative / np.linalg.norm(derivative)


def _filter_axis(array: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Correlates ``array`` with ``taps`` along ``axis``, repeating edge values beyond the border."""
    half = len(taps) // 2
    pad = [(0, 0)] * array.ndim
    pad[axis] = (half, half)
    padded = np.pad(array, pad, mode="edge")
    size = array.shape[axis]
    out = np.zeros_like(array, dtype=np.float64)
    for offset, tap in enumerate(taps):
        out += tap * np.take(padded, np.arange(offset, offset + size), axis=axis)
    return out


def gaussian_gradient_magnitude(alpha: np.ndarray, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """|grad alpha| with Gaussian-derivative filters (separable, edge-replicated borders), as DIM's benchmark.

    DIM's MATLAB code first applies ``mat2gray`` (min-max rescaling) to each alpha; here alphas are used
    as given in [0, 1], which is the same for any alpha that spans 0..1 and keeps constant alphas defined.

    Shape:
        alpha: (H, W) float; returns (H, W) float64.
    """
    gauss, derivative = _gaussian_derivative_taps(sigma)
    alpha = np.asarray(alpha, dtype=np.float64)
    along_x = _filter_axis(_filter_axis(alpha, derivative, axis=1), gauss, axis=0)
    along_y = _filter_axis(_filter_axis(alpha, derivative, axis=0), gauss, axis=1)
    return np.sqrt(along_x**2 + along_y**2)


def _region_errors(difference: np.ndarray, gradient_difference: np.ndarray, region: np.ndarray) -> list[float]:
    """[SAD / 1000, MSE, gradient error / 1000] over the pixels where ``region`` is true."""
    count = int(region.sum())
    sad = float(np.abs(difference[region]).sum()) / 1000.0
    mse = float((difference[region] ** 2).sum()) / count if count else 0.0
    grad = float((gradient_difference[region] ** 2).sum()) / 1000.0
    return [sad, mse, grad]


def matting_metrics(pred_alpha: np.ndarray, gt_alpha: np.ndarray, trimap: np.ndarray | None = None) -> dict[str, float]:
    """SAD, MSE and gradient error of one alpha matte, whole image and (with a trimap) unknown region.

    Keys: "sad", "mse", "grad", and with a trimap also "sad_unknown", "mse_unknown", "grad_unknown". SAD and
    gradient error are sums divided by 1000; MSE is the mean over the region (0 for an empty region).

    Shape:
        pred_alpha, gt_alpha: (H, W) uint8 (0..255) or float (0..1); trimap: (H, W) uint8 0/128/255 or
        float 0/0.5/1.
    """
    pred, gt = _unit(np.asarray(pred_alpha), "pred_alpha"), _unit(np.asarray(gt_alpha), "gt_alpha")
    _check_pair(pred, gt, "pred_alpha and gt_alpha")
    difference = pred - gt
    gradient_difference = gaussian_gradient_magnitude(pred) - gaussian_gradient_magnitude(gt)
    names = ("sad", "mse", "grad")
    whole = np.ones(pred.shape, dtype=bool)
    result = dict(zip(names, _region_errors(difference, gradient_difference, whole), strict=True))
    if trimap is not None:
        trimap = np.asarray(trimap)
        _check_pair(pred, trimap, "the alphas and trimap")
        errors = _region_errors(difference, gradient_difference, unknown_mask(trimap))
        result.update({f"{name}_unknown": value for name, value in zip(names, errors, strict=True)})
    return result


class MattingAccumulator:
    """Averages :func:`matting_metrics` over a validation set; each key over the images that have it."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def update(
        self, pred_alpha: np.ndarray, gt_alpha: np.ndarray, trimap: np.ndarray | None = None
    ) -> dict[str, float]:
        """Adds one image and returns its own metrics (see :func:`matting_metrics` for shapes)."""
        metrics = matting_metrics(pred_alpha, gt_alpha, trimap)
        for name, value in metrics.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1
        return metrics

    @property
    def count(self) -> int:
        return self._counts.get("sad", 0)

    def compute(self) -> dict[str, float]:
        """The mean of every metric over the images added so far.

        Raises:
            ValueError: when no image was added.
        """
        if not self._counts:
            raise ValueError("no images were added; call update(pred_alpha, gt_alpha[, trimap]) first.")
        return {name: total / self._counts[name] for name, total in self._sums.items()}
