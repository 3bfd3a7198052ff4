"""Export a trained model so that ``cutout image --model NAME`` and ``cutout video --model NAME`` use it.

Writes ``<dir>/<name>/model.pth`` (the state_dict), ``model.onnx`` (dynamic batch and size) and ``spec.json``
(architecture, classes, file hashes). ``<dir>`` defaults to ``$CUTOUT_HOME/models``, where cutout looks for
trained models by name (``./weights`` is searched too).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from cutout.convert import _exportable, export_onnx, save_torch
from cutout.registry import SPEC_FILE
from cutout.weights import cache_dir


def default_export_dir() -> Path:
    return cache_dir() / "models"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_model(
    model: torch.nn.Module,
    name: str,
    architecture: str,
    folder: Path | None = None,
    *,
    num_classes: int = 1,
    input_size: int | None = None,
    notes: dict | None = None,
) -> Path:
    """Write the model's torch and ONNX weights and its spec into ``folder/name``; the model folder."""
    target = (folder or default_export_dir()) / name
    target.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    files = [
        ("torch", save_torch(model.state_dict(), target / "model.pth")),
        ("onnx", export_onnx(_exportable(model), target / "model.onnx", metadata={"cutout.model": name})),
    ]
    spec = {
        "name": name,
        "architecture": architecture,
        "num_classes": num_classes,
        "input_size": input_size,
        "width": float(getattr(model, "width", 1.0)),
        "description": f"{architecture} trained with cutout train",
        "license": "your own (trained with cutout train)",
        "weights": [
            {"format": fmt, "filename": path.name, "sha256": _sha256(path), "size": path.stat().st_size}
            for fmt, path in files
        ],
        "training": notes or {},
    }
    temporary = target / f".{SPEC_FILE}.part"
    temporary.write_text(json.dumps(spec, indent=2, default=str))
    os.replace(temporary, target / SPEC_FILE)
    return target
