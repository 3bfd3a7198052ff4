"""``cutout video``: background replacement and transparent video, sound kept, no flicker.

cutout video clip.mp4 --bg beach.jpg          # clip.cutout.mp4, H.264 with the audio copied
cutout video clip.mp4 clip.mov                # transparent ProRes 4444
ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - | cutout video - --raw 1280x720 | ffmpeg ...
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cutout.cli import shown
from cutout.cli.options import (
    DEFAULT_REFINE,
    DEFAULT_REFINER,
    ForegroundEstimation,
    Refine,
    Refiner,
    check_mask_background,
)
from cutout.errors import UsageError

if TYPE_CHECKING:
    from cutout.api import Session
    from cutout.options import VideoOptions
    from cutout.video import VideoSummary

HELP = """Cut the subject out of a video: over a new background, or as a transparent video.

With --bg the result is an MP4 (H.264, yuv420p) beside the input (clip.cutout.mp4); without it a
transparent video chosen by the output's extension: .mov ProRes 4444 (the default, for editors), .webm VP9
with alpha, an animation (.webp, .apng or .gif; an animated GIF, PNG or WebP gives the same kind by
default), or a folder of RGBA PNGs (an output ending in /). --only-mask writes a grey matte video. Frame rate,
timestamps, rotation and audio are kept (audio copied without re-encoding when the container allows; animations
have none). A phone's HDR clip (HLG or PQ) stays HDR in .mov, .webm and .mp4, with --bg colours and images
converted into it; PNGs and animations are tone-mapped to SDR.

Examples:\n
  cutout video clip.mp4 --bg beach.jpg\n
  cutout video clip.mp4 --bg '#00ff00' green.mp4\n
  cutout video clip.mp4 clip.mov                 # transparent ProRes 4444\n
  cutout video clip.mp4 frames/                  # RGBA PNGs\n
  cutout video clip.mp4 sticker.webp             # animated WebP with alpha\n
  cutout video clip.mp4 --only-mask matte.mp4\n
  ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - | cutout video - --raw 1280x720 |
  ffmpeg -f rawvideo -pix_fmt rgba -s 1280x720 -r 30 -i - out.mov
"""


def video(
    input: Annotated[str, typer.Argument(help="Video file, or - with --raw for rgb24 frames on stdin.")],
    output: Annotated[
        str | None, typer.Argument(help="Output .mp4/.mov/.webm/.webp/.apng/.gif, or a folder/ for PNGs.")
    ] = None,
    named_output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="The output, named as such: with --overwrite it replaces a file cutout did not make."
        ),
    ] = None,
    bg: Annotated[
        str | None, typer.Option("--bg", help="Background: a colour, an image, a video (looped), or blur[:RADIUS].")
    ] = None,
    only_mask: Annotated[bool, typer.Option("--only-mask", help="Write the grey matte instead.")] = False,
    post_process: Annotated[bool, typer.Option("--post-process", help="Clean the mask of each frame.")] = False,
    refine: Refine = DEFAULT_REFINE,
    refiner: Refiner = DEFAULT_REFINER,
    foreground_estimation: ForegroundEstimation = True,
    model: Annotated[str, typer.Option("--model", "-m", help="Model name or .onnx/.pth file.")] = "u2netp",
    backend: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Frames per inference call.")] = 1,
    start: Annotated[float | None, typer.Option(min=0, help="Start at this second.")] = None,
    duration: Annotated[float | None, typer.Option(min=0, help="Process this many seconds.")] = None,
    temporal_smoothing: Annotated[
        float,
        typer.Option(
            "--temporal-smoothing", min=0.0, max=0.95, help="0 off; higher steadies still edges more (motion-aware)."
        ),
    ] = 0.5,
    raw: Annotated[
        str | None, typer.Option("--raw", help="WIDTHxHEIGHT: rgb24 frames on stdin, raw frames on stdout.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
) -> None:
    from cutout.api import Session, make_options
    from cutout.options import VideoOptions
    from cutout.video import default_output, output_kind, parse_raw_size, process_raw

    check_mask_background(only_mask, bg)
    if output is not None and named_output is not None:
        raise UsageError(f"two outputs given ({output} and -o {named_output}); give one")
    second_file = output is not None and output != "-"  # maybe a second clip a glob matched, not an output
    output = output if output is not None else named_output
    background_video = _video_background(bg)
    remove = make_options(
        bg=None if background_video else bg,
        only_mask=only_mask,
        post_process=post_process,
        refine=refine,
        refiner=refiner,
        foreground_estimation=foreground_estimation,
    )
    options = VideoOptions(remove, background_video, temporal_smoothing, start, duration, batch_size)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if raw is not None:
        size = parse_raw_size(raw)
        if input != "-" or output not in (None, "-"):
            raise UsageError("--raw reads frames from stdin and writes them to stdout: cutout video - --raw WxH")
        if sys.stdout.isatty():
            raise UsageError("standard output is a terminal: pipe the raw frames on, e.g. into ffmpeg (see --help)")
        session = Session(model, backend=backend, device=device, threads=1)
        session.load_for(remove)
        # unbuffered: a read that waits on a silent pipe can then be given up on Ctrl-C (see raw_frames)
        stdin = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
        process_raw(stdin, sys.stdout.buffer, size, session, options)
        return
    source = Path(input)
    if input == "-":
        raise UsageError(
            "cutout video reads a video file from its path (cutout video clip.mp4 ...); from stdin it takes raw rgb24 "
            "frames of a size given with --raw, e.g. ffmpeg -i clip.mp4 -f rawvideo -pix_fmt rgb24 - | cutout video "
            "- --raw 1280x720 (see --help)"
        )
    if not os.path.isfile(source):  # os.path: False for a name too long to exist, where Path.is_file raises
        if os.path.isdir(source):
            raise UsageError(_folder_given(source))
        if os.path.islink(source) and not os.path.exists(source):
            raise UsageError(f"{input} is a broken symbolic link to {os.readlink(source)}")
        if os.path.lexists(source):
            raise UsageError(f"{input} is not a regular file; give a video file")
        raise UsageError(f"{input} does not exist; give a video file")
    if _image_frames(source) == 1:  # FFmpeg reads it as a video of one frame: not what anyone means
        raise UsageError(f"{input} is a still image, not a video; cut it out with: cutout image {shlex.quote(input)}")
    target = Path(output) if output else default_output(source, options)
    kind = output_kind(output if output else target, options)
    from cutout.io.discover import check_not_the_source, remove_stale_parts

    check_not_the_source(source, target)
    if os.path.exists(target) and not overwrite and kind != "png":
        console.print(f"skipped: {shown(str(target))} exists (--overwrite replaces it)")
        return
    if second_file and kind != "png" and os.path.isfile(target) and overwrite:
        from cutout.io.encode import made_by_cutout

        if not made_by_cutout(target):  # `cutout video *.mp4 --overwrite` with two clips: the second is no output
            clip, out = shlex.quote(input), shlex.quote(str(target))
            raise UsageError(
                f"{target} was not made by cutout, and --overwrite would replace it: cutout video takes one clip, "
                f"and a second file is its output. To replace it, name it with -o: cutout video {clip} -o {out} "
                f"--overwrite; to cut out several clips, one at a time: for f in *{source.suffix}; do cutout video "
                '"$f" ...; done'
            )

    remove_stale_parts({target.parent})  # what a killed run (SIGKILL, power loss) left here
    # one CPU thread per frame, several frames at once: faster than one frame on all cores (see OnnxPredictor)
    session = Session(model, backend=backend, device=device, threads=1)
    session.load_for(remove)
    summary = _run(source, target, session, options, kind, console, quiet)
    if not quiet or summary.interrupted:
        _report(console, summary)
    if summary.short:
        console.print(
            f"[yellow]warning[/]: {shown(str(source))} ended after {summary.frames} of the {summary.expected} "
            "frames it announces (truncated or damaged?); the output holds the frames that could be read"
        )
    raise typer.Exit(130 if summary.interrupted else 1 if summary.short else 0)


def _video_background(bg: str | None) -> Path | None:
    """The background video ``--bg`` names (a video file, or an animated GIF, WebP or PNG), else None."""
    from cutout.video import ANIMATION_SUFFIXES, KINDS

    if bg is None:
        return None
    path = Path(bg)
    suffix = path.suffix.lower()
    if suffix in ANIMATION_SUFFIXES and not _animated(path):
        return None  # a still image (or none: parse_background says what is wrong with it)
    if suffix not in {*KINDS, ".mkv", ".avi"}:
        return None
    if not path.is_file():
        raise UsageError(f"the background video {bg} does not exist")
    from cutout.errors import InputError
    from cutout.io.video import probe

    try:
        probe(path)
    except InputError as error:
        raise UsageError(f"cannot use {bg} as a background video: {error}") from None
    return path


def _animated(path: Path) -> bool:
    """Whether ``path`` is an image file with several frames (an animated GIF, WebP or PNG)."""
    return (_image_frames(path) or 0) > 1


def _image_frames(path: Path) -> int | None:
    """How many frames ``path`` holds as an image file (1: a still image), or None when it is no image Pillow
    reads (a video; Pillow's MPEG plugin only names MPEG-1 files, it reads no frames of them)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings(), Image.open(path) as image:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if image.format == "MPEG":
                return None
            return int(getattr(image, "n_frames", 1))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _run(
    source: Path, target: Path, session: Session, options: VideoOptions, kind: str, console: Console, quiet: bool
) -> VideoSummary:
    from cutout.cli.render import exit_on_sigterm
    from cutout.video import process_video as process

    exit_on_sigterm()
    if quiet or not console.is_terminal:
        return process(source, target, session, options, kind=kind)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]}"))
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("frames", total=None, fps="")
        started = time.perf_counter()

        def on_start(total: int | None) -> None:
            progress.update(task, total=total)

        def on_frame(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-6)
            progress.update(task, completed=done, fps=f"{rate:.1f} fps")

        return process(source, target, session, options, kind=kind, on_frame=on_frame, on_start=on_start)


def _report(console: Console, summary: VideoSummary) -> None:
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    head = "[yellow]interrupted[/]: kept a valid, shorter video with " if summary.interrupted else ""
    console.print(
        f"{head}{summary.frames} frames in {summary.seconds:.1f} s ({rate:.1f} fps) -> {shown(str(summary.output))}"
    )
    if summary.skipped:
        console.print(f"[yellow]{summary.skipped} corrupt packet(s) skipped[/]; the rest was processed")
    for note in summary.notes:
        console.print(f"note: {shown(note)}")


def _folder_given(folder: Path) -> str:
    """What to say when the input is a folder: the clips in it, and how to cut them out one by one."""
    from cutout.io.discover import find_media

    clips = find_media(folder)[1]
    if not clips:
        return f"{folder} is a folder (with no videos in it); give a video file"
    each = f'for f in {shlex.quote(str(folder))}/*{clips[0].suffix}; do cutout video "$f"; done'
    return (
        f"{folder} is a folder of {len(clips)} video{'s' * (len(clips) != 1)}; cutout video takes one clip at a "
        f"time: cutout video {shlex.quote(str(clips[0]))}, or each in turn (with your options): {each}"
    )
