"""Transcript records: version, JSON Schema, validation, canonical bytes and size caps.

Shared by the client (spool, uploader) and the server (ingest). Stdlib only. The schema is data,
``hoopcli/transcript/schema.json`` (JSON Schema 2020-12); :func:`validate` checks the subset of
the vocabulary that file uses (type, const, enum, required, properties, additionalProperties,
items, minimum, minLength, maxLength, pattern, anyOf, $ref), so no validator library is needed
on the hot path. The test suite checks the file with the real `jsonschema` package too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_TYPES = ("command.start", "command.result", "api.call")
# The record type the server writes itself (the gateway observed the request); clients may not.
SERVER_RECORD_TYPES = ("api.call",)
_DEFS = {"command.start": "start", "command.result": "result", "api.call": "call"}
SCHEMA_FILE = Path(__file__).with_name("schema.json")

# Size caps (bytes of UTF-8). Past a cap a value is cut and marked, never rejected.
STREAM_CAP = 1024 * 1024          # stdout.text / stderr.text (issue: default 1 MiB each)
STRING_CAP = 64 * 1024            # any other string
ARGV_CAP = 256                    # argv entries
API_CALLS_CAP = 1000              # api_calls entries
TRUNCATION_MARK = "…[hoop: truncated {n} bytes]"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern[str]:
    return re.compile(p)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref}")
    return _resolve(schema()["$defs"][ref.split("/")[-1]])


Check = Callable[[Any, tuple[Any, ...], list[str]], None]


def _fmt(path: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _compile(node: dict[str, Any]) -> Check:
    """Turn a schema node into a checking closure (compiled once; paths formatted only on error)."""
    node = _resolve(node)
    if "anyOf" in node:
        options = [_compile(o) for o in node["anyOf"]]

        def any_of(value: Any, path: tuple[Any, ...], errors: list[str]) -> None:
            for option in options:
                sub: list[str] = []
                option(value, path, sub)
                if not sub:
                    return
            errors.append(f"{_fmt(path)}: does not match any allowed form")
        return any_of

    has_const, const = "const" in node, node.get("const")
    enum = node.get("enum")
    types = node.get("type")
    names = None if types is None else ([types] if isinstance(types, str) else list(types))
    max_len, min_len = node.get("maxLength"), node.get("minLength")
    pattern = _pattern(node["pattern"]) if "pattern" in node else None
    minimum = node.get("minimum")
    required = tuple(node.get("required", ()))
    props = {k: _compile(v) for k, v in node.get("properties", {}).items()}
    extra = node.get("additionalProperties", True)
    extra_check = _compile(extra) if isinstance(extra, dict) else None
    items = _compile(node["items"]) if "items" in node else None

    def check(value: Any, path: tuple[Any, ...], errors: list[str]) -> None:
        if has_const and value != const:
            errors.append(f"{_fmt(path)}: must be {json.dumps(const)}")
            return
        if enum is not None and value not in enum:
            errors.append(f"{_fmt(path)}: must be one of {', '.join(map(str, enum))}")
            return
        if names is not None and not any(_type_ok(value, t) for t in names):
            errors.append(f"{_fmt(path)}: must be {' or '.join(names)}")
            return
        if isinstance(value, str):
            if max_len is not None and len(value) > max_len:
                errors.append(f"{_fmt(path)}: longer than {max_len} characters")
            if min_len is not None and len(value) < min_len:
                errors.append(f"{_fmt(path)}: shorter than {min_len} characters")
            if pattern is not None and not pattern.search(value):
                errors.append(f"{_fmt(path)}: has an invalid format")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if minimum is not None and value < minimum:
                errors.append(f"{_fmt(path)}: must be >= {minimum}")
        elif isinstance(value, dict):
            for key in required:
                if key not in value:
                    errors.append(f"{_fmt((*path, key))}: is required")
            for key, item in value.items():
                sub_check = props.get(key)
                if sub_check is not None:
                    sub_check(item, (*path, key), errors)
                elif extra is False:
                    errors.append(f"{_fmt((*path, key))}: is not allowed")
                elif extra_check is not None:
                    extra_check(item, (*path, key), errors)
        elif isinstance(value, list) and items is not None:
            for i, item in enumerate(value):
                items(item, (*path, i), errors)
    return check


@lru_cache(maxsize=4)
def _checker(kind: str) -> Check:
    return _compile(schema()["$defs"][kind])


def validate(record: Any) -> list[str]:
    """Errors of one record against the schema, as short `$.field: problem` strings."""
    if not isinstance(record, dict):
        return ["$: a record must be a JSON object"]
    kind = record.get("type")
    if kind not in RECORD_TYPES:
        return [f"$.type: must be one of {', '.join(RECORD_TYPES)}"]
    errors: list[str] = []
    _checker(_DEFS[kind])(record, (), errors)
    return errors


def _cut(text: str, cap: int) -> tuple[str, int]:
    """`text` cut to at most `cap` UTF-8 bytes (on a character boundary) + the bytes dropped."""
    raw = text.encode("utf-8", "surrogatepass")     # a lone surrogate (JSON allows it) counts 3 bytes
    if len(raw) <= cap:
        return text, 0
    kept = raw[:cap].decode("utf-8", errors="ignore")
    return kept, len(raw) - len(kept.encode("utf-8"))


def cut_marked(text: str, cap: int) -> str:
    """`text` cut to at most `cap` UTF-8 bytes, ending with TRUNCATION_MARK when anything was cut:
    the one mark of a cut string, in the spool and on the server."""
    kept, dropped = _cut(text, cap)
    return kept + TRUNCATION_MARK.format(n=dropped) if dropped else text


def apply_caps(record: dict[str, Any], stream_cap: int = STREAM_CAP,
               string_cap: int = STRING_CAP, *,
               encoded_size: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """A copy of `record` with oversized values cut and marked; and the JSON paths that were cut.

    Streams (`stdout`/`stderr`, and an api.call's `response`) keep their original `size` and
    get `truncated: true`; other strings (`params` of an api.call included) end with
    TRUNCATION_MARK; long lists keep their head. Each mark says what was cut and how much;
    the server stores the marks in the record's receipt.
    """
    if encoded_size is not None and encoded_size <= min(stream_cap, string_cap, 20_000) \
            and all(not isinstance(record.get(k), list) or len(record[k]) <= cap
                    for k, cap in (("argv", ARGV_CAP), ("api_calls", API_CALLS_CAP))):
        return record, []   # fast path: nothing in it can exceed a cap
    marks: list[str] = []

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            kept, dropped = _cut(value, string_cap)
            if dropped:
                marks.append(f"{path}: {dropped} bytes cut")
                return kept + TRUNCATION_MARK.format(n=dropped)
            return value
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            cap = API_CALLS_CAP if path == "$.api_calls" else ARGV_CAP if path == "$.argv" else 10_000
            items = [walk(v, f"{path}[{i}]") for i, v in enumerate(value[:cap])]
            if len(value) > cap:
                marks.append(f"{path}: {len(value) - cap} entries dropped")
            return items
        return value

    streams = ("response",) if record.get("type") == "api.call" else ("stdout", "stderr")
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in streams and isinstance(value, dict) and isinstance(value.get("text"), str):
            stream = dict(value)
            original = len(stream["text"].encode("utf-8"))
            kept, dropped = _cut(stream["text"], stream_cap)
            stream.setdefault("size", original)
            if dropped:
                marks.append(f"$.{key}.text: {dropped} bytes cut")
                stream["text"] = kept
                stream["truncated"] = True
            out[key] = {k: (walk(v, f"$.{key}.{k}") if k != "text" else v) for k, v in stream.items()}
        else:
            out[key] = walk(value, f"$.{key}")
    return out, marks
