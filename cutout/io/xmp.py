"""The XMP a cutout keeps from its photo: what a library or an agency files and credits it by, nothing else.

    >>> from cutout.io.xmp import kept_xmp
    >>> packet = kept_xmp(image.info.get("xmp"))      # bytes to write, or None   # doctest: +SKIP

Lightroom, Bridge and photo agencies keep a photo's keywords, title, caption, rating and licence in XMP, not in
EXIF; a cutout without them drops out of the catalogue it came from. Only these schemas are kept, at any depth:
Dublin Core (title, description, keywords, creator, rights), XMP basic (rating, label, dates), XMP rights,
Photoshop (headline, credit, source, instructions, city and country as typed), IPTC Core and Extension,
Lightroom's hierarchical keywords and PLUS licensing. Everything else is left out, as for EXIF: GPS positions
(``exif:GPS*``, also inside an IPTC location), camera and lens serial numbers, raw development settings
(``crs:*``, which Lightroom would apply to the cutout again: its crop, its tone curve), edit history,
thumbnails of the original and the original's orientation (the cutout is stored upright).

A packet that is not XML, is larger than :data:`MAX_PACKET` bytes, declares a DOCTYPE or entities (the "billion
laughs"), nests elements thousands deep, or keeps nothing, gives None: the pixels are what was asked for.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML = "http://www.w3.org/XML/1998/namespace"  # xml:lang of a title's or caption's languages
_XMP = "http://ns.adobe.com/xap/1.0/"
_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"
#: The schemas kept, with their usual prefixes.
KEPT_NAMESPACES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    _XMP: "xmp",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    _PHOTOSHOP: "photoshop",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://ns.adobe.com/lightroom/1.0/": "lr",
    "http://ns.useplus.org/ldf/xmp/1.0/": "plus",
}
#: Properties of kept schemas that are left out all the same: a thumbnail of the original, the program that
#: made the original (the cutout says cutout made it), and Photoshop's list of every file pasted in (megabytes).
DROPPED = {(_XMP, "Thumbnails"), (_XMP, "CreatorTool"), (_PHOTOSHOP, "DocumentAncestors")}
#: Larger packets are not read (a JPEG's holds 64 KiB; Photoshop's extended XMP more, mostly history).
MAX_PACKET = 1 << 20
_PACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"  # the XMP specification's packet wrapper id

for _uri, _prefix in {**KEPT_NAMESPACES, RDF: "rdf", "adobe:ns:meta/": "x"}.items():
    ET.register_namespace(_prefix, _uri)


def kept_xmp(packet: bytes | str | None) -> bytes | None:
    """The packet with only the kept schemas' properties, as a UTF-8 XMP packet; None if nothing is kept."""
    if not packet:
        return None
    data = packet.encode("utf-8", "replace") if isinstance(packet, str) else bytes(packet)
    data = data.strip(b"\x00 \t\r\n")
    if len(data) > MAX_PACKET or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return None
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF")
    if rdf is None:
        return None
    try:
        for description in list(rdf):
            if description.tag != f"{{{RDF}}}Description":
                rdf.remove(description)
                continue
            _filter(description)
            if not _properties(description):
                rdf.remove(description)
        if not len(rdf):
            return None
        return packet_of(rdf)
    except RecursionError:  # elements nested thousands deep: no real packet, and no reason to fail the photo
        return None


def packet_of(rdf: ET.Element) -> bytes:
    """An ``rdf:RDF`` element as a UTF-8 XMP packet (wrapper, ``x:xmpmeta``)."""
    body = ET.tostring(rdf, encoding="unicode")
    return (
        f'<?xpacket begin="\ufeff" id="{_PACKET_ID}"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'{body}</x:xmpmeta>\n<?xpacket end="w"?>'
    ).encode()


def _namespace(name: str) -> tuple[str, str]:
    """``{uri}local`` as (uri, local); ("", name) without a namespace."""
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        return uri, local
    return "", name


def _kept(name: str) -> bool:
    uri, local = _namespace(name)
    return uri in KEPT_NAMESPACES and (uri, local) not in DROPPED


def _filter(element: ET.Element) -> None:
    """Drop what is not kept from ``element`` and below: attributes and elements of other schemas (RDF's own
    structure and xml:lang stay)."""
    for name in list(element.attrib):
        uri, _ = _namespace(name)
        if uri not in (RDF, _XML, "") and not _kept(name):
            del element.attrib[name]
    for child in list(element):
        uri, _ = _namespace(child.tag)
        if uri == RDF or _kept(child.tag):
            _filter(child)
        else:
            element.remove(child)


def _properties(description: ET.Element) -> bool:
    """Whether an rdf:Description still holds any property (an attribute or an element of a kept schema)."""
    return bool(len(description)) or any(_namespace(name)[0] in KEPT_NAMESPACES for name in description.attrib)
