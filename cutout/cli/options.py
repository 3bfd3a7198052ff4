"""Command-line options shared by ``cutout image`` and ``cutout video``."""

from __future__ import annotations

from typing import Annotated

import typer

from cutout.errors import UsageError
from cutout.options import DEFAULT_REFINE, DEFAULT_REFINER

Refine = Annotated[
    str,
    typer.Option(
        "--refine",
        help="Edge refinement of the mask: none, guided (colour guided filter in the edge band; fast) or mnet "
        "(a trained MNet refiner, see --refiner). The README's table shows what each gives.",
    ),
]
Refiner = Annotated[
    str,
    typer.Option(
        "--refiner",
        help="The MNet for --refine mnet: a model name from `cutout train --model mnet` (see `cutout weights "
        "list`), its folder, or a .onnx/.pth file.",
    ),
]
ForegroundEstimation = Annotated[
    bool,
    typer.Option(
        "--foreground-estimation/--no-foreground-estimation",
        help="Re-estimate the subject's colours in soft edges so no halo of the old background shows.",
    ),
]


def check_mask_background(only_mask: bool, bg: str | None) -> None:
    """A grey mask has no background: ``--only-mask`` with ``--bg`` is refused rather than ``--bg`` ignored."""
    if only_mask and bg is not None:
        raise UsageError(f"--only-mask writes the grey mask, which has no background: drop --bg {bg!r} or --only-mask")


__all__ = [
    "DEFAULT_REFINE",
    "DEFAULT_REFINER",
    "ForegroundEstimation",
    "Refine",
    "Refiner",
    "check_mask_background",
]
