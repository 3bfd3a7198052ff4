"""Frozen option records shared by the API and the CLI, so both do exactly the same thing.

>>> from cutout.options import RemoveOptions
>>> RemoveOptions(only_mask=True).only_mask
True
"""

from __future__ import annotations

from dataclasses import dataclass

from cutout.compose import Background

#: Pillow's own default is about 89 million pixels; cutout allows larger photos (e.g. 200 MP panoramas)
#: but still refuses decompression bombs. ``--max-pixels`` raises it.
DEFAULT_MAX_PIXELS = 250_000_000


@dataclass(frozen=True)
class RemoveOptions:
    """What to make of one image once its mask is known.

    Attributes:
        only_mask: write the grey mask instead of the cutout.
        background: None for a transparent cutout, else a colour, an image or a blur of the photo itself.
        post_process: morphological clean-up of the mask (like rembg's ``-ppm``).
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
    """

    only_mask: bool = False
    background: Background | None = None
    post_process: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
