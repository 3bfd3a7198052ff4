"""Progress and summaries for batch commands, drawn with rich on standard error."""

from __future__ import annotations

import signal
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cutout.cli import about, shown

if TYPE_CHECKING:
    from cutout.batch import Job, Outcome

MAX_LISTED_FAILURES = 20


class BatchReport:
    """Counts outcomes, draws a progress bar (images/s, ETA) and prints the final summary."""

    def __init__(self, total: int | None, skipped: list[Job], *, quiet: bool = False, watch: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.total = total
        self.skipped = len(skipped)
        self.done = 0
        self.ours = 0  # images found in a folder that cutout made: skipped
        self.failed: list[Outcome] = []
        self.quiet = quiet
        self.watch = watch
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> BatchReport:
        if not self.quiet and self.console.is_terminal:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("watching" if self.watch else "cutting out", total=self.total, rate="")
        elif self.watch and not self.quiet:
            self.console.print("watching for new images; Ctrl-C to stop")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "failed":
            self.failed.append(outcome)
            if self._progress is not None or self.watch:
                self.console.print(f"[red]failed[/] {_describe(outcome)}")
        elif outcome.status == "done":
            self.done += 1
        else:
            self.ours += 1
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[0]
            elapsed = task.elapsed or 0.0
            count = self.done + len(self.failed)
            rate = f"{count / elapsed:.2f} img/s" if elapsed > 0 else ""
            self._progress.update(self._task, advance=1, rate=rate)
        elif self.watch and not self.quiet and outcome.status == "done":
            self.console.print(f"done {shown(outcome.job.name)}")

    def summary(self, elapsed: float, *, interrupted: bool = False) -> None:
        if self.quiet and not self.failed and not interrupted:
            return
        rate = f" ({self.done / elapsed:.2f} images/s)" if elapsed > 0 and self.done else ""
        parts = [f"{self.done} done"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (output exists; --overwrite redoes them)")
        if self.ours:
            parts.append(f"{self.ours} skipped (made by cutout: earlier results; name a file to cut it out again)")
        if self.failed:
            parts.append(f"[red]{len(self.failed)} failed[/]")
        head = "[yellow]interrupted[/]: " if interrupted else ""
        self.console.print(f"{head}{', '.join(parts)} in {elapsed:.1f} s{rate}")
        for outcome in self.failed[:MAX_LISTED_FAILURES]:
            self.console.print(f"  {_describe(outcome)}")
        if len(self.failed) > MAX_LISTED_FAILURES:
            self.console.print(f"  ... and {len(self.failed) - MAX_LISTED_FAILURES} more")
        left = None if self.total is None else self.total - self.done - self.ours - len(self.failed)
        if any(outcome.ends_batch for outcome in self.failed):
            self.console.print(
                "[yellow]stopped[/]: the disk is full, so no later result could be saved"
                f"{f'; {left} not done' if left else ''}. Free some space, or give another output folder, "
                "and run the same command again (done files are skipped)"
            )
        elif interrupted and left is not None:
            self.console.print(f"{left} not started; run the same command again to resume (done files are skipped)")


def _describe(outcome: Outcome) -> str:
    return about(outcome.job.name, outcome.reason)


def exit_on_sigterm() -> None:
    """SIGTERM (e.g. from a job scheduler) stops a command like Ctrl-C: cleanly, with a summary."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
