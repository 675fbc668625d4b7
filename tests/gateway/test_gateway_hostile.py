"""A hostile agent at the gateway: it holds a valid session credential (or none) and sends what no
SDK would. Every request here gets a clear 4xx in its protocol's error format, nothing reaches
AWS, and the gateway keeps serving (each test ends with a normal boto3 call that succeeds).

"Nothing reaches AWS" is checked on the wire: the connection's endpoint_url is a TCP relay in
front of moto that keeps every byte the gateway sends (STS AssumeRole included), so an empty
relay log means nothing was forwarded. A trap server stands for any address a request names
(Host, X-Forwarded-Host, Forwarded, an absolute URI): it must never be called.

Requests are signed with botocore's own signer (every header given is signed, Host included) and
sent over raw sockets, so the bytes are exactly what the test says.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import io
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from hoopcli.server.gateway.decode.safe import load_cbor
from tests.conftest import FAKE_AWS, RunningServer
from tests.gateway.clients import trap_server
from tests.gateway.gateway_helpers import ROLE, boto3_client, credential, module_gateway_server, open_session

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
MiB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# -- a recording relay in front of moto ---------------------------------------------------------

class Relay:
    """A TCP relay to moto that keeps every byte sent to it (the gateway's side of each connection)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._sent = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="relay-conn").start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
        back.start()
        self._pump(client, upstream, True)
        back.join(timeout=60)
        client.close()
        upstream.close()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self._lock:
                        self._sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def mark(self) -> int:
        with self._lock:
            return len(self._sent)

    def since(self, mark: int) -> bytes:
        with self._lock:
            return bytes(self._sent[mark:])

    def requests(self, mark: int) -> list[str]:
        """The request lines relayed since ``mark`` ("PUT /bucket/key HTTP/1.1"). A request on a
        kept-alive connection follows the previous body directly, so no line break is required
        before it (the bodies sent here never hold a request line unless it was smuggled)."""
        return [m.decode("latin-1") for m in re.findall(
            rb"(?:GET|PUT|POST|DELETE|HEAD|PATCH|OPTIONS|CONNECT) \S+ HTTP/1\.1(?=\r\n)", self.since(mark))]

    def close(self) -> None:
        self.listener.close()


def nothing_forwarded(relay: Relay, mark: int) -> None:
    sent = relay.since(mark)
    assert sent == b"", f"the gateway forwarded {len(sent)} bytes: {sent[:300]!r}"


# -- module fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def relay(moto_endpoint: str) -> Iterator[Relay]:
    parts = urlsplit(moto_endpoint)
    r = Relay((parts.hostname or "127.0.0.1", parts.port or 80))
    yield r
    r.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, relay: Relay) -> Iterator[RunningServer]:
    """One hoop server (API + gateway) for the module; its connection's AWS is the relay."""
    with module_gateway_server(tmp_path_factory.mktemp("gw-hostile"), relay.url, REGION) as srv:
        yield srv


@pytest.fixture(scope="module")
def moto(moto_endpoint: str) -> Any:
    """S3 at moto itself, past the gateway: what really exists."""
    return boto3.session.Session(**FAKE_AWS).client("s3", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture(scope="module")
def bucket(moto: Any) -> str:
    moto.create_bucket(Bucket="gw-hostile")
    return "gw-hostile"


@pytest.fixture(scope="module")
def good(gw: RunningServer) -> dict[str, Any]:
    """A well-behaved agent's credential, for the call that ends every test."""
    return credential(gw, open_session(gw, sub="carol", agent="good-agent"), sub="carol")


@pytest.fixture
def cred(gw: RunningServer) -> dict[str, Any]:
    """The hostile agent's own valid session credential."""
    return credential(gw, open_session(gw, agent="hostile-agent"))


def still_serving(relay: Relay, good: dict[str, Any]) -> None:
    """A normal boto3 call through the gateway succeeds, and reaches moto through the relay."""
    mark = relay.mark()
    boto3_client("s3", good).list_buckets()
    assert "GET / HTTP/1.1" in relay.requests(mark)


# -- signing and raw HTTP ------------------------------------------------------------------------

class _S3Signer(S3SigV4Auth):
    """botocore's S3 signer with a given x-amz-content-sha256 (a digest or a STREAMING-* mode)."""

    def __init__(self, credentials: Credentials, payload: str) -> None:
        super().__init__(credentials, "s3", REGION)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def netloc(cred: dict[str, Any]) -> str:
    return urlsplit(cred["endpoint_url"]).netloc


def sign(cred: dict[str, Any], method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes = b"", *, service: str = "s3", payload: str | None = None) -> list[tuple[str, str]]:
    """The headers of a SigV4 request for ``target`` (origin form), signed by botocore over every
    header given; Host is the gateway's unless ``headers`` names another one."""
    hdrs = {"Host": netloc(cred), **(headers or {})}
    request = AWSRequest(method=method, url=cred["endpoint_url"] + target, headers=hdrs, data=body)
    creds = Credentials(cred["access_key_id"], cred["secret_access_key"])
    signer: SigV4Auth
    if service == "s3":
        signer = _S3Signer(creds, payload or hashlib.sha256(body).hexdigest())
    else:
        signer = SigV4Auth(creds, service, REGION)
    signer.add_auth(request)
    return [(k, str(v)) for k, v in request.headers.items()]


def http_bytes(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b"",
               content_length: bool = True) -> bytes:
    pairs = list(headers)
    if content_length and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in pairs):
        pairs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n"
    return head.encode("latin-1") + body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> tuple[int, str | None, str]:
        """(status, AWS error code, message), read in the format the Content-Type says."""
        ctype = self.headers.get("content-type", "")
        if "cbor" in ctype:
            doc = load_cbor(self.body)
            return self.status, doc.get("__type"), doc.get("message", "")
        if "json" in ctype:
            doc = json.loads(self.body)
            return self.status, doc.get("__type") or doc.get("code"), doc.get("message", "")
        if "xml" in ctype:
            code = re.search(rb"<Code>([^<]*)</Code>", self.body)
            message = re.search(rb"<Message>([^<]*)</Message>", self.body)
            return (self.status, code.group(1).decode() if code else None,
                    message.group(1).decode() if message else "")
        return self.status, None, self.body.decode("latin-1")


def _read_response(reader: Any) -> Response | None:
    line = reader.readline(65536)
    if not line:
        return None
    status = int(line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                reader.readline(1024)
                break
            parts.append(reader.read(size))
            reader.readline(1024)
        body = b"".join(parts)
    else:
        body = reader.read()
    return Response(status, headers, body)


def exchange(gw: RunningServer, data: bytes, *, responses: int = 1, half_close: bool = False,
             timeout: float = 20.0) -> list[Response]:
    """Send ``data`` on one new connection to the gateway (from a thread, so that an early answer
    is read while the rest is still being sent) and read up to ``responses`` answers."""
    url = urlsplit(gw.gateway_url or "")
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout)

    def send() -> None:
        try:
            view = memoryview(data)
            for i in range(0, len(view), 256 * 1024):
                sock.sendall(view[i:i + 256 * 1024])
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the gateway answered and closed before taking everything

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    out: list[Response] = []
    reader = sock.makefile("rb")
    try:
        for _ in range(responses):
            answer = _read_response(reader)
            if answer is None:
                break
            out.append(answer)
    except (OSError, ValueError, IndexError):
        pass
    finally:
        reader.close()
        sock.close()
        sender.join(timeout=timeout)
    return out


def one(gw: RunningServer, data: bytes, **kw: Any) -> Response:
    answers = exchange(gw, data, **kw)
    assert answers, "the gateway did not answer"
    return answers[0]


def client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"].get("Message", "")


def absent(moto: Any, bucket: str, key: str) -> bool:
    try:
        moto.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


# -- credentials ---------------------------------------------------------------------------------

def test_wrong_secret_and_unknown_keys_are_refused(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                                   cred: dict[str, Any]) -> None:
    mark = relay.mark()
    wrong = dict(cred, secret_access_key="A" * 40)
    for service, call in (("s3", "list_buckets"), ("secretsmanager", "list_secrets")):
        with pytest.raises(ClientError) as exc:
            getattr(boto3_client(service, wrong), call)()
        assert client_error(exc)[:2] == ("SignatureDoesNotMatch", 403), service
    for key in ("HOOPAAAAAAAAAAAAAAAA", "AKIAIOSFODNN7EXAMPLE", cred["access_key_id"][:-1] + "Z"):
        if key == cred["access_key_id"]:
            continue
        with pytest.raises(ClientError) as exc:
            boto3_client("s3", dict(cred, access_key_id=key)).list_buckets()
        assert client_error(exc)[:2] == ("InvalidClientTokenId", 403), key
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_expired_and_revoked_keys_are_refused(gw: RunningServer, relay: Relay, good: dict[str, Any]) -> None:
    from hoopcli.server.store.models import SessionCredential

    expiring = credential(gw, open_session(gw, agent="hostile-agent"))
    revoked_sid = open_session(gw, agent="hostile-agent")
    revoked = credential(gw, revoked_sid)
    for c in (expiring, revoked):                  # both work, and are in the gateway's cache
        boto3_client("s3", c).list_buckets()
    with gw.db.session() as s:
        row = s.get(SessionCredential, expiring["access_key_id"])
        row.expires_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    r = httpx.post(f"{gw.url}/api/v1/sessions/{revoked_sid}/close", headers=gw.headers("alice"),
                   json={"exit_code": 0}, timeout=10)
    assert r.status_code == 200 and r.json()["revoked_credentials"] == 1
    time.sleep(1.2)                                # the gateway caches credential rows for 1 s

    mark = relay.mark()
    with pytest.raises(ClientError) as exc:
        boto3_client("s3", expiring).list_buckets()
    assert client_error(exc)[:2] == ("ExpiredToken", 403)
    with pytest.raises(ClientError) as exc:
        boto3_client("secretsmanager", expiring).list_secrets()      # json protocol: same code
    assert client_error(exc)[:2] == ("ExpiredToken", 403)
    with pytest.raises(ClientError) as exc:
        boto3_client("s3", revoked).list_buckets()
    code, status, message = client_error(exc)
    assert (code, status) == ("InvalidClientTokenId", 403) and "revoked" in message
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


# -- time and signatures -------------------------------------------------------------------------

@pytest.mark.parametrize("minutes", [-20, 20])
def test_a_request_signed_20_minutes_off_is_too_skewed(minutes: int, gw: RunningServer, relay: Relay,
                                                       good: dict[str, Any], cred: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda *a, **kw: real(*a, **kw) + datetime.timedelta(minutes=minutes))
    mark = relay.mark()
    with pytest.raises(ClientError) as exc:
        boto3_client("s3", cred).list_buckets()
    assert client_error(exc)[:2] == ("RequestTimeTooSkewed", 403)
    with pytest.raises(ClientError) as exc:
        boto3_client("secretsmanager", cred).list_secrets()
    assert client_error(exc)[:2] == ("RequestTimeTooSkewed", 403)
    # the same by hand: the signed X-Amz-Date is 20 minutes off
    headers = sign(cred, "GET", "/")
    assert abs(datetime.datetime.strptime(dict(headers)["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
               - real()) > datetime.timedelta(minutes=19)
    assert one(gw, http_bytes("GET", "/", headers)).error()[:2] == (403, "RequestTimeTooSkewed")
    monkeypatch.undo()
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_unsigned_and_wrongly_signed_requests(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                              cred: dict[str, Any]) -> None:
    host = [("Host", netloc(cred))]
    json_headers = [*host, ("X-Amz-Target", "secretsmanager.ListSecrets"),
                    ("Content-Type", "application/x-amz-json-1.1")]
    mark = relay.mark()
    answer = one(gw, http_bytes("GET", "/", host))
    assert answer.error()[:2] == (403, "MissingAuthenticationToken")
    assert answer.headers["content-type"] == "application/xml"
    answer = one(gw, http_bytes("POST", "/", json_headers, b"{}"))
    assert answer.error()[:2] == (403, "MissingAuthenticationToken")
    assert answer.headers["content-type"] == "application/x-amz-json-1.1"       # as the request's
    assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationToken"
    # Signature Version 2, header and query forms
    sigv2 = one(gw, http_bytes("GET", "/", [*host, ("Authorization", f"AWS {cred['access_key_id']}:c2lnbmF0dXJl")]))
    assert sigv2.status in (400, 403) and sigv2.error()[1] == "IncompleteSignature"
    query = f"/?AWSAccessKeyId={cred['access_key_id']}&Expires=9999999999&Signature=c2ln"
    assert one(gw, http_bytes("GET", query, host)).error()[:2] == (400, "IncompleteSignature")
    # a good signature moved to another request
    moved = sign(cred, "GET", "/gw-hostile")
    assert one(gw, http_bytes("GET", "/other-bucket", moved)).error()[:2] == (403, "SignatureDoesNotMatch")
    # a signed header changed after signing; an unsigned x-amz-date
    tampered = [(k, v) if k != "X-Amz-Content-SHA256" else (k, hashlib.sha256(b"x").hexdigest())
                for k, v in sign(cred, "GET", "/")]
    assert one(gw, http_bytes("GET", "/", tampered)).error()[:2] == (403, "SignatureDoesNotMatch")
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


# -- addresses the request names -----------------------------------------------------------------

def test_a_host_the_request_names_is_never_called(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                                  cred: dict[str, Any]) -> None:
    """Host, X-Forwarded-Host, Forwarded and absolute-form targets naming the trap, all signed:
    the request goes to the connection's endpoint (moto, through the relay) or is refused, and
    the trap hears nothing."""
    with trap_server() as trap:
        trap_host = f"127.0.0.1:{trap.port}"
        boto3_client("s3", cred).list_buckets()     # this session's STS credentials, cached

        mark = relay.mark()
        answer = one(gw, http_bytes("GET", "/", sign(cred, "GET", "/", {"Host": trap_host})))
        assert answer.status == 200, answer
        assert b"<ListAllMyBucketsResult" in answer.body
        assert relay.requests(mark) == ["GET / HTTP/1.1"]

        forwarded = {"X-Forwarded-Host": trap_host, "X-Forwarded-Proto": "http", "X-Forwarded-Port": str(trap.port),
                     "Forwarded": f"for=127.0.0.1;host={trap_host};proto=http", "X-Real-IP": "127.0.0.1"}
        answer = one(gw, http_bytes("GET", "/", sign(cred, "GET", "/", forwarded)))
        assert answer.status == 200, answer
        assert relay.requests(mark) == ["GET / HTTP/1.1"] * 2

        # absolute-form and authority-form request targets: refused before anything is read
        refused = [
            http_bytes("GET", f"http://{trap_host}/gw-hostile", sign(cred, "GET", "/gw-hostile", {"Host": trap_host})),
            http_bytes("GET", f"http://{trap_host}/", sign(cred, "GET", "/")),
            http_bytes("CONNECT", trap_host, [("Host", trap_host)]),
            http_bytes("OPTIONS", "*", sign(cred, "OPTIONS", "/")),
        ]
        for data in refused:
            answer = one(gw, data)
            assert 400 <= answer.status < 500, (data[:60], answer)
        # a scheme-relative path: whatever it decodes to, it can only go to the connection's endpoint
        path = f"//{trap_host}/gw-hostile"
        answer = one(gw, http_bytes("GET", path, sign(cred, "GET", path)))
        assert 400 <= answer.status < 500 or relay.requests(mark)[-1] == f"GET {path} HTTP/1.1", answer

        assert trap.snapshot() == []
        assert trap_host.encode() not in relay.since(mark)          # not even as a header upstream
        assert all(r.startswith("GET /") for r in relay.requests(mark))
    still_serving(relay, good)


@pytest.mark.parametrize(("service", "operation", "path"), [
    ("s3", "ListBuckets", "/"), ("s3", "GetObject", "//127.0.0.1:9/b/k"), ("s3", "GetObject", "/@127.0.0.1:9/k"),
    ("secretsmanager", "ListSecrets", "/"), ("iam", "ListUsers", "/")])
@pytest.mark.parametrize("region", ["us-east-1", "evil-host", "localhost"])
def test_without_an_endpoint_url_the_upstream_is_aws(service: str, operation: str, path: str, region: str) -> None:
    """A connection without endpoint_url forwards to the endpoint botocore resolves for the
    service and the signed region (a scope region is [a-z0-9-]): whatever path the request
    sends, the host is AWS's."""
    from hoopcli.server.gateway.upstream import Upstream
    from hoopcli.server.settings import Connection

    connection = Connection(name="prod", role_arn=ROLE, region="us-east-1", credentials="gateway")
    target = Upstream().target(service, operation, region, connection, path, "")
    url = urlsplit(target.url)
    assert url.scheme == "https" and (url.hostname or "").endswith(".amazonaws.com"), target.url
    assert url.port is None and "@" not in url.netloc
    assert url.path == path


# -- framing -------------------------------------------------------------------------------------

def test_oversized_and_repeated_headers(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                        cred: dict[str, Any]) -> None:
    mark = relay.mark()
    signed = sign(cred, "GET", "/")
    # 64 KiB of headers: over the listener's limit (h11 answers 400 before the gateway sees it
    # and closes; when our unread bytes are still in its socket the kernel resets the connection,
    # which can reach us before the 400 does: either way the request is refused)
    for extra in ([("X-Pad", "a" * 64 * 1024)], [(f"X-Pad-{i}", "a" * 60) for i in range(1024)]):
        answers = exchange(gw, http_bytes("GET", "/", signed + extra))
        assert not answers or 400 <= answers[0].status < 500, answers
    # under the listener's limit, over the gateway's own: its error, in the request's format
    for extra, code in (([(f"X-Pad-{i}", "a" * 7000) for i in range(6)], "RequestHeaderSectionTooLarge"),
                        ([("X-Pad", "a" * 9000)], "RequestHeaderSectionTooLarge"),
                        ([(f"X-P{i}", "a") for i in range(200)], "RequestHeaderSectionTooLarge"),
                        ([("X-Amz-Date", "20200101T000000Z")], "InvalidRequest")):
        answer = one(gw, http_bytes("GET", "/", signed + extra))
        assert answer.error()[:2] == (400, code), (extra[0], answer)
        assert answer.headers["content-type"] == "application/xml"
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_a_head_that_never_ends_is_cut_off(gw: RunningServer, relay: Relay, good: dict[str, Any]) -> None:
    """One header value sent a few KiB at a time and never finished: the listener answers 400 and
    closes once 48 KiB arrived without the head being complete, not when the client stops."""
    url = urlsplit(gw.gateway_url or "")
    mark = relay.mark()
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        sent, answer = 0, b""
        sock.settimeout(0.05)
        while sent < 4 * 1024 * 1024:
            try:
                sock.sendall(b"a" * 4096)
            except OSError:
                break
            sent += 4096
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            break
    assert sent <= 256 * 1024, sent          # cut off near the bound, not at the end of the sender
    assert not answer or answer.startswith(b"HTTP/1.1 400"), answer[:80]
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_an_upgrade_request_is_an_aws_request_like_any_other(gw: RunningServer, relay: Relay,
                                                              good: dict[str, Any]) -> None:
    """`Upgrade: websocket` (or h2c) never switches protocols: the request is verified as any other
    and, unsigned, refused in S3's format."""
    mark = relay.mark()
    for upgrade in ("websocket", "h2c"):
        headers = [("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", upgrade),
                   ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        answer = one(gw, http_bytes("GET", "/", headers))
        assert answer.status != 101 and 400 <= answer.status < 500, answer
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_pipelined_requests_are_answered_in_order(gw: RunningServer, good: dict[str, Any],
                                                  cred: dict[str, Any]) -> None:
    """Two signed requests in one write: two answers, in order, on the same connection."""
    first = http_bytes("GET", "/", sign(cred, "GET", "/"))
    second = http_bytes("GET", "/no-such-bucket-here", sign(cred, "GET", "/no-such-bucket-here"))
    answers = exchange(gw, first + second, responses=2)
    assert [a.status for a in answers] == [200, 404], answers
    assert b"<ListAllMyBucketsResult" in answers[0].body


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""
S3_NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_xml_entity_bombs_are_malformed_xml(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                            cred: dict[str, Any], bucket: str) -> None:
    bodies = [
        ("PUT", f"/{bucket}?tagging",
         BILLION_LAUGHS + f"<Tagging {S3_NS}><TagSet><Tag><Key>k</Key><Value>&lol9;</Value></Tag></TagSet></Tagging>"
         .encode()),
        ("PUT", "/gw-hostile-bomb",
         BILLION_LAUGHS + f"<CreateBucketConfiguration {S3_NS}><LocationConstraint>&lol9;</LocationConstraint>"
         "</CreateBucketConfiguration>".encode()),
        ("PUT", f"/{bucket}?tagging",
         b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         + f"<Tagging {S3_NS}><TagSet><Tag><Key>k</Key><Value>&x;</Value></Tag></TagSet></Tagging>".encode()),
        ("PUT", f"/{bucket}?tagging", f"<Tagging {S3_NS}><TagSet><Tag><Key>k</Key>".encode()),   # truncated
    ]
    mark = relay.mark()
    for method, target, body in bodies:
        answer = one(gw, http_bytes(method, target, sign(cred, method, target, {"Content-Type": "application/xml"},
                                                         body), body))
        assert answer.error()[:2] == (400, "MalformedXML"), (target, answer)
        assert answer.headers["content-type"] == "application/xml"
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def _json_request(cred: dict[str, Any], service: str, target: str, version: str, body: bytes) -> bytes:
    headers = {"X-Amz-Target": target, "Content-Type": f"application/x-amz-json-{version}"}
    return http_bytes("POST", "/", sign(cred, "POST", "/", headers, body, service=service), body)


def test_malformed_json_is_a_serialization_exception(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                                     cred: dict[str, Any]) -> None:
    bad = [b'{"SecretId": "x"', b'{"SecretId": "a", "SecretId": "b"}', b'{"SecretId": NaN}',
           b"[" * 100_000 + b"]" * 100_000, b'{"SecretId": 5}', b'["SecretId"]', b"\xff\xfe{}"]
    mark = relay.mark()
    for body in bad:
        answer = one(gw, _json_request(cred, "secretsmanager", "secretsmanager.GetSecretValue", "1.1", body))
        assert answer.error()[:2] == (400, "SerializationException"), (body[:40], answer)
        assert answer.headers["content-type"] == "application/x-amz-json-1.1"
        assert answer.headers["x-amzn-errortype"] == "SerializationException"
    answer = one(gw, _json_request(cred, "dynamodb", "DynamoDB_20120810.GetItem", "1.0", b'{"TableName": '))
    assert answer.error()[:2] == (400, "SerializationException")
    assert answer.headers["content-type"] == "application/x-amz-json-1.0"
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_malformed_cbor_is_refused(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                   cred: dict[str, Any]) -> None:
    """CloudWatch speaks rpc-v2-cbor in this botocore (signing name "monitoring")."""
    model = boto3.session.Session().client("cloudwatch", region_name=REGION).meta.service_model
    assert "smithy-rpc-v2-cbor" in model.metadata["protocols"]
    path = f"/service/{model.metadata['targetPrefix']}/operation/ListMetrics"
    headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}
    bad = [b"\xbf\x69Namespace",                         # a map that ends inside its first key
           b"\xa1\x69Namespace\x5b" + b"\xff" * 8,       # a byte string claiming 2**64 - 1 bytes
           b"\x81" * 100_000,                            # arrays nested 100 000 deep
           b"\xa1\x69Namespace\x01",                     # a number where a string belongs
           b"\xa0\xa0",                                  # trailing bytes after the item
           b"\x1f"]                                      # a reserved head
    mark = relay.mark()
    for body in bad:
        answer = one(gw, http_bytes("POST", path, sign(cred, "POST", path, headers, body, service="monitoring"), body))
        status, code, _ = answer.error()
        assert 400 <= status < 500 and code, (body[:20], answer)
        assert answer.headers["content-type"] == "application/cbor"
        assert answer.headers["smithy-protocol"] == "rpc-v2-cbor"
    nothing_forwarded(relay, mark)
    still_serving(relay, good)


def test_bytes_past_content_length_never_become_a_request_of_their_own(
        gw: RunningServer, relay: Relay, good: dict[str, Any], cred: dict[str, Any], moto: Any, bucket: str) -> None:
    """A PutObject whose Content-Length is 5 followed by a smuggled request line: the 5 bytes are
    the object; what follows is parsed as a request of its own that fails authentication (or
    is dropped), and never reaches AWS."""
    boto3_client("s3", cred).list_buckets()     # this session's STS credentials, cached
    target = f"/{bucket}/smuggle"
    put = http_bytes("PUT", target, sign(cred, "PUT", target, {}, b"hello"), b"hello")
    mark = relay.mark()
    smuggled = b"DELETE /" + bucket.encode() + b"/victim HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    answers = exchange(gw, put + smuggled, responses=2)
    assert answers and answers[0].status == 200, answers
    if len(answers) > 1:
        assert answers[1].error()[:2] == (403, "MissingAuthenticationToken"), answers[1]
    assert relay.requests(mark) == [f"PUT {target} HTTP/1.1"]
    assert moto.get_object(Bucket=bucket, Key="smuggle")["Body"].read() == b"hello"

    mark = relay.mark()
    put2 = http_bytes("PUT", target + "2", sign(cred, "PUT", target + "2", {}, b"hello"), b"hello")
    answers = exchange(gw, put2 + b"\x00\x01garbage\r\n\r\n", responses=2)
    assert answers and answers[0].status == 200, answers
    assert all(400 <= a.status < 500 for a in answers[1:]), answers
    assert relay.requests(mark) == [f"PUT {target}2 HTTP/1.1"]

    # shorter than its Content-Length, then the client goes away: nothing is forwarded
    mark = relay.mark()
    short = http_bytes("PUT", target + "3", sign(cred, "PUT", target + "3", {}, b"hello world"), b"hello world")
    exchange(gw, short[:-4], half_close=True, timeout=5)
    nothing_forwarded(relay, mark)
    assert absent(moto, bucket, "smuggle3")
    still_serving(relay, good)


def test_transfer_encoding_with_content_length_is_refused(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                                          cred: dict[str, Any], moto: Any, bucket: str) -> None:
    target = f"/{bucket}/te-cl"
    headers = sign(cred, "PUT", target, {}, b"hello")
    mark = relay.mark()
    for length in ("5", "0", "100"):
        data = http_bytes("PUT", target, [*headers, ("Transfer-Encoding", "chunked"), ("Content-Length", length)],
                          b"5\r\nhello\r\n0\r\n\r\n")
        answer = one(gw, data, half_close=True)
        assert answer.status == 400, answer
        assert answer.error()[1] in ("InvalidRequest", None), answer   # the gateway's, or the listener's own
    nothing_forwarded(relay, mark)
    assert absent(moto, bucket, "te-cl")
    still_serving(relay, good)


# -- aws-chunked uploads with a bad chunk or checksum (the streamed path) -------------------------

def _key(secret: str, date: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def signed_chunks(cred: dict[str, Any], headers: list[tuple[str, str]], payload: bytes, chunk: int,
                  *, bad_chunk: int | None = None, trailer_crc: str | None = None) -> bytes:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] framing of ``payload``, each chunk signed in the
    chain that starts at the request's own signature (chunk ``bad_chunk`` gets a wrong one);
    with ``trailer_crc``, a signed x-amz-checksum-crc32 trailer carrying that value."""
    values = dict(headers)
    timestamp = values["X-Amz-Date"]
    scope = f"{timestamp[:8]}/{REGION}/s3/aws4_request"
    key = _key(cred["secret_access_key"], timestamp[:8])
    previous = values["Authorization"].rsplit("Signature=", 1)[1]
    pieces = [payload[i:i + chunk] for i in range(0, len(payload), chunk)] + [b""]
    out = bytearray()
    for n, data in enumerate(pieces):
        signature = _hmac(key, f"AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n{EMPTY_SHA256}\n"
                               f"{hashlib.sha256(data).hexdigest()}")
        previous = signature
        if n == bad_chunk:
            signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        out += b"%x;chunk-signature=%s\r\n" % (len(data), signature.encode())
        if data:
            out += data + b"\r\n"
    if trailer_crc is None:
        out += b"\r\n"
    else:
        trailer = f"x-amz-checksum-crc32:{trailer_crc}\n"
        tsig = _hmac(key, f"AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n{previous}\n"
                          f"{hashlib.sha256(trailer.encode()).hexdigest()}")
        out += f"x-amz-checksum-crc32:{trailer_crc}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out)


def _encoded_length(payload: int, chunk: int, trailer: bool) -> int:
    """The length of signed_chunks' output (it is signed in Content-Length before it is built)."""
    sizes = [chunk] * (payload // chunk) + ([payload % chunk] if payload % chunk else []) + [0]
    total = sum(len(f"{s:x};chunk-signature=".encode()) + 64 + 2 + (s + 2 if s else 0) for s in sizes)
    if trailer:
        return total + len("x-amz-checksum-crc32:") + 8 + 2 + len("x-amz-trailer-signature:") + 64 + 4
    return total + 2


def signed_chunked_put(cred: dict[str, Any], target: str, payload: bytes, *, chunk: int = 64 * 1024,
                       bad_chunk: int | None = None, trailer_crc: str | None = None) -> bytes:
    trailer = trailer_crc is not None
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    head = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(payload)),
            "Content-Length": str(_encoded_length(len(payload), chunk, trailer))}
    if trailer:
        head["x-amz-trailer"] = "x-amz-checksum-crc32"
    headers = sign(cred, "PUT", target, head, payload=mode)
    body = signed_chunks(cred, headers, payload, chunk, bad_chunk=bad_chunk, trailer_crc=trailer_crc)
    assert len(body) == int(head["Content-Length"])
    return http_bytes("PUT", target, headers, body)


def unsigned_trailer_put(cred: dict[str, Any], target: str, payload: bytes, *, crc: str | None = None,
                         decoded_length: int | None = None) -> bytes:
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER as botocore frames it (64 KiB chunks, CRC32 trailer);
    ``crc`` replaces the trailer's checksum, ``decoded_length`` the (signed) length announced."""
    body = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32",
                             chunk_size=64 * 1024).read()
    if crc is not None:
        body = body.replace(f"x-amz-checksum-crc32:{_crc32(payload)}".encode(), f"x-amz-checksum-crc32:{crc}".encode())
    announced = len(payload) if decoded_length is None else decoded_length
    head = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(announced),
            "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32",
            "Content-Length": str(len(body))}
    return http_bytes("PUT", target, sign(cred, "PUT", target, head, payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER"), body)


def test_tampered_streamed_uploads_never_complete(gw: RunningServer, relay: Relay, good: dict[str, Any],
                                                  cred: dict[str, Any], moto: Any, bucket: str) -> None:
    """2 MiB PutObjects (the streamed path: the upload starts before the body is all there): a bad
    chunk signature, a wrong trailing checksum (unsigned or signed trailer), a body that does not
    match its signed SHA-256, or one shorter than its decoded length: each a 4xx, and the object
    does not exist at moto afterwards. The same framing done right goes through."""
    payload = bytes(range(256)) * (8 * 1024)          # 2 MiB
    wrong_crc = _crc32(payload + b"!")
    boto3_client("s3", cred).list_buckets()          # this session's STS credentials, cached

    # the builders are right: the same framing, untampered, stores the object byte for byte
    for key, data in (("ok-signed", signed_chunked_put(cred, f"/{bucket}/ok-signed", payload)),
                      ("ok-signed-trailer", signed_chunked_put(cred, f"/{bucket}/ok-signed-trailer", payload,
                                                               trailer_crc=_crc32(payload))),
                      ("ok-unsigned-trailer", unsigned_trailer_put(cred, f"/{bucket}/ok-unsigned-trailer", payload))):
        answer = one(gw, data)
        assert answer.status == 200, (key, answer)
        assert moto.get_object(Bucket=bucket, Key=key)["Body"].read() == payload, key

    other = b"x" * len(payload)
    mismatched = http_bytes("PUT", f"/{bucket}/bad-sha256",
                            sign(cred, "PUT", f"/{bucket}/bad-sha256", {"Content-Length": str(len(payload))},
                                 payload=hashlib.sha256(other).hexdigest()), payload)
    short = unsigned_trailer_put(cred, f"/{bucket}/bad-length", payload, decoded_length=len(payload) + 10)
    cases = {
        "bad-chunk-signature": (signed_chunked_put(cred, f"/{bucket}/bad-chunk-signature", payload, bad_chunk=16),
                                "SignatureDoesNotMatch"),
        "bad-last-chunk-signature": (signed_chunked_put(cred, f"/{bucket}/bad-last-chunk-signature", payload,
                                                        bad_chunk=32), "SignatureDoesNotMatch"),
        "bad-unsigned-trailer": (unsigned_trailer_put(cred, f"/{bucket}/bad-unsigned-trailer", payload,
                                                      crc=wrong_crc), "BadDigest"),
        "bad-signed-trailer": (signed_chunked_put(cred, f"/{bucket}/bad-signed-trailer", payload,
                                                  trailer_crc=wrong_crc), "BadDigest"),
        "bad-sha256": (mismatched, "XAmzContentSHA256Mismatch"),
        "bad-length": (short, None),
    }
    failures = []
    for key, (data, code) in cases.items():
        answer = one(gw, data)
        status, got, message = answer.error()
        if not (400 <= status < 500 and (code is None or got == code)):
            failures.append((key, status, got, message[:200]))
        if not absent(moto, bucket, key):
            failures.append((key, "stored at moto"))
    assert failures == []
    still_serving(relay, good)
