"""Issue 15, item 5: `--debug` body dumps are masked by the operation's own paths.

botocore logs each request's parameters and each response body at DEBUG. A secret under a generic
member name (a Lambda environment value, an ECS container environment value, an API Gateway key
value, an SSM SecureString value) is hidden on stdout by the per-operation paths; these tests run
the shim in process against moto with `--debug` in the spellings awscli accepts and look for the
secret in the agent's stdout and stderr, everything the test's own log capture saw, the spooled
records, every file under HOOP_HOME and the records the server received.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from hoopcli.masking import Masker
from hoopcli.masking.debuglog import DebugLog
from hoopcli.record.spool import Spool
from tests.shim.conftest import ROLE, ShimWorld, make_world

ALLOW_ALL = """\
version: 1
description: everything allowed (these tests send secret-bearing writes too)
defaults: {list: allow, read: allow, tagging: allow, write: allow, permissions: allow, unknown: review}
rules: []
"""


@pytest.fixture
def world(make_server: Any, moto_endpoint: str, tmp_path: Path) -> ShimWorld:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALLOW_ALL)
    server = make_server(policy_file=str(policy),
                         connections={"default": {"credentials": "vend", "role_arn": ROLE, "region": "us-east-1",
                                                  "endpoint_url": moto_endpoint}})
    return make_world(server, moto_endpoint, tmp_path, HOOP_APPROVAL_WAIT="0", HOOP_UPLOADER_LINGER="0.5")


def _aws(world: ShimWorld, service: str) -> Any:
    return boto3.client(service, endpoint_url=world.moto, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def new_canary() -> str:
    return "hoopCanary" + secrets.token_hex(10)


# -- planting: each returns the argv that reads the secret back --------------------------------------

def _lambda(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    role = _aws(world, "iam").create_role(RoleName="fn-" + secrets.token_hex(4),
                                          AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(e, c):\n    return 1\n")
    name = "fn-" + secrets.token_hex(4)
    # a name the text rules do not know as secret: only the operation's path masks its value
    _aws(world, "lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
        Code={"ZipFile": buf.getvalue()}, Environment={"Variables": {"APP_CONFIG": canary}})
    return ["lambda", "get-function-configuration", "--function-name", name]


def _ecs(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    family = "web-" + secrets.token_hex(4)
    _aws(world, "ecs").register_task_definition(family=family, containerDefinitions=[{
        "name": "app", "image": "nginx", "memory": 128,
        "environment": [{"name": "UPSTREAM", "value": canary}],
        "secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}]}])
    return ["ecs", "describe-task-definition", "--task-definition", family]


def _apigateway(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    _aws(world, "apigateway").create_api_key(name="k-" + secrets.token_hex(4), value=canary, enabled=True)
    return ["apigateway", "get-api-keys", "--include-values"]


def _ssm(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    name = "/app/" + secrets.token_hex(4) + "/conn"
    _aws(world, "ssm").put_parameter(Name=name, Value=canary, Type="SecureString")
    return ["ssm", "get-parameter", "--name", name, "--with-decryption"]


def _apikey_create(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    """The secret is in argv and goes out in the request body under the generic name `value`."""
    return ["apigateway", "create-api-key", "--name", "k-" + secrets.token_hex(4), "--val", canary,
            "--query", "name"]


def _codebuild_create(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    """Inline JSON in argv; the request and the response carry the environment value."""
    env = {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
           "computeType": "BUILD_GENERAL1_SMALL",
           "environmentVariables": [{"name": "UPSTREAM", "value": canary, "type": "PLAINTEXT"}]}
    return ["codebuild", "create-project", "--name", "p-" + secrets.token_hex(4),
            "--source", "type=S3,location=builds/src.zip", "--artifacts", "type=NO_ARTIFACTS",
            "--service-role", "arn:aws:iam::123456789012:role/build", "--environment", json.dumps(env)]


def _lambda_update(world: ShimWorld, canary: str, tmp: Path) -> list[str]:
    """Shorthand syntax: argv masking hides the whole option, but the request body has the value."""
    argv = _lambda(world, "before", tmp)
    return ["lambda", "update-function-configuration", "--function-name", argv[-1],
            "--environment", f"Variables={{APP_CONFIG={canary}}}", "--query", "FunctionName"]


CASES: list[tuple[str, Callable[[ShimWorld, str, Path], list[str]], str, str]] = [
    # name, plant, how --debug is spelled, where it goes
    ("lambda-get-function-configuration", _lambda, "--debug", "end"),
    ("ecs-describe-task-definition", _ecs, "--deb", "front"),
    ("apigateway-get-api-keys", _apigateway, "--d", "end"),
    ("ssm-get-parameter", _ssm, "--debu", "front"),
    ("apigateway-create-api-key", _apikey_create, "--de", "end"),
    ("codebuild-create-project", _codebuild_create, "--deb", "front"),
    ("lambda-update-function-configuration", _lambda_update, "--debug", "front"),
]


@pytest.mark.parametrize(("name", "plant", "flag", "where"), CASES, ids=[c[0] for c in CASES])
def test_debug_dumps_never_show_the_secret(name: str, plant: Any, flag: str, where: str, world: ShimWorld,
                                          tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    canary = new_canary()
    argv = plant(world, canary, tmp_path)
    argv = [flag, *argv] if where == "front" else [*argv, flag]
    caplog.set_level(logging.DEBUG)
    result = world.run(*argv)
    assert result.code == 0, result.stderr[-3000:]
    assert "Making request for OperationModel" in result.stderr   # botocore really dumped
    assert "Response body" in result.stderr
    assert "[masked:" in result.stderr
    assert canary not in result.stdout
    assert canary not in result.stderr
    assert canary not in caplog.text          # every log handler got the masked record
    _assert_not_recorded(world, canary)


def test_a_body_masking_changes_nothing_in_stays_as_botocore_dumped_it(world: ShimWorld) -> None:
    world.s3().create_bucket(Bucket="debug-plain")
    result = world.run("s3api", "list-buckets", "--debug")
    assert result.code == 0, result.stderr[-3000:]
    assert "Response body:\nb'<?xml" in result.stderr and "debug-plain" in result.stderr


def test_debug_logging_is_put_back_after_the_run(world: ShimWorld) -> None:
    before = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers))
              for n in ("", "botocore", "awscli", "s3transfer", "urllib3")}
    factory = logging.getLogRecordFactory()
    assert world.run("s3api", "list-buckets", "--debug").code == 0
    after = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in before}
    assert after == before
    assert logging.getLogRecordFactory() is factory


# -- fail closed: what cannot be checked is withheld ---------------------------------------------------

def _shape(location: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(serialization={"location": location} if location else {})


# the parts of a botocore OperationModel the debug masking reads
_Model = SimpleNamespace(
    name="GetFunctionConfiguration", service_model=SimpleNamespace(service_name="lambda"),
    input_shape=SimpleNamespace(members={"FunctionName": _shape("uri"), "Environment": _shape()}))


def _record(msg: str, *args: Any, name: str = "botocore.parsers") -> logging.LogRecord:
    return logging.LogRecord(name, logging.DEBUG, __file__, 1, msg, args, None)


def _log(masker: Masker, parse: Any = None) -> DebugLog:
    return DebugLog(masker, parse or (lambda model, response: json.loads(response["body"])))


def test_a_response_body_of_no_known_operation_is_withheld(masker: Masker) -> None:
    canary = new_canary()
    record = _record("Response body:\n%r", json.dumps({"x": canary}).encode())
    _log(masker).mask_record(record)
    assert canary not in record.getMessage()
    assert "response body withheld" in record.getMessage()


def test_a_response_body_that_cannot_be_parsed_is_withheld(masker: Masker) -> None:
    canary = new_canary()
    body = b"not json " + canary.encode()
    log = _log(masker)
    log.expect_response(_Model, {"body": body, "headers": {}, "status_code": 200})
    record = _record("Response body:\n%r", body)
    log.mask_record(record)
    assert canary not in record.getMessage() and "could not be parsed" in record.getMessage()


def test_a_response_body_is_masked_by_the_operation_paths(masker: Masker) -> None:
    canary = new_canary()
    body = json.dumps({"FunctionName": "f", "Environment": {"Variables": {"APP_CONFIG": canary}}}).encode()
    log = _log(masker)
    log.expect_response(_Model, {"body": body, "headers": {}, "status_code": 200})
    record = _record("Response body:\n%r", body)
    log.mask_record(record)
    shown = record.getMessage()
    assert canary not in shown
    assert shown.startswith("Response body (masked by hoop, shown as parsed):\n")
    assert json.loads(shown.split("\n", 1)[1])["Environment"]["Variables"]["APP_CONFIG"].startswith("[masked:")


def test_a_request_dump_shows_masked_parameters_and_withholds_unseen_ones(masker: Masker) -> None:
    canary = new_canary()
    log = _log(masker)
    params = {"FunctionName": "f", "Environment": {"Variables": {"APP_CONFIG": canary}}}
    masked = {"FunctionName": "f", "Environment": {"Variables": {"APP_CONFIG": masker.marker("secret", canary)}}}
    context: dict[str, Any] = {}
    log.note_call(context, "lambda", "UpdateFunctionConfiguration", masked, ["Environment"])
    request = {"url_path": "/f", "body": json.dumps(params).encode(), "context": context}
    record = _record("Making request for %s with params: %s", _Model, request,
                     name="botocore.endpoint")
    log.mask_record(record)
    assert canary not in record.getMessage() and "'url_path': '/f'" in record.getMessage()
    assert masker.marker("secret", canary) in record.getMessage()
    # no note of the call (its parameters were never seen): the body is withheld
    unseen = _record("Making request for %s with params: %s", "OperationModel(x)",
                     {"body": json.dumps(params).encode(), "context": {}}, name="botocore.endpoint")
    log.mask_record(unseen)
    assert canary not in unseen.getMessage() and "request body withheld" in unseen.getMessage()


def test_a_secret_sent_in_the_url_withholds_the_url(masker: Masker) -> None:
    canary = new_canary()
    log = _log(masker)
    context: dict[str, Any] = {}
    log.note_call(context, "lambda", "GetFunctionConfiguration",
                  {"FunctionName": masker.marker("secret", canary)}, ["FunctionName"])
    request = {"url_path": f"/x/{canary}", "url": f"http://h/x/{canary}", "body": b"", "context": context}
    record = _record("Making request for %s with params: %s", _Model, request, name="botocore.endpoint")
    log.mask_record(record)
    assert canary not in record.getMessage() and "carries the masked parameter FunctionName" in record.getMessage()


def test_bytes_in_a_record_of_unknown_shape_are_withheld(masker: Masker) -> None:
    canary = new_canary()
    record = _record("some new dump: %s / %r", {"body": canary.encode()}, canary.encode(), name="botocore.x")
    _log(masker).mask_record(record)
    assert canary not in record.getMessage() and "withheld" in record.getMessage()


def test_a_record_that_fails_to_mask_is_withheld(masker: Masker) -> None:
    record = _record("Making request for %s with params: %s", "one argument short")
    _log(masker).mask_record(record)
    assert record.getMessage() == "hoop: a debug log line was withheld (it could not be masked)"


# -- what the record keeps ----------------------------------------------------------------------------

def _assert_not_recorded(world: ShimWorld, canary: str) -> None:
    """Not in the spool, not in any file under HOOP_HOME, not in what the server received (the
    background uploader delivers the command's records; waited for here)."""
    spooled = [rec for _path, rec in Spool(world.layout).records()]
    assert canary not in json.dumps(spooled)
    for path in world.home.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    deadline = time.monotonic() + 30
    delivered: list[str] = []
    while time.monotonic() < deadline:
        delivered = _ledger_texts(world)
        if any('"command.result"' in text for text in delivered):
            break
        time.sleep(0.2)
    assert any('"command.result"' in text for text in delivered), "the records were not uploaded"
    assert any("Response body" in text for text in delivered)   # the debug output was recorded
    assert not [text for text in delivered if canary in text]


def _ledger_texts(world: ShimWorld) -> list[str]:
    from hoopcli.server.store.ledger import LedgerRecord

    with world.server.db.session() as db:
        return [str(row.leaf) for row in db.query(LedgerRecord).all()]
