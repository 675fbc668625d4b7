"""`hoop doctor`: is this machine set up so that an agent's `aws` goes through hoop, and only
through hoop? Each check returns a Finding with what to do about it."""

from __future__ import annotations

import configparser
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from hoopcli.paths import Layout

OK, WARN, FAIL = "ok", "warn", "fail"
MAX_SKEW = 60.0


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def check_shim_first(env: Mapping[str, str]) -> Finding:
    from hoopcli.runner import is_shim

    found = shutil.which("aws", path=env.get("PATH", ""))
    if found is None:
        return Finding("shim on PATH", FAIL, "no `aws` on PATH",
                       "run `hoop shim install` and add the printed PATH line to your shell profile")
    if not is_shim(found):
        return Finding("shim on PATH", FAIL, f"`aws` resolves to {found}, the real CLI, not the hoop shim",
                       "run `hoop shim install` and put its directory before the real CLI's on PATH")
    if not _current_launcher(found):
        return Finding("shim on PATH", WARN, f"`aws` is a hoop shim at {found}, written by an older hoop "
                       "(each call starts slower)", "run `hoop shim install` again to rewrite it")
    return Finding("shim on PATH", OK, f"`aws` is the hoop shim at {found}")


def _current_launcher(path: str) -> bool:
    """The launcher calls hoopcli.shim.launch (GC pause, roomy frame, fast exit), not main."""
    try:
        with open(path, "rb") as fh:
            return b"from hoopcli.shim import launch" in fh.read(4096)
    except OSError:
        return False


def check_real_cli(env: Mapping[str, str], stored: Mapping[str, Any] | None = None) -> Finding:
    """The runner the shim would use, decided as the shim decides it (runner.runner_choice):
    HOOP_HOME/config.json's `runner` / `real_aws`, and outside a hoop session (no
    HOOP_SESSION_ID) the environment's HOOP_RUNNER / HOOP_REAL_AWS."""
    from hoopcli.runner import runner_choice

    runner, find_env = runner_choice(env, stored or {})
    where = _runner_source(env, stored or {})
    if runner == "subprocess":
        from hoopcli.errors import HoopError
        from hoopcli.runner import find_real_aws

        try:
            path = find_real_aws(find_env)
        except HoopError as exc:
            return Finding("real AWS CLI", FAIL, f"{exc.message} (subprocess runner, {where})",
                           exc.hint or "")
        return Finding("real AWS CLI", OK, f"subprocess runner ({where}) uses {path}")
    try:
        import awscli

        return Finding("real AWS CLI", OK, f"in-process runner ({where}): awscli {awscli.__version__}")
    except ImportError:
        return Finding("real AWS CLI", FAIL, "awscli is not installed in hoop's environment",
                       "reinstall hoopcli (awscli is a dependency) or set `real_aws` in "
                       "HOOP_HOME/config.json to an aws v2 binary")


def _runner_source(env: Mapping[str, str], stored: Mapping[str, Any]) -> str:
    """Where runner_choice took the runner from, for the finding's detail."""
    if not env.get("HOOP_SESSION_ID") and (env.get("HOOP_RUNNER") or env.get("HOOP_REAL_AWS")):
        return "chosen by HOOP_RUNNER/HOOP_REAL_AWS in this environment"
    if stored.get("runner") or stored.get("real_aws"):
        return "chosen by HOOP_HOME/config.json"
    ignored = env.get("HOOP_SESSION_ID") and (env.get("HOOP_RUNNER") or env.get("HOOP_REAL_AWS"))
    return ("the default; HOOP_RUNNER/HOOP_REAL_AWS are ignored under a hoop session"
            if ignored else "the default")


CRED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE")
CRED_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "credential_process",
             "web_identity_token_file", "sso_start_url", "sso_session")


def check_static_credentials(env: Mapping[str, str]) -> list[Finding]:
    findings = []
    present = [name for name in CRED_ENV if env.get(name)]
    if present:
        findings.append(Finding("no ambient credentials (env)", FAIL,
                                "credential variables are set: " + ", ".join(present),
                                "unset them; run agents with `hoop run` (it strips them)"))
    else:
        findings.append(Finding("no ambient credentials (env)", OK, "no AWS credential variables set"))
    home = Path(env.get("HOME", str(Path.home())))
    files = [Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"),
             Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")]
    for path in files:
        hits = credential_entries(path)
        if hits:
            findings.append(Finding(f"no static credentials in {path}", FAIL,
                                    "found " + ", ".join(hits) + " (values not shown)",
                                    "remove them: an agent can read this file and bypass hoop; "
                                    "hoop vends short-lived credentials per call"))
        else:
            findings.append(Finding(f"no static credentials in {path}", OK, "none found"))
    return findings


def credential_entries(path: Path) -> list[str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return [f"an unreadable file ({path.name})"] if path.exists() else []
    hits = []
    for section in parser.sections():
        for key in CRED_KEYS:
            if parser.has_option(section, key):
                hits.append(f"[{section}] {key}")
    return hits


def check_server(server: str, client_factory: Callable[[], object] | None = None) -> tuple[Finding, Finding]:
    from hoopcli.client import Client
    from hoopcli.errors import HoopError

    client = Client(server, timeout=5.0)
    try:
        t0 = time.time()
        resp = client.get("/api/v1/config")
        t1 = time.time()
    except HoopError as exc:
        return (Finding("server reachable", FAIL, exc.message, "start it (`hoop server`) or set HOOP_SERVER"),
                Finding("clock skew", WARN, "not checked: the server is unreachable"))
    reach = Finding("server reachable", OK, f"{server} answered in {int((t1 - t0) * 1000)} ms")
    date = resp.headers.get("date")
    if not date:
        return reach, Finding("clock skew", WARN, "the server sent no Date header")
    skew = parsedate_to_datetime(date).timestamp() - (t0 + t1) / 2
    if abs(skew) > MAX_SKEW:
        return reach, Finding("clock skew", FAIL, f"local clock is {skew:+.0f} s off the server's",
                              "sync the clock (NTP): tokens and approvals are time-bound")
    return reach, Finding("clock skew", OK, f"{skew:+.1f} s against the server (Date has 1 s resolution)")


def check_login(layout: Layout, env: Mapping[str, str]) -> Finding:
    from hoopcli import config
    from hoopcli.errors import HoopError
    from hoopcli.identity import tokens as auth

    cfg = config.load(env, layout)
    try:
        auth.id_token(layout, cfg, env)
    except HoopError as exc:
        return Finding("login", FAIL, exc.message, "run `hoop login`")
    missing = auth.stored_groups_warning(layout)
    if missing:
        return Finding("login", WARN, missing.removeprefix("hoop: warning: "),
                       "fix the provider's groups claim mapping or scopes (or oidc.groups_claim), "
                       "then run `hoop login` again")
    return Finding("login", OK, "a valid login is cached")


def check_spool(layout: Layout) -> Finding:
    from hoopcli.record.spool import Spool

    spool = Spool(layout)
    count = len(spool.pending())
    age = spool.oldest_age()
    if not count or age is None:
        return Finding("spool", OK, "nothing waiting to upload")
    status = WARN if age < 300 else FAIL
    return Finding("spool", status, f"{count} record(s) waiting, oldest {int(age)} s old",
                   "run `hoop sync`; check `hoop status` and that the server is reachable")


def run_checks(env: Mapping[str, str] | None = None) -> list[Finding]:
    from hoopcli import config

    env = dict(os.environ if env is None else env)
    layout = Layout.from_env(env)
    cfg = config.load(env, layout)
    findings = [check_shim_first(env), check_real_cli(env, cfg.extra), *check_static_credentials(env)]
    findings.extend(check_server(cfg.server))
    findings.append(check_login(layout, env))
    findings.append(check_spool(layout))
    return findings
