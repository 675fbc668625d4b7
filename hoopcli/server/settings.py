"""Server configuration: YAML file + HOOP_SERVER_* environment, flag > env > file > default.

Every key is optional. Unknown keys are an error naming the key (a typo must never silently turn
a security setting off). Values are validated here, once, so the rest of the server can trust them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hoopcli.errors import ConfigError
from hoopcli.paths import hoop_home
from hoopcli.urls import is_loopback_host

DEFAULT_LISTEN = "127.0.0.1:8009"
DEFAULT_CLIENT_ID = "hoop-cli"
DEFAULT_SCOPES = ("openid", "email", "profile", "offline_access")
DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "approver": ("approvers",),
    "auditor": ("auditors",),
    "admin": ("admins",),
}
ROLE_NAMES = ("developer", "approver", "auditor", "admin")
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# one command's record may carry 1 MiB of stdout and 1 MiB of stderr: ingest takes more
DEFAULT_MAX_RECORDS_BODY_BYTES = 8 * 1024 * 1024
CONNECTION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")

# HOOP_SERVER_<NAME> -> dotted config key
ENV_KEYS: dict[str, str] = {
    "LISTEN": "listen",
    "PUBLIC_URL": "public_url",
    "DATABASE_URL": "database_url",
    "HOME": "home",
    "POLICY_FILE": "policy_file",
    "APPROVAL_TTL_SECONDS": "approval_ttl_seconds",
    "MAX_BODY_BYTES": "max_body_bytes",
    "MAX_RECORDS_BODY_BYTES": "max_records_body_bytes",
    "LOG_LEVEL": "log_level",
    "OIDC_ISSUER": "oidc.issuer",
    "OIDC_CLIENT_ID": "oidc.client_id",
    "OIDC_GROUPS_CLAIM": "oidc.groups_claim",
    "OIDC_SCOPES": "oidc.scopes",
    "SLACK_BOT_TOKEN": "slack.bot_token",
    "SLACK_SIGNING_SECRET": "slack.signing_secret",
    "SLACK_CHANNEL": "slack.channel",
    "SLACK_API_URL": "slack.api_url",
    "GATEWAY_LISTEN": "gateway.listen",
    "GATEWAY_PUBLIC_URL": "gateway.public_url",
    "GATEWAY_DOMAIN": "gateway.domain",
    "GATEWAY_HOLD_SECONDS": "gateway.hold_seconds",
}
# Environment variables that are not config keys but are allowed to exist.
ENV_NOT_KEYS = frozenset({"CONFIG"})


@dataclass(frozen=True)
class OIDCSettings:
    issuer: str
    client_id: str = DEFAULT_CLIENT_ID
    groups_claim: str = "groups"
    scopes: tuple[str, ...] = DEFAULT_SCOPES


CREDENTIAL_MODES = ("vend", "gateway")


@dataclass(frozen=True)
class Connection:
    """An AWS account and role agents reach. `credentials`: `vend` hands scope-bound STS keys to
    the shim (it trusts the agent's machine); `gateway` keeps every AWS key on the server and
    answers only requests signed with a hoop session credential at the gateway."""

    name: str
    role_arn: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    duration_seconds: int = 900
    credentials: str = "gateway"


@dataclass(frozen=True)
class GatewaySettings:
    """The SigV4 gateway's own listener (docs/gateway.md). `domain` enables virtual-host S3
    addressing and per-service hosts `<endpointPrefix>.<domain>`."""

    listen: str = "127.0.0.1:8010"
    public_url: str = ""
    domain: str | None = None
    hold_seconds: int = 20
    credential_ttl_seconds: int = 12 * 3600
    max_body_bytes: int = 16 * 1024 * 1024       # buffered request bodies (all but streamed uploads)
    max_response_bytes: int = 32 * 1024 * 1024   # buffered (masked) responses

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str | None = None
    signing_secret: str | None = None
    channel: str | None = None
    api_url: str = "https://slack.com/api/"

    def __repr__(self) -> str:  # never print the secrets
        return f"SlackSettings(channel={self.channel!r}, api_url={self.api_url!r}, secrets=[masked])"


@dataclass(frozen=True)
class LocalUser:
    """A dev IdP account. Behaves like the mapping {password_hash, email, groups} as well."""

    name: str
    password_hash: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        if key not in ("name", "password_hash", "email", "groups"):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __repr__(self) -> str:
        return f"LocalUser(name={self.name!r}, email={self.email!r}, groups={self.groups!r})"


@dataclass(frozen=True)
class Settings:
    listen: str = DEFAULT_LISTEN
    public_url: str = ""
    database_url: str = ""
    home: Path = Path(".")
    oidc: OIDCSettings | None = None
    roles: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    policy_file: Path | None = None
    connections: dict[str, Connection] = field(default_factory=dict)
    slack: SlackSettings | None = None
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    users: dict[str, LocalUser] = field(default_factory=dict)
    approval_ttl_seconds: int = 1800
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_records_body_bytes: int = DEFAULT_MAX_RECORDS_BODY_BYTES
    log_level: str = "info"

    # -- derived --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    @property
    def dev_idp(self) -> bool:
        """True when the built-in development identity provider is the issuer."""
        return self.oidc is None

    @property
    def issuer(self) -> str:
        return self.oidc.issuer if self.oidc else self.public_url.rstrip("/") + "/idp"

    @property
    def client_id(self) -> str:
        return self.oidc.client_id if self.oidc else DEFAULT_CLIENT_ID

    @property
    def groups_claim(self) -> str:
        return self.oidc.groups_claim if self.oidc else "groups"

    @property
    def scopes(self) -> tuple[str, ...]:
        return self.oidc.scopes if self.oidc else DEFAULT_SCOPES

    def connection(self, name: str) -> Connection | None:
        return self.connections.get(name)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# -- helpers -------------------------------------------------------------------------------

def split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"listen: expected HOST:PORT, got {listen!r}")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"listen: port must be a number, got {port!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"listen: port out of range: {number}")
    return host.strip("[]"), number


def check_secure_url(url: str, key: str) -> str:
    """https always; plain http only for loopback hosts (local development)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    if parts.scheme == "http":
        raise ConfigError(f"{key}: plain http is accepted only for loopback addresses; use https: {url}")
    raise ConfigError(f"{key}: expected an https:// URL, got {url!r}")


def normalize_database_url(url: str) -> str:
    """Accept postgresql:// / postgres:// and use the psycopg 3 driver; sqlite as given."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith(("postgresql+psycopg://", "sqlite://")):
        return url
    scheme = url.split(":", 1)[0] if ":" in url else url[:20]
    raise ConfigError(
        f"database_url: unsupported database {scheme!r}; use sqlite:///PATH or postgresql://..."
    )


def _type_error(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {expected}, got {type(value).__name__}")


def _str(key: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise _type_error(key, "a non-empty string", value)
    return value


def _int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(key, "an integer", value)
    if not low <= value <= high:
        raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")
    return value


def _str_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _type_error(key, "a list of strings", value)
    return tuple(value)


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(key, "a mapping", value)
    return value


def _check_keys(prefix: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(
                f"unknown config key {name!r}; known keys here: {', '.join(allowed)}"
            )


TOP_KEYS = (
    "listen", "public_url", "database_url", "home", "oidc", "roles", "policy_file",
    "connections", "slack", "gateway", "users", "approval_ttl_seconds", "max_body_bytes", "max_records_body_bytes", "log_level",
)


# -- loading -------------------------------------------------------------------------------

def read_config_file(path: Path | str) -> dict[str, Any]:
    import yaml

    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"invalid YAML in {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys, got {type(data).__name__}")
    return data


def env_config(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("HOOP_SERVER_"):
            continue
        suffix = name[len("HOOP_SERVER_"):]
        if suffix in ENV_NOT_KEYS:
            continue
        key = ENV_KEYS.get(suffix)
        if key is None:
            raise ConfigError(
                f"unknown environment variable {name}; known: "
                + ", ".join("HOOP_SERVER_" + k for k in sorted(ENV_KEYS))
            )
        section, _, sub = key.partition(".")
        if sub:
            out.setdefault(section, {})[sub] = value
        else:
            out[section] = value
    return out


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if key in ("oidc", "slack", "gateway") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings: `overrides` (flags) > HOOP_SERVER_* env > config file > defaults.

    Overrides use the config-file keys (listen, database_url, connections={...}, ...), plus
    `host` and `port` which replace the matching half of `listen`. Already-built objects
    (Connection, OIDCSettings, ...) are accepted as override values too.
    """
    env = os.environ if env is None else env
    if config_file is None and env.get("HOOP_SERVER_CONFIG"):
        config_file = env["HOOP_SERVER_CONFIG"]
    data: dict[str, Any] = read_config_file(config_file) if config_file is not None else {}
    _check_keys("", data, TOP_KEYS)
    data = _merge(data, env_config(env))
    host = overrides.pop("host", None)
    port = overrides.pop("port", None)
    _check_keys("", overrides, TOP_KEYS)
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    return build_settings(data, env, host=host, port=port)


def build_settings(
    data: Mapping[str, Any], env: Mapping[str, str], host: str | None = None, port: int | None = None
) -> Settings:
    listen = _str("listen", data.get("listen", DEFAULT_LISTEN))
    lhost, lport = split_listen(listen)
    if host is not None or port is not None:
        lhost = host if host is not None else lhost
        lport = int(port) if port is not None else lport
        listen = f"{lhost}:{lport}"
        split_listen(listen)

    if data.get("public_url"):
        public_url = _str("public_url", data["public_url"]).rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"public_url: expected http(s)://HOST[:PORT], got {public_url!r}")
    else:
        shown = "127.0.0.1" if lhost in ("0.0.0.0", "::", "") else lhost
        if ":" in shown:
            shown = f"[{shown}]"
        public_url = f"http://{shown}:{lport}"

    home = Path(_str("home", data["home"])).expanduser() if data.get("home") else hoop_home(env) / "server"

    database_url = data.get("database_url") or f"sqlite:///{home / 'hoop.db'}"
    database_url = normalize_database_url(_str("database_url", database_url))

    oidc = _oidc(data.get("oidc"))
    roles = _roles(data.get("roles"))
    policy_file = Path(_str("policy_file", data["policy_file"])).expanduser() if data.get("policy_file") else None
    connections = _connections(data.get("connections"))
    slack = _slack(data.get("slack"))
    gateway = _gateway(data.get("gateway"), lhost, lport)
    users = _users(data.get("users"))
    ttl = _int("approval_ttl_seconds", data.get("approval_ttl_seconds", 1800), 10, 7 * 86400)
    max_body = _int("max_body_bytes", data.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES), 1024, 1 << 30)
    max_records_body = _int("max_records_body_bytes",
                            data.get("max_records_body_bytes", DEFAULT_MAX_RECORDS_BODY_BYTES), 1024, 1 << 30)
    log_level = _str("log_level", data.get("log_level", "info")).lower()
    if log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level: expected debug, info, warning or error, got {log_level!r}")
    return Settings(
        listen=listen, public_url=public_url, database_url=database_url, home=home, oidc=oidc,
        roles=roles, policy_file=policy_file, connections=connections, slack=slack, gateway=gateway,
        users=users,
        approval_ttl_seconds=ttl, max_body_bytes=max_body,
        max_records_body_bytes=max_records_body, log_level=log_level,
    )


def _oidc(value: Any) -> OIDCSettings | None:
    if value is None or isinstance(value, OIDCSettings):
        return value
    value = _mapping("oidc", value)
    _check_keys("oidc", value, tuple(f.name for f in fields(OIDCSettings)))
    if not value.get("issuer"):
        raise ConfigError("oidc.issuer is required when the oidc section is present")
    issuer = check_secure_url(_str("oidc.issuer", value["issuer"]).rstrip("/"), "oidc.issuer")
    return OIDCSettings(
        issuer=issuer,
        client_id=_str("oidc.client_id", value.get("client_id", DEFAULT_CLIENT_ID)),
        groups_claim=_str("oidc.groups_claim", value.get("groups_claim", "groups")),
        scopes=_str_list("oidc.scopes", value["scopes"]) if value.get("scopes") else DEFAULT_SCOPES,
    )


def _roles(value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return dict(DEFAULT_ROLES)
    value = _mapping("roles", value)
    _check_keys("roles", value, ("approver", "auditor", "admin"))
    return {role: _str_list(f"roles.{role}", value.get(role) or []) for role in ("approver", "auditor", "admin")}


def _connections(value: Any) -> dict[str, Connection]:
    if value is None:
        return {}
    value = _mapping("connections", value)
    out: dict[str, Connection] = {}
    for name, spec in value.items():
        if not isinstance(name, str) or not CONNECTION_NAME_RE.match(name):
            raise ConfigError(f"connections: invalid connection name {name!r} (letters, digits, _ . -)")
        if isinstance(spec, Connection):
            out[name] = replace(spec, name=name)
            continue
        key = f"connections.{name}"
        spec = _mapping(key, spec)
        _check_keys(key, spec, ("role_arn", "region", "endpoint_url", "duration_seconds", "credentials"))
        role_arn = _str(f"{key}.role_arn", spec.get("role_arn"))
        if not ROLE_ARN_RE.match(role_arn):
            raise ConfigError(f"{key}.role_arn: not an IAM role ARN: {role_arn!r}")
        region = _str(f"{key}.region", spec.get("region", "us-east-1"))
        if not REGION_RE.match(region):
            raise ConfigError(f"{key}.region: not an AWS region name: {region!r}")
        endpoint = spec.get("endpoint_url")
        if endpoint is not None:
            endpoint = check_secure_url(_str(f"{key}.endpoint_url", endpoint), f"{key}.endpoint_url")
        duration = _int(f"{key}.duration_seconds", spec.get("duration_seconds", 900), 900, 43200)
        mode = _str(f"{key}.credentials", spec.get("credentials", "gateway"))
        if mode not in CREDENTIAL_MODES:
            raise ConfigError(f"{key}.credentials: expected vend or gateway, got {mode!r}")
        out[name] = Connection(name, role_arn, region, endpoint, duration, mode)
    return out


_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _gateway(value: Any, api_host: str, api_port: int) -> GatewaySettings:
    if isinstance(value, GatewaySettings):
        return value
    value = _mapping("gateway", value or {})
    allowed = ("listen", "public_url", "domain", "hold_seconds", "credential_ttl_seconds", "max_body_bytes",
               "max_response_bytes")
    _check_keys("gateway", value, allowed)
    # Default: the API's port + 1 (8010 beside the default 8009), so that two servers on one
    # machine, each with its own `listen`, do not fight over one gateway port.
    default_port = api_port + 1 if 0 < api_port < 65535 else 0
    listen = _str("gateway.listen", value.get("listen", f"{api_host or '127.0.0.1'}:{default_port}"))
    host, port = split_listen(listen)
    if value.get("public_url"):
        public_url = check_secure_url(_str("gateway.public_url", value["public_url"]).rstrip("/"),
                                      "gateway.public_url")
        parts = urlsplit(public_url)
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError("gateway.public_url: the gateway serves AWS at the root path; "
                              f"give scheme://host[:port] only, got {public_url!r}")
    else:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        public_url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    domain = None
    if value.get("domain"):
        domain = _str("gateway.domain", value["domain"]).lower().rstrip(".")
        if not _DOMAIN_RE.match(domain):
            raise ConfigError(f"gateway.domain: not a DNS name: {domain!r}")
    return GatewaySettings(
        listen=listen, public_url=public_url, domain=domain,
        hold_seconds=_int("gateway.hold_seconds", value.get("hold_seconds", 20), 0, 300),
        credential_ttl_seconds=_int("gateway.credential_ttl_seconds",
                                    value.get("credential_ttl_seconds", 12 * 3600), 60, 7 * 86400),
        max_body_bytes=_int("gateway.max_body_bytes", value.get("max_body_bytes", 16 << 20), 1024, 1 << 30),
        max_response_bytes=_int("gateway.max_response_bytes", value.get("max_response_bytes", 32 << 20),
                                1024, 1 << 30),
    )


def _slack(value: Any) -> SlackSettings | None:
    if value is None or isinstance(value, SlackSettings):
        return value
    value = _mapping("slack", value)
    _check_keys("slack", value, ("bot_token", "signing_secret", "channel", "api_url"))
    api_url = value.get("api_url") or "https://slack.com/api/"
    api_url = check_secure_url(_str("slack.api_url", api_url), "slack.api_url")
    return SlackSettings(
        bot_token=_str("slack.bot_token", value["bot_token"]) if value.get("bot_token") else None,
        signing_secret=(
            _str("slack.signing_secret", value["signing_secret"]) if value.get("signing_secret") else None
        ),
        channel=_str("slack.channel", value["channel"]) if value.get("channel") else None,
        api_url=api_url,
    )


def _users(value: Any) -> dict[str, LocalUser]:
    if value is None:
        return {}
    value = _mapping("users", value)
    out: dict[str, LocalUser] = {}
    for name, spec in value.items():
        if isinstance(spec, LocalUser):
            out[str(name)] = spec
            continue
        key = f"users.{name}"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$", name):
            raise ConfigError(f"users: invalid user name {name!r}")
        spec = _mapping(key, spec or {})
        _check_keys(key, spec, ("password_hash", "email", "groups"))
        if "password" in spec:  # pragma: no cover - _check_keys already refuses it
            raise ConfigError(f"{key}: plain passwords are not accepted")
        out[name] = LocalUser(
            name=name,
            password_hash=_str(f"{key}.password_hash", spec["password_hash"]) if spec.get("password_hash") else None,
            email=_str(f"{key}.email", spec["email"]) if spec.get("email") else None,
            groups=_str_list(f"{key}.groups", spec.get("groups") or []),
        )
    return out
