"""Zone-file mode: for servers without dynamic updates (NSD; BIND zones edited by hand).

Over SSH with the Fleet, on the host that keeps the zone file:

1. read   the file (``Host.path`` applies), remember its text, mode and owner;
2. edit   the changed RRsets in place and bump the SOA serial (date-based ``YYYYMMDDnn``
          or + 1, as the file already does) -- :mod:`tui.core.dns.zonetext`;
3. write  atomically with the Fleet's put; the previous file is kept as
          ``NAME.hardway-bak``; refused if the file changed since step 1;
4. check  ``nsd-checkzone ZONE FILE`` (or ``named-checkzone``; whichever the host has);
5. reload ``nsd-control reload ZONE`` (or ``rndc reload ZONE``);
6. verify by querying the server until it serves the new serial and the new records.

When the check (or the reload) fails, the previous file is put back and the result says
which step failed, with the checker's output.  Check and reload commands can be given
(``{zone}`` and ``{file}`` are replaced, shell-quoted) for other layouts, e.g.
``nsd-control -c /etc/nsd/nsd.conf reload {zone}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tui.core.dns.query import DnsClient, DnsUnreachable
from tui.core.dns.records import absolute
from tui.core.dns.update import Change
from tui.core.dns.zonetext import edit_zone_text
from tui.core.errors import UserError
from tui.core.fleet.fleet import Fleet

VERIFY_TIMEOUT = 10.0

CHECKERS = (("nsd-checkzone", "nsd-checkzone {zone} {file}", "nsd-control reload {zone}"),
            ("named-checkzone", "named-checkzone {zone} {file}", "rndc reload {zone}"))
"""(program looked for, check command, reload command), first found wins."""


class ZoneFileStep(StrEnum):
    """The steps of a zone-file edit."""

    READ = "read"
    WRITE = "write"
    CHECK = "check"
    RELOAD = "reload"
    VERIFY = "verify"


@dataclass(frozen=True)
class ZoneFileOptions:
    """How to check and reload on the DNS host.

    Attributes:
        check_command: with ``{zone}`` and ``{file}``; None: detect nsd-checkzone or
            named-checkzone on the host.
        reload_command: with ``{zone}``; None: the one that goes with the checker.
        sudo: run check and reload with ``sudo -n``.
        verify_timeout: seconds to wait for the server to serve the new serial.
    """

    check_command: str | None = None
    reload_command: str | None = None
    sudo: bool = False
    verify_timeout: float = VERIFY_TIMEOUT


@dataclass(frozen=True)
class ZoneFileEdit:
    """A planned edit, ready to preview and apply.

    Attributes:
        host: the Fleet host that keeps the file.
        path: the zone file (logical path; ``Host.path`` maps it).
        zone: absolute zone name.
        changes: the RRset changes.
        old_text, new_text: the file before and after.
        old_serial, new_serial: the SOA serials.
        mode: the file's permission bits (kept).
        owner: ``user:group`` to keep, when we log in as root (else None).
    """

    host: str
    path: str
    zone: str
    changes: tuple[Change, ...]
    old_text: str
    new_text: str
    old_serial: int
    new_serial: int
    mode: int = 0o644
    owner: str | None = None

    def diff(self) -> str:
        """The unified diff of the file."""
        return "".join(difflib.unified_diff(
            self.old_text.splitlines(keepends=True), self.new_text.splitlines(keepends=True),
            fromfile=f"{self.host}:{self.path}", tofile=f"{self.host}:{self.path} (new)"))


@dataclass(frozen=True)
class ZoneFileResult:
    """The outcome of applying a :class:`ZoneFileEdit`.

    Attributes:
        ok: every step passed.
        failed_step: the step that failed (None when ok).
        restored: the previous file was put back after the failure.
        message: what happened and what to check.
        output: the output of the failing (or the check) command.
        backup: where the previous file is kept on the host.
    """

    ok: bool
    failed_step: ZoneFileStep | None
    restored: bool
    message: str
    output: str = ""
    backup: str | None = None


SBIN_PATH = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH; '
"""Checkers and control programs live in sbin, which an ordinary login's PATH lacks."""


def _fill(template: str, zone: str, file: str) -> str:
    return SBIN_PATH + template.replace("{zone}", shlex.quote(zone.rstrip("."))).replace(
        "{file}", shlex.quote(file))


async def plan_zone_file(fleet: Fleet, host: str, path: str, zone: str,
                         changes: Sequence[Change], *, today: dt.date | None = None
                         ) -> ZoneFileEdit:
    """Read the zone file on ``host`` and compute the edit (nothing is written).

    Raises:
        UserError: the file cannot be read or edited safely.
    """
    text = (await fleet.get(host, path)).decode("utf-8", errors="strict")
    new_text, old_serial, new_serial = edit_zone_text(text, zone, changes, today=today)
    remote = fleet.host(host).path(path)
    quoted = shlex.quote(remote)
    probe = await fleet.run([host], f"stat -c '%a %U:%G' {quoted} 2>/dev/null || "
                            f"stat -f '%Lp %Su:%Sg' {quoted}; id -u", timeout=15)
    result = probe[host]
    mode, owner = 0o644, None
    parts = result.stdout.split()
    if result.ok and len(parts) >= 3:
        try:
            mode = int(parts[0], 8)
        except ValueError:
            mode = 0o644
        owner = parts[1] if parts[2] == "0" else None
    return ZoneFileEdit(host, path, absolute(zone), tuple(changes), text, new_text,
                        old_serial, new_serial, mode, owner)


async def _commands(fleet: Fleet, edit: ZoneFileEdit, options: ZoneFileOptions
                    ) -> tuple[str, str]:
    if options.check_command and options.reload_command:
        return options.check_command, options.reload_command
    probe = " || ".join(f"command -v {program} >/dev/null 2>&1 && echo {program}"
                        for program, _c, _r in CHECKERS)
    found = (await fleet.run([edit.host], f"{SBIN_PATH}{{ {probe}; }} || true",
                             timeout=15))[edit.host]
    name = found.stdout.strip().splitlines()[0] if found.stdout.strip() else ""
    for program, check, reload in CHECKERS:
        if program == name:
            return options.check_command or check, options.reload_command or reload
    raise UserError(f"Neither nsd-checkzone nor named-checkzone is on {edit.host}'s PATH, so "
                    "the edited zone file cannot be checked before it is loaded; give "
                    "--check-command and --reload-command.")


async def apply_zone_file(fleet: Fleet, edit: ZoneFileEdit, client: DnsClient, *,
                          options: ZoneFileOptions | None = None) -> ZoneFileResult:
    """Write, check, reload and verify ``edit``; put the old file back if the check or
    the reload fails."""
    options = options or ZoneFileOptions()
    host = fleet.host(edit.host)
    remote = host.path(edit.path)
    try:
        check, reload = await _commands(fleet, edit, options)
        current = (await fleet.get(edit.host, edit.path)).decode("utf-8", errors="replace")
    except UserError as exc:
        return ZoneFileResult(False, ZoneFileStep.READ, False, str(exc))
    if current != edit.old_text:
        return ZoneFileResult(False, ZoneFileStep.READ, False,
                              f"{edit.host}:{edit.path} changed since the edit was planned; "
                              "nothing was written. Plan again to include the other edit.")
    put = await fleet.put(edit.host, edit.new_text.encode(), edit.path, mode=edit.mode,
                          owner=edit.owner, backup=True)
    if not put.ok:
        return ZoneFileResult(False, ZoneFileStep.WRITE, False,
                              f"Writing {edit.host}:{edit.path} failed: {put.error}; the "
                              "previous file is intact.")
    backup = put.backup
    checked = (await fleet.run([edit.host], _fill(check, edit.zone, remote), timeout=60,
                               sudo=options.sudo))[edit.host]
    check_output = (checked.stdout + checked.stderr).strip()
    if not checked.ok:
        restored = await _restore(fleet, edit)
        return ZoneFileResult(False, ZoneFileStep.CHECK, restored,
                              f"The edited zone file failed its check "
                              f"(`{_fill(check, edit.zone, remote)[len(SBIN_PATH):]}`: "
                              f"{checked.error or f'exit {checked.status}'}); "
                              + ("the previous file was put back." if restored else
                                 f"putting the previous file back FAILED: restore it from "
                                 f"{backup} by hand."), check_output, backup)
    reloaded = (await fleet.run([edit.host], _fill(reload, edit.zone, remote), timeout=60,
                                sudo=options.sudo))[edit.host]
    if not reloaded.ok:
        restored = await _restore(fleet, edit)
        return ZoneFileResult(False, ZoneFileStep.RELOAD, restored,
                              f"The reload (`{_fill(reload, edit.zone, remote)[len(SBIN_PATH):]}`) "
                              "failed "
                              f"({reloaded.error or f'exit {reloaded.status}'}); "
                              + ("the previous file was put back (the server still serves "
                                 "it)." if restored else
                                 f"putting the previous file back FAILED: restore {backup}."),
                              (reloaded.stdout + reloaded.stderr).strip(), backup)
    problem = await verify_served(client, edit, options.verify_timeout)
    if problem is not None:
        return ZoneFileResult(False, ZoneFileStep.VERIFY, False, problem, check_output,
                              backup)
    return ZoneFileResult(True, None, False,
                          f"{edit.zone} serial {edit.old_serial} -> {edit.new_serial} is "
                          f"served by {client.server}; the previous file is kept as "
                          f"{backup}.", check_output, backup)


async def _restore(fleet: Fleet, edit: ZoneFileEdit) -> bool:
    put = await fleet.put(edit.host, edit.old_text.encode(), edit.path, mode=edit.mode,
                          owner=edit.owner, backup=False)
    return put.ok


async def verify_served(client: DnsClient, edit: ZoneFileEdit, timeout: float) -> str | None:
    """None when the server serves the new serial and records, else what it serves."""
    deadline = time.monotonic() + timeout
    problem: str | None = "no answer"
    while True:
        try:
            problem = await _served_problem(client, edit)
        except DnsUnreachable as exc:
            problem = f"{client.server} did not answer ({exc.reason})"
        if problem is None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if problem is None:
        return None
    return (f"The file was written, checked and reloaded, but after {timeout:g} s "
            f"{problem}. Check that {client.server} serves this file.")


async def _served_problem(client: DnsClient, edit: ZoneFileEdit) -> str | None:
    soa = await client.rrset(edit.zone, "SOA")
    serial = int(soa.values[0].split()[2]) if soa.values else None
    if serial != edit.new_serial:
        return f"the server answers serial {serial} instead of {edit.new_serial}"
    for change in edit.changes:
        answer = await client.rrset(change.name, change.rdtype)
        want = change.new.values if change.new is not None else ()
        if answer.values != tuple(sorted(want)):
            return (f"{change.name} {change.rdtype} answers "
                    f"{', '.join(answer.values) or 'nothing'}")
    return None


__all__ = ["CHECKERS", "ZoneFileEdit", "ZoneFileOptions", "ZoneFileResult", "ZoneFileStep",
           "apply_zone_file", "plan_zone_file", "verify_served"]
