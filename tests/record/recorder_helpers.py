"""Helpers of the recorder tests: record builders, a login, and a small real HTTP ingest server
(POST /api/v1/records, idempotent by id).

It stands in for the ledger's endpoint where the tests need to break the server on purpose (down,
failing, refusing a record). It validates records with hoopcli.transcript.schema like the real server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hoopcli.paths import Layout
from hoopcli.record import shapes as recorder
from hoopcli.transcript import schema as transcript

WRITER = Path(__file__).with_name("writer.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Ingest:
    """Records received, keyed by id; `posts` counts every delivery attempt of each id."""

    def __init__(self, port: int | None = None, token: str = "test-token") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.stored: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, int] = {}
        self.fail_next = 0          # answer 500 to this many requests
        self.forget: set[str] = set()  # ids answered neither accepted nor duplicate
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> Ingest:
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/api/v1/records":
                    return self._answer(404, {"detail": "not found"})
                if self.headers.get("Authorization") != f"Bearer {ingest.token}":
                    return self._answer(401, {"detail": "not authenticated"})
                with ingest.lock:
                    if ingest.fail_next > 0:
                        ingest.fail_next -= 1
                        return self._answer(500, {"detail": "boom"})
                try:
                    records = json.loads(raw)["records"]
                except (ValueError, KeyError, TypeError):
                    return self._answer(422, {"detail": "body must be {records: [...]}"})
                for i, rec in enumerate(records):
                    errors = transcript.validate(rec)
                    if errors:
                        return self._answer(422, {"detail": f"records[{i}]: {errors[0]}"})
                accepted, duplicates = [], []
                with ingest.lock:
                    for rec in records:
                        rid = rec["id"]
                        ingest.posts[rid] = ingest.posts.get(rid, 0) + 1
                        if rid in ingest.forget:
                            continue
                        if rid in ingest.stored:
                            duplicates.append(rid)
                        else:
                            ingest.stored[rid] = rec
                            accepted.append(rid)
                self._answer(200, {"accepted": accepted, "duplicates": duplicates})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def make_result(seq: int = 0, session: str = "sess-1", **kw: Any) -> dict[str, Any]:
    return recorder.record_result(command_id=recorder.new_id(), session_id=session, seq=seq,
                                  exit_code=kw.pop("exit_code", 0), stdout=kw.pop("stdout", "ok\n"),
                                  stderr=kw.pop("stderr", ""), **kw)


def make_start(seq: int = 0, session: str = "sess-1", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(command_id=recorder.new_id(), session_id=session, seq=seq,
                                user="alice@example.com", agent="claude", host="build-7",
                                cwd="/work", connection="default", argv=["s3", "ls"],
                                invocation={"service": "s3", "operation": "ls"},
                                decision={"effect": "allow", "rule": "r1", "reason": None})
    base.update(kw)
    return recorder.record_start(**base)


def log_in(layout: Layout, server_url: str, token: str) -> None:
    """What `hoop login` leaves behind for the hot path (hoopcli.identity.tokens's session file)."""
    path = layout.cache_dir / "session.json"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps({"server": server_url, "id_token": token,
                                "expires_at": time.time() + 3600}))
    path.chmod(0o600)


class Gate:
    """A TCP forwarder on a fixed port in front of a server: `down()` refuses connections the way a
    server that is not running does, `up()` forwards again. Lets a test take a real server "down"
    and bring it "back" on the same URL."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._sock: socket.socket | None = None

    def up(self) -> Gate:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()
        return self

    def down(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
