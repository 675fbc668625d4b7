"""What any HTTP hop written in Python adds on this machine, beside what the gateway adds.

    .venv/bin/python benchmarks/proxy_floor.py [--requests 600]

One boto3 client sends 1 KiB GetObjects to a real moto_server four ways, interleaved (the order
rotates every round, so machine load weighs on each alike):

    direct    boto3 -> moto
    bare      boto3 -> a pass-through proxy: asyncio + httptools, no ASGI, nothing checked; the
              request's bytes forwarded as they came, the answer's bytes relayed as they come
    asgi      boto3 -> uvicorn (httptools) + a raw ASGI app + aiohttp: the gateway's own stack
              with none of hoop's steps (no signature, decode, policy, re-signing or record)
    gateway   boto3 -> a real `hoop server` gateway (session credential, policy, masking, record)

Printed: p50 and p90 per way and each way's added p50 over direct. The first two rows are the
floor a gateway in CPython starts from here; the difference between asgi and gateway is hoop's
own work per request. Nothing here is asserted.

    .venv/bin/python benchmarks/proxy_floor.py --big-mib 512 [--rounds 3]

The same question for a large download: one GetObject of N MiB read in 1 MiB pieces, the ways
rotating each round, MiB/s from the median round and the ratio to direct. Two more ways, below
any HTTP proxy: `relay` (asyncio streams copying the bytes of the TCP connection, no HTTP at all)
and `splice` (os.splice between the two sockets in threads: the bytes never enter user space).
`asgi` is left out here (it reads an answer whole).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as gw  # benchmarks/gateway.py: Stack, s3_client, free_port, wait_up

KEY = "one-kib"


# -- the two pass-through proxies (run as `proxy_floor.py --serve KIND PORT UPSTREAM_PORT`) ----------

def serve_bare(port: int, upstream: int) -> None:
    import httptools

    class Up(asyncio.Protocol):
        def __init__(self, down: asyncio.Transport, done: asyncio.Future[None]) -> None:
            self.down, self.done = down, done
            self.parser = httptools.HttpResponseParser(self)

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.down.write(data)
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    class Down(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, bytearray()
            self.parser = httptools.HttpRequestParser(self)
            self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self.relay())

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.queue.put_nowait(bytes(self.buffer))
            self.buffer = bytearray()

        def connection_lost(self, exc: Exception | None) -> None:
            self.queue.put_nowait(None)

        async def relay(self) -> None:
            loop = asyncio.get_running_loop()
            while (request := await self.queue.get()) is not None:
                done: asyncio.Future[None] = loop.create_future()
                up, _ = await loop.create_connection(functools.partial(Up, self.transport, done), "127.0.0.1",
                                                     upstream)
                up.write(request)
                await done

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Down, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def serve_asgi(port: int, upstream: int) -> None:
    import aiohttp
    import uvicorn
    from yarl import URL

    base = f"http://127.0.0.1:{upstream}"
    sessions: list[aiohttp.ClientSession] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if not sessions:
            sessions.append(aiohttp.ClientSession(auto_decompress=False, skip_auto_headers=(
                "User-Agent", "Accept", "Accept-Encoding", "Content-Type")))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        async with sessions[0].request(scope["method"], URL(base + target.decode("latin-1"), encoded=True),
                                       data=body or None, headers=headers, allow_redirects=False) as response:
            answer = await response.read()
            out = [(k, v) for k, v in response.raw_headers
                   if k.lower() not in (b"connection", b"transfer-encoding", b"content-length", b"date", b"server")]
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [*out, (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, http="httptools", ws="none", lifespan="off",
                log_level="warning", server_header=False, date_header=True)


def serve_relay(port: int, upstream: int) -> None:
    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while piece := await reader.read(1 << 20):
                writer.write(piece)
                await writer.drain()
        finally:
            writer.close()

    async def handle(down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream, limit=1 << 20)
        await asyncio.gather(pipe(down_r, up_w), pipe(up_r, down_w), return_exceptions=True)

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20)
        await server.serve_forever()

    asyncio.run(main())


def serve_splice(port: int, upstream: int) -> None:
    import socket
    import threading

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        r, w = os.pipe()
        try:
            while n := os.splice(src.fileno(), w, 1 << 20):
                while n:
                    n -= os.splice(r, dst.fileno(), n)
        except OSError:
            pass
        finally:
            for end in (r, w):
                os.close(end)
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    listener = socket.create_server(("127.0.0.1", port))
    while True:
        down, _ = listener.accept()
        up = socket.create_connection(("127.0.0.1", upstream))
        for src, dst in ((down, up), (up, down)):
            threading.Thread(target=one_way, args=(src, dst), daemon=True).start()


SERVE = {"bare": serve_bare, "asgi": serve_asgi, "relay": serve_relay, "splice": serve_splice}


# -- the measurement -------------------------------------------------------------------------------

def big(clients: dict[str, Any], mib: int, rounds: int) -> None:
    clients["direct"].put_object(Bucket=gw.BUCKET, Key="big", Body=os.urandom(1 << 20) * mib)
    speeds: dict[str, list[float]] = {name: [] for name in clients}
    order = list(clients)
    for _ in range(rounds):
        order = order[1:] + order[:1]
        for name in order:
            t0 = time.perf_counter()
            body = clients[name].get_object(Bucket=gw.BUCKET, Key="big")["Body"]
            got = 0
            while piece := body.read(1 << 20):
                got += len(piece)
            assert got == mib << 20, (name, got)
            speeds[name].append(mib / (time.perf_counter() - t0))
    base = statistics.median(speeds["direct"])
    print(f"| way | {mib} MiB down, MiB/s (median of {rounds}) | each round | / direct |")
    print("|---|---|---|---|")
    for name, values in speeds.items():
        print(f"| {name} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} | "
              f"**{statistics.median(values) / base:.2f}** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="measured requests per way")
    parser.add_argument("--big-mib", type=int, default=0, help="a large download of N MiB instead")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the large download")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "UPSTREAM_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, port, upstream = args.serve
        SERVE[kind](int(port), int(upstream))
        return

    import boto3

    work = Path(tempfile.mkdtemp(prefix="hoop-proxy-floor-"))
    stack = gw.Stack(work).start()
    proxies: list[subprocess.Popen[bytes]] = []
    try:
        kinds = ("relay", "splice", "bare") if args.big_mib else ("bare", "asgi")
        ports = {kind: gw.free_port() for kind in kinds}
        for kind, port in ports.items():
            proxies.append(subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port),
                                             str(stack.moto_port)], env=stack.env))
            gw.wait_up(f"http://127.0.0.1:{port}/", proxies[-1])
        session = boto3.session.Session()
        _sid, cred = stack.session_credential()
        clients = {"direct": gw.s3_client(session, stack.moto_url, "testing", "testing")}
        for kind, port in ports.items():
            clients[kind] = gw.s3_client(session, f"http://127.0.0.1:{port}", "testing", "testing")
        clients["gateway"] = gw.s3_client(session, cred["endpoint_url"], cred["access_key_id"],
                                          cred["secret_access_key"])
        clients["direct"].create_bucket(Bucket=gw.BUCKET)
        clients["direct"].put_object(Bucket=gw.BUCKET, Key=KEY, Body=os.urandom(1024))
        print(f"command: .venv/bin/python benchmarks/proxy_floor.py {' '.join(sys.argv[1:])}")
        print(f"load at start {gw.load()}")
        if args.big_mib:
            big(clients, args.big_mib, args.rounds)
            print(f"load at end {gw.load()}")
            return
        times: dict[str, list[float]] = {name: [] for name in clients}
        order = list(clients)
        for i in range(args.requests + 50):
            order = order[1:] + order[:1]
            for name in order:
                t0 = time.perf_counter()
                clients[name].get_object(Bucket=gw.BUCKET, Key=KEY)["Body"].read()
                if i >= 50:                                  # the first 50 rounds warm every way up
                    times[name].append(time.perf_counter() - t0)
        base = statistics.median(times["direct"])
        print("| way | p50 ms | p90 ms | added p50 ms |")
        print("|---|---|---|---|")
        for name, values in times.items():
            values.sort()
            p50 = statistics.median(values)
            print(f"| {name} | {p50 * 1000:.2f} | {values[int(0.9 * (len(values) - 1))] * 1000:.2f} | "
                  f"{(p50 - base) * 1000:.2f} |")
        print(f"load at end {gw.load()}")
    finally:
        for proc in proxies:
            gw.Stack._stop(proc)
        stack.stop()


if __name__ == "__main__":
    main()
