"""Credential vending latency, uncached: POST /api/v1/credentials round trips against moto.

A real `hoop server` process (SQLite by default, or --database-url) and a real `moto_server`
process; the client is the stdlib HTTP client the shim uses. Each request re-parses the argv,
evaluates the policy, calls STS AssumeRole (moto) and records the grant. For comparison the
script also times a bare AssumeRole against the same moto (what the broker adds on top).

    .venv/bin/python benchmarks/credential_vending.py [--n 50] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLE = "arn:aws:iam::123456789012:role/bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"| {name} | {pct(ms, .5):.1f} ms | {pct(ms, .95):.1f} ms | {pct(ms, .99):.1f} ms "
            f"| {statistics.mean(ms):.1f} ms | {len(ms)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import boto3

    from hoopcli.client import Client
    from hoopcli.server.idp.keys import mint_id_token
    from hoopcli.server.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="hoop-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HOOP_"))}
    env.update(HOOP_HOME=str(work / "home"), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(work / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(work / "none"))
    moto_port, port = free_port(), free_port()
    moto_bin = Path(sys.executable).with_name("moto_server")
    moto = subprocess.Popen([str(moto_bin) if moto_bin.exists() else "moto_server", "-H", "127.0.0.1",
                             "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    moto_url = f"http://127.0.0.1:{moto_port}"
    config = work / "server.yaml"
    config.write_text(f"connections:\n  default: {{role_arn: '{ROLE}', endpoint_url: '{moto_url}'}}\n"
                      "log_level: warning\n")
    cmd = [sys.executable, "-m", "hoopcli", "server", "--config", str(config), "--port", str(port)]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(moto_url + "/moto-api/", moto)
        wait_up(url + "/api/v1/health", server)
        settings = load_settings(config, env=env, port=port)
        token = mint_id_token(settings, "bench", "bench@example.com", ())
        client = Client(url, token=token, timeout=30)

        body = {"connection": "default", "session_id": "bench-session", "argv": ["s3api", "list-buckets"]}
        for _ in range(5):  # warm-up: imports, connection pools, first key load
            client.post("/api/v1/credentials", json=body)
        vend: list[float] = []
        for i in range(args.n):
            body["argv"] = ["s3api", "list-objects-v2", "--bucket", f"bucket-{i}"]
            t0 = time.perf_counter()
            response = client.post("/api/v1/credentials", json=body)
            vend.append(time.perf_counter() - t0)
            assert response.status == 200, response.body[:200]

        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        bare: list[float] = []
        for i in range(args.n):
            t0 = time.perf_counter()
            sts.assume_role(RoleArn=ROLE, RoleSessionName=f"bare-{i}", DurationSeconds=900)
            bare.append(time.perf_counter() - t0)

        db = "PostgreSQL" if args.database_url else "SQLite"
        print(f"credential vending, uncached, {db}, n={args.n}")
        print("| what | p50 | p95 | p99 | mean | n |")
        print("|---|---|---|---|---|---|")
        print(line(f"POST /api/v1/credentials (parse + policy + AssumeRole + grant row), {db}", vend))
        print(line("bare STS AssumeRole against the same moto_server", bare))
    finally:
        for proc in (server, moto):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
