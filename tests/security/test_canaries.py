"""Canary secrets searched everywhere (issue 5, "Bad input and faults"; issue 8 item 5).

Canaries are planted in a real moto_server (Secrets Manager, SSM SecureString, Lambda environment)
and moto makes up the rest (IAM access keys, STS session credentials, the ECR password, the
credentials hoop's broker vends); a recording proxy between hoop and moto sees every raw response,
so the test knows every secret. The commands run through the real shim, in process and as an
executable, in json/text/table/--query/--debug forms, against a real `hoop server` process on
SQLite and PostgreSQL; records reach the server through the background uploader and `hoop sync`;
an auditor exports them. Then every canary is searched for in: the agent's stdout/stderr, every
file under both clients' HOOP_HOME, the server's state directory and SQLite file (raw bytes), a
dump of every table (SQLite and PostgreSQL), the server's log at INFO, and the exports.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import stat
import zipfile
from typing import Any

import pytest
from reliability.procserver import dump_database, files_under, hits_in_files

from .conftest import World, boto

pytestmark = pytest.mark.e2e

FORMS: dict[str, list[str]] = {
    "json": ["--output", "json"], "text": ["--output", "text"], "table": ["--output", "table"],
    "query": ["--output", "text", "--query", "@QUERY@"], "debug": ["--debug", "--output", "json"],
}
VENDED_ROLE = b"hoop-agent"


def canary() -> str:
    return "hoopCanary" + secrets.token_hex(12)


def plant(moto: str) -> tuple[dict[str, list[str]], list[str]]:
    """Planted canaries; returns {command name: argv}, [canaries]."""
    secret, param, env = canary(), canary(), canary()
    sm_name, ssm_name, fn_name = "db-" + secrets.token_hex(4), "/app/" + secrets.token_hex(4), "fn-" + secrets.token_hex(4)
    boto(moto, "secretsmanager").create_secret(Name=sm_name, SecretString=secret)
    boto(moto, "ssm").put_parameter(Name=ssm_name, Value=param, Type="SecureString")
    role = boto(moto, "iam").create_role(RoleName="fnrole-" + secrets.token_hex(4),
                                         AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(e, c):\n    return 1\n")
    boto(moto, "lambda").create_function(FunctionName=fn_name, Runtime="python3.12", Role=role,
                                         Handler="index.handler", Code={"ZipFile": buf.getvalue()},
                                         Environment={"Variables": {"DB_PASSWORD": env, "STAGE": "prod"}})
    commands = {
        "secretsmanager": ["secretsmanager", "get-secret-value", "--secret-id", sm_name, "@@SecretString"],
        "ssm": ["ssm", "get-parameter", "--name", ssm_name, "--with-decryption", "@@Parameter.Value"],
        "lambda": ["lambda", "get-function-configuration", "--function-name", fn_name,
                   "@@Environment.Variables.DB_PASSWORD"],
        "iam": ["iam", "create-access-key", "--user-name", "@USER@", "@@AccessKey.SecretAccessKey"],
        "sts-session": ["sts", "get-session-token", "@@Credentials.SessionToken"],
        "sts-assume": ["sts", "assume-role", "--role-arn", "arn:aws:iam::123456789012:role/other",
                       "--role-session-name", "agent", "@@Credentials.SecretAccessKey"],
        "ecr": ["ecr", "get-login-password"],
    }
    return commands, [secret, param, env]


def argv_for(moto: str, template: list[str], form: str) -> list[str]:
    args = [a for a in template if not a.startswith("@@")]
    query = next((a[2:] for a in template if a.startswith("@@")), None)
    if "@USER@" in args:
        user = "u-" + secrets.token_hex(4)
        boto(moto, "iam").create_user(UserName=user)
        args = [user if a == "@USER@" else a for a in args]
    if query is None:  # the whole output is the secret: formats do not apply
        return args + (["--debug"] if form == "debug" else [])
    return args + [query if a == "@QUERY@" else a for a in FORMS[form]]


SECRET_XML = re.compile(rb"<(SecretAccessKey|SessionToken)>([^<]{8,})</")
SECRET_JSON = re.compile(rb'"(SecretAccessKey|SessionToken|authorizationToken)"\s*:\s*"([^"]{8,})"')


def generated_secrets(world: World) -> tuple[set[str], set[str]]:
    """(vended to hoop's broker, everything else) secrets moto made up, from the raw responses."""
    vended: set[str] = set()
    other: set[str] = set()
    for request, body in world.proxy.exchanges():
        found = [m.group(2).decode() for m in SECRET_XML.finditer(body)]
        for m in SECRET_JSON.finditer(body):
            value = m.group(2).decode()
            found.append(value)
            if m.group(1) == b"authorizationToken":  # ECR: base64("AWS:password")
                found.append(base64.b64decode(value).decode().split(":", 1)[1])
        (vended if b"AssumeRole" in request and VENDED_ROLE in request else other).update(found)
    return vended, other


def search_everywhere(world: World, needles: list[str], outputs: list[bytes], exports: list[bytes],
                      allow_in_credential_cache: bool = False) -> list[str]:
    problems: list[str] = []
    for i, out in enumerate(outputs):
        problems += [f"agent output #{i}" for n in needles if n.encode() in out]
    for i, out in enumerate(exports):
        problems += [f"export #{i}" for n in needles if n.encode() in out]
    skip: set[Any] = set()
    if allow_in_credential_cache:
        skip = set(files_under(world.dev.layout.credentials_dir)) if world.dev.layout.credentials_dir.exists() else set()
    for home in (world.dev.home, world.auditor.home):
        problems += [f"client file {f}" for f, _ in hits_in_files(home, needles, skip)]
    problems += [f"server file {f}" for f, _ in hits_in_files(world.server.root, needles)]
    log = world.server.log()
    problems += ["server log" for n in needles if n in log]
    dump = dump_database(world.server.database_url)
    problems += ["server database" for n in needles if n in dump]
    return problems


def fast_runs(names: list[str]) -> list[tuple[str, str, str]]:
    """Every command in process as json plus one more form (the forms rotate over the commands),
    and two commands (one whole-output secret) as a real executable with --debug."""
    forms = [f for f in FORMS if f != "json"]
    runs = [(name, "json", "inprocess") for name in names]
    runs += [(name, forms[i % len(forms)], "inprocess") for i, name in enumerate(names)]
    return [*runs, ("secretsmanager", "debug", "exec"), ("ecr", "json", "exec")]


def full_runs(names: list[str]) -> list[tuple[str, str, str]]:
    return [(n, f, how) for n in names for f in FORMS for how in ("inprocess", "exec")]


def test_canaries_appear_nowhere(world: World, capfd: pytest.CaptureFixture[str]) -> None:
    check_everywhere(world, capfd, fast_runs)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_canaries_appear_nowhere_every_form_both_ways(world: World, capfd: pytest.CaptureFixture[str]) -> None:
    check_everywhere(world, capfd, full_runs)


def check_everywhere(world: World, capfd: pytest.CaptureFixture[str], plan: Any) -> None:
    commands, planted = plant(world.moto)
    outputs: list[bytes] = []
    runs = plan(list(commands))
    for name, form, how in runs:
        if not commands[name][-1].startswith("@@") and form in ("text", "table", "query"):
            continue
        args = argv_for(world.moto, commands[name], form)
        result = world.dev.run(*args) if how == "inprocess" else world.dev.exec(*args)
        assert result.code == 0, (name, form, how, result.stderr)
        outputs += [result.out, result.err]
        if form == "json":  # the command really returned the secret's place, masked
            assert b"[masked:" in result.out, (name, how, result.out[:300])
    captured = capfd.readouterr()  # whatever the in-process runs wrote past their streams
    outputs += [captured.out.encode(), captured.err.encode()]

    sync = world.dev.hoop("sync")
    assert sync.code == 0, sync.stderr
    assert not list(world.dev.layout.spool_dir.glob("*.json*")) or world.dev.hoop("sync").code == 0
    exports = []
    for fmt in ("jsonl", "csv"):
        exp = world.auditor.hoop("sessions", "export", "--format", fmt)
        assert exp.code == 0, exp.stderr
        exports.append(exp.out)
    results = [json.loads(line) for line in exports[0].splitlines() if line.strip()]
    n_results = sum(1 for r in results if r["record"]["type"] == "command.result")
    assert n_results == len(outputs) // 2 - 1, n_results  # every command arrived (minus capfd's pair)

    vended, generated = generated_secrets(world)
    assert vended, "hoop's broker never assumed the connection's role through the proxy"
    assert len(generated) >= 10, generated  # iam x7, sts x14, ecr x2: the proxy saw them
    assert "/api/v1/credentials" in world.server.log()  # the log really is at INFO

    everything = sorted(set(planted) | generated | vended)
    # the search is not blind: what hoop does store (the agent's name) is found where expected
    control = search_everywhere(world, ["canary-agent"], [], exports)
    assert {"export #0", "server database", "server log"} - set(control) <= {"server log"}, control
    assert search_everywhere(world, sorted(set(planted) | generated), outputs, exports) == []
    # hoop caches the vended credentials (0600, scope-bound); they are nowhere else
    assert search_everywhere(world, sorted(vended), outputs, exports, allow_in_credential_cache=True) == []
    cache = files_under(world.dev.layout.credentials_dir)
    assert cache, "no credential cache was written"
    for path in cache:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not any(n.encode() in path.read_bytes() for n in sorted(set(planted) | generated))
    assert everything


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_the_credential_cache_no_vended_secret_touches_disk(world: World) -> None:
    world.dev.extra_env["HOOP_CREDENTIAL_CACHE"] = "0"
    boto(world.moto, "s3").create_bucket(Bucket="canary-nocache")
    for args in (["s3api", "list-buckets"], ["sts", "get-caller-identity"]):
        assert world.dev.run(*args).code == 0
    assert world.dev.exec("s3", "ls").code == 0
    vended, _ = generated_secrets(world)
    assert len(vended) >= 2 * 3  # key + token for each of the three commands
    assert not world.dev.layout.credentials_dir.exists() or files_under(world.dev.layout.credentials_dir) == []
    assert world.dev.hoop("sync").code == 0
    assert search_everywhere(world, sorted(vended), [], []) == []
