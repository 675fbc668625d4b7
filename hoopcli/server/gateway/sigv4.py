"""Verify AWS Signature Version 4 on an incoming request.

Both forms: the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
header and the presigned query (``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``).

The canonical request, string to sign and signature come from botocore's own signer
(``SigV4Auth`` / ``S3SigV4Auth``: path normalization and double encoding for non-S3 services, the
S3 exception, header value trimming, scope and key derivation). Two of its methods are replaced,
because a signer chooses what it signs and a verifier must take the client's choice:

* ``headers_to_sign`` returns exactly the headers named in SignedHeaders (botocore would pick
  every header it sees);
* ``canonical_query_string`` percent-decodes each pair and re-encodes it the way the SigV4
  specification says (botocore reuses the raw text of its own URL, which is already canonical;
  another SDK's URL may not be), leaving out ``X-Amz-Signature`` in the presigned form.

The payload: ``x-amz-content-sha256`` is what the client signed. A hex digest is checked against
the body here when the body is given, or by the :class:`PayloadHasher` the result hands out while
the body streams; ``UNSIGNED-PAYLOAD`` is accepted as such; the ``STREAMING-*`` values give an
:class:`~hoopcli.server.gateway.chunked.AwsChunkedDecoder` that checks every chunk signature as
the bytes arrive. Non-S3 requests without the header are signed over the body's hash, so their
body must be given (:func:`needs_body`).

Errors never contain the secret, the derived key or the expected signature.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import quote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hoopcli.server.gateway.chunked import AwsChunkedDecoder
from hoopcli.server.gateway.errors import (
    ContentSHA256Mismatch,
    IncompleteSignature,
    InvalidClientTokenId,
    InvalidRequest,
    MissingAuthenticationToken,
    RequestExpired,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from hoopcli.server.gateway.request import GatewayRequest, query_pairs

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 300
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Services whose paths are signed as sent (no normalization, no second encoding).
UNNORMALIZED_PATH_SERVICES = frozenset({"s3", "s3-outposts", "s3express"})

_ACCESS_KEY = re.compile(r"[A-Za-z0-9]{16,128}")
_SCOPE_PART = re.compile(r"[a-z0-9-]{1,64}")
_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                   "X-Amz-SignedHeaders", "X-Amz-Signature")

SecretLookup = Callable[[str], "str | None"]


class PayloadMode(str, Enum):
    VERIFIED = "verified"                  # hex digest, checked against the given body
    PENDING = "pending"                    # hex digest, check the streamed body with payload_hasher()
    UNSIGNED = "unsigned"                  # UNSIGNED-PAYLOAD: the body is not covered by the signature
    STREAMING_SIGNED = "streaming-signed"  # aws-chunked, every chunk signed: chunk_decoder()
    STREAMING_UNSIGNED = "streaming-unsigned-trailer"  # aws-chunked, unsigned, trailing checksum


@dataclass(frozen=True)
class Verified:
    """A request whose signature is good: who signed it, for what, and what is left to check."""

    access_key: str
    region: str
    service: str             # the signing name from the credential scope
    timestamp: str           # X-Amz-Date, yyyymmddThhmmssZ
    presigned: bool
    payload: PayloadMode
    content_sha256: str      # what the canonical request carried for the payload
    security_token: str | None = None
    _seed_signature: str = field(default="", repr=False)
    _signing_key: bytes = field(default=b"", repr=False)

    @property
    def scope(self) -> str:
        return f"{self.timestamp[:8]}/{self.region}/{self.service}/aws4_request"

    def payload_hasher(self) -> PayloadHasher:
        if self.payload is not PayloadMode.PENDING:
            raise ValueError(f"payload is {self.payload.value}, not a pending digest")
        return PayloadHasher(self.content_sha256)

    def chunk_decoder(self, decoded_length: int | None, trailer: str | None = None,
                      max_chunk: int = AwsChunkedDecoder.MAX_CHUNK) -> AwsChunkedDecoder:
        """The incremental decoder for an aws-chunked body (``x-amz-decoded-content-length`` and
        ``x-amz-trailer`` from the request's headers)."""
        if self.payload is PayloadMode.STREAMING_SIGNED:
            signed = True
        elif self.payload is PayloadMode.STREAMING_UNSIGNED:
            signed = False
        else:
            raise ValueError(f"payload is {self.payload.value}, not aws-chunked")
        has_trailer = self.content_sha256 in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
        return AwsChunkedDecoder(signed=signed, trailer=trailer if has_trailer else None,
                                 seed_signature=self._seed_signature, signing_key=self._signing_key,
                                 timestamp=self.timestamp, scope=self.scope,
                                 decoded_length=decoded_length, max_chunk=max_chunk)


class PayloadHasher:
    """Hash a streamed body; :meth:`finish` raises unless it matches the signed digest."""

    def __init__(self, expected_hex: str) -> None:
        self._expected = expected_hex
        self._hash = hashlib.sha256()

    def feed(self, data: bytes) -> bytes:
        self._hash.update(data)
        return data

    def finish(self) -> None:
        if not hmac.compare_digest(self._hash.hexdigest(), self._expected):
            raise ContentSHA256Mismatch("the body does not match x-amz-content-sha256")


@dataclass(frozen=True)
class _Auth:
    access_key: str
    date: str            # credential scope date
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    presigned: bool
    expires: int = 0


class SignerHeaders:
    """The part of botocore's HTTPHeaders its SigV4 signer uses, for single-valued headers.

    HTTPHeaders is an `email.message.Message`: every set and lookup sanitizes and scans a list,
    which was most of a verify's and a re-sign's CPU. The gateway's headers are single-valued
    (request.Headers refuses repeats; the re-signed set is a dict), and botocore's signer deletes
    a header before setting it again, so a dict keyed by the lower-case name, keeping the name as
    last set, reads the same to the signer: same lookups, same items, same canonical form."""

    __slots__ = ("_map",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._map: dict[str, tuple[str, str]] = {name.lower(): (name, value) for name, value in pairs}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __getitem__(self, name: str) -> str | None:
        found = self._map.get(name.lower())       # as email.message: a missing header is None
        return found[1] if found is not None else None

    def __setitem__(self, name: str, value: str) -> None:
        self._map[name.lower()] = (name, value)

    def __delitem__(self, name: str) -> None:
        self._map.pop(name.lower(), None)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._map.values())

    def __len__(self) -> int:
        return len(self._map)

    def get(self, name: str, default: str | None = None) -> str | None:
        found = self._map.get(name.lower())
        return found[1] if found is not None else default

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        found = self._map.get(name.lower())
        return [found[1]] if found is not None else default

    def items(self) -> list[tuple[str, str]]:
        return list(self._map.values())

    def keys(self) -> list[str]:
        return [name for name, _ in self._map.values()]


def light_request(method: str, url: str, headers: Iterable[tuple[str, str]]) -> AWSRequest:
    """An AWSRequest whose headers are SignerHeaders (see there)."""
    request = AWSRequest(method=method, url=url)
    request.headers = SignerHeaders(headers)
    return request


class _Verifier(SigV4Auth):
    """botocore's signer, told which headers were signed and how to canonicalize any query."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 signed: tuple[str, ...], query: str, presigned: bool) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._query = query
        self._presigned = presigned

    def headers_to_sign(self, request: AWSRequest) -> SignerHeaders:
        return SignerHeaders((name, request.headers[name]) for name in self._signed)

    def canonical_query_string(self, request: AWSRequest) -> str:
        pairs = []
        for name, value in query_pairs(self._query):
            if self._presigned and name == "X-Amz-Signature":
                continue
            pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
        return "&".join(f"{k}={v}" for k, v in sorted(pairs))


class _S3Verifier(_Verifier):
    _normalize_url_path = S3SigV4Auth._normalize_url_path


def needs_body(request: GatewayRequest) -> bool:
    """True when the signature covers the body's hash and no header states it: the caller must
    buffer the (bounded) body and pass it in ``request.body`` before :meth:`SigV4Verifier.verify`."""
    if "x-amz-content-sha256" in request.headers:
        return False
    return "X-Amz-Signature=" not in request.query or "/s3/aws4_request" not in _credential_hint(request)


def _credential_hint(request: GatewayRequest) -> str:
    for name, value in query_pairs(request.query):
        if name == "X-Amz-Credential":
            return value
    return ""


def _parse_credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise IncompleteSignature("Credential must be ACCESS_KEY/yyyymmdd/region/service/aws4_request")
    key, date, region, service, _ = parts
    if not _ACCESS_KEY.fullmatch(key):
        raise InvalidClientTokenId("The security token included in the request is invalid.")
    if not (date.isdigit() and len(date) == 8 and _SCOPE_PART.fullmatch(region) and _SCOPE_PART.fullmatch(service)):
        raise IncompleteSignature("malformed credential scope")
    return key, date, region, service


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not value or len(names) > 64 or any(not _HEADER_NAME.fullmatch(n) for n in names):
        raise IncompleteSignature("malformed SignedHeaders")
    if list(names) != sorted(set(names)):
        raise IncompleteSignature("SignedHeaders must be lower case, sorted and without repeats")
    if "host" not in names:
        raise SignatureDoesNotMatch("the host header must be signed")
    return names


def _parse_header_auth(value: str, request: GatewayRequest) -> _Auth:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"unsupported authorization algorithm; only {ALGORITHM} is accepted")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, val = item.strip().partition("=")
        if not eq or name not in ("Credential", "SignedHeaders", "Signature"):
            raise IncompleteSignature("Authorization header holds an unknown or malformed field")
        if name in fields:
            raise IncompleteSignature(f"Authorization header repeats {name}")
        fields[name] = val
    if len(fields) != 3:
        raise IncompleteSignature("Authorization header needs Credential, SignedHeaders and Signature")
    timestamp = request.headers.get("x-amz-date", "")
    if not _DATE.fullmatch(timestamp):
        raise IncompleteSignature("X-Amz-Date header missing or not yyyymmddThhmmssZ")
    key, date, region, service = _parse_credential(fields["Credential"])
    signed = _parse_signed_headers(fields["SignedHeaders"])
    for must in ("x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        if must in request.headers and must not in signed:
            raise SignatureDoesNotMatch(f"the {must} header must be signed")
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise IncompleteSignature("Signature must be 64 lower-case hex digits")
    return _Auth(key, date, region, service, signed, fields["Signature"], timestamp, presigned=False)


def _parse_query_auth(request: GatewayRequest) -> _Auth:
    found: dict[str, str] = {}
    for name, value in query_pairs(request.query):
        if name in _PRESIGN_PARAMS or name == "X-Amz-Security-Token":
            if name in found:
                raise IncompleteSignature(f"query parameter {name} is repeated")
            found[name] = value
    missing = [p for p in _PRESIGN_PARAMS if p not in found]
    if missing:
        raise IncompleteSignature(f"presigned request lacks {', '.join(missing)}")
    if found["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"unsupported X-Amz-Algorithm; only {ALGORITHM} is accepted")
    timestamp = found["X-Amz-Date"]
    if not _DATE.fullmatch(timestamp):
        raise IncompleteSignature("X-Amz-Date is not yyyymmddThhmmssZ")
    expires = found["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES:
        raise IncompleteSignature(f"X-Amz-Expires must be 1 to {MAX_PRESIGN_EXPIRES} seconds")
    key, date, region, service = _parse_credential(found["X-Amz-Credential"])
    signed = _parse_signed_headers(found["X-Amz-SignedHeaders"])
    if not _SIGNATURE.fullmatch(found["X-Amz-Signature"]):
        raise IncompleteSignature("X-Amz-Signature must be 64 lower-case hex digits")
    return _Auth(key, date, region, service, signed, found["X-Amz-Signature"], timestamp,
                 presigned=True, expires=int(expires))


def _epoch(timestamp: str) -> int:
    """Seconds since the epoch of an X-Amz-Date (YYYYMMDDTHHMMSSZ); a date that does not exist
    (month 13, 30 February) is refused."""
    t = timestamp
    try:
        if not _DATE.fullmatch(t):
            raise ValueError(t)
        moment = datetime.datetime(int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]),
                                   int(t[13:15]))
    except ValueError:
        raise IncompleteSignature("X-Amz-Date is not a valid date") from None
    return calendar.timegm(moment.timetuple())


class SigV4Verifier:
    """``verify(request)`` -> :class:`Verified`, or a :class:`GatewayError` with the AWS code.

    ``lookup(access_key_id)`` returns the secret of a live credential or ``None`` (unknown,
    revoked or expired: the caller decides which, and may raise its own ExpiredToken)."""

    def __init__(self, lookup: SecretLookup, *, clock: Callable[[], float] = time.time,
                 max_skew: int = MAX_SKEW_SECONDS) -> None:
        self._lookup = lookup
        self._clock = clock
        self._max_skew = max_skew

    def parse(self, request: GatewayRequest) -> _Auth:
        header = request.headers.get("authorization")
        presigned = "X-Amz-Signature=" in request.query or "X-Amz-Credential=" in request.query
        if header is not None and presigned:
            raise InvalidRequest("a request carries either an Authorization header or a presigned query, not both")
        if header is not None:
            return _parse_header_auth(header, request)
        if presigned:
            return _parse_query_auth(request)
        if "AWSAccessKeyId=" in request.query:
            raise IncompleteSignature(f"only Signature Version 4 ({ALGORITHM}) is accepted")
        raise MissingAuthenticationToken("Request is missing Authentication Token")

    def verify(self, request: GatewayRequest) -> Verified:
        auth = self.parse(request)
        self._check_time(auth)
        secret = self._lookup(auth.access_key)
        if secret is None:
            raise InvalidClientTokenId("The security token included in the request is invalid.")
        for name in auth.signed_headers:
            if name not in request.headers:
                raise SignatureDoesNotMatch(f"signed header {name} is missing from the request")
        content = request.headers.get("x-amz-content-sha256")
        mode, payload_hash = self._payload(request, auth, content)
        token = request.headers.get("x-amz-security-token")
        credentials = Credentials(auth.access_key, secret, token)
        cls = _S3Verifier if auth.service in UNNORMALIZED_PATH_SERVICES else _Verifier
        signer = cls(credentials, auth.service, auth.region, auth.signed_headers, request.query, auth.presigned)
        signed = [(name, request.headers[name]) for name in auth.signed_headers]
        if content is None:
            signed.append(("X-Amz-Content-SHA256", payload_hash))  # what botocore's canonical_request reads
        aws = light_request(request.method, "http://gateway" + request.path, signed)
        aws.context["timestamp"] = auth.timestamp
        canonical = signer.canonical_request(aws)
        string_to_sign = signer.string_to_sign(aws, canonical)
        expected = signer.signature(string_to_sign, aws)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise SignatureDoesNotMatch("The request signature we calculated does not match the signature you "
                                        "provided. Check your key and signing method.")
        if content is not None and mode is PayloadMode.VERIFIED and request.body is not None and \
                not hmac.compare_digest(hashlib.sha256(request.body).hexdigest(), content):
            raise ContentSHA256Mismatch("The provided 'x-amz-content-sha256' header does not match what was computed.")
        key = b""
        if mode is PayloadMode.STREAMING_SIGNED:
            key = _signing_key(secret, auth.date, auth.region, auth.service)
        return Verified(auth.access_key, auth.region, auth.service, auth.timestamp, auth.presigned, mode,
                        payload_hash, token, auth.signature, key)

    def _check_time(self, auth: _Auth) -> None:
        if auth.date != auth.timestamp[:8]:
            raise SignatureDoesNotMatch("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                                        "version of date from HTTP")
        signed_at = _epoch(auth.timestamp)
        now = self._clock()
        if signed_at - now > self._max_skew or (not auth.presigned and now - signed_at > self._max_skew):
            raise RequestTimeTooSkewed("The difference between the request time and the current time is too large.")
        if auth.presigned and now > signed_at + auth.expires:
            raise RequestExpired("Request has expired")

    @staticmethod
    def _payload(request: GatewayRequest, auth: _Auth, content: str | None) -> tuple[PayloadMode, str]:
        if content is None:
            if auth.presigned and auth.service in UNNORMALIZED_PATH_SERVICES:
                return PayloadMode.UNSIGNED, UNSIGNED_PAYLOAD
            if request.body is None:
                raise ValueError("this request is signed over its body's hash: pass the body (see needs_body)")
            return PayloadMode.VERIFIED, hashlib.sha256(request.body).hexdigest()
        if content == UNSIGNED_PAYLOAD:
            return PayloadMode.UNSIGNED, content
        if content in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
            if auth.presigned:
                raise InvalidRequest("a presigned request cannot carry an aws-chunked signed body")
            return PayloadMode.STREAMING_SIGNED, content
        if content == STREAMING_UNSIGNED_TRAILER:
            return PayloadMode.STREAMING_UNSIGNED, content
        if not _SIGNATURE.fullmatch(content):
            raise InvalidRequest("x-amz-content-sha256 must be a lower-case hex SHA-256 or a known constant")
        # A given body is compared after the signature (see verify).
        return (PayloadMode.PENDING if request.body is None else PayloadMode.VERIFIED), content


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
