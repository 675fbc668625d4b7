"""`hoop sync` and `hoop status` as a user runs them (real processes, exact lines and exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from recorder_helpers import Ingest, free_port, log_in, make_result, make_start

from hoopcli.paths import Layout
from hoopcli.record.spool import Spool


def hoop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hoopcli", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, timeout=120)


def _fill(layout: Layout, n: int) -> list[str]:
    spool = Spool(layout)
    ids = []
    for i in range(n):
        rec = make_start(seq=i) if i % 2 == 0 else make_result(seq=i)
        spool.append(rec)
        ids.append(rec["id"])
    return ids


def test_sync_with_an_empty_spool_says_so(layout: Layout) -> None:
    done = hoop("sync")
    assert (done.returncode, done.stdout, done.stderr) == (0, "nothing to upload: the spool is empty\n", "")


def test_sync_when_the_server_is_down_keeps_the_records_and_exits_69(layout: Layout) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    log_in(layout, url, "test-token")
    _fill(layout, 4)
    done = hoop("sync", "--server", url)
    assert done.returncode == 69
    assert done.stderr.startswith(f"hoop: cannot reach the hoop server at {url} (")
    assert done.stderr.endswith("; sent 0 of 4 records, 4 still pending; the records stay in the "
                                "local spool; run `hoop sync` again later\n")
    assert len(Spool(layout).pending()) == 4


def test_sync_uploads_everything_and_reports(layout: Layout, ingest: Ingest) -> None:
    log_in(layout, ingest.url, "test-token")
    ids = _fill(layout, 5)
    done = hoop("sync", env={"HOOP_SERVER": ingest.url})
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"sent 5 records to {ingest.url}; 0 pending; 0 quarantined\n"
    assert set(ingest.stored) == set(ids)


def test_sync_when_not_logged_in_exits_65_and_keeps_the_records(layout: Layout, ingest: Ingest) -> None:
    _fill(layout, 2)
    done = hoop("sync", "--server", ingest.url)
    assert done.returncode == 65
    assert done.stderr == f"hoop: not logged in to {ingest.url}; run `hoop login`\n"
    assert len(Spool(layout).pending()) == 2


def test_sync_reports_records_the_server_refused(layout: Layout, ingest: Ingest) -> None:
    log_in(layout, ingest.url, "test-token")
    _fill(layout, 2)
    bad = make_start()
    bad["decision"] = {"effect": "maybe"}
    Spool(layout).append(bad)
    done = hoop("sync", "--server", ingest.url)
    assert done.returncode == 1
    assert done.stdout == f"sent 2 records to {ingest.url}; 0 pending; 1 quarantined\n"
    assert done.stderr == (f"hoop: 1 records were not accepted; the reasons are in "
                           f"{layout.spool_dir / 'quarantine'}/*.reason (see `hoop status`)\n")


def test_status_shows_pending_quarantined_oldest_age_and_the_uploader(layout: Layout) -> None:
    empty = hoop("status", "--json")
    assert empty.returncode == 0
    info = json.loads(empty.stdout)
    assert (info["pending"], info["quarantined"], info["oldest_pending_age_seconds"],
            info["uploader"]) == (0, 0, None, "not running")
    _fill(layout, 3)
    (layout.spool_dir / f"1000000000000000000-{'ab' * 16}.rec").write_bytes(b"junk")
    Spool(layout).load(layout.spool_dir / f"1000000000000000000-{'ab' * 16}.rec")
    info = json.loads(hoop("status", "--json").stdout)
    assert (info["pending"], info["quarantined"], info["uploader"]) == (3, 1, "not running")
    assert 0 <= info["oldest_pending_age_seconds"] < 120
    text = hoop("status")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0] == f"spool:        {layout.spool_dir}"
    assert lines[1].startswith("pending:      3 records (oldest ") and lines[1].endswith("s)")
    assert lines[2:] == ["quarantined:  1 files", "uploader:     not running"]
