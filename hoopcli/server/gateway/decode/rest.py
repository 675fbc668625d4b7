"""rest-json and rest-xml: the operation from method + requestUri template, parameters from
their ``location`` traits (uri labels, querystring, header, header-prefix maps) and the body
(one ``payload`` member, or the remaining members as a JSON object / an XML document).

Route choice, when several templates match: the most literal query keys of the requestUri
(``?uploads``, ``?x-id=GetObject``), then operations whose required header and query members
are all present, the most of them, then the most literal path characters, then fewer labels."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from botocore.model import MapShape, OperationModel, StructureShape
from botocore.parsers import RestJSONParser, RestXMLParser

from hoopcli.server.gateway.decode.index import Route
from hoopcli.server.gateway.decode.rpc import _StrictUnions, shape_walk
from hoopcli.server.gateway.decode.safe import load_json, load_xml
from hoopcli.server.gateway.decode.values import from_text
from hoopcli.server.gateway.errors import SerializationError
from hoopcli.server.gateway.request import Headers


class _RestJson(_StrictUnions, RestJSONParser):
    pass


class _RestXml(_StrictUnions, RestXMLParser):
    pass


REST_JSON = _RestJson()
REST_XML = _RestXml()


def score(route: Route, path: str, query: dict[str, list[str]], headers: Headers) -> tuple[int, ...] | None:
    """The rank of ``route`` for this request, or None when it cannot be the operation."""
    for key, value in route.query_literals:
        if key not in query or (value is not None and value not in query[key]):
            return None
    if route.pattern.fullmatch(path) is None:
        return None
    for wire in route.required_headers:
        if wire not in headers:
            return None
    for wire in route.required_query:
        if wire not in query:
            return None
    required = len(route.required_headers) + len(route.required_query)
    return (len(route.query_literals), required, route.literal_chars, -route.label_count)


def decode_rest(route: Route, protocol: str, path: str, query: dict[str, list[str]], headers: Headers,
                body: bytes | None) -> tuple[dict[str, Any], str | None]:
    """-> (parameters, the streaming payload member left in the body, if any)."""
    operation = route.operation
    shape = operation.input_shape
    if shape is None:
        return {}, None
    match = route.pattern.fullmatch(path)
    assert match is not None
    labels = {name: unquote(match.group(group), errors="strict") for group, name in route.labels}
    literal_keys = {key for key, _ in route.query_literals}
    params: dict[str, Any] = {}
    claimed: set[str] = set(literal_keys)
    query_map: tuple[str, MapShape] | None = None
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                params[name] = from_text(member, labels[wire])
        elif location == "querystring":
            if member.type_name == "map":
                assert isinstance(member, MapShape)
                query_map = (name, member)
                continue
            claimed.add(wire)
            if wire in query:
                values = query[wire]
                if member.type_name == "list":
                    params[name] = [from_text(member.member, v) for v in values]
                elif len(values) > 1:
                    raise SerializationError(f"query parameter {wire} is repeated")
                else:
                    params[name] = from_text(member, values[0])
        elif location == "header":
            if wire in headers:
                params[name] = from_text(member, headers[wire], header=True)
        elif location == "headers":
            prefix = wire.lower()
            found = {h[len(prefix):]: headers[h] for h in headers if h.startswith(prefix)}
            if found:
                params[name] = found
    if query_map is not None:
        name, member = query_map
        rest = {k: v for k, v in query.items() if k not in claimed and not k.startswith("X-Amz-")}
        if rest:
            if member.value.type_name == "list":
                params[name] = {k: [from_text(member.value.member, x) for x in v]
                                for k, v in rest.items()}
            else:
                if any(len(v) > 1 for v in rest.values()):
                    raise SerializationError("a query parameter is repeated")
                params[name] = {k: from_text(member.value, v[0]) for k, v in rest.items()}
    streaming = _payload(operation, shape, protocol, body, params)
    return params, streaming


def _payload(operation: OperationModel, shape: StructureShape, protocol: str, body: bytes | None,
             params: dict[str, Any]) -> str | None:
    payload = shape.serialization.get("payload")
    parser = REST_JSON if protocol == "rest-json" else REST_XML
    if payload is not None:
        member = shape.members[payload]
        if member.serialization.get("eventstream"):
            return payload  # an event stream is framed, not a document: it passes through
        if member.type_name in ("blob", "string"):
            if body is None:
                return payload
            if body:
                params[payload] = body if member.type_name == "blob" else _text(body)
            return None
        if body is None:
            raise SerializationError("the body must be read before it can be decoded")
        if not body.strip():
            return None
        node = load_json(body) if protocol == "rest-json" else load_xml(body)
        if protocol == "rest-json" and not isinstance(node, dict):
            raise SerializationError("the body must be a JSON object")
        params[payload] = parser._parse_shape(member, node) if member.type_name != "structure" \
            else shape_walk(parser, member, node)
        return None
    body_members = [n for n, m in shape.members.items() if "location" not in m.serialization]
    if not body_members:
        return None
    if body is None:
        raise SerializationError("the body must be read before it can be decoded")
    if not body.strip():
        return None
    if protocol == "rest-json":
        node = load_json(body)
        if not isinstance(node, dict):
            raise SerializationError("the body must be a JSON object")
    else:
        node = load_xml(body)
    decoded = shape_walk(parser, shape, node)
    for name in body_members:
        if name in decoded:
            params[name] = decoded[name]
    return None


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SerializationError("the body must be UTF-8 text") from None
