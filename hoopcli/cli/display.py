"""How the CLI shows a value from the server in a table or a line: printable characters only
(control characters become `?`, so a hostile value cannot move the cursor or fake a line), and
cut to a width with one mark, `…`."""

from __future__ import annotations

from typing import Any


def printable(text: Any, width: int | None = None) -> str:
    """`text` (None shown as `-`) with non-printable characters replaced, at most `width` long."""
    value = "".join(ch if ch.isprintable() else "?" for ch in str("-" if text is None else text))
    if width and len(value) > width:
        value = value[: width - 1] + "…"
    return value


def printable_or_dash(text: Any, width: int | None = None) -> str:
    """printable(), with an empty value shown as `-` too."""
    return printable(text or None, width)
