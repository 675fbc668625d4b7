"""The gateway's HTTP client to AWS: urllib3 (botocore's own transport) in worker threads.

A request is sent and its answer's headers read in one worker thread; a small answer (anything
the gateway masks, and object bodies up to SMALL_BODY) is read there too, so a typical call costs
the event loop one hand-off. Large object bodies come back in READ_SIZE pieces, the next piece
read while the previous one is written to the client. A streamed upload is fed to the worker
from the event loop through a bounded queue, in pieces of at least FEED_SIZE bytes, so memory
stays bounded by QUEUE_DEPTH pieces whatever the object's size.

No proxies from the environment, no redirects, no retries: the target is the endpoint that
upstream.py resolved, nothing else.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

SMALL_BODY = 1024 * 1024
READ_SIZE = 1024 * 1024
FEED_SIZE = 1024 * 1024
QUEUE_DEPTH = 4
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_DONE = object()


class TransportError(Exception):
    """AWS could not be reached or broke the connection (the message names no host)."""


def wire_target(url: str) -> tuple[str, str]:
    """(scheme://host:port, path?query) with the path and query in the form urllib3 sends them
    (percent-encodings upper-case, characters a request line cannot carry encoded), so what is
    signed is byte for byte what goes out."""
    parts = urlsplit(url)
    path = quote(_PERCENT.sub(lambda m: m.group(0).upper(), parts.path or "/"), safe="/%:@!$&'()*+,;=-._~")
    query = quote(_PERCENT.sub(lambda m: m.group(0).upper(), parts.query), safe="/%:@!$&'()*+,;=-._~?")
    return f"{parts.scheme}://{parts.netloc}", path + ("?" + query if query else "")


class Answer:
    """An upstream answer: status, headers, and the body read whole (`body`) or still to read."""

    def __init__(self, response: Any, body: bytes | None) -> None:
        self.response = response
        self.status: int = response.status
        self.headers: Any = response.headers          # case-insensitive, multi-valued
        self.body = body
        self.masked: bytes | None = None        # the body as the client gets it, when masked
        self.out_headers: list[tuple[bytes, bytes]] = []     # and its headers then

    def raw_headers(self) -> list[tuple[str, str]]:
        return list(self.headers.iteritems())

    def read(self, amount: int) -> bytes:
        try:
            return bytes(self.response.read(amount))
        except (Urllib3Error, OSError, ValueError, AttributeError) as exc:   # also: closed under it
            raise TransportError(f"AWS broke the connection ({type(exc).__name__})") from None

    def close(self) -> None:
        try:
            self.response.release_conn() if self.body is not None else self.response.close()
        except Exception:
            pass


class Transport:
    def __init__(self, max_workers: int = 64) -> None:
        self.pool = urllib3.PoolManager(num_pools=64, maxsize=32, block=False, retries=False,
                                        timeout=urllib3.Timeout(connect=10.0, read=300.0))
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="hoop-gateway")

    async def run(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` in one of the gateway's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def send(self, method: str, url: str, headers: list[tuple[str, str]], body: Any,
             read_whole: bool, cap: int) -> Answer:
        """Send and read the headers; the body too when `read_whole` or it is small. Blocking:
        call it in a worker (`run`). A body larger than `cap` to be read whole is refused."""
        origin, target = wire_target(url)
        try:
            conn = self.pool.connection_from_url(origin)
            response = conn.urlopen(method, target, body=body, headers=dict(headers), redirect=False,
                                    retries=False, preload_content=False, decode_content=False,
                                    assert_same_host=False, release_conn=False)
        except Urllib3Error as exc:
            raise TransportError(f"AWS did not answer ({type(exc).__name__})") from None
        length = response.headers.get("content-length")
        small = length is not None and length.isdigit() and int(length) <= SMALL_BODY
        if not (read_whole or small or method == "HEAD" or response.status >= 300):
            return Answer(response, None)
        try:
            data = response.read(cap + 1)
        except Urllib3Error as exc:
            response.close()
            raise TransportError(f"AWS broke the connection ({type(exc).__name__})") from None
        if len(data) > cap:
            response.close()
            raise OverflowError(cap)
        return Answer(response, bytes(data))

    async def pieces(self, answer: Answer) -> AsyncIterator[bytes]:
        """The rest of a large body, READ_SIZE at a time, the next read under way while the
        caller writes the previous piece."""
        pending = asyncio.ensure_future(self.run(answer.read, READ_SIZE))
        try:
            while True:
                piece = await pending
                if not piece:
                    return
                pending = asyncio.ensure_future(self.run(answer.read, READ_SIZE))
                yield piece
        finally:
            if not pending.done():
                pending.cancel()

    async def feed(self, source: AsyncIterator[bytes], pipe: Pipe) -> None:
        """Move a streamed request body from the event loop to the sending worker: pieces of at
        least FEED_SIZE bytes, at most QUEUE_DEPTH waiting. An error (the client's body failed
        its check) is handed on, so the upload stops before its last bytes."""
        buffer: list[bytes] = []
        size = 0
        try:
            async for chunk in source:
                buffer.append(chunk)
                size += len(chunk)
                if size >= FEED_SIZE:
                    await self.run(pipe.put, b"".join(buffer))
                    buffer, size = [], 0
            if buffer:
                await self.run(pipe.put, b"".join(buffer))
            await self.run(pipe.put, _DONE)
        except BaseException as exc:
            pipe.fail(exc)
            raise


class Pipe:
    """A bounded hand-over of body pieces from the event loop to a worker thread. `close()`
    releases both sides (the upstream answered or failed: nobody reads any more)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.closed = threading.Event()

    def put(self, item: Any) -> None:
        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def fail(self, exc: BaseException) -> None:
        while not self.closed.is_set():
            try:
                self.queue.put_nowait(exc)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()     # the worker stops at the error; what it skips is moot
                except queue.Empty:
                    pass

    def close(self) -> None:
        self.closed.set()

    def pieces(self) -> Iterator[bytes]:
        """The worker's side: the body's pieces; raises if the body failed or the pipe closed."""
        while True:
            try:
                item = self.queue.get(timeout=0.25)
            except queue.Empty:
                if self.closed.is_set():
                    raise TransportError("the request body stopped") from None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise TransportError("the request body was refused") from None
            yield item
