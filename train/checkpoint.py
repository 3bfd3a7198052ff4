"""Self-describing checkpoints, written atomically, that resume a run exactly.

A checkpoint holds the model, optimiser and AMP scaler states, the step and epoch, the full config, the model's
description (architecture, classes) and every random generator's state (Python, numpy, torch, CUDA), so
``--resume`` continues bit for bit on the CPU.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cutout.convert import save_torch
from cutout.errors import UsageError, first_line


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename: never a half-written checkpoint."""
    return save_torch(payload, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (it contains numpy RNG state, so not weights_only)."""
    return torch.load(path, map_location="cpu", weights_only=False)


#: Settings that shape the network: a run resumed with others could not take the checkpoint's weights.
SHAPING = ("model", "num_classes", "mnet_width")


def resume_state(path: Path, config: Any) -> dict[str, Any]:
    """The checkpoint ``--resume`` names, checked before anything else starts: a file ``cutout train`` wrote,
    of a network shaped as ``config`` asks (the same --model, --num-classes and --mnet-width).

    Like any pickle, a checkpoint can run code when it is read: resume only runs of your own.

    Raises:
        UsageError: no such file, not a checkpoint of ``cutout train``, or one of a differently shaped network.
    """
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such file (a run keeps its checkpoints in runs/NAME/last.pt)")
    try:
        state = load_checkpoint(path)
    except Exception as error:  # torch.load's own errors for a file that is no checkpoint (pickle, zip, ...)
        raise UsageError(f"--resume {path}: cannot read it as a checkpoint ({first_line(error)})") from None
    if not isinstance(state, dict) or state.get("format") != "cutout-train-1":
        raise UsageError(
            f"--resume {path}: not a checkpoint that cutout train wrote; to start from a model's weights use --init"
        )
    saved = state.get("config", {})
    different = [key for key in SHAPING if key in saved and saved[key] != getattr(config, key)]
    if different:
        was = " ".join(f"--{key.replace('_', '-')} {saved[key]}" for key in different)
        now = " ".join(f"--{key.replace('_', '-')} {getattr(config, key)}" for key in different)
        raise UsageError(
            f"--resume {path}: that run trained {was}, not {now}; resume it with {was}, or start a new run "
            "(with --init to begin from its weights)"
        )
    return state
