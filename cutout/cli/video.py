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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cutout.cli import about, shown
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

With --bg the result is an MP4 (H.264, yuv420p) beside the input (clip.cutout.mp4; name it .mkv for Matroska,
which takes the input's audio as it is far more often); without it a
transparent video chosen by the output's extension: .mov ProRes 4444 (the default, for editors), .webm VP9
with alpha, an animation (.webp, .apng or .gif; an animated GIF, PNG or WebP gives the same kind by
default), or a folder of RGBA PNGs (an output ending in /). --only-mask writes a grey matte video. Frame rate,
timestamps, rotation and audio are kept (audio copied without re-encoding when the container allows; animations
have none). A phone's HDR clip (HLG or PQ) stays HDR in .mov, .webm, .mp4 and .mkv, with --bg colours and images
converted into it; PNGs and animations are tone-mapped to SDR.

A folder of clips (recursively, its tree mirrored), or several clips then an output folder, are cut out one
after another with the model loaded once: clips/ gives clips-cutout/, --format picks the kind (default: mp4
with --bg, else mov), outputs that exist are skipped (a re-run resumes), a bad clip fails alone.

Examples:\n
  cutout video clip.mp4 --bg beach.jpg\n
  cutout video clip.mp4 --bg '#00ff00' green.mp4\n
  cutout video recording.mkv --bg beach.jpg out.mkv\n
  cutout video clip.mp4 clip.mov                 # transparent ProRes 4444\n
  cutout video clip.mp4 frames/                  # RGBA PNGs\n
  cutout video clip.mp4 sticker.webp             # animated WebP with alpha\n
  cutout video clip.mp4 --only-mask matte.mp4\n
  cutout video clips/ cutouts/ --bg white        # every clip in a folder\n
  cutout video a.mp4 b.mov cutouts/ --format webm\n
  ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - | cutout video - --raw 1280x720 |
  ffmpeg -f rawvideo -pix_fmt rgba -s 1280x720 -r 30 -i - out.mov
"""


def video(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT [OUTPUT]: a clip and its output (.mp4/.mkv/.mov/.webm/.webp/.apng/.gif, or folder/ for PNGs); "
            "or a folder of clips, or several clips, then an output folder; or - with --raw.",
            show_default=False,
            metavar="INPUT... [OUTPUT]",
        ),
    ],
    named_output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="The output, named as such: with --overwrite it replaces a file cutout did not make."
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="mp4, mkv, mov, webm, webp, apng, gif or png (a folder of PNGs) for outputs cutout names (a folder of "
            "clips, or beside a clip); default: mp4 with --bg or --only-mask, else mov.",
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
    from cutout.video import output_kind, parse_raw_size, process_raw

    check_mask_background(only_mask, bg)
    inputs, output, several = _split(paths, named_output)
    second_file = len(paths) == 2 and named_output is None and output not in (None, "-")  # maybe a second clip
    input = inputs[0]
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
    if format is not None and format.lower() not in FORMATS:
        raise UsageError(f"unknown --format {format}; give one of {', '.join(FORMATS)}")
    if several:
        _refuse_stdin(inputs)
        session = Session(model, backend=backend, device=device, threads=1)
        jobs = _plan(inputs, output, format, options, overwrite)
        session.load_for(remove)
        raise typer.Exit(_run_all(jobs, session, options, console, quiet))
    source = Path(input)
    if input == "-":
        raise UsageError(
            "cutout video reads a video file from its path (cutout video clip.mp4 ...); from stdin it takes raw rgb24 "
            "frames of a size given with --raw, e.g. ffmpeg -i clip.mp4 -f rawvideo -pix_fmt rgb24 - | cutout video "
            "- --raw 1280x720 (see --help)"
        )
    if not os.path.isfile(source):  # os.path: False for a name too long to exist, where Path.is_file raises
        if os.path.islink(source) and not os.path.exists(source):
            raise UsageError(f"{input} is a broken symbolic link to {os.readlink(source)}")
        if os.path.lexists(source):
            raise UsageError(f"{input} is not a regular file; give a video file")
        raise UsageError(f"{input} does not exist; give a video file")
    if _image_frames(source) == 1:  # FFmpeg reads it as a video of one frame: not what anyone means
        raise UsageError(f"{input} is a still image, not a video; cut it out with: cutout image {shlex.quote(input)}")
    target = Path(output) if output else _beside(source, format, options)
    kind = output_kind(output if output else _typed(target, format), options)
    if format is not None and output and _kind_of(format, options) != kind:
        raise UsageError(f"--format {format} and the output {output} say different formats; give one of them")
    from cutout.io.discover import check_not_the_source, remove_stale_parts

    check_not_the_source(source, target)
    if os.path.exists(target) and not overwrite and kind != "png":
        console.print(f"skipped: {shown(str(target))} exists (--overwrite replaces it)")
        if second_file and os.path.isfile(target):
            from cutout.io.encode import made_by_cutout

            if not made_by_cutout(target):  # two clips (a glob), not a clip and its output
                console.print(
                    f"of two files, the second is the output of the first; to cut out both, add an output folder: "
                    f"cutout video {shlex.quote(input)} {shlex.quote(str(target))} cutouts/"
                )
        return
    if second_file and kind != "png" and os.path.isfile(target) and overwrite:
        from cutout.io.encode import made_by_cutout

        if not made_by_cutout(target):  # `cutout video *.mp4 --overwrite` with two clips: the second is no output
            clip, out = shlex.quote(input), shlex.quote(str(target))
            raise UsageError(
                f"{target} was not made by cutout, and --overwrite would replace it: of two files, cutout video "
                f"takes the second as the output of the first. To replace it, name it with -o: cutout video {clip} "
                f"-o {out} --overwrite; to cut out both clips, add an output folder: cutout video {clip} {out} "
                "cutouts/"
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


#: --format: the output's extension ("/" a folder of PNG frames)
FORMATS = {
    "mp4": ".mp4",
    "mkv": ".mkv",
    "mov": ".mov",
    "webm": ".webm",
    "webp": ".webp",
    "apng": ".apng",
    "gif": ".gif",
    "png": "/",
}


def _split(paths: list[str], named: str | None) -> tuple[list[str], str | None, bool]:
    """The inputs, the output, and whether they are a batch (a folder of clips, or several clips).

    One clip: ``clip.mp4 [OUTPUT]`` as always (a second file is its output, ``folder/`` its PNG frames). A
    folder: ``clips/ [OUT_FOLDER]``. Three paths or more: clips and folders, then an output folder (a folder
    that exists, a name ending in /, or a new name without a video extension), or only clips (a glob), each
    written beside itself.
    """
    if named is not None:
        return paths, named, len(paths) > 1 or os.path.isdir(paths[0])
    if len(paths) <= 2:
        return paths[:1], paths[1] if len(paths) == 2 else None, os.path.isdir(paths[0])
    last = paths[-1]
    from cutout.io.discover import VIDEO_SUFFIXES
    from cutout.video import KINDS

    if os.path.isdir(last) or last.endswith(("/", os.sep)):
        return paths[:-1], last, True
    if not os.path.lexists(last):
        if Path(last).suffix.lower() in {*KINDS, *VIDEO_SUFFIXES}:
            raise UsageError(
                f"{last} does not exist; with several clips, the last path is an output folder (end it with / to "
                "make a new one), or leave it out to write each cutout beside its clip"
            )
        return paths[:-1], last, True
    return paths, None, True


def _refuse_stdin(inputs: list[str]) -> None:
    if "-" in inputs:
        raise UsageError("- (standard input) takes raw frames alone (cutout video - --raw WxH), not among clips")


@dataclass
class _Clip:
    source: Path
    target: Path
    kind: str
    exists: bool  # skipped unless --overwrite


def _suffix(source: Path, format: str | None, options: VideoOptions) -> str:
    """The extension of ``source``'s output: ``format``'s, else the default's (see default_output)."""
    from cutout.video import default_output

    return default_output(source, options).suffix if format is None else FORMATS[format.lower()].rstrip("/")


def _beside(source: Path, format: str | None, options: VideoOptions) -> Path:
    """``clip.cutout.EXT`` (``clip.mask.EXT``) beside the clip, EXT as ``format`` says or by default."""
    name = "mask" if options.remove.only_mask else "cutout"
    return source.with_name(f"{source.stem}.{name}{_suffix(source, format, options)}")


def _kind_of(format: str, options: VideoOptions) -> str:
    """The output kind ``--format`` asks for."""
    from cutout.video import output_kind

    return output_kind(_typed(Path("output" + FORMATS[format.lower()].rstrip("/")), format), options)


def _typed(target: Path, format: str | None) -> str:
    """The target as output_kind reads it: a folder of PNGs ends in /."""
    return f"{target}/" if format is not None and format.lower() == "png" else str(target)


def _plan(
    inputs: list[str], output: str | None, format: str | None, options: VideoOptions, overwrite: bool
) -> list[_Clip]:
    """Every clip of the inputs (a folder's, recursively, its tree mirrored) and its output, checked before any
    work: missing inputs, outputs that would replace their clip or each other, formats that cannot be written.

    Raises:
        UsageError: any of those.
    """
    from cutout.io.discover import (
        VIDEO_SUFFIXES,
        _check_collisions,
        _tell_apart,
        check_not_the_source,
        check_output_folder,
        default_folder,
        find_media,
        mirror_if_names_repeat,
    )
    from cutout.video import ANIMATION_SUFFIXES, KINDS, output_kind

    folder = Path(output) if output is not None else None
    named_file = folder is not None and not os.path.isdir(folder) and not str(output).endswith(("/", os.sep))
    if folder is not None and (
        os.path.isfile(folder) or named_file and folder.suffix.lower() in {*KINDS, *VIDEO_SUFFIXES}
    ):
        what = "a folder of clips needs" if len(inputs) == 1 else f"{len(inputs)} inputs need"
        raise UsageError(
            f"{output} names a file, but {what} an output folder (end a new one's name with /), or none: each "
            "cutout is then written beside its clip"
        )
    pairs: list[tuple[Path, Path]] = []
    ours: list[Path] = []  # earlier results beside their clips, found in a folder: not cut out again
    found: set[Path] = set()  # from a folder walk: mirrored anyway
    for text in inputs:
        path = Path(text)
        if os.path.isdir(path):
            root = folder if folder is not None else default_folder(path)
            check_output_folder(path, root)
            images, clips, _ = find_media(path, exclude=root)
            # animated GIFs, PNGs and WebPs (stickers) are clips too; still images are for cutout image
            animations = [image for image in images if image.suffix.lower() in ANIMATION_SUFFIXES and _animated(image)]
            clips = sorted([*clips, *animations])
            images = [image for image in images if image not in animations]
            if not clips:
                pictures = (
                    f", only {len(images)} image(s): cutout image {shlex.quote(text)} cuts them out" if images else ""
                )
                raise UsageError(f"no videos found in {text}{pictures}")
            for clip in clips:
                if _earlier_result(clip):
                    ours.append(clip)
                    continue
                relative = clip.relative_to(path)
                pairs.append((clip, root / relative.parent / (relative.stem + _suffix(clip, format, options))))
                found.add(clip)
        elif os.path.isfile(path):
            named = folder / (path.stem + _suffix(path, format, options)) if folder is not None else None
            pairs.append((path, named if named is not None else _beside(path, format, options)))
        else:
            raise UsageError(f"{text} does not exist; give video files or folders of them")
    if ours:
        warnings.warn(
            f"left out {len(ours)} video(s) that cutout made beside their clips, e.g. {ours[0]}", stacklevel=2
        )
    if not pairs:
        raise UsageError(f"no videos to cut out in {', '.join(inputs)}: only cutout's own results")
    if folder is not None:  # clips named one by one whose names repeat in other folders mirror those folders
        pairs = mirror_if_names_repeat(
            pairs, folder, lambda path: path.parent / (path.stem + _suffix(path, format, options)), found
        )
    pairs = _tell_apart(pairs)  # a.mp4 and a.mov in one folder: a.mp4.mov and a.mov.mov, not one for both
    _check_collisions(pairs)
    planned = []
    for source, target in pairs:
        check_not_the_source(source, target)
        exists = os.path.lexists(target) and not overwrite
        planned.append(_Clip(source, target, output_kind(_typed(target, format), options), exists))
    return planned


def _earlier_result(clip: Path) -> bool:
    """Whether ``clip`` is a result cutout wrote beside its clip (``a.cutout.mp4``, ``a.mask.mp4``)."""
    from cutout.io.encode import made_by_cutout

    return clip.stem.lower().endswith((".cutout", ".mask")) and made_by_cutout(clip)


def _run_all(clips: list[_Clip], session: Session, options: VideoOptions, console: Console, quiet: bool) -> int:
    """Cut out each clip in turn, a bad one reported and passed over; the exit code (0, 1 some failed, 130)."""
    from cutout.errors import CutoutError, DiskFullError, disk_full
    from cutout.io.discover import remove_stale_parts

    remove_stale_parts({clip.target.parent for clip in clips if clip.target.parent.is_dir()})
    done, failed, interrupted, full = 0, [], None, False
    skipped = [clip for clip in clips if clip.exists]
    todo = [clip for clip in clips if not clip.exists]
    for number, clip in enumerate(todo, 1):
        if not quiet:
            console.print(f"[{number}/{len(todo)}] {shown(str(clip.source))} -> {shown(str(clip.target))}")
        try:
            if _image_frames(clip.source) == 1:
                raise UsageError("a still image, not a video (cutout image takes it)")
            clip.target.parent.mkdir(parents=True, exist_ok=True)
            # a clip stopped partway leaves no output: the same command, run again, redoes it and goes on
            summary = _run(clip.source, clip.target, session, options, clip.kind, console, quiet, keep_partial=False)
        except KeyboardInterrupt:
            interrupted = clip
            break
        except (CutoutError, OSError) as error:
            reason = str(error) if isinstance(error, CutoutError) else error.strerror or str(error)
            failed.append((clip.source, reason))
            if not quiet:  # then only in the summary
                console.print(f"[red]failed[/]: {about(str(clip.source), reason)}")
            if isinstance(error, DiskFullError) or disk_full(error):  # no later clip could be saved either
                full = True
                break
            continue
        if not quiet and not summary.interrupted:  # an interrupted clip is told of below
            _report(console, summary)
        if summary.interrupted:
            interrupted = clip
            break
        if summary.short:
            failed.append((clip.source, f"ended after {summary.frames} of the {summary.expected} frames it announces"))
            continue
        done += 1
    parts = [f"{done} done"]
    if skipped:
        parts.append(f"{len(skipped)} skipped (their outputs exist; --overwrite redoes them)")
    if failed:
        parts.append(f"{len(failed)} failed")
    head = "[yellow]interrupted[/]: " if interrupted else ""
    if not quiet or failed or interrupted:
        console.print(f"{head}{len(clips)} clips: {', '.join(parts)}")
    for source, reason in failed:
        console.print(f"  failed: {about(str(source), reason)}")
    if full:
        rest = len(todo) - done - len(failed)
        left = f"; {rest} clip(s) not done" if rest else ""
        console.print(
            f"[yellow]stopped[/]: the disk is full, so no later clip could be saved{left}. Free some space, or give "
            "another output folder, and run the same command again (done clips are skipped)"
        )
    if interrupted is not None:
        rest = len(todo) - done - len(failed)
        console.print(
            f"{shown(str(interrupted.source))} was stopped partway and left no output; {rest} clip(s) not done. The "
            "same command, run again, does them (and skips those done)"
        )
        return 130
    return 1 if failed else 0


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
    source: Path,
    target: Path,
    session: Session,
    options: VideoOptions,
    kind: str,
    console: Console,
    quiet: bool,
    keep_partial: bool = True,
) -> VideoSummary:
    from cutout.cli.render import exit_on_sigterm
    from cutout.video import process_video as process

    exit_on_sigterm()
    if quiet or not console.is_terminal:
        return process(source, target, session, options, kind=kind, keep_partial=keep_partial)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]}"))
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("frames", total=None, fps="")
        started = time.perf_counter()

        def on_start(total: int | None) -> None:
            progress.update(task, total=total)

        def on_frame(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-6)
            progress.update(task, completed=done, fps=f"{rate:.1f} fps")

        return process(
            source, target, session, options, kind=kind, on_frame=on_frame, on_start=on_start, keep_partial=keep_partial
        )


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
