"""A local fake of the Slack Web API, speaking its wire format, and a Slack-style request signer.

    with FakeSlack(token="xoxb-test", users={"bob@example.com": "U0BOB"}) as slack:
        slack.api_url        # "http://127.0.0.1:PORT/api/" -> settings.slack.api_url
        slack.calls          # [(method, params)] in order, e.g. ("chat.postMessage", {...})
        slack.messages       # {ts: {"channel", "text", "blocks"}} as last posted/updated

Methods: auth.test, chat.postMessage, chat.update, chat.postEphemeral, users.lookupByEmail.
Requests may be GET (query) or POST (form or JSON), with `Authorization: Bearer TOKEN`; answers
are Slack's `{"ok": true, ...}` / `{"ok": false, "error": "..."}` with HTTP 200.

`sign(secret, body, ts)` and `signed_interaction(...)` produce what Slack sends to an app's
interactivity URL: form body `payload=<json>`, headers X-Slack-Request-Timestamp and
X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, "v0:{ts}:{body}")).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token", users: dict[str, str] | None = None) -> None:
        self.token = token
        self.users = {k.lower(): v for k, v in (users or {}).items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._ts = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, data: dict[str, Any], status: int = 200) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, params: dict[str, Any]) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if not path.startswith("/api/"):
                    return self._answer({"ok": False, "error": "unknown_method"}, 404)
                method = path[len("/api/"):]
                auth = self.headers.get("Authorization", "")
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.pop("token", None)
                with fake._lock:
                    fake.calls.append((method, dict(params)))
                if token != fake.token:
                    return self._answer({"ok": False, "error": "invalid_auth"})
                self._answer(fake.dispatch(method, params))

            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                self._handle(dict(urllib.parse.parse_qsl(query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    params = json.loads(raw or "{}")
                else:
                    params = dict(urllib.parse.parse_qsl(raw))
                    for key in ("blocks", "attachments"):
                        if isinstance(params.get(key), str):
                            params[key] = json.loads(params[key])
                query = urllib.parse.urlsplit(self.path).query
                params.update(dict(urllib.parse.parse_qsl(query)))
                self._handle(params)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.api_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- Slack's behaviour -------------------------------------------------------------------
    def dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "team_id": "T0HOOP"}
        if method == "chat.postMessage":
            if not params.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            with self._lock:
                self._ts += 1
                ts = f"{int(time.time())}.{self._ts:06d}"
                self.messages[ts] = {"channel": params["channel"], "text": params.get("text"),
                                     "blocks": params.get("blocks")}
            return {"ok": True, "channel": params["channel"], "ts": ts,
                    "message": {"text": params.get("text"), "blocks": params.get("blocks"), "ts": ts}}
        if method == "chat.update":
            ts = params.get("ts")
            with self._lock:
                if ts not in self.messages or self.messages[ts]["channel"] != params.get("channel"):
                    return {"ok": False, "error": "message_not_found"}
                self.messages[ts] = {"channel": params["channel"], "text": params.get("text"),
                                     "blocks": params.get("blocks")}
            return {"ok": True, "channel": params["channel"], "ts": ts, "text": params.get("text")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "users.lookupByEmail":
            user_id = self.users.get(str(params.get("email", "")).lower())
            if user_id is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user_id, "team_id": "T0HOOP", "deleted": False,
                                         "profile": {"email": params["email"]}}}
        return {"ok": False, "error": "unknown_method"}

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for m, p in self.calls if m == method]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- signing, as Slack does it -------------------------------------------------------------

def sign(secret: str, body: str, ts: str | int) -> str:
    base = f"v0:{ts}:{body}".encode()
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def interaction_payload(approval_id: str, action: str, slack_user: str, *, channel: str = "C0APPROVE",
                        message_ts: str = "1.000001") -> dict[str, Any]:
    """A block_actions payload as Slack sends it when a button of our message is clicked."""
    action_id = {"approve": "hoop_approve", "deny": "hoop_deny"}.get(action, action)
    return {
        "type": "block_actions",
        "team": {"id": "T0HOOP", "domain": "hoop"},
        "user": {"id": slack_user, "username": slack_user.lower(), "team_id": "T0HOOP"},
        "api_app_id": "A0HOOP",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel, "name": "approvals"},
        "message": {"ts": message_ts, "type": "message"},
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.invalid/actions/T0HOOP/1/x",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "hoop_decision",
                     "value": approval_id, "action_ts": f"{time.time():.6f}"}],
    }


def signed_interaction(secret: str, payload: dict[str, Any], ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    """(body, headers) for POST /api/v1/slack/interactions, signed like Slack."""
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(secret, body, ts)}
    return body.encode("utf-8"), headers
