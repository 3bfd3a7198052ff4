"""Reading real (and really broken) image files, every pixel mode, EXIF, ICC, encoding and atomic writes."""

from __future__ import annotations

import io
import os
import struct
import sys
import time
import types
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, TiffImagePlugin, features

from cutout.compose import compose
from cutout.errors import DiskFullError, InputError, OutputError, UsageError
from cutout.io import encode, images
from cutout.io.discover import _PART
from cutout.io.encode import write_all
from cutout.io.images import (
    OUTPUT_FORMATS,
    alpha_array,
    encode_image,
    format_for,
    icc_profile,
    kept_exif,
    load_image,
    needs_opaque,
    pixels,
    rgb_array,
    write_atomic,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG by hand (Pillow cannot write 16-bit RGB, nor lie about its size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _png16(array: np.ndarray, colour_type: int) -> bytes:
    rows = array.reshape(array.shape[0], -1).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    return _png(array.shape[1], array.shape[0], 16, colour_type, raw)


def _tiff16(array: np.ndarray) -> bytes:
    """A minimal uncompressed little-endian TIFF with 16 bits per sample (RGB or RGBA)."""
    height, width, channels = array.shape
    data = array.astype("<u2").tobytes()
    bits_at, data_at = 8, 8 + 2 * channels
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, channels, bits_at), (259, 3, 1, 1), (262, 3, 1, 2)]
    tags += [(273, 4, 1, data_at), (277, 3, 1, channels), (278, 4, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    tags += [(338, 3, 1, 2)] if channels == 4 else []
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        short = kind == 3 and count == 1
        ifd += (
            struct.pack("<HHIHH", tag, kind, count, value, 0)
            if short
            else struct.pack("<HHII", tag, kind, count, value)
        )
    header = b"II*\0" + struct.pack("<I", data_at + len(data))
    return header + struct.pack("<" + "H" * channels, *[16] * channels) + data + ifd + struct.pack("<I", 0)


def _saved(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


# --- broken and hostile files ---------------------------------------------------------------------------------


def test_corrupt_jpeg(tmp_path: Path) -> None:
    data = bytearray(EXAMPLE.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupt\.jpg is corrupt or truncated"):
        load_image(path)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_truncated_files(tmp_path: Path, kind: str) -> None:
    buffer = io.BytesIO()
    Image.open(EXAMPLE).save(buffer, kind)
    path = tmp_path / f"half.{kind.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_image(path)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "MP4/MOV"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "MP4/MOV"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "MKV/WebM"),
        (b"RIFF\x24\x00\x01\x00AVI LIST", "AVI"),
    ],
)
def test_a_video_given_as_an_image_is_named_as_one(tmp_path: Path, head: bytes, kind: str) -> None:
    (tmp_path / "clip.jpg").write_bytes(head + bytes(2000))
    with pytest.raises(InputError, match=rf"clip\.jpg is a video \({kind}\), not an image: .*`cutout video`"):
        load_image(tmp_path / "clip.jpg")


def test_empty_text_and_unreadable_paths(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("shopping list: eggs, milk\n")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(InputError, match=r"empty\.jpg is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(InputError, match=r"notes\.png is not an image Pillow can read \(it starts with b'shopping"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(InputError, match=r"cannot read .*folder\.jpg: is a directory"):
        load_image(tmp_path / "folder.jpg")
    with pytest.raises(InputError, match=r"dangling\.jpg: it is a broken symbolic link to .*gone\.jpg"):
        load_image(tmp_path / "dangling.jpg")
    with pytest.raises(InputError, match="no such file"):
        load_image(str(tmp_path / "missing.jpg"))


def test_too_many_pixels_is_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(30000, 30000, 8, 2, b"\0" * 64))
    assert path.stat().st_size < 200 and Image.MAX_IMAGE_PIXELS is None  # Pillow's own check is off: ours applies
    start = time.perf_counter()
    with pytest.raises(
        InputError, match=r"30000 x 30000 = 900,000,000 pixels.*limit of 250,000,000.*raise the limit with --max-pixels"
    ):
        load_image(path)
    assert time.perf_counter() - start < 0.5
    # a small limit reads in pixels too: it said "0.2 megapixels, more than the limit of 0.0"
    small = tmp_path / "small.png"
    Image.new("RGB", (600, 399)).save(small)
    with pytest.raises(InputError, match=r"= 239,400 pixels, more than the limit of 1,000;"):
        load_image(small, max_pixels=1000)


def test_a_raised_limit_gets_past_the_size_check(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(_png(3000, 3000, 8, 0, b"\0" * 3001))  # 9 MP, one row stored (Pillow fills the rest)
    with pytest.raises(InputError, match="--max-pixels"):
        load_image(path, max_pixels=1_000_000)
    for limit in (10_000_000, None):
        assert load_image(path, max_pixels=limit).size == (3000, 3000)


def test_heif_without_pillow_heif_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 64
    monkeypatch.setattr(images, "_heif_registered", False)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails, as when it is not installed
    with pytest.raises(InputError, match=r"HEIC/HEIF image.*pip install 'cutout\[heif\]'"):
        load_image(heic)
    calls: list[int] = []
    fake = types.SimpleNamespace(register_heif_opener=lambda: calls.append(1))
    monkeypatch.setitem(sys.modules, "pillow_heif", fake)
    with pytest.raises(InputError, match="corrupt or truncated"):  # registered, retried: this one is just broken
        load_image(heic)
    with pytest.raises(InputError, match="cannot read"):
        load_image(heic)
    assert calls == [1] and images._heif_registered


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif_is_read_by_pillow_itself(tmp_path: Path) -> None:
    path = _saved(Image.new("RGB", (16, 8), (200, 40, 40)), tmp_path / "red.avif", quality=95)
    assert np.abs(rgb_array(load_image(path)).astype(int) - [200, 40, 40]).max() < 12


# --- pixel modes ----------------------------------------------------------------------------------------------


def test_sixteen_bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 128, 129, 257, 32768, 65535]], np.uint16)
    image = load_image(_saved(Image.fromarray(values), tmp_path / "grey16.png"))
    assert image.mode == "I;16"
    expected = np.array([0, 0, 1, 1, 128, 255], np.uint8)
    np.testing.assert_array_equal(rgb_array(image), np.repeat(expected[None, :, None], 3, axis=2))
    tiff = load_image(_saved(Image.fromarray(values), tmp_path / "grey16.tif"))
    np.testing.assert_array_equal(rgb_array(tiff)[0, :, 0], expected)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "I;16"])
@pytest.mark.parametrize("size", [(1, 1), (17, 3), (333, 251)])
def test_pixels_equal_numpys_conversion(mode: str, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(size[0])
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    result, expected = pixels(image), np.asarray(image)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(jpeg, "JPEG")
    decoded = Image.open(jpeg)  # not loaded yet: pixels() loads it
    np.testing.assert_array_equal(pixels(decoded), np.asarray(Image.open(jpeg)))


@pytest.mark.parametrize("mode", ["I;16B", "I;16L"])
def test_sixteen_bit_byte_orders(mode: str) -> None:
    values = np.array([[65535, 32768, 257]], np.uint16)
    image = Image.frombytes(mode, (3, 1), values.astype(">u2" if mode.endswith("B") else "<u2").tobytes())
    np.testing.assert_array_equal(rgb_array(image)[0, :, 1], [255, 128, 1])


def test_thirty_two_bit_int_and_float_grey() -> None:
    integers = Image.fromarray(np.array([[-5, 0, 32768, 65535, 70000]], np.int32))
    assert integers.mode == "I"
    np.testing.assert_array_equal(rgb_array(integers)[0, :, 2], [0, 0, 128, 255, 255])
    floats = Image.fromarray(np.array([[-3.0, 0.4, 127.6, 300.0, np.nan]], np.float32))
    assert floats.mode == "F"
    np.testing.assert_array_equal(rgb_array(floats)[0, :, 0], [0, 0, 128, 255, 0])


def test_sixteen_bit_rgb_and_rgba_png_and_tiff() -> None:
    rgb = np.array([[[65535, 32768, 256], [0, 511, 65535]]], np.uint16)
    rgba = np.dstack([rgb, np.array([[65535, 0]], np.uint16)])
    for data, mode in [
        (_png16(rgb, 2), "RGB"),
        (_png16(rgba, 6), "RGBA"),
        (_tiff16(rgb), "RGB"),
        (_tiff16(rgba), "RGBA"),
    ]:
        image = load_image(data)
        assert image.mode == mode
        np.testing.assert_array_equal(rgb_array(image), [[[255, 128, 1], [0, 1, 255]]])  # Pillow keeps the high byte


def test_alpha_is_dropped_and_palettes_are_looked_up(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [250, 20, 30, 0]  # colour under zero alpha is kept: the model sees what is stored
    rgba[1, 1] = [5, 6, 7, 128]
    loaded = rgb_array(load_image(_saved(Image.fromarray(rgba), tmp_path / "rgba.png")))
    np.testing.assert_array_equal(loaded, rgba[..., :3])
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    transparent = load_image(_saved(palette, tmp_path / "palette.png", transparency=0))
    assert transparent.mode == "P" and "transparency" in transparent.info
    np.testing.assert_array_equal(rgb_array(transparent), [[[255, 0, 0], [0, 0, 255]]])
    np.testing.assert_array_equal(rgb_array(palette.convert("PA")), [[[255, 0, 0], [0, 0, 255]]])
    grey_alpha = Image.fromarray(np.array([[[40, 0], [90, 255]]], np.uint8), "LA")
    np.testing.assert_array_equal(rgb_array(grey_alpha), [[[40] * 3, [90] * 3]])
    # ... and the transparency itself is read for the cutout to keep
    np.testing.assert_array_equal(alpha_array(load_image(tmp_path / "rgba.png")), rgba[..., 3])
    np.testing.assert_array_equal(alpha_array(transparent), [[0, 255]])
    assert alpha_array(palette.convert("PA")) is None  # an alpha channel that hides nothing
    np.testing.assert_array_equal(alpha_array(grey_alpha), [[0, 255]])


def test_a_palette_with_several_transparent_entries_gives_no_warning(tmp_path: Path) -> None:
    # Pillow warns, on converting one to RGB, that such images "should be converted to RGBA images": advice for
    # the programmer, which cutout printed once per image of a folder
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 759)
    palette.putdata([0, 1, 2])
    image = load_image(_saved(palette, tmp_path / "palette.png", transparency=bytes([0, 128, 255])))
    assert isinstance(image.info["transparency"], bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(rgb_array(image), [[[255, 0, 0], [0, 0, 255], [0, 255, 0]]])
        np.testing.assert_array_equal(alpha_array(image), [[0, 128, 255]])
    keyed = load_image(
        _saved(
            Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)), tmp_path / "k.png", transparency=(4, 5, 6)
        )
    )
    np.testing.assert_array_equal(alpha_array(keyed), [[255, 0]])
    opaque = Image.fromarray(np.full((2, 2, 4), 255, np.uint8))
    assert (
        alpha_array(opaque) is None and alpha_array(palette) is None and alpha_array(Image.new("RGB", (2, 2))) is None
    )


def test_grey_bilevel_and_other_colour_spaces(tmp_path: Path) -> None:
    grey = load_image(_saved(Image.fromarray(np.array([[0, 77, 255]], np.uint8)), tmp_path / "grey.png"))
    np.testing.assert_array_equal(rgb_array(grey)[0], [[0] * 3, [77] * 3, [255] * 3])
    bilevel = Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1")
    np.testing.assert_array_equal(rgb_array(bilevel)[0], [[0] * 3, [255] * 3])
    colours = Image.fromarray(np.array([[[200, 30, 60], [10, 250, 120]]], np.uint8))
    for mode in ("YCbCr", "LAB"):
        assert np.abs(rgb_array(colours.convert(mode)).astype(int) - np.asarray(colours)).max() <= 6


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cyan = load_image(_saved(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), tmp_path / "cyan.jpg", quality=100))
    assert cyan.mode == "CMYK"
    assert np.abs(rgb_array(cyan).astype(int) - [0, 255, 255]).max() <= 2
    cyan.info["icc_profile"] = b"\0" * 16 + b"CMYK" + b"\0" * 120  # a broken CMYK profile: plain conversion
    assert np.abs(rgb_array(cyan).astype(int) - [0, 255, 255]).max() <= 2


@pytest.mark.parametrize(("format", "name"), [("GIF", "a.gif"), ("PNG", "a.png"), ("WEBP", "a.webp")])
def test_an_animation_says_only_its_first_frame_is_cut_out(tmp_path: Path, format: str, name: str) -> None:
    frames = [Image.new("RGB", (16, 8), colour) for colour in ("red", "blue", "green")]
    frames[0].save(tmp_path / name, format=format, save_all=True, append_images=frames[1:], duration=100)
    with pytest.warns(UserWarning, match=r"a\.\w+ is animated \(3 frames\): only its first frame is cut out") as caught:
        image = load_image(tmp_path / name)
    assert np.abs(rgb_array(image)[0, 0].astype(int) - [255, 0, 0]).max() <= 2  # the first frame (WebP: lossy)
    advice = str(caught[0].message)
    video = f"`cutout video {tmp_path / name}` cuts out every frame (into a.cutout{Path(name).suffix})"
    assert video in advice
    with pytest.warns(UserWarning, match="the data is animated .*save it as a file"):
        load_image((tmp_path / name).read_bytes())


def test_still_images_and_a_cameras_second_picture_say_nothing(tmp_path: Path) -> None:
    one = Image.new("RGB", (16, 8), "red")
    one.save(tmp_path / "still.gif")
    one.save(tmp_path / "one-frame.png", save_all=True)
    one.save(tmp_path / "camera.mpo", save_all=True, append_images=[Image.new("RGB", (16, 8), "blue")])
    assert Image.open(tmp_path / "camera.mpo").is_animated  # an MPO's hidden second picture counts as a frame
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("still.gif", "one-frame.png", "camera.mpo"):
            load_image(tmp_path / name)


def test_a_tiff_of_several_pages_warns_that_only_the_first_is_cut_out(tmp_path: Path) -> None:
    with Image.open(EXAMPLE) as photo:
        photo.save(tmp_path / "scan.tif", save_all=True, append_images=[photo.rotate(90), photo.rotate(180)])
        photo.save(tmp_path / "one.tif")
    with pytest.warns(UserWarning, match=r"scan\.tif is a TIFF of 3 pages: only the first is cut out"):
        first = load_image(tmp_path / "scan.tif")
    assert first.size == (512, 512)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(tmp_path / "one.tif")


def test_a_tiff_whose_later_pages_are_damaged_gives_its_first_page_with_a_warning(tmp_path: Path) -> None:
    with Image.open(EXAMPLE) as photo:
        photo.save(tmp_path / "scan.tif", save_all=True, append_images=[photo.rotate(90)], dpi=(300, 300))
        first_page = np.asarray(photo.convert("RGB"))
    data = bytearray((tmp_path / "scan.tif").read_bytes())
    second = struct.unpack("<I", data[struct.unpack("<I", data[4:8])[0] + 2 + 12 * _count(data) :][:4])[0]
    for entry in range(struct.unpack("<H", data[second : second + 2])[0]):
        at = second + 2 + 12 * entry
        if data[at : at + 2] == struct.pack("<H", 256):  # the second page's ImageWidth tag becomes an unknown one
            data[at : at + 2] = struct.pack("<H", 0xFFF0)
    (tmp_path / "scan.tif").write_bytes(bytes(data))
    # counting the pages raised Pillow's TypeError("Missing dimensions"), which ended the batch
    with pytest.warns(UserWarning, match=r"scan\.tif is a TIFF whose pages after the first are damaged"):
        image = load_image(tmp_path / "scan.tif")
    assert (rgb_array(image) == first_page).all() and image.info["dpi"] == (300, 300)  # the first page's own tags


def _count(tiff: bytes) -> int:
    """The number of entries of a little-endian TIFF's first directory."""
    return int(struct.unpack("<H", tiff[struct.unpack("<I", tiff[4:8])[0] :][:2])[0])


def test_any_failure_of_a_decoder_is_the_files_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's plugins raise more than OSError on damaged files (TypeError, KeyError, IndexError ...)
    Image.open(EXAMPLE).save(tmp_path / "a.png")

    def broken(self: ImageFile.ImageFile) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken)
    with pytest.raises(InputError, match=r"a\.png is corrupt or truncated: list index out of range"):
        load_image(tmp_path / "a.png")


# --- EXIF and ICC ---------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied_and_the_icc_profile_kept(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = [255, 0, 0]  # red in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = _saved(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, icc_profile=SRGB, quality=95)
    image = load_image(path)
    assert image.size == (20, 40)
    upright = rgb_array(image)
    assert upright[:5, -5:, 0].mean() > 200 and upright[:5, :5, 0].mean() < 50  # now top-right
    assert icc_profile(image) == SRGB


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif.update({0x0112: 6, 0x010F: "Canon", 0x0110: "EOS R5", 0x013B: "A. Photographer", 0x8298: "(c) 2026 A."})
    exif[0x0131] = "Camera firmware 1.0"
    exif.get_ifd(0x8769).update({0x9003: "2026:05:04 10:11:12", 0x9011: "+02:00", 0xA431: "SERIAL123"})
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 5.0)})  # where it was taken
    return exif


@pytest.mark.parametrize("format", ["png", "jpg", "webp", "tif"])
def test_exif_date_author_and_copyright_are_kept_not_the_place(tmp_path: Path, format: str) -> None:
    path = _saved(Image.fromarray(np.zeros((20, 40, 3), np.uint8)), tmp_path / "a.jpg", exif=_camera_exif())
    kept = kept_exif(load_image(path))
    assert kept is not None
    data = encode_image(np.zeros((40, 20, 3 if format == "jpg" else 4), np.uint8), format, exif=kept)
    with Image.open(io.BytesIO(data)) as written:
        exif = written.getexif()
        software = written.info.get("Software") if format == "png" else exif.get(0x0131)
    assert software == encode.SOFTWARE  # cutout's mark, not the camera's firmware
    assert (exif[0x010F], exif[0x0110], exif[0x013B], exif[0x8298]) == (
        "Canon",
        "EOS R5",
        "A. Photographer",
        "(c) 2026 A.",
    )
    assert 0x0112 not in exif  # the pixels are upright: an orientation tag would turn them again
    assert not exif.get_ifd(0x8825)  # no GPS
    taken = exif.get_ifd(0x8769)
    if format == "tif":  # Pillow's libtiff writer cannot add the Exif IFD
        assert not taken
    else:
        assert taken == {0x9003: "2026:05:04 10:11:12", 0x9011: "+02:00"}  # no serial number either


def test_a_tiffs_own_tags_are_its_exif(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.update({0x8298: "(c) 2026 A.", 0x013B: "A. Photographer", 0x0132: "2026:05:04 10:11:12"})
    path = _saved(Image.new("RGB", (8, 8)), tmp_path / "scan.tif", exif=exif)
    kept = kept_exif(load_image(path))
    assert kept is not None and dict(kept) == {
        0x8298: "(c) 2026 A.",
        0x013B: "A. Photographer",
        0x0132: "2026:05:04 10:11:12",
    }


def test_damaged_or_missing_exif_is_no_error(tmp_path: Path) -> None:
    assert kept_exif(load_image(_saved(Image.new("RGB", (8, 8)), tmp_path / "plain.jpg"))) is None
    broken = Image.new("RGB", (8, 8))
    broken.info["exif"] = b"Exif\0\0MM\0*\0\0\0\x08\xff\xff"  # an IFD of 65535 entries that are not there
    with pytest.warns(UserWarning, match="Corrupt EXIF data"):  # Pillow's; the command line names the file
        assert kept_exif(broken) is None


@pytest.mark.parametrize(
    ("damage", "left"),
    [
        ({0x0128: 39682}, {}),  # a unit that is none of none, inch, centimetre: the resolution means nothing
        ({0x0128: 0}, {}),
        ({0x011A: TiffImagePlugin.IFDRational(0, 0)}, {0x011B: 300.0, 0x0128: 2}),  # 0 / 0: not a number
        ({0x011A: float("inf"), 0x011B: float("inf")}, {0x0128: 2}),
        ({0x011B: TiffImagePlugin.IFDRational(1, 0)}, {0x011A: 300.0, 0x0128: 2}),
    ],
)
@pytest.mark.parametrize("format", ["tif", "jpg"])
def test_a_damaged_print_resolution_is_left_out(
    tmp_path: Path, damage: dict[int, object], left: dict[int, object], format: str
) -> None:
    # libtiff refused it: with --format tif the photo failed as "unexpected RuntimeError: Error setting from
    # dictionary; please report it" (found by fuzzing the image batch)
    exif = Image.Exif()
    exif.update({0x011A: 300.0, 0x011B: 300.0, 0x0128: 2, 0x8298: "(c) 2026 A."})
    exif.update(damage)
    kept = kept_exif(load_image(_saved(Image.new("RGB", (8, 8)), tmp_path / "photo.jpg", exif=exif)))
    assert kept is not None and {k: v for k, v in kept.items() if k != 0x8298} == left
    with Image.open(io.BytesIO(encode_image(np.zeros((8, 8, 3), np.uint8), format, exif=kept))) as written:
        assert written.getexif()[0x8298] == "(c) 2026 A."


def test_icc_profile_only_when_it_describes_rgb() -> None:
    image = Image.new("RGB", (1, 1))
    assert icc_profile(image) is None
    image.info["icc_profile"] = SRGB
    assert icc_profile(image) == SRGB
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert icc_profile(image) is None


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_icc_profile_survives_every_format(format: str) -> None:
    array = np.full((8, 8, 3), (10, 120, 240), np.uint8)
    data = encode_image(array, format, icc_profile=SRGB)
    assert Image.open(io.BytesIO(data)).info.get("icc_profile") == SRGB
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert not Image.open(io.BytesIO(encode_image(array, format, icc_profile=lab))).info.get("icc_profile")
    mask = encode_image(array[..., 0], format, icc_profile=SRGB)  # an RGB profile never labels a grey mask
    assert not Image.open(io.BytesIO(mask)).info.get("icc_profile")


@pytest.mark.parametrize("format", OUTPUT_FORMATS)
def test_every_file_says_cutout_made_it_and_nothing_else_does(format: str, tmp_path: Path) -> None:
    array = np.full((8, 8, 3), (10, 120, 240), np.uint8)
    for shape in (array, array[..., 0]):  # a cutout or composite, and a mask
        ours = tmp_path / f"ours.{format}"
        ours.write_bytes(encode_image(shape, format))
        assert encode.made_by_cutout(ours)
        if format == "jpg":  # EXIF in JPEG's APP1 starts "Exif\0\0", or other readers skip it
            data = ours.read_bytes()
            app1 = data.index(b"\xff\xe1") + 4  # the marker, then the segment's length
            assert data[app1 : app1 + 8] in (b"Exif\0\0MM", b"Exif\0\0II")
        assert encode.SOFTWARE.startswith("cutout ")
    theirs = tmp_path / f"theirs.{format}"
    Image.fromarray(array).save(theirs)
    text = tmp_path / f"text.{format}"
    text.write_text("not an image")
    assert not encode.made_by_cutout(theirs) and not encode.made_by_cutout(text)
    assert not encode.made_by_cutout(tmp_path / "missing.png") and not encode.made_by_cutout(tmp_path)
    if hasattr(os, "mkfifo"):  # a pipe is never read: opening it would wait for a writer forever
        os.mkfifo(tmp_path / f"pipe.{format}")
        assert not encode.made_by_cutout(tmp_path / f"pipe.{format}")


# --- encoding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 3), (37, 53, 4), (1, 1, 4), (300, 2, 3)])
def test_our_png_decodes_bit_exactly(shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    array = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    for block_bytes in (1 << 20, 100):  # one block, and many blocks (row boundaries between blocks)
        monkeypatch.setattr(encode, "_PNG_BLOCK_BYTES", block_bytes)
        image = Image.open(io.BytesIO(encode_image(array, "png")))
        assert image.mode == {1: "L", 3: "RGB", 4: "RGBA"}[1 if len(shape) == 2 else shape[2]]
        np.testing.assert_array_equal(np.asarray(image), array)


def test_the_fused_cutout_png_is_exactly_the_composed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (41, 29, 3), dtype=np.uint8)
    alpha = rng.choice(np.array([0, 0, 1, 128, 254, 255], np.uint8), (41, 29))
    for block_bytes in (1 << 20, 300):  # one block, and many
        monkeypatch.setattr(encode, "_PNG_BLOCK_BYTES", block_bytes)
        fused = encode.encode_cutout_png(rgb, alpha, icc_profile=SRGB)
        assert fused == encode_image(compose(rgb, alpha, None), "png", icc_profile=SRGB)
    decoded = np.asarray(Image.open(io.BytesIO(fused)))
    np.testing.assert_array_equal(decoded[..., 3], alpha)
    np.testing.assert_array_equal(decoded[alpha > 0][:, :3], rgb[alpha > 0])
    assert not decoded[alpha == 0].any()


def test_png_rows_use_the_up_filter_after_the_first() -> None:
    array = np.random.default_rng(1).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    data = encode_image(array, "png")
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    raw = zlib.decompress(data[idat + 4 : idat + 4 + length])
    filters = [raw[row * 13] for row in range(5)]
    assert filters == [0, 2, 2, 2, 2]
    np.testing.assert_array_equal(np.frombuffer(raw[14:26], np.uint8), (array[1] - array[0]).ravel())


def test_pillow_formats_decode_close_to_the_array() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.dstack([xx * 4, yy * 4, (xx + yy) * 2]).astype(np.uint8)
    for format in ("webp", "jpg"):
        decoded = np.asarray(Image.open(io.BytesIO(encode_image(smooth, format))).convert("RGB")).astype(int)
        assert np.abs(decoded - smooth).mean() < 2
    rgba = np.dstack([smooth, smooth[..., 0]])
    tiff = Image.open(io.BytesIO(encode_image(rgba, "tif")))
    assert tiff.info["compression"] == "tiff_adobe_deflate"
    np.testing.assert_array_equal(np.asarray(tiff), rgba)
    webp = Image.open(io.BytesIO(encode_image(rgba, "webp")))
    assert webp.mode == "RGBA" and np.abs(np.asarray(webp)[..., 3].astype(int) - rgba[..., 3]).max() <= 2


def test_encode_rejects_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="JPEG has no alpha"):
        encode_image(np.zeros((4, 4, 4), np.uint8), "jpg")
    with pytest.raises(ValueError, match="unknown output format 'bmp'"):
        encode_image(np.zeros((4, 4, 3), np.uint8), "bmp")
    for bad in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="expected a non-empty uint8"):
            encode_image(bad, "png")
    # libwebp said "encoding error 5: Image size exceeds WebP limit", libjpeg "broken data stream when writing"
    with pytest.raises(OutputError, match="a WEBP image is at most 16383 pixels a side and this one is 16384 x 2"):
        encode_image(np.zeros((2, 16384, 4), np.uint8), "webp")
    with pytest.raises(OutputError, match="a JPG image is at most 65500 pixels a side .* choose --format png or tif"):
        encode_image(np.zeros((65501, 1, 3), np.uint8), "jpg")
    assert encode_image(np.zeros((2, 16383, 4), np.uint8), "webp")[:4] == b"RIFF"
    assert encode_image(np.zeros((2, 70000, 4), np.uint8), "tif")[:2] == b"II"


def test_format_for() -> None:
    assert format_for(Path("a.PNG"), None) == "png"
    assert format_for(Path("a.jpeg"), None) == "jpg" and format_for(Path("a.tiff"), None) == "tif"
    assert format_for(Path("a.webp"), None) == "webp"
    assert format_for(Path("a.img"), "JPEG") == "jpg" and format_for(Path("a.jpeg"), "jpg") == "jpg"
    with pytest.raises(UsageError, match=r"a\.png is named as PNG but --format JPEG asks for JPG; name it a\.jpg"):
        format_for(Path("a.png"), "JPEG")  # the file would hold JPEG bytes under a PNG name
    assert format_for(None, None) == "png" and format_for(None, "webp") == "webp"
    with pytest.raises(UsageError, match=r"a\.bmp from its extension \(\.bmp\).*png, webp, jpg, tif with --format"):
        format_for(Path("a.bmp"), None)
    with pytest.raises(UsageError, match=r"\(none\)"):
        format_for(Path("cutout"), None)
    with pytest.raises(UsageError, match="unknown output format 'gif'; choose one of png, webp, jpg, tif"):
        format_for(Path("a.png"), "gif")
    assert needs_opaque("jpg") and not any(needs_opaque(f) for f in ("png", "webp", "tif"))


# --- atomic writes --------------------------------------------------------------------------------------------


def test_write_atomic_creates_folders_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.png"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second" and os.listdir(target.parent) == ["out.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600


def test_write_atomic_cleans_up_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DiskFullError, match=r"cannot write .*out\.png: no space left on device; free some space"):
        write_atomic(target, b"new" * 1000)
    monkeypatch.undo()

    def interrupted(source: object, destination: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new")
    assert os.listdir(tmp_path) == ["out.png"] and target.read_bytes() == b"old"  # no .part file, old file intact


@pytest.mark.parametrize(
    "name",
    [
        "x" * 251 + ".png",
        "é" * 125 + ".png",
        "ü" * 3 + ".png",
        pytest.param(
            os.fsdecode(b"caf\xe9" * 62 + b".png"),  # Latin-1, not UTF-8: its bytes reach Python as surrogates
            marks=pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="names are Unicode there"),
        ),
    ],
)
def test_write_atomic_writes_any_name_the_file_system_takes(tmp_path: Path, name: str) -> None:
    # the temporary name adds 15 bytes: a 251-byte output name failed with "File name too long"
    assert len(os.fsencode(name)) <= 255
    write_atomic(tmp_path / name, b"data")
    assert os.listdir(tmp_path) == [name] and (tmp_path / name).read_bytes() == b"data"
    temporary = encode.temporary_path(tmp_path / name, ".mp4")
    assert len(os.fsencode(temporary.name)) <= 255 and temporary.name.endswith(".part.mp4")
    assert temporary.name[1:].startswith(name[: len(temporary.name) - 20])  # whole characters kept
    assert _PART.match(temporary.name)  # what a killed run leaves is found and removed by the next


def test_write_atomic_says_when_a_name_is_too_long(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"its name is 260 bytes, more than the 255 a file name may have; use a"):
        write_atomic(tmp_path / ("x" * 256 + ".png"), b"data")
    assert os.listdir(tmp_path) == []


class _Trickle(io.RawIOBase):
    """A stream that takes at most ``step`` bytes per write, as a pipe or a filling disk may, then fails."""

    def __init__(self, step: int, fail_after: int | None = None, error: OSError | None = None) -> None:
        self.step, self.fail_after, self.error, self.received = step, fail_after, error, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.fail_after is not None and len(self.received) >= self.fail_after:
            if self.error is None:
                return 0
            raise self.error
        taken = bytes(memoryview(data).cast("B")[: self.step])  # type: ignore[arg-type]
        self.received += taken
        return len(taken)


def test_write_all_writes_every_byte_of_short_writes() -> None:
    data = bytes(range(256)) * 1000
    stream = _Trickle(step=65536)
    write_all(stream, data)  # type: ignore[arg-type]
    assert bytes(stream.received) == data  # stream.write(data) alone takes 65536 and says so only in its result


@pytest.mark.parametrize(
    ("error", "message"),
    [(OSError(28, "No space left on device"), "no space left on device"), (None, "the stream took no bytes")],
)
def test_write_all_fails_loudly_when_the_stream_stops_taking_bytes(error: OSError | None, message: str) -> None:
    with pytest.raises(OutputError, match=f"cannot write to standard output: {message}"):
        write_all(_Trickle(step=1000, fail_after=3000, error=error), bytes(10_000))  # type: ignore[arg-type]
    with pytest.raises(BrokenPipeError):  # the reader went away: the command ends quietly (exit 1)
        write_all(_Trickle(step=1000, fail_after=0, error=BrokenPipeError(32, "Broken pipe")), b"x")  # type: ignore[arg-type]


def test_write_atomic_into_an_impossible_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    for target in (blocker / "out.png", blocker / "sub" / "out.png"):
        with pytest.raises(OutputError, match=r"cannot write .*out\.png: .*file\.txt is a file, not a folder; choose"):
            write_atomic(target, b"data")
    assert os.listdir(tmp_path) == ["file.txt"]


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "size", "options"),
    [
        ("RGB", (333, 251), {"quality": 90}),
        ("RGB", (640, 480), {"quality": 75, "progressive": True}),
        ("RGB", (200, 120), {"quality": 95, "subsampling": 0}),  # 4:4:4
        ("RGB", (97, 131), {"quality": 85, "subsampling": 1}),  # 4:2:2
        ("L", (333, 251), {"quality": 90}),
    ],
)
def test_plain_jpegs_decode_to_pillows_pixels(tmp_path: Path, mode: str, size: tuple, options: dict) -> None:
    photo = Image.open(EXAMPLE).convert(mode).resize(size)
    data = _jpeg(photo, **options)
    (tmp_path / "p.jpg").write_bytes(data)
    expected = images.rgb_array(images.load_image(data))
    for source in (data, tmp_path / "p.jpg"):
        rgb = images.plain_jpeg_rgb(source)
        assert rgb is not None and rgb.flags.writeable
        np.testing.assert_array_equal(rgb, expected)


def test_other_jpegs_are_left_to_pillow(tmp_path: Path) -> None:
    photo = Image.open(EXAMPLE).resize((320, 200))
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = 6
    upright = Image.Exif()
    upright[images.ORIENTATION_TAG] = 1
    assert images.plain_jpeg_rgb(_jpeg(photo, exif=upright.tobytes())) is not None
    whole = _jpeg(photo)
    (tmp_path / "missing.jpg").unlink(missing_ok=True)
    for refused in [
        _jpeg(photo, exif=exif.tobytes()),  # turned: Pillow turns it
        _jpeg(photo.convert("CMYK")),  # CMYK: colour-managed by rgb_array
        whole[: len(whole) // 2],  # truncated: Pillow says so
        b"\xff\xd8\xff" + b"\x00" * 100,  # corrupt
        encode.encode_png(np.zeros((4, 4, 3), np.uint8)),  # not a JPEG
        tmp_path / "missing.jpg",
    ]:
        assert images.plain_jpeg_rgb(refused) is None
    assert images.plain_jpeg_rgb(whole, max_pixels=320 * 200 - 1) is None
    assert images.plain_jpeg_rgb(whole, max_pixels=320 * 200) is not None


def test_a_jpeg_with_broken_exif_decodes_as_pillow_does() -> None:
    data = _jpeg(Image.new("RGB", (64, 48), (10, 200, 30)), exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns of the corrupt EXIF
        expected = images.rgb_array(images.load_image(data))
        rgb = images.plain_jpeg_rgb(data)
    assert rgb is not None
    np.testing.assert_array_equal(rgb, expected)
