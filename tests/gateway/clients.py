"""Real AWS clients as test harness: boto3, the AWS CLI v2 and the AWS SDK for JavaScript v3, each
run as its own process with exactly the environment a test gives it.

- run_js(env, service, operation, params, body_file=, body_as=, out_file=) -> dict and
  run_boto3(env, service, operation, params, body_file=, body_as=, out_file=) -> dict answer alike:
    {"ok": True, "output": {...}, "http_status": 200, "attempts": 1, "request_id": ...}
    {"ok": False, "code": "NoSuchKey", "message": ..., "http_status": 404, "attempts": 1, ...}
  plus "exit_code" (0 ok, 1 the call failed) and "stderr". ``operation`` is the API name
  ("GetObject"); a streamed response body (GetObject's Body) comes back as
  {"bytes": N, "sha256": hex} (and is written to out_file if given), bytes as {"$base64": ...};
  {"$base64": ...} in params is sent as bytes. body_file becomes params["Body"]: for JS a
  fs.ReadStream unless body_as="buffer"; for boto3 an open file unless body_as="buffer".
  A broken harness (unknown operation, unparsable answer) raises HarnessError instead.
- run_cli_v2(env, args) -> (exit_code, stdout, stderr): ``aws <args>`` with the v2 binary;
  run_cli_v2_op(env, service, operation, params, body_file=, out_file=) -> dict answers like
  run_js (http_status and attempts None: the CLI does not print them), and
  run_client("boto3" | "cli_v2" | "js", env, service, operation, params, **kw) picks one.
- cli_v2_path() -> str | None, node_ready() -> bool; require_cli_v2() / require_node() fail the
  test (never skip it) when a client is missing: `make test` installs them.
- trap_server(status=200, body=b"", tls=False): a recording HTTP(S) server on 127.0.0.1.

Environment: each client gets the developer's environment minus every AWS_* / HOOP_* variable and
proxy setting, then ``env``, then defaults for what is still unset: AWS_CONFIG_FILE and
AWS_SHARED_CREDENTIALS_FILE point at empty files, AWS_EC2_METADATA_DISABLED=true,
AWS_REGION and AWS_DEFAULT_REGION mirror each other (the JS SDK reads only the first, botocore
only the second), AWS_PAGER="" and NODE_NO_WARNINGS=1. AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS and
AWS_RETRY_MODE are read by each client itself (unset: the client's own default), except that
the Debian CLI v2 (2.9.x) predates AWS_ENDPOINT_URL (2.13): run_cli_v2 then adds
``--endpoint-url`` from it. S3 is path-style in the JS SDK and boto3 (forced) and in the CLI for
an IP-address endpoint (the endpoint rules choose it).

Run directly, this file is the boto3 child process run_boto3 starts (JSON request on stdin).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
JS_CLIENT = JS_DIR / "client.mjs"
JS_PACKAGES = ("client-s3", "client-secrets-manager", "client-iam", "client-sts", "client-sqs")
CLI_V2_CANDIDATES = ("/usr/bin/aws", "/usr/local/bin/aws")
DEFAULT_TIMEOUT = 180.0
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


class HarnessError(AssertionError):
    """The harness itself broke (as opposed to the call failing): a bad request or a client
    that did not answer with one JSON line."""


# -- environment ----------------------------------------------------------------------------------

_scratch: Path | None = None


def _scratch_dir() -> Path:
    """A per-process directory holding the empty AWS config and credentials files."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="hoop-clients-"))
        (_scratch / "config").write_text("")
        (_scratch / "credentials").write_text("")
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def client_env(env: Mapping[str, str]) -> dict[str, str]:
    """The whole environment a client process gets for ``env`` (see the module docstring)."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "HOOP_")) and k.lower() not in _PROXY_VARS}
    out.update(env)
    scratch = _scratch_dir()
    out.setdefault("AWS_CONFIG_FILE", str(scratch / "config"))
    out.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "credentials"))
    out.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    out.setdefault("AWS_PAGER", "")
    out.setdefault("NODE_NO_WARNINGS", "1")
    if "AWS_REGION" in out and "AWS_DEFAULT_REGION" not in out:
        out["AWS_DEFAULT_REGION"] = out["AWS_REGION"]
    elif "AWS_DEFAULT_REGION" in out and "AWS_REGION" not in out:
        out["AWS_REGION"] = out["AWS_DEFAULT_REGION"]
    return out


def _fail(message: str) -> None:
    import pytest

    pytest.fail(message, pytrace=False)


def _parse_answer(client: str, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        if len(lines) != 1:
            raise ValueError(f"{len(lines)} lines")
        result = json.loads(lines[0])
        if not isinstance(result, dict) or "ok" not in result:
            raise ValueError("not an answer object")
    except ValueError as exc:
        raise HarnessError(f"{client} did not answer with one JSON line ({exc}), exit {proc.returncode}:\n"
                           f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}") from None
    if result.get("harness_error") or proc.returncode not in (0, 1):
        raise HarnessError(f"{client}: {result.get('message')} (exit {proc.returncode})\n"
                           f"stderr: {proc.stderr[-4000:]}")
    result["exit_code"] = proc.returncode
    result["stderr"] = proc.stderr
    return result


def _request(service: str, operation: str, params: Mapping[str, Any] | None, body_file: str | os.PathLike[str] | None,
             body_as: str | None, out_file: str | os.PathLike[str] | None) -> str:
    request: dict[str, Any] = {"service": service, "operation": operation, "params": dict(params or {})}
    if body_file is not None:
        request["body_file"] = str(body_file)
    if body_as is not None:
        request["body_as"] = body_as
    if out_file is not None:
        request["out_file"] = str(out_file)
    return json.dumps(request)


# -- JavaScript SDK v3 ----------------------------------------------------------------------------

def node_path() -> str | None:
    return shutil.which("node")


def node_ready() -> bool:
    """node is on PATH and tests/gateway/js has its npm packages installed."""
    modules = JS_DIR / "node_modules" / "@aws-sdk"
    return node_path() is not None and all((modules / name / "package.json").is_file() for name in JS_PACKAGES)


def require_node() -> str:
    node = node_path()
    if node is None:
        _fail("node is not installed: the gateway client tests run the AWS SDK for JavaScript v3 "
              "with Node.js (`make test` installs it via `make system-deps`)")
    if not node_ready():
        _fail(f"the AWS SDK for JavaScript v3 is not installed in {JS_DIR}: `make test` installs it "
              "(`make node-deps` runs npm install there)")
    assert node is not None
    return node


def js_sdk_version() -> str:
    data = json.loads((JS_DIR / "node_modules" / "@aws-sdk" / "client-s3" / "package.json").read_text())
    return str(data["version"])


def run_js(env: Mapping[str, str], service: str, operation: str, params: Mapping[str, Any] | None = None, *,
           body_file: str | os.PathLike[str] | None = None, body_as: str | None = None,
           out_file: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One AWS SDK for JavaScript v3 command (``operation`` without "Command") in a node process."""
    node = require_node()
    proc = subprocess.run([node, str(JS_CLIENT)], input=_request(service, operation, params, body_file, body_as, out_file),
                          capture_output=True, text=True, env=client_env(env), cwd=JS_DIR, timeout=timeout)
    return _parse_answer("the JS SDK", proc)


# -- boto3 ----------------------------------------------------------------------------------------

def run_boto3(env: Mapping[str, str], service: str, operation: str, params: Mapping[str, Any] | None = None, *,
              body_file: str | os.PathLike[str] | None = None, body_as: str | None = None,
              out_file: str | os.PathLike[str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One boto3 call in a child Python process whose environment is exactly client_env(env): the
    client is built by boto3 from that environment alone (endpoint, keys, region, retries)."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())],
                          input=_request(service, operation, params, body_file, body_as, out_file),
                          capture_output=True, text=True, env=client_env(env), timeout=timeout)
    return _parse_answer("boto3", proc)


def _to_json(value: Any, out_file: str | None) -> Any:
    if isinstance(value, dict):
        return {k: _to_json(v, out_file) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, out_file) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$base64": base64.b64encode(value).decode()}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if hasattr(value, "iter_chunks"):  # botocore's StreamingBody
        digest, size = hashlib.sha256(), 0
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(out_file, "wb")) if out_file else None
            for chunk in value.iter_chunks(1 << 16):
                digest.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
        return {"bytes": size, "sha256": digest.hexdigest()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$base64"}:
            return base64.b64decode(value["$base64"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _boto3_child() -> int:
    """The child process of run_boto3: one request on stdin, one JSON line on stdout."""
    def answer(result: dict[str, Any], code: int) -> int:
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
        return code

    try:
        import boto3
        import botocore.config
        import botocore.exceptions
        from botocore import xform_name

        request = json.loads(sys.stdin.read())
        service, operation = request["service"], request["operation"]
        config = botocore.config.Config(s3={"addressing_style": "path"}) if service == "s3" else None
        client = boto3.session.Session().client(service, config=config)
        if operation not in client.meta.service_model.operation_names:
            raise ValueError(f"{service} has no operation {operation}")
        params = _from_json(request.get("params") or {})
        with contextlib.ExitStack() as stack:
            if request.get("body_file"):
                if request.get("body_as", "file") == "buffer":
                    params["Body"] = Path(request["body_file"]).read_bytes()
                else:
                    params["Body"] = stack.enter_context(open(request["body_file"], "rb"))
            method = getattr(client, xform_name(operation))
            try:
                response = method(**params)
            except botocore.exceptions.ClientError as exc:
                meta = exc.response.get("ResponseMetadata", {})
                error = exc.response.get("Error", {})
                return answer({"ok": False, "code": error.get("Code"), "message": error.get("Message", str(exc)),
                               "http_status": meta.get("HTTPStatusCode"),
                               "attempts": meta.get("RetryAttempts", 0) + 1 if meta else None,
                               "request_id": meta.get("RequestId"),
                               "fault": "client" if 400 <= meta.get("HTTPStatusCode", 0) < 500 else "server"}, 1)
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                return answer({"ok": False, "code": type(exc).__name__, "message": str(exc),
                               "http_status": None, "attempts": None, "request_id": None, "fault": None}, 1)
            meta = response.pop("ResponseMetadata", {})
            try:
                output = _to_json(response, request.get("out_file"))
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                return answer({"ok": False, "code": type(exc).__name__,
                               "message": f"reading the response body: {exc}",
                               "http_status": meta.get("HTTPStatusCode"), "attempts": meta.get("RetryAttempts", 0) + 1,
                               "request_id": meta.get("RequestId"), "fault": None}, 1)
        return answer({"ok": True, "output": output, "http_status": meta.get("HTTPStatusCode"),
                       "attempts": meta.get("RetryAttempts", 0) + 1, "request_id": meta.get("RequestId")}, 0)
    except Exception as exc:
        return answer({"ok": False, "harness_error": True, "code": "HarnessError",
                       "message": f"{type(exc).__name__}: {exc}"}, 2)


# -- AWS CLI v2 -----------------------------------------------------------------------------------

def _aws_version(path: str) -> str:
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                              env=client_env({}))
    except (OSError, subprocess.SubprocessError):
        return ""
    return (proc.stdout or proc.stderr).strip()


@lru_cache(maxsize=1)
def cli_v2_path() -> str | None:
    """The first `aws` binary whose `aws --version` starts with aws-cli/2: the Debian package's
    /usr/bin/aws first, then every `aws` on PATH (v1 sits there too: pyenv's shim, the venv's)."""
    candidates = list(CLI_V2_CANDIDATES)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(os.path.join(directory, "aws"))
    seen: set[str] = set()
    for path in candidates:
        if path in seen or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        seen.add(path)
        if _aws_version(path).startswith("aws-cli/2"):
            return path
    return None


def require_cli_v2() -> str:
    path = cli_v2_path()
    if path is None:
        _fail("the AWS CLI v2 is not installed (no `aws` whose --version says aws-cli/2; the one on "
              "PATH may be v1): `make test` installs Debian's awscli package via `make system-deps`")
    assert path is not None
    return path


@lru_cache(maxsize=1)
def cli_v2_version() -> tuple[int, ...]:
    match = re.match(r"aws-cli/(\d+)\.(\d+)\.(\d+)", _aws_version(require_cli_v2()))
    return tuple(int(p) for p in match.groups()) if match else (0, 0, 0)


def cli_v2_reads_endpoint_env() -> bool:
    """AWS_ENDPOINT_URL (service-specific endpoints) arrived in AWS CLI 2.13.0."""
    return cli_v2_version() >= (2, 13, 0)


def run_cli_v2(env: Mapping[str, str], args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
               input: str | None = None) -> tuple[int, str, str]:
    """``aws <args>`` with the CLI v2 binary and exactly client_env(env). With a CLI older than
    2.13, AWS_ENDPOINT_URL in env becomes --endpoint-url (unless args already name one)."""
    aws = require_cli_v2()
    full_env = client_env(env)
    argv = [aws, *args]
    endpoint = full_env.get("AWS_ENDPOINT_URL")
    if endpoint and not cli_v2_reads_endpoint_env() and not any(a.startswith("--endpoint-url") for a in args):
        argv += ["--endpoint-url", endpoint]
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout, input=input)
    return proc.returncode, proc.stdout, proc.stderr


_CLI_ERROR = re.compile(r"An error occurred \((?P<code>[^)]*)\)(?: when calling the \w+ operation)?"
                        r"(?: \(reached max retries: (?P<retries>\d+)\))?: (?P<message>.*)", re.S)
_CLI_SERVICE = {"s3": "s3api"}
_CLI_SERVICE_ERROR_EXIT = 254  # https://docs.aws.amazon.com/cli/latest/topic/return-codes.html
_CLI_USAGE_ERROR_EXIT = 252


def _cli_params(value: Any) -> Any:
    """{"$base64": ...} -> the base64 text itself: CLI v2 takes blobs as base64 by default."""
    if isinstance(value, dict):
        if set(value) == {"$base64"}:
            return value["$base64"]
        return {k: _cli_params(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cli_params(v) for v in value]
    return value


def _file_digest(path: str | os.PathLike[str]) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def run_cli_v2_op(env: Mapping[str, str], service: str, operation: str, params: Mapping[str, Any] | None = None, *,
                  body_file: str | os.PathLike[str] | None = None, out_file: str | os.PathLike[str] | None = None,
                  extra_args: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """run_js's answer shape from the CLI v2: ``aws <service|s3api> <operation-in-kebab-case>
    --cli-input-json <params> --no-paginate`` (one call, no auto-pagination; GetObject, which has
    no --cli-input-json, gets each parameter as its own --option). body_file becomes
    --body; a GetObject's outfile argument is out_file (or a scratch file) and its digest the
    output's "Body". The CLI reports neither the HTTP status nor the attempts: both are None.
    A usage error (exit 252) raises HarnessError."""
    from botocore import xform_name

    cli_params = _cli_params(dict(params or {}))
    streaming_out = service == "s3" and operation in ("GetObject", "GetObjectTorrent")
    argv = [_CLI_SERVICE.get(service, service), xform_name(operation, "-")]
    if streaming_out:
        # Operations with a streamed response (an outfile argument) have no --cli-input-json.
        for name, value in cli_params.items():
            flag = "--" + xform_name(name, "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, value if isinstance(value, str) else json.dumps(value)]
    else:
        argv += ["--cli-input-json", json.dumps(cli_params)]
    argv += ["--no-paginate", "--output", "json"]
    if body_file is not None:
        argv += ["--body", str(body_file)]
    with tempfile.TemporaryDirectory(prefix="hoop-cli-out-") as tmp:
        outfile = None
        if streaming_out:
            outfile = str(out_file) if out_file is not None else os.path.join(tmp, "body")
            argv.append(outfile)
        code, stdout, stderr = run_cli_v2(env, [*argv, *extra_args], timeout=timeout)
        if code == 0:
            try:
                output = json.loads(stdout) if stdout.strip() else {}
            except ValueError:
                raise HarnessError(f"aws {' '.join(argv[:2])} printed no JSON:\n{stdout[-4000:]}") from None
            if outfile is not None:
                output["Body"] = _file_digest(outfile)
            return {"ok": True, "output": output, "http_status": None, "attempts": None, "request_id": None,
                    "exit_code": 0, "stderr": stderr}
    if code == _CLI_USAGE_ERROR_EXIT:
        raise HarnessError(f"aws {' '.join(argv[:2])}: usage error (exit 252):\n{stderr[-4000:]}")
    match = _CLI_ERROR.search(stderr)
    return {"ok": False,
            "code": match["code"] if match else ("CLIError" if code != _CLI_SERVICE_ERROR_EXIT else None),
            "message": (match["message"] if match else stderr).strip(),
            "http_status": None,
            "attempts": int(match["retries"]) + 1 if match and match["retries"] else None,
            "request_id": None, "fault": None, "exit_code": code, "stderr": stderr}


CLIENTS = ("boto3", "cli_v2", "js")


def run_client(client: str, env: Mapping[str, str], service: str, operation: str,
               params: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """Client X, do operation Y with these params: run_boto3, run_cli_v2_op or run_js by name."""
    runners = {"boto3": run_boto3, "cli_v2": run_cli_v2_op, "js": run_js}
    if client not in runners:
        raise HarnessError(f"unknown client {client!r}: one of {CLIENTS}")
    if client == "cli_v2":
        kw.pop("body_as", None)  # the CLI reads --body from the file itself
    return runners[client](env, service, operation, params, **kw)


# -- the trap: a recording HTTP server -------------------------------------------------------------

@dataclass
class TrapRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    client: tuple[str, int]
    http_chunked: bool = False  # the body came with Transfer-Encoding: chunked (decoded here)

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    @property
    def header_dict(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers}


@dataclass
class Trap:
    url: str
    host: str
    port: int
    ca_file: str | None = None  # the self-signed certificate to trust, with tls=True
    requests: list[TrapRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> list[TrapRequest]:
        with self._lock:
            return list(self.requests)

    def tls_env(self) -> dict[str, str]:
        """What makes boto3, the CLI and node trust the trap's certificate."""
        assert self.ca_file, "trap_server(tls=True) has a certificate, this one does not"
        return {"AWS_CA_BUNDLE": self.ca_file, "NODE_EXTRA_CA_CERTS": self.ca_file}


def _self_signed(directory: Path) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hoop test trap")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "trap.crt", directory / "trap.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@contextlib.contextmanager
def trap_server(status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None,
                tls: bool = False) -> Iterator[Trap]:
    """A threading HTTP/1.1 server on a free 127.0.0.1 port that records every request (method,
    path, headers in order, body with any Transfer-Encoding: chunked undone) and answers each
    with ``status``/``body``/``headers``. With tls=True it serves HTTPS with a fresh self-signed
    certificate for 127.0.0.1 and localhost: trap.tls_env() makes the clients trust it."""
    answer_headers = dict(headers or {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and Expect: 100-continue, as clients expect

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _read_body(self) -> tuple[bytes, bool]:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():  # trailers
                            pass
                        return b"".join(chunks), True
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b"", False

        def _handle(self) -> None:
            data, chunked = self._read_body()
            record = TrapRequest(self.command, self.path, list(self.headers.items()), data,
                                 (self.client_address[0], self.client_address[1]), chunked)
            with trap._lock:
                trap.requests.append(record)
            self.send_response(status)
            for key, value in answer_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_CONNECT = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = int(httpd.server_address[1])
    with tempfile.TemporaryDirectory(prefix="hoop-trap-") as tmp:
        ca_file = None
        if tls:
            ca_file, key_file = _self_signed(Path(tmp))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(ca_file, key_file)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        trap = Trap(url=f"{'https' if tls else 'http'}://127.0.0.1:{port}", host="127.0.0.1", port=port,
                    ca_file=ca_file)
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield trap
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)


if __name__ == "__main__":
    sys.exit(_boto3_child())
