"""Frozen option records shared by the API and the CLI, so both do exactly the same thing.

>>> from cutout.options import RemoveOptions
>>> RemoveOptions(only_mask=True).only_mask
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cutout.compose import Background

#: Pillow's own default is about 89 million pixels; cutout allows larger photos (e.g. 200 MP panoramas)
#: but still refuses decompression bombs. ``--max-pixels`` raises it.
DEFAULT_MAX_PIXELS = 250_000_000

#: Default --refine; chosen by measurement on ../shared/eval/matting (tests/benchmarks/eval_refine.py), see README.
DEFAULT_REFINE = "none"
#: Default --refiner: the MNet that ``--refine mnet`` uses (a model name, a model folder or a weights file).
DEFAULT_REFINER = "mnet"


@dataclass(frozen=True)
class RemoveOptions:
    """What to make of one image once its mask is known.

    Attributes:
        only_mask: write the grey mask instead of the cutout.
        background: None for a transparent cutout, else a colour, an image or a blur of the photo itself.
        post_process: morphological clean-up of the mask (like rembg's ``-ppm``).
        max_pixels: refuse images with more pixels than this (decompression-bomb guard).
        refine: edge refinement of the mask: "none", "guided" (colour guided filter) or "mnet".
        refiner: the MNet model for ``refine="mnet"`` (a trained model's name, its folder or a weights file).
        foreground_estimation: re-estimate the subject's colours where the mask is soft, so no halo of the old
            background shows on a cutout or a new background.
    """

    only_mask: bool = False
    background: Background | None = None
    post_process: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    refine: str = DEFAULT_REFINE
    refiner: str = DEFAULT_REFINER
    foreground_estimation: bool = True


#: Default --temporal-smoothing: measured on DAVIS dance-twirl with u2netp (tests/benchmarks/bench_video.py),
#: 0.5 lowers frame-to-frame flicker by ~17% for a mean IoU change under 0.001.
DEFAULT_TEMPORAL_SMOOTHING = 0.5


@dataclass(frozen=True)
class VideoOptions:
    """What to make of a video.

    Attributes:
        remove: per-frame options (mask only, background colour/image/blur, mask clean-up).
        background_video: a video to put behind the subject instead (frame by frame, looped, scaled to cover).
        temporal_smoothing: 0 off; up to 0.95, how much the alpha of still regions leans on the previous frames.
        start: seconds to skip at the start; duration: seconds to process (None: to the end).
        batch_size: frames per inference call.
    """

    remove: RemoveOptions = RemoveOptions()
    background_video: Path | None = None
    temporal_smoothing: float = DEFAULT_TEMPORAL_SMOOTHING
    start: float | None = None
    duration: float | None = None
    batch_size: int = 1
