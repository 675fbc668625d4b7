"""Errors on the wire, in each protocol's own format, so that every SDK shows code and message.

    guess_protocol(request, signing_name)       the protocol of a request not decoded yet
    error_response(protocol, code, message, status, request_id, ...) -> (status, headers, body)

Formats (what botocore's parsers and the AWS SDK for JavaScript v3 read):

- ``json``: ``application/x-amz-json-1.0|1.1``, ``x-amzn-ErrorType: Code``, body
  ``{"__type": Code, "message": ...}``; with ``query_compatible`` (SQS) also
  ``x-amzn-query-error: Code;Sender``.
- ``rest-json``: ``application/json``, ``x-amzn-ErrorType: Code``, body ``{"code", "message"}``.
- ``query``: ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.
- ``ec2``: ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``.
- ``rest-xml`` (S3 style): ``<Error><Code/><Message/><RequestId/></Error>``; a HEAD answer has
  no body, so SDKs show the status only (``409``, "Conflict"), as they do for AWS.
- ``smithy-rpc-v2-cbor``: ``smithy-protocol: rpc-v2-cbor``, CBOR ``{"__type", "message"}``.

Codes are reduced to ``[A-Za-z0-9._-]`` (SDKs cut a code at ``:`` and ``#``); messages are
escaped for their format, characters XML 1.0 cannot carry are replaced, and messages are capped.

Which statuses SDKs retry on their own (checked in tests/gateway/test_wire.py):

- botocore standard mode (boto3, AWS CLI v2): statuses 500, 502, 503, 504 and 429; throttling
  and transient codes (``Throttling``, ``RequestTimeout``, ...); modeled errors marked
  ``retryable``; a DynamoDB body whose ``x-amz-crc32`` does not match; STS
  ``IDPCommunicationError``.
- botocore legacy mode (``_retry.json``): 500, 502, 503, 504, 509 and 429 whatever the code,
  plus code-and-status pairs (400 ``Throttling``..., DynamoDB 409
  ``ReplicatedWriteConflictException``, SQS 403 ``RequestThrottled``, S3 400 ``RequestTimeout``
  and ``BadDigest``, ...). Both are needed: a 409 with another code is not retried.
- JS SDK v3 (``@smithy/service-error-classification``): 429, 500, 502, 503, 504, throttling and
  transient codes, modeled ``$retryable`` errors, and any error after which the client corrected
  its clock skew from the response's ``Date`` header (so that header must be the server's true
  time): a client with a wrong clock retries its ``RequestTimeTooSkewed`` once, as with AWS.
  It refuses a CBOR answer without ``smithy-protocol: rpc-v2-cbor``.

So ``HoopApprovalPending`` uses **409**, as intended: no SDK retries a 409 by status, and the
code is in no retry list (the one refusal of ours an SDK retries is ``BadDigest``, by S3 in
legacy mode: safe, as nothing was forwarded). 429 and 503 would make SDKs retry by themselves (3 to 10 attempts,
each a new request at the gateway); 403 is not retried either, but it reads as a final refusal
(``AccessDenied``), while 409 Conflict says "not in that state yet": the same request succeeds
once approved. Never add ``x-amz-crc32`` or ``x-amz-bucket-region`` to an error. Avoid 400 on S3
``HeadObject``: botocore takes a bodiless 400 there as a wrong region and probes HeadBucket.
"""

from __future__ import annotations

import json
import re
import struct
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest, query_pairs

__all__ = ["PROTOCOLS", "encode_cbor", "error_response", "guess_protocol"]

PROTOCOLS = ("json", "rest-json", "query", "ec2", "rest-xml", "smithy-rpc-v2-cbor")
MAX_MESSAGE = 4096
REST_XML_SIGNING_NAMES = frozenset({"s3", "s3express", "s3-outposts", "s3-object-lambda", "cloudfront",
                                    "route53"})
_NOT_CODE = re.compile(r"[^A-Za-z0-9._-]")
_NOT_HEADER = re.compile(r"[^\x21-\x7e]")
# characters XML 1.0 cannot carry, even as character references
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REQUEST_ID_HEADERS = {"rest-xml": "x-amz-request-id"}


def guess_protocol(request: GatewayRequest, signing_name: str | None) -> str:
    """The protocol an error should use before the request was decoded (bad signature, unknown
    key): from the request's form first, then from the signing name."""
    headers = request.headers
    if headers.get("smithy-protocol", "").strip().lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if "x-amz-target" in headers:
        return "json"
    form = headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")
    if form or _has_action(request.query):
        return "ec2" if signing_name == "ec2" else "query"
    if not signing_name or signing_name in REST_XML_SIGNING_NAMES:
        return "rest-xml"
    return "rest-json"


def _has_action(query: str) -> bool:
    if "Action=" not in query:
        return False
    try:
        return any(name == "Action" for name, _ in query_pairs(query))
    except GatewayError:  # a query the gateway refuses anyway: still answer in query form
        return True


def error_response(protocol: str, code: str, message: str, status: int, request_id: str, *,
                   head: bool = False, json_version: str | None = None,
                   query_compatible: bool = False) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of an error as AWS sends it in ``protocol``. The caller adds
    Content-Length and Date. ``head``: a HEAD request (no body). ``json_version``: "1.0" or
    "1.1" for json (the request's Content-Type says which). ``query_compatible``: a json
    service marked awsQueryCompatible (SQS), whose SDKs read ``x-amzn-query-error``."""
    code = _NOT_CODE.sub("", code)[:128] or "InternalFailure"
    message = _clean_message(message)
    rid = _NOT_HEADER.sub("", request_id)[:128]
    fault = "Sender" if status < 500 else "Receiver"
    headers = [(_REQUEST_ID_HEADERS.get(protocol, "x-amzn-RequestId"), rid)]
    body: bytes
    if protocol == "json":
        version = json_version if json_version in ("1.0", "1.1") else "1.0"
        headers += [("Content-Type", f"application/x-amz-json-{version}"), ("x-amzn-ErrorType", code)]
        if query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        body = _json({"__type": code, "message": message})
    elif protocol == "rest-json":
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
        body = _json({"code": code, "message": message})
    elif protocol == "smithy-rpc-v2-cbor":
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        if query_compatible:
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        body = encode_cbor({"__type": code, "message": message})
    elif protocol == "query":
        headers.append(("Content-Type", "text/xml"))
        body = _xml(f"<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code><Message>{_x(message)}"
                    f"</Message></Error><RequestId>{_x(rid)}</RequestId></ErrorResponse>")
    elif protocol == "ec2":
        headers.append(("Content-Type", "text/xml;charset=UTF-8"))
        body = _xml(f"<Response><Errors><Error><Code>{code}</Code><Message>{_x(message)}</Message></Error>"
                    f"</Errors><RequestID>{_x(rid)}</RequestID></Response>")
    else:  # rest-xml, and anything unknown: the S3 form is read by every rest-xml client
        headers.append(("Content-Type", "application/xml"))
        body = _xml(f"<Error><Code>{code}</Code><Message>{_x(message)}</Message>"
                    f"<RequestId>{_x(rid)}</RequestId></Error>")
    return status, headers, b"" if head else body


def _clean_message(message: str) -> str:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
    return _NOT_XML.sub("\ufffd", message)


def _json(obj: dict[str, str]) -> bytes:
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _x(text: str) -> str:
    return escape(text, {"\r": "&#13;", '"': "&quot;"})


def _xml(document: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + document).encode("utf-8")


# -- CBOR (RFC 8949): the item kinds AWS bodies use ----------------------------------------
def encode_cbor(value: Any) -> bytes:
    """CBOR for None, bool, int (64-bit), float, str, bytes, list, dict with str keys and
    datetime (tag 1, epoch seconds). Raises ValueError on anything else."""
    out = bytearray()
    _encode(value, out, 0)
    return bytes(out)


def _head(major: int, n: int, out: bytearray) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 1 << 64:
        size = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 4 if n < 1 << 32 else 8
        out.append(major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[size])
        out += n.to_bytes(size, "big")
    else:
        raise ValueError("integer out of CBOR range")


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > 100:
        raise ValueError("nested too deeply for CBOR")
    if value is None:
        out.append(0xF6)
    elif isinstance(value, bool):
        out.append(0xF5 if value else 0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(0, value, out)
        else:
            _head(1, -1 - value, out)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        data = value.encode("utf-8", "replace")
        _head(3, len(data), out)
        out += data
    elif isinstance(value, (bytes, bytearray)):
        _head(2, len(value), out)
        out += value
    elif isinstance(value, (list, tuple)):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("CBOR map keys must be strings")
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif isinstance(value, datetime):
        out.append(0xC1)
        _encode(value.timestamp(), out, depth + 1)
    else:
        raise ValueError(f"cannot encode {type(value).__name__} as CBOR")
