"""The Python API on the real U2-NetP: input kinds, output kinds, sessions, batches and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cutout
from cutout.batch import Job
from cutout.errors import InputError, UsageError

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg"


@pytest.fixture(scope="module")
def session(u2netp_onnx: Path) -> cutout.Session:
    return cutout.new_session(u2netp_onnx, backend="onnx", device="cpu")


def test_output_kind_follows_input_kind(session: cutout.Session) -> None:
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    as_array = session.remove(rgb)
    as_pil = session.remove(Image.fromarray(rgb))
    as_bytes = session.remove(EXAMPLE.read_bytes())
    assert isinstance(as_array, np.ndarray) and as_array.shape == (512, 512, 4)
    assert isinstance(as_pil, Image.Image) and as_pil.mode == "RGBA"
    assert isinstance(as_bytes, bytes) and Image.open(io.BytesIO(as_bytes)).size == (512, 512)
    np.testing.assert_array_equal(as_array, np.asarray(as_pil))
    # straight (not premultiplied) colour: the cutout keeps the image's colours where the subject is opaque
    # (soft edges get estimated foreground colours), and fully transparent pixels are (0, 0, 0, 0)
    opaque = as_array[..., 3] == 255
    np.testing.assert_array_equal(as_array[..., :3][opaque], rgb[opaque])
    raw = session.remove(rgb, foreground_estimation=False)
    visible = raw[..., 3] > 0
    np.testing.assert_array_equal(raw[..., :3][visible], rgb[visible])
    assert not as_array[~visible].any()
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(as_bytes))), as_array)


def test_bg_takes_a_colour_tuple_or_a_path_as_well_as_the_command_lines_text(
    session: cutout.Session, tmp_path: Path
) -> None:
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    green = session.remove(rgb, bg="#00ff00")
    for form in ((0, 255, 0), [0, 255, 0, 255], np.array([0, 255, 0]), (np.uint8(0), np.int64(255), 0)):
        np.testing.assert_array_equal(session.remove(rgb, bg=form), green)
    np.testing.assert_array_equal(
        cutout.remove(rgb, session=session, bg=(0, 0, 0, 128)), session.remove(rgb, bg="0,0,0,128")
    )
    # a file named like a colour: a Path means the file
    Image.new("RGB", (8, 8), "navy").save(tmp_path / "white", format="PNG")
    np.testing.assert_array_equal(session.remove(rgb, bg=tmp_path / "white"), session.remove(rgb, bg="navy"))


@pytest.mark.parametrize(
    ("bg", "message"),
    [
        ((300, 0, 0), r"\(300, 0, 0\) must have numbers from 0 to 255"),
        ((1.5, 2, 3), r"bg=\(1.5, 2, 3\) is not a background; give a colour"),
        (b"\xff\x00\x00", "is not a background"),
        (Image.new("RGB", (4, 4)), r"bg=\(a PIL.Image.Image\) is not a background; .* an image path"),
        (Path("no/such/beach.jpg"), r"background image no/such/beach.jpg does not exist"),
    ],
)
def test_bg_that_is_no_background_is_a_usage_error(bg: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cutout.make_options(bg=bg)


@pytest.mark.parametrize("threads", [0, -1, 2.5, True, 10**6])
def test_threads_that_are_no_count_of_threads_are_a_usage_error(threads: object) -> None:
    # 0 ended in a ZeroDivisionError, a million hung onnxruntime, -1 was passed on to it
    with pytest.raises(UsageError, match=r"give a whole number of CPU threads per inference from 1 to 1024"):
        cutout.new_session("u2netp", threads=threads)  # type: ignore[arg-type]


def test_threads_may_be_a_numpy_integer() -> None:
    rgb = np.zeros((40, 50, 3), np.uint8)
    assert cutout.new_session("u2netp", threads=np.int64(1)).mask(rgb).shape == (40, 50)


def test_mask_is_a_real_subject(session: cutout.Session) -> None:
    mask = session.remove(np.asarray(Image.open(EXAMPLE).convert("RGB")), only_mask=True)
    assert isinstance(mask, np.ndarray) and mask.shape == (512, 512) and mask.dtype == np.uint8
    # the astronaut fills the centre-left; the corners of the flag/background at top right are background
    assert mask[300:400, 150:300].mean() > 200
    assert 0.15 < (mask > 127).mean() < 0.9


def test_batch_equals_one_by_one(session: cutout.Session) -> None:
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(EXAMPLE.parent.glob("*.jpg"))]
    batched = session.masks(images)
    for image, mask in zip(images, batched, strict=True):
        np.testing.assert_array_equal(mask, session.mask(image))


def test_grey_and_rgba_arrays_are_accepted(session: cutout.Session) -> None:
    grey = np.asarray(Image.open(EXAMPLE).convert("L"))
    rgba = np.asarray(Image.open(EXAMPLE).convert("RGBA"))
    assert session.remove(grey).shape == (512, 512, 4)
    assert session.remove(rgba).shape == (512, 512, 4)


def test_what_the_input_hides_stays_hidden(session: cutout.Session, tmp_path: Path) -> None:
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :256, 3] = 0  # the left half hidden, its colours still stored (the model sees them, as rembg's does)
    rgba[:, 256:300, 3] = 128
    plain = session.remove(rgb)
    Image.fromarray(rgba).save(tmp_path / "half.png")
    for image in (rgba, Image.fromarray(rgba), tmp_path / "half.png", (tmp_path / "half.png").read_bytes()):
        result = session.remove(image)
        cut = np.asarray(result if not isinstance(result, bytes) else Image.open(io.BytesIO(result)))
        assert not cut[:, :256, 3].any()  # was the model's mask there: colours the input hid showed again
        expected = (plain[:, 256:300, 3].astype(np.uint16) * 128 + 127) // 255
        np.testing.assert_array_equal(cut[:, 256:300, 3], expected)
        np.testing.assert_array_equal(cut[:, 300:, 3], plain[:, 300:, 3])
    mask = session.remove(rgba, only_mask=True)
    assert not mask[:, :256].any() and (mask[:, 300:] == plain[:, 300:, 3]).all()
    for image in (rgba, Image.fromarray(rgba), tmp_path / "half.png"):
        np.testing.assert_array_equal(session.mask(image), mask)  # the lower-level call, the same mask
    np.testing.assert_array_equal(session.masks([rgb])[0], session.mask(rgb))  # RGB: the network's own


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"not an image at all", "not an image"), (EXAMPLE.read_bytes()[:5000], "truncated")],
)
def test_bad_bytes_raise_input_error(session: cutout.Session, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        session.remove(data)


def test_bad_arrays_raise_input_error(session: cutout.Session) -> None:
    with pytest.raises(InputError, match="uint8"):
        session.remove(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        session.remove(np.zeros((10, 10, 2), np.uint8))
    for empty in (np.zeros((0, 10, 3), np.uint8), np.zeros((10, 0), np.uint8)):
        with pytest.raises(InputError, match=r"the image has no pixels \(shape"):
            session.remove(empty)
    with pytest.raises(InputError, match=r"the image has no pixels \(0 x 10\)"):
        session.remove(Image.new("RGB", (0, 10)))


@pytest.mark.parametrize(
    ("array", "advice"),
    [
        (np.full((8, 8, 3), 0.5, np.float32), "(array * 255).round().astype(np.uint8)"),
        (np.full((8, 8, 3), 40000, np.uint16), "(array >> 8).astype(np.uint8)"),
        (np.ones((8, 8), bool), "array.astype(np.uint8) * 255"),
        (np.full((8, 8, 3), 200, np.int64), "array.astype(np.uint8)"),
        (np.zeros((3, 8, 8), np.uint8), "array.transpose(1, 2, 0)"),
    ],
    ids=["float", "16-bit", "bool", "int64", "channels-first"],
)
def test_an_array_of_another_kind_gets_the_conversion_that_keeps_its_pixels(
    session: cutout.Session, array: np.ndarray, advice: str
) -> None:
    # the advice was .astype(np.uint8) for every dtype: a 0..1 float image became black, 16-bit values wrapped
    with pytest.raises(InputError) as raised:
        session.remove(array)
    assert advice in str(raised.value)


def test_unknown_model_lists_the_built_in_ones() -> None:
    with pytest.raises(UsageError, match="known models are: u2netp, u2net, u2net_human_seg, modnet, modnet-webcam"):
        cutout.new_session("no-such-model")
    with pytest.raises(UsageError, match=r"trained ones are looked for in .*models and weights\)"):
        cutout.new_session("no-such-model")


def test_a_session_loaded_in_the_background_gives_the_same_masks(session: cutout.Session, u2netp_onnx: Path) -> None:
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    loading = cutout.Session(u2netp_onnx, backend="onnx", device="cpu", threads=1, background=True)
    assert loading.concurrency >= 1  # known before the load ends: process_images sizes its stages with it
    np.testing.assert_array_equal(loading.mask(rgb), session.mask(rgb))
    assert loading.predictor.backend == "onnx" and loading.concurrency == loading.predictor.concurrency


def test_a_background_load_raises_its_error_when_the_model_is_first_used(tmp_path: Path) -> None:
    broken = tmp_path / "u2netp.onnx"
    broken.write_bytes(b"not an onnx model")
    loading = cutout.Session(broken, backend="onnx", device="cpu", background=True)  # returns before loading
    with pytest.raises(cutout.CutoutError, match="onnxruntime cannot load"):
        loading.mask(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(cutout.CutoutError, match="onnxruntime cannot load"):  # and again: the error stays
        _ = loading.predictor
    jobs = [Job(EXAMPLE, tmp_path / "out.png")]
    with pytest.raises(cutout.CutoutError, match="onnxruntime cannot load"):
        list(cutout.process_images(jobs, loading, cutout.make_options()))
    assert not (tmp_path / "out.png").exists()


def test_one_session_serves_several_threads_at_once(session: cutout.Session) -> None:
    # a web service shares one loaded session between its request threads
    from concurrent.futures import ThreadPoolExecutor

    photo = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    inputs = [np.ascontiguousarray(np.roll(photo, 37 * index, axis=1)[::2, ::2]) for index in range(6)]
    alone = [session.remove(array) for array in inputs]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(session.remove, inputs))
        encoded = list(pool.map(lambda array: session.remove(_jpeg(array)), inputs))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
    assert all(data[:8] == b"\x89PNG\r\n\x1a\n" for data in encoded)


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG")
    return buffer.getvalue()
