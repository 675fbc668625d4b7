"""`hoop sync` (upload the spool now) and `hoop status` (what is waiting, what is quarantined)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from hoopcli.errors import Unavailable
from hoopcli.paths import Layout


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def spool_status(layout: Layout) -> dict[str, Any]:
    """Counts and uploader state for `hoop status` (and `hoop doctor`)."""
    from hoopcli.record.spool import Spool
    from hoopcli.record.uploader import read_state, uploader_pid

    spool = Spool(layout)
    pid = uploader_pid(layout)
    state = read_state(layout)
    if pid is None:
        uploader = "not running"
    else:
        uploader = state.get("state") or "running"
    info: dict[str, Any] = {
        "spool_dir": str(spool.dir),
        "pending": len(spool.pending()),
        "quarantined": len(spool.quarantined()),
        "oldest_pending_age_seconds": spool.oldest_age(),
        "uploader": uploader,
        "uploader_pid": pid or None,
        "last_error": state.get("last_error"),
        "last_success": state.get("last_success"),
    }
    if pid is not None and state.get("next_retry"):
        info["next_retry_in_seconds"] = max(0.0, float(state["next_retry"]) - time.time())
    return info


@click.command()
@click.option("--server", "server", default=None, help="Server URL (default: HOOP_SERVER or config).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send at most this many records.")
def sync(server: str | None, limit: int | None) -> None:
    """Upload the local spool of transcript records now and report what was sent."""
    from hoopcli import config
    from hoopcli.client import ServerError, for_user
    from hoopcli.record.spool import Spool
    from hoopcli.record.upload import upload

    env = os.environ
    layout = Layout.from_env(env)
    cfg = config.load(env, layout, server=server)
    spool = Spool(layout)
    spool.clean_tmp()
    before = len(spool.pending())
    if before == 0:
        click.echo("nothing to upload: the spool is empty")
        return

    client = for_user(env, server=server, layout=layout)
    try:
        sent, failed = upload(spool, client, limit)
    except Unavailable as exc:
        left = len(spool.pending())
        raise Unavailable(f"{exc.message}; sent {before - left} of {before} records, {left} still pending",
                          hint="the records stay in the local spool; run `hoop sync` again later") from exc
    left = len(spool.pending())
    quarantined = len(spool.quarantined())
    click.echo(f"sent {sent} records to {cfg.server}; {left} pending; {quarantined} quarantined")
    if failed:
        raise ServerError(f"{failed} records were not accepted; the reasons are in "
                          f"{spool.quarantine_dir}/*.reason (see `hoop status`)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Show the local spool: pending and quarantined records, the oldest pending record's age,
    and whether the background uploader runs."""
    layout = Layout.from_env()
    info = spool_status(layout)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(f"spool:        {info['spool_dir']}")
    click.echo(f"pending:      {info['pending']} records (oldest {_age(info['oldest_pending_age_seconds'])})")
    click.echo(f"quarantined:  {info['quarantined']} files")
    line = info["uploader"] + (f" (pid {info['uploader_pid']})" if info["uploader_pid"] else "")
    if "next_retry_in_seconds" in info:
        line += f", next retry in {info['next_retry_in_seconds']:.0f}s"
    click.echo(f"uploader:     {line}")
    if info["last_error"]:
        click.echo(f"last error:   {info['last_error']}")
