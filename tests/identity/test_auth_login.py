"""`hoop login` / `whoami` / `logout` and the shim's token fast path, against the real dev IdP."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from human import sign_in, wait_for_line

HOOP = [sys.executable, "-m", "hoopcli"]


def run_hoop(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(HOOP + list(args), capture_output=True, text=True, timeout=120, check=False,
                          input=input, env=dict(os.environ))


def start_login(srv: Any, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*HOOP, "login", "--server", srv.url, "--no-browser", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))


def login_as(srv: Any, username: str = "alice", action: str = "approve") -> tuple[int, str, str]:
    proc = start_login(srv)
    try:
        assert proc.stdout is not None
        url = wait_for_line(proc.stdout, r"Or open: (\S+)").group(1)
        sign_in(url, username=username, action=action)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def session_of(home: Path) -> dict[str, Any]:
    return json.loads((home / "cache" / "session.json").read_text())


def test_login_whoami_logout(idp_server: Any, clean_env: Path) -> None:
    code, out, err = login_as(idp_server)
    assert code == 0, err
    assert f"Logged in to {idp_server.url} as alice@example.test" in out
    assert "roles: admin, approver, auditor, developer" in out
    # file fallback (no OS keyring on this machine), with the one-time warning
    assert "no OS keyring available" in err
    session = session_of(clean_env)
    tokens = json.loads((clean_env / "tokens.json").read_text())
    refresh_token = tokens[idp_server.url]
    for path in (clean_env / "cache" / "session.json", clean_env / "tokens.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "refresh_token" not in session  # the refresh token lives only in the store
    for secret in (session["id_token"], refresh_token):
        assert secret not in out and secret not in err
    assert json.loads((clean_env / "config.json").read_text())["server"] == idp_server.url

    who = run_hoop("whoami", "--json")
    assert who.returncode == 0, who.stderr
    me = json.loads(who.stdout)
    assert me["subject"] == "alice" and me["email"] == "alice@example.test"
    assert me["groups"] == ["admins", "developers"] and "admin" in me["roles"]
    assert me["token_store"] == "file" and me["expires_at"].endswith("Z")
    assert session["id_token"] not in who.stdout

    plain = run_hoop("whoami")
    assert plain.returncode == 0 and "subject:" in plain.stdout and "roles:" in plain.stdout

    # a second login does not warn again
    code, _out, err2 = login_as(idp_server, username="bob")
    assert code == 0 and "no OS keyring" not in err2
    assert json.loads(run_hoop("whoami", "--json").stdout)["subject"] == "bob"

    bobs_refresh = json.loads((clean_env / "tokens.json").read_text())[idp_server.url]
    bye = run_hoop("logout")
    assert bye.returncode == 0 and "revoked" in bye.stdout
    import requests

    dead = requests.post(idp_server.url + "/idp/token", timeout=10, data={
        "client_id": "hoop-cli", "grant_type": "refresh_token", "refresh_token": bobs_refresh})
    assert dead.json()["error"] == "invalid_grant"  # revoked at the provider, not just deleted
    assert not (clean_env / "cache" / "session.json").exists()
    assert not (clean_env / "tokens.json").exists()
    after = run_hoop("whoami")
    assert after.returncode == 65
    assert after.stderr.strip() == f"hoop: not logged in to {idp_server.url}; run `hoop login`"


def test_denied_login(idp_server: Any, clean_env: Path) -> None:
    code, _out, err = login_as(idp_server, action="deny")
    assert code == 65
    assert err.strip().splitlines()[-1] == ("hoop: the login was denied in the browser; "
                                            "run `hoop login` to try again")
    assert not (clean_env / "cache" / "session.json").exists()


def test_expired_login_code(idp_server: Any, clean_env: Path) -> None:
    idp_server.idp.expires_in = 2
    proc = start_login(idp_server)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 65
    assert "the login code expired before it was used" in err.strip().splitlines()[-1]


def test_refresh_when_near_expiry_and_not_logged_in_when_refresh_fails(
        idp_server: Any, clean_env: Path) -> None:
    from hoopcli.config import load
    from hoopcli.errors import NotLoggedIn
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    assert login_as(idp_server)[0] == 0
    layout = Layout.from_env()
    cfg = load(layout=layout)
    session = session_of(clean_env)
    assert auth.id_token(layout, cfg) == session["id_token"]  # fast path: fresh, no refresh

    old_refresh = json.loads(layout.token_file.read_text())[cfg.server]
    session["expires_at"] = 0  # the ID token ran out
    (clean_env / "cache" / "session.json").write_text(json.dumps(session))
    renewed = auth.id_token(layout, cfg)
    assert renewed != session["id_token"]
    new_session = session_of(clean_env)
    assert new_session["id_token"] == renewed and new_session["expires_at"] > 1e9
    assert json.loads(layout.token_file.read_text())[cfg.server] != old_refresh  # rotated

    # the refresh token is revoked at the provider: expiry now means "log in again"
    import requests

    requests.post(idp_server.url + "/idp/revoke", timeout=10, data={
        "client_id": "hoop-cli", "token": json.loads(layout.token_file.read_text())[cfg.server]})
    new_session["expires_at"] = 0
    (clean_env / "cache" / "session.json").write_text(json.dumps(new_session))
    with pytest.raises(NotLoggedIn) as info:
        auth.id_token(layout, cfg)
    assert info.value.line() == (f"hoop: not logged in to {cfg.server} (the login expired and "
                                 "could not be refreshed: invalid_grant); run `hoop login`")
    assert info.value.exit_status == 65
    assert not layout.token_file.exists()  # the dead refresh token is dropped


def test_not_logged_in_for_another_server(idp_server: Any, clean_env: Path) -> None:
    from hoopcli.config import load
    from hoopcli.errors import NotLoggedIn
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    assert login_as(idp_server)[0] == 0
    layout = Layout.from_env()
    with pytest.raises(NotLoggedIn, match=r"not logged in to http://127\.0\.0\.1:1"):
        auth.id_token(layout, load(layout=layout, server="http://127.0.0.1:1"))


def test_slow_down_is_honoured(idp_server: Any) -> None:
    from hoopcli.identity import device as flow

    info = flow.discover(idp_server.url)
    grant = flow.start(info)
    assert grant.interval == 1
    slept: list[float] = []

    def impatient_sleep(seconds: float) -> None:
        # records what the client asked for, but polls again at once (a too-fast client would)
        slept.append(seconds)
        if len(slept) == 4:
            sign_in(grant.verification_uri_complete)

    tokens = flow.poll(info, grant, sleep=impatient_sleep)
    assert tokens["id_token"]
    # pending, slow_down (+5), slow_down (+5), then authorized
    assert slept == [1, 1, 6, 11]


def test_plain_http_only_to_loopback() -> None:
    from hoopcli.errors import UsageError
    from hoopcli.identity import device as flow

    for url in ("http://example.com", "http://10.0.0.1:8009", "ftp://127.0.0.1", "http://127.0.0.1.evil.test"):
        with pytest.raises(UsageError, match="only https"):
            flow.check_url(url, "hoop server")
    for url in ("http://127.0.0.1:8009", "http://localhost:1", "http://[::1]:8009", "https://hoop.example.com"):
        assert flow.check_url(url, "hoop server") == url


def test_login_refuses_plain_http_server(clean_env: Path) -> None:
    result = run_hoop("login", "--server", "http://hoop.example.com", "--no-browser")
    assert result.returncode == 2
    assert "refusing the hoop server URL 'http://hoop.example.com'" in result.stderr


def test_login_to_unreachable_server_is_a_clear_error(clean_env: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_hoop("login", "--server", f"http://127.0.0.1:{port}", "--no-browser")
    assert result.returncode == 69
    assert result.stderr.strip() == (f"hoop: cannot reach the hoop server at http://127.0.0.1:{port}"
                                     "/api/v1/config: ConnectionError; check the URL and that it "
                                     "is running, then retry")


def test_token_store_choice(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hoopcli.config import load
    from hoopcli.errors import ConfigError
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    layout = Layout.from_env()
    monkeypatch.setenv("HOOP_TOKEN_STORE", "file")
    warned: list[str] = []
    assert auth.choose_store(layout, load(layout=layout), warn=warned.append) == "file"
    assert warned == []  # asked for explicitly: no warning
    monkeypatch.setenv("HOOP_TOKEN_STORE", "keyring")
    with pytest.raises(ConfigError, match="no OS keyring backend"):
        auth.choose_store(layout, load(layout=layout))
    monkeypatch.setenv("HOOP_TOKEN_STORE", "plaintext")
    with pytest.raises(ConfigError, match="must be one of keyring, file"):
        auth.choose_store(layout, load(layout=layout))


def test_keyring_store_when_a_backend_exists(idp_server: Any, clean_env: Path) -> None:
    """With an OS keyring present the refresh token goes there, and never to a file."""
    import keyring
    from keyring.backend import KeyringBackend

    from hoopcli.config import load
    from hoopcli.identity import device as flow
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    class MemoryKeyring(KeyringBackend):  # stands in for the OS keyring this host lacks
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        layout = Layout.from_env()
        cfg = load(layout=layout, server=idp_server.url)
        store = auth.choose_store(layout, cfg)
        assert store == "keyring"
        info = flow.discover(cfg.server)
        grant = flow.start(info)
        threading.Timer(0.2, sign_in, args=(grant.verification_uri_complete,)).start()
        session = auth.store_tokens(layout, store, info.meta(), flow.poll(info, grant))
        assert backend.items[("hoop-cli", cfg.server)]
        assert not layout.token_file.exists()
        session["expires_at"] = 0
        (clean_env / "cache" / "session.json").write_text(json.dumps(session))
        assert auth.id_token(layout, cfg) != session["id_token"]  # refreshed from the keyring
        assert auth.logout(layout, cfg) is True
        assert backend.items == {}
    finally:
        keyring.set_keyring(previous)


def test_add_user_prints_a_hash_never_the_password(clean_env: Path) -> None:
    import yaml

    from hoopcli.server.idp.users import authenticate

    result = run_hoop("server", "add-user", "carol", "--groups", "approvers, auditors",
                      "--email", "carol@example.test", "--password-stdin", input="s3cret-pw\n")
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    users = yaml.safe_load(result.stdout)["users"]
    assert users["carol"]["groups"] == ["approvers", "auditors"]
    assert users["carol"]["password_hash"].startswith("$argon2id$")
    user = authenticate(users, "carol", "s3cret-pw")
    assert user is not None and user.email == "carol@example.test"
    assert authenticate(users, "carol", "wrong") is None

    bad = run_hoop("server", "add-user", "bad name!", "--password-stdin", input="x\n")
    assert bad.returncode == 1 and "invalid user name" in bad.stderr
    empty = run_hoop("server", "add-user", "dave", "--password-stdin", input="\n")
    assert empty.returncode == 2 and "must not be empty" in empty.stderr


def test_plain_text_password_in_config_never_signs_in() -> None:
    from hoopcli.server.idp.users import authenticate

    assert authenticate({"eve": {"password_hash": "hunter2", "groups": []}}, "eve", "hunter2") is None
    assert authenticate({}, "nobody", "x") is None


def test_parallel_shims_refresh_once(idp_server: Any, clean_env: Path) -> None:
    """Refresh tokens rotate, so concurrent refreshes must not race: all callers get a token."""
    assert login_as(idp_server)[0] == 0
    session = session_of(clean_env)
    session["expires_at"] = 0
    (clean_env / "cache" / "session.json").write_text(json.dumps(session))
    code = ("from hoopcli import config; from hoopcli.identity import tokens as auth; from hoopcli.paths import Layout; "
            "layout = Layout.from_env(); token = auth.id_token(layout, config.load(layout=layout)); "
            "print(auth.jwt_claims(token)['sub'])")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ))
             for _ in range(4)]
    results = [(p.wait(timeout=60), p.stdout.read().strip(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert results == [(0, "alice", "")] * 4
    assert session_of(clean_env)["expires_at"] > 1e9
