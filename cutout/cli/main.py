"""The ``cutout`` command: ``cutout image``, ``cutout weights ...``.

Run ``cutout --help``. Nothing heavy is imported here: each command imports what it needs when it runs.
"""

from __future__ import annotations

import sys

import typer

from cutout.cli import image, train, video, weights
from cutout.errors import CutoutError, UsageError

app = typer.Typer(
    name="cutout",
    help="Cut people and objects out of images and videos, or replace their background.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("image", help=image.HELP)(image.image)
app.command("video", help=video.HELP)(video.video)
app.command("train", help=train.HELP)(train.train)
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Console entry point: runs the app and turns CutoutError into a one-line message and exit code."""
    try:
        app()
    except CutoutError as error:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(2 if isinstance(error, UsageError) else 1)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
