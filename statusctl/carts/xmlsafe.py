"""XML for cart adapters, built with ElementTree and parsed without DTDs or entities.

Answers come from the network, so `parse()` refuses any document that declares
a DOCTYPE or an entity (billion laughs, external entities) twice over: a byte
check before parsing gives a clear reason, and the expat handlers refuse the
declarations whatever the encoding. The tree is built by hand from expat
events (no namespace processing: `xlink:href` stays a plain attribute name).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import NoReturn
from xml.parsers import expat

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class UnsafeXML(ValueError):
    """The document is not well-formed, or declares a DTD or entities (refused)."""


def _refuse(*_args: object) -> NoReturn:
    raise UnsafeXML("the XML declares a DTD or entities, which statusctl refuses to parse")


def parse(data: bytes | str) -> ET.Element:
    """The root element of `data`; UnsafeXML when it is malformed or declares a DTD/entities."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if _DECLARATION.search(raw):
        _refuse()
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(tag, attrs)
    parser.EndElementHandler = lambda tag: builder.end(tag)
    parser.CharacterDataHandler = lambda text: builder.data(text)
    try:
        parser.Parse(raw, True)
        return builder.close()
    except expat.ExpatError as exc:
        raise UnsafeXML(f"the answer is not well-formed XML ({exc})") from None
    except AssertionError:  # TreeBuilder with no root element
        raise UnsafeXML("the answer holds no XML element") from None


def element(tag: str, fields: dict[str, str | None] | None = None) -> ET.Element:
    """`<tag>` with one child per field, in order; every value is escaped by ElementTree."""
    root = ET.Element(tag)
    for name, value in (fields or {}).items():
        ET.SubElement(root, name).text = "" if value is None else value
    return root


def document(root: ET.Element) -> bytes:
    """UTF-8 bytes with an XML declaration."""
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def text_of(node: ET.Element | None, path: str, default: str = "") -> str:
    """The stripped text at `path` under `node` (`default` when absent or empty)."""
    if node is None:
        return default
    found = node.find(path)
    if found is None:
        return default
    text = "".join(found.itertext()).strip()
    return text or default
