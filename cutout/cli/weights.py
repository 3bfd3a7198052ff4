"""``cutout weights``: download, import and check model weights.

    cutout weights list                     # every built-in model, its licence and what is cached
    cutout weights pull u2netp              # fetch and verify ahead of time (CI, air-gapped preparation)
    cutout weights import u2netp ~/Downloads/u2netp.onnx
    cutout weights verify                   # hash-check every cached file; exit 1 if one is corrupt
    cutout weights path u2netp --format onnx

``list`` and ``path`` only look at file names, so they are instant and import nothing heavy.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cutout.errors import UsageError
from cutout.registry import SPECS, ModelSpec, WeightFile, get_spec, trained_specs

app = typer.Typer(
    help="Download, import and check model weights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class FormatChoice(str, Enum):
    """Which released files a command acts on."""

    onnx = "onnx"
    torch = "torch"
    all = "all"


class SingleFormat(str, Enum):
    """One released file format."""

    onnx = "onnx"
    torch = "torch"


def _select(spec: ModelSpec, format: str) -> list[WeightFile]:
    """The released files of ``spec`` in ``format`` ("all" for every one); a UsageError when there is none."""
    chosen = [wf for wf in spec.weights if format in ("all", wf.format)]
    if not chosen:
        released = ", ".join(wf.format for wf in spec.weights) or "none"
        raise UsageError(
            f"model {spec.name!r} has no released {format} file (released: {released}); "
            "choose one of those with --format."
        )
    return chosen


def _size(weight_file: WeightFile) -> str:
    if not weight_file.size:
        return "?"
    if weight_file.size < 100_000:
        return f"{weight_file.size / 1e3:.0f} kB"
    return f"{weight_file.size / 1e6:.1f} MB"


@app.command("list")
def list_models() -> None:
    """Show every built-in model: formats, size, licence and whether its files are cached."""
    from rich.console import Console
    from rich.table import Table

    from cutout.weights import cached_path

    console = Console(highlight=False)
    wide = console.width >= 120  # narrow terminals get the description under the model name
    table = Table(title="cutout models", show_lines=True)
    table.add_column("model", no_wrap=wide, style="bold", min_width=15)
    table.add_column("arch", no_wrap=True)
    table.add_column("formats", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("cached", no_wrap=True)
    table.add_column("licence", min_width=12)
    if wide:
        table.add_column("description")
    for spec in [*SPECS.values(), *trained_specs().values()]:  # built-in, then the ones `cutout train` exported
        files = spec.weights
        cached = ["yes" if cached_path(spec, wf).is_file() else "no" for wf in files]
        name = spec.name if wide else f"{spec.name}\n[dim]{_escape(spec.description)}[/]"
        cells = [
            name,
            spec.architecture,
            "\n".join(wf.format for wf in files),
            "\n".join(_size(wf) for wf in files),
            "\n".join(cached),
            _escape(spec.license),
        ]
        table.add_row(*cells, *([_escape(spec.description)] if wide else []))
    console.print(table)


def _model(name: str) -> ModelSpec:
    """The built-in or trained model called ``name``; an unknown name is a usage error listing the names these
    commands take (``--model``'s message also offers a file path, which they do not take)."""
    try:
        return get_spec(name)
    except UsageError:
        known = ", ".join([*SPECS, *trained_specs()])
        raise UsageError(f"unknown model {name!r}; `cutout weights list` shows the models: {known}") from None


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help="Model name, as in `cutout weights list`.")],
    format: Annotated[
        FormatChoice, typer.Option("--format", "-f", help="Which released file to fetch.")
    ] = FormatChoice.all,
) -> None:
    """Download and verify a model's released weights into the cache; print where they are."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

    from cutout.weights import fetch

    spec = _model(name)
    for weight_file in _select(spec, format.value):
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(weight_file.filename, total=weight_file.size)

            def show(done: int, total: int | None, task: TaskID = task, bar: Progress = bar) -> None:
                bar.update(task, completed=done, total=total)

            path = fetch(spec, weight_file, progress=show)
        typer.echo(str(path))


@app.command("import")
def import_(
    name: Annotated[str, typer.Argument(help="Model name, as in `cutout weights list`.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The weights file to import.")],
    force: Annotated[
        bool, typer.Option("--force", help="Import a file that is not the published one (your own weights).")
    ] = False,
) -> None:
    """Copy a weights file you downloaded by hand into the cache, after checking its hash."""
    from cutout.weights import import_file

    path = import_file(_model(name), file, force=force)
    typer.echo(f"imported {file} as {path}")


@app.command()
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Models to check (default: every built-in model).")] = None,
) -> None:
    """Hash-check cached weights; exit code 1 if any file is corrupt (missing files are not errors)."""
    from rich.console import Console
    from rich.table import Table

    from cutout.weights import verify_cache

    specs = [_model(name) for name in names] if names else list(SPECS.values())
    report = verify_cache(specs)
    table = Table("model", "file", "status")
    for model, filename, status in report:
        style = "green" if status.startswith("ok") else "red" if status.startswith("corrupt") else "yellow"
        table.add_row(model, filename, f"[{style}]{_escape(status)}[/]")
    Console(highlight=False).print(table)
    if any(status.startswith("corrupt") for _, _, status in report):
        typer.echo("corrupt files: delete them and run `cutout weights pull MODEL` again.", err=True)
        raise typer.Exit(1)


@app.command()
def path(
    name: Annotated[str, typer.Argument(help="Model name, as in `cutout weights list`.")],
    format: Annotated[
        SingleFormat | None,
        typer.Option("--format", "-f", help="Which released file (default: the model's first)."),
    ] = None,
) -> None:
    """Print where a model's released file lives in the cache; exit code 1 if it is not there yet."""
    from cutout.weights import cached_path

    spec = _model(name)
    weight_file = _select(spec, format.value)[0] if format else _select(spec, "all")[0]
    location = cached_path(spec, weight_file)
    typer.echo(str(location))
    if not location.is_file():
        typer.echo(f"not downloaded yet: run `cutout weights pull {spec.name}`", err=True)
        raise typer.Exit(1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
