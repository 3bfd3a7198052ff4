"""``cutout image``: files, folders, globs and pipes through one model, in parallel, safely.

cutout image photo.jpg photo.png
cutout image shoots/ cutouts/ --bg white --format jpg
cat photo.jpg | cutout image > photo.png
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import sys
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cutout.cli import closed_at_start, finished
from cutout.cli.options import (
    DEFAULT_REFINE,
    DEFAULT_REFINER,
    ForegroundEstimation,
    Refine,
    Refiner,
    check_mask_background,
)
from cutout.cli.render import BatchReport, exit_on_sigterm
from cutout.errors import UsageError

if TYPE_CHECKING:
    from cutout.batch import Job
    from cutout.options import RemoveOptions

HELP = """Cut the subject out of images: a file, a folder (recursively), several files or a glob, or stdin.

Results are transparent PNGs unless --format/--bg say otherwise. A folder's tree is mirrored in the output
folder; existing outputs are skipped, so re-running a batch resumes it (--overwrite redoes them).

Examples:\n
  cutout image photo.jpg photo.png                      # one file\n
  cutout image shoots/ cutouts/                         # a folder, recursively\n
  cutout image 'shoots/**/*.jpg' -o cutouts/            # a glob (quoted) or several files\n
  cutout image shoots/ cutouts/ --bg white --format jpg # white background, JPEG\n
  cutout image photo.jpg --only-mask mask.png           # the grey mask\n
  cat photo.jpg | cutout image > photo.png              # a shell pipeline\n
  cutout image inbox/ done/ --watch                     # keep processing new files

Exit codes: 0 all done (or skipped), 1 some failed, 2 usage error, 130 interrupted.
"""

_FORMATS = ("png", "webp", "jpg", "tif")
_OUTPUT_SUFFIXES = {".png", ".webp", ".jpg", ".jpeg", ".tif", ".tiff"}


def image(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="INPUT... [OUTPUT]: files, folders, globs, or -.", show_default=False, metavar="[INPUT]... [OUTPUT]"
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output file or folder (instead of the last argument).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model name (`cutout weights list`) or a .onnx/.pth file.")
    ] = "u2netp",
    backend: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per inference call.")] = 1,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=0, help="Decode and encode threads each (0: half the cores).")
    ] = 0,
    bg: Annotated[
        str | None,
        typer.Option(
            "--bg",
            help="Background: a colour (white, '#00ff00', 0,0,0,128), an image, or blur[:RADIUS]; default transparent.",
        ),
    ] = None,
    only_mask: Annotated[bool, typer.Option("--only-mask", help="Write the grey mask instead of the cutout.")] = False,
    post_process: Annotated[
        bool,
        typer.Option("--post-process", "-ppm", help="Clean the mask: remove specks, fill pinholes, sharpen the edge."),
    ] = False,
    refine: Refine = DEFAULT_REFINE,
    refiner: Refiner = DEFAULT_REFINER,
    foreground_estimation: ForegroundEstimation = True,
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="png, webp, jpg or tif (default: from the output's extension, else png)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo outputs that already exist (default: skip them).")
    ] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first file that fails.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep processing new files in the input folder until Ctrl-C.")
    ] = False,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=0,
            max=1024,
            help="CPU threads per inference. 0 (auto): 1 for several images (one image per core at once: "
            "fastest), all cores for one image. A number N uses N threads per image and runs cores/N images "
            "at once; all cores (e.g. 2) runs one image at a time and needs about 300 MB less.",
        ),
    ] = 0,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", min=1, help="Refuse larger images (decompression-bomb guard).")
    ] = 250_000_000,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or summary (errors still print).")
    ] = False,
) -> None:
    from cutout.api import Session, make_options
    from cutout.batch import default_workers, process_images
    from cutout.io.discover import remove_stale_parts
    from cutout.io.encode import write_all

    check_mask_background(only_mask, bg)
    if format is not None and format.lower().replace("jpeg", "jpg").replace("tiff", "tif") not in _FORMATS:
        raise UsageError(f"unknown --format {format!r}; use one of {', '.join(_FORMATS)}")
    fmt = None if format is None else format.lower().replace("jpeg", "jpg").replace("tiff", "tif")
    options = make_options(
        bg=bg,
        only_mask=only_mask,
        post_process=post_process,
        max_pixels=max_pixels,
        refine=refine,
        refiner=refiner,
        foreground_estimation=foreground_estimation,
    )
    inputs, target, guessed = _split(paths or [], output)
    cancel = threading.Event()  # set when the pipeline stops early (Ctrl-C): also ends --watch's wait for new files
    jobs, skipped, stream = _plan(
        inputs, target, fmt, options, overwrite=overwrite, watch=watch, stop=cancel, guessed_output=guessed
    )
    if isinstance(jobs, list):
        remove_stale_parts({job.target.parent for job in jobs if job.target is not None})
    if threads == 0:  # auto: whole images in parallel when there are several (see OnnxPredictor)
        several = watch or not isinstance(jobs, list) or len(jobs) > 1
        threads = 1 if several else 0
    # the model loads while the first images are read and decoded; --watch loads it first, so that a broken model
    # says so at once rather than when the first file arrives
    session = Session(model, backend=backend, device=device, threads=threads or None, background=not watch)
    session.load_for(options)
    report = BatchReport(
        total=len(jobs) if isinstance(jobs, list) else None, skipped=skipped, quiet=quiet or stream, watch=watch
    )
    exit_on_sigterm()
    outcomes = process_images(
        jobs,
        session,
        options,
        batch_size=batch_size,
        workers=workers or default_workers(),
        fail_fast=fail_fast,
        cancel=cancel,
    )
    code = 0
    started = time.perf_counter()
    named_sink = target if stream and target not in (None, "-") else None  # /dev/stdout, /dev/null, a named pipe
    try:
        # appending: /dev/stdout reopened must not cut short what `>>` redirected it to
        with report, open(named_sink, "ab") if named_sink else contextlib.nullcontext(sys.stdout.buffer) as sink:
            for outcome in outcomes:
                report.add(outcome)
                if outcome.data is not None:
                    write_all(sink, outcome.data, named_sink or "standard output")
    except KeyboardInterrupt:
        code = 130
    finally:
        outcomes.close()
    code = code or (1 if report.failed else 0)
    report.summary(time.perf_counter() - started, interrupted=code == 130)
    finished()  # every file is written and closed: the process may end at once
    raise typer.Exit(code)


def _not_images(others: list[Path]) -> str:
    """Why the other files of the folders were not taken: a folder's images are found by their names."""
    names = ", ".join(path.name for path in others[:3]) + (", ..." if len(others) > 3 else "")
    one = len(others) == 1
    return (
        f"{len(others)} other file{'' if one else 's'} ({names}) {'is not an image' if one else 'are not images'} "
        "by the suffix of the name (.jpg, .png, .webp, .tif, .heic, ...), which is how a folder's images are found. "
        f"An image without one is cut out when named on its own (cutout image {shlex.quote(str(others[0]))} "
        "OUT.png), or once renamed"
    )


def _split(paths: list[str], output: str | None) -> tuple[list[str], str | None, bool]:
    """Inputs and output from the positional arguments (the last one is the output when it can only be one), and
    whether the output was guessed so: two files given, the second taken as the output."""
    if output is not None or len(paths) < 2:
        return paths, output, False
    last = paths[-1]
    if len(paths) == 2 and _is_stream(last):  # cutout image a.jpg /dev/stdout: no input, but where bytes go
        return paths[:-1], last, False
    if last == "-" or Path(last).suffix.lower() in _OUTPUT_SUFFIXES and len(paths) == 2 and not Path(paths[0]).is_dir():
        return paths[:-1], last, last != "-"
    if os.path.isdir(last) or last.endswith(("/", "\\")) or not os.path.exists(last):
        return paths[:-1], last, False
    return paths, None, False


def _plan(
    inputs: list[str],
    output: str | None,
    fmt: str | None,
    options: RemoveOptions,
    *,
    overwrite: bool,
    watch: bool,
    stop: threading.Event | None = None,
    guessed_output: bool = False,
) -> tuple[Iterable[Job], list[Job], bool]:
    """The jobs (a list, or an endless generator with --watch), the skipped ones, and whether results go to stdout.

    ``guessed_output``: ``output`` is the second of two files given, which may be meant as a second input (a glob
    that matched two photos): an existing file there that cutout did not make is not replaced.
    """
    from cutout.batch import Job
    from cutout.io.discover import (
        IMAGE_SUFFIXES,
        check_not_the_source,
        check_output_folder,
        expand,
        plan_jobs,
        watch_jobs,
    )
    from cutout.io.encode import made_by_cutout
    from cutout.io.images import format_for, needs_opaque

    stdin = not inputs or inputs == ["-"]
    if watch:
        if stdin or len(inputs) != 1 or not Path(inputs[0]).is_dir() or output is None:
            raise UsageError("--watch needs one input folder and an output folder: cutout image inbox/ done/ --watch")
        check_output_folder(Path(inputs[0]), Path(output))
        format_ = fmt or "png"
        _check_opaque(format_, options, needs_opaque(format_))
        return watch_jobs(Path(inputs[0]), Path(output), format_, overwrite=overwrite, stop=stop), [], False
    if stdin:
        streamed = output in (None, "-") or _is_stream(output)  # standard output, /dev/stdout, a pipe, ...
        target = None if streamed else Path(str(output))
        format_ = format_for(target, fmt)
        _check_opaque(format_, options, needs_opaque(format_))
        if sys.stdin.isatty() or 0 in closed_at_start:
            closed = " (standard input is closed)" if 0 in closed_at_start else ""
            raise UsageError(f"no input{closed}: give an image file or folder, or pipe an image into standard input")
        if target is None:
            _check_not_a_terminal(None if output in (None, "-") else output)
        job = Job(sys.stdin.buffer.read(), target, format_)  # read even when skipped: the writer gets no EPIPE
        if target is not None and os.path.exists(target) and not overwrite:
            return [], [job], False
        return [job], [], target is None
    sources = expand(inputs)
    if output == "-" or _is_stream(output):
        if len(sources) != 1 or sources[0].is_dir():
            where = "standard output" if output == "-" else str(output)
            raise UsageError(f"{where} takes exactly one input image")
        _check_not_a_terminal(None if output == "-" else output)
        format_ = format_for(None, fmt)
        _check_opaque(format_, options, needs_opaque(format_))
        return [Job(sources[0], None, format_)], [], True
    single_file = len(sources) == 1 and not sources[0].is_dir()
    destination = None if output is None else Path(output)
    suffix = "" if destination is None or os.path.isdir(destination) else destination.suffix.lower()
    if suffix in IMAGE_SUFFIXES and not single_file:
        what = f"the folder {inputs[0]}" if len(sources) == 1 else f"{len(sources)} inputs"
        raise UsageError(f"{output} names one file, but the cutouts of {what} need an output folder")
    if destination is not None and single_file and suffix in IMAGE_SUFFIXES:
        if suffix not in _OUTPUT_SUFFIXES:
            raise UsageError(
                f"cutout cannot write {suffix[1:].upper()} files ({output}); name the output .png, .webp, .jpg or "
                ".tif (or give a folder)"
            )
        target = destination
        format_ = format_for(target, fmt)
        taken = guessed_output and os.path.exists(target) and not made_by_cutout(target)
        _check_opaque(format_, options, needs_opaque(format_), _taken_as_output(inputs[0], target) if taken else "")
        check_not_the_source(sources[0], target)
        if taken and overwrite:
            raise UsageError(
                f"{target} was not made by cutout, and --overwrite would replace it: of two files, the second is "
                f"taken as the output. To cut out both, add an output folder: {_both(inputs[0], target)}; to "
                f"replace it, name it with -o: cutout image {shlex.quote(inputs[0])} -o {shlex.quote(str(target))} "
                "--overwrite"
            )
        job = Job(sources[0], target, format_)
        return ([], [job], False) if os.path.exists(target) and not overwrite else ([job], [], False)
    format_ = fmt or "png"
    _check_opaque(format_, options, needs_opaque(format_))
    plan = plan_jobs(sources, destination, format_, overwrite=overwrite)
    clips = len(plan.videos)
    videos = f"{clips} video{'s' * (clips != 1)}"
    example = f"cutout video {shlex.quote(str(plan.videos[0]))}" if plan.videos else ""
    one = "it" if clips == 1 else "one"
    if clips > 1 and len(inputs) == 1 and os.path.isdir(inputs[0]):  # cutout video takes the folder's clips too
        example, one = f"cutout video {shlex.quote(inputs[0])}", "them"
    if not plan.jobs and not plan.skipped:
        held = f", only {videos}: cut {one} out with {example}" if clips else ""
        others = f"{';' if held else ':'} {_not_images(plan.others)}" if plan.others else ""
        raise UsageError(f"no images found in {', '.join(inputs)}{held}{others}")
    if clips:
        warnings.warn(f"left out {videos} (cutout image takes images): cut {one} out with {example}", stacklevel=1)
    return plan.jobs, plan.skipped, False


_STREAM_NAMES = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/")


def _is_stream(path: str | None) -> bool:
    """Whether ``path`` names a stream: /dev/stdout and the like (whatever they point to), a character device
    (/dev/null) or a pipe. Such an output is written as it is, never through a temporary file and a rename, and
    it is never read as an input."""
    if path is None or path == "-":
        return False
    if path.startswith(_STREAM_NAMES):
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def _check_not_a_terminal(device: str | None = None) -> None:
    """Image bytes are not for a terminal (as gzip refuses to write compressed data to one): standard output, or
    a ``device`` named as the output (/dev/stdout, /dev/tty); nor are they lost in /dev/null put where standard
    output was closed."""
    if device is None and 1 in closed_at_start:
        raise UsageError("standard output is closed (>&-): name an output file or folder, or redirect it to one")
    if _is_terminal(device) if device is not None else sys.stdout.isatty():
        where = "standard output" if device is None else device
        raise UsageError(
            f"{where} is a terminal, not a file: redirect it (cutout image < photo.jpg > photo.png) or name an "
            "output file"
        )


def _is_terminal(device: str) -> bool:
    """Whether the output ``device`` is a terminal; a pipe is not opened here (that would wait for its reader, and
    closing it would end the reader's input)."""
    try:
        if not stat.S_ISCHR(os.stat(device).st_mode):
            return False
        descriptor = os.open(device, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False  # the write will say why it cannot
    try:
        return os.isatty(descriptor)
    finally:
        os.close(descriptor)


def _both(source: str, target: Path) -> str:
    """The command that cuts out both of two files where the second was taken as the output."""
    return f"cutout image {shlex.quote(source)} {shlex.quote(str(target))} cutouts/"


def _taken_as_output(source: str, target: Path) -> str:
    """A hint for when the second of two files, taken as the output, was meant as a second input."""
    both = _both(source, target)
    return f"{target} exists and is taken as the output; to cut out both files, add an output folder: {both}"


def _check_opaque(format_: str, options: RemoveOptions, opaque_only: bool, hint: str = "") -> None:
    background = options.background
    if opaque_only and not options.only_mask and (background is None or not background.opaque):
        from cutout.compose import see_through

        raise UsageError(
            f"{format_.upper()} has no transparency ({see_through(background)}): give an opaque --bg (a colour, "
            "an image or blur), use --only-mask, or choose --format png or webp" + (f". {hint}" if hint else "")
        )
