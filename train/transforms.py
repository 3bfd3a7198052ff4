"""Paired augmentation for training samples, in numpy and Pillow, seeded so that every run is reproducible.

A sample is a dict of arrays that move together: ``image``, ``foreground``, ``background`` ((H, W, 3) uint8),
``mask`` ((H, W) float32 alpha in [0, 1], or (H, W) int64 class ids) and ``trimap`` ((H, W) float32 in
{0, 0.5, 1}). Geometry (crop, resize, flip) is applied to all of them; colour jitter to the image only.
Class maps and trimaps are resampled nearest-neighbour, everything else bilinearly.

    >>> rng = rng_for(seed=0, index=12, epoch=3)
    >>> sample = train_transform({"image": rgb, "mask": alpha}, (320, 320), rng)    # doctest: +SKIP

The random numbers of sample ``index`` in ``epoch`` come from :func:`rng_for` alone, so a sample is the same
whichever DataLoader worker makes it, and no two workers repeat each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

Arrays = dict[str, np.ndarray]

_NEAREST_KEYS = frozenset({"trimap"})
_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Augment:
    """How strongly to augment. ``scale`` is the crop's share of the image area, ``ratio`` its width / height;
    ``flip`` the probability of a horizontal flip; the jitter factors are drawn from [1 - x, 1 + x]."""

    scale: tuple[float, float] = (0.6, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


NO_AUGMENT = Augment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0, brightness=0.0, contrast=0.0, saturation=0.0)


def rng_for(seed: int, index: int, epoch: int = 0) -> np.random.Generator:
    """The random generator of sample ``index`` in ``epoch``: independent streams, the same in every process."""
    return np.random.default_rng([seed, epoch, index])


def train_transform(arrays: Arrays, size: tuple[int, int], rng: np.random.Generator, augment: Augment) -> Arrays:
    """Random resized crop to ``size`` (height, width), random horizontal flip, colour jitter on the image.

    The geometry is drawn first, so two calls with equal generators and different jitter crop alike.
    """
    out = random_resized_crop(arrays, size, rng, augment.scale, augment.ratio)
    if rng.random() < augment.flip:
        out = hflip(out)
    if "image" in out:
        out["image"] = color_jitter(out["image"], rng, augment.brightness, augment.contrast, augment.saturation)
    return out


def val_transform(arrays: Arrays, size: tuple[int, int]) -> Arrays:
    """Resize every array to ``size`` (height, width): nothing random."""
    return {key: resize_array(key, value, size) for key, value in arrays.items()}


def random_resized_crop(
    arrays: Arrays,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> Arrays:
    """The same random box cut out of every array, each resized to ``size`` (height, width)."""
    height, width = _shape(arrays)
    top, left, box_height, box_width = crop_box(height, width, rng, scale, ratio)
    return {
        key: resize_array(key, value[top : top + box_height, left : left + box_width], size)
        for key, value in arrays.items()
    }


def crop_box(
    height: int, width: int, rng: np.random.Generator, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a box covering a random share ``scale`` of the area with an aspect ratio in
    ``ratio`` (log-uniform); the whole image when ten tries find none that fits."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        box_width = round(math.sqrt(target * aspect))
        box_height = round(math.sqrt(target / aspect))
        if 0 < box_width <= width and 0 < box_height <= height:
            top = int(rng.integers(0, height - box_height + 1))
            left = int(rng.integers(0, width - box_width + 1))
            return top, left, box_height, box_width
    return 0, 0, height, width


def hflip(arrays: Arrays) -> Arrays:
    """Every array mirrored left to right."""
    return {key: np.ascontiguousarray(value[:, ::-1]) for key, value in arrays.items()}


def resize_array(key: str, array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``array`` at ``size`` (height, width): nearest for trimaps and integer class maps, bilinear otherwise."""
    if array.shape[:2] == size:
        return array
    if key in _NEAREST_KEYS or (array.ndim == 2 and np.issubdtype(array.dtype, np.integer)):
        return resize_nearest(array, size)
    return resize_bilinear(array, size)


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the first two axes (pixel centres mapped onto pixel centres), any dtype.

    Shape: (H, W, ...) -> (height, width, ...).
    """
    rows = np.minimum(((np.arange(size[0]) + 0.5) * array.shape[0] / size[0]).astype(np.int64), array.shape[0] - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * array.shape[1] / size[1]).astype(np.int64), array.shape[1] - 1)
    return array[rows[:, None], cols[None, :]]


def resize_bilinear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's bilinear resize (antialiased when shrinking) of a uint8 image or a float32 map in [0, 1].

    Shape: (H, W, 3) uint8 or (H, W) float -> the same at (height, width).
    """
    if array.dtype == np.uint8:
        return np.asarray(Image.fromarray(array).resize(size[::-1], Image.Resampling.BILINEAR))
    if array.ndim != 2:
        raise ValueError(f"bilinear resize needs uint8 images or (H, W) float maps, got shape {array.shape}")
    resized = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32)).resize(
        size[::-1], Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def color_jitter(
    image: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float, saturation: float
) -> np.ndarray:
    """Brightness, contrast and saturation scaled by random factors in [1 - x, 1 + x], in that order.

    The three factors are always drawn, so the generator advances alike whatever the strengths.

    Shape: (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    factors = [rng.uniform(1 - x, 1 + x) for x in (brightness, contrast, saturation)]
    if all(f == 1.0 for f in factors):
        return image
    out = image.astype(np.float32) * np.float32(factors[0])
    mean = float((out @ _LUMA).mean())
    out = (out - mean) * np.float32(factors[1]) + mean
    grey = (out @ _LUMA)[..., None]
    out = grey + (out - grey) * np.float32(factors[2])
    return np.rint(np.clip(out, 0, 255)).astype(np.uint8)


def make_trimap(
    alpha: np.ndarray, rng: np.random.Generator, radius_fraction: tuple[float, float] = (0.01, 0.04)
) -> np.ndarray:
    """A trimap as DIM and SHM make them: unknown = dilate(alpha > 0) minus erode(alpha == 1).

    Dilation and erosion use square kernels of side 2r + 1, each r drawn in ``radius_fraction`` times the short
    side (at least 1). Every pixel whose 8-bit alpha is neither 0 nor 255 lands in the unknown band.

    Shape: (H, W) float in [0, 1] -> (H, W) float32 with values 0 (background), 0.5 (unknown), 1 (foreground).
    """
    side = min(alpha.shape)
    low = max(1, round(side * radius_fraction[0]))
    high = max(low, round(side * radius_fraction[1]))
    grow, shrink = (int(r) for r in rng.integers(low, high + 1, size=2))
    scaled = np.asarray(alpha, dtype=np.float32) * 255
    anything = box_count(scaled >= 0.5, grow) > 0
    solid = box_count(scaled > 254.5, shrink) == (2 * shrink + 1) ** 2
    trimap = np.full(alpha.shape, 0.5, dtype=np.float32)
    trimap[~anything] = 0.0
    trimap[solid] = 1.0
    return trimap


def box_count(binary: np.ndarray, radius: int) -> np.ndarray:
    """How many pixels are set in the (2 radius + 1)^2 square around each pixel, borders repeated outwards
    (so an object touching the border is not eroded from outside).

    Shape: (H, W) bool -> (H, W) int64.
    """
    padded = np.pad(binary.astype(np.int64), radius, mode="edge")
    table = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    k = 2 * radius + 1
    return table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]


def _shape(arrays: Arrays) -> tuple[int, int]:
    shapes = {value.shape[:2] for value in arrays.values()}
    if len(shapes) != 1:
        sizes = ", ".join(f"{key} {value.shape[:2]}" for key, value in arrays.items())
        raise ValueError(f"the arrays of one sample must have one height and width, got {sizes}")
    height, width = shapes.pop()
    return int(height), int(width)


def compose_sample(
    foreground: np.ndarray,
    alpha: np.ndarray,
    background: np.ndarray,
    size: tuple[int, int],
    rng: np.random.Generator | None,
    augment: Augment,
    scale: tuple[float, float] = (0.5, 1.0),
) -> Arrays:
    """A DIM-style composite at ``size``: the background resized to cover it (random crop), the foreground scaled
    to a random share ``scale`` of the largest size that fits and placed at random, each flipped and colour-jittered
    on its own. ``rng`` None: centred, full scale, no flip or jitter (validation).

    ``image`` = round(foreground * alpha + background * (1 - alpha)) exactly, for the compositional loss.

    Shape: foreground (h, w, 3) uint8, alpha (h, w) float, background (H', W', 3) uint8 -> ``image``,
    ``foreground``, ``background`` (height, width, 3) uint8 and ``mask`` (height, width) float32.
    """
    height, width = size
    fit = min(height / foreground.shape[0], width / foreground.shape[1])
    share = rng.uniform(*scale) if rng is not None else 1.0
    fg_height = min(height, max(1, round(foreground.shape[0] * fit * share)))
    fg_width = min(width, max(1, round(foreground.shape[1] * fit * share)))
    small = resize_bilinear(foreground, (fg_height, fg_width))
    small_alpha = resize_bilinear(np.asarray(alpha, dtype=np.float32), (fg_height, fg_width))
    top, left = (height - fg_height) // 2, (width - fg_width) // 2
    if rng is not None:
        top, left = int(rng.integers(0, height - fg_height + 1)), int(rng.integers(0, width - fg_width + 1))
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas_alpha = np.zeros((height, width), np.float32)
    canvas[top : top + fg_height, left : left + fg_width] = small
    canvas_alpha[top : top + fg_height, left : left + fg_width] = small_alpha
    behind = cover(background, size, rng)
    if rng is not None:
        if rng.random() < augment.flip:
            canvas, canvas_alpha = canvas[:, ::-1], canvas_alpha[:, ::-1]
        if rng.random() < augment.flip:
            behind = behind[:, ::-1]
        jitter = (augment.brightness, augment.contrast, augment.saturation)
        canvas, behind = color_jitter(canvas, rng, *jitter), color_jitter(behind, rng, *jitter)
    weight = canvas_alpha[..., None]
    image = np.rint(canvas * weight + behind * (1 - weight)).astype(np.uint8)
    return {
        "image": image,
        "mask": np.ascontiguousarray(canvas_alpha),
        "foreground": np.ascontiguousarray(canvas),
        "background": np.ascontiguousarray(behind),
    }


def cover(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator | None) -> np.ndarray:
    """``image`` scaled to cover ``size`` (height, width) with its aspect ratio kept, then cropped to it (at a
    random place, or centred when ``rng`` is None). Shape: (H, W, 3) uint8 -> (height, width, 3) uint8."""
    factor = max(size[0] / image.shape[0], size[1] / image.shape[1])
    scaled_height = max(size[0], math.ceil(image.shape[0] * factor - 1e-6))
    scaled_width = max(size[1], math.ceil(image.shape[1] * factor - 1e-6))
    scaled = resize_bilinear(image, (scaled_height, scaled_width))
    top, left = (scaled_height - size[0]) // 2, (scaled_width - size[1]) // 2
    if rng is not None:
        top, left = int(rng.integers(0, scaled_height - size[0] + 1)), int(rng.integers(0, scaled_width - size[1] + 1))
    return scaled[top : top + size[0], left : left + size[1]]
