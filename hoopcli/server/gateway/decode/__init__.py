"""Decode a verified request into (service, operation, parameters) from botocore's models.

    index.py   signing name -> candidate service models; json targets; compiled rest routes
    safe.py    bounded JSON / XML (no DTD, no entities) / CBOR loaders
    values.py  text -> typed value; the final type check of every decoded parameter
    rpc.py     json (X-Amz-Target) and smithy-rpc-v2-cbor (/service/S/operation/O)
    query.py   query and ec2 (Action + Version, form body or query string)
    rest.py    rest-json and rest-xml (method + requestUri templates, location traits)

The request's form picks the protocol among the candidates' ``protocols`` (a service may speak
several: cbor and json, or json with awsQueryCompatible): ``smithy-protocol: rpc-v2-cbor``,
then ``X-Amz-Target``, then ``Action``, then the rest route table. With a gateway domain, a host
``<prefix>.<domain>`` narrows the candidates to the service whose endpoint prefix it is, or for
S3 names the bucket (virtual-host style); otherwise S3 is path style.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.model import ServiceModel

from hoopcli.server.gateway.decode import query as query_protocol
from hoopcli.server.gateway.decode import rest, rpc
from hoopcli.server.gateway.decode.index import Route, ServiceIndex
from hoopcli.server.gateway.decode.values import check
from hoopcli.server.gateway.errors import GatewayError, InvalidRequest, UnknownOperation
from hoopcli.server.gateway.request import GatewayRequest, query_pairs

__all__ = ["Decoded", "Decoder", "ServiceIndex"]

_REST = ("rest-json", "rest-xml")
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Decoded:
    service: str                 # botocore service model name, e.g. "s3", "dynamodb"
    operation: str               # e.g. "GetObject"
    params: dict[str, Any]       # as a boto3 caller would have passed them
    protocol: str                # the wire protocol the request used
    streaming_member: str | None = None  # a streaming payload member left in the body
    aliases: tuple[str, ...] = ()  # other service.operation that read the very same request


_Match = tuple[tuple[int, ...], ServiceModel, Route, str]


def _express(route: Route) -> bool:
    return any(p.name == "UseS3ExpressControlEndpoint" and p.value for p in route.operation.static_context_parameters)


def _break_tie(top: list[_Match], express: bool) -> list[_Match]:
    """Requests the models cannot tell apart on the wire: a deprecated operation and its
    successor (S3 GetBucketLifecycle / GetBucketLifecycleConfiguration), an S3 Express control
    operation and its general-purpose twin (told apart by the signing name s3express), and one
    operation that two models of one endpoint both describe (greengrass / greengrassv2,
    sms-voice / pinpoint-sms-voice): the first is chosen and the others named as aliases.
    Anything else is ambiguous and refused."""
    if len(top) > 1 and len({b[1].service_name for b in top}) == 1:
        top = [b for b in top if not b[2].operation.deprecated] or top
    if len(top) > 1:
        top = [b for b in top if _express(b[2]) == express] or top
    if len({b[2].operation.name for b in top}) > 1 or \
            len({b[1].endpoint_prefix for b in top}) > 1:
        names = sorted(f"{b[1].service_name}.{b[2].operation.name}" for b in top)[:4]
        raise UnknownOperation(f"ambiguous request: {', '.join(names)}", code="AmbiguousRequest")
    return top


def _protocols(model: ServiceModel) -> list[str]:
    found = list(model.metadata.get("protocols") or [model.protocol])
    if "awsQueryCompatible" in model.metadata and "query" not in found:
        found.append("query")
    return found


class Decoder:
    def __init__(self, index: ServiceIndex | None = None, *, domain: str | None = None) -> None:
        self.index = index or ServiceIndex()
        self.domain = domain.lower().rstrip(".") if domain else None

    def decode(self, request: GatewayRequest, signing_name: str) -> Decoded:
        candidates = self.index.candidates(signing_name)
        if not candidates:
            raise UnknownOperation(f"no AWS service signs as {signing_name[:64]!r}")
        prefix = self._host_prefix(request)
        if prefix:
            named = [m for m in candidates if m.endpoint_prefix == prefix]
            if named:
                candidates, prefix = named, None
        headers = request.headers
        if headers.get("smithy-protocol") == "rpc-v2-cbor":
            return self._cbor(request, candidates)
        target = headers.get("x-amz-target")
        if target is not None:
            return self._json(request, candidates, target)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == _FORM or "Action=" in request.query:
            queryish = [m for m in candidates if {"query", "ec2"} & set(_protocols(m))]
            if queryish:
                return self._query(request, queryish, content_type == _FORM)
        return self._rest(request, [m for m in candidates if m.protocol in _REST], prefix, signing_name == "s3express")

    def _host_prefix(self, request: GatewayRequest) -> str | None:
        if not self.domain:
            return None
        host = request.headers.get("host", "").lower()
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.endswith("." + self.domain):
            return host[:-len(self.domain) - 1]
        return None

    @staticmethod
    def _finish(model: ServiceModel, operation: str, params: dict[str, Any], protocol: str,
                streaming: str | None = None, aliases: tuple[str, ...] = ()) -> Decoded:
        shape = model.operation_model(operation).input_shape
        if shape is not None:
            check(shape, params)
        return Decoded(model.service_name, operation, params, protocol, streaming, aliases)

    def _cbor(self, request: GatewayRequest, candidates: list[ServiceModel]) -> Decoded:
        parts = request.path.split("/")
        if len(parts) != 5 or parts[1] != "service" or parts[3] != "operation" or request.method != "POST":
            raise InvalidRequest("rpc-v2-cbor requests are POST /service/<service>/operation/<operation>")
        for model in candidates:
            if "smithy-rpc-v2-cbor" in _protocols(model) and model.metadata.get("targetPrefix") == parts[2] \
                    and parts[4] in model.operation_names:
                body = self._body(request)
                params = rpc.decode_cbor(model.operation_model(parts[4]), body)
                return self._finish(model, parts[4], params, "smithy-rpc-v2-cbor")
        raise UnknownOperation(f"no operation {parts[4][:64]!r} in service {parts[2][:64]!r}")

    def _json(self, request: GatewayRequest, candidates: list[ServiceModel], target: str) -> Decoded:
        for model in candidates:
            if "json" not in _protocols(model):
                continue
            operation = self.index.json_operation(model, target)
            if operation is not None:
                if request.method != "POST":
                    raise InvalidRequest("json protocol requests are POST")
                params = rpc.decode_json(model.operation_model(operation), self._body(request))
                return self._finish(model, operation, params, "json")
        raise UnknownOperation(f"no operation for X-Amz-Target {target[:80]!r}")

    def _query(self, request: GatewayRequest, candidates: list[ServiceModel], form: bool) -> Decoded:
        pairs = query_pairs(request.query)
        if form and request.method == "POST":
            pairs = [p for p in pairs if not p[0].startswith("X-Amz-")] + query_protocol.form_pairs(self._body(request))
        pairs = [p for p in pairs if not p[0].startswith("X-Amz-")]
        tree = query_protocol.build_tree(pairs)
        action, version = tree.pop("Action", None), tree.pop("Version", None)
        if not isinstance(action, str):
            raise InvalidRequest("the request names no Action")
        # neptune and docdb speak RDS's API (same endpoint, Action and Version): the first model
        # that reads every parameter wins, rds first.
        first_error: GatewayError | None = None
        for model in candidates:
            if action in model.operation_names and (version is None or version == model.api_version):
                ec2 = "ec2" in _protocols(model)
                shape = model.operation_model(action).input_shape
                try:
                    params = query_protocol.QueryDecoder(ec2).decode(shape, tree)
                    return self._finish(model, action, params, "ec2" if ec2 else "query")
                except GatewayError as exc:
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
        raise UnknownOperation(f"Could not find operation {action[:64]} for version {str(version)[:16]}",
                               code="InvalidAction")

    def _rest(self, request: GatewayRequest, candidates: list[ServiceModel], prefix: str | None,
              express: bool = False) -> Decoded:
        query: dict[str, list[str]] = {}
        for name, value in query_pairs(request.query):
            query.setdefault(name, []).append(value)
        best: list[tuple[tuple[int, ...], ServiceModel, Route, str]] = []
        for model in candidates:
            paths = [request.path]
            if prefix is not None and model.service_name == "s3":  # virtual-host style, or a host prefix
                paths.insert(0, "/" + prefix + (request.path if request.path != "/" else ""))
            elif model.service_name == "s3" and request.path.count("/") == 2 and request.path.endswith("/") \
                    and len(request.path) > 2:
                paths.append(request.path[:-1])     # "/bucket/" (the JS SDK, path style) is "/bucket" to S3
            for path in paths:
                for route in self.index.routes(model, request.method, query):
                    rank = rest.score(route, path, query, request.headers)
                    if rank is not None:
                        best.append((rank, model, route, path))
        if not best:
            raise UnknownOperation(f"no operation matches {request.method} {request.path[:200]}")
        best.sort(key=lambda item: item[0], reverse=True)
        top = _break_tie([b for b in best if b[0] == best[0][0]], express)
        _, model, route, path = top[0]
        aliases = tuple(f"{b[1].service_name}.{b[2].operation.name}" for b in top[1:])
        try:
            params, streaming = rest.decode_rest(route, model.protocol, path, query, request.headers, request.body)
        except UnicodeDecodeError:
            raise InvalidRequest("path is not valid UTF-8 once percent-decoded") from None
        return self._finish(model, route.operation.name, params, model.protocol, streaming, aliases)

    @staticmethod
    def _body(request: GatewayRequest) -> bytes:
        if request.body is None:
            raise GatewayError("the body must be read before this request can be decoded", code="InternalError",
                               status=500)
        return request.body
