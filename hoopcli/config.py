"""Client configuration: flag > environment > HOOP_HOME/config.json > default.

Stdlib-only: the shim reads this on every call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hoopcli.paths import Layout, write_private

DEFAULT_SERVER = "http://127.0.0.1:8009"
DEFAULT_CONNECTION = "default"


class ClientConfig:
    """The client's settings (a plain class: the shim reads this on every call)."""

    __slots__ = ("server", "connection", "agent", "session_id", "reason", "token_store",
                 "real_aws", "extra")

    def __init__(self, server: str = DEFAULT_SERVER, connection: str = DEFAULT_CONNECTION,
                 agent: str | None = None, session_id: str | None = None, reason: str | None = None,
                 token_store: str | None = None, real_aws: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.server = server
        self.connection = connection
        self.agent = agent
        self.session_id = session_id
        self.reason = reason
        self.token_store = token_store          # keyring | file | None (auto)
        self.real_aws = real_aws
        self.extra = {} if extra is None else extra

    def __repr__(self) -> str:
        return (f"ClientConfig(server={self.server!r}, connection={self.connection!r}, "
                f"agent={self.agent!r}, session_id={self.session_id!r})")


def read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_file(path: Path, data: Mapping[str, Any]) -> None:
    write_private(path, json.dumps(dict(data), indent=2, sort_keys=True).encode("utf-8"))


def load(env: Mapping[str, str] | None = None, layout: Layout | None = None,
         server: str | None = None) -> ClientConfig:
    env = os.environ if env is None else env
    layout = layout or Layout.from_env(env)
    stored = read_file(layout.config_file)
    cfg = ClientConfig()
    cfg.server = (server or env.get("HOOP_SERVER") or stored.get("server") or DEFAULT_SERVER).rstrip("/")
    cfg.connection = env.get("HOOP_CONNECTION") or stored.get("connection") or DEFAULT_CONNECTION
    cfg.agent = env.get("HOOP_AGENT") or stored.get("agent")
    cfg.session_id = env.get("HOOP_SESSION_ID") or None
    cfg.reason = env.get("HOOP_REASON") or None
    cfg.token_store = env.get("HOOP_TOKEN_STORE") or stored.get("token_store")
    cfg.real_aws = env.get("HOOP_REAL_AWS") or stored.get("real_aws")
    cfg.extra = stored
    return cfg


def save(layout: Layout, **values: Any) -> None:
    """Merge `values` into HOOP_HOME/config.json (0600)."""
    stored = read_file(layout.config_file)
    stored.update({k: v for k, v in values.items() if v is not None})
    write_file(layout.config_file, stored)
