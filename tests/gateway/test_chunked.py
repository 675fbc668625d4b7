"""aws-chunked bodies: the signed-chunk chain from the AWS documentation's own example, chains
computed here per that documentation, and botocore's unsigned-trailer encoder."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import io
import zlib

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha256Checksum

from hoopcli.server.gateway.chunked import AwsChunkedDecoder
from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import PayloadMode, SigV4Verifier

# "Example: PUT Object" of "Signature Calculations for the Authorization Header: Transferring
# Payload in Multiple Chunks" (Amazon S3 API Reference, sigv4-streaming).
DOC_KEY, DOC_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNKS = [(65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
              (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
              (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")]
DOC_TIME = calendar.timegm((2013, 5, 24, 0, 0, 30, 0, 0, 0))


def doc_request() -> GatewayRequest:
    return GatewayRequest.build("PUT", "/examplebucket/chunkObject.txt", {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                         f"x-amz-decoded-content-length;x-amz-storage-class,Signature={DOC_SEED}",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
    })


def doc_body() -> bytes:
    return b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (size, sig.encode(), b"a" * size) for size, sig in DOC_CHUNKS)


def doc_decoder() -> AwsChunkedDecoder:
    verified = SigV4Verifier({DOC_KEY: DOC_SECRET}.get, clock=lambda: DOC_TIME).verify(doc_request())
    assert verified.payload is PayloadMode.STREAMING_SIGNED
    return verified.chunk_decoder(decoded_length=66560)


def test_the_documented_example_verifies_seed_and_every_chunk() -> None:
    body = doc_body()
    assert len(body) == 66824
    decoder = doc_decoder()
    assert decoder.feed(body) == b"a" * 66560
    assert decoder.finish() == {}


def test_the_decoder_releases_bytes_only_after_their_chunk_verified_however_it_is_fed() -> None:
    decoder = doc_decoder()
    body = doc_body()
    out = bytearray()
    released_before_first_chunk_end = b""
    for i in range(0, len(body), 977):
        piece = decoder.feed(body[i:i + 977])
        if i + 977 < 65536:
            released_before_first_chunk_end += piece
        out += piece
    assert released_before_first_chunk_end == b""
    assert bytes(out) == b"a" * 66560
    decoder.finish()


@pytest.mark.parametrize("offset", [100, 65536 + 90, 65536 + 200 + 500])
def test_a_flipped_byte_in_any_chunk_fails(offset: int) -> None:
    body = bytearray(doc_body())
    body[offset] ^= 0x01
    decoder = doc_decoder()
    with pytest.raises(GatewayError) as caught:
        decoder.feed(bytes(body))
        decoder.finish()
    assert caught.value.code in ("SignatureDoesNotMatch", "InvalidRequest", "IncompleteBody")


def test_a_flipped_chunk_signature_a_dropped_chunk_and_a_truncated_body_fail() -> None:
    body = doc_body()
    bad_sig = body.replace(DOC_CHUNKS[1][1].encode(), DOC_CHUNKS[1][1][:-1].encode() + b"0")
    with pytest.raises(GatewayError, match="chunk signature"):
        doc_decoder().feed(bad_sig)
    first = b"%x;chunk-signature=%s\r\n%s\r\n" % (65536, DOC_CHUNKS[0][1].encode(), b"a" * 65536)
    with pytest.raises(GatewayError):
        doc_decoder().feed(body.replace(first, b""))
    decoder = doc_decoder()
    decoder.feed(body[:-10])
    with pytest.raises(GatewayError) as caught:
        decoder.finish()
    assert caught.value.code == "IncompleteBody"
    decoder = doc_decoder()
    with pytest.raises(GatewayError):
        decoder.feed(body + b"extra")


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_signed_chunks_with_a_signed_trailer() -> None:
    key = hmac.new(f"AWS4{DOC_SECRET}".encode(), b"20130524", hashlib.sha256).digest()
    for part in ("us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    scope, ts = "20130524/us-east-1/s3/aws4_request", "20130524T000000Z"
    empty = hashlib.sha256(b"").hexdigest()
    data = [b"x" * 1000, b"y" * 10, b""]
    previous, body = "f" * 64, b""
    for chunk in data:
        sig = _sign(key, f"AWS4-HMAC-SHA256-PAYLOAD\n{ts}\n{scope}\n{previous}\n{empty}\n"
                         f"{hashlib.sha256(chunk).hexdigest()}")
        body += b"%x;chunk-signature=%s\r\n" % (len(chunk), sig.encode()) + (chunk + b"\r\n" if chunk else b"")
        previous = sig
    crc = base64.b64encode(zlib.crc32(b"".join(data)).to_bytes(4, "big")).decode()
    trailer = f"x-amz-checksum-crc32:{crc}\n"
    tsig = _sign(key, f"AWS4-HMAC-SHA256-TRAILER\n{ts}\n{scope}\n{previous}\n{hashlib.sha256(trailer.encode()).hexdigest()}")
    body += f"x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode()

    def decoder() -> AwsChunkedDecoder:
        return AwsChunkedDecoder(signed=True, trailer="x-amz-checksum-crc32", seed_signature="f" * 64,
                                 signing_key=key, timestamp=ts, scope=scope, decoded_length=1010)

    d = decoder()
    assert d.feed(body) == b"".join(data)
    assert d.finish() == {"x-amz-checksum-crc32": crc} and d.checksum_verified
    with pytest.raises(GatewayError, match="trailer signature"):
        decoder().feed(body.replace(tsig.encode(), tsig[:-1].encode() + b"0"))


@pytest.mark.parametrize("checksum_cls, name", [(Crc32Checksum, "crc32"), (Sha256Checksum, "sha256")])
def test_botocores_unsigned_trailer_encoding_decodes_and_checks_the_checksum(checksum_cls: type, name: str) -> None:
    payload = bytes(range(256)) * 300
    wrapper = AwsChunkedWrapper(io.BytesIO(payload), checksum_cls=checksum_cls,
                                checksum_name=f"x-amz-checksum-{name}", chunk_size=8192)
    body = wrapper.read()

    def decoder() -> AwsChunkedDecoder:
        return AwsChunkedDecoder(signed=False, trailer=f"x-amz-checksum-{name}", seed_signature="",
                                 signing_key=b"", timestamp="", scope="", decoded_length=len(payload))

    d = decoder()
    out = b"".join(d.feed(body[i:i + 5000]) for i in range(0, len(body), 5000))
    assert out == payload and d.checksum_verified
    d.finish()
    tampered = bytearray(body)
    tampered[100] ^= 0xFF
    with pytest.raises(GatewayError) as caught:
        decoder().feed(bytes(tampered))
    assert caught.value.code == "BadDigest"


def test_hostile_framing_is_refused() -> None:
    def unsigned(limit: int = 1024) -> AwsChunkedDecoder:
        return AwsChunkedDecoder(signed=False, trailer=None, seed_signature="", signing_key=b"",
                                 timestamp="", scope="", decoded_length=None, max_chunk=limit)

    for body in (b"zz\r\n", b"ffffffffffffffffff\r\n", b"800\r\n", b"5;ext=1\r\nhello\r\n", b"5\r\nhelloXX",
                 b"1" * 5000):
        with pytest.raises(GatewayError):
            unsigned().feed(body)
    d = unsigned()
    assert d.feed(b"5\r\nhello\r\n0\r\n\r\n") == b"hello"
    d.finish()
