"""Making masks better after the network: clean-up, trimaps, guided filter, MNet refinement, foreground colours.

>>> from cutout.refine import clean_mask, estimate_foreground, refine_mask
>>> cleaned = clean_mask(mask)                              # doctest: +SKIP
>>> alpha = refine_mask(rgb, mask, "guided")                # doctest: +SKIP
>>> colours = estimate_foreground(rgb, alpha)               # doctest: +SKIP
"""

from cutout.refine.foreground import estimate_foreground
from cutout.refine.guided import refine_alpha_guided
from cutout.refine.morphology import clean_mask
from cutout.refine.refiner import REFINE_METHODS, MNetRefiner, refine_mask
from cutout.refine.trimap import trimap_from_alpha

__all__ = [
    "REFINE_METHODS",
    "MNetRefiner",
    "clean_mask",
    "estimate_foreground",
    "refine_alpha_guided",
    "refine_mask",
    "trimap_from_alpha",
]
