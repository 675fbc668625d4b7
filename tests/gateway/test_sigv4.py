"""SigV4 verification against requests signed by botocore's real signers."""

from __future__ import annotations

import datetime
import hashlib
import time
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.sigv4 import PayloadMode, SigV4Verifier, needs_body

KEY, SECRET = "HOOPSESSIONKEY0000001", "s3cr3t/session+secret"
CREDS = Credentials(KEY, SECRET)
VERIFIER = SigV4Verifier({KEY: SECRET}.get)


def sign(auth_cls: type, service: str, method: str, url: str, body: bytes = b"",
         headers: dict[str, str] | None = None, at: datetime.datetime | None = None,
         context: dict[str, object] | None = None, **kw: object) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    request.context.update(context or {})
    signer = auth_cls(CREDS, service, "eu-west-1", **kw)
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            signer.add_auth(request)
    return request


def incoming(request: AWSRequest, *, body: bytes | None = None, streaming: bool = False) -> GatewayRequest:
    parts = urlsplit(request.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = [(k, v) for k, v in request.headers.items()] + [("Host", parts.netloc)]
    data = request.body if body is None else body
    if isinstance(data, str):
        data = data.encode()
    return GatewayRequest.build(request.method, target, headers, None if streaming else (data or b""))


def code_of(request: GatewayRequest, verifier: SigV4Verifier = VERIFIER) -> str:
    with pytest.raises(GatewayError) as caught:
        verifier.verify(request)
    assert SECRET not in str(caught.value)
    return caught.value.code


def test_header_signed_json_request_verifies() -> None:
    body = b'{"TableName": "t", "Key": {"id": {"S": "1"}}}'
    req = sign(SigV4Auth, "dynamodb", "POST", "http://gw.test:8010/", body,
               {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"})
    result = VERIFIER.verify(incoming(req))
    assert (result.access_key, result.region, result.service) == (KEY, "eu-west-1", "dynamodb")
    assert result.payload is PayloadMode.VERIFIED and not result.presigned
    assert needs_body(incoming(req))


def test_non_s3_path_is_double_encoded_as_the_sdks_sign_it() -> None:
    req = sign(SigV4Auth, "lambda", "GET", "http://gw.test/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/configuration"
               "?Qualifier=%24LATEST&a=b%20c")
    assert VERIFIER.verify(incoming(req)).service == "lambda"


@pytest.fixture
def s3_put() -> AWSRequest:
    body = b"hello object"
    return sign(S3SigV4Auth, "s3", "PUT", "http://gw.test/bucket/dir/a%20b%2Bc.txt?x-id=PutObject", body,
                {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(), "Content-Type": "text/plain",
                 "x-amz-meta-owner": "alice"})


def test_s3_request_verifies_with_the_body_and_while_it_streams(s3_put: AWSRequest) -> None:
    assert VERIFIER.verify(incoming(s3_put)).payload is PayloadMode.VERIFIED
    streaming = VERIFIER.verify(incoming(s3_put, streaming=True))
    assert streaming.payload is PayloadMode.PENDING
    hasher = streaming.payload_hasher()
    hasher.feed(b"hello ")
    hasher.feed(b"object")
    hasher.finish()
    bad = streaming.payload_hasher()
    bad.feed(b"hello objecT")
    with pytest.raises(GatewayError) as caught:
        bad.finish()
    assert caught.value.code == "XAmzContentSHA256Mismatch"


def test_unsigned_payload_is_reported_as_unsigned() -> None:
    req = sign(S3SigV4Auth, "s3", "PUT", "https://gw.test/b/k", b"data", context={"client_config": Config(s3={"payload_signing_enabled": False})})
    assert req.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert VERIFIER.verify(incoming(req)).payload is PayloadMode.UNSIGNED


def _replace_target(req: GatewayRequest, target: str) -> GatewayRequest:
    return GatewayRequest(req.method, target, req.headers, req.body)


def test_tampering_with_any_signed_part_fails(s3_put: AWSRequest) -> None:
    good = incoming(s3_put)
    assert code_of(GatewayRequest("POST", good.target, good.headers, good.body)) == "SignatureDoesNotMatch"
    assert code_of(_replace_target(good, good.target.replace("dir", "dir2"))) == "SignatureDoesNotMatch"
    assert code_of(_replace_target(good, good.target + "&acl=")) == "SignatureDoesNotMatch"
    assert code_of(_replace_target(good, good.target.replace("PutObject", "PutObjecT"))) == "SignatureDoesNotMatch"
    headers = dict(good.headers)
    headers["x-amz-meta-owner"] = "mallory"
    assert code_of(GatewayRequest.build("PUT", good.target, headers, good.body)) == "SignatureDoesNotMatch"
    headers = dict(good.headers)
    del headers["content-type"]
    assert code_of(GatewayRequest.build("PUT", good.target, headers, good.body)) == "SignatureDoesNotMatch"
    assert code_of(GatewayRequest("PUT", good.target, good.headers, b"hello objecT")) == "XAmzContentSHA256Mismatch"


def test_tampered_body_of_a_body_hashed_request_fails() -> None:
    req = sign(SigV4Auth, "sqs", "POST", "http://gw.test/", b"Action=SendMessage&MessageBody=hi",
               {"Content-Type": "application/x-www-form-urlencoded"})
    assert code_of(incoming(req, body=b"Action=SendMessage&MessageBody=ho")) == "SignatureDoesNotMatch"


def test_wrong_secret_and_unknown_key() -> None:
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity&Version=2011-06-15"))
    assert code_of(req, SigV4Verifier({KEY: "other-secret"}.get)) == "SignatureDoesNotMatch"
    assert code_of(req, SigV4Verifier({}.get)) == "InvalidClientTokenId"


def test_a_twenty_minute_old_signature_and_one_from_the_future_are_refused() -> None:
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity", at=old))
    assert code_of(req) == "RequestTimeTooSkewed"
    future = datetime.datetime.utcnow() + datetime.timedelta(minutes=6)
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity", at=future))
    assert code_of(req) == "RequestTimeTooSkewed"
    recent = datetime.datetime.utcnow() - datetime.timedelta(minutes=4)
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity", at=recent))
    assert VERIFIER.verify(req).service == "sts"


def test_scope_date_must_match_x_amz_date() -> None:
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity"))
    headers = dict(req.headers)
    today = headers["x-amz-date"][:8]
    headers["authorization"] = headers["authorization"].replace(f"/{today}/", "/20200101/")
    assert code_of(GatewayRequest.build("POST", "/", headers, req.body)) == "SignatureDoesNotMatch"


def test_presigned_url_from_boto3_verifies_and_expires() -> None:
    client = boto3.client("s3", region_name="eu-west-1", endpoint_url="http://gw.test:8010",
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          config=Config(signature_version="s3v4"))
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "a/b c.txt"}, ExpiresIn=60)
    parts = urlsplit(url)
    req = GatewayRequest.build("GET", f"{parts.path}?{parts.query}", {"Host": parts.netloc})
    result = VERIFIER.verify(req)
    assert result.presigned and result.service == "s3" and result.payload is PayloadMode.UNSIGNED
    assert not needs_body(req)
    later = SigV4Verifier({KEY: SECRET}.get, clock=lambda: time.time() + 120)
    with pytest.raises(GatewayError) as caught:
        later.verify(req)
    assert (caught.value.code, caught.value.message) == ("AccessDenied", "Request has expired")
    assert code_of(_replace_target(req, req.target.replace("b%20c", "b%20d"))) == "SignatureDoesNotMatch"


def test_presigned_query_auth_for_a_non_s3_service_verifies() -> None:
    req = sign(SigV4QueryAuth, "sts", "GET", "http://gw.test/?Action=GetCallerIdentity&Version=2011-06-15",
               expires=300)
    assert VERIFIER.verify(incoming(req)).presigned
    s3 = sign(S3SigV4QueryAuth, "s3", "GET", "http://gw.test/b/k", expires=300)
    assert VERIFIER.verify(incoming(s3, streaming=True)).payload is PayloadMode.UNSIGNED


def test_missing_and_repeated_auth_parameters() -> None:
    req = sign(SigV4QueryAuth, "sts", "GET", "http://gw.test/?Action=GetCallerIdentity", expires=300)
    good = incoming(req)
    no_sig = "&".join(p for p in good.query.split("&") if not p.startswith("X-Amz-Signature="))
    assert code_of(_replace_target(good, f"/?{no_sig}&X-Amz-Credential=x")) == "IncompleteSignature"
    repeated = good.target + "&X-Amz-Date=" + good.target.split("X-Amz-Date=")[1].split("&")[0]
    assert code_of(_replace_target(good, repeated)) == "IncompleteSignature"
    assert code_of(GatewayRequest.build("GET", "/", {"Host": "gw.test"})) == "MissingAuthenticationToken"
    sigv2 = "/b/k?AWSAccessKeyId=" + KEY + "&Signature=abc&Expires=1"
    assert code_of(GatewayRequest.build("GET", sigv2, {"Host": "gw.test"})) == "IncompleteSignature"
    signed = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity"))
    headers = dict(signed.headers)
    auth = headers["authorization"]
    headers["authorization"] = auth + ", Signature=" + "0" * 64
    assert code_of(GatewayRequest.build("POST", "/", headers, signed.body)) == "IncompleteSignature"
    headers["authorization"] = auth.split(", Signature=")[0]
    assert code_of(GatewayRequest.build("POST", "/", headers, signed.body)) == "IncompleteSignature"
    headers["authorization"] = auth.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")
    assert code_of(GatewayRequest.build("POST", "/", headers, signed.body)) == "IncompleteSignature"
    both = dict(signed.headers)
    assert code_of(GatewayRequest.build("POST", good.target, both, signed.body)) == "InvalidRequest"


def test_unsigned_x_amz_headers_that_matter_are_refused() -> None:
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity"))
    headers = dict(req.headers)
    headers["x-amz-security-token"] = "smuggled"
    assert code_of(GatewayRequest.build("POST", "/", headers, req.body)) == "SignatureDoesNotMatch"


def test_bounds_on_headers_and_targets() -> None:
    with pytest.raises(GatewayError) as caught:
        GatewayRequest.build("GET", "/", {"x-big": "a" * 65536})
    assert caught.value.code == "RequestHeaderSectionTooLarge"
    with pytest.raises(GatewayError) as caught:
        GatewayRequest.build("GET", "/", [(f"x-h{i}", "a" * 4000) for i in range(20)])
    assert caught.value.code == "RequestHeaderSectionTooLarge"
    with pytest.raises(GatewayError):
        GatewayRequest.build("GET", "/", [("Host", "a"), ("host", "b")])
    for target in ("http://169.254.169.254/latest", "*", "example.com:443", "/a b", "/a#frag"):
        with pytest.raises(GatewayError):
            GatewayRequest.build("GET", target, {})
    with pytest.raises(GatewayError) as caught:
        GatewayRequest.build("GET", "/?a=b+c", {"Host": "x"}).query and VERIFIER.verify(
            GatewayRequest.build("GET", "/?a=b+c&X-Amz-Signature=1", {"Host": "x"}))
    assert caught.value.code == "InvalidRequest"


def test_errors_never_carry_the_expected_signature() -> None:
    req = incoming(sign(SigV4Auth, "sts", "POST", "http://gw.test/", b"Action=GetCallerIdentity"))
    headers = dict(req.headers)
    good_sig = headers["authorization"].rsplit("Signature=", 1)[1]
    headers["authorization"] = headers["authorization"].replace(good_sig, "f" * 64)
    with pytest.raises(GatewayError) as caught:
        VERIFIER.verify(GatewayRequest.build("POST", "/", headers, req.body))
    assert good_sig not in repr(caught.value) and good_sig not in caught.value.message


@pytest.mark.parametrize("s3", [True, False])
def test_the_light_header_map_signs_exactly_as_botocores_own(s3: bool) -> None:
    """Upstream.sign runs botocore's signer on SignerHeaders instead of HTTPHeaders: for the same
    request (mixed-case names, runs of spaces, a session token) the signed headers are the same."""
    from hoopcli.server.gateway.upstream import Target, Upstream

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "a-session-token")
    url = "https://example.amazonaws.com/some%20path/a~b" + ("" if s3 else "?b=2&a=1")
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "Svc.Op"),
               ("x-amz-meta-note", "  two   spaces  "), ("User-Agent", "hoop-test/1"),
               ("host", "example.amazonaws.com")]
    body = b'{"a": 1}'
    at = datetime.datetime(2026, 12, 7, 1, 2, 3)
    stock_cls = S3SigV4Auth if s3 else SigV4Auth
    stock = AWSRequest(method="PUT", url=url, headers={**dict(headers), "content-length": str(len(body))},
                       data=body)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        stock_cls(creds, "svc", "us-east-1").add_auth(stock)
        ours = Upstream.sign(Target(url, "svc", "us-east-1", s3, "example.amazonaws.com"), "PUT", headers,
                             creds, body, None)
    want = {k.lower(): v for k, v in stock.headers.items()}
    assert {k.lower(): v for k, v in ours} == want
    assert want["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261207/")
