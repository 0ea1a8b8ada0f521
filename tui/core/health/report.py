"""What a round says: cell snapshots, the cluster's verdict, the summary line, text and JSON.

The verdict (and the exit status of ``hardway health``):

* ``down`` (2): no API server is ready, etcd has lost quorum (fewer than a majority of
  its members are UP), or every request through the VIP fails;
* ``degraded`` (1): anything else is not right: a probe DOWN, or a last result that
  failed or warned;
* ``healthy`` (0): every probe UP with an ok last result.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from tui.core.health.model import Group, Kind, Outcome, Status
from tui.core.health.states import State, Transition

__all__ = ["CellSnapshot", "GroupSummary", "RoundReport", "Verdict", "judge", "render_text",
           "summarize", "to_json"]


class Verdict(enum.Enum):
    """The cluster as a whole; ``exit_code`` is what ``hardway health`` returns."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 degraded, 2 down."""
        return {Verdict.HEALTHY: 0, Verdict.DEGRADED: 1, Verdict.DOWN: 2}[self]


@dataclass(frozen=True)
class CellSnapshot:
    """One probe as it stands: its state, counters and last result.

    Attributes:
        key, row, kind, target: the probe (see :class:`~tui.core.health.model.Probe`).
        state: UNKNOWN until the first result, then UP or DOWN (rise/fall).
        counter: ``2/3 DOWN`` / ``1/2 UP`` on the way to a transition, else "".
        outcome: the last result (None before the first).
        in_flight: a run is under way (a slow one carries over into the next round).
        runs: results so far.
        last_transition: the latest change of state, if any.
    """

    key: str
    row: str
    kind: Kind
    target: str
    state: State
    counter: str
    outcome: Outcome | None
    in_flight: bool
    runs: int
    last_transition: Transition | None = None

    @property
    def clean(self) -> bool:
        """UP with an ok last result."""
        return (self.state is State.UP and self.outcome is not None
                and self.outcome.status is Status.OK)


@dataclass(frozen=True)
class GroupSummary:
    """How one column family stands: ``good`` of ``total`` rows (or the VIP's ok share)."""

    group: Group
    good: int
    total: int
    ok_fraction: float | None = None

    def __str__(self) -> str:
        if self.ok_fraction is not None:
            return f"{self.group.value} {self.ok_fraction:.0%} ok"
        return f"{self.group.value} {self.good}/{self.total}"


@dataclass(frozen=True)
class RoundReport:
    """The end of one round.

    Attributes:
        round: 1, 2, ...
        started: wall-clock start.
        duration: seconds until the round ended (stragglers excluded).
        cells: every probe, in grid order.
        verdict: healthy, degraded or down.
        reasons: why not healthy, one line each.
        summary: per column family.
    """

    round: int
    started: float
    duration: float
    cells: tuple[CellSnapshot, ...]
    verdict: Verdict
    reasons: tuple[str, ...]
    summary: tuple[GroupSummary, ...]

    @property
    def summary_line(self) -> str:
        """``etcd 3/3 · apiserver 2/3 · vip 67% ok``."""
        return " · ".join(str(s) for s in self.summary)


def _up(cells: Sequence[CellSnapshot], kind: Kind) -> tuple[int, int]:
    chosen = [c for c in cells if c.kind is kind]
    return sum(1 for c in chosen if c.state is State.UP), len(chosen)


def judge(cells: Sequence[CellSnapshot]) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict of a set of cells and the reasons for it."""
    down: list[str] = []
    ready, readyz = _up(cells, Kind.READYZ)
    if readyz and not ready:
        down.append(f"no API server is ready (0/{readyz})")
    etcd_up, etcd = _up(cells, Kind.ETCD_HEALTH)
    if etcd and etcd_up < etcd // 2 + 1:
        down.append(f"etcd has no quorum ({etcd_up}/{etcd} members up)")
    for cell in cells:
        if (cell.kind is Kind.VIP_ADDRESS and cell.state is State.DOWN
                and cell.outcome is not None and cell.outcome.status is Status.FAIL):
            down.append(f"nothing answers through the VIP: {cell.outcome.detail}")
    if down:
        return Verdict.DOWN, tuple(down)
    degraded = []
    for cell in cells:
        if cell.clean or cell.outcome is None:
            continue
        what = cell.counter or cell.state.value.upper()
        detail = cell.outcome.detail
        degraded.append(f"{cell.row} {cell.kind.value} {what}: {detail}")
    if degraded:
        return Verdict.DEGRADED, tuple(degraded)
    return Verdict.HEALTHY, ()


def summarize(cells: Sequence[CellSnapshot]) -> tuple[GroupSummary, ...]:
    """Per column family: rows whose cells of that family are all UP and ok."""
    out = []
    for group in Group:
        members = [c for c in cells if c.kind.group is group]
        if not members:
            continue
        if group is Group.VIP:
            vip = [c for c in members if c.kind is Kind.VIP_ADDRESS] or members
            fractions = [1.0 - float(c.outcome.facts.get("failed_fraction", 1.0))  # type: ignore[arg-type]
                         for c in vip if c.outcome is not None]
            if fractions:  # nothing to say before the first answer
                share = min(fractions)
                out.append(GroupSummary(group, int(share == 1.0), 1, share))
            continue
        rows = list(dict.fromkeys(c.row for c in members))
        good = sum(1 for r in rows if all(c.clean for c in members if c.row == r))
        out.append(GroupSummary(group, good, len(rows)))
    return tuple(out)


_MARK = {State.UP: "UP", State.DOWN: "DOWN", State.UNKNOWN: "?"}


def _cell_text(cell: CellSnapshot) -> str:
    state = _MARK[cell.state]
    if cell.outcome is not None and cell.outcome.status is Status.WARN and \
            cell.state is State.UP:
        state = "WARN"
    return f"{state} {cell.counter}".strip()


def render_text(report: RoundReport, *, colour: bool = False) -> str:
    """The round as a table: one line per probe, grouped by row, then the verdict."""
    at = dt.datetime.fromtimestamp(report.started).strftime("%H:%M:%S")
    head = (f"round {report.round} at {at} ({report.duration * 1000:.0f} ms): "
            f"{_paint(report.verdict.value.upper(), report.verdict, colour)}"
            f"  {report.summary_line}")
    lines = [head]
    kinds = max((len(c.kind.value) for c in report.cells), default=4)
    rows = max((len(c.row) for c in report.cells), default=4)
    last_row = None
    for cell in report.cells:
        row = cell.row if cell.row != last_row else ""
        last_row = cell.row
        outcome = cell.outcome
        state = _cell_text(cell)
        verdict = (Verdict.HEALTHY if cell.clean else Verdict.DOWN
                   if cell.state is State.DOWN else Verdict.DEGRADED)
        latency = "" if outcome is None or outcome.latency is None else \
            f"{outcome.latency * 1000:.0f} ms"
        detail = "waiting for the first answer" if outcome is None else outcome.detail
        if cell.in_flight:
            detail += " (checking)"
        lines.append(f"  {row:<{rows}}  {cell.kind.value:<{kinds}}  "
                     f"{_paint(f'{state:<11}', verdict, colour)} {latency:>7}  {detail}")
    if report.verdict is Verdict.DOWN:
        lines += [f"  ! {reason}" for reason in report.reasons]
    return "\n".join(lines) + "\n"


def _paint(text: str, verdict: Verdict, colour: bool) -> str:
    if not colour:
        return text
    code = {Verdict.HEALTHY: "32", Verdict.DEGRADED: "33", Verdict.DOWN: "1;31"}[verdict]
    return f"\x1b[{code}m{text}\x1b[0m"


def to_json(report: RoundReport, *, verbose: bool = False) -> dict[str, object]:
    """The round as plain data (``verbose`` adds each probe's full output)."""
    probes = []
    for cell in report.cells:
        outcome = cell.outcome
        item: dict[str, object] = {
            "key": cell.key, "row": cell.row, "probe": cell.kind.value,
            "group": cell.kind.group.value, "target": cell.target,
            "state": cell.state.value, "counter": cell.counter, "in_flight": cell.in_flight,
            "status": outcome.status.value if outcome else None,
            "latency_ms": (round(outcome.latency * 1000, 2)
                           if outcome is not None and outcome.latency is not None else None),
            "detail": outcome.detail if outcome else None,
            "facts": outcome.facts if outcome else {},
        }
        if verbose and outcome is not None:
            item["verbose"] = outcome.verbose
        if cell.last_transition is not None:
            t = cell.last_transition
            item["last_transition"] = {"at": t.at, "from": t.before.value,
                                       "to": t.after.value, "reason": t.reason}
        probes.append(item)
    return {
        "round": report.round, "started": report.started,
        "duration_ms": round(report.duration * 1000, 1), "verdict": report.verdict.value,
        "exit_code": report.verdict.exit_code, "reasons": list(report.reasons),
        "summary": {s.group.value: ({"ok_fraction": round(s.ok_fraction, 3)}
                                    if s.ok_fraction is not None
                                    else {"good": s.good, "total": s.total})
                    for s in report.summary},
        "probes": probes,
    }
