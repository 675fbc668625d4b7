"""Slack: the approval message (Block Kit), its in-place update, and approver lookup by email.

slack_sdk's WebClient talks to `settings.slack.api_url` (https://slack.com/api/ by default; the
tests point it at a local fake that speaks the same wire format). Slack failures never fail an
approval: they are logged (without tokens) and the other channels keep working.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("hoop.slack")

APPROVE_ACTION = "hoop_approve"
DENY_ACTION = "hoop_deny"
_STATUS_EMOJI = {"approved": ":white_check_mark:", "rejected": ":no_entry:", "expired": ":hourglass:"}


def _esc(text: Any) -> str:
    """Escape Slack mrkdwn control characters (&, <, >) in untrusted text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str, limit: int = 2800) -> str:
    text = _esc(text).replace("```", "`\u200b``")
    return f"```{text[:limit]}```"


def _list(items: list[str], limit: int = 10) -> str:
    if not items:
        return "-"
    shown = ", ".join(f"`{_esc(i)}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def build_blocks(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The Block Kit blocks for an approval (`view` = approvals_service.to_json output)."""
    status = view.get("status", "pending")
    header = "Approval requested" if status == "pending" else f"Approval {status}"
    fields = [
        {"type": "mrkdwn", "text": f"*Requester*\n{_esc(view.get('requester') or '-')}"},
        {"type": "mrkdwn", "text": f"*Agent*\n{_esc(view.get('agent') or '-')}"},
        {"type": "mrkdwn", "text": f"*Connection*\n{_esc(view.get('connection') or '-')}"},
        {"type": "mrkdwn", "text": f"*Access level*\n{_esc(view.get('access_level') or '-')}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Command*\n" + _code(view.get("command") or "")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Actions*\n" + _list(view.get("actions") or [])}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Resources*\n" + _list(view.get("resources") or [])}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "*Justification*\n" + _esc(view.get("justification") or "_none given_")[:2800]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(
            f"{view.get('id')} · rule {view.get('rule') or '-'} · expires {view.get('expires_at')} · "
            f"call {str(view.get('call_hash') or '')[:12]}")}]},
    ]
    if status == "pending":
        blocks.append({"type": "actions", "block_id": "hoop_decision", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": view["id"],
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": view["id"],
             "text": {"type": "plain_text", "text": "Deny"}},
        ]})
    else:
        who = view.get("approver") or "-"
        outcome = f"{_STATUS_EMOJI.get(status, '')} *{status.capitalize()}*"
        if view.get("approver"):
            outcome += f" by {_esc(who)} via {_esc(view.get('channel') or '-')}"
        if view.get("reason"):
            outcome += f": {_esc(view['reason'])[:500]}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": outcome.strip()}})
    return blocks


def fallback_text(view: dict[str, Any]) -> str:
    return (f"hoop approval {view.get('id')} {view.get('status')}: {view.get('requester')} wants to run "
            f"{view.get('command')}")[:3000]


class SlackBridge:
    """A WebClient bound to the configured channel, with a small email -> Slack user id cache."""

    def __init__(self, slack_settings: Any) -> None:
        from slack_sdk import WebClient

        base = slack_settings.api_url if slack_settings.api_url.endswith("/") else slack_settings.api_url + "/"
        self.channel = slack_settings.channel
        self.client = WebClient(token=slack_settings.bot_token, base_url=base, timeout=2)
        self._ids: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Any, **kwargs: Any) -> dict[str, Any] | None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return dict(fn(**kwargs).data)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("slack %s failed: %s", what, error or "error")
        except (SlackClientError, OSError, ValueError) as exc:
            log.warning("slack %s failed: %s", what, type(exc).__name__)
        return None

    def post(self, view: dict[str, Any]) -> tuple[str, str] | None:
        data = self._call("chat.postMessage", self.client.chat_postMessage, channel=self.channel,
                          text=fallback_text(view), blocks=build_blocks(view))
        if not data or not data.get("ts"):
            return None
        return str(data.get("channel") or self.channel), str(data["ts"])

    def post_message(self, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str] | None:
        """Any other message to the approvals channel (a detection finding) -> (channel, ts)."""
        data = self._call("chat.postMessage", self.client.chat_postMessage, channel=self.channel,
                          text=text[:3000], blocks=blocks)
        if not data or not data.get("ts"):
            return None
        return str(data.get("channel") or self.channel), str(data["ts"])

    def update(self, channel: str, ts: str, view: dict[str, Any]) -> bool:
        data = self._call("chat.update", self.client.chat_update, channel=channel, ts=ts,
                          text=fallback_text(view), blocks=build_blocks(view))
        return bool(data and data.get("ok"))

    def tell(self, channel: str | None, user: str, text: str) -> None:
        """An ephemeral note to the Slack user who clicked (refusals)."""
        if channel:
            self._call("chat.postEphemeral", self.client.chat_postEphemeral, channel=channel,
                       user=user, text=text[:3000])

    def user_id(self, email: str) -> str | None:
        """The Slack user id for `email` (users.lookupByEmail), cached for 10 minutes."""
        key = email.strip().lower()
        now = time.monotonic()
        with self._lock:
            hit = self._ids.get(key)
            if hit and now - hit[1] < 600:
                return hit[0]
        data = self._call("users.lookupByEmail", self.client.users_lookupByEmail, email=email)
        user = (data or {}).get("user") or {}
        found = user.get("id") if isinstance(user, dict) and not user.get("deleted") else None
        if data is not None:      # only cache real answers, not transport failures
            with self._lock:
                self._ids[key] = (found, now)
        return found


_bridges: dict[int, tuple[Any, SlackBridge]] = {}
_bridges_lock = threading.Lock()


def bridge_for(settings: Any) -> SlackBridge | None:
    """The SlackBridge for these settings, or None when Slack is not configured for posting."""
    slack = getattr(settings, "slack", None)
    if slack is None or not slack.bot_token or not slack.channel:
        return None
    with _bridges_lock:
        hit = _bridges.get(id(slack))
        if hit is None or hit[0] is not slack:
            hit = _bridges[id(slack)] = (slack, SlackBridge(slack))
        return hit[1]
