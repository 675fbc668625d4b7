"""The gateway's client to AWS sends exactly what upstream.py signed.

A listener of the test's stands in for AWS and keeps the request as it arrived on the wire; the
gateway's own SigV4 verifier (botocore's canonicalization) then checks it with the server's
credentials. A Host header written by the HTTP client instead of the signed one, a path or query
re-encoded after signing, or a header dropped on the way would each fail the check.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from botocore.credentials import Credentials

from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import SigV4Verifier
from hoopcli.server.gateway.transport import Transport
from hoopcli.server.gateway.upstream import Upstream
from hoopcli.server.settings import Connection

SERVER_CREDS = Credentials("ASIASERVERHELD000001", "server-held-secret", "server-session-token")


async def _capture(body_answer: bytes) -> tuple[asyncio.AbstractServer, int, asyncio.Future[bytes]]:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length)
        got.set_result(head + body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nx-amz-request-id: R1\r\n\r\n" % len(body_answer)
                     + body_answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], got


def _as_request(raw: bytes) -> GatewayRequest:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    return GatewayRequest.build(method, target, headers, body)  # type: ignore[arg-type]


@pytest.mark.parametrize(("service", "operation", "method", "path", "query", "body"), [
    ("s3", "GetObject", "GET", "/bucket/a%20key/%C3%A9+x", "versionId=v%2B1&response-content-type=text/plain", b""),
    ("s3", "PutObject", "PUT", "/bucket/k", "", b"payload bytes"),
    ("s3", "GetObject", "GET", "/bucket/%7e%21(x)/~%2f;[]", "prefix=%7E&x=a%2Bb;c", b""),
    ("sqs", "ListQueues", "POST", "/", "", b"Action=ListQueues&Version=2012-11-05"),
])
def test_what_is_sent_is_what_was_signed(service: str, operation: str, method: str, path: str, query: str,
                                         body: bytes) -> None:
    async def main() -> tuple[bytes, int, bytes]:
        server, port, got = await _capture(b"<ok/>")
        transport = Transport()
        try:
            connection = Connection(name="c", role_arn="arn:aws:iam::123456789012:role/r",
                                    endpoint_url=f"http://127.0.0.1:{port}")
            upstream = Upstream()
            target = upstream.target(service, operation, "us-east-1", connection, path, query)
            headers = upstream.sign(target, method, [("content-type", "text/plain"), ("x-amz-meta-a", "1")],
                                    SERVER_CREDS, body, None)
            answer = await transport.send(method, target.url, headers, body, True, 1 << 20)
            answer.close()
            sent.extend(k.lower() for k, _ in headers)
            return await asyncio.wait_for(got, 5), port, answer.body or b""
        finally:
            await transport.close()
            server.close()

    sent: list[str] = []
    raw, port, answer = asyncio.run(main())
    assert answer == b"<ok/>"
    request = _as_request(raw)
    assert request.headers["host"] == f"127.0.0.1:{port}"          # the endpoint's, nothing else
    assert raw.lower().count(b"\r\nhost:") == 1
    # nothing the HTTP client adds by itself (User-Agent, Accept, Content-Type, a cookie)
    assert set(request.headers) <= {*sent, "content-length"}
    verified = SigV4Verifier(lambda key: SERVER_CREDS.secret_key if key == SERVER_CREDS.access_key else None)\
        .verify(request)
    assert verified.access_key == SERVER_CREDS.access_key
    assert verified.content_sha256 in (hashlib.sha256(body).hexdigest(), "UNSIGNED-PAYLOAD")
    assert request.body == body


def test_no_cookie_carries_over_between_calls() -> None:
    """One HTTP client serves every session: a cookie an endpoint sets must never ride along on
    another call (another user's, another session's)."""
    async def main() -> list[bytes]:
        seen: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                seen.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: s=alice; Path=/\r\n\r\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        # a host name, not an address: cookie jars keep no cookies of bare IP addresses
        url = f"http://localhost:{server.sockets[0].getsockname()[1]}/bucket/k"
        transport = Transport()
        try:
            for _ in range(2):
                answer = await transport.send("GET", url, [("host", "x")], b"", True, 1024)
                answer.close()
        finally:
            await transport.close()
            server.close()
        return seen

    _first, second = asyncio.run(main())
    assert b"cookie" not in second.lower()
