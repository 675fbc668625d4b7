"""The runners against a real moto_server: in-process awscli v1 and a real `aws` as a subprocess."""

from __future__ import annotations

import io
import json
import os
import sys

import boto3
import pytest

from hoopcli.agents.shimfile import install_shim
from hoopcli.errors import RealCliNotFound, RecursionRefused
from hoopcli.masking.streams import Capture, MaskedBinary, MaskedTextStream
from hoopcli.runner import (
    ACTIVE_ENV,
    Credentials,
    InProcessRunner,
    RunRequest,
    SubprocessRunner,
    find_real_aws,
    is_shim,
)

REAL_AWS = os.path.join(os.path.dirname(sys.executable), "aws")
CREDS = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None)


@pytest.fixture
def s3(moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")
    client.create_bucket(Bucket="runner-bucket")
    client.put_object(Bucket="runner-bucket", Key="k", Body=b"hello")
    yield client
    for obj in client.list_objects_v2(Bucket="runner-bucket").get("Contents", []):
        client.delete_object(Bucket="runner-bucket", Key=obj["Key"])
    client.delete_bucket(Bucket="runner-bucket")


def _text_streams():
    out_raw, err_raw = io.BytesIO(), io.BytesIO()
    out_cap, err_cap = Capture(), Capture()
    out = MaskedTextStream(MaskedBinary(out_raw, out_cap), io.StringIO())
    err = MaskedTextStream(MaskedBinary(err_raw, err_cap), io.StringIO())
    return out, err, out_raw, err_raw, out_cap


def test_inprocess_runs_and_records_every_call(s3, moto_endpoint):
    out, err, out_raw, err_raw, cap = _text_streams()
    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3api", "list-buckets"],
                     credentials=CREDS, region="us-east-1", env={"PATH": os.environ.get("PATH", "")})
    result = InProcessRunner().run(req, out, err)
    assert result.exit_code == 0, err_raw.getvalue()
    names = [b["Name"] for b in json.loads(out_raw.getvalue())["Buckets"]]
    assert "runner-bucket" in names
    assert [(c.service, c.operation) for c in result.calls] == [("s3", "ListBuckets")]
    assert result.calls[0].http_status == 200
    assert cap.size == len(out_raw.getvalue())


def test_inprocess_s3_rm_recursive_is_list_plus_deletes(s3, moto_endpoint):
    s3.put_object(Bucket="runner-bucket", Key="a/1", Body=b"1")
    s3.put_object(Bucket="runner-bucket", Key="a/2", Body=b"2")
    out, err, *_ = _text_streams()
    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3", "rm", "--recursive", "s3://runner-bucket/a/"],
                     credentials=CREDS, region="us-east-1", env={})
    result = InProcessRunner().run(req, out, err)
    ops = [c.operation for c in result.calls]
    assert result.exit_code == 0
    assert ops[0] == "ListObjectsV2"
    assert sorted(ops[1:]) == ["DeleteObject", "DeleteObject"]
    deleted = sorted(c.params.get("Key") for c in result.calls if c.operation == "DeleteObject")
    assert deleted == ["a/1", "a/2"]


def test_inprocess_check_call_stops_a_call_before_it_is_sent(s3, moto_endpoint):
    out, err, _, err_raw, _ = _text_streams()

    def check(service, operation, params):
        return "denied: no deletes" if operation == "DeleteObject" else None

    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3", "rm", "s3://runner-bucket/k"],
                     credentials=CREDS, region="us-east-1", env={}, check_call=check)
    result = InProcessRunner().run(req, out, err)
    assert result.blocked == "denied: no deletes"
    assert result.exit_code != 0
    assert b"denied: no deletes" in err_raw.getvalue()
    # the object is still there: the call never reached the endpoint
    assert s3.get_object(Bucket="runner-bucket", Key="k")["Body"].read() == b"hello"


def test_inprocess_masks_parsed_response_before_formatting(s3, moto_endpoint):
    out, err, out_raw, *_ = _text_streams()

    def mask(service, operation, parsed):
        for b in parsed.get("Buckets", []):
            b["Name"] = "[masked]"
        return parsed

    req = RunRequest(args=["--endpoint-url", moto_endpoint, "--output", "text", "--query", "Buckets[].Name",
                           "s3api", "list-buckets"], credentials=CREDS, region="us-east-1", env={},
                     mask_parsed=mask)
    assert InProcessRunner().run(req, out, err).exit_code == 0
    assert b"runner-bucket" not in out_raw.getvalue()
    assert b"[masked]" in out_raw.getvalue()


def test_inprocess_ignores_ambient_credentials_and_restores_environ(s3, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAAMBIENTAMBIENT00")
    before = dict(os.environ)
    out, err, *_ = _text_streams()
    env = {"AWS_ACCESS_KEY_ID": "AKIAAMBIENTAMBIENT00", "AWS_PROFILE": "prod"}
    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3api", "list-buckets"], credentials=CREDS,
                     region="us-east-1", env=env)
    assert InProcessRunner().run(req, out, err).exit_code == 0
    assert dict(os.environ) == before


def test_inprocess_binary_stdout_is_byte_exact(s3, moto_endpoint):
    payload = bytes(range(256)) * 64 + b"AKIAIOSFODNN7EXAMPLE"
    s3.put_object(Bucket="runner-bucket", Key="bin", Body=payload)
    out, err, out_raw, err_raw, cap = _text_streams()
    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3", "cp", "s3://runner-bucket/bin", "-"],
                     credentials=CREDS, region="us-east-1", env={})
    assert InProcessRunner().run(req, out, err).exit_code == 0, err_raw.getvalue()
    assert out_raw.getvalue() == payload
    assert cap.binary_size == len(payload)


def test_subprocess_runner_streams_stdin_to_s3_and_back(s3, moto_endpoint, tmp_path):
    payload = os.urandom(200_000)
    src = tmp_path / "in.bin"
    src.write_bytes(payload)
    got = bytearray()
    errs = bytearray()
    req = RunRequest(args=["--endpoint-url", moto_endpoint, "s3", "cp", "-", "s3://runner-bucket/streamed"],
                     credentials=CREDS, region="us-east-1", env={"PATH": os.environ["PATH"]})
    with open(src, "rb") as stdin:
        result = SubprocessRunner(REAL_AWS).run(req, stdin, got.extend, errs.extend)
    assert result.exit_code == 0, bytes(errs)
    assert s3.get_object(Bucket="runner-bucket", Key="streamed")["Body"].read() == payload
    out_file = tmp_path / "out.bin"
    req.args = ["--endpoint-url", moto_endpoint, "s3", "cp", "s3://runner-bucket/streamed", "-"]
    with open(out_file, "wb") as sink:
        result = SubprocessRunner(REAL_AWS).run(req, None, got.extend, errs.extend, passthrough_stdout=sink)
    assert result.exit_code == 0
    assert out_file.read_bytes() == payload


def test_subprocess_runner_passes_exit_code_and_marks_child(tmp_path):
    script = tmp_path / "fakeaws"
    script.write_text("#!/bin/sh\necho \"$HOOP_SHIM_ACTIVE:$AWS_ACCESS_KEY_ID:$AWS_PROFILE\"\nexit 254\n")
    script.chmod(0o755)
    got = bytearray()
    req = RunRequest(args=["sts", "get-caller-identity"], credentials=CREDS, env={"AWS_PROFILE": "prod"})
    result = SubprocessRunner(str(script)).run(req, None, got.extend, got.extend)
    assert result.exit_code == 254
    assert bytes(got).strip() == b"1:AKIAIOSFODNN7EXAMPLE:"


def test_subprocess_runner_reports_signal_death(tmp_path):
    script = tmp_path / "fakeaws"
    script.write_text("#!/bin/sh\nkill -TERM $$\n")
    script.chmod(0o755)
    result = SubprocessRunner(str(script)).run(RunRequest(args=[], credentials=None), None, lambda b: None, lambda b: None)
    assert result.exit_code == 143


def test_find_real_aws_skips_shims_and_duplicates(tmp_path):
    shim_dir = tmp_path / "shim"
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    shim = install_shim(shim_dir)
    real = real_dir / "aws"
    real.write_text("#!/bin/sh\nexit 0\n")
    real.chmod(0o755)
    assert is_shim(str(shim)) and not is_shim(str(real))
    path = os.pathsep.join([str(shim_dir), str(shim_dir), str(real_dir)])
    assert find_real_aws({"PATH": path}, str(shim)) == str(real)


def test_find_real_aws_missing_is_a_clear_error(tmp_path):
    shim_dir = tmp_path / "shim"
    install_shim(shim_dir)
    with pytest.raises(RealCliNotFound) as info:
        find_real_aws({"PATH": str(shim_dir)})
    assert "not found on PATH" in info.value.line()
    assert info.value.exit_status == 70


def test_find_real_aws_refuses_a_shim_as_hoop_real_aws(tmp_path):
    shim = install_shim(tmp_path / "shim")
    with pytest.raises(RecursionRefused):
        find_real_aws({"HOOP_REAL_AWS": str(shim), "PATH": ""})
    with pytest.raises(RealCliNotFound):
        find_real_aws({"HOOP_REAL_AWS": str(tmp_path / "nope"), "PATH": ""})


def test_active_env_name_is_stable():
    assert ACTIVE_ENV == "HOOP_SHIM_ACTIVE"


def test_repository_launcher_explains_a_missing_hoopcli(tmp_path):
    import subprocess
    from pathlib import Path

    launcher = Path(__file__).resolve().parents[2] / "shims" / "aws"
    # -S: no site-packages, so this interpreter cannot import hoopcli
    proc = subprocess.run([sys.executable, "-S", "-I", str(launcher), "s3", "ls"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 70
    assert proc.stderr.startswith("hoop: hoopcli is not installed for ")
    assert "hoop shim install" in proc.stderr
    assert is_shim(str(launcher))
