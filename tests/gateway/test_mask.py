"""Response masking at the gateway, checked against the client's own Masker: botocore's parse of the
masked body must equal Masker.mask_parsed of botocore's parse of the original (real models and
parsers, bodies written as AWS writes them)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import stat
import zlib
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.serialize import RpcV2CBORSerializer

from hoopcli.masking import KEY_FILE_NAME, Masker
from hoopcli.masking.detect import MARKER_RE
from hoopcli.server.gateway.mask import MaskingFailed, ResponseMasker, masked_headers, passes_through, server_masker
from hoopcli.server.gateway.wire import error_response

SESSION = botocore.session.get_session()
KEY = b"gateway-mask-test-key-0123456789"
SECRET_KEY = "Zx9qLrT2vB8nM4kP1sW6yH3jF7dA0cE5gU2iO8tQ"
TOKEN = ("AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoI"
         "YRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXD==")
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq3xZ\n-----END RSA PRIVATE KEY-----"


def _model(service: str) -> Any:
    return SESSION.get_service_model(service)


def _parse(service: str, operation: str, protocol: str, body: bytes, status: int = 200) -> Any:
    shape = _model(service).operation_model(operation).output_shape
    parsed = create_parser(protocol).parse({"status_code": status, "headers": {}, "body": body}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def _markers_as_text(obj: Any) -> Any:
    """A masked blob comes back from the SDK as the marker's bytes; Masker shows it as the marker."""
    if isinstance(obj, dict):
        return {k: _markers_as_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_markers_as_text(v) for v in obj]
    if isinstance(obj, bytes) and MARKER_RE.fullmatch(obj.decode("utf-8", "replace")):
        return obj.decode()
    return obj


def check(service: str, operation: str, protocol: str, body: bytes, *secrets: str) -> bytes:
    """Mask ``body``; assert the SDK's view equals Masker's and no secret is left anywhere."""
    masked = ResponseMasker(Masker(KEY)).mask(_model(service), operation, protocol, 200, {}, body)
    expected = Masker(KEY).mask_parsed(service, operation, _parse(service, operation, protocol, body))
    seen = _markers_as_text(_parse(service, operation, protocol, masked))
    assert seen == expected
    for secret in secrets:
        assert secret not in json.dumps(seen, default=str) and secret.encode() not in masked
    return masked


def test_secretsmanager_get_secret_value_even_with_escapes() -> None:
    secret = 'p&ss<w>"\\A\u00e9\u2603'  # JSON writes it with \" \\ and \u escapes, one by hand
    raw = json.dumps({"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf", "Name": "db",
                      "VersionId": "v1", "SecretString": secret, "VersionStages": ["AWSCURRENT"],
                      "CreatedDate": 1.7e9}).replace('\\\\A', '\\\\\\u0041')
    assert json.loads(raw)["SecretString"] == secret and "\\u0041" in raw
    masked = check("secretsmanager", "GetSecretValue", "json", raw.encode(), secret, "p&ss")
    out = json.loads(masked)
    assert MARKER_RE.fullmatch(out["SecretString"]) and out["Name"] == "db" and out["CreatedDate"] == 1.7e9
    binary = json.dumps({"Name": "db", "SecretBinary": base64.b64encode(b"\x00binary-secret\xff").decode()})
    masked = check("secretsmanager", "GetSecretValue", "json", binary.encode())
    assert MARKER_RE.fullmatch(base64.b64decode(json.loads(masked)["SecretBinary"]).decode())


def test_ssm_get_parameter_masks_secure_strings_only() -> None:
    def body(kind: str, value: str) -> bytes:
        return json.dumps({"Parameter": {"Name": "/app/db", "Type": kind, "Value": value, "Version": 3,
                                         "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db",
                                         "LastModifiedDate": 1.7e9, "DataType": "text"}}).encode()

    masked = check("ssm", "GetParameter", "json", body("SecureString", "db-passw0rd!"), "db-passw0rd!")
    assert json.loads(masked)["Parameter"]["Name"] == "/app/db"
    plain = body("String", "eu-west-1.internal")
    assert ResponseMasker(Masker(KEY)).mask(_model("ssm"), "GetParameter", "json", 200, {}, plain) is plain


def test_iam_create_access_key() -> None:
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <CreateAccessKeyResult>
    <AccessKey>
      <UserName>bob</UserName>
      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>
      <Status>Active</Status>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <CreateDate>2024-01-02T03:04:05Z</CreateDate>
    </AccessKey>
  </CreateAccessKeyResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</CreateAccessKeyResponse>""".encode()
    masked = check("iam", "CreateAccessKey", "query", body, SECRET_KEY)
    key = _parse("iam", "CreateAccessKey", "query", masked)["AccessKey"]
    assert key["UserName"] == "bob" and key["Status"] == "Active"
    # the key id is shown exactly as the client's Masker shows it (its detector masks AKIA ids)
    assert key["AccessKeyId"] == Masker(KEY).mask_text("AKIAIOSFODNN7EXAMPLE")
    assert masked.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CreateAccessKeyResponse xmlns=')


def test_lambda_environment_variables() -> None:
    body = json.dumps({"FunctionName": "billing", "Runtime": "python3.12", "MemorySize": 256,
                       "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:billing",
                       "Environment": {"Variables": {"DB_HOST": "db.internal", "DB_PASS": "hunter2-xyz",
                                                     "STRIPE": "sk_live_abcdef"}},
                       "LastModified": "2024-01-02T03:04:05.000+0000"}).encode()
    masked = check("lambda", "GetFunctionConfiguration", "rest-json", body, "hunter2-xyz", "sk_live_abcdef",
                   "db.internal")
    out = json.loads(masked)
    assert sorted(out["Environment"]["Variables"]) == ["DB_HOST", "DB_PASS", "STRIPE"]
    assert out["FunctionName"] == "billing" and out["LastModified"] == "2024-01-02T03:04:05.000+0000"


def test_sts_assume_role() -> None:
    body = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <SessionToken>{TOKEN}</SessionToken>
      <Expiration>2024-01-02T04:04:05Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>""".encode()
    masked = check("sts", "AssumeRole", "query", body, SECRET_KEY, TOKEN[:40])
    out = _parse("sts", "AssumeRole", "query", masked)
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::123456789012:assumed-role/demo/s"
    assert out["Credentials"]["Expiration"].isoformat() == "2024-01-02T04:04:05+00:00"
    assert out["PackedPolicySize"] == 6


def test_ec2_get_password_data_with_character_references() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
    <instanceId>i-1234567890abcdef0</instanceId>
    <timestamp>2024-01-02T03:04:05.000Z</timestamp>
    <passwordData>p&amp;ss&lt;w&#65;rd&quot;&#x263A;</passwordData>
</GetPasswordDataResponse>"""
    secret = 'p&ss<wArd"\u263a'
    assert _parse("ec2", "GetPasswordData", "ec2", body)["PasswordData"] == secret
    masked = check("ec2", "GetPasswordData", "ec2", body, secret, "ss&lt;w", "&#65;")
    assert _parse("ec2", "GetPasswordData", "ec2", masked)["InstanceId"] == "i-1234567890abcdef0"


def list_objects_v2() -> bytes:
    contents = "".join(
        f"<Contents><Key>reports/2024/{i:04d}/summary &amp; totals.csv</Key><LastModified>2024-01-02T03:04:05.000Z"
        f"</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>{1000 + i}</Size>"
        f"<StorageClass>STANDARD</StorageClass></Contents>" for i in range(7))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            "<Name>example-bucket</Name><Prefix>reports/</Prefix><KeyCount>7</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>").encode()


def test_nothing_secret_comes_back_byte_for_byte() -> None:
    masker = ResponseMasker(Masker(KEY))
    listing = list_objects_v2()
    assert masker.mask(_model("s3"), "ListObjectsV2", "rest-xml", 200, {}, listing) is listing
    item = json.dumps({"Item": {"pk": {"S": "customer#42"}, "password": {"S": "kept: not a member name"}}}).encode()
    assert masker.mask(_model("dynamodb"), "GetItem", "json", 200, {}, item) is item
    secret = json.dumps({"Name": "db", "SecretString": ""}).encode()  # nothing to hide in an empty value
    assert masker.mask(_model("secretsmanager"), "GetSecretValue", "json", 200, {}, secret) is secret


def test_cbor_is_masked_structurally() -> None:
    model = _model("gamelift")
    shape = model.operation_model("GetInstanceAccess").output_shape
    value = {"InstanceAccess": {"FleetId": "fleet-1", "InstanceId": "i-1", "IpAddress": "10.0.0.1",
                                "OperatingSystem": "WINDOWS_2012",
                                "Credentials": {"UserName": "gl-admin", "Secret": 'pw&<"\u00e9>'}}}
    serialized = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(serialized, value, shape)
    masked = check("gamelift", "GetInstanceAccess", "smithy-rpc-v2-cbor", bytes(serialized), 'pw&<"\u00e9>',
                   "gl-admin")
    out = _parse("gamelift", "GetInstanceAccess", "smithy-rpc-v2-cbor", masked)
    assert out["InstanceAccess"]["FleetId"] == "fleet-1"
    # eventbridgev2 speaks CBOR only; timestamps (tag 1) and booleans survive the rewrite
    shape = _model("eventbridgev2").operation_model("DescribeEventSource").output_shape
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    value = {"Name": "hooks", "Revoked": False, "CreationTime": when, "Configuration": {"WebhookEventsConfiguration": {
        "AuthConfiguration": {"BasicHttpAuthConfiguration": {"Username": "hook", "Password": "hook-pass-99"}}}}}
    serialized = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(serialized, value, shape)
    masked = check("eventbridgev2", "DescribeEventSource", "smithy-rpc-v2-cbor", bytes(serialized), "hook-pass-99")
    out = _parse("eventbridgev2", "DescribeEventSource", "smithy-rpc-v2-cbor", masked)
    assert (out["CreationTime"], out["Revoked"], out["Name"]) == (when, False, "hooks")
    # an item the gateway's CBOR reader refuses (tag 2, a bignum) is never passed on unread
    with pytest.raises(MaskingFailed):
        ResponseMasker(Masker(KEY)).mask(model, "GetInstanceAccess", "smithy-rpc-v2-cbor", 200, {},
                                         b"\xa1\x6eInstanceAccess\xc2\x41\x01")


def test_members_the_model_does_not_know() -> None:
    body = json.dumps({"Name": "db", "ClientSecret": "cs-0123456789", "Notes": f"key: {PEM}",
                       "Extra": {"apiToken": "tok-abcdef123"}}).encode()
    masked = ResponseMasker(Masker(KEY)).mask(_model("secretsmanager"), "GetSecretValue", "json", 200, {}, body)
    out = json.loads(masked)
    assert out["Name"] == "db" and MARKER_RE.fullmatch(out["ClientSecret"])
    assert "PRIVATE KEY" not in out["Notes"] and MARKER_RE.fullmatch(out["Extra"]["apiToken"])
    xml = (b"<GetUserResponse><GetUserResult><User><UserName>bob</UserName><Path>/</Path>"
           b"<NewPassword>tmp-pass-1234</NewPassword></User></GetUserResult></GetUserResponse>")
    masked = ResponseMasker(Masker(KEY)).mask(_model("iam"), "GetUser", "query", 200, {}, xml)
    assert b"tmp-pass-1234" not in masked and b"<UserName>bob</UserName>" in masked


@pytest.mark.parametrize(("protocol", "service", "operation"), [
    ("json", "dynamodb", "GetItem"), ("rest-json", "lambda", "Invoke"), ("query", "sts", "GetCallerIdentity"),
    ("ec2", "ec2", "DescribeInstances"), ("rest-xml", "s3", "GetObject"),
    ("smithy-rpc-v2-cbor", "eventbridgev2", "ListEventBuses")])
def test_error_bodies_keep_code_and_lose_secrets(protocol: str, service: str, operation: str) -> None:
    message = f"bad credentials AKIAIOSFODNN7EXAMPLE {SECRET_KEY} & <tag>"
    status, headers, body = error_response(protocol, "InvalidParameterValue", message, 400, "rid")
    masked = ResponseMasker(Masker(KEY)).mask(_model(service), operation, protocol, status, dict(headers), body)
    shape = _model(service).operation_model(operation).output_shape
    parsed = create_parser(protocol).parse({"status_code": status, "headers": {k.lower(): v for k, v in headers},
                                            "body": masked}, shape)
    assert parsed["Error"]["Code"] == "InvalidParameterValue"
    assert parsed["Error"]["Message"] == Masker(KEY).mask_text(message)
    assert SECRET_KEY.encode() not in masked and b"AKIAIOSFODNN7EXAMPLE" not in masked
    html = f"<html><body>proxy error AKIAIOSFODNN7EXAMPLE:{SECRET_KEY}</body></html>".encode()
    assert SECRET_KEY.encode() not in ResponseMasker(Masker(KEY)).mask(_model(service), operation, protocol, 502,
                                                                        {}, html)


def test_fail_closed() -> None:
    model, masker = _model("secretsmanager"), ResponseMasker(Masker(KEY))
    headers = {"x-amzn-RequestId": "req-42", "Content-Encoding": "gzip"}
    with pytest.raises(MaskingFailed) as caught:
        masker.mask(model, "GetSecretValue", "json", 200, headers, b"\x1f\x8b...")
    assert (caught.value.code, caught.value.status) == ("HoopMaskingFailed", 403)
    assert "secretsmanager.GetSecretValue" in caught.value.message and "req-42" in caught.value.message
    for body in (b"not json", b'{"SecretString": "x"} trailing'):
        with pytest.raises(MaskingFailed):
            masker.mask(model, "GetSecretValue", "json", 200, {}, body)
    # base64 that botocore decodes but that differs from the canonical form: found, then refused
    odd = json.dumps({"Name": "db", "SecretBinary": "c2VjcmV0LWJ5\ndGVz"}).encode()
    with pytest.raises(MaskingFailed):
        masker.mask(model, "GetSecretValue", "json", 200, {}, odd)
    iam = _model("iam")
    for xml in (b'<!DOCTYPE x [<!ENTITY e "boom">]><CreateAccessKeyResponse/>',
                b"<CreateAccessKeyResponse><CreateAccessKeyResult>text outside<AccessKey><SecretAccessKey>"
                + SECRET_KEY.encode() + b"</SecretAccessKey></AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"):
        with pytest.raises(MaskingFailed):
            masker.mask(iam, "CreateAccessKey", "query", 200, {}, xml)
    # the refusal itself goes out in the protocol's error format
    status, _, body = error_response("json", caught.value.code, caught.value.message, caught.value.status, "r")
    assert json.loads(body)["__type"] == "HoopMaskingFailed" and status == 403


def test_streams_pass_through() -> None:
    for service, operation in (("s3", "GetObject"), ("lambda", "Invoke"),
                               ("bedrock-runtime", "InvokeModelWithResponseStream")):
        assert passes_through(_model(service).operation_model(operation))
    for service, operation in (("s3", "ListObjectsV2"), ("s3", "GetBucketPolicy"), ("iam", "CreateAccessKey")):
        assert not passes_through(_model(service).operation_model(operation))
    body = f"object bytes {SECRET_KEY}".encode()
    assert ResponseMasker(Masker(KEY)).mask(_model("s3"), "GetObject", "rest-xml", 200, {}, body) is body


def test_text_payload_and_query_compatible_sqs() -> None:
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Condition": {"StringEquals": {
        "aws:UserAgent": f"aws_secret_access_key={SECRET_KEY}"}}}]}).encode()
    masked = check("s3", "GetBucketPolicy", "rest-xml", policy, SECRET_KEY)
    assert json.loads(masked)["Statement"][0]["Effect"] == "Allow"
    message = {"MessageId": "m-1", "ReceiptHandle": "rh-1", "Body": f"creds AKIAIOSFODNN7EXAMPLE {SECRET_KEY}"}
    check("sqs", "ReceiveMessage", "json", json.dumps({"Messages": [message]}).encode(), SECRET_KEY)
    xml = (f"<ReceiveMessageResponse><ReceiveMessageResult><Message><MessageId>m-1</MessageId>"
           f"<Body>creds AKIAIOSFODNN7EXAMPLE {SECRET_KEY}</Body></Message></ReceiveMessageResult>"
           f"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ReceiveMessageResponse>").encode()
    masked = ResponseMasker(Masker(KEY)).mask(_model("sqs"), "ReceiveMessage", "query", 200, {}, xml)
    assert SECRET_KEY.encode() not in masked and b"<MessageId>m-1</MessageId>" in masked


def test_the_server_masker_keeps_nothing_between_responses(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    masker = server_masker(home)
    key = home / KEY_FILE_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(home.stat().st_mode) == 0o700
    assert len(key.read_bytes()) == 32
    assert server_masker(home).marker("secret", "x") == masker.marker("secret", "x")
    body = json.dumps({"Name": "db", "SecretString": "remember-me-not"}).encode()
    ResponseMasker(masker).mask(_model("secretsmanager"), "GetSecretValue", "json", 200, {}, body)
    assert masker.mask_text("echo remember-me-not") == "echo remember-me-not"
    os.chmod(key, 0o644)
    server_masker(home)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_masked_headers() -> None:
    body = b'{"Item":{}}'
    out = dict(masked_headers({"Content-Type": "application/x-amz-json-1.0", "Content-Length": "999",
                               "x-amz-crc32": "1", "x-amz-checksum-crc32": "AAAA", "x-amzn-RequestId": "r"}, body))
    assert out == {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "r",
                   "x-amz-crc32": str(zlib.crc32(body)), "Content-Length": str(len(body))}
