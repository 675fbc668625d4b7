"""The shim runs on every `aws` call: its hot path imports nothing heavy before it is needed."""

from __future__ import annotations

import json
import subprocess
import sys

HOT_PATH = [
    "hoopcli.shim", "hoopcli.config", "hoopcli.parse.invocation", "hoopcli.policy", "hoopcli.masking",
    "hoopcli.record.shapes", "hoopcli.identity.tokens", "hoopcli.client", "hoopcli.credentials", "hoopcli.runner",
    "hoopcli.masking.streams", "hoopcli.approval.request",
]
FORBIDDEN = ["click", "rich", "requests", "requests_oauthlib", "oauthlib", "keyring", "yaml",
             "botocore", "boto3", "awscli", "jwt", "sqlalchemy", "fastapi", "platformdirs",
             "cryptography", "urllib3", "jinja2", "slack_sdk"]


def test_hot_path_imports_are_stdlib_only():
    code = (
        "import importlib, json, sys\n"
        f"for m in {HOT_PATH!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
