"""Mend a systemd unit's ExecStart: the seed's dropped ``\\`` continuation, missing flags.

systemd joins a line ending in ``\\`` with the next; when one backslash is lost, the
following ``--flag=value`` lines become unknown keys that systemd ignores, so
kube-apiserver starts without --tls-cert-file and serves a self-signed certificate.
:func:`repair_unit` finds those lines and joins them back (and can append flags that are
missing altogether); the lab's :mod:`tui.lab.systemd_unit` parser is the reference the
tests check the result against.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tui.core.pki.survey import exec_start_argv, flag_value
from tui.core.systemd_unit import ends_escaped, is_comment

__all__ = ["UnitRepair", "repair_unit"]

_SYSTEMD_KEY = re.compile(r"^\s*[A-Za-z][A-Za-z0-9]*\s*=")


@dataclass(frozen=True)
class UnitRepair:
    """The mended unit text and what was wrong (empty notes: nothing to do)."""

    text: str
    notes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when the unit needs the new text."""
        return bool(self.notes)


def repair_unit(text: str, *, required: Sequence[tuple[str, str]] = ()) -> UnitRepair:
    """Mend the ExecStart of a unit file.

    Lines after ExecStart that systemd ignores because the previous line lost its trailing
    ``\\`` (they are not ``Key=value`` lines: ``  --tls-cert-file=...``) are joined back, and
    every ``(flag, value)`` of ``required`` missing from the command line is appended.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if line.lstrip().startswith("ExecStart=")), None)
    if start is None:
        return UnitRepair(text, ())
    notes: list[str] = []
    end = start
    while True:
        if ends_escaped(lines[end]) and end + 1 < len(lines):
            end += 1
            while end + 1 < len(lines) and is_comment(lines[end]):
                end += 1  # systemd skips comment lines inside a continuation
            continue
        if end + 1 < len(lines) and _stray(lines[end + 1]):
            notes.append(f"line {end + 2} `{lines[end + 1].strip()}` was outside ExecStart "
                         f"because line {end + 1} lacks its trailing `\\`; systemd ignored it")
            lines[end] = _continued(lines[end])
            end += 1
            continue
        break
    command = " ".join(line.rstrip().removesuffix("\\") for line in lines[start:end + 1]
                       if not is_comment(line))
    argv = exec_start_argv(command)
    missing = [(flag, value) for flag, value in required
               if flag_value(argv, flag) is None]
    if missing:
        indent = _continuation_indent(lines, start, end)
        lines[end] = _continued(lines[end])
        added = [f"{indent}{flag}={value}" for flag, value in missing]
        added = [line + " \\" for line in added[:-1]] + added[-1:]
        lines[end + 1:end + 1] = added
        notes.append("added " + " and ".join(f for f, _v in missing) + " to ExecStart")
    if not notes:
        return UnitRepair(text, ())
    return UnitRepair("\n".join(lines) + ("\n" if text.endswith("\n") else ""), tuple(notes))


def _continued(line: str) -> str:
    """``line`` ending in a continuation backslash (trailing blanks after one removed)."""
    stripped = line.rstrip()
    return stripped if ends_escaped(stripped) else stripped + " \\"


def _stray(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped[0] in "#;[":
        return False
    return _SYSTEMD_KEY.match(line) is None


def _continuation_indent(lines: list[str], start: int, end: int) -> str:
    for line in lines[start + 1:end + 1]:
        return line[:len(line) - len(line.lstrip())]
    return "  "
