"""Round trip: parameters generated from an operation's input shape, serialized by botocore's own
serializer (create_serializer + prepare_request_dict, as a client does), decoded by the gateway.

Run as a script for the full sweep's report: ``.venv/bin/python tests/gateway/gateway_roundtrip.py``."""

from __future__ import annotations

import collections
import datetime
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.serialize import create_serializer

from hoopcli.server.gateway.decode import Decoder, ServiceIndex
from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest

DOMAIN = "gw.test"
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
SESSION = botocore.session.get_session()
INDEX = ServiceIndex(SESSION)
DECODER = Decoder(INDEX, domain=DOMAIN)


class Generator:
    """Deterministic, valid-by-type parameters: every required member plus up to ``optional``
    optional ones per structure (fewer deeper down), respecting enum, min and max loosely."""

    def __init__(self, optional: int = 3, max_depth: int = 5) -> None:
        self.optional = optional
        self.max_depth = max_depth

    def params(self, operation: OperationModel) -> dict[str, Any]:
        shape = operation.input_shape
        if shape is None:
            return {}
        greedy = set(re.findall(r"\{([^}]+)\+\}", operation.http.get("requestUri", "")))
        return self._structure(shape, 0, greedy, top=True)

    def _structure(self, shape: Any, depth: int, greedy: set[str] = frozenset(), top: bool = False) -> dict[str, Any]:
        members = shape.members
        if shape.is_tagged_union:
            simple = [n for n, m in members.items() if m.type_name not in ("structure", "list", "map")]
            name = simple[0] if simple and depth >= 2 else next(iter(members))
            return {name: self._value(members[name], depth + 1, name)}
        chosen = list(shape.required_members)
        if depth < self.max_depth - 2:
            extra = [n for n in members if n not in chosen and not members[n].serialization.get("eventstream")
                     and not (members[n].serialization.get("location") == "header" and
                              members[n].serialization.get("name", "").lower() in ("content-length",))]
            chosen += extra[:max(0, self.optional - depth)]
        if not chosen and members:  # an empty structure does not survive query serialization
            simple = [n for n, m in members.items() if m.type_name not in ("structure", "list", "map")]
            chosen = (simple or list(members))[:1]
        out = {}
        for name in chosen:
            member = members[name]
            if member.serialization.get("eventstream") or (member.type_name == "structure" and \
                    member.serialization.get("eventstream")):
                continue
            value = self._value(member, depth + 1, name)
            if top and name in greedy:
                value = "dir/" + value
            out[name] = value
        return out

    def _value(self, shape: Shape, depth: int, name: str) -> Any:
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            if shape.is_document_type:  # type: ignore[attr-defined]
                return {"doc": [1, "two"]}
            return self._structure(shape, depth)
        if kind == "list":
            if depth > self.max_depth + 2:
                return []
            return [self._value(shape.member, depth + 1, name)]  # type: ignore[attr-defined]
        if kind == "map":
            if depth > self.max_depth + 2:
                return {}
            key = self._value(shape.key, depth + 1, "key")  # type: ignore[attr-defined]
            if shape.serialization.get("location") == "headers":
                key = key.lower()
            return {key: self._value(shape.value, depth + 1, name)}  # type: ignore[attr-defined]
        if kind == "string":
            if shape.serialization.get("jsonvalue"):
                return {"json": "value"}
            if shape.enum:  # type: ignore[attr-defined]
                return shape.enum[0]  # type: ignore[attr-defined]
            low = int(meta.get("min", 1) or 1)
            high = int(meta.get("max", 24))
            text = ("v" + re.sub(r"[^A-Za-z0-9]", "", name).lower() + "0" * 40)[:max(low, min(high, 12))]
            return text.ljust(low, "0")[:high]
        if kind in ("integer", "long", "short", "byte"):
            low = int(meta.get("min", 1))
            return max(low, min(int(meta.get("max", 7)), 7))
        if kind in ("float", "double"):
            return 1.5
        if kind == "boolean":
            return True
        if kind == "timestamp":
            return WHEN
        if kind == "blob":
            return b"streamed-body" if shape.serialization.get("streaming") else b"\x00blob\xff"
        return "x"


def request_for(model: ServiceModel, operation: OperationModel, params: dict[str, Any]) -> GatewayRequest:
    serializer = create_serializer(model.protocol, include_validation=False)
    request_dict = serializer.serialize_to_request(params, operation)
    prepare_request_dict(request_dict, endpoint_url=f"http://{DOMAIN}")
    prepared = create_request_object(request_dict).prepare()
    parts = urlsplit(prepared.url)
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in prepared.headers.items()}
    headers["Host"] = parts.netloc
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = body.read()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return GatewayRequest.build(prepared.method, target, headers, body)


ENDPOINT_PREFIX = "exact, given the endpoint prefix in the host"
ALIAS = "exact as RDS (neptune and docdb send RDS requests: same endpoint, Action and Version)"
TWIN = "the same wire request as another operation, decoded as that one (named in aliases)"
ALIASES = {"neptune": ("rds", "docdb"), "docdb": ("rds", "neptune")}


def with_host(request: GatewayRequest, host: str) -> GatewayRequest:
    headers = dict(request.headers)
    headers["host"] = host
    return GatewayRequest.build(request.method, request.target, headers, request.body)


def round_trip(service: str, operation_name: str, generator: Generator | None = None) -> str | None:
    """None when the decode is exact, else the reason."""
    model = INDEX.model(service)
    operation = model.operation_model(operation_name)
    params = (generator or Generator()).params(operation)
    try:
        request = request_for(model, operation, params)
    except Exception as exc:  # the serializer itself cannot build it: not a decode failure
        return f"serializer: {type(exc).__name__}"
    try:
        decoded = DECODER.decode(request, model.signing_name)
    except GatewayError as exc:
        if exc.code != "AmbiguousRequest":
            return f"{exc.code}: {exc.message[:80]}"
        # Services that share a signing name and a path (bedrock / bedrock-agent TagResource):
        # only the host tells them apart, as at AWS; the gateway reads it as <endpointPrefix>.<domain>.
        try:
            decoded = DECODER.decode(with_host(request, f"{model.endpoint_prefix}.{DOMAIN}"), model.signing_name)
        except GatewayError as again:
            return f"{again.code}: {again.message[:80]}"
        if (decoded.service, decoded.operation) == (service, operation_name) and decoded.params == params:
            return ENDPOINT_PREFIX
    if "ContentLength" in decoded.params and "ContentLength" not in params and request.body is not None and \
            decoded.params["ContentLength"] == len(request.body):
        del decoded.params["ContentLength"]  # the Content-Length header is on the wire: right to read it
    if decoded.service != service and decoded.service in ALIASES.get(service, ()) and \
            decoded.operation == operation_name and decoded.params == params:
        return ALIAS
    if f"{service}.{operation_name}" in decoded.aliases and decoded.params == params:
        return TWIN
    if (decoded.service, decoded.operation) != (service, operation_name):
        return f"decoded as {decoded.service}.{decoded.operation}"
    if decoded.params != params:
        return "parameters differ"
    return None


def all_operations() -> list[tuple[str, str]]:
    return [(s, o) for s in SESSION.get_available_services() for o in INDEX.model(s).operation_names]


def sweep(operations: list[tuple[str, str]]) -> tuple[int, dict[str, list[str]]]:
    failures: dict[str, list[str]] = collections.defaultdict(list)
    for service, op in operations:
        reason = round_trip(service, op)
        if reason is not None:
            failures[re.sub(r"'[^']*'|\"[^\"]*\"|[A-Za-z0-9_-]+\.[A-Z][A-Za-z0-9]+", "…", reason)].append(f"{service}.{op}")
    return len(operations), failures


if __name__ == "__main__":
    total, failures = sweep(all_operations())
    prefixed, aliased = len(failures.pop(ENDPOINT_PREFIX, [])), len(failures.pop(ALIAS, []))
    twins = failures.pop(TWIN, [])
    aliased += len(twins)
    print("twins:", ", ".join(twins))
    failed = sum(len(v) for v in failures.values())
    plain = total - failed - prefixed - aliased
    print(f"{total} operations: {plain} exact from the request alone, {prefixed} exact given the endpoint prefix "
          f"in the host, {aliased} exact as the operation they are on the wire (RDS, twins), {failed} not")
    print(f"exact: {100 * plain / total:.2f} % alone, {100 * (plain + prefixed) / total:.2f} % with the host, "
          f"{100 * (total - failed) / total:.2f} % counting wire-identical twins")
    for reason, ops in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(ops):5d}  {reason}: {', '.join(ops[:6])}{' ...' if len(ops) > 6 else ''}")
    sys.exit(0)
