"""Plans: ordered Steps that check, preview, apply and verify, per host.

A :class:`Step` does one job on a set of hosts through async callables that take the
host name:

- ``check(host) -> str | None``: a reason when nothing needs doing (the step is skipped
  there), None when the work is needed;
- ``preview(host) -> Preview``: the exact commands and file changes apply would make;
- ``apply(host) -> str | None``: do it; returns a short detail;
- ``verify(host) -> str | None``: prove it worked (a health probe...); returns a detail.

``apply`` and ``verify`` signal failure by raising :class:`StepFailed` (or ``UserError``).

A :class:`Plan` runs its steps in one of two modes:

- ``parallel``: step after step; each step runs on all its hosts at once (at most
  ``fanout`` at a time) and the next step starts when it has finished everywhere;
- ``rolling``: host after host (in the order they first appear in the steps); every step
  of a host, then the ``gate`` for that host, before the next host is touched.

A failure stops the plan: what is already running finishes, nothing new starts, and the
hosts and steps not started stay exactly as they were (``PlanResult.not_started``).
Progress is reported as :class:`PlanEvent` values to an ``on_event`` callback; the CLI
prints them, the screens draw them.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tui.core.errors import UserError

log = logging.getLogger("hardway.plan")

StepState = Literal["pending", "checking", "skipped", "running", "done", "failed"]
Mode = Literal["parallel", "rolling"]

HostAction = Callable[[str], Awaitable[str | None]]
"""An async callable taking a host name and returning a short detail (or None)."""

MAX_DIFF_BYTES = 256 * 1024
"""Files larger than this are summarised, not diffed."""


class StepFailed(Exception):
    """Raised by ``apply``, ``verify`` or a gate: the step failed on this host.

    The message is the detail shown to the user: one sentence saying what went wrong.
    """


@dataclass(frozen=True)
class FileChange:
    """One file a step writes (or removes) on a host, for previews.

    Attributes:
        path: the logical remote path.
        size: bytes after the change (0 when removed).
        sha256: hex digest of the new content ("" when removed).
        mode: permission bits after the change.
        old_size: bytes before (None when the file does not exist yet).
        old_sha256: hex digest of the current content (None when absent).
        diff: unified diff for text files that are not secret (None otherwise).
        secret: the content must never be shown (private keys).
        description: one line saying what the file is or what changes.
        removed: the step removes the file (it is kept as a backup).
    """

    path: str
    size: int
    sha256: str
    mode: int = 0o644
    old_size: int | None = None
    old_sha256: str | None = None
    diff: str | None = None
    secret: bool = False
    description: str = ""
    removed: bool = False

    @property
    def changed(self) -> bool:
        """True when applying the step changes this file."""
        if self.removed:
            return self.old_sha256 is not None
        return self.old_sha256 != self.sha256

    @property
    def fingerprint(self) -> str:
        """``SHA256:`` plus the first 16 hex digits of the new content."""
        return f"SHA256:{self.sha256[:16]}" if self.sha256 else "-"


def file_change(path: str, new: bytes, old: bytes | None, *, mode: int = 0o644,
                secret: bool = False, description: str = "", diff_text: bool = True
                ) -> FileChange:
    """Describe writing ``new`` over ``old`` (None: the file is absent) at ``path``.

    A unified diff is made for text files unless ``secret`` (private keys: never shown)
    or ``diff_text`` is False (e.g. certificates, whose base64 diff says nothing; give a
    ``description`` instead).
    """
    diff: str | None = None
    if not secret and diff_text and _is_text(new) and (old is None or _is_text(old)):
        old_lines = [] if old is None else old.decode().splitlines(keepends=True)
        new_lines = new.decode().splitlines(keepends=True)
        if old_lines != new_lines:
            fromfile = "/dev/null" if old is None else f"a{path}"
            diff = "".join(difflib.unified_diff(old_lines, new_lines, fromfile=fromfile,
                                                tofile=f"b{path}"))
    return FileChange(
        path=path, size=len(new), sha256=hashlib.sha256(new).hexdigest(), mode=mode,
        old_size=None if old is None else len(old),
        old_sha256=None if old is None else hashlib.sha256(old).hexdigest(),
        diff=diff, secret=secret, description=description)


def file_removal(path: str, old: bytes | None, *, present: bool | None = None,
                 description: str = "") -> FileChange:
    """Describe removing ``path`` (whose current content is ``old``; None: absent).

    ``present=True`` says the file exists although its content was not read.
    """
    digest = None if old is None else hashlib.sha256(old).hexdigest()
    if digest is None and present:
        digest = ""
    return FileChange(path=path, size=0, sha256="",
                      old_size=None if old is None else len(old), old_sha256=digest,
                      description=description, removed=True)


def _is_text(data: bytes) -> bool:
    if len(data) > MAX_DIFF_BYTES or b"\0" in data:
        return False
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class Preview:
    """What a step would do on one host: commands run and files written, in order."""

    commands: tuple[str, ...] = ()
    files: tuple[FileChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the step would neither run a command nor change a file."""
        return not self.commands and not any(f.changed for f in self.files)


@dataclass(frozen=True)
class StepPreview:
    """The preview of one step on one host.

    Attributes:
        step: step name.
        host: host name.
        preview: commands and files.
        done: the check's reason when the step would be skipped, else None.
    """

    step: str
    host: str
    preview: Preview
    done: str | None = None


@dataclass(frozen=True)
class PlanEvent:
    """A step changed state on a host.

    Attributes:
        step: step name (or the gate's name).
        host: host name.
        state: pending, checking, skipped, running, done or failed.
        detail: short text: why skipped, what was done, why it failed.
        duration: seconds the step took on this host (skipped/done/failed only).
    """

    step: str
    host: str
    state: StepState
    detail: str = ""
    duration: float | None = None


@dataclass
class Step:
    """One job of a plan, on a set of hosts (see the module docstring).

    Attributes:
        name: shown in progress lines, e.g. ``restart kube-apiserver``.
        hosts: host names, in the order they are processed.
        check: returns a reason when the host needs nothing (skipped), else None.
        preview: returns the commands and file changes for the host.
        apply: makes the change; raises StepFailed on failure.
        verify: runs after apply; raises StepFailed when the change did not take.
        timeout: seconds for check + apply + verify on one host (None: no limit).
    """

    name: str
    hosts: Sequence[str]
    check: HostAction | None = None
    preview: Callable[[str], Awaitable[Preview]] | None = None
    apply: HostAction | None = None
    verify: HostAction | None = None
    timeout: float | None = None


@dataclass
class PlanResult:
    """How a plan run ended.

    Attributes:
        states: the last event of every (step, host) that started.
        failure: the event that stopped the plan (None when it completed).
        not_started: (step, host) pairs never started because the plan stopped.
    """

    states: dict[tuple[str, str], PlanEvent] = field(default_factory=dict)
    failure: PlanEvent | None = None
    not_started: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return self.failure is None

    def touched_hosts(self) -> list[str]:
        """Hosts where at least one step ran (skipped steps do not count)."""
        seen: dict[str, None] = {}
        for (_step, host), event in self.states.items():
            if event.state in ("running", "done", "failed"):
                seen[host] = None
        return list(seen)

    def failed_hosts(self, step: str) -> list[str]:
        """Hosts where ``step`` failed, in the order the plan ran them."""
        return [h for (s, h), event in self.states.items()
                if s == step and event.state == "failed"]

    def untouched_hosts(self) -> list[str]:
        """Hosts where nothing ran because the plan stopped first."""
        touched = set(self.touched_hosts())
        hosts = dict.fromkeys(h for _s, h in self.not_started if h not in touched)
        return list(hosts)


EventCallback = Callable[[PlanEvent], None]


class Plan:
    """Steps run per host, in parallel or rolling one host at a time.

    Args:
        steps: the steps, in order.
        mode: ``parallel`` (step-major) or ``rolling`` (host-major behind the gate).
        gate: rolling mode: awaited after a host's steps; raising StepFailed stops the plan.
        gate_name: the step name the gate's events carry.
        fanout: at most this many hosts work at once in parallel mode.
    """

    def __init__(self, steps: Sequence[Step], *, mode: Mode = "parallel",
                 gate: HostAction | None = None, gate_name: str = "health gate",
                 fanout: int = 64) -> None:
        if mode not in ("parallel", "rolling"):
            raise ValueError(f"unknown plan mode {mode!r}")
        names = [s.name for s in steps]
        if len(set(names)) != len(names) or gate_name in names:
            raise ValueError(f"step names must be unique: {names}")
        self.steps = list(steps)
        self.mode: Mode = mode
        self.gate = gate
        self.gate_name = gate_name
        self._fanout = max(1, fanout)

    @property
    def hosts(self) -> list[str]:
        """Every host of every step, in order of first appearance."""
        return list(dict.fromkeys(h for step in self.steps for h in step.hosts))

    def pairs(self) -> list[tuple[str, str]]:
        """(step, host) in the order the plan would run them (gate included)."""
        if self.mode == "parallel":
            return [(s.name, h) for s in self.steps for h in s.hosts]
        pairs: list[tuple[str, str]] = []
        for host in self.hosts:
            pairs += [(s.name, host) for s in self.steps if host in s.hosts]
            if self.gate is not None:
                pairs.append((self.gate_name, host))
        return pairs

    # -- preview ------------------------------------------------------------------------

    async def preview(self) -> dict[str, list[StepPreview]]:
        """Per host (plan order), what every step would do; changes nothing remotely."""
        out: dict[str, list[StepPreview]] = {h: [] for h in self.hosts}
        semaphore = asyncio.Semaphore(self._fanout)

        async def one(step: Step, host: str) -> StepPreview:
            async with semaphore:
                done = await step.check(host) if step.check is not None else None
                preview = await step.preview(host) if step.preview is not None else Preview()
                return StepPreview(step.name, host, preview, done)

        jobs = [(s, h) for s in self.steps for h in s.hosts]
        results = await asyncio.gather(*(one(s, h) for s, h in jobs))
        for item in results:
            out[item.host].append(item)
        return out

    # -- run ----------------------------------------------------------------------------

    async def run(self, on_event: EventCallback | None = None) -> PlanResult:
        """Run the plan, reporting progress to ``on_event``; returns how it ended."""
        result = PlanResult()

        def emit(event: PlanEvent) -> None:
            if event.state != "pending":
                result.states[(event.step, event.host)] = event
            if event.state == "failed" and result.failure is None:
                result.failure = event
            if on_event is not None:
                try:
                    on_event(event)
                except Exception:
                    log.exception("plan event listener failed")

        for step_name, host in self.pairs():
            emit(PlanEvent(step_name, host, "pending"))
        if self.mode == "parallel":
            await self._run_parallel(emit, result)
        else:
            await self._run_rolling(emit, result)
        started = set(result.states)
        result.not_started = [p for p in self.pairs() if p not in started]
        return result

    async def _run_parallel(self, emit: EventCallback, result: PlanResult) -> None:
        semaphore = asyncio.Semaphore(self._fanout)

        async def one(step: Step, host: str) -> None:
            async with semaphore:
                await _run_step(step, host, emit)

        for step in self.steps:
            await asyncio.gather(*(one(step, h) for h in step.hosts))
            if result.failure is not None:
                return

    async def _run_rolling(self, emit: EventCallback, result: PlanResult) -> None:
        for host in self.hosts:
            for step in self.steps:
                if host not in step.hosts:
                    continue
                if not await _run_step(step, host, emit):
                    return
            if self.gate is not None:
                gate = Step(self.gate_name, [host], verify=self.gate)
                if not await _run_step(gate, host, emit):
                    return


async def _run_step(step: Step, host: str, emit: EventCallback) -> bool:
    """Run one step on one host, emitting its events; True unless it failed."""
    start = time.monotonic()

    def elapsed() -> float:
        return time.monotonic() - start

    deadline = asyncio.timeout(step.timeout)
    try:
        async with deadline:
            if step.check is not None:
                emit(PlanEvent(step.name, host, "checking"))
                reason = await step.check(host)
                if reason is not None:
                    emit(PlanEvent(step.name, host, "skipped", reason, elapsed()))
                    return True
            emit(PlanEvent(step.name, host, "running"))
            details = []
            if step.apply is not None:
                details.append(await step.apply(host) or "")
            if step.verify is not None:
                details.append(await step.verify(host) or "")
    except asyncio.CancelledError:
        emit(PlanEvent(step.name, host, "failed", "cancelled", elapsed()))
        raise
    except TimeoutError as exc:
        detail = (f"did not finish within {step.timeout:g} s" if deadline.expired()
                  else f"timed out ({exc or 'no answer in time'})")
        emit(PlanEvent(step.name, host, "failed", detail, elapsed()))
        return False
    except (StepFailed, UserError) as exc:
        emit(PlanEvent(step.name, host, "failed", str(exc), elapsed()))
        return False
    except Exception as exc:
        log.exception("step %s failed on %s", step.name, host)
        emit(PlanEvent(step.name, host, "failed",
                       f"internal error: {type(exc).__name__}: {exc}", elapsed()))
        return False
    emit(PlanEvent(step.name, host, "done", "; ".join(d for d in details if d), elapsed()))
    return True


__all__ = [
    "FileChange",
    "Plan",
    "PlanEvent",
    "PlanResult",
    "Preview",
    "Step",
    "StepFailed",
    "StepPreview",
    "StepState",
    "file_change",
    "file_removal",
]
