"""Where and how the gateway forwards: the real endpoint, the server's own AWS credentials, and
the request re-signed for it.

* The endpoint comes from botocore's endpoint resolution for the service and the region the
  client signed for (or the connection's `endpoint_url`, e.g. moto in tests). Nothing in the
  request (Host, X-Forwarded-Host, an absolute URI) can name another host.
* Credentials: AssumeRole on the connection's role, once per hoop session, SourceIdentity = the
  user, RoleSessionName naming the session, cached on the server until 5 minutes before expiry.
  No session policy: the gateway decides every request itself.
* The request is re-signed with botocore's signer. A body the gateway buffered is signed by its
  SHA-256; a streamed S3 upload is signed as UNSIGNED-PAYLOAD (S3 checks its Content-Length and
  any Content-MD5 or checksum header; the gateway has verified the client's signature already).
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.auth import SIGNED_HEADERS_BLACKLIST, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import query_pairs
from hoopcli.server.gateway.sigv4 import SignerHeaders, light_request
from hoopcli.server.nonblocking import may_block
from hoopcli.server.settings import Connection

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Never forwarded: hop-by-hop headers, the client's signature and anything naming a host.
DROPPED_HEADERS = frozenset({
    "host", "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-authorization",
    "proxy-connection", "te", "trailer", "upgrade", "expect", "forwarded", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip", "via",
    "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-sdk-checksum-algorithm",
})
PRESIGN_QUERY = frozenset({"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                           "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"})
RESPONSE_DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server",
                              "date", "trailer", "upgrade", "proxy-authenticate"})
S3_NAMES = frozenset({"s3", "s3-outposts", "s3express"})
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")


def wire_path(path: str) -> str:
    """The request's path in the one form it is both signed and sent in: percent-encodings
    upper-case, anything a request line should not carry raw encoded. S3 signs the path as it
    arrives, so a client's `%7e` forwarded as signed but sent as `%7E` would not verify; the
    character each stands for is the same, so AWS reads the same path."""
    return quote(_PERCENT.sub(lambda m: m.group(0).upper(), path or "/"), safe="/%:@!$&'()*+,;=-._~")


@functools.lru_cache(maxsize=256)
def _host(base: str) -> str:
    """The Host header for an endpoint: botocore's own derivation (lower-case, no default port,
    IPv6 in brackets), the one its signer uses when a request carries none."""
    from botocore.auth import _host_from_url

    return str(_host_from_url(base))


class UpstreamUnavailable(GatewayError):
    code, status = "ServiceUnavailable", 503


@dataclass(frozen=True)
class Target:
    url: str                 # scheme://host[:port] + raw path + ?raw query
    signing_name: str
    signing_region: str
    s3: bool
    host: str                # the Host header, as botocore's signer derives it from the URL


class _Light:
    """botocore's signer on SignerHeaders (sigv4.py): the body's hash given, headers chosen as
    botocore's own headers_to_sign chooses them."""

    def payload(self, request: AWSRequest) -> str:
        return str(request.context["payload_hash"])

    def headers_to_sign(self, request: AWSRequest) -> SignerHeaders:
        out = SignerHeaders((name.lower(), value) for name, value in request.headers.items()
                            if name.lower() not in SIGNED_HEADERS_BLACKLIST)
        if "host" not in out:
            out["host"] = _host(request.url)
        return out


class _Signer(_Light, SigV4Auth):
    pass


class _S3Signer(_Light, S3SigV4Auth):
    pass


class Upstream:
    """Endpoint resolution and the server-held credentials, both cached."""

    def __init__(self, aws_session: Any = None) -> None:
        self.aws_session = aws_session
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._creds: dict[tuple[str, str], tuple[float, Credentials]] = {}
        self._lock = threading.Lock()
        self._botocore: Any = None

    # -- endpoints -----------------------------------------------------------------------------
    def _client(self, service: str, region: str, endpoint_url: str | None) -> Any:
        key = (service, region, endpoint_url)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            may_block("endpoint client build")
            import botocore.session
            from botocore.config import Config

            if self._botocore is None:
                self._botocore = botocore.session.get_session()
            client = self._botocore.create_client(
                service, region_name=region, endpoint_url=endpoint_url, aws_access_key_id="resolve-only",
                aws_secret_access_key="resolve-only",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}))
            with self._lock:
                if len(self._clients) > 512:
                    self._clients.clear()
                self._clients[key] = client
        return client

    def target(self, service: str, operation: str, region: str, connection: Connection, path: str,
               query: str) -> Target:
        """The URL to forward to: the resolved endpoint, then the request's own path and query
        (less any presigned-URL parameters, since the request is signed again)."""
        try:
            client = self._client(service, region, connection.endpoint_url)
        except Exception as exc:   # an unknown region for the service, a model botocore lacks
            raise GatewayError(f"no endpoint for {service} in {region[:32]}", code="InvalidRequest") from exc
        model = client.meta.service_model
        base = client.meta.endpoint_url
        signing_name = model.signing_name or model.endpoint_prefix
        signing_region = client.meta.region_name
        if connection.endpoint_url is None and signing_name not in S3_NAMES:
            try:
                _url, _headers, props = client._resolve_endpoint_ruleset(model.operation_model(operation), {}, {})
                base = _url or base
                for scheme in props.get("authSchemes") or ():
                    if scheme.get("name", "").startswith("sigv4"):
                        signing_region = scheme.get("signingRegion") or signing_region
                        signing_name = scheme.get("signingName") or signing_name
                        break
            except Exception:
                pass
        # The query goes out in SigV4's canonical encoding (botocore signs the URL's query text as
        # it stands); AWS decodes either form to the same parameters.
        kept = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query_pairs(query)
                      if k not in PRESIGN_QUERY)
        url = base.rstrip("/") + wire_path(path) + ("?" + "&".join(f"{k}={v}" for k, v in kept) if kept else "")
        return Target(url, signing_name, signing_region, signing_name in S3_NAMES, _host(base))

    # -- credentials ---------------------------------------------------------------------------
    def cached_credentials(self, connection: Connection, session_id: str) -> Credentials | None:
        """The session's credentials when they are cached and good for 5 more minutes."""
        with self._lock:
            hit = self._creds.get((connection.name, session_id))
        return hit[1] if hit is not None and hit[0] - 300 > time.time() else None

    def credentials(self, connection: Connection, session_id: str, user: str) -> Credentials:
        key = (connection.name, session_id)
        now = time.time()
        with self._lock:
            hit = self._creds.get(key)
        if hit is not None and hit[0] - 300 > now:
            return hit[1]
        may_block("AssumeRole")
        from hoopcli.server.credentials.broker import assume_role

        vended = assume_role(connection, None, session_id=session_id, user=user, aws_session=self.aws_session)
        creds = Credentials(vended.access_key_id, vended.secret_access_key, vended.session_token)
        with self._lock:
            if len(self._creds) > 4096:
                self._creds = {k: v for k, v in self._creds.items() if v[0] - 300 > now}
            self._creds[key] = (vended.expiration.timestamp(), creds)
        return creds

    # -- signing -------------------------------------------------------------------------------
    @staticmethod
    def sign(target: Target, method: str, headers: Iterable[tuple[str, str]], credentials: Credentials,
             body: bytes | None, length: int | None) -> list[tuple[str, str]]:
        """The headers to send upstream: the client's own (less DROPPED_HEADERS), re-signed.
        `body` None means a streamed body of `length` bytes (S3 only)."""
        out: dict[str, str] = {}
        for name, value in headers:
            lname = name.lower()
            if lname in DROPPED_HEADERS:
                continue
            if lname == "content-encoding":
                value = ",".join(v.strip() for v in value.split(",") if v.strip().lower() != "aws-chunked")
                if not value:
                    continue
            out[lname] = value
        if body is not None:
            payload_hash = hashlib.sha256(body).hexdigest()
            size = len(body)
        else:
            if not target.s3:
                raise GatewayError("only S3 bodies are streamed", code="InternalError", status=500)
            payload_hash, size = UNSIGNED_PAYLOAD, length or 0
        if size or method in ("PUT", "POST"):
            out["content-length"] = str(size)
        out["host"] = target.host          # signed, and sent as is (the HTTP client writes no other)
        request = light_request(method, target.url, out.items())
        request.context["payload_hash"] = payload_hash
        signer = (_S3Signer if target.s3 else _Signer)(credentials, target.signing_name, target.signing_region)
        signer.add_auth(request)
        return [(k, str(v)) for k, v in request.headers.items()]
