"""An incremental decoder for ``Content-Encoding: aws-chunked`` bodies.

Feed it the body's bytes as they arrive; it returns the decoded payload bytes it has verified so
far, and holds at most one chunk (bounded by ``max_chunk``) plus one line. Signed chunks
(``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``) are checked against the signature chain:

    chunk string to sign = "AWS4-HMAC-SHA256-PAYLOAD" \\n timestamp \\n scope \\n previous signature
                           \\n sha256("") \\n sha256(chunk data)
    trailer string to sign = "AWS4-HMAC-SHA256-TRAILER" \\n timestamp \\n scope \\n previous signature
                           \\n sha256(trailer lines, each "name:value\\n")

and a chunk's bytes are released only once its signature is good. Unsigned chunks
(``STREAMING-UNSIGNED-PAYLOAD-TRAILER``) are released at once. A trailing checksum named by
``x-amz-trailer`` is computed over the decoded payload and compared when the algorithm is one the
standard library has (crc32, sha1, sha256); crc32c and crc64nvme are passed on unverified
(``checksum_verified`` says which), for the service to check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from collections.abc import Callable
from typing import Protocol

from hoopcli.server.gateway.errors import BadDigest, IncompleteBody, InvalidRequest, SignatureDoesNotMatch

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_LINE = 4096
MAX_TRAILERS = 8


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


_CHECKSUMS: dict[str, Callable[[], _Hash]] = {"x-amz-checksum-crc32": _Crc32, "x-amz-checksum-sha1": hashlib.sha1,
              "x-amz-checksum-sha256": hashlib.sha256}
_KNOWN_TRAILERS = frozenset(_CHECKSUMS) | {"x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme"}


class AwsChunkedDecoder:
    MAX_CHUNK = 8 * 1024 * 1024

    def __init__(self, *, signed: bool, trailer: str | None, seed_signature: str, signing_key: bytes,
                 timestamp: str, scope: str, decoded_length: int | None, max_chunk: int = MAX_CHUNK) -> None:
        if trailer is not None:
            trailer = trailer.strip().lower()
            if trailer not in _KNOWN_TRAILERS:
                raise InvalidRequest("x-amz-trailer names an unsupported checksum")
        if signed and not signing_key:
            raise ValueError("a signed chunk decoder needs the signing key")
        self._signed = signed
        self._trailer = trailer
        self._previous = seed_signature
        self._key = signing_key
        self._prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}\n"
        self._trailer_prefix = f"AWS4-HMAC-SHA256-TRAILER\n{timestamp}\n{scope}\n"
        self._expected_length = decoded_length
        self._max_chunk = max_chunk
        self._buffer = bytearray()
        self._state = "size"          # size -> data -> size ... -> trailer -> done
        self._want = 0                # bytes of the current chunk still to come
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._held = bytearray()      # a signed chunk's data until its signature is checked
        self._checksum: _Hash | None = _CHECKSUMS[trailer]() if trailer in _CHECKSUMS else None
        self._trailer_lines: list[tuple[str, str]] = []
        self.decoded = 0
        self.trailers: dict[str, str] = {}
        self.checksum_verified = False

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        """Decode what ``data`` completes; returns the payload bytes now safe to pass on."""
        if self._state == "done":
            if data:
                raise IncompleteBody("bytes after the end of the aws-chunked body")
            return b""
        self._buffer += data
        out = bytearray()
        while self._step(out):
            pass
        return bytes(out)

    def finish(self) -> dict[str, str]:
        """Call at the end of the body: raises unless the encoding ended cleanly."""
        if self._state != "done" or self._buffer:
            raise IncompleteBody("the aws-chunked body ended early")
        return self.trailers

    def _line(self) -> str | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise InvalidRequest("aws-chunked line too long")
            return None
        if end > MAX_LINE:
            raise InvalidRequest("aws-chunked line too long")
        raw = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest("aws-chunked framing is not ASCII") from None

    def _step(self, out: bytearray) -> bool:
        if self._state == "size":
            line = self._line()
            if line is None:
                return False
            self._start_chunk(line)
            return True
        if self._state == "data":
            return self._take_data(out)
        if self._state == "end-of-chunk":
            if len(self._buffer) < 2:
                return False
            if self._buffer[:2] != b"\r\n":
                raise InvalidRequest("aws-chunked chunk not followed by CRLF")
            del self._buffer[:2]
            self._end_chunk(out)
            return True
        if self._state == "trailer":
            line = self._line()
            if line is None:
                return False
            self._trailer_line(line)
            return True
        if self._state == "final-crlf":
            line = self._line()
            if line is None:
                return False
            if line:
                raise InvalidRequest("aws-chunked body has bytes after its last chunk")
            self._state = "done"
            self._check_end()
        if self._state == "done" and self._buffer:
            raise IncompleteBody("bytes after the end of the aws-chunked body")
        return False

    def _start_chunk(self, line: str) -> None:
        size_text, sep, extension = line.partition(";")
        if not size_text or len(size_text) > 16 or any(c not in "0123456789abcdefABCDEF" for c in size_text):
            raise InvalidRequest("malformed aws-chunked chunk size")
        size = int(size_text, 16)
        if self._signed:
            name, _, signature = extension.partition("=")
            if not sep or name != "chunk-signature" or len(signature) != 64:
                raise SignatureDoesNotMatch("aws-chunked chunk lacks its chunk-signature")
            self._chunk_signature = signature
        elif sep:
            raise InvalidRequest("unsigned aws-chunked chunks carry no extensions")
        if size > self._max_chunk:
            raise InvalidRequest(f"aws-chunked chunk larger than {self._max_chunk} bytes")
        self._want = size
        self._chunk_hash = hashlib.sha256()
        self._state = "data" if size else "last"
        if size == 0:
            self._last_chunk()

    def _take_data(self, out: bytearray) -> bool:
        if not self._buffer:
            return False
        piece = bytes(self._buffer[:self._want])
        del self._buffer[:len(piece)]
        self._want -= len(piece)
        self.decoded += len(piece)
        if self._expected_length is not None and self.decoded > self._expected_length:
            raise IncompleteBody("aws-chunked body longer than x-amz-decoded-content-length")
        if self._checksum is not None:
            self._checksum.update(piece)
        if self._signed:
            self._chunk_hash.update(piece)
            self._held += piece
        else:
            out += piece
        if self._want == 0:
            self._state = "end-of-chunk"
        return True

    def _verify_chunk(self) -> None:
        if not self._signed:
            return
        sts = self._prefix + f"{self._previous}\n{EMPTY_SHA256}\n{self._chunk_hash.hexdigest()}"
        expected = hmac.new(self._key, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), self._chunk_signature.encode()):
            raise SignatureDoesNotMatch("an aws-chunked chunk signature does not match")
        self._previous = self._chunk_signature

    def _end_chunk(self, out: bytearray) -> None:
        self._verify_chunk()
        out += self._held
        self._held = bytearray()
        self._state = "size"

    def _last_chunk(self) -> None:
        self._verify_chunk()
        if self._trailer is not None:
            self._state = "trailer"
        else:
            self._state = "final-crlf"

    def _trailer_line(self, line: str) -> None:
        if line == "":
            self._finish_trailers()
            return
        if len(self._trailer_lines) >= MAX_TRAILERS:
            raise InvalidRequest("too many aws-chunked trailers")
        name, sep, value = line.partition(":")
        if not sep:
            raise InvalidRequest("malformed aws-chunked trailer")
        self._trailer_lines.append((name.strip().lower(), value.strip()))

    def _finish_trailers(self) -> None:
        lines = self._trailer_lines
        if self._signed:
            if not lines or lines[-1][0] != "x-amz-trailer-signature":
                raise SignatureDoesNotMatch("aws-chunked trailer lacks x-amz-trailer-signature")
            signature = lines[-1][1]
            lines = lines[:-1]
            canonical = "".join(f"{n}:{v}\n" for n, v in lines)
            sts = self._trailer_prefix + f"{self._previous}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
            expected = hmac.new(self._key, sts.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode(), signature.encode()):
                raise SignatureDoesNotMatch("the aws-chunked trailer signature does not match")
        names = [n for n, _ in lines]
        if names != [self._trailer]:
            raise InvalidRequest("aws-chunked trailers do not match x-amz-trailer")
        self.trailers = dict(lines)
        if self._checksum is not None:
            try:
                claimed = base64.b64decode(self.trailers[names[0]], validate=True)
            except ValueError:
                raise InvalidRequest("trailing checksum is not base64") from None
            if not hmac.compare_digest(claimed, self._checksum.digest()):
                raise BadDigest(f"the {names[0][len('x-amz-checksum-'):]} checksum does not match the body")
            self.checksum_verified = True
        self._state = "done"
        self._check_end()

    def _check_end(self) -> None:
        if self._expected_length is not None and self.decoded != self._expected_length:
            raise IncompleteBody("aws-chunked body shorter than x-amz-decoded-content-length")
