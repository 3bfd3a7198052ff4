"""The command-line shell over :mod:`cutout.api`: one module per command."""

from __future__ import annotations

import os
import re
import sys

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


# C0 controls (ESC, CR, BEL, backspace, ...), DEL, C1 controls, and the bidirectional overrides that make text show
# in another order than it is
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# what Python makes of a file name's bytes that are not UTF-8 (surrogateescape): U+DC80..U+DCFF for 0x80..0xFF
_UNDECODED = re.compile("[\udc80-\udcff]")


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with its control characters written out (``\\x1b``, ``\\n``), to print on a terminal.

    A file name can hold any of them: printed raw, ``photo<ESC>[2J.jpg`` would clear the terminal, and a newline
    would split a summary line in two. ``lines``: keep newlines (a message of several lines). A name's bytes
    that are not UTF-8 (an old camera's or a Windows zip's Latin-1 ``café.jpg``) are written as the bytes they
    are, ``caf\\xe9.jpg``, not as Python's ``caf\\udce9.jpg``.
    """
    pattern = _CONTROLS_BUT_LINES if lines else _CONTROLS
    text = pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def shown(text: str, *, lines: bool = False) -> str:
    """:func:`printable` ``text`` with rich's markup escaped, for ``Console.print``."""
    from rich.markup import escape

    return escape(printable(text, lines=lines))


def about(name: str, reason: str) -> str:
    """``name: reason`` :func:`shown`, without repeating the name when the reason already starts with it."""
    return shown(reason if reason.startswith(name) else f"{name}: {reason}")


#: Standard streams (0, 1, 2) that were closed when cutout started (`cutout ... >&-`, a bare service manager):
#: they are opened on /dev/null by :func:`open_closed_streams`, and what would go there is refused or dropped.
closed_at_start: set[int] = set()


def open_closed_streams() -> set[int]:
    """Put /dev/null on any closed standard stream; the ones that were closed.

    With descriptor 1 closed, the first file cutout opened (an output) got it, so anything that writes to
    "standard output" (a library's message) would have gone into that file; and Python's sys.stdout is None, so
    cutout ended in an AttributeError before any work.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if fd in closed or getattr(sys, name) is None:
            mode = "r" if fd == 0 else "w"
            setattr(sys, name, open(fd, mode, encoding="utf-8", errors="backslashreplace", closefd=False))  # noqa: SIM115
    closed_at_start.update(closed)
    return closed
