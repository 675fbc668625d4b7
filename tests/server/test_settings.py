from __future__ import annotations

from pathlib import Path

import pytest

from hoopcli.errors import ConfigError
from hoopcli.server.settings import load_settings, normalize_database_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.yaml"
    path.write_text(text)
    return path


def test_defaults_put_state_under_hoop_home(clean_env: Path) -> None:
    s = load_settings()
    assert s.listen == "127.0.0.1:8009"
    assert s.public_url == "http://127.0.0.1:8009"
    assert s.home == clean_env / "server"
    assert s.database_url == f"sqlite:///{clean_env / 'server' / 'hoop.db'}"
    assert s.dev_idp and s.issuer == "http://127.0.0.1:8009/idp"
    assert s.client_id == "hoop-cli"
    assert s.roles["admin"] == ("admins",)


def test_flag_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, "listen: 127.0.0.1:7001\ndatabase_url: sqlite:////tmp/file.db\npublic_url: https://file.example\n")
    assert load_settings(cfg).listen == "127.0.0.1:7001"
    monkeypatch.setenv("HOOP_SERVER_LISTEN", "127.0.0.1:7002")
    monkeypatch.setenv("HOOP_SERVER_DATABASE_URL", "postgresql://u@db/hoop")
    s = load_settings(cfg)
    assert s.listen == "127.0.0.1:7002"
    assert s.database_url == "postgresql+psycopg://u@db/hoop"
    assert s.public_url == "https://file.example"
    s = load_settings(cfg, port=7003, database_url="sqlite:////tmp/flag.db")
    assert s.listen == "127.0.0.1:7003"
    assert s.database_url == "sqlite:////tmp/flag.db"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, "approval_ttl_seconds: 60\n")
    monkeypatch.setenv("HOOP_SERVER_CONFIG", str(cfg))
    assert load_settings().approval_ttl_seconds == 60


def test_full_config(tmp_path: Path) -> None:
    cfg = write(tmp_path, """
listen: 0.0.0.0:9000
oidc: {issuer: "https://login.example.com/", client_id: abc, groups_claim: roles}
roles: {approver: [ops], auditor: [sec, audit], admin: [root]}
policy_file: policy.yaml
connections:
  default: {role_arn: "arn:aws:iam::123456789012:role/agent", region: eu-west-1, duration_seconds: 1800}
  local: {role_arn: "arn:aws:iam::123456789012:role/x", endpoint_url: "http://127.0.0.1:5000"}
slack: {bot_token: xoxb-1, signing_secret: s3cr3t, channel: C1}
users:
  alice: {password_hash: "$argon2id$v=19$x", email: a@example.com, groups: [ops]}
""")
    s = load_settings(cfg)
    assert s.public_url == "http://127.0.0.1:9000"
    assert s.issuer == "https://login.example.com" and s.client_id == "abc" and s.groups_claim == "roles"
    assert not s.dev_idp
    assert s.roles == {"approver": ("ops",), "auditor": ("sec", "audit"), "admin": ("root",)}
    assert s.connections["default"].region == "eu-west-1"
    assert s.connections["default"].duration_seconds == 1800
    assert s.connections["local"].duration_seconds == 900
    assert s.users["alice"]["email"] == "a@example.com"
    assert s.users["alice"].groups == ("ops",)
    assert "s3cr3t" not in repr(s) and "xoxb-1" not in repr(s) and "argon2" not in repr(s)


@pytest.mark.parametrize(
    "text, key",
    [
        ("listn: 1.2.3.4:5\n", "listn"),
        ("oidc: {issuer: 'https://x', client: y}\n", "oidc.client"),
        ("connections: {a: {role_arn: 'arn:aws:iam::123456789012:role/r', regoin: x}}\n", "connections.a.regoin"),
        ("roles: {owner: [x]}\n", "roles.owner"),
        ("users: {bob: {password: hunter2}}\n", "users.bob.password"),
        ("slack: {token: x}\n", "slack.token"),
    ],
)
def test_unknown_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert f"unknown config key {key!r}" in info.value.message
    assert "hunter2" not in info.value.message


def test_unknown_env_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOP_SERVER_DATABSE_URL", "x")
    with pytest.raises(ConfigError, match="HOOP_SERVER_DATABSE_URL"):
        load_settings()


def test_env_overrides_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOP_SERVER_OIDC_ISSUER", "https://idp.example")
    monkeypatch.setenv("HOOP_SERVER_OIDC_SCOPES", "openid email")
    s = load_settings()
    assert s.issuer == "https://idp.example" and s.scopes == ("openid", "email")


def test_invalid_yaml_reports_line_and_column(tmp_path: Path) -> None:
    cfg = write(tmp_path, "listen: 127.0.0.1:1\nroles: {approver: [a, b}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert f"invalid YAML in {cfg}:2:" in info.value.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n"])
def test_config_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize("issuer", ["http://idp.example.com", "ftp://idp", "idp.example.com", "http://10.0.0.1",
                                    "http://idp.localhost:9000"])  # .localhost is local only to some resolvers
def test_plain_http_issuer_only_on_loopback(issuer: str) -> None:
    with pytest.raises(ConfigError, match=r"oidc\.issuer"):
        load_settings(oidc={"issuer": issuer})


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:9000", "http://localhost:8080/realms/x", "http://[::1]:1"])
def test_plain_http_issuer_on_loopback_is_fine(issuer: str) -> None:
    assert load_settings(oidc={"issuer": issuer}).issuer == issuer


@pytest.mark.parametrize(
    "conn, problem",
    [
        ({"role_arn": "arn:aws:iam::1234:role/x"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:user/x"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:role/x", "duration_seconds": 60}, "duration_seconds"),
        ({"role_arn": "arn:aws:iam::123456789012:role/x", "duration_seconds": "lots"}, "duration_seconds"),
        ({"role_arn": "arn:aws:iam::123456789012:role/x", "region": "mars"}, "region"),
        ({"role_arn": "arn:aws:iam::123456789012:role/x", "endpoint_url": "http://sts.example"}, "endpoint_url"),
        ({}, "role_arn"),
    ],
)
def test_bad_connections(conn: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(connections={"c": conn})


def test_bad_connection_name() -> None:
    with pytest.raises(ConfigError, match="invalid connection name"):
        load_settings(connections={"../x": {"role_arn": "arn:aws:iam::123456789012:role/x"}})


@pytest.mark.parametrize("listen", ["nohost", "1.2.3.4:http", "1.2.3.4:70000", ":80"])
def test_bad_listen(listen: str) -> None:
    with pytest.raises(ConfigError, match="listen"):
        load_settings(listen=listen)


def test_database_url_schemes() -> None:
    assert normalize_database_url("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert normalize_database_url("postgresql+psycopg://h/d") == "postgresql+psycopg://h/d"
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        normalize_database_url("mysql://root:pw@h/d")
