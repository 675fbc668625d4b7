"""awscli's alias file (~/.aws/cli/alias): which names it defines. Stdlib only.

hoop does not expand aliases: a command line naming one is refused with a clear error (the
parser), the in-process awscli runs with no alias file, and the subprocess runner refuses an
alias that would replace the command hoop read (runner.shadowing_alias).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def alias_path(env: Mapping[str, str]) -> str:
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), ".aws", "cli", "alias")


def alias_names(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """{alias: what it stands for} of the [toplevel] section (empty when there is no file)."""
    env = os.environ if env is None else env
    try:
        with open(alias_path(env), encoding="utf-8", errors="replace") as fh:
            text = fh.read(256 * 1024)
    except OSError:
        return {}
    out: dict[str, str] = {}
    section = None
    last = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section, last = stripped[1:-1].strip(), None
            continue
        if section != "toplevel":
            continue
        if line[:1] in (" ", "\t") and last is not None:
            out[last] += "\n" + stripped
            continue
        name, eq, value = stripped.partition("=")
        if eq:
            last = name.strip()
            out[last] = value.strip()
    return out
