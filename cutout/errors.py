"""The few exceptions cutout raises on purpose.

Every message says what was given, what is allowed, and what to do about it, so the CLI can print
``str(error)`` and stop. Library code raises these; it never prints or exits.
"""

from __future__ import annotations


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


class InputError(CutoutError):
    """An input image or video that cannot be read."""


class OutputError(CutoutError):
    """An output file or folder that cannot be written (permission denied, a file where a folder should be, ...)."""


class VideoError(InputError):
    """An input video that cannot be read: not a video, no video stream, a codec this FFmpeg cannot decode, ..."""


class Stopped(Exception):
    """Not a failure: work ended early because its pipeline was cancelled (Ctrl-C, --fail-fast); never shown."""
