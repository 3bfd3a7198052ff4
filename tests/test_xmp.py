"""XMP kept from a photo: keywords, title, caption, rating and rights stay; GPS, serials, raw settings do not."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from cutout.batch import prepare
from cutout.io.encode import encode_cutout_png, encode_image
from cutout.io.images import kept_xmp_of, load_image
from cutout.io.xmp import MAX_PACKET, RDF, kept_xmp
from cutout.registry import get_spec

# what Lightroom Classic writes into an exported JPEG, cut down: one Description with attributes and elements
LIGHTROOM = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
   xmp:CreatorTool="Adobe Photoshop Lightroom Classic 12.0" xmp:Rating="4" xmp:Label="Red"
   tiff:Orientation="6" tiff:Make="Canon" exif:GPSLatitude="48,51.5N" aux:SerialNumber="123456789"
   photoshop:Headline="Red sneaker" crs:HasCrop="True" crs:CropTop="0.1" xmpMM:InstanceID="xmp.iid:abc">
   <dc:subject><rdf:Bag><rdf:li>shoe</rdf:li><rdf:li>red</rdf:li></rdf:Bag></dc:subject>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Sneaker, side view</rdf:li></rdf:Alt></dc:title>
   <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">(c) Jane Doe</rdf:li></rdf:Alt></dc:rights>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>Products|Shoes</rdf:li></rdf:Bag></lr:hierarchicalSubject>
   <xmp:Thumbnails><rdf:Alt><rdf:li>base64 of the original</rdf:li></rdf:Alt></xmp:Thumbnails>
   <xmpMM:History><rdf:Seq><rdf:li xmpMM:action="saved"/></rdf:Seq></xmpMM:History>
   <Iptc4xmpExt:LocationShown><rdf:Bag><rdf:li rdf:parseType="Resource"><Iptc4xmpExt:City>Paris</Iptc4xmpExt:City>
    <exif:GPSLongitude>2,17.7E</exif:GPSLongitude></rdf:li></rdf:Bag></Iptc4xmpExt:LocationShown>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
KEPT = [b"shoe", b"Sneaker, side view", b"(c) Jane Doe", b'xmp:Rating="4"', b"Products|Shoes", b"Red sneaker", b"Paris"]
LEFT_OUT = [
    b"GPS",
    b"Serial",
    b"Orientation",
    b"crs:",
    b"CreatorTool",
    b"InstanceID",
    b"History",
    b"Thumbnails",
    b"Make",
]


def _check(packet: bytes | None) -> None:
    assert packet is not None and packet.startswith(b"<?xpacket begin=") and packet.endswith(b'<?xpacket end="w"?>')
    for text in KEPT:
        assert text in packet, text
    for text in LEFT_OUT:
        assert text not in packet, text
    ET.fromstring(packet)  # well-formed


def test_keywords_title_rights_and_rating_are_kept_gps_serials_and_raw_settings_are_not() -> None:
    packet = kept_xmp(LIGHTROOM)
    _check(packet)
    assert kept_xmp(packet) == packet  # a cutout of a cutout keeps the same
    root = ET.fromstring(packet)  # type: ignore[arg-type]
    assert root.find(f"{{{RDF}}}RDF/{{{RDF}}}Description") is not None


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"not xml <",
        b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><x>&a;</x>',  # entities: the "billion laughs"
        b"<root/>",  # no RDF
        LIGHTROOM.replace("<dc:subject>", "<dc:subject>" + "x" * MAX_PACKET).encode(),  # too large to read
        LIGHTROOM.replace("<dc:subject>", "<dc:subject>" + "<dc:a>" * 50_000 + "</dc:a>" * 50_000).encode(),  # deep
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>',
    ],
)
def test_a_packet_that_is_damaged_hostile_or_keeps_nothing_gives_none(packet: bytes) -> None:
    assert kept_xmp(packet) is None


@pytest.mark.parametrize("source", ["jpg", "png", "webp", "tif"])
@pytest.mark.parametrize("format", ["png", "jpg", "webp", "tif"])
def test_every_format_reads_and_writes_the_kept_packet(tmp_path: Path, source: str, format: str) -> None:
    # XMP was not kept at all: a cutout left the catalogue its photo was filed in
    image = Image.fromarray(np.full((24, 32, 3), 90, np.uint8))
    path = tmp_path / f"photo.{source}"
    if source == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", LIGHTROOM)
        image.save(path, pnginfo=info)
    elif source == "tif":
        exif = Image.Exif()
        exif[700] = LIGHTROOM.encode()
        image.save(path, exif=exif)
    else:
        image.save(path, xmp=LIGHTROOM.encode())
    prepared = prepare(get_spec("u2netp"), path, 10**8)
    _check(prepared.xmp)
    pixels = np.zeros((24, 32, 3 if format == "jpg" else 4), np.uint8)
    data = encode_image(pixels, format, xmp=prepared.xmp)
    with Image.open(io.BytesIO(data)) as written:
        assert written.info.get("xmp") == prepared.xmp
    cutout_png = encode_cutout_png(pixels[..., :3], np.zeros((24, 32), np.uint8), xmp=prepared.xmp)
    with Image.open(io.BytesIO(cutout_png)) as written:
        assert written.info.get("xmp") == prepared.xmp


def test_a_packet_too_large_for_jpeg_is_left_out_of_it_alone() -> None:
    keywords = "".join(f"<rdf:li>keyword {n}</rdf:li>" for n in range(5000))  # a large catalogue's worth
    packet = kept_xmp(LIGHTROOM.replace("<rdf:li>shoe</rdf:li>", keywords))
    assert packet is not None and len(packet) > 65536
    jpeg = encode_image(np.zeros((8, 8, 3), np.uint8), "jpg", xmp=packet)  # was: ValueError XMP data is too long
    with Image.open(io.BytesIO(jpeg)) as written:
        assert "xmp" not in written.info
    webp = encode_image(np.zeros((8, 8, 4), np.uint8), "webp", xmp=packet)
    with Image.open(io.BytesIO(webp)) as written:
        assert written.info.get("xmp") == packet


def test_the_api_keeps_it_too(tmp_path: Path, u2netp_onnx: Path) -> None:
    import cutout

    path = tmp_path / "photo.jpg"
    Image.open(Path(__file__).resolve().parents[1] / "examples" / "images" / "astronaut.jpg").save(
        path, xmp=LIGHTROOM.encode()
    )
    with Image.open(io.BytesIO(cutout.remove(path.read_bytes()))) as written:
        _check(written.info.get("xmp"))
    pil = cutout.remove(load_image(path))
    _check(pil.info.get("xmp"))  # for img.save(..., xmp=img.info["xmp"])
    assert kept_xmp_of(Image.new("RGB", (4, 4))) is None
