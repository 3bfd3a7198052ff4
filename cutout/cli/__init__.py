"""The command-line shell over :mod:`cutout.api`: one module per command."""

from __future__ import annotations

_finished = False


def finished() -> None:
    """Called by a command once all its work is done and its files are written and closed: the entry point may
    then end the process at once, when no other thread is left, instead of tearing the interpreter down (see
    :func:`cutout.cli.main.main`)."""
    global _finished
    _finished = True


def is_finished() -> bool:
    return _finished
