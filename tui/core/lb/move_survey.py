"""What the DNS/VIP screen shows before a move: the zone's drift and the VIP's rules.

:func:`survey_vip` reads, for the inventory's API VIP, the hypervisor's ipfw rules
(the active set as it is, the rules ``hardway vip rules`` wants, their diff) and the
zone's records against the inventory (:class:`~tui.core.dns.drift.DriftReport`), plus
the last move's journal.  A part that cannot be read carries its reason instead; nothing
raises for an unreachable hypervisor or DNS server.  Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.lb.hypervisor import vip_backends, vip_layout
from tui.core.lb.ipfw import Backend, VipLayout, diff_rules, wanted_rules
from tui.core.lb.move_journal import MoveJournal, MoveStatus
from tui.core.lb.rules import Action, IpfwRule

if TYPE_CHECKING:
    from tui.core.dns.drift import DriftReport
    from tui.core.lb.move import VipMoves


@dataclass(frozen=True)
class RulesView:
    """The VIP's ipfw rules on the hypervisor against the wanted ones.

    Rules are shown short (:func:`short`): number, probability, where ``fwd`` sends the
    connection, and for which destination.

    Attributes:
        hypervisor: the hypervisor's name.
        have: the active set's rules as the hypervisor has them.
        wanted: the rules ``hardway vip rules`` wants.
        diff: ``-`` rules the hypervisor has, ``+`` rules it should have.
        spare: the spare set's rules (the rollback of the last change).
        in_sync: the hypervisor forwards the VIP as wanted.
        error: why the rules could not be read (then the rest is empty).
    """

    hypervisor: str
    have: tuple[str, ...] = ()
    wanted: tuple[str, ...] = ()
    diff: tuple[str, ...] = ()
    spare: tuple[str, ...] = ()
    in_sync: bool = False
    error: str | None = None


@dataclass(frozen=True)
class VipSurvey:
    """Everything the DNS/VIP screen shows (one read of the cluster).

    Attributes:
        vip: the inventory's API VIP.
        api_name: the API's DNS name (None: no ``[dns]`` or no hostname).
        backends: the controllers behind the VIP.
        rules: the hypervisor's rules (None: the inventory has no hypervisor).
        dns: the zone's drift (None: no ``[dns]``, or it could not be read).
        dns_error: why the zone could not be read.
        placement: inventory lint findings about the VIP's address (the seed's mistake).
        journal: the last move's status and VIPs (None: never moved).
    """

    vip: str
    api_name: str | None
    backends: tuple[Backend, ...]
    rules: RulesView | None
    dns: DriftReport | None
    dns_error: str | None
    placement: tuple[str, ...]
    journal: tuple[MoveStatus, str, str] | None


async def _rules(engine: VipMoves) -> RulesView | None:
    from tui.core.lb.hypervisor import HypervisorIpfw

    inventory = engine.inventory
    if inventory.hypervisor is None:
        return None
    name = inventory.hypervisor.name
    layout = vip_layout(inventory, active_set=engine.sets["active_set"],
                        spare_set=engine.sets["spare_set"], first_rule=engine.sets["first_rule"])
    backends = vip_backends(inventory)
    hv = HypervisorIpfw(engine.fleet, name, ipfw=engine.ipfw)
    try:
        rules = await hv.read_rules()
    except UserError as exc:
        return RulesView(name, error=str(exc))
    return rules_view(name, rules, layout, backends)


def rules_view(hypervisor: str, rules: Sequence[IpfwRule], layout: VipLayout,
               backends: Sequence[Backend]) -> RulesView:
    """The pane's view of a parsed ``ipfw -S list`` against the wanted rules."""
    vip = layout.vip
    wanted = wanted_rules(layout, backends)
    diff = diff_rules(wanted, rules, layout)
    lines = []
    for delta in diff.deltas:
        lines += [f"- {short(delta.actual, vip)}"] if delta.actual is not None else []
        lines += [f"+ {short(delta.wanted, vip)}"] if delta.wanted is not None else []
    return RulesView(hypervisor, tuple(short(r, vip) for r in rules if r.set == layout.active_set),
                     tuple(short(r, vip) for r in wanted), tuple(lines),
                     tuple(short(r, vip) for r in rules if r.set == layout.spare_set),
                     diff.in_sync)


def short(rule: IpfwRule, vip: str | None = None) -> str:
    """``01000 p=0.333 10.50.0.1:6443 → 10.10.0.10:6443`` (without the destination when it
    is ``vip``, the pane's own; the full line for rules that do not ``fwd``)."""
    if rule.action is not Action.FWD or rule.fwd_address is None:
        return rule.line()
    prob = f"p={rule.prob:.3f}" if rule.prob is not None else "always "
    port = f":{rule.dst_port}" if rule.dst_port is not None else ""
    to = f":{rule.fwd_port}" if rule.fwd_port is not None else port
    dst = "" if rule.dst == vip else f" {rule.dst}{port}"
    return f"{rule.number:05d} {prob}{dst} → {rule.fwd_address}{to}"


async def _dns(engine: VipMoves) -> tuple[DriftReport | None, str | None]:
    from tui.core.dns.zoneplan import check_zone, client_for

    inventory = engine.inventory
    if inventory.dns is None:
        return None, None
    try:
        client = client_for(inventory, engine.dialer())  # type: ignore[arg-type]
        return await check_zone(inventory, client, fleet=engine.fleet), None
    except UserError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"{inventory.dns.server}: {exc.strerror or exc}"


async def survey_vip(engine: VipMoves) -> VipSurvey:
    """Read the rules, the zone and the journal for ``engine``'s inventory."""
    import asyncio

    from tui.core.dns.records import absolute
    from tui.core.inventory.lint import lint

    inventory = engine.inventory
    vip = str(inventory.api.vip) if inventory.api.vip is not None else ""
    rules, (drift, dns_error) = await asyncio.gather(_rules(engine), _dns(engine))
    placement = tuple(f.message for f in lint(inventory) if f.key == "api.vip")
    try:
        journal = engine.journal()
    except UserError:
        journal = None
    name = (absolute(inventory.api.hostname)
            if inventory.api.hostname is not None and inventory.dns is not None else None)
    return VipSurvey(vip, name, tuple(vip_backends(inventory)), rules, drift, dns_error,
                     placement, _journal(journal))


def _journal(journal: MoveJournal | None) -> tuple[MoveStatus, str, str] | None:
    return None if journal is None else (journal.status, journal.old_vip, journal.new_vip)


__all__ = ["RulesView", "VipSurvey", "rules_view", "short", "survey_vip"]
