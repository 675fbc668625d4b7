"""aws argv -> Invocation: services, operations, globals, actions, access levels, resources."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hoopcli.errors import InvocationError
from hoopcli.parse import call_for, parse
from hoopcli.parse.invocation import LIST, READ, UNKNOWN, WRITE


def p(line: str):
    return parse(line.split())


@pytest.mark.parametrize(("line", "api_ops", "actions", "level"), [
    ("s3api list-objects-v2 --bucket b", ["ListObjectsV2"], ["s3:ListBucket"], LIST),
    ("s3api head-object --bucket b --key k", ["HeadObject"], ["s3:GetObject"], READ),
    ("s3api head-bucket --bucket b", ["HeadBucket"], ["s3:ListBucket"], LIST),
    ("lambda invoke --function-name f out.json", ["Invoke"], ["lambda:InvokeFunction"], WRITE),
    ("cloudwatch put-metric-data --namespace n", ["PutMetricData"], ["cloudwatch:PutMetricData"], WRITE),
    ("cloudwatch describe-alarms", ["DescribeAlarms"], ["cloudwatch:DescribeAlarms"], READ),
    ("elbv2 describe-load-balancers", ["DescribeLoadBalancers"],
     ["elasticloadbalancing:DescribeLoadBalancers"], LIST),
    ("sesv2 send-email", ["SendEmail"], ["ses:SendEmail"], WRITE),
    ("emr list-clusters", ["ListClusters"], ["elasticmapreduce:ListClusters"], LIST),
    ("stepfunctions start-execution --state-machine-arn a", ["StartExecution"],
     ["states:StartExecution"], WRITE),
    ("iam attach-role-policy --role-name r --policy-arn a", ["AttachRolePolicy"],
     ["iam:AttachRolePolicy"], "Permissions management"),
    ("ec2 terminate-instances --instance-ids i-1", ["TerminateInstances"],
     ["ec2:TerminateInstances"], WRITE),
    ("apigateway get-rest-apis", ["GetRestApis"], ["apigateway:GET"], READ),
])
def test_api_operations_actions_and_levels(line: str, api_ops: list[str], actions: list[str],
                                           level: str) -> None:
    inv = p(line)
    assert inv.kind == "api"
    assert (inv.api_operations, inv.actions, inv.access_level) == (api_ops, actions, level)


def test_globals_anywhere_and_equals_form() -> None:
    inv = parse(["--region", "eu-west-1", "ec2", "--output=json", "describe-instances",
                 "--endpoint-url", "https://evil.example.net:8443/x", "--debug", "--no-paginate",
                 "--query", "Reservations[0]", "--profile", "prod", "--no-verify-ssl",
                 "--no-sign-request", "--ca-bundle", "/tmp/ca.pem", "--cli-read-timeout", "5",
                 "--cli-connect-timeout", "3", "--color", "off"])
    assert (inv.service, inv.operation) == ("ec2", "describe-instances")
    assert inv.globals.to_dict() == {
        "profile": "prod", "region": "eu-west-1", "endpoint_url": "https://evil.example.net:8443/x",
        "output": "json", "query": "Reservations[0]", "debug": True, "no_verify_ssl": True,
        "no_paginate": True, "no_sign_request": True, "ca_bundle": "/tmp/ca.pem",
        "cli_read_timeout": "5", "cli_connect_timeout": "3", "color": "off"}
    assert inv.to_dict()["globals"]["endpoint_url"] == "https://evil.example.net:8443/x"


def test_resources_are_arns_with_region_and_partition() -> None:
    assert p("s3api get-object --bucket b --key a/b.txt out").resources == ["arn:aws:s3:::b/a/b.txt"]
    assert p("lambda get-function --function-name f --region us-west-2").resources == [
        "arn:aws:lambda:us-west-2:*:function:f"]
    assert p("lambda get-function --function-name arn:aws:lambda:us-east-1:1:function:f").resources \
        == ["arn:aws:lambda:us-east-1:1:function:f"]
    assert p("dynamodb get-item --table-name T --key {} --region cn-north-1").resources == [
        "arn:aws-cn:dynamodb:cn-north-1:*:table/T"]
    assert p("sqs delete-queue --queue-url https://q/1/x").resources == ["https://q/1/x"]
    assert p("sts assume-role --role-arn arn:aws:iam::1:role/r --role-session-name s").resources == [
        "arn:aws:iam::1:role/r"]


@pytest.mark.parametrize(("line", "resources"), [
    ("apigateway create-api-key --name k --region eu-west-1", ["arn:aws:apigateway:eu-west-1::/apikeys"]),
    ("apigateway get-stage --rest-api-id a1 --stage-name prod", ["arn:aws:apigateway:*::/restapis/a1/stages/prod"]),
    ("apigateway delete-rest-api --rest-api-id a1", ["arn:aws:apigateway:*::/restapis/a1"]),
    ("apigateway get-rest-apis", ["arn:aws:apigateway:*::/restapis"]),
    ("apigatewayv2 get-api --api-id x1", ["arn:aws:apigateway:*::/apis/x1"]),        # no /v2, as IAM names it
    ("apigatewayv2 create-route --api-id x1 --route-key r", ["arn:aws:apigateway:*::/apis/x1/routes"]),
])
def test_api_gateway_resources_are_its_request_paths(line: str, resources: list[str]) -> None:
    """apigateway:GET/POST/... list every resource type in the SAR; the request path names the one."""
    assert p(line).resources == resources


@pytest.mark.parametrize(("line", "api_ops", "level", "resources"), [
    ("s3 ls", ["ListBuckets"], LIST, []),
    ("s3 ls s3://b/p/", ["ListObjectsV2"], LIST, ["arn:aws:s3:::b"]),
    ("s3 rm s3://b/k", ["DeleteObject"], WRITE, ["arn:aws:s3:::b/k"]),
    ("s3 rm --recursive s3://b/logs/", ["ListObjectsV2", "DeleteObject"], WRITE,
     ["arn:aws:s3:::b", "arn:aws:s3:::b/logs/*"]),
    ("s3 cp s3://b/k -", ["HeadObject", "GetObject"], READ, ["arn:aws:s3:::b/k"]),
    ("s3 cp - s3://b/k", ["PutObject", "CreateMultipartUpload", "UploadPart",
                          "CompleteMultipartUpload", "AbortMultipartUpload"], WRITE, ["arn:aws:s3:::b/k"]),
    ("s3 mb s3://nb", ["CreateBucket"], WRITE, ["arn:aws:s3:::nb"]),
    ("s3 rb s3://nb --force", ["ListObjectsV2", "DeleteObject", "DeleteBucket"], WRITE,
     ["arn:aws:s3:::nb", "arn:aws:s3:::nb/*"]),
    ("s3 presign s3://b/k --expires-in 60", ["GetObject"], READ, ["arn:aws:s3:::b/k"]),
    ("s3 website s3://b --index-document i.html", ["PutBucketWebsite"], WRITE, ["arn:aws:s3:::b"]),
])
def test_s3_high_level(line: str, api_ops: list[str], level: str, resources: list[str]) -> None:
    inv = p(line)
    assert (inv.kind, inv.api_operations, inv.access_level, inv.resources) == (
        "s3", api_ops, level, resources)


def test_s3_flags_change_the_calls() -> None:
    mv = p("s3 mv s3://a/k s3://b/k")
    assert "CopyObject" in mv.api_operations and mv.api_operations[-1] == "DeleteObject"
    assert set(mv.actions) >= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert "DeleteObject" not in p("s3 sync ./d s3://b/p").api_operations
    assert "DeleteObject" in p("s3 sync ./d s3://b/p --delete").api_operations
    acl = p("s3 cp f s3://b/k --acl public-read")
    assert "s3:PutObjectAcl" in acl.actions and acl.access_level == "Permissions management"
    # a switch never swallows a path: --recursive is a flag, both paths stay paths
    rec = p("s3 cp --recursive s3://a/p/ ./out --exclude *.tmp")
    assert rec.resources == ["arn:aws:s3:::a", "arn:aws:s3:::a/p/*"]


def test_help_version_configure_wait_and_customizations() -> None:
    assert p("help").kind == "help" and p("help").read_only
    assert p("ec2 describe-instances help").kind == "help"
    assert p("--version").kind == "version" and p("--version").access_level == LIST
    assert p("ec2 terminate-instances --instance-ids i-1 --version").kind == "version"
    assert p("configure list").access_level == READ
    assert p("configure set region eu-west-1").access_level == UNKNOWN
    assert p("configure export-credentials").access_level == UNKNOWN
    wait = p("s3api wait object-exists --bucket b --key k")
    assert (wait.kind, wait.api_operations, wait.actions) == ("wait", ["HeadObject"], ["s3:GetObject"])
    assert p("ecr get-login-password").actions == ["ecr:GetAuthorizationToken"]
    assert p("eks update-kubeconfig --name c").access_level == UNKNOWN  # writes ~/.kube/config
    deploy = p("cloudformation deploy --stack-name s --template-file t.yml --no-execute-changeset")
    assert deploy.kind == "custom" and deploy.access_level == WRITE
    assert "cloudformation:ExecuteChangeSet" in deploy.actions
    assert p("emr ssh --cluster-id j-1 --key-pair-file k.pem").access_level == UNKNOWN
    assert p("logs tail /aws/lambda/f --follow").actions == ["logs:FilterLogEvents"]


@pytest.mark.parametrize(("line", "message"), [
    ("", "missing service"),
    ("--region eu-west-1", "missing service"),
    ("ec22 describe-instances", "unknown service 'ec22'; did you mean ec2"),
    ("ec2", "missing operation"),
    ("ec2 --dry-run", "missing operation"),
    ("ec2 describe-instancez", ("unknown operation 'describe-instancez' for service 'ec2'; did you "
                                "mean describe-instances")),
    ("s3 copy a s3://b", "unknown operation 'copy' for service 's3'"),
    ("s3 cp onlyone", "needs 2 path arguments"),
    ("s3 cp a b", "needs at least one s3:// path"),
    ("s3 rm ./local", "needs an s3://bucket path"),
    ("s3api wait bucket-exist --bucket b", "unknown waiter 'bucket-exist'"),
    ("s3api wait", "missing waiter"),
    ("ec2 describe-instances --region", "--region needs a value"),
    ("--frobnicate ec2 describe-instances", "unknown option '--frobnicate'"),
    ("configure sett x y", "unknown configure operation 'sett'; did you mean set"),
])
def test_bad_input_is_a_clear_invocation_error(line: str, message: str) -> None:
    with pytest.raises(InvocationError) as info:
        p(line)
    assert message in info.value.message
    assert "\n" not in info.value.line()


def test_cli_input_json_file_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "in.json"
    good.write_text(json.dumps({"Bucket": "from-json", "Key": "k"}))
    inv = parse(["s3api", "delete-object", "--cli-input-json", f"file://{good}"])
    assert inv.resources == ["arn:aws:s3:::from-json/k"] and inv.access_level == WRITE
    inv = parse(["s3api", "delete-object", "--cli-input-json", f"fileb://{good}", "--bucket", "cli"])
    assert inv.resources == ["arn:aws:s3:::cli/k"]  # explicit options win, like awscli
    yaml_file = tmp_path / "in.yaml"
    yaml_file.write_text("Bucket: y\nKey: k\n")
    assert parse(["s3api", "get-object", "--cli-input-yaml", f"file://{yaml_file}", "o"]).resources == [
        "arn:aws:s3:::y/k"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    cases = {
        f"file://{tmp_path / 'missing.json'}": "cannot read",
        f"file://{bad}": "malformed document",
        "[1, 2]": "must be an object",
        f"file://{tmp_path}": "cannot read",
    }
    for value, message in cases.items():
        with pytest.raises(InvocationError, match=re.escape(message)):
            parse(["s3api", "delete-object", "--cli-input-json", value])
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvocationError, match="not UTF-8"):
        parse(["s3api", "delete-object", "--cli-input-json", f"fileb://{binary}"])


def test_metacharacters_and_non_utf8_do_not_crash() -> None:
    nasty = "$(rm -rf /); `id` | tee >x && echo ';' * ? ~ \\ \n\t'\""
    inv = parse(["s3api", "put-object", "--bucket", "b", "--key", nasty, "--body", "x"])
    assert inv.resources == [f"arn:aws:s3:::b/{nasty}"]
    raw = b"caf\xe9-\xff".decode("utf-8", "surrogateescape")
    inv = parse(["s3api", "get-object", "--bucket", raw, "--key", raw, "out"])
    assert inv.access_level == READ
    json.dumps(inv.to_dict())  # serializable (surrogates escaped)
    with pytest.raises(InvocationError):
        parse([raw, "x"])


def test_an_object_version_needs_the_version_action() -> None:
    assert p("s3api get-object --bucket b --key k o").actions == ["s3:GetObject"]
    assert p("s3api get-object --bucket b --key k --version-id 3 o").actions == ["s3:GetObjectVersion"]
    assert p("s3api delete-object --bucket b --key k --version-id 3").actions == [
        "s3:DeleteObjectVersion"]
    assert call_for("s3", "PutObjectAcl", {"Bucket": "b", "Key": "k", "VersionId": "3"}).actions == (
        "s3:PutObjectVersionAcl",)


def test_call_for_classifies_runtime_calls() -> None:
    call = call_for("s3", "PutObject", {"Bucket": "b", "Key": "k"})
    assert (call.actions, call.access_level, call.resources) == (("s3:PutObject",), WRITE,
                                                                 ("arn:aws:s3:::b/k",))
    assert call_for("monitoring", "GetMetricData", {}).access_level == UNKNOWN  # not a model name
    assert call_for("cloudwatch", "GetMetricData", {}).actions == ("cloudwatch:GetMetricData",)
    assert call_for("s3", "NoSuchOperation", {}).access_level == UNKNOWN
    assert call_for("nosuchservice", "X", {}).access_level == UNKNOWN


def test_import_is_stdlib_only_and_parse_needs_no_heavy_module() -> None:
    code = ("import sys; from hoopcli.parse import parse; "
            "parse(['s3','rm','--recursive','s3://b/p']); parse(['ec2','describe-instances']); "
            "heavy = [m for m in ('botocore','awscli','policy_sentry','click','rich','yaml',"
            "'requests') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_customization_options_name_their_resources() -> None:
    deploy = p("cloudformation deploy --stack-name s --template-file t.yml --region eu-west-1")
    assert deploy.resources == ["arn:aws:cloudformation:eu-west-1:*:stack/s/*"]
    assert p("eks update-kubeconfig --name c").resources == ["arn:aws:eks:*:*:cluster/c"]
    assert p("eks delete-nodegroup --cluster-name c --nodegroup-name n").resources == [
        "arn:aws:eks:*:*:nodegroup/c/n/*"]


def test_cli_input_from_a_non_regular_file_is_left_to_the_real_cli(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block: hoop must not
    inv = parse(["s3api", "delete-object", "--cli-input-json", f"file://{fifo}"])
    assert inv.access_level == WRITE and inv.resources == []


def test_huge_names_give_short_errors_quickly() -> None:
    for argv in (["x" * 1_000_000], ["ec2", "d" * 1_000_000], ["s3api", "wait", "w" * 100_000]):
        with pytest.raises(InvocationError) as info:
            parse(argv)
        assert len(info.value.line()) < 300
    inv = parse(["s3api", "list-buckets", *(["--x", "y"] * 50_000)])
    assert inv.api_operations == ["ListBuckets"]


def test_invocation_values_are_immutable_and_replace_makes_a_changed_copy():
    import copy
    import pickle

    import pytest

    inv = parse(["s3api", "list-buckets", "--region", "eu-west-1"])
    with pytest.raises(AttributeError):
        inv.kind = "custom"  # type: ignore[misc]
    changed = inv.replace(argv=("s3api", "list-buckets"))
    assert changed.argv == ("s3api", "list-buckets") and inv.argv[-1] == "eu-west-1"
    assert changed.api_calls == inv.api_calls and changed != inv
    with pytest.raises(TypeError):
        inv.replace(no_such_field=1)
    assert copy.deepcopy(inv) == inv == pickle.loads(pickle.dumps(inv))
    assert hash(inv) == hash(parse(["s3api", "list-buckets", "--region", "eu-west-1"]))


def test_operations_only_sdks_reach_are_indexed_for_the_gateway() -> None:
    """The gateway decodes with the installed botocore: operations awscli hides behind a
    customization (emr RunJobFlow), cannot run (event streams) or does not have yet are indexed
    with their IAM actions, so policy decides them like any call; a service no awscli command
    names is known to the gateway and still unknown to the shim."""
    from hoopcli.parse import call_for, index

    run = call_for("emr", "RunJobFlow", {"Name": "c", "ServiceRole": "EMR_DefaultRole"}, "us-east-1")
    assert (run.actions, run.access_level) == (("elasticmapreduce:RunJobFlow",), "Write")
    stream = call_for("bedrock-runtime", "InvokeModelWithResponseStream", {"modelId": "m"}, "us-east-1")
    assert stream.actions == ("bedrock:InvokeModelWithResponseStream",)
    sdk_only = index.index()["sdk"]
    assert sdk_only and all(index.cli_name_for(s) == s for s in sdk_only)
    assert index.service(sdk_only[0]) is None and index.service(sdk_only[0], sdk=True) is not None
    with pytest.raises(InvocationError, match="unknown service"):
        p(f"{sdk_only[0]} list-things")
