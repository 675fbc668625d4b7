"""Errors the gateway answers with: each carries the AWS error code and HTTP status an SDK
expects, and a message that is safe to send back (it never holds a secret, a signing key or the
signature the gateway expected)."""

from __future__ import annotations

from hoopcli.errors import HoopError


class GatewayError(HoopError):
    """A request the gateway refuses. ``code`` and ``status`` go on the wire as AWS would send them."""

    code: str = "InvalidRequest"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.status}, {self.message!r})"


class InvalidRequest(GatewayError):
    code, status = "InvalidRequest", 400


class HeadersTooLarge(GatewayError):
    code, status = "RequestHeaderSectionTooLarge", 400


class MissingAuthenticationToken(GatewayError):
    code, status = "MissingAuthenticationToken", 403


class IncompleteSignature(GatewayError):
    code, status = "IncompleteSignature", 400


class InvalidClientTokenId(GatewayError):
    code, status = "InvalidClientTokenId", 403


class SignatureDoesNotMatch(GatewayError):
    code, status = "SignatureDoesNotMatch", 403


class RequestTimeTooSkewed(GatewayError):
    code, status = "RequestTimeTooSkewed", 403


class RequestExpired(GatewayError):
    """An expired presigned URL: S3 answers AccessDenied, "Request has expired"."""

    code, status = "AccessDenied", 403


class ContentSHA256Mismatch(GatewayError):
    code, status = "XAmzContentSHA256Mismatch", 400


class IncompleteBody(GatewayError):
    code, status = "IncompleteBody", 400


class BadDigest(GatewayError):
    code, status = "BadDigest", 400


class SerializationError(GatewayError):
    """A body that does not parse or does not fit its shape (json, rest-json, cbor)."""

    code, status = "SerializationException", 400


class MalformedXML(GatewayError):
    code, status = "MalformedXML", 400


class UnknownOperation(GatewayError):
    """No operation of the signing service matches the request."""

    code, status = "UnknownOperationException", 400
