"""Login state of the client: the shim's fast path, token storage, refresh, logout.

Two files and one secret:
  HOOP_HOME/cache/session.json (0600)  ID token (short-lived), its expiry, server, issuer,
                                       endpoints, which store holds the refresh token
  refresh token                         OS keyring (service "hoop-cli", user = server URL), or
                                       HOOP_HOME/tokens.json (0600) when no keyring backend
                                       exists (one-time warning) or HOOP_TOKEN_STORE=file

`id_token()` is on the shim's hot path: stdlib-only, one small file read, no keyring. Only when
the ID token is within REFRESH_MARGIN of expiry does it take a lock, open the store and refresh
(requests and keyring imported then). The interactive device flow is in `hoopcli.identity.device`.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hoopcli.errors import ConfigError, NotLoggedIn, Unavailable
from hoopcli.paths import Layout, ensure_dir, write_private

REFRESH_MARGIN = 60.0
KEYRING_SERVICE = "hoop-cli"
STORES = ("keyring", "file")
HTTP_TIMEOUT = (5.0, 15.0)


def session_file(layout: Layout) -> Path:
    return layout.cache_dir / "session.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically write JSON readable by the owner only (0600), in a 0700 directory."""
    write_private(path, json.dumps(dict(data), sort_keys=True).encode("utf-8"), fsync=True)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified (only for local expiry/display; the server verifies)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        data = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (IndexError, ValueError, UnicodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _not_logged_in(server: str, why: str = "") -> NotLoggedIn:
    return NotLoggedIn(f"not logged in to {server}" + (f" ({why})" if why else ""))


# -- the hot path -----------------------------------------------------------------------------------
def id_token(layout: Layout, cfg: Any, env: Mapping[str, str] | None = None) -> str:
    """A fresh ID token for cfg.server, refreshing it when near expiry; else NotLoggedIn."""
    data = _read(session_file(layout))
    if not data or data.get("server") != cfg.server:
        raise _not_logged_in(cfg.server)
    token = data.get("id_token")
    expires_at = data.get("expires_at")
    if isinstance(token, str) and isinstance(expires_at, (int, float)) \
            and expires_at - time.time() > REFRESH_MARGIN:
        return token
    return refresh(layout, cfg, env)


# -- token store ------------------------------------------------------------------------------------
def _warned_marker(layout: Layout) -> Path:
    return layout.home / ".token-store-warned"


def _keyring_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail
    except Exception:  # a broken keyring install is "no keyring"
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__:
        return False
    return float(getattr(backend, "priority", 0) or 0) > 0


def choose_store(layout: Layout, cfg: Any, warn: Any = None) -> str:
    """'keyring' or 'file': HOOP_TOKEN_STORE / config first, else keyring when usable."""
    wanted = (getattr(cfg, "token_store", None) or "").strip().lower()
    if wanted and wanted not in STORES:
        raise ConfigError(f"HOOP_TOKEN_STORE must be one of {', '.join(STORES)}, not {wanted!r}")
    if wanted == "file":
        return "file"
    if _keyring_usable():
        return "keyring"
    if wanted == "keyring":
        raise ConfigError("HOOP_TOKEN_STORE=keyring but no OS keyring backend is available",
                          hint="install one (e.g. gnome-keyring, KWallet) or set HOOP_TOKEN_STORE=file")
    if not _warned_marker(layout).exists():
        message = (f"hoop: warning: no OS keyring available; the refresh token is stored in "
                   f"{layout.token_file} (mode 0600). Set HOOP_TOKEN_STORE=file to accept this "
                   "quietly, or install a keyring backend.")
        if warn is None:
            print(message, file=sys.stderr)
            mark_warned(layout)
        else:
            warn(message)  # the caller shows it (once tokens are stored) and calls mark_warned
    return "file"


def mark_warned(layout: Layout) -> None:
    """Remember that the file-store warning was shown, so it is shown only once."""
    ensure_dir(layout.home)
    _warned_marker(layout).touch(mode=0o600)


def save_refresh_token(layout: Layout, store: str, server: str, token: str | None) -> None:
    if store == "keyring":
        import keyring
        from keyring.errors import KeyringError

        try:
            if token:
                keyring.set_password(KEYRING_SERVICE, server, token)
            else:
                _delete_keyring(server)
        except KeyringError as exc:
            raise ConfigError(f"cannot write to the OS keyring: {type(exc).__name__}",
                              hint="set HOOP_TOKEN_STORE=file") from exc
        return
    data = _read(layout.token_file)
    if token:
        data[server] = token
    else:
        data.pop(server, None)
    if data:
        _write_private(layout.token_file, data)
    else:
        _remove(layout.token_file)


def load_refresh_token(layout: Layout, store: str, server: str) -> str | None:
    if store == "keyring":
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(KEYRING_SERVICE, server)
        except KeyringError:
            return None
    value = _read(layout.token_file).get(server)
    return value if isinstance(value, str) else None


def _delete_keyring(server: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(KEYRING_SERVICE, server)
    except (PasswordDeleteError, KeyringError):
        pass


def store_tokens(layout: Layout, store: str, meta: Mapping[str, Any],
                 tokens: Mapping[str, Any]) -> dict[str, Any]:
    """Persist a token response: ID token to session.json, refresh token to the store."""
    token = tokens.get("id_token")
    if not isinstance(token, str) or token.count(".") != 2:
        raise NotLoggedIn("the identity provider returned no ID token",
                          hint="check that the client is allowed the `openid` scope")
    claims = jwt_claims(token)
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        exp = time.time() + float(tokens.get("expires_in") or 300)
    session = {
        "server": meta["server"], "issuer": meta["issuer"], "client_id": meta["client_id"],
        "token_endpoint": meta["token_endpoint"],
        "revocation_endpoint": meta.get("revocation_endpoint"),
        "store": store, "id_token": token, "expires_at": float(exp),
        "subject": claims.get("sub"), "email": claims.get("email"),
        "groups_claim": meta.get("groups_claim"), "scopes": meta.get("scopes"),
    }
    refresh_token = tokens.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        save_refresh_token(layout, store, meta["server"], refresh_token)
    _write_private(session_file(layout), session)
    return session


# -- refresh ----------------------------------------------------------------------------------------
class _Lock:
    """An exclusive advisory lock so concurrent shims refresh once (refresh tokens rotate)."""

    def __init__(self, layout: Layout) -> None:
        self.path = layout.home / ".auth.lock"
        self.fd = -1

    def __enter__(self) -> _Lock:
        import fcntl

        ensure_dir(self.path.parent)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise Unavailable("another hoop process holds the login lock") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def refresh(layout: Layout, cfg: Any, env: Mapping[str, str] | None = None) -> str:
    with _Lock(layout):
        data = _read(session_file(layout))
        if not data or data.get("server") != cfg.server:
            raise _not_logged_in(cfg.server)
        expires_at = data.get("expires_at")
        if isinstance(data.get("id_token"), str) and isinstance(expires_at, (int, float)) \
                and expires_at - time.time() > REFRESH_MARGIN:
            return str(data["id_token"])  # another process refreshed while we waited
        store = str(data["store"]) if data.get("store") in STORES else "file"
        refresh_token = load_refresh_token(layout, store, cfg.server)
        if not refresh_token:
            raise _not_logged_in(cfg.server, "the login expired")
        from hoopcli.identity import device as flow

        try:
            tokens = flow.refresh_tokens(data, refresh_token)
        except flow.ProviderRefused as exc:
            save_refresh_token(layout, store, cfg.server, None)
            raise _not_logged_in(cfg.server, f"the login expired and could not be refreshed: {exc}") from exc
        session = store_tokens(layout, store, data | {"server": cfg.server}, tokens)
        return str(session["id_token"])


def login(layout: Layout, cfg: Any, *, show: Any = None, open_url: Any = None,
          warn: Any = None, sleep: Any = None) -> dict[str, Any]:
    """The whole device flow for cfg.server; returns the stored session (ID token, expiry, ...;
    never the refresh token).

    `show(device)` displays the code (DeviceAuthorization: verification_uri,
    verification_uri_complete, user_code, expires_in); `open_url(url)` may open a browser;
    `warn(message)` receives the one-time file-store warning, shown after tokens are stored.
    Raises LoginFailed (exit 65), Unavailable (69), UsageError (refused URL), ConfigError.
    """
    from hoopcli.config import save
    from hoopcli.identity import device as flow

    warnings: list[str] = []
    store = choose_store(layout, cfg, warn=warnings.append)
    info = flow.discover(cfg.server)
    device = flow.start(info)
    if show is not None:
        show(device)
    if open_url is not None:
        open_url(device.verification_uri_complete or device.verification_uri)
    tokens = flow.poll(info, device, **({"sleep": sleep} if sleep is not None else {}))
    session = store_tokens(layout, store, info.meta(), tokens)
    save(layout, server=cfg.server)
    missing = groups_warning(session)
    if missing:
        warnings.append(missing)
    for message in warnings:
        (warn or (lambda m: print(m, file=sys.stderr)))(message)
        mark_warned(layout)
    return session


def groups_warning(session: Mapping[str, Any]) -> str | None:
    """A warning when the stored ID token lacks the groups claim the server reads (issue 15,
    item 7): the server then sees no groups, and no group maps to approver, auditor or admin.
    Names the claim, the scopes hoop asked for and the provider; None when the claim is there
    (an empty list is a user without groups, not a mapping problem) or nothing says which."""
    claim = session.get("groups_claim")
    token = session.get("id_token")
    if not isinstance(claim, str) or not claim or not isinstance(token, str):
        return None
    claims = jwt_claims(token)
    if not claims or claim in claims:
        return None
    scopes = " ".join(str(s) for s in session.get("scopes") or ()) or "(the provider's default)"
    named = sorted(k for k in claims if any(w in k.lower() for w in ("group", "role")))
    seen = f" (it has {', '.join(named)})" if named else ""
    return (f"hoop: warning: the ID token from {session.get('issuer')} has no {claim!r} claim"
            f"{seen}, the claim the hoop server reads groups from (oidc.groups_claim), so you have "
            f"no groups and only the developer role: no approver, auditor or admin. Check that the "
            f"provider releases groups in the ID token for client {session.get('client_id')!r} "
            f"with the scopes hoop requested ({scopes}), e.g. a groups scope or claim mapping, or "
            f"set oidc.groups_claim to the claim it uses; then `hoop login` again")


def stored_groups_warning(layout: Layout) -> str | None:
    """groups_warning for the login stored in HOOP_HOME (what `hoop doctor` reports)."""
    return groups_warning(_read(session_file(layout)))


def logout(layout: Layout, cfg: Any) -> bool:
    """Revoke the refresh token where the provider supports it; delete local tokens.

    Returns whether a revocation request was accepted by the provider.
    """
    data = _read(session_file(layout))
    revoked = False
    store = data.get("store") if data.get("store") in STORES else None
    stores = [store] if store else ["file"] + (["keyring"] if _keyring_usable() else [])
    for name in stores:
        token = load_refresh_token(layout, name, cfg.server)
        if token and data.get("revocation_endpoint"):
            from hoopcli.identity import device as flow

            revoked = flow.revoke(data, token) or revoked
        save_refresh_token(layout, name, cfg.server, None)
    if data.get("server") == cfg.server or not data:
        _remove(session_file(layout))
    return revoked


def status(layout: Layout, cfg: Any) -> dict[str, Any] | None:
    """The stored session for cfg.server without its secrets, or None."""
    data = _read(session_file(layout))
    if not data or data.get("server") != cfg.server:
        return None
    claims = jwt_claims(str(data.get("id_token") or ""))
    return {
        "server": data.get("server"), "issuer": data.get("issuer"),
        "subject": claims.get("sub") or data.get("subject"), "email": claims.get("email"),
        "groups": claims.get("groups"), "expires_at": data.get("expires_at"),
        "store": data.get("store"),
    }
