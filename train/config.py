"""The training configuration: one frozen record, saved in every checkpoint so a run describes itself."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("u2net", "u2netp", "modnet", "mnet")

#: Optimiser and base learning rate per model, as their papers trained them (U2-Net: Adam 1e-3; MODNet: SGD
#: with momentum 0.9 at 0.01; SHM's MNet: Adam) — with a short warm-up and a cosine decay for every model.
OPTIMIZERS: dict[str, tuple[str, float]] = {
    "u2net": ("adam", 1e-3),
    "u2netp": ("adam", 1e-3),
    "modnet": ("sgd", 0.01),
    "mnet": ("adam", 1e-3),
}


#: Bounds of the settings TrainConfig checks: beyond them a run diverges at once, or asks for terabytes.
MAX_LR, MAX_MNET_WIDTH, MAX_CLASSES, MAX_SIZE = 10.0, 8.0, 255, 8192


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run, or None. A run's name is a folder under --out-dir and under the models
    folder, and what ``--model NAME`` finds the exported model by: one plain folder name, not a built-in model's.
    """
    from cutout.registry import SPECS

    if not name.strip():
        return "a run needs a name (leave --name out for MODEL-DATA)"
    if name != name.strip():
        return "a name without spaces at its start or end"
    if name in (".", "..") or any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "one folder name, without / or \\ or control characters (the run is the folder OUT_DIR/NAME)"
    builtin = next((spec for spec in SPECS if spec.casefold() == name.casefold()), None)
    if builtin:
        return (
            f"it names the built-in model {builtin}, whose released weights are cached under that name and which "
            f"--model {builtin} loads, never this run's; choose another, e.g. --name {builtin}-mine"
        )
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. ``None`` fields take the per-model default."""

    model: str = "u2netp"
    data: str = "duts"
    data_dir: Path | None = None
    val_data: str | None = None
    out_dir: Path = Path("runs")
    name: str | None = None
    init: str | None = None
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 8
    size: int = 320
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    num_workers: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    num_classes: int = 1
    mnet_width: float = 0.25
    iou_loss: bool = False
    val_fraction: float = 0.1
    export: bool = True
    validate_first: bool = False
    export_dir: Path | None = None
    log_every: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Numbers that cannot make a run are refused before any work (the API's as well as the command's): typer's
        checks let nan and inf through, and each of these ended in a traceback from numpy, torch or the allocator.

        Raises:
            UsageError: naming the setting and what it takes.
        """
        from cutout.errors import UsageError

        def check(name: str, fine: bool, takes: str) -> None:
            if not fine:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} will not do: {takes}")

        lr = self.lr
        check(
            "lr", lr is None or (math.isfinite(lr) and 0 < lr <= MAX_LR), f"a learning rate above 0, at most {MAX_LR}"
        )
        check("seed", 0 <= self.seed < 2**32, "a seed from 0 to 4294967295")
        width = self.mnet_width
        check("mnet_width", math.isfinite(width) and 0 < width <= MAX_MNET_WIDTH, f"from above 0 to {MAX_MNET_WIDTH}")
        check("num_classes", 1 <= self.num_classes <= MAX_CLASSES, f"from 1 to {MAX_CLASSES} (masks hold 0..254)")
        check("size", 32 <= self.size <= MAX_SIZE, f"a crop side from 32 to {MAX_SIZE} pixels")
        check(
            "num_classes",
            self.num_classes == 1 or self.model in ("u2net", "u2netp"),
            f"only u2net and u2netp learn several classes; {self.model} predicts one alpha (leave --num-classes out)",
        )
        problem = run_name_problem(self.run_name)
        if problem:
            given = f"--name '{self.name}'" if self.name else f"the default name '{self.run_name}'"
            raise UsageError(f"{given} will not do: {problem}")

    @property
    def run_name(self) -> str:
        return self.name or f"{self.model}-{Path(str(self.data)).name.replace(':', '-')}"

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.run_name

    def optimizer_and_lr(self) -> tuple[str, float]:
        name, lr = OPTIMIZERS[self.model]
        return self.optimizer or name, self.lr if self.lr is not None else lr

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        paths = {"data_dir", "out_dir", "export_dir"}
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {
            k: (Path(v) if k in paths and v is not None else v) for k, v in data.items() if k in known
        }
        return cls(**values)
