"""The rollback of a VIP move: the journal's changes undone, last first.

:func:`undo_steps` turns the journal's pending entries into plan steps (``undo
aliases``, ``undo rules``...), one per step kind, in reverse order of the move.  Each
undo checks first whether things are already as they were (then it is skipped), shows
the exact commands, file diffs or DNS update it will make, puts the state recorded
before the change back, and verifies it.  An entry is marked ``undone`` in the journal
once verified, so a rollback that stops can be run again.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any

from tui.core.errors import UserError
from tui.core.lb.aliases import (
    UNIT_NAME,
    AliasState,
    add_command,
    alias_files,
    remove_command,
)
from tui.core.lb.move_context import MoveContext, MoveStepKind, batch_script, failed_line
from tui.core.lb.move_inventory import write_text_atomic
from tui.core.lb.move_journal import EntryState, JournalEntry
from tui.core.lb.move_rules import SetState, restore_commands
from tui.core.lb.move_steps import alias_present, push, remote_file, rrset_from, unb64
from tui.core.pki.ca import write_atomic
from tui.core.pki.inspect import inspect_pem
from tui.core.plan import FileChange, Preview, Step, StepFailed, file_change, file_removal


def _sudo(ctx: MoveContext, command: str) -> str:
    return f"sudo {command}" if ctx.options.sudo else command


def _by_host(entries: list[JournalEntry]) -> dict[str, JournalEntry]:
    return {e.host: e for e in entries}


def _done(ctx: MoveContext, entry: JournalEntry) -> None:
    """Mark ``entry`` undone, while the rollback runs (never from a preview's check)."""
    if ctx.live:
        ctx.need_journal().mark(entry, EntryState.UNDONE)


async def _run(ctx: MoveContext, host: str, commands: list[str]) -> None:
    """Run ``commands`` on ``host`` in order, in one round trip; stop at the first failure."""
    if not commands:
        return
    result = (await ctx.fleet.run([host], batch_script(commands)))[host]
    if not result.ok:
        failed, reason = failed_line(result.stderr, result.stdout, len(commands))
        what = f"`{commands[failed]}`" if failed is not None else "the commands"
        raise StepFailed(f"{what} failed: {result.error or reason or f'exit {result.status}'}")


# -- aliases: files and live addresses back as they were -------------------------------


def _alias_commands(ctx: MoveContext, host: str, entry: JournalEntry) -> list[str]:
    vip = ctx.new.vip if entry.step == MoveStepKind.ALIASES.value else ctx.old.vip
    if entry.step == MoveStepKind.REMOVE_ALIASES.value:
        return [_sudo(ctx, f"sh -c {shlex.quote(add_command(vip))}")] \
            if entry.undo.get("present") else []
    commands = []
    if not entry.undo.get("present"):
        commands.append(_sudo(ctx, f"sh -c {shlex.quote(remove_command(vip))}"))
    files = alias_files(vip)
    if entry.undo.get("unit") is None:
        commands.append(_sudo(ctx, f"systemctl disable {UNIT_NAME}"))
    for path, key in ((files.unit_path, "unit"), (files.sysctl_path, "sysctl")):
        if entry.undo.get(key) is None:
            real = ctx.inventory.host(host).path(path)
            commands.append(_sudo(ctx, f"rm -f {shlex.quote(real)}"))
    commands.append(_sudo(ctx, "systemctl daemon-reload"))
    return commands


def aliases_undo(ctx: MoveContext, kind: MoveStepKind, entries: list[JournalEntry]) -> Step:
    """Put the controllers' lo and alias files back (for ALIASES or REMOVE_ALIASES)."""
    hosts = _by_host(entries)
    adding = kind is MoveStepKind.ALIASES
    vip = ctx.new.vip if adding else ctx.old.vip
    files = alias_files(vip)

    def wanted_state(entry: JournalEntry) -> AliasState:
        return AliasState.PRESENT if entry.undo.get("present") else AliasState.ABSENT

    async def as_before(host: str) -> bool:
        entry = hosts[host]
        if await alias_present(ctx, host, vip) is not wanted_state(entry):
            return False
        if not adding:
            return True
        for path, key in ((files.unit_path, "unit"), (files.sysctl_path, "sysctl")):
            if await remote_file(ctx, host, path) != unb64(entry.undo.get(key)):
                return False
        return True

    async def check(host: str) -> str | None:
        if await as_before(host):
            _done(ctx, hosts[host])
            return f"lo and the alias files are as before the move ({vip})"
        return None

    async def preview(host: str) -> Preview:
        entry = hosts[host]
        changes: list[FileChange] = []
        if adding:
            for path, key in ((files.unit_path, "unit"), (files.sysctl_path, "sysctl")):
                old = unb64(entry.undo.get(key))
                now = await remote_file(ctx, host, path)
                changes.append(file_change(path, old, now, description="as before the move")
                               if old is not None else file_removal(path, now,
                                                                    description="absent "
                                                                    "before the move"))
        return Preview(commands=tuple(_alias_commands(ctx, host, entry)), files=tuple(changes))

    async def apply(host: str) -> str | None:
        entry = hosts[host]
        if adding:
            for path, key in ((files.unit_path, "unit"), (files.sysctl_path, "sysctl")):
                old = unb64(entry.undo.get(key))
                if old is not None:
                    put = await ctx.fleet.put(host, old, path)
                    if not put.ok:
                        raise StepFailed(f"writing {path} failed: {put.error}")
        await _run(ctx, host, _alias_commands(ctx, host, entry))
        return f"{vip}/32 {'on' if entry.undo.get('present') else 'off'} lo as before"

    async def verify(host: str) -> str | None:
        if not await as_before(host):
            raise StepFailed(f"{host}'s lo or alias files still differ from before the move")
        _done(ctx, hosts[host])
        return "as before"

    return Step(f"undo {kind.value}", list(hosts), check=check, preview=preview, apply=apply,
                verify=verify)


# -- ipfw sets back as they were -------------------------------------------------------


def rules_undo(ctx: MoveContext, kind: MoveStepKind, entry: JournalEntry) -> Step:
    """Both ipfw sets exactly as recorded before ``kind`` changed them."""
    try:
        before = SetState.from_json(entry.undo["sets"])
    except (KeyError, ValueError) as exc:
        raise UserError(f"The journal's ipfw sets for {kind.value} cannot be read ({exc}).") \
            from None
    commands = restore_commands(ctx.old, before)

    async def check(_host: str) -> str | None:
        if (await ctx.sets()).same_as(before):
            _done(ctx, entry)
            return f"sets {ctx.old.active_set}/{ctx.old.spare_set} are as before {kind.value}"
        return None

    async def preview(_host: str) -> Preview:
        return Preview(commands=ctx.lines(commands),
                       notes=tuple(f"afterwards {line}" for lines in before.lines().values()
                                   for line in lines))

    async def apply(_host: str) -> str | None:
        await ctx.run_ipfw(commands)
        return f"sets {ctx.old.active_set}/{ctx.old.spare_set} restored"

    async def verify(_host: str) -> str | None:
        await ctx.expect_sets(before, f"after restoring the sets of {kind.value}")
        _done(ctx, entry)
        return "read back"

    return Step(f"undo {kind.value}", [entry.host], check=check, preview=preview, apply=apply,
                verify=verify)


# -- the certificate -------------------------------------------------------------------


def certificate_undo(ctx: MoveContext, entry: JournalEntry) -> Step:
    """The previous kubernetes.pem and key back in the PKI, pushed with the health gate."""
    journal = ctx.need_journal()
    cert_path, key_path = ctx.pki_dir / "kubernetes.pem", ctx.pki_dir / "kubernetes-key.pem"
    if not entry.undo.get("had_cert"):
        raise UserError("The move found no kubernetes.pem before it issued one, so there is "
                        "no previous certificate to put back.")
    old_cert = journal.kept("kubernetes.pem.before")
    old_key = journal.kept("kubernetes-key.pem.before")
    old_fp = inspect_pem(old_cert, "kubernetes.pem before the move").fingerprint

    async def served_old() -> bool:
        from tui.core.health.cert_checks import served_certificate
        from tui.core.health.probes import tls_context

        for name in ctx.controllers:
            address = str(ctx.inventory.host(name).address)
            try:
                info = await served_certificate(ctx.dialer, address, ctx.inventory.api.port,
                                                tls_context(None))
            except (OSError, ValueError) as exc:
                raise StepFailed(f"{name} serves no certificate on :"
                                 f"{ctx.inventory.api.port}: {exc}") from None
            if info.fingerprint != old_fp:
                return False
        return True

    async def check(_host: str) -> str | None:
        if cert_path.exists() and cert_path.read_bytes() == old_cert and await served_old():
            _done(ctx, entry)
            return "every controller serves the previous kubernetes.pem"
        return None

    async def preview(_host: str) -> Preview:
        now = cert_path.read_bytes() if cert_path.exists() else None
        return Preview(files=(
            file_change(str(cert_path), old_cert, now, diff_text=False,
                        description=f"the previous certificate ({old_fp[:23]})"),
            FileChange(str(key_path), len(old_key), hashlib.sha256(old_key).hexdigest(),
                       0o600, secret=True, description="the previous key")),
            notes=(f"then pushed to {', '.join(ctx.controllers)} one at a time with the "
                   "health-gated restart",))

    async def apply(_host: str) -> str | None:
        write_atomic(key_path, old_key, 0o600)
        write_atomic(cert_path, old_cert, 0o644)
        return await push(ctx, MoveStepKind.CERTIFICATE)

    async def verify(_host: str) -> str | None:
        if not await served_old():
            raise StepFailed("a controller still serves another certificate than the "
                             f"previous kubernetes.pem ({old_fp[:23]})")
        _done(ctx, entry)
        return "every controller serves the previous certificate"

    return Step(f"undo {MoveStepKind.CERTIFICATE.value}", [entry.host], check=check,
                preview=preview, apply=apply, verify=verify)


# -- DNS -------------------------------------------------------------------------------


def dns_undo(ctx: MoveContext, kind: MoveStepKind, entry: JournalEntry) -> Step:
    """The API name's RRset back to its value before ``kind`` (conditional on the value
    the move left)."""
    before, after = rrset_from(entry.undo.get("before")), rrset_from(entry.undo.get("after"))

    def values(rrset: Any) -> tuple[str, ...]:
        return tuple(sorted(rrset.values)) if rrset is not None else ()

    def change() -> Any:
        return ctx.rrset_change(after, values(before), ttl=before.ttl if before else None)

    async def check(_host: str) -> str | None:
        if values(await ctx.api_rrset()) == values(before):
            _done(ctx, entry)
            return f"the API name answers {', '.join(values(before)) or 'nothing'} as before"
        return None

    async def preview(_host: str) -> Preview:
        return Preview(commands=(ctx.update_text(change()),),
                       notes=("refused (nothing changed) if the name no longer has the "
                              "value the move left",))

    async def apply(_host: str) -> str | None:
        return await ctx.send(change())

    async def verify(_host: str) -> str | None:
        now = values(await ctx.api_rrset())
        if now != values(before):
            raise StepFailed(f"the server answers {', '.join(now) or 'nothing'}")
        _done(ctx, entry)
        return f"answers {', '.join(now) or 'nothing'}"

    return Step(f"undo {kind.value}", [entry.host], check=check, preview=preview, apply=apply,
                verify=verify)


# -- the inventory ---------------------------------------------------------------------


def inventory_undo(ctx: MoveContext, entry: JournalEntry) -> Step:
    """The inventory's text as before the move (refused if it changed since)."""
    journal = ctx.need_journal()
    path = journal.inventory
    old = journal.kept("inventory.before")

    def current() -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StepFailed(f"{path}: {exc.strerror or exc}") from None

    async def check(_host: str) -> str | None:
        if current() == old:
            _done(ctx, entry)
            return f"{path.name} is as before the move"
        return None

    async def preview(_host: str) -> Preview:
        return Preview(files=(file_change(str(path), old, current(),
                                          description="as before the move"),))

    async def apply(_host: str) -> str | None:
        now = current()
        if hashlib.sha256(now).hexdigest() != entry.undo.get("after"):
            raise StepFailed(f"{path} changed after the move wrote it; put back "
                             f"{journal.directory / 'inventory.before'} by hand after "
                             "comparing")
        write_text_atomic(path, old.decode())
        return f"{path.name} restored"

    async def verify(_host: str) -> str | None:
        if current() != old:
            raise StepFailed(f"{path} still differs from before the move")
        _done(ctx, entry)
        return "as before"

    return Step(f"undo {MoveStepKind.INVENTORY.value}", [entry.host], check=check,
                preview=preview, apply=apply, verify=verify)


def undo_steps(ctx: MoveContext) -> list[Step]:
    """The rollback's steps: the journal's pending entries grouped by step, last first."""
    journal = ctx.need_journal()
    groups: list[tuple[MoveStepKind, list[JournalEntry]]] = []
    for entry in journal.pending():
        kind = MoveStepKind(entry.step)
        if groups and groups[-1][0] is kind:
            groups[-1][1].append(entry)
        else:
            groups.append((kind, [entry]))
    steps: list[Step] = []
    for kind, entries in groups:
        if kind in (MoveStepKind.ALIASES, MoveStepKind.REMOVE_ALIASES):
            steps.append(aliases_undo(ctx, kind, entries))
        elif kind in (MoveStepKind.RULES, MoveStepKind.SWITCH, MoveStepKind.REMOVE_RULES):
            steps.append(rules_undo(ctx, kind, entries[0]))
        elif kind is MoveStepKind.CERTIFICATE:
            steps.append(certificate_undo(ctx, entries[0]))
        elif kind in (MoveStepKind.DNS, MoveStepKind.REMOVE_DNS):
            steps.append(dns_undo(ctx, kind, entries[0]))
        elif kind is MoveStepKind.INVENTORY:
            steps.append(inventory_undo(ctx, entries[0]))
    return steps


__all__ = ["undo_steps"]
