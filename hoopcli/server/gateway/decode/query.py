"""query and ec2 protocols: ``Action=Op&Version=...&Member.member.1=...`` (form body or query).

botocore has no request-side parser for these (its query parser reads XML responses), so this
module inverts botocore.serialize.QuerySerializer / EC2Serializer: the flat keys become a tree
split on ``.``, walked by the input shape. Lists are ``Name.member.N`` (or ``Name.N`` when
flattened; always flattened for ec2, named by ``queryName`` or the capitalized locationName),
maps ``Name.entry.N.key/value``. Keys the shape does not consume are refused: a guard must not
forward what it did not read."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from botocore.model import ListShape, MapShape, Shape, StructureShape

from hoopcli.server.gateway.decode.safe import MAX_DEPTH
from hoopcli.server.gateway.decode.values import from_text
from hoopcli.server.gateway.errors import InvalidRequest, SerializationError

MAX_PARAMS = 10_000
Tree = dict[str, Any]


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """application/x-www-form-urlencoded, ``+`` as space, strictly UTF-8."""
    out = []
    for part in body.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        try:
            out.append((unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8"),
                        unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")))
        except UnicodeDecodeError:
            raise InvalidRequest("form body is not valid UTF-8 once percent-decoded") from None
    if len(out) > MAX_PARAMS:
        raise InvalidRequest(f"more than {MAX_PARAMS} parameters")
    return out


def build_tree(pairs: list[tuple[str, str]]) -> Tree:
    root: Tree = {}
    for key, value in pairs:
        parts = key.split(".")
        if len(parts) > MAX_DEPTH or "" in parts:
            raise SerializationError(f"malformed parameter name {key[:80]!r}")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SerializationError(f"parameter {key[:80]!r} conflicts with another")
            node = child
        if parts[-1] in node:
            raise SerializationError(f"parameter {key[:80]!r} is repeated or conflicts with another")
        node[parts[-1]] = value
    return root


class QueryDecoder:
    def __init__(self, ec2: bool) -> None:
        self.ec2 = ec2

    def decode(self, shape: StructureShape | None, tree: Tree) -> dict[str, Any]:
        if shape is None:
            if tree:
                raise SerializationError(f"unexpected parameters {sorted(tree)[:5]}")
            return {}
        return self._structure(shape, tree, "")

    def _name(self, member: Shape, name: str) -> str:
        if self.ec2:
            if "queryName" in member.serialization:
                return str(member.serialization["queryName"])
            if "name" in member.serialization:
                text = str(member.serialization["name"])
                return text[:1].upper() + text[1:]
            return name
        if member.type_name == "list" and member.serialization.get("flattened"):
            assert isinstance(member, ListShape)
            if "name" in member.member.serialization:
                return str(member.member.serialization["name"])
        return str(member.serialization.get("name", name))

    def _value(self, shape: Shape, node: Any, where: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            if not isinstance(node, dict):
                raise SerializationError(f"{where} must be a structure")
            return self._structure(shape, node, where)
        if kind == "list":
            assert isinstance(shape, ListShape)
            return self._list(shape, node, where)
        if kind == "map":
            assert isinstance(shape, MapShape)
            return self._map(shape, node, where)
        if isinstance(node, dict):
            raise SerializationError(f"{where} must be a single value")
        return from_text(shape, node)

    def _structure(self, shape: StructureShape, node: Tree, where: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        left = dict(node)
        for name, member in shape.members.items():
            key = self._name(member, name)
            if key in left:
                out[name] = self._value(member, left.pop(key), f"{where}{key}")
        if left:
            raise SerializationError(f"unknown parameters {[where + k for k in sorted(left)][:5]}")
        return out

    @staticmethod
    def _indexed(node: Any, where: str) -> list[Any]:
        if not isinstance(node, dict) or not all(k.isdigit() and k[0] != "0" for k in node):
            raise SerializationError(f"{where} must be numbered from 1")
        keys = sorted(int(k) for k in node)
        if keys != list(range(1, len(keys) + 1)):
            raise SerializationError(f"{where} must be numbered 1..N without gaps")
        return [node[str(k)] for k in keys]

    def _list(self, shape: ListShape, node: Any, where: str) -> list[Any]:
        if node == "":
            return []
        if not (self.ec2 or shape.serialization.get("flattened")):
            name = shape.member.serialization.get("name", "member")
            if not isinstance(node, dict) or set(node) != {name}:
                raise SerializationError(f"{where} must be a list ({where}.{name}.N)")
            node = node[name]
        return [self._value(shape.member, item, f"{where}.{i}") for i, item in enumerate(self._indexed(node, where), 1)]

    def _map(self, shape: MapShape, node: Any, where: str) -> dict[str, Any]:
        if not shape.serialization.get("flattened"):
            if not isinstance(node, dict) or set(node) != {"entry"}:
                raise SerializationError(f"{where} must be a map ({where}.entry.N)")
            node = node["entry"]
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out: dict[str, Any] = {}
        for entry in self._indexed(node, where):
            if not isinstance(entry, dict) or set(entry) - {key_name, value_name} or key_name not in entry:
                raise SerializationError(f"{where} entries need {key_name} and {value_name}")
            key = self._value(shape.key, entry[key_name], where)
            if key in out:
                raise SerializationError(f"{where} repeats key {str(key)[:40]!r}")
            out[key] = self._value(shape.value, entry[value_name], where) if value_name in entry else None
        return out
