"""``cutout image``: cut the subject out of one image (a file or stdin) and write a PNG.

cutout image photo.jpg photo.png
cat photo.jpg | cutout image - - > photo.png
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

HELP = """Cut the subject out of an image and save it as a transparent PNG.

INPUT is an image file, or - (or nothing) for standard input; OUTPUT is a file, or - (or nothing when
reading stdin) for standard output. Without OUTPUT a file input is written beside it as NAME.cutout.png.

Examples:\n
  cutout image photo.jpg photo.png\n
  cutout image photo.jpg --only-mask mask.png\n
  cat photo.jpg | cutout image > photo.png
"""


def image(
    input: Annotated[str, typer.Argument(help="Image file, or - for standard input.")] = "-",
    output: Annotated[str | None, typer.Argument(help="Output PNG file, or - for standard output.")] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name (see `cutout weights list`) or a .onnx/.pth file.")
    ] = "u2netp",
    backend: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    only_mask: Annotated[bool, typer.Option("--only-mask", help="Write the grey mask instead of the cutout.")] = False,
) -> None:
    from cutout.api import Session

    data = sys.stdin.buffer.read() if input == "-" else Path(input)
    if output is None:
        output = "-" if input == "-" else str(Path(input).with_suffix("").with_suffix(".cutout.png"))
    session = Session(model, backend=backend, device=device)
    png = session.remove(data, only_mask=only_mask)
    assert isinstance(png, bytes)
    if output == "-":
        sys.stdout.buffer.write(png)
        sys.stdout.buffer.flush()
        return
    _write_atomic(Path(output), png)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
