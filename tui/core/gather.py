"""Gather per-host command results the way ``clush -b`` does, and diff them.

Pure functions over :class:`HostOutcome` values: hosts whose output is identical
*and* whose command ended the same way form one :class:`Block`, headed by the folded
host set and its size (``controller-[0-2] (3)``).  ``render_diff`` shows the majority
block and every other block as a unified diff against it.  Hosts that could not run
the command at all (unreachable, refused host key) are not blocks: they appear in the
failure summary, grouped by reason.  Nothing here does I/O.
"""

from __future__ import annotations

import difflib
import signal as signals
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tui.core.hostset import fold, natural_key

RULE = "-" * 15
"""The separator line clush prints around a block header."""

EXIT_UNREACHABLE = 255
EXIT_TIMEOUT = 124
EXIT_CANCELLED = 130

_ANSI = {
    "header": "\x1b[1;34m",
    "diffhdr": "\x1b[1m",
    "hunk": "\x1b[36m",
    "add": "\x1b[32m",
    "del": "\x1b[31m",
}
_RESET = "\x1b[0m"


@dataclass(frozen=True)
class HostOutcome:
    """How a command ended on one host, with everything it printed.

    Attributes:
        host: host name.
        output: stdout and stderr text in the order it arrived.
        status: remote exit status (None when killed, timed out or never run).
        signal: signal name (``TERM``, ``KILL``...) when the remote process died of one.
        timed_out: the per-command timeout fired and the remote process was killed.
        cancelled: the run was interrupted and the remote process was killed.
        error: why the command could not run at all (connect or host key failure).
    """

    host: str
    output: str = ""
    status: int | None = None
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None

    @property
    def ran(self) -> bool:
        """True when the command started on the host (it may still have failed)."""
        return self.error is None

    @property
    def ok(self) -> bool:
        """True when the command ran and exited with status 0."""
        return self.ran and not self.timed_out and not self.cancelled and self.status == 0

    @property
    def code(self) -> int:
        """This host's contribution to the process exit status (see :func:`exit_status`)."""
        if self.error is not None:
            return EXIT_UNREACHABLE
        if self.timed_out:
            return EXIT_TIMEOUT
        if self.cancelled:
            return EXIT_CANCELLED
        if self.signal is not None:
            return 128 + _signal_number(self.signal)
        if self.status is None:
            return EXIT_UNREACHABLE
        return self.status

    def ending(self, timeout: float | None = None) -> str:
        """How the command ended, in words (``exited with exit code 1``).

        Args:
            timeout: the per-command timeout in seconds, named for timed-out hosts.
        """
        if self.error is not None:
            reason = self.error.strip() or "no reason given"
            if reason.lower().startswith("unreachable"):
                return reason
            return f"unreachable: {reason}"
        if self.timed_out:
            after = f" after {_seconds(timeout)}" if timeout is not None else ""
            return f"timed out{after} (killed)"
        if self.cancelled:
            return "interrupted (killed)"
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        if self.status is None:
            return "ended without an exit status"
        return f"exited with exit code {self.status}"


@dataclass(frozen=True)
class Block:
    """Hosts with identical output that ended the same way.

    Attributes:
        hosts: host names in natural order.
        lines: the common output, split into lines.
        ending: ``""`` for exit code 0, otherwise how the command ended.
    """

    hosts: tuple[str, ...]
    lines: tuple[str, ...]
    ending: str = ""

    @property
    def label(self) -> str:
        """The folded host set and the count, e.g. ``controller-[0-2] (3)``."""
        return f"{fold(self.hosts)} ({len(self.hosts)})"

    @property
    def header(self) -> str:
        """The label plus how the command ended when it did not exit 0."""
        return f"{self.label} {self.ending}" if self.ending else self.label


@dataclass(frozen=True)
class FailureGroup:
    """Hosts on which the command failed for the same reason."""

    hosts: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{fold(self.hosts)}: {self.reason}"


MIN_NORMALISED = 3
"""Values shorter than this are never replaced (``1`` or ``on`` would hit everything)."""


def normalise(output: str, values: Mapping[str, str]) -> str:
    """``output`` with the host's own values (name, address, variables) replaced by
    ``{key}``, longest value first (``{name}`` and ``{ip}`` before variables of the same
    value), so outputs that differ only by them group together
    (``hostname``, ``ip -br addr``, unit files with the host's IP)."""
    pairs = sorted(((v, k) for k, v in values.items() if len(v) >= MIN_NORMALISED),
                   key=lambda pair: (-len(pair[0]), pair[1] not in ("name", "ip")))
    for value, key in pairs:
        output = output.replace(value, "{" + key + "}")
    return output


def gather(outcomes: Iterable[HostOutcome], timeout: float | None = None) -> list[Block]:
    """Group the hosts that ran the command by identical output and ending.

    Args:
        outcomes: one outcome per host; hosts that never ran the command are skipped.
        timeout: the per-command timeout, named in the ending of timed-out blocks.

    Returns:
        Blocks ordered by size (largest first), then by their first host name.
    """
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for outcome in outcomes:
        if not outcome.ran:
            continue
        ending = "" if outcome.ok else outcome.ending(timeout)
        key = (tuple(outcome.output.splitlines()), ending)
        groups.setdefault(key, []).append(outcome.host)
    blocks = [
        Block(tuple(sorted(hosts, key=natural_key)), lines, ending)
        for (lines, ending), hosts in groups.items()
    ]
    blocks.sort(key=lambda b: (-len(b.hosts), natural_key(b.hosts[0])))
    return blocks


def failures(outcomes: Iterable[HostOutcome], timeout: float | None = None) -> list[FailureGroup]:
    """Group the hosts whose command did not exit 0 by how it ended.

    Returns:
        Groups ordered by size (largest first), then by their first host name.
    """
    groups: dict[str, list[str]] = {}
    for outcome in outcomes:
        if not outcome.ok:
            groups.setdefault(outcome.ending(timeout), []).append(outcome.host)
    result = [
        FailureGroup(tuple(sorted(hosts, key=natural_key)), reason)
        for reason, hosts in groups.items()
    ]
    result.sort(key=lambda g: (-len(g.hosts), natural_key(g.hosts[0])))
    return result


def exit_status(outcomes: Iterable[HostOutcome]) -> int:
    """The process exit status for a run: the largest code of any host.

    A remote exit code counts as itself, a timeout as 124 (unless a larger code
    exists), a signal as 128 + its number, and a host that could not run the command
    as 255.  No hosts, or all exiting 0, gives 0.
    """
    return max((outcome.code for outcome in outcomes), default=0)


def render_block(block: Block, *, colour: bool = False) -> str:
    """One clush-style block: rule, header, rule, then the output lines."""
    header = f"{RULE}\n{block.header}\n{RULE}"
    if colour:
        header = f"{_ANSI['header']}{header}{_RESET}"
    body = "".join(f"{line}\n" for line in block.lines)
    return f"{header}\n{body}"


def render_blocks(blocks: Sequence[Block], *, colour: bool = False) -> str:
    """Every block in order, as ``clush -b`` prints them."""
    return "".join(render_block(block, colour=colour) for block in blocks)


def render_diff(blocks: Sequence[Block], *, colour: bool = False) -> str:
    """The majority block, then every other block as a unified diff against it.

    The majority is the first block of :func:`gather`'s order (largest, then by
    name).  Diff headers name the host sets (``--- controller-[0,2] (2)``,
    ``+++ controller-1 (1)``); a block whose output equals the majority's but that
    ended differently gets a one-line note instead of an empty diff.
    """
    if not blocks:
        return ""
    reference, *others = blocks
    parts = [render_block(reference, colour=colour)]
    for block in others:
        parts.append(_diff_against(reference, block, colour=colour))
    return "".join(parts)


def render_failures(groups: Sequence[FailureGroup]) -> str:
    """The end-of-run summary: one ``hosts: reason`` line per group."""
    return "".join(f"{group}\n" for group in groups)


def _diff_against(reference: Block, block: Block, *, colour: bool) -> str:
    """A unified diff of ``block``'s output against ``reference``'s."""
    from_label = reference.header
    to_label = block.header
    lines = list(
        difflib.unified_diff(
            list(reference.lines), list(block.lines),
            fromfile=from_label, tofile=to_label, lineterm="",
        )
    )
    if not lines:
        lines = [f"--- {from_label}", f"+++ {to_label}", "  (same output)"]
    if colour:
        lines = [_colour_diff_line(line) for line in lines]
    return "".join(f"{line}\n" for line in lines)


def _colour_diff_line(line: str) -> str:
    if line.startswith(("---", "+++")):
        style = _ANSI["diffhdr"]
    elif line.startswith("@@"):
        style = _ANSI["hunk"]
    elif line.startswith("+"):
        style = _ANSI["add"]
    elif line.startswith("-"):
        style = _ANSI["del"]
    else:
        return line
    return f"{style}{line}{_RESET}"


def _signal_number(name: str) -> int:
    """The number of a signal named ``TERM`` or ``SIGTERM`` (127 when unknown)."""
    key = name.upper()
    if not key.startswith("SIG"):
        key = "SIG" + key
    try:
        return int(signals.Signals[key])
    except KeyError:
        return 127  # 128 + 127 = 255: an unknown signal counts like an unreachable host


def _seconds(value: float) -> str:
    """``5`` -> ``5 s``, ``0.5`` -> ``0.5 s``."""
    return f"{value:g} s"
