"""A photo's IPTC-IIM block (credit, copyright, caption, keywords) carried into the cutout's XMP.

    >>> from cutout.io.iptc import iim_records, xmp_with_iim
    >>> packet = xmp_with_iim(kept_xmp(image.info.get("xmp")), iim_records(image))   # doctest: +SKIP

News agencies (Getty Images, AP, Shutterstock) still file their photos' credit line, copyright notice and caption
in the old IPTC-IIM block (a JPEG's APP13 Photoshop resource 0x0404, a TIFF's tag 33723), often with no XMP at
all; a cutout without them loses "Mandatory Credit" and "No use without permission". Today's readers (Lightroom,
Bridge, exiftool, digiKam, Windows) read XMP first, and IIM is meant to be written only beside an XMP kept in
step with it (Metadata Working Group guidelines), so each field is written as its IPTC Core XMP property, in
whichever format the cutout is saved (PNG, WebP, JPEG, TIFF). A property the photo's XMP already has wins: the
two usually hold the same, and XMP can hold more (languages, longer texts).

Only the fields of IPTC's Photo Metadata Standard that say what the picture is, who made it and on which terms
are carried, with the place as typed (as :mod:`cutout.io.xmp` keeps it); nothing else of the block (an agency's
own workflow records, 2:220 and up) is.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from cutout.io.xmp import RDF, packet_of

__all__ = ["IIM_PROPERTIES", "iim_records", "parse_iim", "xmp_with_iim"]

_DC = "http://purl.org/dc/elements/1.1/"
_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
_CORE = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: Record 2 datasets -> (XMP namespace, property, form): "text", "alt" (a language alternative), "bag" or "seq"
#: (lists), as IPTC's Photo Metadata Standard maps them. Dates (2:55 and 2:60) become photoshop:DateCreated.
IIM_PROPERTIES: dict[int, tuple[str, str, str]] = {
    4: (_CORE, "IntellectualGenre", "text"),
    5: (_DC, "title", "alt"),
    25: (_DC, "subject", "bag"),
    40: (_PHOTOSHOP, "Instructions", "text"),
    80: (_DC, "creator", "seq"),
    85: (_PHOTOSHOP, "AuthorsPosition", "text"),
    90: (_PHOTOSHOP, "City", "text"),
    92: (_CORE, "Location", "text"),
    95: (_PHOTOSHOP, "State", "text"),
    100: (_CORE, "CountryCode", "text"),
    101: (_PHOTOSHOP, "Country", "text"),
    103: (_PHOTOSHOP, "TransmissionReference", "text"),
    105: (_PHOTOSHOP, "Headline", "text"),
    110: (_PHOTOSHOP, "Credit", "text"),
    115: (_PHOTOSHOP, "Source", "text"),
    116: (_DC, "rights", "alt"),
    120: (_DC, "description", "alt"),
    122: (_PHOTOSHOP, "CaptionWriter", "text"),
}
_DATE, _TIME = 55, 60
_UTF8 = b"\x1b%G"  # 1:90, the coded character set: ISO 2022's escape for UTF-8
_IIM_RESOURCE = 0x0404  # Photoshop's image resource holding the IIM block
_TIFF_TAG = 33723
_MAX_BLOCK = 1 << 20  # larger blocks are not read (a JPEG's APP13 holds 64 KiB)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in XML 1.0 (or no text)


def iim_records(image: Any) -> dict[int, list[bytes]]:
    """Record 2 (the application record) of ``image``'s IIM block, dataset -> values in order; {} if none.

    Read from a JPEG's Photoshop resources (APP13), a TIFF's tag 33723, or a PNG's "Raw profile type iptc" text
    (ImageMagick and exiftool keep it there).
    """
    data: bytes | None = None
    photoshop = image.info.get("photoshop")
    if isinstance(photoshop, dict):
        data = photoshop.get(_IIM_RESOURCE)
    raw = getattr(getattr(image, "tag_v2", None), "_tagdata", None)  # a TIFF's tag as stored (Pillow's own)
    if data is None and isinstance(raw, dict):
        data = raw.get(_TIFF_TAG)
    profile = image.info.get("Raw profile type iptc")
    if data is None and isinstance(profile, str):
        data = _raw_profile(profile)
        if data is not None and data.startswith(b"8BIM"):
            data = _photoshop_resources(data).get(_IIM_RESOURCE)
    if not isinstance(data, bytes) or len(data) > _MAX_BLOCK:
        return {}
    return parse_iim(data)


def parse_iim(data: bytes) -> dict[int, list[bytes]]:
    """The datasets of record 2 in an IIM block (tag marker 0x1C, record, dataset, length, value), read up to the
    end or to the first damaged one (what came before it is kept). Where record 1's character set (1:90) says
    UTF-8, key -1 holds ``[b"utf-8"]``."""
    records: dict[int, list[bytes]] = {}
    at = 0
    while at + 5 <= len(data):
        if data[at] != 0x1C:
            break
        record, dataset, size = data[at + 1], data[at + 2], int.from_bytes(data[at + 3 : at + 5], "big")
        at += 5
        if size & 0x8000:  # an extended dataset: the length's own length, then the length
            count = size & 0x7FFF
            if count > 4 or at + count > len(data):
                break
            size, at = int.from_bytes(data[at : at + count], "big"), at + count
        if at + size > len(data):
            break
        value = data[at : at + size]
        at += size
        if record == 1 and dataset == 90 and _UTF8 in value:
            records[-1] = [b"utf-8"]
        elif record == 2:
            records.setdefault(dataset, []).append(value)
    return records


def xmp_with_iim(packet: bytes | None, records: dict[int, list[bytes]]) -> bytes | None:
    """``packet`` (a kept XMP packet, or None) with the IIM fields it lacks added; None if it has nothing."""
    values = _values(records)
    if not values:
        return packet
    if packet:
        root = ET.fromstring(packet)
        rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF")
        assert rdf is not None  # a kept packet always has one
    else:
        rdf = ET.Element(f"{{{RDF}}}RDF")
    present = {name for element in rdf.iter() for name in (element.tag, *element.attrib)}
    description = ET.Element(f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    for (uri, name, form), texts in values.items():
        if f"{{{uri}}}{name}" in present:
            continue
        element = ET.SubElement(description, f"{{{uri}}}{name}")
        if form == "text":
            element.text = texts[0]
            continue
        container = ET.SubElement(element, f"{{{RDF}}}{form.capitalize()}")
        for text in texts if form != "alt" else texts[:1]:
            item = ET.SubElement(container, f"{{{RDF}}}li", {_XML_LANG: "x-default"} if form == "alt" else {})
            item.text = text
    if not len(description):
        return packet
    rdf.append(description)
    return packet_of(rdf)


def _values(records: dict[int, list[bytes]]) -> dict[tuple[str, str, str], list[str]]:
    """The XMP properties the datasets give, with their texts (a list's without repeats); empty ones left out."""
    encoding = "utf-8" if -1 in records else None
    values: dict[tuple[str, str, str], list[str]] = {}
    for dataset, (uri, name, form) in IIM_PROPERTIES.items():
        texts = []
        for raw in records.get(dataset, []):
            text = _text(raw, encoding)
            if text and text not in texts:
                texts.append(text)
        if texts:
            values[(uri, name, form)] = texts
    date = _date(records)
    if date:
        values[(_PHOTOSHOP, "DateCreated", "text")] = [date]
    return values


def _text(raw: bytes, encoding: str | None) -> str:
    """A dataset's text: UTF-8 when 1:90 says so or it decodes as such, else Windows-1252 (older Windows tools)."""
    if encoding is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    else:
        text = raw.decode(encoding, "replace")
    return _CONTROL.sub("", text).strip()


def _date(records: dict[int, list[bytes]]) -> str | None:
    """2:55 (CCYYMMDD, 00 for an unknown month or day) and 2:60 (HHMMSS+HHMM) as an XMP date; None if unusable."""
    day = records.get(_DATE, [b""])[0].strip()
    if not re.fullmatch(rb"\d{8}", day) or day[:4] == b"0000":
        return None
    year, month, date = day[:4].decode(), day[4:6].decode(), day[6:8].decode()
    if month == "00" or not 1 <= int(month) <= 12:
        return year
    if date == "00" or not 1 <= int(date) <= 31:
        return f"{year}-{month}"
    time = records.get(_TIME, [b""])[0].strip()
    found = re.fullmatch(rb"(\d\d)(\d\d)(\d\d)([+-]\d\d)(\d\d)", time)
    if not found or int(found[1]) > 23 or int(found[2]) > 59 or int(found[3]) > 59:
        return f"{year}-{month}-{date}"
    hours, minutes, seconds, zone_hours, zone_minutes = (part.decode() for part in found.groups())
    return f"{year}-{month}-{date}T{hours}:{minutes}:{seconds}{zone_hours}:{zone_minutes}"


def _raw_profile(text: str) -> bytes | None:
    """The bytes of ImageMagick's "Raw profile type" text: a name line, the length, then hexadecimal lines."""
    lines = text.strip().split("\n", 2)
    if len(lines) != 3 or not lines[1].strip().isdigit():
        return None
    try:
        data = bytes.fromhex("".join(lines[2].split()))
    except ValueError:
        return None
    return data[: int(lines[1])]


def _photoshop_resources(data: bytes) -> dict[int, bytes]:
    """Photoshop's image resources ("8BIM", id, a Pascal name padded to even, size, data padded to even)."""
    resources: dict[int, bytes] = {}
    at = 0
    while data[at : at + 4] == b"8BIM" and at + 7 <= len(data):
        ident, name = int.from_bytes(data[at + 4 : at + 6], "big"), data[at + 6]
        at += 6 + name + 1 + (name + 1) % 2
        size = int.from_bytes(data[at : at + 4], "big")
        at += 4
        if at + size > len(data):
            break
        resources[ident] = data[at : at + size]
        at += size + size % 2
    return resources
