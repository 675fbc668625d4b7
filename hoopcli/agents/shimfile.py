"""Writing the `aws` launcher: a few lines bound to an absolute interpreter, marked so the shim
can recognise (and skip) its own kind when it looks for the real CLI on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hoopcli.paths import Layout, ensure_dir

TEMPLATE = """#!{python} -I
# hoopcli-shim: the `aws` command as seen by agents (written by `hoop shim install`).
# Every invocation goes through hoop: policy, approvals, short-lived credentials, masking, recording.
import gc
gc.disable()  # a short-lived process: hoopcli.shim.launch resumes it before the command runs
from hoopcli.shim import launch
launch({home})
"""


def shim_text(python: str | None = None, home: Path | None = None) -> str:
    return TEMPLATE.format(python=python or sys.executable, home=repr(str(home)) if home else "")


def install_shim(directory: Path | None = None, python: str | None = None) -> Path:
    """Write the launcher into `directory` (default HOOP_HOME/bin). A launcher in a home's own
    bin directory names that home: it is used when HOOP_HOME is unset, so the shim does not have
    to import platformdirs to find it on every call (and an agent without HOOP_HOME in its
    environment still finds the home the shim came from)."""
    home = Layout.from_env().home
    target_dir = ensure_dir(directory or (home / "bin"))
    owner_home = home if target_dir.resolve() == (home / "bin").resolve() else None
    path = target_dir / "aws"
    tmp = target_dir / f".aws.{os.getpid()}.tmp"
    tmp.write_text(shim_text(python, owner_home), encoding="utf-8")
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path
