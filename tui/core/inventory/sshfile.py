"""Look at the OpenSSH client config an inventory names, without connecting anywhere.

``ssh.config`` makes hardway read someone's ``ssh_config`` (and the files it
``Include``s).  :func:`scan_ssh_config` finds what would break a connect later
(a file that includes itself, nesting deeper than OpenSSH's 16 levels, an unreadable or
special file, an unterminated quote) and the lines that run local commands
(``ProxyCommand``, ``LocalCommand``, ``KnownHostsCommand``, ``Match exec``): an inventory
can come from someone else, so these deserve a look before hardway connects.
Includes are resolved like asyncssh does: ``~`` expanded, relative patterns under
``~/.ssh``, globs, only regular files.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tui.core.inventory.safefile import INVENTORY_LIMIT, NotReadable, read_small

_KEYWORD = re.compile(r"^([A-Za-z]+)(?:\s*=\s*|\s+)(.*)$")
MAX_DEPTH = 16
"""OpenSSH's READCONF_MAX_DEPTH: Include nesting deeper than this is an error."""

LOCAL_COMMANDS = {
    "proxycommand": "ProxyCommand runs a local command to reach the host",
    "localcommand": "LocalCommand runs a local command after connecting (with "
                    "PermitLocalCommand yes)",
    "knownhostscommand": "KnownHostsCommand runs a local command to list host keys",
}


@dataclass(frozen=True)
class ConfigIssue:
    """One thing found in an OpenSSH client config.

    Attributes:
        severity: ``error`` (a connect would fail) or ``warning`` (worth a look).
        file: the file it is in.
        line: its line number (None when about the file as a whole).
        message: what it is, in plain words (without the file and line).
    """

    severity: Literal["error", "warning"]
    file: Path
    line: int | None
    message: str

    @property
    def where(self) -> str:
        """``FILE line N`` (or just ``FILE``)."""
        return f"{self.file} line {self.line}" if self.line else str(self.file)


def _cut(text: str, limit: int = 80) -> str:
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _include_targets(pattern: str) -> list[Path]:
    path = Path(pattern).expanduser()
    if path.anchor:
        base, glob = Path(path.anchor), str(Path(*path.parts[1:]))
    else:
        base, glob = Path("~", ".ssh").expanduser(), pattern
    if not glob or glob == ".":
        return []
    try:
        return sorted(p for p in base.glob(glob) if p.is_file())
    except (OSError, ValueError, NotImplementedError):
        return []


def scan_ssh_config(path: Path) -> list[ConfigIssue]:
    """Every problem and local-command line in ``path`` and the files it includes."""
    issues: list[ConfigIssue] = []
    _scan(Path(path), [], issues)
    return issues


def _scan(path: Path, stack: list[Path], issues: list[ConfigIssue]) -> None:
    try:
        raw = read_small(path, INVENTORY_LIMIT)
    except NotReadable as exc:
        issues.append(ConfigIssue("error", path, None, f"the OpenSSH config {path} "
                                  f"{exc.problem}"))
        return
    text = raw.decode("utf-8", errors="replace")
    real = path.resolve()
    chain = [*stack, real]
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _KEYWORD.match(stripped)
        try:
            words = ([match.group(1), *shlex.split(match.group(2), comments=True)]
                     if match else [stripped])
        except ValueError as exc:
            issues.append(ConfigIssue("error", path, number, f"{_cut(stripped)!r} cannot be "
                                      f"parsed ({exc}); expected KEYWORD VALUE"))
            continue
        if not words:
            continue
        keyword = words[0].lower()
        if keyword in LOCAL_COMMANDS:
            issues.append(ConfigIssue("warning", path, number, (
                f"{LOCAL_COMMANDS[keyword]}: {_cut(' '.join(words[1:]))!r}; hardway runs it "
                "on this machine whenever it connects, so read it before using an inventory "
                "someone else wrote")))
        elif keyword == "match" and any(w.lower() == "exec" for w in words[1:]):
            issues.append(ConfigIssue("warning", path, number, (
                f"Match exec runs a local command to decide whether the block applies: "
                f"{_cut(stripped)!r}; hardway runs it on this machine whenever it connects")))
        elif keyword == "include":
            for pattern in words[1:]:
                for target in _include_targets(pattern):
                    resolved = target.resolve()
                    if resolved in chain:
                        loop = " -> ".join(str(p) for p in [*chain, resolved])
                        issues.append(ConfigIssue("error", path, number, (
                            f"Include {_cut(pattern)} includes a file that is already being "
                            f"read ({_cut(loop, 300)}), so reading it never ends; expected "
                            "Include lines that do not lead back to the including file")))
                    elif len(chain) >= MAX_DEPTH:
                        issues.append(ConfigIssue("error", path, number, (
                            f"Include {_cut(pattern)} nests deeper than {MAX_DEPTH} files, "
                            "which OpenSSH refuses; expected at most "
                            f"{MAX_DEPTH} levels of Include")))
                    else:
                        _scan(target, chain, issues)
