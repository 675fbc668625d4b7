"""The gateway's HTTP client to AWS: aiohttp on the server's event loop.

The request is sent and its answer read on the event loop, with aiohttp's compiled HTTP parser;
the gateway's sync steps (verify, decode, decide, re-sign) run before it, on the loop when they
answer from memory, else in one worker hand-off (`run`; hoopcli.server.nonblocking). Against
urllib3 in worker threads (botocore's transport, what the gateway used before), measured side by
side (docs/benchmarks.md): the same latency within 0.1 ms, 2-10 % more requests per second with
16 and 50 clients, uploads with less CPU, downloads level to 9 % slower (reading and writing share
the loop), and no thread held per transfer.
A small answer (anything the gateway masks, and object bodies up to SMALL_BODY) is read whole; a
large one is relayed in pieces of READ_SIZE, aiohttp pausing the socket while its buffer is full,
so memory stays bounded whatever the object's size. A streamed upload is written as the client's
pieces arrive, each awaited until the socket takes it.

No proxies from the environment, no redirects, no retries, no decompression, no cookies: the
target is the URL that upstream.py resolved and signed, sent byte for byte (`encoded=True`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from yarl import URL

SMALL_BODY = 1024 * 1024
READ_SIZE = 1024 * 1024
FEED_SIZE = 256 * 1024
MAX_HEADER_FIELD = 64 * 1024


class TransportError(Exception):
    """AWS could not be reached or broke the connection (the message names no host)."""


def _broken(exc: BaseException, what: str) -> TransportError:
    return TransportError(f"{what} ({type(exc).__name__})")


class Answer:
    """An upstream answer: status, headers, and the body read whole (`body`) or still to read."""

    def __init__(self, response: aiohttp.ClientResponse, body: bytes | None) -> None:
        self.response = response
        self.status: int = response.status
        self.headers: Any = response.headers          # case-insensitive, multi-valued
        self.body = body
        self.masked: bytes | None = None        # the body as the client gets it, when masked
        self.out_headers: list[tuple[bytes, bytes]] = []     # and its headers then

    def raw_headers(self) -> list[tuple[str, str]]:
        return list(self.headers.items())

    async def read(self, amount: int) -> bytes:
        try:
            return await self.response.content.read(amount)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            raise _broken(exc, "AWS broke the connection") from None

    def close(self) -> None:
        """Give the connection back when the body was read to its end, else drop it."""
        if self.body is not None or self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()


class Transport:
    def __init__(self, max_workers: int = 64) -> None:
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hoop-gateway")
        self._session: aiohttp.ClientSession | None = None

    async def run(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` in one of the gateway's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def session(self) -> aiohttp.ClientSession:
        """One client session for the server's event loop (made on first use, on that loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=300.0),
                # one client for every session: no cookie an endpoint sets may ride on another call
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False, trust_env=False, read_bufsize=READ_SIZE,
                max_line_size=MAX_HEADER_FIELD, max_field_size=MAX_HEADER_FIELD,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        return self._session

    async def send(self, method: str, url: str, headers: list[tuple[str, str]], body: Any,
                   read_whole: bool, cap: int) -> Answer:
        """Send and read the headers; the body too when `read_whole` or it is small. `body` is
        bytes or an async iterator of pieces. A body larger than `cap` to be read whole is
        refused (OverflowError)."""
        data = body if isinstance(body, (bytes, bytearray)) else _coalesced(body)
        try:
            response = await self.session().request(
                method, URL(url, encoded=True), data=data if data or method in ("PUT", "POST") else None,
                headers=headers, allow_redirects=False, compress=None, chunked=None, expect100=False)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            raise _broken(exc, "AWS did not answer") from None
        length = response.headers.get("content-length")
        small = length is not None and length.isdigit() and int(length) <= SMALL_BODY
        if not (read_whole or small or method == "HEAD" or response.status >= 300):
            return Answer(response, None)
        try:
            data = await _read_capped(response, cap)
        except OverflowError:
            response.close()
            raise
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as exc:
            response.close()
            raise _broken(exc, "AWS broke the connection") from None
        return Answer(response, data)

    async def pieces(self, answer: Answer) -> AsyncIterator[bytes]:
        """The rest of a large body in pieces of READ_SIZE (the last one shorter): the socket
        gives 256 KiB at a time, and a quarter as many writes to the client cost less CPU."""
        parts: list[bytes] = []
        size = 0
        while True:
            piece = await answer.read(READ_SIZE - size)
            if not piece:
                if parts:
                    yield b"".join(parts)
                return
            parts.append(piece)
            size += len(piece)
            if size >= READ_SIZE:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
                parts, size = [], 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        piece = await response.content.read(cap + 1 - size)
        if not piece:
            return b"".join(parts)
        parts.append(piece)
        size += len(piece)
        if size > cap:
            raise OverflowError(cap)


async def _coalesced(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The client's pieces in writes of at least FEED_SIZE bytes (fewer, larger writes)."""
    buffer: list[bytes] = []
    size = 0
    async for chunk in source:
        buffer.append(chunk)
        size += len(chunk)
        if size >= FEED_SIZE:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)
