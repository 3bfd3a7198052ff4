"""Pure preprocessing and postprocessing, driven by a :class:`~cutout.registry.ModelSpec` only.

Both backends call these functions, so they cannot disagree. The U2-Net family reproduces rembg exactly:
Pillow LANCZOS to 320x320 (aspect ratio not kept), division by the image's own maximum, ImageNet mean/std,
fused output min-max stretched, truncated to uint8 and resized back with LANCZOS. MODNet reproduces the
official image demo: (x/255 - 0.5)/0.5, 'area' resize to the reference size rounded down to a multiple of 32,
and the matte 'area'-resized back, then truncated to uint8 (FACTS.md section 2).

    >>> import numpy as np
    >>> from cutout.registry import get_spec
    >>> x = model_input(get_spec("modnet"), np.zeros((1080, 1920, 3), np.uint8))
    >>> x.shape
    (1, 3, 512, 896)
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from cutout.errors import BackendError
from cutout.io.images import pixels
from cutout.registry import InputRule, ModelSpec, Normalization

_PIL_RESAMPLE = {"lanczos": Image.Resampling.LANCZOS, "bilinear": Image.Resampling.BILINEAR}


def plan_input_size(rule: InputRule, height: int, width: int) -> tuple[int, int]:
    """The network input (height, width) for an image of ``height`` x ``width``."""
    if rule.kind == "fixed":
        return rule.size
    ref = rule.reference_size
    new_h, new_w = height, width
    if max(height, width) < ref or min(height, width) > ref:
        if width >= height:
            new_h, new_w = ref, int(width / height * ref)
        else:
            new_h, new_w = int(height / width * ref), ref
    new_h -= new_h % rule.multiple
    new_w -= new_w % rule.multiple
    return max(new_h, rule.multiple), max(new_w, rule.multiple)


def area_resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize the last two axes by averaging, exactly like torch's ``F.interpolate(mode='area')``.

    Output index i averages input indices floor(i*n/m) .. ceil((i+1)*n/m) - 1 on each axis (adaptive average
    pooling); when enlarging this degenerates to a box (nearest-like) resample.

    Shape: (..., H, W) float -> (..., height, width) float32.
    """
    out = _area_axis(np.asarray(array, dtype=np.float64), height, axis=-2)
    return _area_axis(out, width, axis=-1).astype(np.float32)


def _area_axis(array: np.ndarray, size: int, axis: int) -> np.ndarray:
    n = array.shape[axis]
    if n == size:
        return array
    i = np.arange(size)
    start = (i * n) // size
    end = ((i + 1) * n + size - 1) // size
    zero_shape = list(array.shape)
    zero_shape[axis] = 1
    cumulative = np.concatenate([np.zeros(zero_shape), np.cumsum(array, axis=axis)], axis=axis)
    total = np.take(cumulative, end, axis=axis) - np.take(cumulative, start, axis=axis)
    count_shape = [1] * array.ndim
    count_shape[axis] = size
    return total / (end - start).reshape(count_shape)


def model_input(spec: ModelSpec, rgb: np.ndarray | Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """The network input for one RGB image (an array, or a PIL image in mode RGB: same pixels, one copy fewer).

    ``size`` is the (height, width) of the full image when ``rgb`` is a reduced draft of it: the input plan
    follows the full image.

    Shape: rgb (H, W, 3) uint8 -> (1, 3, h, w) float32 with (h, w) = :func:`plan_input_size`.
    """
    if isinstance(rgb, Image.Image):
        if rgb.mode != "RGB":
            raise ValueError(f"expected a PIL image in mode RGB, got {rgb.mode}")
        if spec.input.resample == "area":
            rgb = np.asarray(rgb)
    elif rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
    full_height, full_width = size or ((rgb.height, rgb.width) if isinstance(rgb, Image.Image) else rgb.shape[:2])
    height, width = plan_input_size(spec.input, full_height, full_width)
    if spec.input.resample == "area":
        # MODNet: normalise first, then average-resize the float tensor (the official order).
        assert isinstance(rgb, np.ndarray)
        chw = area_resize(normalize_pixels(spec.normalization, rgb), height, width)
    else:
        # U2-Net / rembg: resize in uint8 with Pillow, divide by the image's own max, ImageNet stats in float64.
        # reducing_gap: big photos are first shrunk by an integer box filter to >= 3x the target, then resampled
        # (Pillow's fast path; several times faster on 12 MP, visually identical). Below 3x it is the exact resize.
        pil = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
        resized = pil.resize((width, height), _PIL_RESAMPLE[spec.input.resample], reducing_gap=3.0)
        chw = normalize_pixels(spec.normalization, pixels(resized))
    return np.ascontiguousarray(chw[None], dtype=np.float32)


def normalize_pixels(norm: Normalization, rgb: np.ndarray) -> np.ndarray:
    """Pixel values to network values, at whatever size ``rgb`` already has (training uses this too).

    ``max``: divide by the image's own maximum, then (x - mean) / std in float64 (U2-Net, as rembg);
    ``255``: (x / 255 - mean) / std in float32 (MODNet).

    A uint8 channel has 256 values, so each channel's 256 results are computed once, in exactly that arithmetic,
    and looked up: the same float32s as computing every pixel (tested), 8x faster at 320 x 320.

    Shape: (H, W, 3) uint8 -> (3, H, W) float32.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
    if norm.divide_by == "max":
        values = np.arange(256, dtype=np.float64) / max(float(rgb.max()), 1e-6)
        mean, std = np.reshape(norm.mean, (3, 1)), np.reshape(norm.std, (3, 1))
        tables = ((values - mean) / std).astype(np.float32)
    else:
        mean32, std32 = (np.asarray(v, np.float32).reshape(3, 1) for v in (norm.mean, norm.std))
        tables = (np.arange(256, dtype=np.float32) / np.float32(255) - mean32) / std32
    chw = np.empty((3, *rgb.shape[:2]), np.float32)
    for channel in range(3):
        np.take(tables[channel], rgb[:, :, channel], out=chw[channel])
    return chw


def mask_from_output(spec: ModelSpec, prediction: np.ndarray, height: int, width: int) -> np.ndarray:
    """Turn one network output map into an 8-bit mask of the original image size.

    Shape: prediction (h, w) float in [0, 1] -> (height, width) uint8.
    """
    return resize_mask(spec, normalize_prediction(spec, prediction), height, width)


def normalize_prediction(spec: ModelSpec, prediction: np.ndarray) -> np.ndarray:
    """The network's mask map as alpha in [0, 1] at network resolution (U2-Net: stretched by its own min/max).

    Raises:
        BackendError: the map holds NaN or infinity (a broken model file, or float16 overflowing), which would
            have been an empty cutout counted as done.

    Shape: (h, w) float -> (h, w) float32.
    """
    pred = np.asarray(prediction, dtype=np.float32)
    if pred.ndim != 2:
        raise ValueError(f"expected an (h, w) prediction, got shape {pred.shape}")
    if not np.isfinite(pred).all():
        raise BackendError(
            f"the model's mask is not a number ({np.count_nonzero(~np.isfinite(pred))} of its "
            f"{pred.size} values NaN or infinite): the model file may be broken, or a float16 model overflowed"
        )
    if spec.output.minmax:
        low, high = float(pred.min()), float(pred.max())
        pred = (pred - low) / (high - low) if high > low else np.zeros_like(pred)
    return pred


def resize_mask(spec: ModelSpec, alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Alpha in [0, 1] at network resolution to an 8-bit mask of the image's size (truncated, as the originals).

    Shape: (h, w) float -> (height, width) uint8.
    """
    pred = np.asarray(alpha, dtype=np.float32)
    rule = spec.output
    if rule.resample == "area":
        pred = area_resize(pred, height, width)
        return (np.clip(pred, 0.0, 1.0) * 255).astype(np.uint8)
    small = Image.fromarray((np.clip(pred, 0.0, 1.0) * 255).astype(np.uint8), mode="L")
    return pixels(small.resize((width, height), _PIL_RESAMPLE[rule.resample]))
