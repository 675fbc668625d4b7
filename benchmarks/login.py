"""Login figures: the device-flow round trip against the dev IdP, refresh, and the shim's fast path.

    .venv/bin/python benchmarks/login.py [--rounds N] [--fast-calls N]

Starts a real hoop server (uvicorn in a thread, SQLite, built-in dev IdP, polling interval 1 s)
and prints:
  * discovery (GET /api/v1/config + the issuer's discovery document), the device authorization
    request, the token request that returns the tokens once the person has approved, and a
    refresh-token exchange, each as one HTTP round trip from the client code `hoop login` uses;
  * a whole `login` (discover, start, approve at once from another thread, poll, store tokens):
    dominated by the polling interval the provider sets;
  * `hoopcli.identity.tokens.id_token()` with a fresh cached ID token (the shim's hot path), in µs, and,
    for comparison, what opening the keyring would cost a fresh process.
Figures go into docs/benchmarks.md under "## Login".
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "idp"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def line(name: str, values: list[float], unit: str = "ms") -> None:
    print(f"  {name:<52} n={len(values):<6} p50={pct(values, 50):9.3f} {unit}  "
          f"p95={pct(values, 95):9.3f} {unit}  p99={pct(values, 99):9.3f} {unit}")


def start_server(home: Path) -> Any:
    import uvicorn
    from human import users_config

    from hoopcli.server.app import create_app
    from hoopcli.server.idp.routes import provider_for
    from hoopcli.server.settings import load_settings

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = load_settings(env={}, listen=f"127.0.0.1:{port}", home=str(home / "server"),
                             users=users_config())
    app = create_app(settings)
    provider_for(app).interval = 1
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return settings.public_url, server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fast-calls", type=int, default=20000)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="hoop-bench-login-"))
    os.environ["HOOP_HOME"] = str(home)
    os.environ["HOOP_TOKEN_STORE"] = "file"
    from human import sign_in

    from hoopcli.config import load
    from hoopcli.identity import device as flow
    from hoopcli.identity import tokens as auth
    from hoopcli.paths import Layout

    url, server = start_server(home)
    layout = Layout.from_env()
    cfg = load(layout=layout, server=url)
    discover, device, token, refresh, whole = [], [], [], [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        info = flow.discover(url)
        t1 = time.perf_counter()
        grant = flow.start(info)
        t2 = time.perf_counter()
        sign_in(grant.verification_uri_complete)
        slept: list[float] = []
        t3 = time.perf_counter()
        tokens = flow.poll(info, grant, sleep=slept.append)  # approved already: one token request
        t4 = time.perf_counter()
        session = auth.store_tokens(layout, "file", info.meta(), tokens)
        rt = auth.load_refresh_token(layout, "file", url)
        t5 = time.perf_counter()
        flow.refresh_tokens(session, str(rt))
        t6 = time.perf_counter()
        discover.append((t1 - t0) * 1e3)
        device.append((t2 - t1) * 1e3)
        token.append((t4 - t3) * 1e3)
        refresh.append((t6 - t5) * 1e3)
    for _ in range(max(3, args.rounds // 4)):
        t0 = time.perf_counter()
        info = flow.discover(url)
        grant = flow.start(info)
        threading.Thread(target=sign_in, args=(grant.verification_uri_complete,)).start()
        auth.store_tokens(layout, "file", info.meta(), flow.poll(info, grant))
        whole.append((time.perf_counter() - t0) * 1e3)

    fast: list[float] = []
    token_value = auth.id_token(layout, cfg)
    for _ in range(args.fast_calls):
        t0 = time.perf_counter_ns()
        assert auth.id_token(layout, cfg) is token_value or True
        fast.append((time.perf_counter_ns() - t0) / 1e3)

    probe = ("import time; t=time.perf_counter(); import keyring; keyring.get_keyring(); "
             "print((time.perf_counter()-t)*1e3)")
    keyring_open = [float(subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                         text=True, check=True).stdout) for _ in range(5)]
    server.should_exit = True

    print(f"Login against the dev IdP at {url} (SQLite; {args.rounds} rounds)")
    line("discovery (config + openid-configuration)", discover)
    line("device authorization request", device)
    line("token request after approval (id + refresh token)", token)
    line("refresh-token exchange", refresh)
    line("whole login, person approves at once (interval 1 s)", whole)
    print("Shim fast path")
    line("auth.id_token() with a fresh cached token", fast, "µs")
    line("import keyring + get_keyring() in a new process", keyring_open)
    print(json.dumps({"id_token_fast_path_p50_us": round(pct(fast, 50), 2)}))


if __name__ == "__main__":
    main()
