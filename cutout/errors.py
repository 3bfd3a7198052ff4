"""The few exceptions cutout raises on purpose.

Every message says what was given, what is allowed, and what to do about it, so the CLI can print
``str(error)`` and stop. Library code raises these; it never prints or exits.
"""

from __future__ import annotations

import errno
import re


class CutoutError(Exception):
    """Base class: anything cutout reports to a user on purpose."""


class UsageError(CutoutError):
    """An option or argument that cannot work (unknown model, bad colour, ...)."""


class WeightsError(CutoutError):
    """Model weights that cannot be found, fetched or trusted."""


class HashMismatchError(WeightsError):
    """A weights file whose content is not the published one."""


class BackendError(CutoutError):
    """An inference backend or device that is not available here."""


class TrainingError(CutoutError, FloatingPointError):
    """A training run that cannot go on: its loss became NaN or infinite (a learning rate too high)."""


class InputError(CutoutError):
    """An input image or video that cannot be read."""


class OutputError(CutoutError):
    """An output file or folder that cannot be written (permission denied, a file where a folder should be, ...)."""


class DiskFullError(OutputError):
    """The output's disk (or the user's quota there) is full: nothing more can be written there, so a batch stops
    at once rather than cut out every remaining file only to fail to save it."""


def disk_full(error: BaseException) -> bool:
    """Whether an OSError (or FFmpeg's error, which is one) says the disk or the quota is full."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


class DeviceError(BackendError, UsageError):
    """A --device that this machine or this install cannot give (no CUDA provider, no such GPU): a usage error."""


class OutputTakenError(OutputError, UsageError):
    """An output that exists and may not be replaced (a folder of other files): a usage error, found before work."""


class VideoError(InputError):
    """An input video that cannot be read: not a video, no video stream, a codec this FFmpeg cannot decode, ..."""


class Stopped(Exception):
    """Not a failure: work ended early because its pipeline was cancelled (Ctrl-C, --fail-fast); never shown."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none), for a one-line reason."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says memory ran out: Python's MemoryError, ENOMEM, onnxruntime's arena (CPU or GPU),
    CUDA's, or C++'s bad_alloc."""
    if isinstance(error, MemoryError) or (isinstance(error, OSError) and error.errno == errno.ENOMEM):
        return True
    text = str(error)
    signs = ("Failed to allocate memory", "out of memory", "std::bad_alloc", "can't allocate memory")  # torch's CPU
    return any(sign in text for sign in signs)


def memory_shortage(error: BaseException) -> str:
    """What ran short, in a few words: onnxruntime's arena names the buffer it could not get."""
    found = re.search(r"Failed to allocate memory for requested buffer of size (\d+)", str(error))
    if found:
        return f"onnxruntime could not allocate {int(found.group(1)) / 2**20:.0f} MiB more"
    return first_line(error)[:120]
