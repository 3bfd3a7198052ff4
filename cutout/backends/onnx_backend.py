"""onnxruntime backend: CPU, and the CUDA and TensorRT providers when installed (``cutout[gpu]``)."""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import platform
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cutout.errors import BackendError, DeviceError, Stopped
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
        self._ort = ort
        self._lock = threading.Lock()
        self._stoppable: list[tuple[Any, threading.Event]] = []  # runs that stop_runs can end: (RunOptions, event)
        path = weights if weights is not None else resolve_weights(spec, "onnx")
        providers = _providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: a failed run raises, and cutout says what failed in its words
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
            if providers == ["CPUExecutionProvider"]:
                self.session = _cpu_session(ort, Path(path), options)
            else:
                self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped errors
            damaged = "INVALID_PROTOBUF" in str(error)  # not an ONNX file at all, or cut short
            hint = "; it is damaged or not an ONNX model (check the file, or fetch it again)" if damaged else ""
            reason = str(error).strip().rstrip(".") if damaged else error
            raise BackendError(f"onnxruntime cannot load {path}: {reason}{hint}") from error
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

    def predict(self, batch: np.ndarray, stop: threading.Event | None = None) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        index = self.spec.output.index
        if self.static_batch is not None and batch.shape[0] != self.static_batch:
            return np.concatenate([self.predict(item[None], stop) for item in batch])
        names = [self.session.get_outputs()[index].name]
        if stop is None:
            return np.asarray(self.session.run(names, {self.input_name: batch})[0])[:, 0]
        run = (self._ort.RunOptions(), stop)
        with self._lock:
            self._stoppable.append(run)
        try:
            if stop.is_set():  # after registering: stop_runs, from another thread, either sees this run or ran before
                raise Stopped("inference stopped")
            return np.asarray(self.session.run(names, {self.input_name: batch}, run[0])[0])[:, 0]
        except Exception:
            if stop.is_set():  # onnxruntime's own error for a run whose terminate flag was set
                raise Stopped("inference stopped") from None
            raise
        finally:
            with self._lock:
                self._stoppable.remove(run)

    def stop_runs(self, stop: threading.Event) -> None:
        """End the runs started with ``stop`` now: onnxruntime checks a run's terminate flag between operators, so
        a run ends within milliseconds (U2-NetP takes ~0.8 s on one core) and raises :class:`Stopped`."""
        with self._lock:
            for options, event in self._stoppable:
                if event is stop:
                    options.terminate = True


def _cpu_session(ort: Any, path: Path, options: Any) -> Any:
    """An onnxruntime CPU session for ``path`` whose optimised graph is kept on disk for the next start.

    onnxruntime optimises a graph (fusions, constant folding, the CPU's blocked layouts) every time it loads one:
    80 to 150 ms of each start for U2-NetP on the project machine, where a graph saved optimised loads in 20 to
    40 ms, with optimisation off, and runs alike (same outputs). The saved graph suits this CPU and onnxruntime
    version only, so both are in its name (see :func:`optimized_graph_path`). Any trouble with the saved copy (no
    cache folder, no space, a damaged file) falls back to loading ``path`` itself.
    """
    saved = optimized_graph_path(ort, path)
    if saved is not None and saved.is_file():
        level = options.graph_optimization_level
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(saved), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged copy: optimise the original again and save it anew
            options.graph_optimization_level = level
    if saved is None:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    from cutout import _download

    try:
        with _download.temporary_path(saved.parent, saved.name) as part:  # removed unless renamed into place
            options.optimized_model_filepath = str(part)
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            with contextlib.suppress(OSError):
                older = glob.escape(saved.name.rsplit(".", 2)[0]) + ".*.onnx"  # copies of this file for other keys
                for stale in saved.parent.glob(older):
                    stale.unlink(missing_ok=True)
                _download.install(part, saved)
            return session
    except Exception:  # no cache folder, or the copy could not be written: load without one (or raise the error)
        options.optimized_model_filepath = ""
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def optimized_graph_path(ort: Any, path: Path) -> Path | None:
    """Where onnxruntime's optimised graph of the model file ``path`` is kept: ``<cache>/optimized/``.

    The name holds a digest of the file's path, size and modification time, onnxruntime's version and the CPU's
    model and features, so a changed file, an upgrade or another machine sharing the cache never loads a stale
    graph. None when the file cannot be read.
    """
    from cutout.weights import cache_dir

    try:
        stat = path.stat()
        where = str(path.resolve())
    except OSError:
        return None
    place = hashlib.sha256(os.fsencode(where)).hexdigest()[:8]
    key = "|".join([where, str(stat.st_size), str(stat.st_mtime_ns), ort.__version__, _cpu_signature()])
    return cache_dir() / "optimized" / f"{path.stem}.{place}.{hashlib.sha256(os.fsencode(key)).hexdigest()[:16]}.onnx"


@functools.cache
def _cpu_signature() -> str:
    """The CPU's model name and feature flags (Linux), else what the platform module knows of it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            lines = [line for line in info if line.startswith(("model name", "flags", "Features"))]
        if lines:
            return "".join(sorted(set(lines)))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _providers(device: object, available: list[str]) -> list[object]:
    from cutout.backends import Device

    assert isinstance(device, Device)
    if device.kind != "cuda":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise DeviceError(
            f"--device {device} asked for a GPU, but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}). Install `cutout[gpu]` (onnxruntime-gpu) or use --device cpu."
        )
    options = {"device_id": device.index}
    providers: list[object] = []
    if "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", {"device_id": device.index, "trt_fp16_enable": True}))
    providers += [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return providers
