"""Install (or remove) the VIP guard as a service on the hypervisor, as a previewed plan.

``hardway vip guard --install`` prepares a :class:`~tui.core.plan.Plan` of two steps on
the hypervisor (the files, then the service), previewed like every plan of the project
(each file with its diff against what the hypervisor has, the exact commands), applied
with ``--yes``; ``--uninstall`` prepares the reverse.  A rerun finds every step done and
skips it.

Files are written over the Fleet's connection to the hypervisor with one shell script
each: the content goes to a temporary file beside the target (stdin, never the command
line), gets its mode, the previous file is kept as ``.hardway-bak`` and the temporary file
is renamed over the target, so a reader sees the old file or the new one, never half of
either.  The service file is written last, so the service never names an inventory that
is not there yet.  Removing a file moves it to its ``.hardway-bak``.

Which service: FreeBSD's rc.d (``sysrc hardway_guard_enable=YES``, ``service
hardway_guard start``) or systemd (``systemctl daemon-reload``, ``systemctl enable --now
hardway-guard.service``), from the hypervisor's ``uname -s`` unless given.
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.lb.guard_service import (
    RC_NAME,
    UNIT_NAME,
    GuardService,
    ServiceKind,
    kind_for_uname,
    render_inventory,
    render_script,
)
from tui.core.plan import FileChange, Plan, Preview, Step, StepFailed, file_change, file_removal

if TYPE_CHECKING:
    from tui.core.inventory.model import Inventory
    from tui.core.lb.hypervisor import HypervisorIpfw

BACKUP_SUFFIX = ".hardway-bak"
MISSING = 3
"""Exit status of the read script when the file does not exist."""

WRITE_SCRIPT = """\
set -e
target={path}
temp="$(dirname "$target")/.$(basename "$target").hardway-tmp-$$"
trap 'rm -f "$temp"' EXIT
mkdir -p "$(dirname "$target")"
(umask 077 && cat > "$temp")
chmod {mode:o} "$temp"
if [ -e "$target" ]; then cp -p "$target" "$target{backup}"; fi
mv -f "$temp" "$target"
"""

REMOVE_SCRIPT = "if [ -e {path} ]; then mv -f {path} {path}{backup}; fi"

SETTLE_CHECKS = 4
"""Times the service must read as running, 0.5 s apart, before the install calls it up."""


@dataclass
class HypervisorFiles:
    """Read, write and move away files on the hypervisor through its runner."""

    hv: HypervisorIpfw

    async def read(self, path: str) -> bytes | None:
        """The file's content, or None when it does not exist.

        Raises:
            UserError: it exists but cannot be read (the hypervisor's words).
        """
        quoted = shlex.quote(path)
        result = await self.hv.run(f"test -e {quoted} || exit {MISSING}; cat -- {quoted}")
        if result.status == MISSING:
            return None
        if not result.ok:
            raise UserError(f"{self.hv.name}: cannot read {path}: "
                            f"{result.stderr.strip() or f'exit {result.status}'}")
        return result.stdout.encode()

    async def write(self, path: str, data: bytes, mode: int) -> None:
        """Write ``data`` atomically (temp file, mode, backup, rename).

        Raises:
            StepFailed: the hypervisor refused (its words).
        """
        script = WRITE_SCRIPT.format(path=shlex.quote(path), mode=mode, backup=BACKUP_SUFFIX)
        result = await self.hv.run(f"sh -c {shlex.quote(script)}", input=data.decode())
        if not result.ok:
            raise StepFailed(f"writing {path} on {self.hv.name} failed: "
                             f"{result.stderr.strip() or f'exit {result.status}'}")

    async def remove(self, path: str) -> None:
        """Move ``path`` to its backup name (nothing when absent).

        Raises:
            StepFailed: the hypervisor refused.
        """
        quoted = shlex.quote(path)
        result = await self.hv.run(REMOVE_SCRIPT.format(path=quoted, backup=BACKUP_SUFFIX))
        if not result.ok:
            raise StepFailed(f"removing {path} on {self.hv.name} failed: "
                             f"{result.stderr.strip() or f'exit {result.status}'}")


@dataclass(frozen=True)
class WantedFile:
    """A file the install writes: path, content, mode and what it is."""

    path: str
    data: bytes
    mode: int
    description: str
    diff: bool = True


@dataclass
class GuardInstall:
    """The install or removal of the guard service on one hypervisor.

    Attributes:
        service: what the service runs (kind, settings, command).
        files: the files written, in order (inventory, CA, then the service file).
        hv: the hypervisor's runner.
        plan: the steps (files and service, or the reverse for a removal).
        uninstall: True for ``--uninstall``.
    """

    service: GuardService
    files: list[WantedFile]
    hv: HypervisorIpfw
    uninstall: bool = False
    plan: Plan = field(init=False)
    io: HypervisorFiles = field(init=False)
    _wrote: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.io = HypervisorFiles(self.hv)
        self.plan = Plan([self._service_off_step(), self._removal_step()] if self.uninstall
                         else [self._files_step(), self._service_on_step()])

    @property
    def host(self) -> str:
        """The hypervisor's name (the plan's only host)."""
        return self.hv.name

    # -- commands -----------------------------------------------------------------------

    def start_commands(self, restart: bool) -> list[str]:
        """Enable the service and start it (restart it when its files changed)."""
        if self.service.kind is ServiceKind.RC_D:
            verb = "restart" if restart else "start"
            return [f"sysrc {RC_NAME}_enable=YES", f"service {RC_NAME} {verb}"]
        now = [f"systemctl restart {UNIT_NAME}"] if restart else []
        return ["systemctl daemon-reload",
                f"systemctl enable {UNIT_NAME}" if restart else
                f"systemctl enable --now {UNIT_NAME}", *now]

    def stop_commands(self, running: bool, enabled: bool) -> list[str]:
        """Stop the service (when it runs) and disable it (when it is enabled): rc.d's
        ``onestop`` and ``sysrc -x`` fail on a service that is not running or not set."""
        if self.service.kind is ServiceKind.RC_D:
            return ([f"service {RC_NAME} onestop"] if running else []) + \
                ([f"sysrc -x {RC_NAME}_enable"] if enabled else [])
        return [f"systemctl disable --now {UNIT_NAME}"]

    async def _sh(self, command: str) -> None:
        result = await self.hv.run(command)
        if not result.ok:
            words = (result.stderr or result.stdout).strip() or f"exit {result.status}"
            raise StepFailed(f"`{command}` failed on {self.host}: {words}")

    async def running(self) -> bool:
        """True when the service is running now."""
        if self.service.kind is ServiceKind.RC_D:
            command = f"service {RC_NAME} onestatus"
        else:
            command = f"systemctl is-active --quiet {UNIT_NAME}"
        return (await self.hv.run(command)).ok

    async def enabled(self) -> bool:
        """True when the service starts at boot."""
        if self.service.kind is ServiceKind.RC_D:
            result = await self.hv.run(f"sysrc -n {RC_NAME}_enable")
            return result.ok and result.stdout.strip().upper() == "YES"
        return (await self.hv.run(f"systemctl is-enabled --quiet {UNIT_NAME}")).ok

    async def recent_log(self) -> str:
        """The service's last lines of output (for a failure)."""
        if self.service.kind is ServiceKind.RC_D:
            log = self.service.paths.log or "/var/log/messages"
            command = f"tail -n 8 {shlex.quote(log)}"
        else:
            command = f"journalctl -u {UNIT_NAME} -n 8 --no-pager"
        result = await self.hv.run(command)
        return " | ".join(line.strip() for line in result.stdout.splitlines()
                          if line.strip())

    # -- install ------------------------------------------------------------------------

    async def changes(self) -> list[FileChange]:
        """Each wanted file against what the hypervisor has."""
        olds = await asyncio.gather(*(self.io.read(f.path) for f in self.files))
        return [file_change(f.path, f.data, old, mode=f.mode, description=f.description,
                            diff_text=f.diff) for f, old in zip(self.files, olds, strict=True)]

    def _files_step(self) -> Step:
        async def check(_host: str) -> str | None:
            if any(c.changed for c in await self.changes()):
                return None
            return f"the guard's {len(self.files)} files are in place"

        async def preview(_host: str) -> Preview:
            return Preview(files=tuple(await self.changes()))

        async def apply(_host: str) -> str:
            written = 0
            for wanted, change in zip(self.files, await self.changes(), strict=True):
                if change.changed:
                    await self.io.write(wanted.path, wanted.data, wanted.mode)
                    written += 1
            self._wrote = written > 0
            return f"{written} file{'s' * (written != 1)} written"

        async def verify(_host: str) -> str:
            stale = [c.path for c in await self.changes() if c.changed]
            if stale:
                raise StepFailed(f"{', '.join(stale)} read back different on {self.host}")
            return "read back"

        return Step("guard files", [self.hv.name], check=check, preview=preview,
                    apply=apply, verify=verify)

    def _service_on_step(self) -> Step:
        name = RC_NAME if self.service.kind is ServiceKind.RC_D else UNIT_NAME

        async def check(_host: str) -> str | None:
            if self._wrote or any(c.changed for c in await self.changes()):
                return None
            if await self.enabled() and await self.running():
                return f"{name} is enabled and running"
            return None

        async def preview(_host: str) -> Preview:
            running = await self.running()
            return Preview(commands=tuple(self.start_commands(running)), notes=(
                f"then {name} must stay running for {SETTLE_CHECKS * 0.5:g} s",))

        async def apply(_host: str) -> str:
            restart = self._wrote and await self.running()
            for command in self.start_commands(restart):
                await self._sh(command)
            return "restarted" if restart else "started"

        async def verify(_host: str) -> str:
            for _ in range(SETTLE_CHECKS):
                await asyncio.sleep(0.5)
                if not await self.running():
                    log = await self.recent_log()
                    raise StepFailed(f"{name} does not stay running on {self.host}"
                                     + (f"; its last lines: {log}" if log else ""))
            return f"{name} is running"

        return Step("guard service", [self.hv.name], check=check, preview=preview,
                    apply=apply, verify=verify)

    # -- uninstall ----------------------------------------------------------------------

    def _service_off_step(self) -> Step:
        name = RC_NAME if self.service.kind is ServiceKind.RC_D else UNIT_NAME

        async def check(_host: str) -> str | None:
            if await self.running() or await self.enabled():
                return None
            return f"{name} is neither running nor enabled"

        async def commands() -> list[str]:
            return self.stop_commands(await self.running(), await self.enabled())

        async def preview(_host: str) -> Preview:
            return Preview(commands=tuple(await commands()))

        async def apply(_host: str) -> str:
            for command in await commands():
                await self._sh(command)
            return "stopped and disabled"

        async def verify(_host: str) -> str:
            if await self.running():
                raise StepFailed(f"{name} still runs on {self.host}")
            return "stopped"

        return Step("stop guard service", [self.hv.name], check=check, preview=preview,
                    apply=apply, verify=verify)

    def _removal_step(self) -> Step:
        after = ["systemctl daemon-reload"] if self.service.kind is ServiceKind.SYSTEMD else []

        async def present() -> list[tuple[WantedFile, bytes]]:
            olds = await asyncio.gather(*(self.io.read(f.path) for f in self.files))
            return [(f, old) for f, old in zip(self.files, olds, strict=True)
                    if old is not None]

        async def check(_host: str) -> str | None:
            return None if await present() else "none of the guard's files is there"

        async def preview(_host: str) -> Preview:
            # the service file first: nothing may start a guard whose inventory is gone
            found = sorted(await present(), key=lambda pair: pair[0] is not self.files[-1])
            return Preview(commands=tuple(after), files=tuple(
                file_removal(f.path, old, description=f"kept as {f.path}{BACKUP_SUFFIX}")
                for f, old in found))

        async def apply(_host: str) -> str:
            found = sorted(await present(), key=lambda pair: pair[0] is not self.files[-1])
            for wanted, _old in found:
                await self.io.remove(wanted.path)
            for command in after:
                await self._sh(command)
            return f"{len(found)} file{'s' * (len(found) != 1)} moved away"

        async def verify(_host: str) -> str:
            left = await present()
            if left:
                raise StepFailed(f"{', '.join(f.path for f, _ in left)} still on {self.host}")
            return "gone"

        return Step("remove guard files", [self.hv.name], check=check, preview=preview,
                    apply=apply, verify=verify)


async def detect_kind(hv: HypervisorIpfw) -> ServiceKind:
    """rc.d or systemd, from the hypervisor's ``uname -s``.

    Raises:
        UserError: unreachable, or neither FreeBSD nor Linux.
    """
    result = await hv.run("uname -s")
    if not result.ok:
        raise UserError(f"{hv.name}: `uname -s` failed ({result.stderr.strip() or result.status}); "
                        "choose the service kind with --service rc.d or --service systemd.")
    return kind_for_uname(result.stdout)


SERVICE_TOOLS = {ServiceKind.RC_D: ("sysrc", "service", "/usr/sbin/daemon"),
                 ServiceKind.SYSTEMD: ("systemctl", "journalctl")}
"""What each kind of service needs on the hypervisor."""


async def require_command(hv: HypervisorIpfw, service: GuardService) -> None:
    """Refuse, before anything is written, a hypervisor that lacks the ``hardway``
    command or the service manager's tools.

    Raises:
        UserError: the program, or a tool, is not found there.
    """
    program = shlex.split(service.command)[0]
    result = await hv.run(f"command -v {shlex.quote(program)}")
    if not result.ok:
        raise UserError(
            f"{hv.name} has no {program}: the service would run `{service.command} vip "
            f"guard` there. Install hardway on {hv.name} first (e.g. pip install hardway), "
            "or name the command with --guard-command.")
    tools = SERVICE_TOOLS[service.kind]
    found = await hv.run(" && ".join(f"command -v {t} >/dev/null" for t in tools))
    if not found.ok:
        other = "systemd" if service.kind is ServiceKind.RC_D else "rc.d"
        raise UserError(
            f"{hv.name} lacks {' or '.join(tools)}, which "
            f"{'an rc.d' if service.kind is ServiceKind.RC_D else 'a systemd'} service "
            f"needs; is it the right kind of service for {hv.name}? (--service {other} "
            "chooses the other; without --service the hypervisor's uname -s decides.)")


def guard_files(inventory: Inventory, service: GuardService, ca_pem: bytes) -> list[WantedFile]:
    """The files the service needs, in the order they are written."""
    paths = service.paths
    script_mode = 0o755 if service.kind is ServiceKind.RC_D else 0o644
    what = "rc.d script" if service.kind is ServiceKind.RC_D else "systemd unit"
    return [
        WantedFile(paths.inventory, render_inventory(inventory, service.layout).encode(),
                   0o644, "the guard's inventory (controllers, VIP, hypervisor; no secrets)"),
        WantedFile(paths.ca, ca_pem, 0o644, "the cluster CA the /readyz probes trust",
                   diff=False),
        WantedFile(paths.script, render_script(service).encode(), script_mode,
                   f"the guard's {what}"),
    ]


async def prepare_guard_install(inventory: Inventory, hv: HypervisorIpfw,
                                service: GuardService, ca_pem: bytes, *,
                                detect: bool = True, uninstall: bool = False
                                ) -> GuardInstall:
    """The install (or removal) plan for ``service`` on ``hv``.

    Args:
        inventory: the cluster.
        hv: the hypervisor's runner.
        service: the service (its kind is replaced by ``uname -s``'s when ``detect``).
        ca_pem: the cluster CA.
        detect: ask the hypervisor which kind of service it runs.
        uninstall: prepare the removal instead.

    Raises:
        UserError: unknown system, or (install) the ``hardway`` command is missing there.
    """
    if detect:
        service = service.with_kind(await detect_kind(hv))
    if not uninstall:
        await require_command(hv, service)
    return GuardInstall(service, guard_files(inventory, service, ca_pem), hv,
                        uninstall=uninstall)


__all__ = ["GuardInstall", "HypervisorFiles", "WantedFile", "detect_kind", "guard_files",
           "prepare_guard_install", "require_command"]
