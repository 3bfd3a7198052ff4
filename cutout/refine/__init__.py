"""Making masks better after the network: clean-up now; guided filter, trimaps and MNet refinement to come.

>>> from cutout.refine import clean_mask
>>> cleaned = clean_mask(mask)            # doctest: +SKIP
"""

from cutout.refine.morphology import clean_mask

__all__ = ["clean_mask"]
