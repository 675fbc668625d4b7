"""Errors in each protocol's own format: botocore's parsers and real clients (boto3, the AWS SDK for
JavaScript v3) read the code and the message, and retry none of the gateway's refusals."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from clients import require_node, run_js

from hoopcli.server.gateway import errors, mask
from hoopcli.server.gateway.decode.safe import load_cbor
from hoopcli.server.gateway.errors import GatewayError
from hoopcli.server.gateway.request import GatewayRequest
from hoopcli.server.gateway.wire import encode_cbor, error_response, guess_protocol

SESSION = botocore.session.get_session()
NASTY = ('hoop: approval apr_01 pending; ask alice@example.com <admin> & "bob" to approve ]]> &#65; \\u0041 '
         "caf\u00e9 \u2603 \U0001F512 tab\there")
# (protocol, botocore service, operation, kwargs for the boto3 call)
CASES = [
    ("json", "secretsmanager", "GetSecretValue", {"SecretId": "db"}),
    ("json", "sqs", "ListQueues", {}),
    ("rest-json", "lambda", "GetFunctionConfiguration", {"FunctionName": "f"}),
    ("query", "sts", "GetCallerIdentity", {}),
    ("query", "iam", "ListUsers", {}),
    ("ec2", "ec2", "DescribeInstances", {}),
    ("rest-xml", "s3", "ListObjectsV2", {"Bucket": "bucket"}),
    ("smithy-rpc-v2-cbor", "eventbridgev2", "ListEventBuses", {}),
]
# Every refusal of the gateway, with its status, plus the outcomes of the decision.
OURS = sorted({(cls.code, cls.status) for module in (errors, mask) for cls in vars(module).values()
               if isinstance(cls, type) and issubclass(cls, GatewayError) and cls is not GatewayError}
              | {("HoopApprovalPending", 409), ("AccessDenied", 403), ("ExpiredToken", 403), ("EntityTooLarge", 413)})


def _parse(protocol: str, service: str, operation: str, response: tuple[int, list[tuple[str, str]], bytes]) -> Any:
    status, headers, body = response
    shape = SESSION.get_service_model(service).operation_model(operation).output_shape
    return create_parser(protocol).parse({"status_code": status, "headers": {k.lower(): v for k, v in headers},
                                          "body": body}, shape)


@pytest.mark.parametrize(("protocol", "service", "operation", "_kwargs"), CASES)
def test_botocore_reads_code_message_and_request_id(protocol: str, service: str, operation: str,
                                                    _kwargs: dict[str, Any]) -> None:
    response = error_response(protocol, "HoopApprovalPending", NASTY, 409, "req-123")
    parsed = _parse(protocol, service, operation, response)
    assert parsed["Error"]["Code"] == "HoopApprovalPending"
    assert parsed["Error"]["Message"] == NASTY
    assert parsed["ResponseMetadata"]["RequestId"] == "req-123"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_messages_never_break_the_format() -> None:
    hostile = "</Message></Error><Code>Forged</Code>\x00\x07\ud800\r\n\"}{\"__type\":\"Forged\"" + "x" * 9000
    for protocol, service, operation, _ in CASES:
        status, headers, body = error_response(protocol, "AccessDenied", hostile, 403, "id\r\nX-Evil: 1")
        parsed = _parse(protocol, service, operation, (status, headers, body))
        assert parsed["Error"]["Code"] == "AccessDenied"
        message = parsed["Error"]["Message"]
        assert message.startswith("</Message></Error><Code>Forged</Code>\ufffd\ufffd\ufffd")
        assert len(message) <= 4096 and message.endswith("...")
        assert all("\r" not in v and "\n" not in v for _, v in headers)


def test_smithy_cbor_error_body_and_encoder() -> None:
    _, headers, body = error_response("smithy-rpc-v2-cbor", "ThrottlingX", "slow down", 409, "r")
    assert ("smithy-protocol", "rpc-v2-cbor") in headers and ("Content-Type", "application/cbor") in headers
    assert load_cbor(body) == {"__type": "ThrottlingX", "message": "slow down"}
    value = {"s": "é", "b": b"\x00\xff", "n": -(2 ** 40), "i": 2 ** 33, "f": 1.5, "t": True, "z": None,
             "l": [1, "two", [3]], "long": "x" * 300}
    assert load_cbor(encode_cbor(value)) == value


def test_json_flavours_and_head() -> None:
    _, headers, body = error_response("json", "AccessDenied", "no", 403, "r", json_version="1.1", query_compatible=True)
    assert ("Content-Type", "application/x-amz-json-1.1") in headers
    assert ("x-amzn-query-error", "AccessDenied;Sender") in headers and ("x-amzn-ErrorType", "AccessDenied") in headers
    status, headers, body = error_response("rest-xml", "HoopApprovalPending", "pending", 409, "r", head=True)
    assert body == b"" and ("x-amz-request-id", "r") in headers
    parsed = _parse("rest-xml", "s3", "HeadObject", (status, headers, body))
    assert parsed["Error"] == {"Code": "409", "Message": "Conflict"}  # as AWS's own HEAD errors read
    assert error_response("json", "Bad:Code#x y", "m", 400, "r")[1][2] == ("x-amzn-ErrorType", "BadCodexy")


def test_guess_protocol() -> None:
    def guess(target: str, headers: dict[str, str], signing: str | None) -> str:
        return guess_protocol(GatewayRequest.build("POST", target, {"Host": "gw.test", **headers}), signing)

    assert guess("/service/X/operation/Y", {"smithy-protocol": "rpc-v2-cbor"}, "monitoring") == "smithy-rpc-v2-cbor"
    assert guess("/", {"X-Amz-Target": "secretsmanager.GetSecretValue"}, "secretsmanager") == "json"
    assert guess("/", {"Content-Type": "application/x-www-form-urlencoded"}, "sts") == "query"
    assert guess("/", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "ec2") == "ec2"
    assert guess("/?Action=DescribeInstances&Version=2016-11-15", {}, "ec2") == "ec2"
    assert guess("/?Action=ListUsers", {}, None) == "query"
    assert guess("/?NoAction=1", {}, "lambda") == "rest-json"
    for signing in ("s3", "s3express", "s3-outposts", None, ""):
        assert guess("/bucket/key", {}, signing) == "rest-xml"
    assert guess("/2015-03-31/functions/f/configuration", {}, "lambda") == "rest-json"


# -- retries: real clients against a server that answers every request with one error ----------
class _Server:
    def __init__(self) -> None:
        self.response: tuple[int, list[tuple[str, str]], bytes] = (500, [], b"")
        self.count = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                owner.count += 1
                status, headers, body = owner.response
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, response: tuple[int, list[tuple[str, str]], bytes]) -> None:
        self.response, self.count = response, 0


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _client(server: _Server, service: str, mode: str, attempts: int = 3) -> Any:
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                        aws_secret_access_key="secret", config=Config(
                            retries={"mode": mode, "max_attempts": attempts}, connect_timeout=5, read_timeout=5,
                            s3={"addressing_style": "path"}))


def _call(client: Any, operation: str, kwargs: dict[str, Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        getattr(client, xform_name(operation))(**kwargs)
    return caught.value


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_botocore_retries_none_of_ours(server: _Server, mode: str) -> None:
    for protocol, service, operation, kwargs in CASES:
        model = SESSION.get_service_model(service)
        assert model.resolved_protocol == protocol
        client = _client(server, service, mode)
        for code, status in OURS:
            server.answer(error_response(protocol, code, f"hoop: {code}", status, "rid-1",
                                         json_version=model.metadata.get("jsonVersion"),
                                         query_compatible="awsQueryCompatible" in model.metadata))
            if (mode, service, code) == ("legacy", "s3", "BadDigest"):
                # S3 in legacy mode retries a body damaged on the way, as it does for AWS: safe,
                # since the gateway refused it before forwarding anything
                _call(_client(server, service, mode, attempts=1), operation, kwargs)
                assert server.count == 2
                continue
            error = _call(client, operation, kwargs)
            assert (error.response["Error"]["Code"], error.response["Error"]["Message"]) == (code, f"hoop: {code}")
            assert error.response["ResponseMetadata"]["RequestId"] == "rid-1"
            assert server.count == 1, (mode, service, code, status)
    # an S3 HEAD has no body: the SDK shows the status; 409 and 403 trigger no region probe
    s3 = _client(server, "s3", mode)
    for status in (409, 403):
        server.answer(error_response("rest-xml", "HoopApprovalPending", "pending", status, "r", head=True))
        error = _call(s3, "HeadObject", {"Bucket": "b", "Key": "k"})
        assert error.response["Error"]["Code"] == str(status) and server.count == 1
    # the harness does see retries: a 503 is retried (max_attempts counts the retries only)
    server.answer(error_response("json", "ServiceUnavailable", "busy", 503, "r"))
    _call(_client(server, "secretsmanager", mode, attempts=1), "GetSecretValue", {"SecretId": "x"})
    assert server.count == 2


def test_js_sdk_reads_and_does_not_retry(server: _Server) -> None:
    require_node()    # fails (never skips) with what `make test` installs
    env = {"AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "3"}
    calls = [("json", "secretsmanager", "GetSecretValue", {"SecretId": "db"}, False),
             ("json", "sqs", "ListQueues", {}, True),
             ("query", "sts", "GetCallerIdentity", {}, False),
             ("query", "iam", "ListUsers", {}, False),
             ("rest-xml", "s3", "ListObjectsV2", {"Bucket": "bucket"}, False)]
    for protocol, service, operation, params, compatible in calls:
        server.answer(error_response(protocol, "HoopApprovalPending", NASTY, 409, "rid-js", query_compatible=compatible))
        answer = run_js(env, service, operation, params)
        assert (answer["code"], answer["message"], answer["http_status"]) == ("HoopApprovalPending", NASTY, 409)
        assert answer["attempts"] == 1 and server.count == 1, (service, answer)
    server.answer(error_response("rest-xml", "AccessDenied", "denied", 403, "r", head=True))
    answer = run_js(env, "s3", "HeadObject", {"Bucket": "b", "Key": "k"})
    assert answer["http_status"] == 403 and server.count == 1
    server.answer(error_response("query", "ServiceUnavailable", "busy", 503, "r"))
    assert run_js(env, "sts", "GetCallerIdentity", {})["attempts"] == 3 and server.count == 3


def test_our_codes_are_in_no_retry_list() -> None:
    """The code lists both SDK families retry on (botocore standard mode and
    @smithy/service-error-classification), and no service models one of our codes as retryable."""
    from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

    listed = set(TransientRetryableChecker._TRANSIENT_ERROR_CODES) | set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    ours = {code for code, _ in OURS}
    assert not ours & listed
    for _, service, _, _ in CASES:
        for shape in SESSION.get_service_model(service).error_shapes:
            assert shape.name not in ours or not shape.metadata.get("retryable"), (service, shape.name)
