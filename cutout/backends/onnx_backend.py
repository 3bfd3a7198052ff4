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

from cutout.errors import BackendError, DeviceError, Stopped, first_line, out_of_memory
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
        self.path = Path(path)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.static_batch, self.input_type = _check_interface(self.session, spec, self.path)

    def run_all(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._run(None, batch, None)

    def predict(self, batch: np.ndarray, stop: threading.Event | None = None) -> np.ndarray:
        names = [self.session.get_outputs()[self.spec.output.index].name]
        (mask,) = self._run(names, batch, stop)
        if mask.ndim != 4:
            raise BackendError(
                f"{self.path.name} gave an output of shape {mask.shape} where a mask map (N, 1, H, W) was expected: "
                f"{_WHAT_CUTOUT_RUNS}"
            )
        return mask[:, 0]

    def _run(self, names: list[str] | None, batch: np.ndarray, stop: threading.Event | None) -> list[np.ndarray]:
        """The outputs called ``names`` (None: all) for ``batch``, run in pieces of a static batch size."""
        batch = np.ascontiguousarray(batch, dtype=self.input_type)
        size = self.static_batch
        if size is None or len(batch) == size:
            return [np.asarray(out, np.float32) for out in self._run_once(names, batch, stop)]
        parts = []
        for start in range(0, len(batch), size):  # a model exported for exactly ``size`` images: pad the last piece
            piece = batch[start : start + size]
            padded = np.concatenate([piece, np.repeat(piece[-1:], size - len(piece), axis=0)])
            parts.append([np.asarray(out[: len(piece)], np.float32) for out in self._run_once(names, padded, stop)])
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    def _run_once(self, names: list[str] | None, batch: np.ndarray, stop: threading.Event | None) -> list[Any]:
        run = (self._ort.RunOptions(), stop if stop is not None else threading.Event())
        with self._lock:
            self._stoppable.append(run)
        try:
            if run[1].is_set():  # after registering: stop_runs, from another thread, either sees this run or ran before
                raise Stopped("inference stopped")
            return list(self.session.run(names, {self.input_name: batch}, run[0]))
        except Exception as error:
            if run[1].is_set():  # onnxruntime's own error for a run whose terminate flag was set
                raise Stopped("inference stopped") from None
            if out_of_memory(error):
                raise  # out of memory fails the images it hit (cutout.batch), with advice
            raise BackendError(
                f"onnxruntime failed to run {self.path.name}: {first_line(error)}; the model file may be broken "
                f"or not one cutout runs ({_WHAT_CUTOUT_RUNS})"
            ) from error
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


_WHAT_CUTOUT_RUNS = (
    "cutout runs U2-Net, U2-NetP and MODNet models (and MNet refiners) as their authors and `cutout train` export "
    "them, with one float image input (N, C, H, W) and mask outputs (N, 1, H, W)"
)
_INPUT_TYPES: dict[str, type[np.floating[Any]]] = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _check_interface(session: Any, spec: ModelSpec, path: Path) -> tuple[int | None, type[np.floating[Any]]]:
    """That the model takes what cutout feeds ``spec``'s models: one float (or half) image tensor of the right
    channels and size. Returns its static batch size (None if dynamic) and its input's numpy type.

    Raises:
        BackendError: naming what the model takes instead, so a file of another kind of model (rembg's ISNet at
            1024 x 1024, a channels-last export) fails before any image with a line, not a traceback per image.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    channels = 6 if spec.architecture == "mnet" else 3
    takes = ", ".join(f"{item.name} {item.type} {_shape(item.shape)}" for item in inputs)

    def refuse(problem: str) -> BackendError:
        return BackendError(f"{path.name} {problem} (it takes {takes}); {_WHAT_CUTOUT_RUNS}")

    if len(inputs) != 1:
        raise refuse(f"takes {len(inputs)} inputs, where cutout gives a model one image tensor")
    shape, kind = inputs[0].shape, inputs[0].type
    if kind not in _INPUT_TYPES:
        raise refuse(f"takes {kind}, where cutout gives float32 (or float16) pixels")
    if len(shape) != 4:
        raise refuse(f"takes a tensor of {len(shape)} dimensions, where cutout gives (N, {channels}, H, W)")
    if isinstance(shape[1], int) and shape[1] != channels:
        last = " (channels last?)" if shape[3] == channels else ""
        raise refuse(f"takes {shape[1]} channels{last}, where cutout gives (N, {channels}, H, W)")
    fixed = [side if isinstance(side, int) else None for side in shape[2:]]  # None: any size
    if any(fixed) and spec.architecture != "mnet":
        wanted = spec.input.size if spec.input.kind == "fixed" else None
        if wanted is None or any(side not in (None, size) for side, size in zip(fixed, wanted, strict=True)):
            gives = f"{wanted[0]} x {wanted[1]}" if wanted else "sizes that follow the photo's (multiples of 32)"
            raise refuse(f"takes images of {_shape(shape[2:])} only, where {spec.name}'s rules give {gives}")
    if spec.output.index >= len(outputs):
        raise refuse(f"has {len(outputs)} outputs, where {spec.name}'s mask is output {spec.output.index + 1}")
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return batch, _INPUT_TYPES[kind]


def _shape(shape: Any) -> str:
    return "(" + ", ".join(str(side) if isinstance(side, int) else "?" for side in shape) + ")"


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
