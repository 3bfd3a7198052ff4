"""The batch pipeline with a fake model: real files, bad inputs, order, fail-fast, atomic writes."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from cutout.api import Session
from cutout.batch import Job, prepare, process_images
from cutout.compose import parse_background
from cutout.errors import CutoutError, Stopped
from cutout.options import RemoveOptions
from cutout.registry import get_spec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg"


class FakeSession(Session):
    """The model replaced by a left-half mask: everything else is the real pipeline."""

    def __init__(self) -> None:  # no model to load
        self.spec = get_spec("u2netp")
        self._loading = None
        self.predictor = SimpleNamespace(concurrency=2, stop_runs=lambda stop: None)  # type: ignore[assignment]

    def predictions(self, inputs: Sequence[np.ndarray], stop: threading.Event | None = None) -> list[np.ndarray]:
        out = []
        for _ in inputs:
            prediction = np.zeros((320, 320), np.float32)
            prediction[:, :160] = 1.0
            out.append(prediction)
        return out


def _run(jobs: list[Job], **kwargs: object) -> list:
    return list(process_images(jobs, FakeSession(), kwargs.pop("options", None) or RemoveOptions(), **kwargs))  # type: ignore[arg-type]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    big = Image.open(EXAMPLE).resize((2560, 1920))
    for i in range(6):
        (big if i % 2 else Image.open(EXAMPLE)).save(folder / f"p{i}.jpg", quality=90)
    return folder


def _bad_inputs(folder: Path) -> dict[str, str]:
    data = EXAMPLE.read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a photo")
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    corrupt = bytearray(data)
    middle = len(data) // 2
    corrupt[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (folder / "corrupt.jpg").write_bytes(bytes(corrupt))
    (folder / "folder.jpg").mkdir()
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # claims 30000 x 30000 RGB in 100 bytes
    bomb = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bomb)
    return {
        "empty.jpg": "empty",
        "text.jpg": "not an image",
        "truncated.jpg": "truncated",
        "corrupt.jpg": "corrupt",
        "folder.jpg": "cannot read",
        "dangling.jpg": "broken symbolic link",
        "bomb.png": "--max-pixels",
    }


def test_outcomes_keep_input_order_and_write_every_file(photos: Path, tmp_path: Path) -> None:
    sources = sorted(photos.iterdir())
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sources]
    outcomes = _run(jobs, workers=2)
    assert [o.job for o in outcomes] == jobs
    assert all(o.status == "done" for o in outcomes)
    for job in jobs:
        written = np.asarray(Image.open(job.target))
        height, width = written.shape[:2]
        assert written.shape[2] == 4 and Image.open(job.source).size == (width, height)
        assert (written[:, : width // 3, 3] == 255).all() and (written[:, -width // 3 :, 3] == 0).all()


def test_every_bad_input_fails_alone_with_its_reason(photos: Path, tmp_path: Path) -> None:
    expected = _bad_inputs(photos)
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())]
    outcomes = {o.job.source.name: o for o in _run(jobs, workers=2)}
    for name, reason in expected.items():
        assert outcomes[name].status == "failed", name
        assert reason in outcomes[name].reason, (name, outcomes[name].reason)
        assert not (tmp_path / "out" / f"{Path(name).stem}.png").exists()
    good = [o for o in outcomes.values() if o.job.source.name.startswith("p")]
    assert len(good) == 6 and all(o.status == "done" for o in good)


def test_an_unexpected_fault_on_one_image_fails_it_alone(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a fault in cutout or a library (here: Pillow reading one photo's metadata) used to end the whole batch
    import cutout.batch

    real = cutout.batch.kept_exif

    def kept_exif(image: Image.Image) -> Image.Exif | None:
        if image.size == (512, 512):
            raise KeyError(0x8769)
        return real(image)

    monkeypatch.setattr(cutout.batch, "kept_exif", kept_exif)
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())]
    outcomes = _run(jobs, workers=2)
    assert [o.status for o in outcomes] == ["failed", "done"] * 3
    assert all(o.reason.startswith("cannot decode: unexpected KeyError: 34665; please report") for o in outcomes[::2])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p1.png", "p3.png", "p5.png"]

    def encode(*args: object, **kwargs: object) -> bytes:
        raise TypeError("an encoder's fault")

    monkeypatch.setattr(cutout.batch, "kept_exif", real)
    monkeypatch.setattr(cutout.batch, "encode_cutout_png", encode)
    (tmp_path / "out2").mkdir()
    finished = _run([Job(jobs[0].source, tmp_path / "out2" / "a.png"), Job(jobs[1].source, None, "webp")])
    assert [o.status for o in finished] == ["failed", "done"] and finished[1].data
    assert finished[0].reason == "unexpected TypeError: an encoder's fault; please report it, with the file if you can"
    assert list((tmp_path / "out2").iterdir()) == []


def test_a_panorama_too_wide_for_webp_fails_alone_with_what_to_do(tmp_path: Path) -> None:
    Image.open(EXAMPLE).resize((17000, 120)).save(tmp_path / "pano.jpg")
    jobs = [Job(tmp_path / "pano.jpg", tmp_path / "pano.webp", "webp"), Job(EXAMPLE, tmp_path / "a.webp", "webp")]
    outcomes = _run(jobs)
    assert [o.status for o in outcomes] == ["failed", "done"]
    assert "is at most 16383 pixels a side and this one is 17000 x 120: choose --format png" in outcomes[0].reason
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webp", "pano.jpg"]


def test_fail_fast_stops_at_the_first_failure(photos: Path, tmp_path: Path) -> None:
    (photos / "p2.jpg").write_text("broken")
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())]
    seen = []
    with pytest.raises(CutoutError, match="fail-fast"):
        for outcome in process_images(jobs, FakeSession(), RemoveOptions(), fail_fast=True):  # type: ignore[arg-type]
            seen.append(outcome.status)
    assert seen == ["done", "done", "failed"]


def test_a_full_disk_ends_the_run_after_its_outcome(photos: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    import cutout.batch
    from cutout.io import encode

    written = []

    def full(path: Path, data: bytes) -> None:
        if written:
            raise encode._output_error(path, OSError(errno.EDQUOT, "Disk quota exceeded"))
        written.append(path)

    monkeypatch.setattr(cutout.batch, "write_atomic", full)
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())]
    outcomes = _run(jobs, workers=1)  # no fail_fast: a full disk stops the run anyway
    assert [(o.status, o.ends_batch) for o in outcomes] == [("done", False), ("failed", True)]
    assert "disk quota exceeded; free some space there, or choose another output folder" in outcomes[1].reason


class SlowSession(FakeSession):
    """The first image's inference is quick, the next ones run until the pipeline stops them (as onnxruntime's
    do when their terminate flag is set): a pipeline closed on Ctrl-C must not wait for them to end."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.stops, self.ended = 0, [], threading.Event()  # type: ignore[var-annotated]
        self.predictor = SimpleNamespace(concurrency=2, stop_runs=self.stop_runs)  # type: ignore[assignment]

    def stop_runs(self, stop: threading.Event) -> None:
        self.stops.append(stop)
        self.ended.set()

    def predictions(self, inputs: Sequence[np.ndarray], stop: threading.Event | None = None) -> list[np.ndarray]:
        self.calls += 1
        if self.calls > 1:
            assert self.ended.wait(30), "never stopped"
            raise Stopped("inference stopped")
        return super().predictions(inputs, stop)


def test_closing_the_pipeline_stops_the_inferences_it_runs(photos: Path, tmp_path: Path) -> None:
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())]
    session, cancel = SlowSession(), threading.Event()
    outcomes = process_images(jobs, session, RemoveOptions(), cancel=cancel)  # type: ignore[arg-type]
    assert next(outcomes).status == "done"
    closing = threading.Thread(target=outcomes.close)  # what Ctrl-C does; it waited for the running inferences
    closing.start()
    closing.join(10)
    assert not closing.is_alive() and cancel.is_set()
    deadline = time.monotonic() + 10
    while not session.stops and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session.stops == [cancel]  # the session was asked to end the runs started with this pipeline's event
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png"]  # nothing else, nothing partial


def test_no_thread_of_the_pipeline_outlives_it(photos: Path, tmp_path: Path) -> None:
    # the thread that ends inferences on cancel was left running after the last outcome; the command then found
    # a thread alive at its end and tore the interpreter down instead of exiting at once (-q runs; with torch on
    # CUDA one such run aborted: "terminate called without an active exception")
    session = FakeSession()
    session.predictor = SimpleNamespace(concurrency=2, stop_runs=lambda stop: time.sleep(0.3))  # type: ignore[assignment]
    before = set(threading.enumerate())
    jobs = [Job(s, tmp_path / "out" / f"{s.stem}.png") for s in sorted(photos.iterdir())[:2]]
    assert [o.status for o in process_images(jobs, session, RemoveOptions())] == ["done", "done"]
    assert [t.name for t in threading.enumerate() if t not in before] == []


def test_jobs_without_a_target_return_the_encoded_bytes() -> None:
    (outcome,) = _run([Job(EXAMPLE.read_bytes(), None, "webp")])
    assert outcome.status == "done" and Image.open(io.BytesIO(outcome.data)).format == "WEBP"


def test_a_failed_write_leaves_no_file(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    out = tmp_path / "out"
    (outcome,) = _run([Job(photos / "p1.jpg", out / "p1.png")])
    assert outcome.status == "failed" and "no space left on device" in outcome.reason
    assert list(out.iterdir()) == []


class ShortOfMemory(FakeSession):
    """A model whose arena cannot grow for every other batch, as onnxruntime says it when memory runs out."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error, self.calls = error, 0

    @property
    def concurrency(self) -> int:  # one inference at a time: the calls come in the jobs' order
        return 1

    def predictions(self, inputs: Sequence[np.ndarray], stop: threading.Event | None = None) -> list[np.ndarray]:
        self.calls += 1
        if self.calls % 2:
            raise self.error
        return super().predictions(inputs, stop)


def test_memory_running_out_fails_those_images_alone_with_advice(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 96-megapixel photo on a busy machine: MemoryError or onnxruntime's arena ended the whole batch with a
    # traceback, and the files after it were never written
    arena = RuntimeError(
        "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Concat node. Status Message: "
        "bfc_arena.cc:360 Failed to allocate memory for requested buffer of size 52428800"
    )
    jobs = [Job(photos / f"p{i}.jpg", tmp_path / "a" / f"p{i}.png") for i in range(4)]
    outcomes = list(process_images(jobs, ShortOfMemory(arena), RemoveOptions(), workers=1))
    assert [o.status for o in outcomes] == ["failed", "done", "failed", "done"]
    assert outcomes[0].reason.startswith("not enough memory to run the model (onnxruntime could not allocate 50 MiB")
    assert "--threads" in outcomes[0].reason
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["p1.png", "p3.png"]
    with pytest.raises(RuntimeError, match="a broken model"):  # any other failure still ends the batch
        list(process_images(jobs[:1], ShortOfMemory(RuntimeError("a broken model")), RemoveOptions()))

    import cutout.batch

    real = cutout.batch.encode_cutout_png

    def short(rgb: np.ndarray, *args: object, **kwargs: object) -> bytes:
        if rgb.shape[0] == 1920:  # the big ones
            raise MemoryError
        return real(rgb, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cutout.batch, "encode_cutout_png", short)
    jobs = [Job(photos / f"p{i}.jpg", tmp_path / "b" / f"p{i}.png") for i in range(3)]
    outcomes = _run(jobs)
    assert [o.status for o in outcomes] == ["done", "failed", "done"]
    assert outcomes[1].reason == (
        "not enough memory to finish this 2560 x 1920 image; close other programs, or run it alone with --workers 1"
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["p0.png", "p2.png"]


def test_a_big_jpeg_is_drafted_for_the_model_and_decoded_whole_for_the_cutout(photos: Path) -> None:
    prepared = prepare(get_spec("u2netp"), photos / "p1.jpg", 10**9)
    assert prepared.rgb is None and prepared.size == (1920, 2560) and prepared.input.shape == (1, 3, 320, 320)
    small = prepare(get_spec("u2netp"), photos / "p0.jpg", 10**9)
    assert small.rgb is not None and small.rgb.shape == (512, 512, 3)


def test_exif_rotated_draft_keeps_the_upright_size(tmp_path: Path) -> None:
    photo = Image.open(EXAMPLE).resize((3200, 2000))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the upright image is 2000 wide, 3200 tall
    photo.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    prepared = prepare(get_spec("u2netp"), tmp_path / "turned.jpg", 10**9)
    assert prepared.rgb is None and prepared.size == (3200, 2000)
    (outcome,) = _run([Job(tmp_path / "turned.jpg", tmp_path / "turned.png")])
    assert outcome.status == "done" and Image.open(tmp_path / "turned.png").size == (2000, 3200)


@pytest.mark.parametrize("size", [(512, 512), (3200, 2000)])  # decoded whole, and drafted (decoded again later)
def test_a_photos_date_and_copyright_reach_every_kind_of_output(tmp_path: Path, size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x8298] = "(c) 2026 A. Photographer"
    exif.get_ifd(0x8769)[0x9003] = "2026:05:04 10:11:12"
    Image.open(EXAMPLE).resize(size).save(tmp_path / "a.jpg", exif=exif)
    options = {
        "a.png": RemoveOptions(),
        "b.jpg": RemoveOptions(background=parse_background("white")),
        "c.png": RemoveOptions(only_mask=True),
    }
    for name, chosen in options.items():
        (outcome,) = _run([Job(tmp_path / "a.jpg", tmp_path / name, format=name[2:])], options=chosen)
        assert outcome.status == "done", outcome.reason
        written = Image.open(tmp_path / name).getexif()
        assert written[0x8298] == "(c) 2026 A. Photographer", name
        assert written.get_ifd(0x8769)[0x9003] == "2026:05:04 10:11:12", name


@pytest.mark.parametrize("name", ["a.png", "b.jpg", "c.tif", "d.png"])
def test_the_print_resolution_of_a_photo_is_kept(tmp_path: Path, name: str) -> None:
    # a 300 dpi product shot came out at 72 dpi (no pHYs, JFIF 1:1), placed in a layout at 4 times its size
    Image.open(EXAMPLE).save(tmp_path / "shot.jpg", dpi=(300, 300))
    chosen = {"b.jpg": RemoveOptions(background=parse_background("white")), "d.png": RemoveOptions(only_mask=True)}
    (outcome,) = _run([Job(tmp_path / "shot.jpg", tmp_path / name, format=name[2:])], options=chosen.get(name))
    assert outcome.status == "done", outcome.reason
    with Image.open(tmp_path / name) as written:
        assert written.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_an_earlier_result_that_cutout_made_is_skipped_not_cut_out_again(photos: Path, tmp_path: Path) -> None:
    earlier = tmp_path / "p0.cutout.png"
    [outcome] = _run([Job(photos / "p0.jpg", earlier)])
    assert outcome.status == "done"
    again = [
        Job(earlier, tmp_path / "a.png", skip_if_ours=True),
        Job(earlier, tmp_path / "b.png"),
        Job(photos / "p1.jpg", tmp_path / "c.png", skip_if_ours=True),
    ]
    outcomes = _run(again)
    assert [o.status for o in outcomes] == ["skipped", "done", "done"]
    assert outcomes[0].reason.startswith("made by cutout") and not (tmp_path / "a.png").exists()
