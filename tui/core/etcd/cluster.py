"""The etcd cluster as its members report it over HTTPS, compared with the inventory.

:func:`observe` asks every controller's etcd for ``/health``, ``/v3/maintenance/status``
and (from the first that answers) ``/v3/cluster/member/list``, concurrently;
:func:`problems` lists what differs from the inventory, in plain words.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tui.core.etcd.client import EtcdClient, EtcdError, Health, Member, MemberStatus
from tui.core.etcd.unit import client_url, peer_url
from tui.core.inventory.model import Inventory


@dataclass(frozen=True)
class ClusterView:
    """What the members said.

    Attributes:
        health: per controller name.
        statuses: per controller that answered ``status``.
        errors: per controller whose ``status`` failed: the reason.
        member_list: the members (from ``listed_by``), keyed by their ID.
        listed_by: the controller whose member list this is ("" when none answered).
        members: inventory name -> the member with that name (when listed).
    """

    health: dict[str, Health]
    statuses: dict[str, MemberStatus]
    errors: dict[str, str]
    member_list: tuple[Member, ...] = ()
    listed_by: str = ""
    cluster_id_listed: int = 0
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def cluster_id(self) -> int:
        """The cluster ID most members report (0 when none answered)."""
        ids = [s.cluster_id for s in self.statuses.values()] or [self.cluster_id_listed]
        return max(set(ids), key=ids.count)

    @property
    def leader(self) -> str:
        """The leader's member name ("" when unknown)."""
        for name, status in self.statuses.items():
            if status.is_leader:
                return name
        return ""

    @property
    def healthy(self) -> bool:
        """Every controller answered /health true."""
        return bool(self.health) and all(h.ok for h in self.health.values())


@dataclass(frozen=True)
class ClusterProblem:
    """One difference between etcd and the inventory ("" host: the cluster as a whole)."""

    host: str
    message: str


async def observe(inventory: Inventory, client: EtcdClient) -> ClusterView:
    """Ask every controller's etcd (concurrently)."""
    names = [h.name for h in inventory.controllers]
    addresses = {h.name: str(h.address) for h in inventory.controllers}

    async def status(name: str) -> MemberStatus | str:
        try:
            return await client.status(addresses[name])
        except EtcdError as exc:
            return str(exc)

    healths, statuses = await asyncio.gather(
        asyncio.gather(*(client.health(addresses[n]) for n in names)),
        asyncio.gather(*(status(n) for n in names)))
    ok_status = {n: s for n, s in zip(names, statuses, strict=True)
                 if isinstance(s, MemberStatus)}
    errors = {n: s for n, s in zip(names, statuses, strict=True) if isinstance(s, str)}
    listing: tuple[Member, ...] = ()
    listed_by = ""
    cluster_id = 0
    for name in [n for n in names if n in ok_status] + [n for n in names if n in errors]:
        try:
            found = await client.members(addresses[name])
        except EtcdError:
            continue
        listing, listed_by, cluster_id = found.members, name, found.cluster_id
        break
    by_name = {m.name: m for m in listing if m.name}
    return ClusterView(dict(zip(names, healths, strict=True)), ok_status, errors, listing,
                       listed_by, cluster_id, by_name)


def problems(view: ClusterView, inventory: Inventory) -> list[ClusterProblem]:
    """Every way the observed cluster differs from ``inventory`` (empty: as it should be)."""
    out: list[ClusterProblem] = []
    for name, health in view.health.items():
        if not health.ok:
            out.append(ClusterProblem(name, f"{name}: {health.detail}"))
    if not view.listed_by:
        out.append(ClusterProblem("", "no member answered `member list`"))
        return out
    wanted = {h.name: h for h in inventory.controllers}
    for name, host in wanted.items():
        member = view.members.get(name)
        if member is None:
            out.append(ClusterProblem(name, f"{name} is not in the member list "
                                            f"(from {view.listed_by})"))
            continue
        if member.peer_urls != (peer_url(host),):
            out.append(ClusterProblem(name, f"{name}'s peer URLs are "
                                            f"{', '.join(member.peer_urls)}, not "
                                            f"{peer_url(host)}"))
        if member.client_urls != (client_url(host),):
            out.append(ClusterProblem(name, f"{name}'s client URLs are "
                                            f"{', '.join(member.client_urls) or 'none'}, not "
                                            f"{client_url(host)}"))
    for member in view.member_list:
        if member.name not in wanted:
            label = member.name or f"unstarted member {member.hex_id} ({member.peer_urls})"
            out.append(ClusterProblem("", f"the member list has {label}, which the "
                                          "inventory does not"))
    ids = {s.cluster_id for s in view.statuses.values()}
    if len(ids) > 1:
        detail = ", ".join(f"{n}: {s.cluster_id:x}" for n, s in view.statuses.items())
        out.append(ClusterProblem("", f"members report different cluster IDs ({detail})"))
    leaders = {s.leader for s in view.statuses.values()}
    if view.statuses and (leaders == {0} or len(leaders) > 1):
        out.append(ClusterProblem("", "the members do not agree on one leader"
                                      if len(leaders) > 1 else "there is no leader"))
    for name, status in view.statuses.items():
        if not status.version:
            out.append(ClusterProblem(name, f"{name} reports no version"))
        if status.errors:
            out.append(ClusterProblem(name, f"{name} reports {'; '.join(status.errors)}"))
    return out


__all__ = ["ClusterProblem", "ClusterView", "observe", "problems"]
