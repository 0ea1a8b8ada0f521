"""The steps of a VIP move, each a :class:`~tui.core.plan.Step` that journals before it
changes anything (see :mod:`tui.core.lb.move_journal`) and verifies after.

Order (:func:`move_steps`): aliases, rules built beside the old ones, certificate,
switch, DNS value added, verify through the new VIP, then the old VIP removed (rules,
aliases, DNS value) and the inventory rewritten.  The DNS value is added only once the
new VIP serves, so no client is ever sent to an address that does not answer yet.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from tui.core.dns.drift import RRset
from tui.core.errors import UserError
from tui.core.lb.aliases import AliasState, alias_files, alias_step, check_command, parse_check
from tui.core.lb.aliases import removal_step as alias_removal_step
from tui.core.lb.ipfw import IpfwCommand
from tui.core.lb.move_context import LOCAL, PKI_HOST, MoveContext, MoveStepKind
from tui.core.lb.move_inventory import edit_vip, write_text_atomic
from tui.core.lb.move_journal import EntryState
from tui.core.lb.move_rules import (
    SetState,
    build_commands,
    check_layout,
    expect_after_build,
    expect_after_swap,
    final_rules,
    in_set,
    swap_command,
    transition_rules,
)
from tui.core.lb.rules import IpfwRule
from tui.core.pki.ca import Issued
from tui.core.plan import FileChange, Preview, Step, StepFailed, file_change

Action = Callable[[str], Awaitable[str | None]]


async def journaled(ctx: MoveContext, kind: MoveStepKind, host: str, undo: dict[str, Any],
                    change: Callable[[], Awaitable[str | None]]) -> str | None:
    """Record ``undo`` (written before the change), make the change, mark it changed."""
    journal = ctx.need_journal()
    entry = journal.record(kind.value, host, undo)
    detail = await change()
    journal.mark(entry, EntryState.CHANGED)
    return detail


def _faulted(ctx: MoveContext, kind: MoveStepKind, verify: Action | None) -> Action:
    async def run(host: str) -> str | None:
        await ctx.injected(kind, host)
        return await verify(host) if verify is not None else None
    return run


def b64(data: bytes | None) -> str | None:
    """``data`` for the journal (None stays None)."""
    return None if data is None else base64.b64encode(data).decode()


def unb64(text: object) -> bytes | None:
    """The bytes :func:`b64` wrote."""
    return None if text is None else base64.b64decode(str(text))


def rrset_json(rrset: RRset | None) -> dict[str, Any] | None:
    """An RRset for the journal."""
    return None if rrset is None else {"name": rrset.name, "ttl": rrset.ttl,
                                       "values": list(rrset.values)}


def rrset_from(data: object) -> RRset | None:
    """The RRset :func:`rrset_json` wrote."""
    if not isinstance(data, dict):
        return None
    return RRset(str(data["name"]), "A", int(data["ttl"]), tuple(data["values"]))


async def remote_file(ctx: MoveContext, host: str, path: str) -> bytes | None:
    """``path`` on ``host`` (None: it does not exist).

    Raises:
        StepFailed: the host or the file cannot be read (never taken for "absent": the
            journal would record a state the rollback then "restores" by deleting).
    """
    from tui.core.fleet.sftp import RemoteFileMissing

    try:
        return await ctx.fleet.get(host, path)
    except RemoteFileMissing:
        return None
    except UserError as exc:
        raise StepFailed(str(exc)) from None


async def alias_present(ctx: MoveContext, host: str, vip: str) -> AliasState:
    """Whether ``vip`` is on ``host``'s lo.

    Raises:
        StepFailed: ``lo`` could not be read (unreachable host...).
    """
    command = check_command(vip)
    result = (await ctx.fleet.run([host], command))[host]
    if not result.ok:
        reason = result.error or result.stderr.strip() or f"exit {result.status}"
        raise StepFailed(f"cannot read lo on {host} (`{command}`): {reason}")
    return parse_check(result.stdout, vip)


# -- 1. aliases ------------------------------------------------------------------------


def aliases_step(ctx: MoveContext) -> Step:
    """The new VIP on every controller's lo (and in the boot unit); the old one stays."""
    kind = MoveStepKind.ALIASES
    inner = alias_step(ctx.fleet, ctx.controllers, ctx.new.vip, sudo=ctx.options.sudo)
    files = alias_files(ctx.new.vip)

    async def preview(host: str) -> Preview:
        assert inner.preview is not None
        base = await inner.preview(host)
        return Preview(base.commands, base.files,
                       (f"{ctx.old.vip}/32 stays on lo until the old VIP is removed",))

    async def apply(host: str) -> str | None:
        undo = {"unit": b64(await remote_file(ctx, host, files.unit_path)),
                "sysctl": b64(await remote_file(ctx, host, files.sysctl_path)),
                "present": await alias_present(ctx, host, ctx.new.vip) is AliasState.PRESENT}
        assert inner.apply is not None
        return await journaled(ctx, kind, host, undo, lambda: inner.apply(host))  # type: ignore[misc]

    async def verify(host: str) -> str | None:
        assert inner.verify is not None
        await inner.verify(host)
        return "read back"

    return Step(kind.value, ctx.controllers, check=inner.check, preview=preview, apply=apply,
                verify=_faulted(ctx, kind, verify))


# -- 2. rules beside the old ones, 4. switch, 7. remove the old rules --------------------


SetsChange = tuple[list[IpfwCommand], SetState, str]
"""A rule-set change: its commands, the sets expected afterwards, what it did."""


def _sets_step(ctx: MoveContext, kind: MoveStepKind,
               change_for: Callable[[SetState], SetsChange],
               preview: Callable[[str], Awaitable[Preview]],
               what: str, also: Action | None = None) -> Step:
    """A step that changes the VIP's two ipfw sets: the sets before are journaled, the
    commands run in one round trip, the sets are read back (then ``also`` checks more)."""
    memo: dict[str, SetState] = {}

    async def apply(host: str) -> str | None:
        state = await ctx.sets()
        commands, memo["expect"], detail = change_for(state)

        async def change() -> str:
            await ctx.run_ipfw(commands)
            return detail
        return await journaled(ctx, kind, host, {"sets": state.to_json()}, change)

    async def verify(host: str) -> str | None:
        await ctx.expect_sets(memo["expect"], what)
        return await also(host) if also is not None else "read back"

    return Step(kind.value, [ctx.hv.name], preview=preview, apply=apply,
                verify=_faulted(ctx, kind, verify))


def rules_step(ctx: MoveContext) -> Step:
    """The spare set gets the old VIP's rules plus the new VIP's (traffic unchanged)."""

    def transition(state: SetState) -> list[IpfwRule]:
        try:
            check_layout(state, ctx.old)
        except UserError as exc:
            raise StepFailed(str(exc)) from None
        return transition_rules(state, ctx.old, ctx.new, ctx.backends)

    def change_for(state: SetState) -> SetsChange:
        rules = transition(state)
        return (build_commands(ctx.old, rules), expect_after_build(state, rules),
                f"{len(rules)} rules in set {ctx.old.spare_set} (disabled)")

    async def preview(_host: str) -> Preview:
        rules = transition(await ctx.sets())
        return Preview(commands=ctx.lines(build_commands(ctx.old, rules)), notes=(
            f"set {ctx.old.spare_set} (disabled) afterwards:",
            *(f"  {r.line(show_sets=True)}" for r in rules)))

    return _sets_step(ctx, MoveStepKind.RULES, change_for, preview,
                      "after building the spare set")


def switch_step(ctx: MoveContext) -> Step:
    """``ipfw set swap``: the spare set (both VIPs) becomes the active one."""
    command = swap_command(ctx.old)

    def change_for(state: SetState) -> SetsChange:
        return ([command], expect_after_swap(state, ctx.old),
                f"set {ctx.old.active_set} serves {ctx.new.vip} and {ctx.old.vip}")

    async def preview(_host: str) -> Preview:
        return Preview(commands=ctx.lines([command]),
                       notes=(f"{ctx.new.vip} and {ctx.old.vip} are both served afterwards; "
                              f"set {ctx.old.spare_set} keeps the rules before",))

    return _sets_step(ctx, MoveStepKind.SWITCH, change_for, preview, "after the switch")


def remove_rules_step(ctx: MoveContext) -> Step:
    """The new VIP's rules alone, numbered as ``vip rules`` wants, swapped in."""
    final = final_rules(ctx.new, ctx.backends)
    commands = [*build_commands(ctx.old, final), swap_command(ctx.old)]

    def change_for(state: SetState) -> SetsChange:
        return (commands, expect_after_swap(expect_after_build(state, final), ctx.old),
                f"set {ctx.old.active_set} serves {ctx.new.vip} only")

    async def preview(_host: str) -> Preview:
        after = in_set(final, ctx.old.active_set)
        return Preview(commands=ctx.lines(commands), notes=(
            f"set {ctx.old.active_set} afterwards:",
            *(f"  {r.line(show_sets=True)}" for r in after)))

    async def in_sync(_host: str) -> str:
        diff = await ctx.hv.diff(ctx.new, ctx.backends)
        if not diff.in_sync:
            raise StepFailed(f"the rules differ from `vip rules`: {'; '.join(diff.lines())}")
        return "in sync with `hardway vip rules`"

    return _sets_step(ctx, MoveStepKind.REMOVE_RULES, change_for, preview,
                      "after removing the old rules", in_sync)


# -- 3. the certificate ----------------------------------------------------------------


def certificate_step(ctx: MoveContext, issued: Issued, old_cert: bytes | None,
                     sans_note: str) -> Step:
    """kubernetes.pem with the new VIP (and the old one, still served) pushed with the
    certificates' rolling, health-gated restart."""
    kind = MoveStepKind.CERTIFICATE
    cert_path, key_path = ctx.pki_dir / "kubernetes.pem", ctx.pki_dir / "kubernetes-key.pem"

    async def preview(_host: str) -> Preview:
        old_key = key_path.read_bytes() if key_path.exists() else None
        files: tuple[FileChange, ...] = (
            file_change(str(cert_path), issued.cert_pem, old_cert, diff_text=False,
                        description=sans_note),
            FileChange(str(key_path), len(issued.key_pem), _sha(issued.key_pem), 0o600,
                       old_size=None if old_key is None else len(old_key),
                       old_sha256=None if old_key is None else _sha(old_key), secret=True,
                       description="a new key"))
        return Preview(files=files, notes=(
            f"then pushed to {', '.join(ctx.controllers)} one at a time (as `hardway certs "
            "push`): the files, then each service that uses them restarted (etcd, "
            "kube-apiserver) and gated on its health probe",))

    async def check(_host: str) -> str | None:
        return await already_served(ctx, issued, old_cert)

    async def apply(host: str) -> str | None:
        journal = ctx.need_journal()
        if old_cert is not None:
            journal.keep("kubernetes.pem.before", old_cert)
            journal.keep("kubernetes-key.pem.before", key_path.read_bytes(), secret=True)

        async def change() -> str:
            from tui.core.pki.profiles import write_pair

            write_pair(ctx.pki_dir, "kubernetes", issued)
            return await push(ctx, kind)
        return await journaled(ctx, kind, host, {"had_cert": old_cert is not None}, change)

    async def verify(_host: str) -> str | None:
        for name in ctx.controllers:
            address = str(ctx.inventory.host(name).address)
            await ctx.get(address, "/healthz", server_name=ctx.new.vip)
        return f"every controller serves a certificate valid for {ctx.new.vip}"

    return Step(kind.value, [PKI_HOST], check=check, preview=preview, apply=apply,
                verify=_faulted(ctx, kind, verify))


ETCD_CLIENT_PORT = 2379


async def already_served(ctx: MoveContext, issued: Issued, current: bytes | None) -> str | None:
    """A reason to skip the certificate step: the PKI's kubernetes.pem already has every
    SAN of ``issued`` (the new VIP and the old one included), ``ca.pem`` issued it, its
    key matches, and every controller serves exactly it on the API and etcd ports."""
    from tui.core.health.cert_checks import served_certificate
    from tui.core.health.probes import tls_context
    from tui.core.pki.inspect import chains_to, inspect_pem, key_matches

    key_path, ca_path = ctx.pki_dir / "kubernetes-key.pem", ctx.pki_dir / "ca.pem"
    if current is None or not key_path.exists() or not ca_path.exists():
        return None
    try:
        have = inspect_pem(current, "kubernetes.pem")
        ca = inspect_pem(ca_path.read_bytes(), "ca.pem")
    except UserError:
        return None
    want = inspect_pem(issued.cert_pem, "the reissued kubernetes.pem")
    if not (set(want.ip_addresses) <= set(have.ip_addresses)
            and set(want.dns_names) <= set(have.dns_names)
            and chains_to(have, ca.cert) and key_matches(current, key_path.read_bytes())):
        return None
    for name in ctx.controllers:
        address = str(ctx.inventory.host(name).address)
        for port in (ctx.inventory.api.port, ETCD_CLIENT_PORT):
            try:
                served = await served_certificate(ctx.dialer, address, port, tls_context(None))
            except (OSError, ValueError):
                return None
            if served.fingerprint != have.fingerprint:
                return None
    return (f"every controller already serves {ctx.pki_dir.name}/kubernetes.pem "
            f"({have.fingerprint[:23]}) with {ctx.new.vip} and {ctx.old.vip}")


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


async def push(ctx: MoveContext, kind: MoveStepKind) -> str:
    """Push the PKI to the controllers with the health-gated restart; sub-steps are
    reported to ``ctx.on_event`` as events of ``kind`` on each controller.

    Raises:
        StepFailed: the push stopped (where and why).
    """
    from tui.core.pki.usecase import CertificateWork
    from tui.core.plan import PlanEvent

    def relay(event: PlanEvent) -> None:
        if ctx.on_event is not None and event.state in ("done", "failed", "skipped"):
            ctx.on_event(PlanEvent(kind.value, event.host, "running",
                                   f"{event.step}: {event.state}"
                                   f"{' (' + event.detail + ')' if event.detail else ''}"))

    work = CertificateWork(ctx.inventory, ctx.fleet, ctx.pki_dir)
    try:
        prepared = await work.prepare_push(ctx.controllers, options=ctx.options)
    except UserError as exc:
        raise StepFailed(f"the push could not start: {exc}") from None
    result = await prepared.run(relay)
    if result.failure is not None:
        failure = result.failure
        raise StepFailed(f"the push stopped at `{failure.step}` on {failure.host}: "
                         f"{failure.detail}; untouched: "
                         f"{', '.join(result.untouched_hosts()) or 'none'}")
    return f"pushed to {', '.join(result.touched_hosts()) or 'no host (already there)'}"


# -- 5. DNS value added, 9. old DNS value removed ---------------------------------------


def dns_step(ctx: MoveContext, kind: MoveStepKind) -> Step:
    """Add the new VIP to the API name (DNS), or remove the old one (REMOVE_DNS)."""
    adding = kind is MoveStepKind.DNS
    server = ctx.dns.server if ctx.dns is not None else "dns"

    def target(before: RRset | None) -> list[str]:
        values = set(before.values) if before is not None else set()
        return sorted(values | {ctx.new.vip}) if adding else sorted(values - {ctx.old.vip})

    async def check(_host: str) -> str | None:
        before = await ctx.api_rrset()
        values = before.values if before is not None else ()
        if adding and ctx.new.vip in values:
            return f"the API name already answers {ctx.new.vip}"
        if not adding and ctx.old.vip not in values:
            return f"the API name no longer answers {ctx.old.vip}"
        return None

    async def preview(_host: str) -> Preview:
        before = await ctx.api_rrset()
        if not adding and (before is None or ctx.new.vip not in before.values):
            # previewed before the move: by then the DNS step will have added the new VIP
            values = (*(before.values if before is not None else ()), ctx.new.vip)
            before = RRset(ctx.api_name or "", "A", before.ttl if before else 300,
                           tuple(sorted(set(values))))
        change = ctx.rrset_change(before, target(before))
        return Preview(commands=(ctx.update_text(change),),
                       notes=(f"signed with TSIG key {ctx.inventory.dns.tsig_name}; refused "
                              "if someone changed the name meanwhile"
                              if ctx.inventory.dns is not None else "",))

    async def apply(host: str) -> str | None:
        before = await ctx.api_rrset()
        change = ctx.rrset_change(before, target(before))
        undo = {"before": rrset_json(before), "after": rrset_json(change.new)}
        return await journaled(ctx, kind, host, undo, lambda: ctx.send(change))

    async def verify(_host: str) -> str | None:
        now = await ctx.api_rrset()
        values = now.values if now is not None else ()
        if adding and ctx.new.vip not in values:
            raise StepFailed(f"the server still answers {', '.join(values) or 'nothing'}")
        if not adding and (ctx.old.vip in values or ctx.new.vip not in values):
            raise StepFailed(f"the server answers {', '.join(values) or 'nothing'}")
        return f"answers {', '.join(values)}"

    return Step(kind.value, [f"dns {server}"], check=check, preview=preview, apply=apply,
                verify=_faulted(ctx, kind, verify))


# -- 6. verify -------------------------------------------------------------------------


def verify_step(ctx: MoveContext) -> Step:
    """Through the new VIP: TLS verified against the CA, /version, /healthz by address
    (several new connections, so the round robin reaches every controller) and by name."""
    kind = MoveStepKind.VERIFY
    vip = ctx.new.vip
    rounds = 2 * len(ctx.controllers)

    async def preview(_host: str) -> Preview:
        notes = [f"GET https://{vip}:{ctx.inventory.api.port}/version (TLS verified against "
                 f"{ctx.pki_dir / 'ca.pem'} for {vip})",
                 f"GET /healthz {rounds} times on new connections"]
        if ctx.api_name is not None:
            notes.append(f"the API name {ctx.api_name} answers {vip}; GET /healthz through "
                         f"{vip} verified for that name")
        return Preview(notes=tuple(notes))

    async def verify(host: str) -> str | None:
        await ctx.injected(kind, host)
        answer = await ctx.get(vip, "/version")
        if answer.status != 200:
            raise StepFailed(f"/version through {vip} answered {answer.status}")
        try:
            version = str(json.loads(answer.body).get("gitVersion", "?"))
        except (ValueError, AttributeError):
            raise StepFailed(f"/version through {vip} is not JSON: {answer.body[:80]!r}") \
                from None
        for _ in range(rounds):
            health = await ctx.get(vip, "/healthz")
            if health.status != 200:
                raise StepFailed(f"/healthz through {vip} answered {health.status}: "
                                 f"{health.body[:80]!r}")
        detail = f"/version {version}, /healthz ok x{rounds} by address"
        name = ctx.api_name
        if name is not None:
            rrset = await ctx.api_rrset()
            if rrset is None or vip not in rrset.values:
                raise StepFailed(f"{name} does not answer {vip}")
            health = await ctx.get(vip, "/healthz", server_name=name.rstrip("."))
            if health.status != 200:
                raise StepFailed(f"/healthz as {name} answered {health.status}")
            detail += f", ok by name {name.rstrip('.')}"
        return detail

    return Step(kind.value, [f"{vip}:{ctx.inventory.api.port}"], preview=preview,
                verify=verify)


# -- 8. the old aliases ----------------------------------------------------------------


def remove_aliases_step(ctx: MoveContext) -> Step:
    """The old VIP off every controller's lo (the boot unit already names the new one)."""
    kind = MoveStepKind.REMOVE_ALIASES
    inner = alias_removal_step(ctx.fleet, ctx.controllers, ctx.old.vip, sudo=ctx.options.sudo)

    async def apply(host: str) -> str | None:
        present = await alias_present(ctx, host, ctx.old.vip) is AliasState.PRESENT
        assert inner.apply is not None
        return await journaled(ctx, kind, host, {"present": present},
                               lambda: inner.apply(host))  # type: ignore[misc]

    async def verify(host: str) -> str | None:
        if await alias_present(ctx, host, ctx.old.vip) is not AliasState.ABSENT:
            raise StepFailed(f"{ctx.old.vip} is still on lo")
        return f"{ctx.old.vip} gone from lo"

    return Step(kind.value, ctx.controllers, check=inner.check, preview=inner.preview,
                apply=apply, verify=_faulted(ctx, kind, verify))


# -- 10. the inventory -----------------------------------------------------------------


def inventory_step(ctx: MoveContext) -> Step:
    """``[api] vip`` rewritten in the inventory file (diff, then an atomic write)."""
    kind = MoveStepKind.INVENTORY
    path = ctx.inventory.path

    def edit() -> Any:
        try:
            return edit_vip(path, path.read_text(encoding="utf-8"), ctx.old.vip, ctx.new.vip)
        except (OSError, UserError) as exc:
            raise StepFailed(str(exc)) from None

    async def check(_host: str) -> str | None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        try:
            edit_vip(path, text, ctx.new.vip, ctx.new.vip)
        except UserError:
            return None
        return f"{path.name} already says vip = \"{ctx.new.vip}\""

    async def preview(_host: str) -> Preview:
        change = edit()
        return Preview(files=(file_change(str(path), change.new_text.encode(),
                                          change.old_text.encode(),
                                          description=f"[api] vip, line {change.line}"),))

    async def apply(host: str) -> str | None:
        change = edit()
        ctx.need_journal().keep("inventory.before", change.old_text.encode())

        async def write() -> str:
            write_text_atomic(path, change.new_text)
            return f"{path.name} line {change.line}: vip = \"{ctx.new.vip}\""
        return await journaled(ctx, kind, host, {"path": str(path),
                                                 "after": _sha(change.new_text.encode())},
                               write)

    async def verify(_host: str) -> str | None:
        from tui.core.inventory.load import load_inventory

        try:
            vip = load_inventory(path).api.vip
        except UserError as exc:
            raise StepFailed(str(exc)) from None
        if str(vip) != ctx.new.vip:
            raise StepFailed(f"{path} reads vip = {vip} after the write")
        return "reads back"

    return Step(kind.value, [LOCAL], check=check, preview=preview, apply=apply,
                verify=_faulted(ctx, kind, verify))


def move_steps(ctx: MoveContext, issued: Issued, old_cert: bytes | None,
               sans_note: str) -> list[Step]:
    """Every step of the move, in order (the DNS ones only with a zone and an API name)."""
    dns = ctx.api_name is not None and ctx.dns is not None
    steps = [aliases_step(ctx), rules_step(ctx),
             certificate_step(ctx, issued, old_cert, sans_note), switch_step(ctx)]
    if dns:
        steps.append(dns_step(ctx, MoveStepKind.DNS))
    steps += [verify_step(ctx), remove_rules_step(ctx), remove_aliases_step(ctx)]
    if dns:
        steps.append(dns_step(ctx, MoveStepKind.REMOVE_DNS))
    steps.append(inventory_step(ctx))
    return steps


__all__ = ["b64", "journaled", "move_steps", "push", "remote_file", "rrset_from",
           "rrset_json", "unb64"]
