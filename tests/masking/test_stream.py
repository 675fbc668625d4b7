"""StreamMasker: secrets split across chunk boundaries are still masked; lines stream."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hoopcli.masking import Masker, StreamMasker

M = Masker(b"\x02" * 32)
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDtokenTOKENtoken"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretbody\nmoresecretbody\n-----END RSA PRIVATE KEY-----\n"
DOC = (
    f"line one\n{{\"AccessKeyId\": \"{KEY_ID}\",\n \"SecretAccessKey\": \"{SECRET}\",\n"
    f" \"SessionToken\": \"{TOKEN}\"}}\n{PEM}tail without newline {KEY_ID}"
).encode()


def _run(chunks: list[bytes], **kw: int) -> bytes:
    stream = StreamMasker(M, **kw)
    return b"".join(stream.feed(c) for c in chunks) + stream.close()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=len(DOC)), max_size=30))
def test_any_chunking_masks_like_whole_text(cuts: list[int]) -> None:
    out = _run(_split(DOC, cuts))
    for secret in (KEY_ID, SECRET, TOKEN, "secretbody"):
        assert secret.encode() not in out
    assert out == M.mask_bytes(DOC)


def test_byte_at_a_time() -> None:
    out = _run([DOC[i:i + 1] for i in range(len(DOC))])
    assert out == M.mask_bytes(DOC)


def test_complete_lines_are_released_immediately() -> None:
    stream = StreamMasker(M)
    assert stream.feed(b"2024-01-01 event one\n2024-01-01 ev") == b"2024-01-01 event one\n"
    assert stream.feed(b"ent two\n") == b"2024-01-01 event two\n"
    assert stream.close() == b""


def test_private_key_block_held_until_end() -> None:
    stream = StreamMasker(M)
    first = stream.feed(b"before\n-----BEGIN PRIVATE KEY-----\nMIIsecret1\n")
    assert first == b"before\n"
    assert stream.feed(b"MIIsecret2\n") == b""
    rest = stream.feed(b"-----END PRIVATE KEY-----\nafter\n") + stream.close()
    assert b"MIIsecret" not in rest and b"[masked:private-key:" in rest and rest.endswith(b"after\n")


def test_long_line_without_newline_is_bounded_and_cut_at_whitespace() -> None:
    stream = StreamMasker(M, max_line=1024)
    out = stream.feed(b"x " * 600)
    assert out and len(out) <= 1200
    out += stream.feed(f" {KEY_ID} ".encode()) + stream.close()
    assert KEY_ID.encode() not in out


def test_secret_key_on_the_line_after_its_key_id() -> None:
    out = _run([f"{KEY_ID}\n".encode(), f"{SECRET}\n".encode()])
    assert SECRET.encode() not in out


def test_invalid_utf8_passes_through() -> None:
    data = b"\xff\xfe ok \xc3\n\xa9 done"
    assert _run([data[:5], data[5:]]) == data


def test_debug_stream_masks_headers_across_chunks() -> None:
    log = (
        b"2024 - botocore.endpoint - DEBUG - headers={'X-Amz-Security-Token': b'FwoGZXIvYXdzEBYaDtoken"
        b"value1234567890', 'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIAIOSFODNN7EXAMPLE/2024"
        b"0101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abcdef0123456789'}\n"
        b"2024 - botocore.parsers - DEBUG - Response body:\nb'{\"SecretString\":\"hoopCanaryStream1\"}'\n"
    )
    expected = M.mask_bytes(log, debug=True)
    for size in (1, 7, 64, 4096):
        stream = StreamMasker(M, debug=True)
        out = b"".join(stream.feed(log[i:i + size]) for i in range(0, len(log), size)) + stream.close()
        assert out == expected
    for secret in (b"tokenvalue1234567890", b"abcdef0123456789", b"hoopCanaryStream1", b"ASIAIOSF"):
        assert secret not in expected
