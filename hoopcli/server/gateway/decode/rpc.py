"""json (X-Amz-Target) and smithy-rpc-v2-cbor bodies: the whole input shape is the body.

botocore's own response parsers walk the shapes (jsonName, base64 blobs, timestamps, unions);
the bounded loaders in safe.py parse the bytes first."""

from __future__ import annotations

from typing import Any

from botocore.model import OperationModel
from botocore.parsers import JSONParser, ResponseParserError, RpcV2CBORParser

from hoopcli.server.gateway.decode.safe import load_cbor, load_json
from hoopcli.server.gateway.errors import SerializationError


class _StrictUnions:
    def _handle_unknown_tagged_union_member(self, tag: str) -> Any:
        raise SerializationError(f"unknown union member {tag[:64]!r}")


class _Json(_StrictUnions, JSONParser):
    pass


class _Cbor(_StrictUnions, RpcV2CBORParser):
    def _handle_timestamp(self, shape: Any, value: Any) -> Any:
        return value  # load_cbor already turned tag 1 into an aware datetime


JSON = _Json()
CBOR = _Cbor()


def shape_walk(parser: Any, shape: Any, node: Any) -> dict[str, Any]:
    try:
        value = parser._parse_shape(shape, node)
    except SerializationError:
        raise
    except (ResponseParserError, AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise SerializationError(f"body does not fit {shape.name}: {type(exc).__name__}") from None
    return value if isinstance(value, dict) else {}


def decode_json(operation: OperationModel, body: bytes) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    node = load_json(body) if body.strip() else {}
    if not isinstance(node, dict):
        raise SerializationError("the body must be a JSON object")
    return shape_walk(JSON, shape, node)


def decode_cbor(operation: OperationModel, body: bytes) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    node = load_cbor(body) if body else {}
    if not isinstance(node, dict):
        raise SerializationError("the body must be a CBOR map")
    return shape_walk(CBOR, shape, node)
