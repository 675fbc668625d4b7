"""Which botocore service models a request can belong to, and their operations' routes.

Built lazily from botocore's data: the signing name (credential scope) of every service, the
json target prefixes, query actions, and for the rest protocols one compiled route per
operation (method, requestUri path as a regular expression with ``{Label}`` and greedy
``{Key+}`` labels, and the literal query keys of the requestUri such as ``?uploads`` or
``?x-id=GetObject``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import botocore.session
from botocore.model import OperationModel, ServiceModel

from hoopcli.server.nonblocking import may_block

_LABEL = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    labels: tuple[tuple[str, str], ...]         # (regex group, label name)
    query_literals: tuple[tuple[str, str | None], ...]
    literal_chars: int
    label_count: int
    required_headers: tuple[str, ...] = ()     # wire names of required header members
    required_query: tuple[str, ...] = ()       # wire names of required querystring members (not maps)


def compile_route(operation: OperationModel) -> Route:
    http = operation.http
    path, _, query = http.get("requestUri", "/").partition("?")
    regex, labels, literal, pos = [], [], 0, 0
    for i, match in enumerate(_LABEL.finditer(path)):
        text = path[pos:match.start()]
        regex.append(re.escape(text))
        literal += len(text)
        name = match.group(1)
        group = f"g{i}"
        if name.endswith("+"):
            regex.append(f"(?P<{group}>.+)")
            name = name[:-1]
        else:
            regex.append(f"(?P<{group}>[^/]+)")
        labels.append((group, name))
        pos = match.end()
    regex.append(re.escape(path[pos:]))
    literal += len(path) - pos
    literals: list[tuple[str, str | None]] = []
    for item in query.split("&"):
        if item:
            key, eq, value = item.partition("=")
            literals.append((key, value if eq else None))
    required_headers: list[str] = []
    required_query: list[str] = []
    shape = operation.input_shape
    if shape is not None:
        for name in shape.required_members:
            member = shape.members[name]
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "header":
                required_headers.append(wire)
            elif location == "querystring" and member.type_name != "map":
                required_query.append(wire)
    return Route(operation, http.get("method", "POST").upper(), re.compile("".join(regex)), tuple(labels),
                 tuple(literals), literal, len(labels), tuple(required_headers), tuple(required_query))


class ServiceIndex:
    """Thread-safe, lazily filled lookups over botocore's service models."""

    def __init__(self, session: botocore.session.Session | None = None, services: Iterable[str] | None = None) -> None:
        self._session = session or botocore.session.get_session()
        self._names = list(services) if services is not None else None
        self._lock = threading.Lock()
        self._models: dict[str, ServiceModel] = {}
        self._by_signing: dict[str, list[ServiceModel]] | None = None
        self._targets: dict[str, dict[str, str]] = {}
        self._routes: dict[str, dict[str, dict[str | None, list[Route]]]] = {}

    def model(self, name: str) -> ServiceModel:
        found = self._models.get(name)
        if found is None:
            may_block("botocore model load")
            found = self._models[name] = self._session.get_service_model(name)
        return found

    def candidates(self, signing_name: str) -> list[ServiceModel]:
        if self._by_signing is None:
            may_block("botocore models load")      # the warm-up thread may hold the lock for seconds
            with self._lock:
                if self._by_signing is None:
                    table: dict[str, list[ServiceModel]] = {}
                    for name in self._names or self._session.get_available_services():
                        model = self.model(name)
                        table.setdefault(model.signing_name, []).append(model)
                    if "s3" in table:  # S3 Express control operations are signed as s3express
                        table.setdefault("s3express", list(table["s3"]))
                    for models in table.values():  # the service named like its signing name first (rds, not neptune)
                        models.sort(key=lambda m: (m.service_name != m.signing_name, m.service_name))
                    self._by_signing = table
        return self._by_signing.get(signing_name, [])

    def json_operation(self, model: ServiceModel, target: str) -> str | None:
        table = self._targets.get(model.service_name)
        if table is None:
            prefix = model.metadata.get("targetPrefix", "")
            table = {f"{prefix}.{op}": op for op in model.operation_names}
            self._targets[model.service_name] = table
        return table.get(target)

    def routes(self, model: ServiceModel, method: str, query_keys: Iterable[str] | None = None) -> list[Route]:
        """The routes of `method`; with `query_keys`, only those the request's query can satisfy
        (a route whose requestUri names a query key the request lacks can never match)."""
        table = self._routes.get(model.service_name)
        if table is None:
            table = {}
            for op in model.operation_names:
                route = compile_route(model.operation_model(op))
                key = route.query_literals[0][0] if route.query_literals else None
                table.setdefault(route.method, {}).setdefault(key, []).append(route)
            self._routes[model.service_name] = table
        groups = table.get(method, {})
        if query_keys is None:
            return [route for group in groups.values() for route in group]
        out = list(groups.get(None, ()))
        for key in query_keys:
            out.extend(groups.get(key, ()))
        return out


_shared: ServiceIndex | None = None
_shared_lock = threading.Lock()


def shared_index() -> ServiceIndex:
    """One index per process: botocore's models do not change while it runs, and loading them
    all takes seconds (several gateways in one process, as in tests, share it)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = ServiceIndex()
    return _shared
