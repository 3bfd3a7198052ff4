"""One Predictor interface over onnxruntime and PyTorch.

A predictor takes a preprocessed batch (see :mod:`cutout.preprocess`) and returns the spec's mask output.
:func:`create_predictor` picks the backend and device; asking for a GPU that is not there raises
:class:`~cutout.errors.BackendError` — never a silent CPU fallback.

    >>> from cutout.backends import create_predictor            # doctest: +SKIP
    >>> predictor = create_predictor(get_spec("u2netp"), backend="onnx", device="cpu")
    >>> predictor.predict(batch).shape                          # (N, h, w)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from cutout.errors import BackendError, UsageError
from cutout.registry import ModelSpec

BackendName = Literal["onnx", "torch"]


class Predictor(Protocol):
    """Runs one model on batches. ``predict``: (N, 3, h, w) float32 -> (N, h, w) float32 in [0, 1]."""

    spec: ModelSpec
    device: str
    #: how many ``predict`` calls may usefully run at once from different threads
    concurrency: int

    @property
    def backend(self) -> BackendName: ...

    def predict(self, batch: np.ndarray, stop: threading.Event | None = None) -> np.ndarray:
        """``stop``: a pipeline's cancel event; :meth:`stop_runs` with it ends this call early, raising
        :class:`~cutout.errors.Stopped` (where the backend can; otherwise the call runs to its end)."""
        ...

    def stop_runs(self, stop: threading.Event) -> None:
        """End the ``predict`` calls running with ``stop`` now (from any thread), as far as the backend can."""
        ...

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the network, (N, 1, h, w) each, in the model's order."""
        ...


@dataclass(frozen=True)
class Device:
    """A parsed ``--device``: ``cpu``, ``cuda`` (index 0) or ``cuda:N``."""

    kind: Literal["auto", "cpu", "cuda"]
    index: int = 0

    @classmethod
    def parse(cls, text: str) -> Device:
        value = text.strip().lower()
        if value in ("auto", "cpu", "cuda"):
            return cls(value)  # type: ignore[arg-type]
        if value.startswith("cuda:") and value[5:].isdigit():
            return cls("cuda", int(value[5:]))
        raise UsageError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N (for example cuda:1)")

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind


def onnx_cuda_available() -> bool:
    """Whether onnxruntime can run on an NVIDIA GPU here (without importing it where no driver is present)."""
    if not nvidia_driver_present():
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def nvidia_driver_present() -> bool:
    """A cheap look for an NVIDIA driver, so that ``auto`` need not import torch (1+ s) on machines without one."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def torch_cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None or not nvidia_driver_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_backend(backend: str, device: Device) -> tuple[BackendName, Device]:
    """Resolve ``auto`` for backend and device: the fastest that is really there."""
    if backend not in ("auto", "onnx", "torch"):
        raise UsageError(f"unknown backend {backend!r}; use auto, onnx or torch")
    if backend == "torch" and importlib.util.find_spec("torch") is None:
        raise BackendError("the torch backend needs PyTorch: `pip install 'cutout[torch]'`, or use --backend onnx")
    if backend == "auto":
        if device.kind in ("auto", "cuda") and onnx_cuda_available():
            backend = "onnx"
        elif device.kind in ("auto", "cuda") and torch_cuda_available():
            backend = "torch"
        else:
            backend = "onnx"
    if device.kind == "auto":
        cuda = onnx_cuda_available() if backend == "onnx" else torch_cuda_available()
        device = Device("cuda") if cuda else Device("cpu")
    return backend, device  # type: ignore[return-value]


def backend_for(backend: str, device: str, weights: Path | None = None) -> tuple[BackendName, Device]:
    """The backend and device ``create_predictor`` would use: ``auto`` resolved, and a weights file's type followed."""
    name, parsed = choose_backend(backend, Device.parse(device))
    if weights is not None and backend == "auto":
        name = "onnx" if weights.suffix == ".onnx" else "torch"
    return name, parsed


#: The most CPU threads one inference may be given: far beyond any machine's cores (onnxruntime hung making a
#: million of them).
MAX_THREADS = 1024


def check_threads(threads: int | None) -> None:
    """``threads`` is None (all cores) or a whole number from 1 to MAX_THREADS.

    Raises:
        UsageError: 0 gave a ZeroDivisionError, a million hung onnxruntime, a float its TypeError.
    """
    whole = isinstance(threads, Integral) and not isinstance(threads, bool)
    if threads is not None and not (whole and 1 <= threads <= MAX_THREADS):
        raise UsageError(
            f"threads={threads!r}: give a whole number of CPU threads per inference from 1 to {MAX_THREADS}, or None "
            "for all cores"
        )


def cpu_concurrency(threads: int | None) -> int:
    """Inferences that may run at once on the CPU when each uses ``threads`` (None: all cores, so one)."""
    return 1 if threads is None else max(1, (os.cpu_count() or 1) // threads)


def create_predictor(
    spec: ModelSpec,
    *,
    backend: str = "auto",
    device: str = "auto",
    weights: Path | None = None,
    threads: int | None = None,
) -> Predictor:
    """A ready predictor for ``spec``; ``weights`` overrides the resolved file (.onnx or .pth).

    ``threads`` limits the CPU threads one call uses (None: all cores); see ``Predictor.concurrency``.
    """
    check_threads(threads)
    name, parsed = backend_for(backend, device, weights)
    if name == "onnx":
        from cutout.backends.onnx_backend import OnnxPredictor

        return OnnxPredictor(spec, parsed, weights, threads)
    from cutout.backends.torch_backend import TorchPredictor

    return TorchPredictor(spec, parsed, weights, threads)
