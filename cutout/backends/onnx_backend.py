"""onnxruntime backend: CPU, and the CUDA and TensorRT providers when installed (``cutout[gpu]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from cutout.errors import BackendError
from cutout.registry import ModelSpec


class OnnxPredictor:
    """An onnxruntime session for one model. Inputs with a static batch of 1 (rembg's files) run one by one."""

    backend: Literal["onnx"] = "onnx"

    def __init__(
        self, spec: ModelSpec, device: object, weights: Path | None = None, threads: int | None = None
    ) -> None:
        """``threads``: onnxruntime's intra-op threads (None: one per core). With 1 on the CPU the session is
        meant to be run from several threads at once (``concurrency`` of them): whole images in parallel use
        the cores better than one image split across them when decoding and encoding share the machine."""
        import onnxruntime as ort

        from cutout.backends import Device, cpu_concurrency
        from cutout.convert import resolve_weights

        assert isinstance(device, Device)
        self.spec = spec
        self.device = str(device)
        path = weights if weights is not None else resolve_weights(spec, "onnx")
        providers = _providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Memory patterns pre-plan one arena block per input shape and run: for U2-NetP they cost ~200 MB per
        # concurrent run and measured no faster here.
        options.enable_mem_pattern = False
        self.concurrency = 1
        if threads is not None:
            options.intra_op_num_threads = threads
            if device.kind == "cpu":
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self.concurrency = cpu_concurrency(threads)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise BackendError(f"onnxruntime cannot load {path}: {error}") from error
        if device.kind == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise BackendError(
                f"onnxruntime could not start CUDA for {self.device} (CUDA/cuDNN libraries missing?); "
                "use --device cpu, or fix the CUDA installation"
            )
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.static_batch = model_input.shape[0] if isinstance(model_input.shape[0], int) else None

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.static_batch is not None and batch.shape[0] != self.static_batch:
            parts = [self.session.run(None, {self.input_name: item[None]}) for item in batch]
            return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return list(self.session.run(None, {self.input_name: batch}))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        index = self.spec.output.index
        if self.static_batch is not None and batch.shape[0] != self.static_batch:
            return np.concatenate([self.predict(item[None]) for item in batch])
        output = self.session.run([self.session.get_outputs()[index].name], {self.input_name: batch})[0]
        return np.asarray(output)[:, 0]


def _providers(device: object, available: list[str]) -> list[object]:
    from cutout.backends import Device

    assert isinstance(device, Device)
    if device.kind != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise BackendError(
            f"--device {device} asked for a GPU, but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}). Install `cutout[gpu]` (onnxruntime-gpu) or use --device cpu."
        )
    options = {"device_id": device.index}
    providers: list[object] = []
    if "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {"device_id": device.index, "trt_fp16_enable": True}))
    providers += [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return providers
