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
