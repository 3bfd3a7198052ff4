"""The ``cutout`` command: ``cutout image``, ``cutout weights ...``.

Run ``cutout --help``. Nothing heavy is imported here: each command imports what it needs when it runs.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import warnings

import typer

from cutout.cli import image, is_finished, open_closed_streams, printable, reflow, shown, train, video, weights
from cutout.errors import CutoutError, UsageError, memory_shortage, out_of_memory

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # cutout's warnings name their image

app = typer.Typer(
    name="cutout",
    help="Cut people and objects out of images and videos, or replace their background.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("image", help=reflow(image.HELP))(image.image)
app.command("video", help=reflow(video.HELP))(video.video)
app.command("train", help=reflow(train.HELP))(train.train)
app.add_typer(weights.app, name="weights")


def main() -> None:
    """Console entry point: runs the app and turns CutoutError into a one-line message and exit code."""
    open_closed_streams()
    warnings.formatwarning = _warning_line
    # Pillow's warnings are about one image each, now named (see _warning_line): each image's is shown, not only
    # the first of its kind
    warnings.filterwarnings("always", category=UserWarning, module=r"PIL\.")
    try:
        app()
    except SystemExit as done:
        if is_finished() and _only_daemons_left() and isinstance(done.code, int | None):
            _exit_now(done.code or 0)
        raise
    except CutoutError as error:
        _error(_plain(str(error)))
        sys.exit(2 if isinstance(error, UsageError) else 1)
    except OSError as error:
        if out_of_memory(error):
            _out_of_memory(error)
        if error.errno != errno.ENAMETOOLONG:
            raise
        # a path the user typed that no file system can hold: pathlib's checks raise for it where they would say
        # False for a missing file; the commands check their own paths, this catches any such check left
        _error(f"{error.filename}: the name is too long for a file (255 bytes at most per name); use a shorter one")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as error:  # out of memory, in a video or a training run: a line of advice, not a traceback
        if not out_of_memory(error):
            raise
        _out_of_memory(error)


def _out_of_memory(error: BaseException) -> None:
    _error(
        f"ran out of memory ({memory_shortage(error)}); close other programs, or lower --batch-size (when training, "
        "--size too)"
    )
    sys.exit(1)


def _warning_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """Warnings on the command line as one line each ("warning: a.jpg: cannot read its EXIF orientation ..."),
    without the file, line and source of the code that raised them: they are about the user's files. A library's
    warning while an image is read ("Corrupt EXIF data ...", from Pillow) is given that image's name."""
    text = str(message)
    images = sys.modules.get("cutout.io.images")
    what = images.reading() if images is not None else None
    if what and what not in text and not filename.startswith(_PACKAGE):
        text = f"{what}: {text}"
    return f"warning: {printable(text, lines=True)}\n"


def _plain(message: str) -> str:
    """The message itself when torch's DataLoader re-raised it from a worker process ("Caught InputError in
    DataLoader worker process 0. Original Traceback ...: the message")."""
    if message.startswith("Caught ") and "\nOriginal Traceback" in message:
        last = message.strip().splitlines()[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return message


def _error(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {shown(message, lines=True)}", highlight=False)


def _only_daemons_left() -> bool:
    """Whether every thread but this one is a daemon: work that Python itself would not wait for at exit.

    A non-daemon thread (a model loading in the background) is left to finish, by the interpreter's own exit.
    """
    return all(thread.daemon for thread in threading.enumerate() if thread is not threading.current_thread())


def _exit_now(code: int) -> None:
    """End the process without tearing the interpreter down, once a command has finished (written and closed
    its files) and no other Python thread is left but daemons (a model still loading in the background is not one).

    Finalising the interpreter frees every module and object and onnxruntime's sessions one by one: 0.1 to
    0.18 s after ``cutout image`` on the project machine, a tenth of a one-photo run in a shell loop. The
    operating system frees it all at once.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away, or the stream was closed: nothing to flush
        pass
    os._exit(code)


if __name__ == "__main__":
    main()
