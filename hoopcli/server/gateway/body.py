"""Request bodies at the gateway: read whole (bounded) or streamed through a check.

A streamed body is released upstream only as it is verified: an aws-chunked body chunk by chunk
(every chunk's signature checked before its bytes leave), a body signed by its SHA-256 as it
arrives, with the last piece held back until the digest matches. A mismatch ends the stream
before its final bytes, so the upstream request never completes with a body the client did not
sign (the upstream Content-Length is fixed in advance).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hoopcli.server.gateway.errors import GatewayError, IncompleteBody
from hoopcli.server.gateway.sigv4 import PayloadMode, Verified

Receive = Callable[[], Awaitable[dict[str, Any]]]


class EntityTooLarge(GatewayError):
    code, status = "EntityTooLarge", 413


async def read_all(receive: Receive, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody("the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise EntityTooLarge(f"the request body is larger than the gateway's limit ({cap} bytes)")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


class _Check:
    """feed(bytes) -> verified bytes to release; finish() raises unless the whole body was good."""

    def __init__(self, verified: Verified, headers: Any) -> None:
        self.decoder = None
        self.hasher = None
        if verified.payload in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_UNSIGNED):
            length = headers.get("x-amz-decoded-content-length")
            self.decoder = verified.chunk_decoder(int(length) if length and length.isdigit() else None,
                                                  headers.get("x-amz-trailer"))
        elif verified.payload is PayloadMode.PENDING:
            self.hasher = verified.payload_hasher()

    def feed(self, data: bytes) -> bytes:
        if self.decoder is not None:
            return self.decoder.feed(data)
        if self.hasher is not None:
            self.hasher.feed(data)
        return data

    def finish(self) -> bytes:
        if self.decoder is not None:
            self.decoder.finish()
            return b""
        if self.hasher is not None:
            self.hasher.finish()
        return b""


def check_whole(verified: Verified, headers: Any, body: bytes) -> bytes:
    """The payload of a body read whole, verified (decoded when aws-chunked)."""
    check = _Check(verified, headers)
    out = check.feed(body)
    return out + check.finish()


def decoded_length(verified: Verified, headers: Any) -> int | None:
    """The payload's length when it is known before the body arrives, else None."""
    name = "x-amz-decoded-content-length" if verified.payload in (
        PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_UNSIGNED) else "content-length"
    value = headers.get(name)
    return int(value) if value is not None and value.isdigit() else None


async def stream(receive: Receive, verified: Verified, headers: Any, length: int,
                 counter: list[int]) -> AsyncIterator[bytes]:
    """The verified payload as it arrives; `counter[0]` counts the bytes released."""
    check = _Check(verified, headers)
    held = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IncompleteBody("the client went away in the middle of its body")
        out = check.feed(message.get("body", b""))
        if not message.get("more_body", False):
            last = held + out + check.finish()
            if counter[0] + len(last) != length:
                raise IncompleteBody(f"the body has {counter[0] + len(last)} bytes, not the {length} announced")
            counter[0] += len(last)
            if last:
                yield last
            return
        if out:
            if held:
                counter[0] += len(held)
                if counter[0] > length:
                    raise IncompleteBody(f"the body is longer than the {length} bytes announced")
                yield held
            held = out
