"""Transcript records: version, JSON Schema, validation, canonical bytes and size caps.

Shared by the client (spool, uploader) and the server (ingest). Stdlib only. The schema is data,
``hoopcli/transcript_schema.json`` (JSON Schema 2020-12); :func:`validate` checks the subset of
the vocabulary that file uses (type, const, enum, required, properties, additionalProperties,
items, minimum, minLength, maxLength, pattern, anyOf, $ref), so no validator library is needed
on the hot path. The test suite checks the file with the real `jsonschema` package too.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_TYPES = ("command.start", "command.result")
SCHEMA_FILE = Path(__file__).with_name("transcript_schema.json")

# Size caps (bytes of UTF-8). Past a cap a value is cut and marked, never rejected.
STREAM_CAP = 1024 * 1024          # stdout.text / stderr.text (issue: default 1 MiB each)
STRING_CAP = 64 * 1024            # any other string
ARGV_CAP = 256                    # argv entries
API_CALLS_CAP = 1000              # api_calls entries
TRUNCATION_MARK = "…[hoop: truncated {n} bytes]"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def canonical_json(obj: Any) -> bytes:
    """The one byte form hashed into the log: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


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


def _check(value: Any, node: dict[str, Any], path: str, errors: list[str]) -> None:
    node = _resolve(node)
    if "anyOf" in node:
        for option in node["anyOf"]:
            sub: list[str] = []
            _check(value, option, path, sub)
            if not sub:
                break
        else:
            errors.append(f"{path}: does not match any allowed form")
        return
    if "const" in node and value != node["const"]:
        errors.append(f"{path}: must be {json.dumps(node['const'])}")
        return
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: must be one of {', '.join(map(str, node['enum']))}")
        return
    types = node.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, t) for t in names):
            errors.append(f"{path}: must be {' or '.join(names)}")
            return
    if isinstance(value, str):
        if "maxLength" in node and len(value) > node["maxLength"]:
            errors.append(f"{path}: longer than {node['maxLength']} characters")
        if "minLength" in node and len(value) < node["minLength"]:
            errors.append(f"{path}: shorter than {node['minLength']} characters")
        if "pattern" in node and not _pattern(node["pattern"]).search(value):
            errors.append(f"{path}: has an invalid format")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            errors.append(f"{path}: must be >= {node['minimum']}")
    elif isinstance(value, dict):
        for key in node.get("required", ()):
            if key not in value:
                errors.append(f"{path}.{key}: is required")
        props = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{path}.{key}", errors)
            elif extra is False:
                errors.append(f"{path}.{key}: is not allowed")
            elif isinstance(extra, dict):
                _check(item, extra, f"{path}.{key}", errors)
    elif isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            _check(item, node["items"], f"{path}[{i}]", errors)


def validate(record: Any) -> list[str]:
    """Errors of one record against the schema, as short `$.field: problem` strings."""
    if not isinstance(record, dict):
        return ["$: a record must be a JSON object"]
    kind = record.get("type")
    if kind not in RECORD_TYPES:
        return [f"$.type: must be one of {', '.join(RECORD_TYPES)}"]
    errors: list[str] = []
    _check(record, schema()["$defs"]["start" if kind == "command.start" else "result"], "$", errors)
    return errors


def _cut(text: str, cap: int) -> tuple[str, int]:
    """`text` cut to at most `cap` UTF-8 bytes (on a character boundary) + the bytes dropped."""
    raw = text.encode("utf-8")
    if len(raw) <= cap:
        return text, 0
    kept = raw[:cap].decode("utf-8", errors="ignore")
    return kept, len(raw) - len(kept.encode("utf-8"))


def apply_caps(record: dict[str, Any], stream_cap: int = STREAM_CAP,
               string_cap: int = STRING_CAP) -> tuple[dict[str, Any], list[str]]:
    """A copy of `record` with oversized values cut and marked; and the JSON paths that were cut.

    Streams keep their original `size` and get `truncated: true`; other strings end with
    TRUNCATION_MARK; long lists keep their head. Each mark says what was cut and how much;
    the server stores the marks in the record's receipt.
    """
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

    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("stdout", "stderr") and isinstance(value, dict) and isinstance(value.get("text"), str):
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
