"""Backend and device choice: auto picks what is really there; a missing GPU is a loud error."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from cutout.backends import (
    Device,
    choose_backend,
    create_predictor,
    onnx_cuda_available,
    torch_cuda_available,
)
from cutout.backends.onnx_backend import OnnxPredictor, optimized_graph_path
from cutout.errors import BackendError, Stopped, UsageError
from cutout.registry import get_spec

no_gpu = pytest.mark.skipif(onnx_cuda_available() or torch_cuda_available(), reason="a GPU is present")


@pytest.mark.parametrize(
    ("text", "expected"), [("cpu", "cpu"), ("CUDA", "cuda:0"), ("cuda:3", "cuda:3"), ("auto", "auto")]
)
def test_device_parse(text: str, expected: str) -> None:
    assert str(Device.parse(text)) == expected


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:x", "tpu:0"])
def test_device_parse_rejects_unknown(text: str) -> None:
    with pytest.raises(UsageError, match="use auto, cpu, cuda or cuda:N"):
        Device.parse(text)


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="auto, onnx or torch"):
        choose_backend("tensorflow", Device("cpu"))


@no_gpu
def test_auto_is_onnx_on_cpu_here() -> None:
    assert choose_backend("auto", Device("auto")) == ("onnx", Device("cpu"))


@no_gpu
@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_asking_for_a_missing_gpu_is_an_error_not_a_cpu_fallback(backend: str) -> None:
    if backend == "torch":
        pytest.importorskip("torch")
    with pytest.raises(BackendError, match="cuda") as raised:
        create_predictor(get_spec("u2netp"), backend=backend, device="cuda:0")
    assert isinstance(raised.value, UsageError)  # the command's exit code 2: an option this machine cannot honour


def _predictor(weights: Path) -> OnnxPredictor:
    return OnnxPredictor(get_spec("u2netp"), Device("cpu"), weights, threads=1)


def test_cpu_sessions_keep_the_optimised_graph(u2netp_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    weights = tmp_path / "u2netp.onnx"
    shutil.copy(u2netp_onnx, weights)
    batch = np.random.default_rng(0).normal(size=(1, 3, 320, 320)).astype(np.float32)
    first = _predictor(weights)
    assert first.session._model_path == str(weights)
    saved = list((tmp_path / "home" / "optimized").iterdir())
    assert [p.name for p in saved] == [optimized_graph_path(onnxruntime, weights).name]  # no .part left
    second = _predictor(weights)
    assert second.session._model_path == str(saved[0])  # loaded optimised, not optimised again
    np.testing.assert_array_equal(second.predict(batch), first.predict(batch))

    saved[0].write_bytes(b"not a model")  # damaged: the original is optimised again, the copy replaced
    third = _predictor(weights)
    assert third.session._model_path == str(weights)
    np.testing.assert_array_equal(third.predict(batch), first.predict(batch))
    assert _predictor(weights).session._model_path == str(saved[0])

    os.utime(weights, ns=(0, 0))  # a changed file gets a new copy; the old one goes
    assert _predictor(weights).session._model_path == str(weights)
    assert [p.name for p in (tmp_path / "home" / "optimized").iterdir()] == [
        optimized_graph_path(onnxruntime, weights).name
    ]
    assert optimized_graph_path(onnxruntime, weights) != saved[0]


def test_cpu_sessions_load_without_a_writable_cache(u2netp_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "home").write_text("a file where the cache folder should be")
    monkeypatch.setenv("CUTOUT_HOME", str(tmp_path / "home"))
    predictor = _predictor(u2netp_onnx)
    assert predictor.session._model_path == str(u2netp_onnx)
    assert predictor.predict(np.zeros((1, 3, 320, 320), np.float32)).shape == (1, 320, 320)
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_a_cancelled_pipeline_stops_its_running_inferences(u2netp_onnx: Path) -> None:
    # Ctrl-C used to wait ~1 s for inferences whose results would be dropped; onnxruntime can end a run early
    predictor = _predictor(u2netp_onnx)
    batch = np.random.default_rng(0).normal(size=(8, 3, 320, 320)).astype(np.float32)  # run one by one: ~6 s
    cancelled, other = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def run(name: str, stop: threading.Event, inputs: np.ndarray) -> None:
        try:
            outcomes[name] = predictor.predict(inputs, stop)
        except Stopped as error:
            outcomes[name] = error

    threads = [
        threading.Thread(target=run, args=("cancelled", cancelled, batch)),
        threading.Thread(target=run, args=("other", other, batch[:1])),  # another pipeline's run goes on
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    cancelled.set()
    predictor.stop_runs(cancelled)
    threads[0].join(30)
    print(f"stopped after {time.perf_counter() - started:.3f} s")  # measured here: a few ms, not the rest of ~6 s
    threads[1].join(30)
    assert isinstance(outcomes["cancelled"], Stopped)
    assert isinstance(outcomes["other"], np.ndarray) and outcomes["other"].shape == (1, 320, 320)
    assert predictor._stoppable == []
    with pytest.raises(Stopped):  # set before it starts: it does not run
        predictor.predict(batch[:1], cancelled)
    np.testing.assert_array_equal(predictor.predict(batch[:1], threading.Event()), predictor.predict(batch[:1]))
