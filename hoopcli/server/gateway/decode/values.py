"""Shape-typed values: text (URI labels, query strings, headers) to Python, and the final check
that every decoded value has the type its shape says (botocore's response parsers are lenient:
a JSON number where a string belongs, or an XML element repeated where one is allowed, would
otherwise reach policy as something else than AWS will see)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.utils import parse_timestamp

from hoopcli.server.gateway.decode.safe import MAX_DEPTH
from hoopcli.server.gateway.errors import SerializationError


def timestamp(text: str | float) -> datetime:
    try:
        value = parse_timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise SerializationError(f"invalid timestamp {str(text)[:40]!r}") from None
    if not isinstance(value, datetime):
        raise SerializationError("invalid timestamp")
    return value


def from_text(shape: Shape, text: str, *, header: bool = False) -> Any:
    """One value as botocore's rest serializer writes it into a label, query string or header."""
    kind = shape.type_name
    try:
        if kind == "string":
            if header and shape.serialization.get("jsonvalue"):
                return json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
            return text
        if kind in ("integer", "long"):
            if not text.lstrip("-").isdigit():
                raise ValueError(text)
            return int(text)
        if kind in ("float", "double"):
            value = float(text)
            if math.isnan(value) and text != "NaN":
                raise ValueError(text)
            return value
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "timestamp":
            return timestamp(float(text) if text.replace(".", "", 1).isdigit() else text)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SerializationError(f"invalid {kind} value {text[:40]!r}") from None
    if kind == "list" and header:
        assert isinstance(shape, ListShape)
        return [from_text(shape.member, item, header=True) for item in split_header_list(text)]
    raise SerializationError(f"a {kind} cannot be sent as text")


def split_header_list(text: str) -> list[str]:
    """Comma-separated, with "quoted, items" (botocore quotes items holding a comma or quote)."""
    items: list[str] = []
    i = 0
    while i <= len(text):
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == '"':
            j, buf = i + 1, []
            while j < len(text) and text[j] != '"':
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                buf.append(text[j])
                j += 1
            items.append("".join(buf))
            i = text.find(",", j) + 1 or len(text) + 1
        else:
            j = text.find(",", i)
            end = len(text) if j < 0 else j
            items.append(text[i:end].strip())
            i = end + 1
    return items


_SCALAR: dict[str, tuple[type, ...]] = {
    "string": (str,), "character": (str,), "integer": (int,), "long": (int,), "byte": (int,), "short": (int,),
    "float": (float, int), "double": (float, int), "boolean": (bool,), "blob": (bytes, bytearray),
    "timestamp": (datetime,), "bigdecimal": (float, int, str), "biginteger": (int,),
}


def check(shape: Shape, value: Any, path: str = "", depth: int = 0) -> None:
    """Raise SerializationError unless ``value`` fits ``shape`` exactly (None allowed in lists)."""
    if depth > MAX_DEPTH:
        raise SerializationError("parameters nested too deeply")
    kind = shape.type_name
    where = path or shape.name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if shape.is_document_type:
            return
        if not isinstance(value, dict):
            raise SerializationError(f"{where} must be a structure")
        for name, item in value.items():
            member = shape.members.get(name)
            if member is None:
                raise SerializationError(f"{where} has no member {name!r}")
            check(member, item, f"{where}.{name}", depth + 1)
        if shape.is_tagged_union and len(value) != 1:
            raise SerializationError(f"{where} is a union: exactly one member must be set")
        return
    if kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            raise SerializationError(f"{where} must be a list")
        for i, item in enumerate(value):
            if item is not None:
                check(shape.member, item, f"{where}[{i}]", depth + 1)
        return
    if kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            raise SerializationError(f"{where} must be a map")
        for key, item in value.items():
            check(shape.key, key, f"{where} key", depth + 1)
            if item is not None:
                check(shape.value, item, f"{where}[{key!r}]", depth + 1)
        return
    if shape.serialization.get("jsonvalue"):
        return
    types = _SCALAR.get(kind)
    if types is None:
        return
    if (kind != "boolean" and isinstance(value, bool)) or not isinstance(value, types):
        if kind in ("string", "blob") and shape.serialization.get("streaming"):
            return
        raise SerializationError(f"{where} must be a {kind}")
