"""The client harness (clients.py) against moto's server directly, the baseline the gateway tests
compare with: boto3, the AWS CLI v2 and the AWS SDK for JavaScript v3, each a real process,
doing S3, Secrets Manager and IAM calls and seeing the same service error.

What each client sends for a 5 MiB PutObject, recorded with trap_server (pinned by
test_put_object_wire_format; boto3 1.44.8, AWS CLI 2.9.19 from Debian, @aws-sdk/client-s3
3.1178.0 on node 20; "sha256" is the hex SHA-256 of the body, so the payload is signed):

  client, scheme           x-amz-content-sha256                content-encoding  body framing / checksum
  boto3, http              sha256                              -                 Content-Length 5242880;
                                                                                 x-amz-checksum-crc32 header
  boto3, https             STREAMING-UNSIGNED-PAYLOAD-TRAILER  aws-chunked       Transfer-Encoding: chunked, 1 MiB
                                                                                 aws-chunks, x-amz-trailer:
                                                                                 x-amz-checksum-crc32,
                                                                                 x-amz-decoded-content-length
  CLI v2, http             sha256                              -                 Content-Length; Content-MD5 (no
                                                                                 flexible checksum by default)
  CLI v2, https            UNSIGNED-PAYLOAD                    -                 Content-Length; Content-MD5
  CLI v2, https, --checksum-algorithm CRC32
                           STREAMING-UNSIGNED-PAYLOAD-TRAILER  aws-chunked       as boto3 over https
  JS SDK, http or https    STREAMING-UNSIGNED-PAYLOAD-TRAILER  aws-chunked       Transfer-Encoding: chunked, 64 KiB
     (a fs.ReadStream)                                                           aws-chunks, x-amz-trailer:
                                                                                 x-amz-checksum-crc32; path has
                                                                                 ?x-id=PutObject
  JS SDK, a Buffer body    sha256                              -                 Content-Length; x-amz-checksum-crc32
                                                                                 header
  All send Expect: 100-continue; the JS SDK signs amz-sdk-request, amz-sdk-invocation-id,
  x-amz-user-agent and content-type too and sends Connection: close.

So over plain http only the JS SDK exercises aws-chunked with a trailer: botocore (and this CLI
v2, whose botocore predates default integrity protection) keep trailers for TLS. Nobody sends
the signed-chunk STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] modes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import zlib
from base64 import b64encode
from pathlib import Path
from typing import Any

import pytest
from clients import (
    CLIENTS,
    JS_CLIENT,
    HarnessError,
    cli_v2_path,
    client_env,
    js_sdk_version,
    node_ready,
    require_cli_v2,
    require_node,
    run_client,
    run_js,
    trap_server,
)

# The harness checked against moto directly: the gateway client tests use the same harness and
# fail first if a client is missing, so this runs in `make soak` to keep `make test` short.
pytestmark = [pytest.mark.e2e, pytest.mark.soak]

BODY_SIZE = 5 * 1024 * 1024


@pytest.fixture(autouse=True)
def clients_installed() -> None:
    """A missing client fails the test (never skips it): `make test` installs all three."""
    require_cli_v2()
    require_node()


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("body") / "5MiB.bin"
    data = os.urandom(BODY_SIZE)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture
def env(moto_endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def unique(prefix: str, client: str) -> str:
    return f"{prefix}-{client.replace('_', '-')}-{secrets.token_hex(4)}"


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["ok"], result
    assert result["exit_code"] == 0, result
    return dict(result["output"])


# -- the harness finds its clients ------------------------------------------------------------------

def test_clients_are_installed() -> None:
    path = cli_v2_path()
    assert path is not None
    assert os.path.basename(path) == "aws"
    assert node_ready()
    assert js_sdk_version().startswith("3.")


# -- S3 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_s3_put_get_list(client: str, env: dict[str, str], body: tuple[Path, str], tmp_path: Path) -> None:
    path, sha256 = body
    bucket, key = unique("direct", client), "dir/5MiB.bin"
    ok(run_client(client, env, "s3", "CreateBucket", {"Bucket": bucket}))

    put = ok(run_client(client, env, "s3", "PutObject", {"Bucket": bucket, "Key": key}, body_file=path))
    assert put["ETag"].strip('"') == hashlib.md5(path.read_bytes()).hexdigest()

    out = tmp_path / "downloaded"
    got = ok(run_client(client, env, "s3", "GetObject", {"Bucket": bucket, "Key": key}, out_file=out))
    assert got["Body"] == {"bytes": BODY_SIZE, "sha256": sha256}
    assert got["ContentLength"] == BODY_SIZE
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha256

    listed = ok(run_client(client, env, "s3", "ListObjectsV2", {"Bucket": bucket}))
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [(key, BODY_SIZE)]
    assert listed["KeyCount"] == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_s3_missing_key_is_no_such_key(client: str, env: dict[str, str]) -> None:
    bucket = unique("missing", client)
    ok(run_client(client, env, "s3", "CreateBucket", {"Bucket": bucket}))
    result = run_client(client, env, "s3", "GetObject", {"Bucket": bucket, "Key": "no/such/key"})
    assert result["ok"] is False
    assert result["code"] == "NoSuchKey", result
    assert "does not exist" in result["message"]
    if client == "cli_v2":
        assert result["exit_code"] == 254  # the CLI's "service error" exit status
        assert result["http_status"] is None  # the CLI does not print it
    else:
        assert result["exit_code"] == 1
        assert result["http_status"] == 404
        assert result["attempts"] == 1  # a 404 is not retried


# -- Secrets Manager and IAM ----------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_secretsmanager_create_and_get(client: str, env: dict[str, str]) -> None:
    name = unique("db/password", client)
    created = ok(run_client(client, env, "secretsmanager", "CreateSecret",
                            {"Name": name, "SecretString": "s3cr3t-" + client}))
    assert created["Name"] == name
    assert created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:")
    got = ok(run_client(client, env, "secretsmanager", "GetSecretValue", {"SecretId": name}))
    assert got["SecretString"] == "s3cr3t-" + client
    assert got["ARN"] == created["ARN"]

    binary = unique("blob", client)
    ok(run_client(client, env, "secretsmanager", "CreateSecret",
                  {"Name": binary, "SecretBinary": {"$base64": b64encode(b"\x00\x01\xff").decode()}}))
    got = ok(run_client(client, env, "secretsmanager", "GetSecretValue", {"SecretId": binary}))
    # boto3 and the JS SDK hand back bytes (as {"$base64": ...}); the CLI prints base64 text.
    assert got["SecretBinary"] in ({"$base64": "AAH/"}, "AAH/")


@pytest.mark.parametrize("client", CLIENTS)
def test_iam_create_user_and_access_key(client: str, env: dict[str, str]) -> None:
    user = unique("agent", client)
    created = ok(run_client(client, env, "iam", "CreateUser", {"UserName": user}))
    assert created["User"]["UserName"] == user
    assert created["User"]["Arn"].endswith(f":user/{user}")
    key = ok(run_client(client, env, "iam", "CreateAccessKey", {"UserName": user}))["AccessKey"]
    assert key["UserName"] == user
    assert key["Status"] == "Active"
    assert key["AccessKeyId"].startswith("AKIA")
    assert len(key["SecretAccessKey"]) == 40


# -- the harness' own guarantees --------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_env_is_exactly_what_the_test_gives(client: str, env: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's AWS_* variables never reach a client: here they name the trap, and the
    trap hears nothing while the call goes to moto with the env the test gave."""
    with trap_server() as trap:
        monkeypatch.setenv("AWS_ENDPOINT_URL", trap.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", trap.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALEAKEDFROMSHELL0")
        monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
        who = ok(run_client(client, env, "sts", "GetCallerIdentity", {}))
        assert who["Account"] == "123456789012"
        assert trap.snapshot() == []


@pytest.mark.parametrize("client", CLIENTS)
def test_attempts_follow_the_clients_retry_settings(client: str) -> None:
    """A 503 is retried with each client's defaults (standard mode, 3 attempts) unless
    AWS_MAX_ATTEMPTS says otherwise; the answer's attempts match what the server saw."""
    with trap_server(status=503) as trap:
        base = {"AWS_ENDPOINT_URL": trap.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}
        for extra, attempts in (({}, 3), ({"AWS_MAX_ATTEMPTS": "1"}, 1)):
            before = len(trap.snapshot())
            result = run_client(client, {**base, **extra}, "sts", "GetCallerIdentity", {})
            assert result["ok"] is False, result
            assert len(trap.snapshot()) - before == attempts
            assert result["attempts"] == attempts
            if client != "cli_v2":
                assert result["http_status"] == 503
    assert all(r.path == "/" and r.method == "POST" for r in trap.requests)


# -- what goes over the wire ----------------------------------------------------------------------

def decode_aws_chunked(data: bytes) -> tuple[bytes, dict[str, str], list[int]]:
    """An aws-chunked body (unsigned chunks) -> (payload, trailers, chunk sizes)."""
    payload, sizes, pos = [], [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";", 1)[0], 16)
        pos = end + 2
        if size == 0:
            break
        sizes.append(size)
        payload.append(data[pos:pos + size])
        assert data[pos + size:pos + size + 2] == b"\r\n"
        pos += size + 2
    trailers = {}
    for line in data[pos:].split(b"\r\n"):
        if line:
            name, value = line.decode().split(":", 1)
            trailers[name.lower()] = value
    return b"".join(payload), trailers, sizes


SIGNED = "sha256"
TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
# (client, tls, extra params, body_as) -> (x-amz-content-sha256, aws-chunked chunk size or None,
# how the checksum travels: "header", "trailer" or "md5")
WIRE = {
    ("boto3", False, (), None): (SIGNED, None, "header"),
    ("boto3", True, (), None): (TRAILER, 1024 * 1024, "trailer"),
    ("cli_v2", False, (), None): (SIGNED, None, "md5"),
    ("cli_v2", True, (), None): ("UNSIGNED-PAYLOAD", None, "md5"),
    ("cli_v2", True, (("ChecksumAlgorithm", "CRC32"),), None): (TRAILER, 1024 * 1024, "trailer"),
    ("js", False, (), None): (TRAILER, 64 * 1024, "trailer"),
    ("js", True, (), None): (TRAILER, 64 * 1024, "trailer"),
    ("js", False, (), "buffer"): (SIGNED, None, "header"),
}


@pytest.mark.parametrize(("client", "tls", "extra", "body_as"), list(WIRE),
                         ids=[f"{c}-{'https' if t else 'http'}{'-' + '-'.join(k for k, _ in e) if e else ''}"
                              f"{'-' + b if b else ''}" for c, t, e, b in WIRE])
def test_put_object_wire_format(client: str, tls: bool, extra: tuple[tuple[str, str], ...], body_as: str | None,
                                body: tuple[Path, str]) -> None:
    path, sha256 = body
    data = path.read_bytes()
    content_sha256, chunk_size, checksum = WIRE[(client, tls, extra, body_as)]
    with trap_server(tls=tls) as trap:
        env = {"AWS_ENDPOINT_URL": trap.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
               "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}
        if tls:
            env.update(trap.tls_env())
        result = run_client(client, env, "s3", "PutObject", {"Bucket": "bkt", "Key": "k", **dict(extra)},
                            body_file=path, body_as=body_as)
        assert result["ok"], result
        [request] = trap.snapshot()

    headers = request.header_dict
    assert request.method == "PUT"
    assert request.path.split("?")[0] == "/bkt/k"
    assert headers["expect"] == "100-continue"
    assert headers["x-amz-content-sha256"] == (sha256 if content_sha256 == SIGNED else content_sha256)
    signed = headers["authorization"].split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed)
    crc32 = b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    if chunk_size is None:
        assert "content-encoding" not in headers
        assert headers["content-length"] == str(BODY_SIZE)
        assert not request.http_chunked
        assert request.body == data
    else:
        assert headers["content-encoding"] == "aws-chunked"
        assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
        assert headers["x-amz-decoded-content-length"] == str(BODY_SIZE)
        assert headers["x-amz-trailer"] == "x-amz-checksum-crc32"
        assert {"content-encoding", "x-amz-decoded-content-length", "x-amz-trailer"} <= set(signed)
        payload, trailers, sizes = decode_aws_chunked(request.body)
        assert payload == data
        assert set(sizes[:-1]) == {chunk_size}
        assert trailers == {"x-amz-checksum-crc32": crc32}
    if checksum == "header":
        assert headers["x-amz-checksum-crc32"] == crc32
        assert headers["x-amz-sdk-checksum-algorithm"] == "CRC32"
    elif checksum == "md5":
        assert headers["content-md5"] == b64encode(hashlib.md5(data).digest()).decode()
        assert "x-amz-checksum-crc32" not in headers
    else:
        assert "x-amz-checksum-crc32" not in headers  # it is in the trailer
        assert headers["x-amz-sdk-checksum-algorithm"] == "CRC32"


def test_js_client_answers_one_json_line_even_for_nonsense(tmp_path: Path) -> None:
    """Bad input to client.mjs is a harness error (exit 2, one JSON line), never a stack trace."""
    proc = subprocess.run(["node", str(JS_CLIENT)], input="not json", capture_output=True, text=True,
                          env=client_env({}), timeout=60)
    assert proc.returncode == 2
    assert proc.stdout.count("\n") == 1 and '"harness_error":true' in proc.stdout
    with pytest.raises(HarnessError, match="NoSuchThingCommand"):
        run_js({"AWS_REGION": "us-east-1"}, "s3", "NoSuchThing", {})
    with pytest.raises(HarnessError, match="body_file"):
        run_js({"AWS_REGION": "us-east-1"}, "s3", "PutObject", {"Bucket": "b", "Key": "k"},
               body_file=tmp_path / "absent")
