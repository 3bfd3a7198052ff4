"""IPTC-IIM (an agency's credit line, copyright notice, caption, keywords) carried into the cutout's XMP."""

from __future__ import annotations

import io
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from cutout.batch import prepare
from cutout.io.images import kept_xmp_of
from cutout.io.iptc import parse_iim, xmp_with_iim
from cutout.io.xmp import RDF, kept_xmp
from cutout.registry import get_spec

DC = "{http://purl.org/dc/elements/1.1/}"
PS = "{http://ns.adobe.com/photoshop/1.0/}"
CORE = "{http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/}"
SHUTTERSTOCK = "u2net_lionel-messi-athletes-fashion.jpg"  # IIM only, no XMP: REX/Shutterstock, via AP
GETTY = "u2net_olympic-athletes-need-to-know-2018-winter-1.jpg"  # IIM only (UTF-8 declared): Getty Images


def _dataset(record: int, dataset: int, value: bytes) -> bytes:
    if len(value) < 0x8000:
        return bytes([0x1C, record, dataset]) + len(value).to_bytes(2, "big") + value
    return bytes([0x1C, record, dataset, 0x80, 4]) + len(value).to_bytes(4, "big") + value  # extended


def _iim(*datasets: tuple[int, bytes], utf8: bool = True) -> bytes:
    head = _dataset(1, 90, b"\x1b%G") if utf8 else b""
    return head + _dataset(2, 0, b"\x00\x04") + b"".join(_dataset(2, number, value) for number, value in datasets)


def _resource(ident: int, data: bytes) -> bytes:
    """A Photoshop image resource: "8BIM", id, empty Pascal name (padded to even), size, data padded to even."""
    return b"8BIM" + ident.to_bytes(2, "big") + b"\0\0" + len(data).to_bytes(4, "big") + data + b"\0" * (len(data) % 2)


def _jpeg_with(iim: bytes, xmp: bytes | None = None) -> bytes:
    """A photo as an agency's system saves it: the IIM block in APP13 (Photoshop 3.0), XMP optionally in APP1."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), (200, 80, 40), np.uint8)).save(buffer, "JPEG", **({"xmp": xmp} if xmp else {}))
    data = buffer.getvalue()
    payload = b"Photoshop 3.0\0" + _resource(0x0404, iim)
    app13 = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:2] + app13 + data[2:]


def _description(packet: bytes | None) -> dict[str, list[str]]:
    """Every property of the packet (all its Descriptions) -> its texts (a list's items, an alternative's)."""
    assert packet is not None
    root = ET.fromstring(packet)
    found: dict[str, list[str]] = {}
    for description in root.iter(f"{{{RDF}}}Description"):
        for name, value in description.attrib.items():
            found.setdefault(name, []).append(value)
        for child in description:
            items = [li.text or "" for li in child.iter(f"{{{RDF}}}li")]
            found.setdefault(child.tag, []).extend(items or [child.text or ""])
    return found


def test_an_agency_photo_keeps_its_credit_copyright_caption_and_keywords(shared: Path, tmp_path: Path) -> None:
    photo = shared / "eval" / "people" / SHUTTERSTOCK
    with Image.open(photo) as image:
        assert "xmp" not in image.info  # the IIM block is all it has
    result = subprocess.run(
        [sys.executable, "-m", "cutout", "image", "-q", str(photo), str(tmp_path / "out.png")], capture_output=True
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out.png") as cutout:
        found = _description(cutout.info["xmp"].encode() if isinstance(cutout.info["xmp"], str) else cutout.info["xmp"])
    assert found[f"{PS}Credit"] == ["Manu Fernandez/AP/REX/Shutterstock"]
    assert found[f"{DC}rights"] == ["Copyright (c) 2019 Shutterstock. No use without permission."]
    assert found[f"{DC}creator"] == ["Manu Fernandez/AP/REX/Shutterstock"]
    assert found[f"{DC}description"][0].startswith("Mandatory Credit: Photo by Manu Fernandez/AP/REX/Shutterstock")
    assert found[f"{DC}subject"][:5] == ["SOCCER", "CHAMPIONS", "LEAGUE", "BARCELONA", "SPAIN"]
    assert found[f"{PS}DateCreated"] == ["2019-04-16"]
    assert found[f"{PS}Source"] == ["REX/Shutterstock"] and found[f"{DC}title"] == ["10208611ai"]


@pytest.mark.parametrize("format", ["png", "jpg", "webp", "tif"])
def test_every_format_carries_it(shared: Path, format: str) -> None:
    from cutout.io.encode import encode_image

    prepared = prepare(get_spec("u2netp"), shared / "eval" / "people" / GETTY, 10**8)
    assert prepared.xmp is not None
    data = encode_image(np.zeros((8, 8, 3), np.uint8), format, xmp=prepared.xmp)
    with Image.open(io.BytesIO(data)) as image:
        packet = bytes(image.tag_v2[700]) if format == "tif" else image.info["xmp"]
    found = _description(packet if isinstance(packet, bytes) else packet.encode())
    assert found[f"{PS}Credit"] == ["Getty Images"] and found[f"{DC}rights"] == ["2018 Getty Images"]
    assert found[f"{PS}City"] == ["San Jose"] and found[f"{CORE}Location"] == ["SAP Center"]
    assert found[f"{CORE}CountryCode"] == ["USA"] and found[f"{PS}Instructions"] == ["Not Released (NR)"]
    assert found[f"{PS}DateCreated"] == ["2018-01-05T21:50:00-08:00"]
    assert not any("WorkflowStatus" in text for texts in found.values() for text in texts)  # 2:243, Getty's own


def test_the_photos_own_xmp_wins_and_the_rest_is_added() -> None:
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        b'photoshop:Credit="Jane Doe Studio"/></rdf:RDF></x:xmpmeta>'
    )
    data = _jpeg_with(_iim((110, b"Old Credit"), (116, b"(c) Jane Doe"), (25, b"shoe"), (25, b"red")), xmp)
    with Image.open(io.BytesIO(data)) as image:
        found = _description(kept_xmp_of(image))
    assert found[f"{PS}Credit"] == ["Jane Doe Studio"]  # not "Old Credit" beside it
    assert found[f"{DC}rights"] == ["(c) Jane Doe"] and found[f"{DC}subject"] == ["shoe", "red"]


def test_character_sets_controls_repeats_and_long_values() -> None:
    caption = "Zoë Ångström in Łódź, 東京 "
    utf8 = _iim((120, caption.encode()), (80, b"A\x00B\x07"), (25, b"red"), (25, b"red"), (25, b"  "))
    with Image.open(io.BytesIO(_jpeg_with(utf8))) as image:
        found = _description(kept_xmp_of(image))
    assert found[f"{DC}description"] == [caption.strip()]
    long = caption * 2000  # 70,000 bytes: an extended dataset (a TIFF's block can hold one, a JPEG's cannot)
    assert _description(xmp_with_iim(None, parse_iim(_iim((120, long.encode())))))[f"{DC}description"] == [long.strip()]
    assert found[f"{DC}creator"] == ["AB"] and found[f"{DC}subject"] == ["red"]  # no NUL or BEL in XML
    # no character set declared: UTF-8 if it decodes as such, else Windows-1252 (older Windows tools)
    legacy = _iim((5, "Café".encode("cp1252")), (105, "Crème brûlée".encode()), utf8=False)
    with Image.open(io.BytesIO(_jpeg_with(legacy))) as image:
        found = _description(kept_xmp_of(image))
    assert found[f"{DC}title"] == ["Café"] and found[f"{PS}Headline"] == ["Crème brûlée"]


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [
        (b"20180105", b"215000-0800", "2018-01-05T21:50:00-08:00"),
        (b"20180105", b"", "2018-01-05"),
        (b"20180105", b"2150", "2018-01-05"),  # not HHMMSS+HHMM: the day alone
        (b"20180100", b"", "2018-01"),  # 00: the day unknown
        (b"20180000", b"", "2018"),
        (b"20181305", b"", "2018"),
        (b"00000000", b"", None),
        (b"2018-1-5", b"", None),
    ],
)
def test_the_date_created(date: bytes, time: bytes, expected: str | None) -> None:
    packet = xmp_with_iim(None, parse_iim(_iim((55, date), (60, time))))
    assert (_description(packet)[f"{PS}DateCreated"] if packet else [None]) == [expected]


def test_tiff_and_png_blocks_are_read_too(tmp_path: Path) -> None:
    iim = _iim((110, b"Agency"), (116, b"(c) Agency"))
    pixels = Image.fromarray(np.full((16, 16, 3), 90, np.uint8))
    pixels.save(tmp_path / "a.tif", tiffinfo={33723: iim})  # Photoshop's IPTC/NAA tag
    for name, data in (("raw", iim), ("8bim", _resource(0x0404, iim))):  # ImageMagick's and exiftool's ways
        hexed = data.hex()
        text = f"\niptc\n{len(data):8d}\n" + "\n".join(hexed[i : i + 72] for i in range(0, len(hexed), 72)) + "\n"
        info = PngImagePlugin.PngInfo()
        info.add_text("Raw profile type iptc", text, zip=True)
        pixels.save(tmp_path / f"{name}.png", pnginfo=info)
    for name in ("a.tif", "raw.png", "8bim.png"):
        with Image.open(tmp_path / name) as image:
            found = _description(kept_xmp_of(image))
        assert found[f"{PS}Credit"] == ["Agency"] and found[f"{DC}rights"] == ["(c) Agency"], name


def test_a_damaged_block_keeps_what_came_before_and_never_fails_the_photo() -> None:
    whole = _iim((110, b"Agency"), (116, b"(c) Agency"), (120, b"A caption"))
    cut = whole[: whole.index(b"A caption") + 3]  # inside the caption
    assert _description(xmp_with_iim(None, parse_iim(cut)))[f"{DC}rights"] == ["(c) Agency"]
    rng = random.Random(5)
    for _ in range(400):  # random damage: never an error, and what is written parses as XML
        data = bytearray(whole)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randrange(len(data) + 1)]
        with Image.open(io.BytesIO(_jpeg_with(bytes(data)))) as image:
            packet = kept_xmp_of(image)
        if packet is not None:
            assert kept_xmp(packet) is not None


def test_nothing_to_carry_gives_none() -> None:
    with Image.open(io.BytesIO(_jpeg_with(_iim((0, b"\x00\x04")) + _dataset(2, 221, b"workflow")))) as image:
        assert kept_xmp_of(image) is None  # only an agency's own records (2:221)
    assert kept_xmp_of(Image.new("RGB", (4, 4))) is None
