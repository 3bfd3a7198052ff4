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


def reflow(text: str) -> str:
    """A command's help with each prose paragraph on one line, so the terminal's width decides where it wraps.

    Help strings are wrapped in the source; typer (0.28) keeps single line breaks, which at any other width
    leaves ragged half-lines. Indented paragraphs (examples) keep their lines.
    """
    paragraphs = text.strip("\n").split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split("\n")) for p in paragraphs)
