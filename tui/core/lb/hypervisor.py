"""The VIP's rules on the hypervisor, over SSH: read them back, diff, apply, roll back.

The hypervisor is the inventory's ``[hypervisor]`` (often the SSH jump host too), not a
cluster host, so commands go over the Fleet's connection to it
(:meth:`Fleet.jump_connection`) and are recorded in the Fleet's audit log like every
other remote command.  The "move the VIP" plan uses the same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.lb.ipfw import (
    Backend,
    IpfwCommand,
    RuleDiff,
    VipLayout,
    diff_rules,
    rollback_commands,
    swap_commands,
    wanted_rules,
)
from tui.core.lb.rules import IpfwRule, parse_list
from tui.core.plan import Preview, Step, StepFailed

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory


@dataclass(frozen=True)
class RemoteResult:
    """One command's outcome on the hypervisor."""

    command: str
    status: int | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Exit status 0."""
        return self.status == 0


class ApplyOutcome(enum.Enum):
    """How an apply ended."""

    DONE = "done"
    FAILED = "failed"
    NOT_IN_SYNC = "not-in-sync"


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did: the commands run (in order), where it stopped, the read-back."""

    outcome: ApplyOutcome
    ran: tuple[RemoteResult, ...]
    diff: RuleDiff | None = None
    not_run: tuple[IpfwCommand, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Applied and read back in sync."""
        return self.outcome is ApplyOutcome.DONE


def vip_backends(inventory: Inventory) -> list[Backend]:
    """The controllers behind the API VIP (their address and the API port)."""
    return [Backend(h.name, str(h.address), inventory.api.port) for h in inventory.controllers]


def vip_layout(inventory: Inventory, *, vip: str | None = None, **kwargs: int) -> VipLayout:
    """The VIP's ipfw layout from the inventory (``vip`` overrides ``api.vip``).

    Raises:
        UserError: the inventory has no VIP, or its hypervisor does not use ipfw.
    """
    address = vip or (str(inventory.api.vip) if inventory.api.vip is not None else None)
    if address is None:
        raise UserError(f"{inventory.path}: [api] vip is not set, so there is no VIP to "
                        f"load-balance (add e.g. vip = \"10.50.0.10\").")
    hypervisor = inventory.hypervisor
    if hypervisor is not None and hypervisor.firewall not in ("ipfw",):
        raise UserError(f"{inventory.path}: [hypervisor] firewall is "
                        f"{hypervisor.firewall!r}; `hardway vip rules/apply` manage ipfw rule "
                        f"sets only.")
    return VipLayout(vip=address, port=inventory.api.port, **kwargs)


class HypervisorIpfw:
    """Run ipfw on the hypervisor ``name`` through ``fleet``.

    Args:
        fleet: a fleet built with the inventory (its hypervisor is a jump host of it).
        name: the hypervisor's inventory name.
        ipfw: the ipfw command (e.g. ``/sbin/ipfw`` or ``sudo ipfw``); split like a shell.
        timeout: seconds per command.
    """

    def __init__(self, fleet: Fleet, name: str, *, ipfw: str = "ipfw",
                 timeout: float = 30.0) -> None:
        self.fleet = fleet
        self.name = name
        self.ipfw = shlex.split(ipfw) or ["ipfw"]
        self.timeout = timeout

    def _line(self, command: IpfwCommand) -> str:
        return shlex.join([*self.ipfw, *command.argv[1:]])

    async def run(self, command: str, *, input: str | None = None) -> RemoteResult:
        """Run one shell command on the hypervisor (audited; ``input`` goes to its stdin
        and is never recorded).

        Raises:
            UserError: the hypervisor cannot be reached.
        """
        start = time.monotonic()
        try:
            status, stdout, stderr = await self._execute(command, input)
        except UserError:
            raise
        except Exception as exc:  # asyncssh errors, timeouts: one sentence for the user
            self._audit(command, None, start, str(exc) or type(exc).__name__)
            raise UserError(f"{self.name}: `{command}` could not run: "
                            f"{str(exc) or type(exc).__name__}") from None
        self._audit(command, status, start)
        return RemoteResult(command, status, stdout, stderr)

    async def _execute(self, command: str, input: str | None
                       ) -> tuple[int | None, str, str]:
        conn = await self.fleet.jump_connection(self.name)
        result = await conn.run(command, check=False, timeout=self.timeout, input=input)
        stdout = result.stdout if isinstance(result.stdout, str) else ""
        stderr = result.stderr if isinstance(result.stderr, str) else ""
        return result.exit_status, stdout, stderr

    def _audit(self, command: str, status: int | None, start: float,
               error: str | None = None) -> None:
        if self.fleet.audit is None:
            return
        extra = {"error": error} if error is not None else {}
        self.fleet.audit.record(host=self.name, kind="exec", command=command,
                                status=status, duration=time.monotonic() - start, **extra)

    def commands(self, commands: Sequence[IpfwCommand]) -> list[str]:
        """The shell lines ``commands`` become with this hypervisor's ipfw."""
        return [self._line(c) for c in commands]

    async def read_rules(self) -> list[IpfwRule]:
        """``ipfw -S list`` parsed.

        Raises:
            UserError: ipfw failed there (its message), or printed something unparsable.
        """
        line = shlex.join([*self.ipfw, "-S", "list"])
        result = await self.run(line)
        if not result.ok:
            raise UserError(f"{self.name}: `{line}` failed (exit {result.status}): "
                            f"{result.stderr.strip() or result.stdout.strip()}")
        try:
            return parse_list(result.stdout)
        except ValueError as exc:
            raise UserError(f"{self.name}: cannot read the output of `{line}`: {exc}") from None

    async def diff(self, layout: VipLayout, backends: Sequence[Backend]) -> RuleDiff:
        """The VIP's wanted rules against what the hypervisor has now."""
        return diff_rules(wanted_rules(layout, backends), await self.read_rules(), layout)

    async def _run_all(self, commands: Sequence[IpfwCommand], layout: VipLayout,
                       backends: Sequence[Backend] | None) -> ApplyResult:
        ran: list[RemoteResult] = []
        for index, command in enumerate(commands):
            result = await self.run(self._line(command))
            ran.append(result)
            if not result.ok:
                return ApplyResult(ApplyOutcome.FAILED, tuple(ran),
                                   not_run=tuple(commands[index + 1:]))
        if backends is None:
            return ApplyResult(ApplyOutcome.DONE, tuple(ran))
        diff = await self.diff(layout, backends)
        outcome = ApplyOutcome.DONE if diff.in_sync else ApplyOutcome.NOT_IN_SYNC
        return ApplyResult(outcome, tuple(ran), diff)

    async def apply(self, layout: VipLayout, backends: Sequence[Backend]) -> ApplyResult:
        """Build the rules in the spare set, swap, and read back (stops at a failure)."""
        return await self._run_all(swap_commands(layout, backends), layout, backends)

    async def rollback(self, layout: VipLayout) -> ApplyResult:
        """Swap the rules kept in the spare set back in."""
        return await self._run_all(rollback_commands(layout), layout, None)


class LocalIpfw(HypervisorIpfw):
    """The same on the hypervisor itself: commands run here, not over SSH (the guard
    service, ``hardway vip guard --local``)."""

    async def _execute(self, command: str, input: str | None
                       ) -> tuple[int | None, str, str]:
        process = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.PIPE if input is not None else
            asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await process.communicate(
                    input.encode() if input is not None else None)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise UserError(f"{self.name}: `{command}` did not finish within "
                            f"{self.timeout:g} s") from None
        return (process.returncode, out.decode(errors="replace"),
                err.decode(errors="replace"))


def ipfw_step(hv: HypervisorIpfw, layout: VipLayout, backends: Sequence[Backend], *,
              name: str | None = None) -> Step:
    """A plan step (on the hypervisor) that swaps the VIP's wanted rules in.

    Skipped when the hypervisor already has them; the preview lists the ipfw commands
    and the current difference; verify reads the rules back.
    """
    commands = swap_commands(layout, backends)

    async def check(_host: str) -> str | None:
        diff = await hv.diff(layout, backends)
        return f"set {layout.active_set} already forwards {layout.vip}" if diff.in_sync else None

    async def preview(_host: str) -> Preview:
        diff = await hv.diff(layout, backends)
        return Preview(commands=tuple(hv.commands(commands)), notes=tuple(diff.lines()))

    async def apply(_host: str) -> str | None:
        result = await hv.apply(layout, backends)
        if result.outcome is ApplyOutcome.FAILED:
            last = result.ran[-1]
            raise StepFailed(f"`{last.command}` failed (exit {last.status}): "
                             f"{(last.stderr or last.stdout).strip()}")
        return f"set {layout.active_set} swapped; the previous rules are in set " \
               f"{layout.spare_set}"

    async def verify(_host: str) -> str | None:
        diff = await hv.diff(layout, backends)
        if not diff.in_sync:
            raise StepFailed(f"the rules read back differ: {'; '.join(diff.lines())}")
        return f"{len(backends)} backends behind {layout.vip}:{layout.port}"

    return Step(name or f"ipfw rules for {layout.vip}", [hv.name], check=check,
                preview=preview, apply=apply, verify=verify)


__all__ = ["ApplyOutcome", "ApplyResult", "HypervisorIpfw", "LocalIpfw", "RemoteResult",
           "ipfw_step",
           "vip_backends", "vip_layout"]
