"""Edge refinement of a coarse mask: ``none``, ``guided`` (colour guided filter) or ``mnet`` (a trained MNet).

    >>> from cutout.refine.refiner import refine_mask
    >>> alpha = refine_mask(rgb, mask, "guided")                 # doctest: +SKIP

Both refinements only change the unknown band of a trimap made from the coarse mask
(:func:`cutout.refine.trimap.trimap_from_alpha`), so their cost follows the subject's outline, not the image
area. MNet runs on tiles that cover that band, at a working resolution whose long side is at most
:data:`MNET_WORK_SIDE`; the refined band is scaled back to full size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image

from cutout.errors import UsageError
from cutout.preprocess import normalize_pixels
from cutout.refine.guided import refine_alpha_guided
from cutout.refine.trimap import trimap_from_alpha

if TYPE_CHECKING:
    from cutout.backends import Predictor

RefineMethod = Literal["none", "guided", "mnet"]
REFINE_METHODS: tuple[RefineMethod, ...] = ("none", "guided", "mnet")

#: MNet sees the image at most this large (long side): its cost is bounded and its receptive field sees as
#: much of the outline on a 12-megapixel photo as on the ~800-pixel composites it is trained on.
MNET_WORK_SIDE = 1024
#: Tiles are square, this many pixels at the working resolution; neighbours overlap by twice the context.
MNET_TILE = 320
MNET_CONTEXT = 32
#: Tiles per inference call.
MNET_BATCH = 4

UNKNOWN = 128


class MNetRefiner:
    """A trained MNet (``cutout train --model mnet``) that re-estimates alpha in the unknown band."""

    def __init__(self, predictor: Predictor) -> None:
        if predictor.spec.architecture != "mnet":
            raise UsageError(
                f"the refiner must be an MNet (train one with `cutout train --model mnet`); "
                f"{predictor.spec.name!r} is a {predictor.spec.architecture} model"
            )
        self.predictor: Predictor = predictor

    def refine(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The alpha with its unknown band predicted by MNet.

        Shape: rgb (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W) uint8.
        """
        height, width = alpha.shape
        trimap = trimap_from_alpha(alpha)
        unknown = trimap == UNKNOWN
        if not unknown.any():
            return alpha
        scale = min(1.0, MNET_WORK_SIDE / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small_rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
            small_trimap = trimap_from_alpha(np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.BILINEAR)))
        else:
            small_rgb, small_trimap = rgb, trimap
        refined = self._refine_band(small_rgb, small_trimap)
        if refined is None:
            return alpha
        if scale < 1.0:
            refined = np.asarray(Image.fromarray(refined).resize((width, height), Image.Resampling.BILINEAR))
        out = alpha.copy()
        out[unknown] = np.clip(refined[unknown] * 255 + 0.5, 0, 255).astype(np.uint8)
        return out

    def _refine_band(self, rgb: np.ndarray, trimap: np.ndarray) -> np.ndarray | None:
        """MNet's alpha (float32 0..1) in the unknown pixels of every tile that has some; None when none has.

        Shape: rgb (h, w, 3) uint8, trimap (h, w) uint8 -> (h, w) float32 (known pixels: the trimap's 0 or 1).
        """
        tiles = list(_band_tiles(trimap == UNKNOWN))
        if not tiles:
            return None
        network = _network_input(self.predictor.spec.normalization, rgb, trimap)
        result = (trimap.astype(np.float32) / 255).round()
        for start in range(0, len(tiles), MNET_BATCH):
            group = tiles[start : start + MNET_BATCH]
            batch = np.stack([network[:, top:bottom, left:right] for (top, bottom, left, right), _ in group])
            for alphas, (window, core) in zip(self.predictor.predict(batch), group, strict=True):
                top, _, left, _ = window
                ctop, cbottom, cleft, cright = core
                band = trimap[ctop:cbottom, cleft:cright] == UNKNOWN
                part = alphas[ctop - top : cbottom - top, cleft - left : cright - left]
                result[ctop:cbottom, cleft:cright][band] = part[band]
        return result


def _network_input(normalization: object, rgb: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """MNet's 6 channels: the normalised image, then the trimap as background/unknown/foreground masks.

    The thresholds are those of :func:`cutout.models.mnet.trimap_one_hot` (0.25 and 0.75 of 255).

    Shape: rgb (h, w, 3) uint8, trimap (h, w) uint8 -> (6, h, w) float32.
    """
    from cutout.registry import Normalization

    assert isinstance(normalization, Normalization)
    levels = trimap.astype(np.float32) / 255
    background, foreground = levels < 0.25, levels > 0.75
    one_hot = np.stack([background, ~(background | foreground), foreground]).astype(np.float32)
    return np.concatenate([normalize_pixels(normalization, rgb), one_hot])


def _band_tiles(unknown: np.ndarray) -> Iterator[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(window, core) boxes as (top, bottom, left, right): the cores tile the image, each window is its core
    plus :data:`MNET_CONTEXT` on every side (shifted to stay inside), all windows the same size. Only tiles
    whose core holds unknown pixels are given."""
    height, width = unknown.shape
    tile_h, tile_w = min(MNET_TILE, height), min(MNET_TILE, width)
    step_h = tile_h - 2 * MNET_CONTEXT if tile_h == MNET_TILE and height > MNET_TILE else tile_h
    step_w = tile_w - 2 * MNET_CONTEXT if tile_w == MNET_TILE and width > MNET_TILE else tile_w
    for ctop in range(0, height, step_h):
        cbottom = min(height, ctop + step_h)
        for cleft in range(0, width, step_w):
            cright = min(width, cleft + step_w)
            if not unknown[ctop:cbottom, cleft:cright].any():
                continue
            top = min(max(0, ctop - MNET_CONTEXT), height - tile_h)
            left = min(max(0, cleft - MNET_CONTEXT), width - tile_w)
            yield (top, top + tile_h, left, left + tile_w), (ctop, cbottom, cleft, cright)


def refine_mask(
    rgb: np.ndarray,
    alpha: np.ndarray,
    method: RefineMethod,
    refiner: MNetRefiner | None = None,
    *,
    torch_device: str | None = None,
) -> np.ndarray:
    """``alpha`` refined by ``method``; ``refiner`` is needed for ``mnet``. With ``torch_device`` (a GPU the
    model runs on) the guided filter runs there (:mod:`cutout.refine.guided_torch`), else in numpy.

    Shape: rgb (H, W, 3) uint8, alpha (H, W) uint8 -> (H, W) uint8.
    """
    if method == "none":
        return alpha
    if method == "guided" and torch_device is not None:
        from cutout.refine.guided_torch import refine_alpha_guided_torch

        return refine_alpha_guided_torch(rgb, alpha, torch_device)
    if method == "guided":
        return refine_alpha_guided(rgb, alpha)
    if method == "mnet":
        if refiner is None:
            raise UsageError("refine='mnet' needs an MNet refiner (Session.refiner)")
        return refiner.refine(rgb, alpha)
    raise UsageError(f"unknown refinement {method!r}; use one of {', '.join(REFINE_METHODS)}")
