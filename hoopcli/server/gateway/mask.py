"""Mask an AWS response body per operation before it leaves the server.

    masker = ResponseMasker(server_masker(home))
    if not passes_through(operation_model):         # else stream the body on untouched
        new = masker.mask(service_model, "GetSecretValue", "json", 200, headers, body)
        if new is not body: headers = masked_headers(headers, new)

Fast path: the operation has no response paths and no secret-named member (nor, in XML, a map,
whose keys Masker reads as names), and one raw parse shows no secret-named key and no detector
hit: the body is returned as it came, byte for byte.

Full path: ``Masker.mask_parsed`` masks a copy of botocore's parse (paths, secret names,
detectors). Each string or blob it changed is replaced in the raw body, parsed structurally
(JSON; XML with the gateway's expat loader; CBOR), never by text substitution. Raw values the
model does not know get the secret-name rule and the detectors; error bodies get only those.

Fail closed: a rewritten body is parsed again and must have nothing left to mask. Otherwise, and
for a success body that cannot be parsed, is content-encoded or is XML with mixed content,
:class:`MaskingFailed` is raised; the caller answers it with ``wire.error_response`` (403: SDKs
do not retry it, and the call did run at AWS).
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from botocore.parsers import PROTOCOL_PARSERS

from hoopcli.masking import Masker, load_key, paths
from hoopcli.masking.detect import MARKER_RE, NOT_VALUES, is_secret_name, kind_for_name
from hoopcli.paths import Layout
from hoopcli.server.gateway.decode.safe import load_cbor, load_xml
from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.wire import encode_cbor

__all__ = ["MaskingFailed", "ResponseMasker", "masked_headers", "passes_through", "server_masker"]

_FORMATS = {"json": "json", "rest-json": "json", "query": "xml", "ec2": "xml", "rest-xml": "xml",
            "smithy-rpc-v2-cbor": "cbor"}
_B64_MARKER = base64.b64encode(b"[masked").decode()[:8]
_FACTS: dict[tuple[str, str, str], tuple[frozenset[str], bool, bool, frozenset[str]]] = {}
Leaf = tuple[Any, Any, Any, str]  # (container, key, value, name); XML text has key None


class MaskingFailed(GatewayError):
    """The response could not be masked with certainty, so it is withheld."""

    code, status = "HoopMaskingFailed", 403


def server_masker(home: Path, *, extra: Iterable[Mapping[str, Any]] | None = None, pii: bool = False,
                  unique_ids: bool = False) -> Masker:
    """The server's Masker, keyed by ``home/masking.key`` (32 random bytes, 0600, created on
    first use in a 0700 directory, exactly as the client's ``hoopcli.masking.key``)."""
    return Masker(load_key(Layout(Path(home))), extra, pii=pii, unique_ids=unique_ids)


def passes_through(operation_model: Any) -> bool:
    """True when the output is a stream (a blob payload such as S3 GetObject's Body or Lambda
    Invoke's Payload, or an event stream): not a document to mask, the caller streams it."""
    return bool(operation_model.has_streaming_output or operation_model.has_event_stream_output)


def masked_headers(headers: Mapping[str, str], body: bytes) -> list[tuple[str, str]]:
    """Headers for a body that masking changed: Content-Length again, DynamoDB's ``x-amz-crc32``
    recomputed (botocore retries a mismatch), other digests of the old body dropped."""
    out = [(k, v) for k, v in headers.items() if k.lower() not in ("content-length", "content-md5", "x-amz-crc32")
           and not k.lower().startswith("x-amz-checksum-")]
    if any(k.lower() == "x-amz-crc32" for k in headers):
        out.append(("x-amz-crc32", str(zlib.crc32(body))))
    return [*out, ("Content-Length", str(len(body)))]


class ResponseMasker:
    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._parsers: dict[str, Any] = {}

    def mask(self, service_model: Any, operation_name: str, protocol: str, status: int,
             headers: Mapping[str, str], body: bytes) -> bytes:
        """The body with every secret masked; ``body`` itself when nothing needed masking."""
        operation = service_model.operation_model(operation_name)
        if not body.strip() or (status < 300 and passes_through(operation)):
            return body
        where = f"{service_model.service_name}.{operation_name}"
        encoding = _header(headers, "content-encoding").strip().lower()
        if encoding not in ("", "identity"):
            if status >= 300:
                return self._masker.mask_bytes(body)
            raise _failed(where, headers, f"a {encoding[:20]}-encoded body")
        masker = copy.copy(self._masker)
        masker._known = {}  # values remembered while masking this response stay with it
        payload = _text_payload(operation) if status < 300 else None
        fmt = "text" if payload else _FORMATS.get(protocol, "")
        if status < 300 and self._plain(masker, service_model, operation, fmt, body):
            return body
        tree = _load(fmt, body, payload)
        if tree is None:
            if status >= 300:
                return masker.mask_bytes(body)
            raise _failed(where, headers, f"a body that is not plain {fmt or protocol}")
        secrets: dict[Any, Any] = {}
        clean: set[Any] = set()
        names, _, _, typed = _facts(service_model, operation) if status < 300 else (frozenset(),) * 4
        if status < 300 and not self._diff(masker, protocol, operation, status, body, tree, fmt, secrets, clean):
            raise _failed(where, headers, "a body botocore cannot parse")
        if not _rewrite(masker, _leaves(tree), secrets, clean, names, typed):
            if secrets:  # Masker hid a value that is nowhere in the raw body as botocore read it
                raise _failed(where, headers, "a secret in a form hoop could not find again")
            return body
        masked = _dump(fmt, tree, body, payload)
        again = _load(fmt, masked, payload)
        secrets, clean = {}, set()
        if again is None or (status < 300 and not self._diff(masker, protocol, operation, status, masked, again,
                                                             fmt, secrets, clean)) \
                or secrets or _rewrite(masker, _leaves(again), {}, clean, names, typed):
            raise _failed(where, headers, "a value that stayed readable once masked")
        return masked

    def _plain(self, masker: Masker, service_model: Any, operation: Any, fmt: str, body: bytes) -> bool:
        """The fast path: True when the body certainly needs no masking."""
        _, secret_member, has_map, _ = _facts(service_model, operation)
        if secret_member or (has_map and fmt == "xml") or fmt not in ("json", "xml", "cbor") or \
                paths.paths_for(service_model.service_name, operation.name, "o", pii=masker.pii,
                                extra=masker._extra):
            return False
        if fmt == "xml":  # without "<!" there is no DTD, entity or CDATA: the C parser is safe
            try:
                root = None if b"<!" in body else ET.fromstring(body.lstrip())
            except (ET.ParseError, RecursionError):
                return False
            if root is None or _mixed(root):
                return False
            elements = list(root.iter())
            names = {_local(el.tag) for el in elements}
            texts = [t for t in root.itertext() if len(t) >= 8]
            for attrib in (el.attrib for el in elements if el.attrib):
                names.update(map(_local, attrib))
                texts.extend(v for v in attrib.values() if len(v) >= 8)
        else:
            tree = _load(fmt, body, None)
            if tree is None:
                return False
            leaves = _leaves(tree)
            names = {leaf[3] for leaf in leaves}
            texts = [leaf[2] for leaf in leaves if isinstance(leaf[2], str) and len(leaf[2]) >= 8]
        if any(is_secret_name(n) for n in names):
            return False
        joined = "\n\n".join(texts)
        return masker.mask_text(joined) == joined

    def _diff(self, masker: Masker, protocol: str, operation: Any, status: int, body: bytes, tree: Any, fmt: str,
              secrets: dict[Any, Any], clean: set[Any]) -> bool:
        """Fill ``secrets`` (raw value -> masked raw value, for each value Masker changed in
        botocore's parse) and ``clean`` (raw values it kept). False when botocore cannot parse."""
        parser = self._parsers.get(protocol)
        if parser is None:  # timestamps stay text: Masker never masks them, and dateutil is slow
            parser = self._parsers[protocol] = PROTOCOL_PARSERS[protocol](timestamp_parser=lambda value: value)
        shape = operation.output_shape
        if protocol == "query" and shape is not None and "resultWrapper" not in shape.serialization:
            inner = tree.find(f"{operation.name}Result")  # a json model spoken as query (SQS)
            body = ET.tostring(inner, encoding="utf-8") if inner is not None else body
        try:
            parsed = parser.parse({"status_code": status, "headers": {}, "body": body}, shape)
        except Exception:
            return False
        stack = [(parsed, masker.mask_parsed(operation.service_model.service_name, operation.name, _copy(parsed)))]
        while stack:
            old, new = stack.pop()
            if isinstance(old, dict) and isinstance(new, dict):
                stack.extend((v, new[k]) for k, v in old.items() if k in new)
            elif isinstance(old, list) and isinstance(new, list):
                stack.extend(zip(old, new, strict=False))
            elif isinstance(old, str):
                if old == new:
                    clean.add(old)
                elif old not in secrets or _is_masked(new):
                    secrets[old] = new
            elif isinstance(old, bytes):  # a blob: base64 in JSON and XML; masked as base64(marker)
                raw = old if fmt == "cbor" else base64.b64encode(old).decode()
                if old == new or _is_masked(old):
                    clean.add(raw)
                else:
                    text = (new if isinstance(new, str) else bytes(new).decode("utf-8", "replace")).encode()
                    secrets[raw] = text if fmt == "cbor" else base64.b64encode(text).decode()
        return True


def _rewrite(masker: Masker, leaves: list[Leaf], secrets: Mapping[Any, Any], clean: set[Any],
             names: frozenset[str], typed: frozenset[str]) -> bool:
    """Replace secret leaves in place; True when any changed. A value Masker changed takes its
    result, one it kept stays; any other gets the secret-name rule when its name is not in the
    model (``names``), and the detectors (one joined scan first, each value once it hits). A
    value equal to a secret is masked wherever it is, except as a number, boolean or timestamp."""
    todo: list[tuple[Leaf, Any]] = []
    scan: list[Leaf] = []
    for leaf in leaves:
        value, name = leaf[2], leaf[3]
        if value in secrets and name not in typed:
            todo.append((leaf, secrets[value]))
        elif value in clean:
            continue
        elif name and name not in names and is_secret_name(name) and value not in NOT_VALUES \
                and not _is_masked(value):
            kind = kind_for_name(name)
            masker.remember(value, kind)
            marker = masker.marker(kind, value)
            todo.append((leaf, marker.encode() if isinstance(value, bytes) else marker))
        elif isinstance(value, str) and len(value) >= 8:
            scan.append(leaf)
    joined = "\n\n".join(leaf[2] for leaf in scan)
    if scan and masker.mask_text(joined) != joined:
        todo.extend((leaf, new) for leaf in scan if (new := masker.mask_text(leaf[2])) != leaf[2])
    for (container, key, _, _), new in todo:
        if not isinstance(container, ET.Element):
            container[key] = new
        elif key is None:
            container.text = new
        else:
            container.set(key, new)
    return bool(todo)


# -- raw bodies ------------------------------------------------------------------------------
def _load(fmt: str, body: bytes, payload: str | None) -> Any:
    try:
        if fmt == "json":
            return [json.loads(body)]
        if fmt == "cbor":
            return [load_cbor(body)]
        if fmt == "text" and payload:
            return {payload: body.decode("utf-8")}
        if fmt == "xml":
            root = load_xml(body.lstrip())  # refuses DTDs and entities, so ET may look too:
            return None if _mixed(ET.fromstring(body.lstrip())) else root  # it drops mixed text
    except (ValueError, GatewayError, RecursionError, ET.ParseError):
        pass
    return None


def _dump(fmt: str, tree: Any, original: bytes, payload: str | None) -> bytes:
    if fmt == "json":
        return json.dumps(tree[0], ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if fmt == "cbor":
        return encode_cbor(tree[0])
    if fmt == "text" and payload:
        return str(tree[payload]).encode("utf-8")
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if original.lstrip().startswith(b"<?xml") else ""
    return (head + ET.tostring(tree, encoding="unicode")).encode("utf-8")


def _leaves(tree: Any) -> list[Leaf]:
    out: list[Leaf] = []
    if isinstance(tree, ET.Element):
        for el in tree.iter():
            out.extend((el, k, v, _local(k)) for k, v in el.attrib.items() if not k.startswith("xmlns"))
            if len(el) == 0 and el.text:
                out.append((el, None, el.text, _local(el.tag)))
        return out
    stack = [tree]
    while stack:
        node = stack.pop()
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(value, (str, bytes)):
                out.append((node, key, value, key if isinstance(key, str) else ""))
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return out


def _mixed(root: ET.Element) -> bool:
    """Text beside child elements (AWS never sends it, botocore never reads it): more text than
    in the leaf elements."""
    texts = sum(1 for t in root.itertext() if t.strip())
    return texts != sum(1 for el in root.iter() if el.text and not len(el) and el.text.strip())


def _is_masked(value: Any) -> bool:
    """A marker, or a blob holding one (base64 in JSON and XML, bytes in CBOR)."""
    if isinstance(value, bytes):
        return bool(MARKER_RE.fullmatch(value.decode("utf-8", "replace")))
    if isinstance(value, str) and value.startswith(_B64_MARKER) and len(value) < 64:
        try:
            return _is_masked(base64.b64decode(value, validate=True))
        except ValueError:
            return False
    return isinstance(value, str) and bool(MARKER_RE.fullmatch(value))


def _facts(service_model: Any, operation: Any) -> tuple[frozenset[str], bool, bool, frozenset[str]]:
    """Of the operation's output shape: every member and wire name; whether one is secret-named;
    whether it holds a map; the names only ever given to numbers, booleans and timestamps."""
    key = (service_model.service_name, service_model.api_version, operation.name)
    facts = _FACTS.get(key)
    if facts is None:
        kinds: dict[str, set[str]] = {}
        seen: set[str] = set()
        stack = [operation.output_shape] if operation.output_shape is not None else []
        while stack:
            shape = stack.pop()
            if shape.name in seen:
                continue
            seen.add(shape.name)
            children = list(shape.members.items()) if shape.type_name == "structure" else \
                [("", shape.member)] if shape.type_name == "list" else \
                [("", shape.key), ("", shape.value)] if shape.type_name == "map" else []
            for member, child in children:
                for name in (member, child.serialization.get("name", "")):
                    kinds.setdefault(name, set()).add(child.type_name)
                stack.append(child)
        kinds.pop("", None)
        typed = frozenset(n for n, k in kinds.items() if not k & {"string", "blob", "structure", "list", "map"})
        facts = _FACTS[key] = (frozenset(kinds), any(map(is_secret_name, kinds)),
                               any("map" in k for k in kinds.values()), typed)
        if len(_FACTS) > 4096:
            _FACTS.clear()
    return facts


def _text_payload(operation: Any) -> str | None:
    shape = operation.output_shape
    name = shape.serialization.get("payload") if shape is not None else None
    return name if name and shape.members[name].type_name == "string" else None


def _failed(where: str, headers: Mapping[str, str], why: str) -> MaskingFailed:
    rid = _header(headers, "x-amzn-requestid") or _header(headers, "x-amz-request-id")
    rid = "".join(c for c in rid if c.isalnum() or c in "-_")[:64]
    return MaskingFailed(f"hoop: the response of {where} was withheld: it held {why}, so hoop could not mask it "
                         f"safely. The call did run at AWS{f' (request id {rid})' if rid else ''}.")


def _local(name: Any) -> str:
    return str(name).rpartition("}")[2].rpartition(":")[2]


def _copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    return [_copy(v) for v in obj] if isinstance(obj, list) else obj


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name), "")
