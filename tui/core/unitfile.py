"""Repair the classic broken ``ExecStart=`` continuation in a systemd unit.

KTHW units put one flag per line, each line ending in ``\\``.  Lose one backslash and
systemd ends ``ExecStart=`` there: every later ``--flag=...`` line becomes an unknown key
that systemd ignores with only a log line.  For kube-apiserver that silently drops
``--tls-cert-file`` and the server starts serving a self-signed certificate.
"""

from __future__ import annotations

import re

FLAG_LINE = re.compile(r"^[ \t]+(--[A-Za-z0-9][A-Za-z0-9-]*)")
EXEC_KEYS = ("ExecStart=", "ExecStartPre=", "ExecStartPost=")


def dropped_flags(text: str) -> list[str]:
    """Flags that sit under an ``Exec*=`` line but that systemd ignores (lost ``\\``)."""
    return repair_continuations(text)[1]


def repair_continuations(text: str) -> tuple[str, list[str]]:
    """Restore missing ``\\`` so indented ``--flag`` lines continue their ``Exec*=`` line.

    Returns:
        The repaired unit text (unchanged when nothing was broken) and the flags that
        were being dropped, in file order.
    """
    lines = text.splitlines(keepends=True)
    dropped: list[str] = []
    in_exec = False
    for index, line in enumerate(lines):
        stripped = line.rstrip("\r\n")
        if stripped.lstrip().startswith(EXEC_KEYS):
            in_exec = True
        if not in_exec:
            continue
        if stripped.rstrip().endswith("\\"):
            continue  # the command goes on; the next line belongs to it
        following = lines[index + 1] if index + 1 < len(lines) else ""
        match = FLAG_LINE.match(following)
        if match is None:
            in_exec = False
            continue
        dropped.extend(_flags_until_break(lines[index + 1:]))
        ending = line[len(stripped):]
        lines[index] = stripped.rstrip() + " \\" + ending
    return "".join(lines), dropped


def _flags_until_break(lines: list[str]) -> list[str]:
    """The flags of the indented lines up to the next line that ends the command."""
    flags: list[str] = []
    for line in lines:
        match = FLAG_LINE.match(line)
        if match is None:
            break
        flags.append(match.group(1))
        if not line.rstrip().endswith("\\"):
            break
    return flags
