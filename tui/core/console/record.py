"""Records of broadcast lines and their per-host results, and the gathered view of one.

A :class:`Broadcast` is one line typed in the broadcast bar: the text actually sent to
each host (after ``{name}``/``{ip}``/``{var}`` substitution), and per host either the
finished command (status, duration, output) or "pending".  :func:`gather_report` turns
it into the clush-style blocks of :mod:`tui.core.gather` plus a diff of minority outputs
against the majority.  Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from tui.core.console.plaintext import plain
from tui.core.gather import (
    Block,
    FailureGroup,
    HostOutcome,
    gather,
    normalise,
    render_block,
    render_diff,
    render_failures,
)
from tui.core.hostset import fold, natural_key

STILL_RUNNING = "still running"

RunState = Literal["pending", "running", "done", "closed"]


@dataclass(frozen=True)
class LastExit:
    """How the last command on a host ended (for the pane title)."""

    status: int | None
    duration: float


@dataclass
class HostRun:
    """One host's part of a broadcast.

    Attributes:
        host: host name.
        command: the text sent to the host (after substitution).
        state: ``pending`` (being sent), ``running`` (queued in the shell or running),
            ``done`` or ``closed`` (the shell closed before the command finished).
        status: exit status once done (None when unknown, e.g. killed).
        duration: seconds, once done.
        output: what the command printed, as plain text, once done.
        reason: why the run is ``closed``.
    """

    host: str
    command: str
    state: RunState = "pending"
    status: int | None = None
    duration: float | None = None
    output: str = ""
    reason: str = ""

    @property
    def finished(self) -> bool:
        """True when no more results will come for this host."""
        return self.state in ("done", "closed")

    def outcome(self) -> HostOutcome:
        """This run as a :class:`HostOutcome` for :mod:`tui.core.gather`."""
        if self.state == "done":
            return HostOutcome(self.host, output=self.output, status=self.status)
        if self.state == "closed":
            return HostOutcome(self.host, error=f"shell closed ({self.reason})"
                               if self.reason else "shell closed")
        return HostOutcome(self.host, error=STILL_RUNNING)


AS_INPUT = "typed ahead while a command was running"
"""Skip reason for a busy host: the line went to the terminal as type-ahead, so it reaches
the running program or runs after it; either way it is not tracked as this broadcast."""


@dataclass
class Broadcast:
    """One broadcast line and its per-host results.

    Attributes:
        id: 1, 2, 3... in the order lines were sent.
        line: the line as typed (before substitution).
        started_at: when it was sent (UTC).
        runs: host -> its run, for every host the line was sent to (inventory order).
        skipped: host -> why the line did not run there as a command (shell closed, not
            connected, or AS_INPUT: the host was busy and the line went to its program).
    """

    id: int
    line: str
    started_at: datetime
    runs: dict[str, HostRun] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        """Hosts whose command has not finished yet."""
        return [name for name, run in self.runs.items() if not run.finished]

    @property
    def done(self) -> bool:
        """True when every host the line was sent to has finished (or closed)."""
        return not self.pending

    def describe(self) -> str:
        """One line: ``sent to controller-[0-2] (3)``, plus skipped hosts and reasons."""
        sent = fold(self.runs) or "no hosts"
        text = f"sent to {sent} ({len(self.runs)})"
        reasons: dict[str, list[str]] = {}
        for host, reason in self.skipped.items():
            reasons.setdefault(reason, []).append(host)
        for reason, hosts in reasons.items():
            if reason == AS_INPUT:
                text += f"; {fold(hosts)} was busy: line typed ahead, not tracked"
            else:
                text += f"; not sent to {fold(hosts)} ({reason})"
        return text


@dataclass(frozen=True)
class HostRow:
    """One host's line in the gather view: exit code, duration, state."""

    host: str
    state: RunState | Literal["not sent"]
    status: int | None
    duration: float | None
    detail: str = ""


@dataclass(frozen=True)
class GatherReport:
    """The gathered result of one broadcast.

    Attributes:
        broadcast: the broadcast gathered.
        rows: per host (inventory order): state, exit code, duration.
        blocks: hosts with identical output and ending, largest block first.
        unfinished: hosts without a result (still running, shell closed, not sent),
            grouped by reason.
        diff: every minority block as a unified diff against the majority ("" if none).
        text: the majority block, the diffs, then the unfinished hosts.
        summary: one line, e.g. ``identical on controller-[0-2] (3)``.
    """

    broadcast: Broadcast
    rows: tuple[HostRow, ...]
    blocks: tuple[Block, ...]
    unfinished: tuple[FailureGroup, ...]
    diff: str
    text: str
    summary: str
    normalised: bool = False
    """Each host's own name, address and variables were replaced by ``{key}`` before
    grouping (see :func:`tui.core.gather.normalise`)."""


def finished_output(text: str) -> str:
    """A command's terminal output as plain text lines (no escapes, ``\\r`` applied)."""
    return plain(text.replace("\r\n", "\n"))


def gather_report(broadcast: Broadcast, hosts: Sequence[str] = (),
                  values: Mapping[str, Mapping[str, str]] | None = None) -> GatherReport:
    """Group a broadcast's outputs like ``clush -b`` and diff them against the majority.

    Args:
        broadcast: the broadcast to gather.
        hosts: every host in inventory order (rows follow it; others are appended).
        values: host -> its own values (name, ip, variables): when given, outputs are
            normalised with them before grouping.
    """
    order = [h for h in hosts if h in broadcast.runs or h in broadcast.skipped]
    order += [h for h in [*broadcast.runs, *broadcast.skipped] if h not in order]
    outcomes: list[HostOutcome] = []
    rows: list[HostRow] = []
    for host in order:
        run = broadcast.runs.get(host)
        if run is None:
            reason = f"not sent: {broadcast.skipped[host]}"
            outcomes.append(HostOutcome(host, error=reason))
            rows.append(HostRow(host, "not sent", None, None, broadcast.skipped[host]))
            continue
        outcome = run.outcome()
        if values is not None and host in values:
            outcome = dataclasses.replace(outcome,
                                          output=normalise(outcome.output, values[host]))
        outcomes.append(outcome)
        detail = outcome.error or ("" if outcome.ok else outcome.ending())
        rows.append(HostRow(host, run.state, run.status, run.duration, detail))
    blocks = gather(outcomes)
    unfinished = _unfinished(outcomes)
    full = render_diff(blocks)
    diff = full[len(render_block(blocks[0])):] if blocks else ""
    text = full + render_failures(unfinished)
    return GatherReport(broadcast, tuple(rows), tuple(blocks), tuple(unfinished), diff, text,
                        _summary(blocks, unfinished), normalised=values is not None)


def _unfinished(outcomes: Sequence[HostOutcome]) -> list[FailureGroup]:
    """Hosts without a result grouped by why (largest group first, then by name)."""
    groups: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            groups.setdefault(outcome.error, []).append(outcome.host)
    result = [FailureGroup(tuple(sorted(hosts, key=natural_key)), reason)
              for reason, hosts in groups.items()]
    result.sort(key=lambda g: (-len(g.hosts), natural_key(g.hosts[0])))
    return result


def _summary(blocks: Sequence[Block], unfinished: Sequence[FailureGroup]) -> str:
    if not blocks:
        parts = ["no results yet"]
    elif len(blocks) == 1:
        parts = [f"identical on {blocks[0].header}"]
    else:
        parts = [f"{len(blocks)} different results: "
                 + " | ".join(block.header for block in blocks)]
    parts += [str(group) for group in unfinished]
    return "; ".join(parts)
