"""``cutout train``: train U2-Net, U2-NetP, MODNet or the MNet refiner on public datasets or your images.

cutout train --model u2netp --data duts --data-dir ~/datasets
cutout train --model u2netp --data ./products --init u2netp --epochs 20 --name products
cutout train --model u2netp --data duts --devices 2          # DistributedDataParallel via torchrun
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cutout.errors import UsageError

HELP = """Train a model on a dataset, then use it at once with --model NAME.

--data is duts (DUTS-TR/DUTS-TE, downloaded when reachable), p3m (P3M-10k), dim:FOLDER (foregrounds, alphas
and backgrounds composited on the fly), labelme:FOLDER (JSON polygons), or a folder with images/ and masks/
of matching names. The best checkpoint is exported as ONNX and torch weights under $CUTOUT_HOME/models/NAME
(or --export-dir), where cutout image and cutout video find it. Ctrl-C saves a checkpoint; --resume
continues exactly. Needs `pip install 'cutout\\[train]'`.

Examples:\n
  cutout train --model u2netp --data ./products --init u2netp --epochs 20 --name products\n
  cutout image shelf/ cut/ --model products\n
  cutout train --model modnet --data p3m --data-dir ~/datasets --devices 2
"""


def train(
    model: Annotated[str, typer.Option(help="u2net, u2netp, modnet or mnet (the refiner).")] = "u2netp",
    data: Annotated[str, typer.Option(help="duts, p3m, dim:FOLDER, labelme:FOLDER, or a folder.")] = "duts",
    data_dir: Annotated[Path | None, typer.Option(help="Where public datasets live (or $CUTOUT_DATA).")] = None,
    val_data: Annotated[
        str | None, typer.Option(help="A separate validation set (default: the dataset's own split).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name of the exported model (default MODEL-DATA).")] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start from weights: a built-in model (e.g. u2netp), a trained model's name or folder, a .pth "
            "file or a checkpoint."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step and per device.")] = 8,
    size: Annotated[int, typer.Option(min=32, help="Training crop size in pixels.")] = 320,
    lr: Annotated[float | None, typer.Option(help="Base learning rate (default per model).")] = None,
    num_classes: Annotated[int, typer.Option(min=1, help="Classes for multi-class masks (U2-Net only).")] = 1,
    mnet_width: Annotated[float, typer.Option(help="MNet width multiplier (0.25 is practical on a CPU).")] = 0.25,
    iou_loss: Annotated[
        bool,
        typer.Option(
            "--iou-loss/--no-iou-loss",
            help="U2-Net: add BASNet's IoU loss to each BCE term (sharper masks in fewer steps; off: the paper's).",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(min=0, help="Data loading processes.")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    devices: Annotated[int, typer.Option(min=1, help="Processes (one per GPU) under torchrun; CPU works too.")] = 1,
    out_dir: Annotated[Path, typer.Option(help="Checkpoints and logs go to OUT_DIR/NAME.")] = Path("runs"),
    export_dir: Annotated[Path | None, typer.Option(help="Where to export (default $CUTOUT_HOME/models).")] = None,
    resume: Annotated[Path | None, typer.Option(help="A checkpoint (last.pt) to continue from.")] = None,
    no_export: Annotated[bool, typer.Option("--no-export", help="Do not export at the end.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace the checkpoints and exported model of an earlier run of --name."),
    ] = False,
) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("training needs PyTorch: pip install 'cutout[train]'") from None
    from train.config import ARCHITECTURES, TrainConfig
    from train.loop import train as run

    if model not in ARCHITECTURES:
        raise UsageError(f"unknown --model {model!r}; choose one of {', '.join(ARCHITECTURES)}")
    config = TrainConfig(
        model=model,
        data=data,
        data_dir=data_dir,
        val_data=val_data,
        out_dir=out_dir,
        name=name,
        init=init,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        size=size,
        lr=lr,
        num_workers=workers,
        seed=seed,
        device=device,
        num_classes=num_classes,
        mnet_width=mnet_width,
        iou_loss=iou_loss,
        export=not no_export,
        export_dir=export_dir,
    )
    if "WORLD_SIZE" not in os.environ and resume is None:  # torchrun's processes take the name chosen here
        config = _claim_name(config, overwrite=overwrite)
    if devices > 1 and "WORLD_SIZE" not in os.environ:
        _launch(devices, config.run_name)
        return
    result = _with_progress(run, config, resume)
    rank0 = os.environ.get("RANK", "0") == "0"
    if rank0:
        _summary(result, config.model)
    raise typer.Exit(130 if result.interrupted else 0)


def _launch(devices: int, name: str) -> None:
    """Re-run this very command under torchrun with one process per device, under the run name chosen here."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={devices}",
        "-m",
        "cutout",
        *sys.argv[1:],
        "--name",  # the last --name given wins
        name,
    ]
    raise typer.Exit(subprocess.call(command))


def _claim_name(config: Any, *, overwrite: bool) -> Any:
    """The config under a run name whose checkpoints and exported model belong to no earlier run.

    A second run with the same data and the default name (MODEL-DATA) gets MODEL-DATA-2 (then -3, ...), and says
    so, instead of writing over the first run's checkpoints and model. An explicit --name that is taken is a
    usage error, unless --overwrite.
    """
    import dataclasses

    from cutout.registry import SPEC_FILE
    from train.export import default_export_dir

    models = config.export_dir or default_export_dir()

    def earlier(name: str) -> list[str]:
        found = [str(config.out_dir / name)] if any((config.out_dir / name).glob("*.pt")) else []
        if config.export and (models / name / SPEC_FILE).is_file():
            found.append(str(models / name))
        return found

    taken = earlier(config.run_name)
    if not taken or overwrite:
        return config
    checkpoint = config.out_dir / config.run_name / "last.pt"
    again = f"; --resume {checkpoint} continues it" if checkpoint.is_file() else ""
    if config.name:
        raise UsageError(
            f"an earlier run named {config.name} exists ({' and '.join(taken)}): choose another --name, or add "
            f"--overwrite to replace it{again}"
        )
    number = 2
    while earlier(f"{config.run_name}-{number}"):
        number += 1
    name = f"{config.run_name}-{number}"
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"an earlier run {config.run_name} exists ({' and '.join(taken)}): this run is {name} (name runs with "
        f"--name{again})"
    )
    return dataclasses.replace(config, name=name)


def _with_progress(run: Any, config: Any, resume: Path | None) -> Any:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if os.environ.get("RANK", "0") != "0" or not console.is_terminal:
        return run(config, resume=resume, progress=lambda event: _plain(console, event))
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("step"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=None, info="")

        def show(event: dict[str, Any]) -> None:
            if "validation" in event:
                bar.console.print(_format_validation(event))
                return
            bar.update(task, completed=event["step"], total=event["total"], info=_step_text(event))

        return run(config, resume=resume, progress=show)


def _plain(console: Any, event: dict[str, Any]) -> None:
    if "validation" in event:
        console.print(_format_validation(event))
    else:
        console.print(f"step {event['step']}/{event['total']} {_step_text(event)}")


def _step_text(event: dict[str, Any]) -> str:
    return f"loss {event['loss']:.4f}  lr {event['lr']:.2e}  {event['images_per_second']:.1f} img/s"


def _format_validation(event: dict[str, Any]) -> str:
    return f"epoch {event['epoch']} validation: {_metrics_text(event['validation'])}"


def _metrics_text(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def _summary(result: Any, model: str) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if result.interrupted:
        where = result.checkpoint
        console.print(f"[yellow]stopped[/] at step {result.step}; checkpoint {where}; continue with --resume {where}")
        return
    best = f"best validation: {_metrics_text(result.best)}" if result.best else "no validation ran"
    if result.losses:
        console.print(f"trained {result.step} steps ({result.images_per_second:.1f} img/s); {best}")
    else:  # a resumed run that had already reached its end (it said "trained 3 steps (0.0 img/s)")
        console.print(
            f"nothing left to train: the run had reached step {result.step}, its end; raise --max-steps or --epochs "
            f"to train on; {best}"
        )
    if result.exported:
        from cutout.registry import trained_model_folders

        # by name where cutout looks for trained models, else by its folder (an --export-dir elsewhere)
        searched = {folder.resolve() for folder in trained_model_folders()}
        name = result.exported.name if result.exported.parent.resolve() in searched else str(result.exported)
        use = f"--refine mnet --refiner {name}" if model == "mnet" else f"--model {name}"
        console.print(f"exported to {result.exported}; use it with {use}")
