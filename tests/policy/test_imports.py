"""The policy hot path (load the cache, evaluate) imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, time
from hoopcli.paths import Layout
from hoopcli import policy
from hoopcli.parse.invocation import ApiCall, Invocation
layout = Layout.from_env()
p = policy.load_cached(layout)
assert p.source == "cache", p.source
p.evaluate(Invocation(("x",), "api", "s3", "op", api_calls=(ApiCall("s3", "GetObject", ("s3:GetObject",), "Read"),)))
heavy = sorted(m for m in ("yaml", "click", "requests", "rich", "sqlalchemy", "botocore", "fastapi", "hoopcli.policy.compiler") if m in sys.modules)
print(",".join(heavy))
"""


def test_cached_evaluation_imports_no_yaml_click_or_requests(clean_env) -> None:
    from hoopcli.paths import Layout
    from hoopcli.policy import write_cache
    from hoopcli.policy.compiler import compile_source

    compiled, _ = compile_source("rules: []\n")
    write_cache(Layout(clean_env).ensure(), compiled, etag='"e"', version=1, checked_at=0)
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
