"""Bounded loaders for hostile bodies: JSON, XML and CBOR.

Each refuses what it cannot bound: documents over ``MAX_DOCUMENT`` bytes, nesting deeper than
``MAX_DEPTH``, duplicate object keys (a parser differential: the service may take the other
one), and for XML any DTD, entity declaration or external reference (no billion laughs, no
XXE). Errors are :class:`SerializationError` / :class:`MalformedXML` with AWS codes."""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET
from xml.parsers import expat

from hoopcli.server.gateway.errors import MalformedXML, SerializationError

MAX_DOCUMENT = 16 * 1024 * 1024
MAX_DEPTH = 64


def _check_size(data: bytes) -> None:
    if len(data) > MAX_DOCUMENT:
        raise SerializationError(f"request body larger than {MAX_DOCUMENT} bytes")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SerializationError(f"duplicate JSON key {key[:64]!r}")
        out[key] = value
    return out


def _json_depth_ok(data: bytes) -> bool:
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def _bad_constant(name: str) -> Any:
    raise SerializationError(f"{name} is not valid JSON")


def load_json(data: bytes) -> Any:
    _check_size(data)
    if not _json_depth_ok(data):
        raise SerializationError(f"JSON nested deeper than {MAX_DEPTH}")
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_bad_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"body is not valid JSON: {type(exc).__name__}") from None


def _refuse(*_args: object) -> None:
    raise MalformedXML("XML with a DTD or entity declarations is not accepted")


def load_xml(data: bytes) -> ET.Element:
    """Parse with expat directly, DTDs and entities refused, into ElementTree elements (so that
    botocore's XML shape handlers can walk them). Leaf elements get ``text == ""``."""
    _check_size(data)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    parser.buffer_text = True
    stack: list[ET.Element] = []
    texts: list[list[str]] = []
    root: list[ET.Element] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            raise MalformedXML(f"XML nested deeper than {MAX_DEPTH}")
        element = ET.Element(name, attrs)
        if stack:
            parent = stack[-1]
            if len(parent) == 0:
                parent.text = "".join(texts[-1])
            parent.append(element)
        else:
            root.append(element)
        stack.append(element)
        texts.append([])

    def end(_name: str) -> None:
        element = stack.pop()
        chunks = texts.pop()
        if len(element) == 0:
            element.text = "".join(chunks)

    def chars(text: str) -> None:
        if texts and len(stack[-1]) == 0:
            texts[-1].append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise MalformedXML(f"body is not well-formed XML: {expat.ErrorString(exc.code)}") from None
    if not root:
        raise MalformedXML("body holds no XML element")
    return root[0]


class _Cbor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise SerializationError("CBOR body ends inside an item")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def head(self) -> tuple[int, int, int | None]:
        first = self.take(1)[0]
        major, info = first >> 5, first & 0x1F
        if info < 24:
            return major, info, info
        if info in (24, 25, 26, 27):
            return major, info, int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, None
        raise SerializationError("malformed CBOR item head")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SerializationError(f"CBOR nested deeper than {MAX_DEPTH}")
        major, info, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            assert arg is not None
            return -1 - arg
        if major in (2, 3):
            raw = self.take(arg) if arg is not None else self._chunks(major)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SerializationError("CBOR text string is not UTF-8") from None
        if major == 4:
            return list(self._items(arg, depth))
        if major == 5:
            out: dict[Any, Any] = {}
            for key in self._items(arg, depth, pairs=True):
                if not isinstance(key, str) or key in out:
                    raise SerializationError("CBOR map keys must be distinct text strings")
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            if arg != 1:
                raise SerializationError("unsupported CBOR tag")
            value = self.item(depth + 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SerializationError("CBOR timestamp must be a number")
            try:
                return datetime.fromtimestamp(value, timezone.utc)
            except (OverflowError, OSError, ValueError):
                raise SerializationError("CBOR timestamp out of range") from None
        return self._simple(info, arg)

    def _items(self, count: int | None, depth: int, pairs: bool = False) -> Any:
        if count is not None:
            if count > len(self.data) - self.pos:
                raise SerializationError("CBOR container longer than the body")
            for _ in range(count):
                yield self.item(depth + 1)
            return
        while True:
            if self.pos < len(self.data) and self.data[self.pos] == 0xFF:
                self.pos += 1
                return
            yield self.item(depth + 1)

    def _chunks(self, major: int) -> bytes:
        parts: list[bytes] = []
        while True:
            if self.pos < len(self.data) and self.data[self.pos] == 0xFF:
                self.pos += 1
                return b"".join(parts)
            sub, _, length = self.head()
            if sub != major or length is None:
                raise SerializationError("malformed indefinite-length CBOR string")
            parts.append(self.take(length))

    def _simple(self, info: int, arg: int | None) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", (arg or 0).to_bytes(2, "big"))[0]
        if info == 26:
            return struct.unpack(">f", (arg or 0).to_bytes(4, "big"))[0]
        if info == 27:
            return struct.unpack(">d", (arg or 0).to_bytes(8, "big"))[0]
        raise SerializationError("unsupported CBOR simple value")


def load_cbor(data: bytes) -> Any:
    _check_size(data)
    decoder = _Cbor(data)
    value = decoder.item(0)
    if decoder.pos != len(data):
        raise SerializationError("bytes after the CBOR item")
    return value
