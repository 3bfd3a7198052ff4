"""Which files to process and where each result goes: folders (recursive, mirrored), globs, several inputs.

>>> plan = plan_jobs([Path("shoots/")], Path("cutouts/"), "png")    # doctest: +SKIP
>>> plan.jobs[0].target                                             # cutouts/day1/a.png for shoots/day1/a.jpg
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cutout.batch import Job
from cutout.errors import UsageError

#: Files a folder run reads: what cameras, phones, editors and games write, and Pillow opens (HEIC/HEIF with the
#: ``heif`` extra). Named files of other formats Pillow reads are taken too.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".bmp", ".dib", ".tif", ".tiff", ".gif"}
    | {".heic", ".heif", ".avif", ".jp2", ".j2k", ".jpx", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi"}
)
#: Videos a folder run leaves out, and counts, so the user hears that `cutout video` is the command for them.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".3gp", ".wmv", ".flv", ".mpg"}
    | {".mpeg", ".mxf", ".ogv", ".hevc"}
)
EXTENSIONS = {"png": ".png", "webp": ".webp", "jpg": ".jpg", "tif": ".tif"}


@dataclass
class Plan:
    """Jobs to run, and the inputs skipped because their output already exists."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)  # found in the folders, left out: `cutout video` takes them
    others: list[Path] = field(default_factory=list)  # found in the folders, neither images nor videos by name


def is_image_name(path: Path) -> bool:
    """An image by its name: a known suffix, not hidden, not one of cutout's temporary files."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``folder``, recursively, sorted; ``exclude`` (an output folder inside it) is skipped.

    ``exclude`` may be written differently from ``folder`` (one relative, the other absolute, through a link):
    they are compared resolved, so a batch never reads its own results as inputs.
    """
    return find_media(folder, exclude)[0]


def find_media(folder: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """The image files, the video files and the other files (not hidden) under ``folder``, as :func:`find_images`
    finds images.

    Links to folders are followed (a ``2024 -> /mnt/photos/2024`` link is read as a folder of the tree), each
    real folder once: a link back up the tree, or two links to one folder, read it only the first time.
    """
    skip = exclude.resolve() if exclude is not None else None
    images, videos, others = [], [], []
    for path in _walk(folder, skip):
        if is_image_name(path) and path.is_file():
            images.append(path)
        elif path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            videos.append(path)
        else:
            others.append(path)
    return images, videos, others


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    """The files under ``folder`` not hidden (nor in a hidden folder), sorted; folders behind links included,
    each real folder once, and nothing inside ``skip`` (resolved), however it is reached.

    Every folder reached without a link is read before any behind a link, so a folder reached both ways keeps
    its own name (``day1/b.jpg``, not ``link-to-day1/b.jpg``), whatever order the file system lists them in.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    plain: list[Path] = [folder]
    linked: list[Path] = []
    while plain or linked:
        current = plain.pop() if plain else linked.pop(0)
        real = current.resolve()
        if real in seen or (skip is not None and real.is_relative_to(skip)):
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except FileNotFoundError:  # gone since it was listed
            continue
        except OSError as error:  # the rest of the tree is still read; this folder's files are named as left out
            reason = error.strerror or type(error).__name__
            warnings.warn(f"cannot read the folder {current} ({reason.lower()}): its files are left out", stacklevel=2)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = current / entry.name
            try:
                is_folder = entry.is_dir()  # follows a link
            except OSError:
                continue
            if not is_folder:
                files.append(path)
            else:
                (linked if entry.is_symlink() else plain).append(path)
    return sorted(files)


def _inside(path: Path, folder: Path) -> Path | None:
    """Where ``path`` lies inside ``folder`` (both resolved), or None if it lies outside."""
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def check_output_folder(source: Path, output: Path) -> None:
    """Refuse an output folder that is the input folder itself: results would be read back as inputs.

    Raises:
        UsageError: ``output`` is ``source`` (however it is written).
    """
    if _inside(output, source) == Path("."):
        raise UsageError(
            f"the output folder is the input folder {source}: its cutouts would be read as new inputs on the next "
            f"run (and PNG photos written over); give another folder, e.g. {source.resolve().name or 'out'}-cutout, or "
            "one inside it"
        )


def expand(inputs: list[str]) -> list[Path]:
    """Paths for the command-line inputs; a quoted glob (``'shoot/**/*.jpg'``) is expanded here."""
    paths: list[Path] = []
    for text in inputs:
        if any(ch in text for ch in "*?[") and not os.path.exists(text):  # False for names too long to exist
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise UsageError(f"no file matches {text!r}")
            paths.extend(Path(m) for m in matches)
        else:
            path = Path(text)
            if not os.path.lexists(path):
                raise UsageError(f"{text} does not exist")
            paths.append(path)
    return paths


def is_result_name(path: Path) -> bool:
    """Whether ``path`` is named as cutout names a result beside its photo (``photo.cutout.png``)."""
    return path.stem.lower().endswith(".cutout")


def default_target(source: Path, format: str) -> Path:
    """``photo.jpg`` -> ``photo.cutout.png`` beside it."""
    return source.with_name(f"{source.stem}.cutout{EXTENSIONS[format]}")


def default_folder(source: Path) -> Path:
    """``photos/`` -> ``photos-cutout/`` beside it; ``.`` and ``..`` are named by the folder they stand for.

    Raises:
        UsageError: the folder has no name to go by (the root of the file system).
    """
    if source.name in ("", ".."):
        source = source.resolve()
    if not source.name:
        raise UsageError(f"{source} has no name to name its output folder by; give an output folder")
    return source.with_name(source.name + "-cutout")


def plan_jobs(inputs: list[Path], output: Path | None, format: str, *, overwrite: bool = False) -> Plan:
    """One job per image: a folder's images mirror its tree under ``output``; files go into ``output``.

    Without ``output`` each result is written beside its input as ``NAME.cutout.EXT``. Existing outputs are
    skipped unless ``overwrite``. ``NAME.cutout.EXT`` files (the name of a result beside its photo) found in a
    folder, or given with others (a glob), are marked :attr:`Job.skip_if_ours`: the pipeline skips those that
    cutout made instead of cutting them out again. A file named alone, or a folder of cutouts under other names
    (to put them on a background, say), is cut out.
    """
    pairs: list[tuple[Path, Path]] = []
    found: set[Path] = set()  # from a folder walk: skipped when cutout made them
    videos: list[Path] = []
    others: list[Path] = []
    for source in inputs:
        if source.is_dir():
            root = output if output is not None else default_folder(source)
            check_output_folder(source, root)
            images, clips, rest = find_media(source, exclude=root)
            videos.extend(clips)
            others.extend(rest)
            for image in images:
                target = root / image.relative_to(source).with_suffix(EXTENSIONS[format])
                pairs.append((image, target))
                found.add(image)
        elif output is not None:
            pairs.append((source, output / (source.stem + EXTENSIONS[format])))
        else:
            pairs.append((source, default_target(source, format)))
    if output is not None:
        pairs = mirror_if_names_repeat(pairs, output, lambda path: path.with_suffix(EXTENSIONS[format]), found)
    pairs = _tell_apart(pairs)
    _check_collisions(pairs)
    plan = Plan(videos=videos, others=others)
    for source, target in pairs:
        check_not_the_source(source, target)
        ours = (source in found or len(inputs) > 1) and is_result_name(source)
        job = Job(source, target, format, skip_if_ours=ours)
        # os.path.exists: a name too long for the file system fails as its job (saying so), not here
        (plan.skipped if os.path.exists(target) and not overwrite else plan.jobs).append(job)
    return plan


def check_not_the_source(source: Path, target: Path) -> None:
    """Refuse to write a result over its own input (``cutout image *.png .``, ``cutout image a.jpg a.jpg``).

    Raises:
        UsageError: ``target`` is the file ``source`` (the same path, or a link to it).
    """
    try:
        same = target.exists() and target.samefile(source)
    except OSError:
        same = False
    if same:
        raise UsageError(
            f"{source} would be replaced by its own cutout; write the output elsewhere (left out, it goes beside "
            "the input as NAME.cutout.EXT)"
        )


def mirror_if_names_repeat(
    pairs: list[tuple[Path, Path]], output: Path, named: Callable[[Path], Path], found: set[Path]
) -> list[tuple[Path, Path]]:
    """Files named one by one (a glob over a tree: ``'shoots/**/*.jpg'``) whose names repeat in other folders
    (a camera's IMG_0001.jpg on every card) mirror their folders under ``output``, from the folder they all lie
    in (``out/day1/IMG_0001.png``, ``out/day2/IMG_0001.png``), with a warning, instead of one result for both.
    Unique names stay flat, as before; a folder's files (``found``) are mirrored anyway. ``named`` gives an
    input's output path from its path relative to that folder (``day1/IMG_0001.jpg`` -> ``day1/IMG_0001.png``)."""
    alone = [source for source, _ in pairs if source not in found]
    folders: dict[str, set[str]] = {}
    for source in alone:
        folders.setdefault(source.stem, set()).add(os.path.abspath(source.parent))
    repeated = sorted(stem for stem, where in folders.items() if len(where) > 1)
    if not repeated:
        return pairs
    try:
        common = Path(os.path.commonpath([os.path.abspath(source.parent) for source in alone]))
    except ValueError:  # on different drives: nothing to mirror from, and the collision is refused as before
        return pairs
    mirrored = {source: output / named(Path(os.path.abspath(source)).relative_to(common)) for source in alone}
    first = next(source for source in alone if source.stem == repeated[0])
    warnings.warn(
        f"{len(repeated)} name(s) repeat in different folders (e.g. {first.name}): the cutouts mirror those folders "
        f"under {output}, e.g. {first} -> {mirrored[first]}",
        stacklevel=3,
    )
    return [(source, mirrored.get(source, target)) for source, target in pairs]


def _tell_apart(pairs: list[tuple[Path, Path]], *, warn: bool = True) -> list[tuple[Path, Path]]:
    """Inputs that would share an output by name alone (``a.jpg`` and ``a.png`` beside each other) keep their own
    extension in it (``a.jpg.png``, ``a.png.png``), with a warning (unless not ``warn``); other pairs are left as
    they are."""
    sources: dict[Path, list[Path]] = {}
    for source, target in pairs:
        sources.setdefault(target, []).append(source)
    shared = {  # told apart by their extensions: two a.jpg from two folders are not
        target: group
        for target, group in sources.items()
        if len(group) > 1 and len({source.name for source in group}) == len(group)
    }
    if not shared:
        return pairs
    renamed = {  # a.jpg -> out/a.jpg.png, or a.jpg.cutout.png beside it: the source's name where its stem was
        source: target.with_name(source.name + target.name[len(source.stem) :])
        for target, group in shared.items()
        for source in group
    }
    if warn:
        first = next(iter(renamed))
        warnings.warn(
            f"{len(renamed)} files share a name with another but for their extension; their outputs keep it, e.g. "
            f"{first} -> {renamed[first]}",
            stacklevel=3,
        )
    return [(source, renamed.get(source, target)) for source, target in pairs]


def _check_collisions(pairs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for source, target in pairs:
        if target in seen:
            raise UsageError(
                f"{seen[target]} and {source} would both be written to {target}; "
                "process them into different output folders"
            )
        seen[target] = source


# write_atomic's temporary names, and VideoWriter's (.NAME.XXXXXXXX.part.EXT files, .NAME.XXXXXXXX.part/ folders)
_PART = re.compile(r"^\..+\.[0-9a-f]{8}\.part(\.[A-Za-z0-9]{1,5})?$")


def remove_stale_parts(folders: set[Path], older_than: float = 60.0) -> int:
    """Delete temporary files that a killed run (SIGKILL, power loss) left in the output folders; their count.

    Only cutout's own ``.NAME.XXXXXXXX.part`` files (``.part.mp4`` and the like from ``cutout video``) and
    ``.NAME.XXXXXXXX.part/`` folders of PNG frames (holding nothing else) are touched, and only those unchanged
    for ``older_than`` seconds, so a run writing into the same folder right now keeps its files.
    """
    removed = 0
    now = time.time()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not _PART.match(path.name) or path.is_symlink():
                continue
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime <= older_than:
                    continue
                if path.is_file():
                    path.unlink()
                    removed += 1
                elif path.is_dir() and path.suffix == ".part" and _only_frames(path, now - older_than):
                    shutil.rmtree(path)
                    removed += 1
    return removed


def _only_frames(folder: Path, before: float) -> bool:
    """Whether ``folder`` holds only PNG files (and their temporary parts), none changed after ``before``."""
    for path in folder.iterdir():
        if path.is_symlink() or not path.is_file() or not path.name.endswith((".png", ".part")):
            return False
        if path.stat().st_mtime > before:
            return False
    return True


def watch_jobs(
    folder: Path,
    output: Path,
    format: str,
    *,
    interval: float = 1.0,
    overwrite: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Job]:
    """Jobs for the images in ``folder`` now and for every image that appears later, until ``stop`` is set.

    A new file is taken once its size and modification time have stayed the same for one ``interval``, so
    files still being copied in are not read half-written. The generator runs in a pipeline's thread, where
    nothing else can interrupt its wait: ``stop`` ends it at once (on Ctrl-C the command sets it). ``output``
    may lie inside ``folder`` (it is not read) but not be ``folder``: see :func:`check_output_folder`. Should
    ``folder`` go away (deleted, moved, a share unmounted), a warning says so, and another once it is back. A file
    replaced under the same name (a new size or time) is taken again: with ``overwrite`` its result is redone.
    """
    stop = stop or threading.Event()
    done: dict[Path, tuple[int, int]] = {}  # size and time of each file when it was taken
    candidates: dict[Path, tuple[int, int]] = {}
    seen: set[Path] = set()  # every image found so far, so that a name once told apart stays so
    present = True
    while True:
        if os.path.isdir(folder) != present:  # deleted, moved or unmounted: say so once, and once it is back
            present = not present
            warnings.warn(
                f"{folder} is back; watching it again"
                if present
                else f"{folder} is gone (deleted, moved or unmounted); waiting for it to come back (Ctrl-C stops)",
                stacklevel=1,
            )
        images = find_images(folder, exclude=output)
        # as in a folder run, a.jpg and a.png (now or earlier) give a.jpg.png and a.png.png: never one for both
        seen.update(images)
        targets = dict(
            _tell_apart(
                [(image, output / image.relative_to(folder).with_suffix(EXTENSIONS[format])) for image in seen],
                warn=False,
            )
        )
        for image in images:
            try:
                stat = image.stat()
            except OSError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            if done.get(image) == signature:  # taken, and not replaced since (a new version is taken again)
                continue
            if candidates.get(image) == signature and stat.st_size > 0:
                done[image] = signature
                target = targets[image]
                if target.name != image.stem + EXTENSIONS[format]:
                    warnings.warn(
                        f"{image} shares a name with another image but for its extension; its cutout is {target}",
                        stacklevel=1,
                    )
                if overwrite or not os.path.exists(target):
                    yield Job(image, target, format, skip_if_ours=is_result_name(image))
            else:
                candidates[image] = signature
        if stop.wait(interval):
            return
