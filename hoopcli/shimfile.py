"""Writing the `aws` launcher: a few lines bound to an absolute interpreter, marked so the shim
can recognise (and skip) its own kind when it looks for the real CLI on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .paths import Layout, ensure_dir

TEMPLATE = """#!{python} -I
# hoopcli-shim: the `aws` command as seen by agents (written by `hoop shim install`).
# Every invocation goes through hoop: policy, approvals, short-lived credentials, masking, recording.
import gc
gc.disable()  # a short-lived process: hoopcli.shim.launch resumes it before the command runs
from hoopcli.shim import launch
launch()
"""


def shim_text(python: str | None = None) -> str:
    return TEMPLATE.format(python=python or sys.executable)


def install_shim(directory: Path | None = None, python: str | None = None) -> Path:
    target_dir = ensure_dir(directory or (Layout.from_env().home / "bin"))
    path = target_dir / "aws"
    tmp = target_dir / f".aws.{os.getpid()}.tmp"
    tmp.write_text(shim_text(python), encoding="utf-8")
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
