"""Text notes kept from a photo in a PNG cutout: title, author, description, copyright, comment; nothing else."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from cutout.batch import prepare
from cutout.io.encode import encode_cutout_png, encode_image
from cutout.io.images import KEPT_TEXT_KEYWORDS, kept_text
from cutout.registry import get_spec

NOTES = {
    "Title": "Sneaker, side view",
    "Author": "Jane Doe",
    "Description": "Red sneaker on a white table\nsecond line",
    "Copyright": "© 2026 Jane Doe, all rights reserved",  # not Latin-1 ("©" is, "—" below is not)
    "Comment": "shot for the spring catalogue — take 3",
}
LEFT_OUT = {
    "Software": "GIMP 2.10",  # the cutout's own Software is cutout
    "date:create": "2026-01-02T03:04:05+00:00",  # ImageMagick: a date of the original file, not of the cutout
    "parameters": "a red sneaker, studio light, Steps: 20",  # an image generator's prompt
    "Warning": "   ",  # empty
}


def _png_with_notes(path: Path, notes: dict[str, str], *, compressed: str = "") -> Path:
    info = PngImagePlugin.PngInfo()
    for keyword, value in notes.items():
        if keyword == compressed:
            info.add_text(keyword, value, zip=True)  # zTXt
        else:
            try:
                value.encode("latin-1")
                info.add_text(keyword, value)  # tEXt
            except UnicodeEncodeError:
                info.add_itxt(keyword, value, lang="en")  # iTXt with a language
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(path, pnginfo=info)
    return path


def _written_notes(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as written:
        written.load()
        return {k: str(v) for k, v in written.text.items()}


def test_a_pngs_notes_are_kept_in_a_png_cutout_and_nothing_else(tmp_path: Path) -> None:
    # text chunks were dropped: a cutout lost the title, author and copyright its photo carried
    path = _png_with_notes(tmp_path / "photo.png", {**NOTES, **LEFT_OUT}, compressed="Description")
    prepared = prepare(get_spec("u2netp"), path, 10**8)
    assert prepared.text == NOTES
    pixels, mask = np.zeros((24, 32, 3), np.uint8), np.full((24, 32), 255, np.uint8)
    for data in (
        encode_cutout_png(pixels, mask, text=prepared.text),
        encode_image(np.dstack([pixels, mask]), "png", text=prepared.text),
        encode_image(mask, "png", text=prepared.text),
    ):
        written = _written_notes(data)
        assert written.pop("Software").startswith("cutout")
        assert written == NOTES


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Shot on the roof", "Shot on the roof"),
        ("Überschrift", "Überschrift"),  # UTF-8
    ],
)
@pytest.mark.parametrize("suffix", [".jpg", ".gif"])
def test_a_jpeg_or_gif_comment_becomes_the_pngs(tmp_path: Path, comment: str, expected: str, suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(path, comment=comment.encode())
    assert kept_text(Image.open(path)) == {"Comment": expected}
    assert prepare(get_spec("u2netp"), path, 10**8).text == {"Comment": expected}


def test_odd_comments_are_read_or_left_out() -> None:
    def jpeg(comment: bytes) -> Image.Image:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buffer, "JPEG", comment=comment)
        return Image.open(io.BytesIO(buffer.getvalue()))

    assert kept_text(jpeg("Überschrift".encode("latin-1"))) == {"Comment": "Überschrift"}  # Latin-1, not UTF-8
    assert kept_text(jpeg(b"ends as a C string\0")) == {"Comment": "ends as a C string"}
    assert kept_text(jpeg(b"a\0b")) is None  # no PNG text may hold a NUL
    long = PngImagePlugin.PngInfo()
    long.add_text("Title", "x" * 70000)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=long)
    assert kept_text(Image.open(buffer)) is None  # a payload, not a note
    assert kept_text(Image.new("RGB", (4, 4))) is None
    assert set(NOTES) <= set(KEPT_TEXT_KEYWORDS)


def test_other_formats_carry_no_png_text(tmp_path: Path) -> None:
    for format in ("jpg", "webp", "tif"):  # their EXIF and XMP carry the same facts where the photo had them
        data = encode_image(np.zeros((8, 8, 3), np.uint8), format, text=NOTES)
        with Image.open(io.BytesIO(data)) as written:
            assert "Title" not in written.info and "comment" not in written.info


def test_a_bad_keyword_is_refused() -> None:
    for keyword in ("", "x" * 80, "tab\there", "nul\0", "Überschrift — Titel"):
        with pytest.raises(ValueError, match="keyword"):
            encode_image(np.zeros((4, 4), np.uint8), "png", text={keyword: "value"})


@pytest.mark.integration
def test_cutout_image_keeps_them(tmp_path: Path, u2netp_onnx: Path) -> None:
    source = Image.open(Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg")
    info = PngImagePlugin.PngInfo()
    for keyword, value in NOTES.items():
        info.add_itxt(keyword, value)
    source.save(tmp_path / "photo.png", pnginfo=info)
    env = {**os.environ, "CUTOUT_OFFLINE": "1"}
    command = [sys.executable, "-m", "cutout", "image", str(tmp_path / "photo.png"), str(tmp_path / "out.png")]
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=180)
    written = _written_notes((tmp_path / "out.png").read_bytes())
    assert written.pop("Software").startswith("cutout")
    assert written == NOTES


def test_the_apis_pil_result_carries_them(tmp_path: Path, u2netp_onnx: Path) -> None:
    import cutout

    source = Image.open(Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg")
    info = PngImagePlugin.PngInfo()
    for keyword, value in {**NOTES, **LEFT_OUT}.items():
        info.add_itxt(keyword, value)
    source.resize((160, 160)).save(tmp_path / "photo.png", pnginfo=info)
    with Image.open(tmp_path / "photo.png") as photo:
        result = cutout.remove(photo)
    assert {key: result.info[key] for key in NOTES} == NOTES  # as Pillow gives a PNG's, for pnginfo on saving
    assert not set(LEFT_OUT) & set(result.info)
