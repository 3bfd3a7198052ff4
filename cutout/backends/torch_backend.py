"""PyTorch backend: CPU, or CUDA with fp16 and channels_last (``cutout[torch]``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import numpy as np

from cutout.errors import DeviceError, Stopped
from cutout.registry import ModelSpec


class TorchPredictor:
    """A torch model for one spec. On CUDA it runs in fp16 with channels_last memory format."""

    backend: Literal["torch"] = "torch"

    concurrency = 1

    def __init__(
        self, spec: ModelSpec, device: object, weights: Path | None = None, threads: int | None = None
    ) -> None:
        import torch

        from cutout.backends import Device
        from cutout.convert import load_torch_model, resolve_weights

        assert isinstance(device, Device)
        if device.kind == "cuda":
            if not torch.cuda.is_available():
                raise DeviceError(
                    f"--device {device} asked for a GPU, but PyTorch sees no CUDA device; use --device cpu"
                )
            if device.index >= torch.cuda.device_count():
                raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here (cuda:0..)")
        if threads is not None and device.kind == "cpu":
            torch.set_num_threads(threads)
        self.spec = spec
        self.device = str(device)
        self.torch_device = torch.device(self.device)
        path = weights if weights is not None else resolve_weights(spec, "torch")
        model = load_torch_model(spec, path).to(self.torch_device)
        self.half = device.kind == "cuda"
        if self.half:
            model = model.half().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model

    def _forward(self, batch: np.ndarray) -> list[np.ndarray]:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.torch_device)
        if self.half:
            x = x.half().contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            result = self.model(x, True)[2] if self.spec.architecture == "modnet" else self.model(x)
        # U2-Net gives a tuple of side outputs, MODNet's matte and MNet's alpha are one tensor: list() of a tensor
        # would split it along the batch
        outputs = [result] if isinstance(result, torch.Tensor) else list(result)
        return [o.float().cpu().numpy() for o in outputs]

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._forward(batch)

    def predict(self, batch: np.ndarray, stop: threading.Event | None = None) -> np.ndarray:
        if stop is not None and stop.is_set():
            raise Stopped("inference stopped")
        return self._forward(batch)[self.spec.output.index][:, 0]

    def stop_runs(self, stop: threading.Event) -> None:
        """A forward pass cannot be cut short: running calls end as usual, later ones with ``stop`` do not start."""
