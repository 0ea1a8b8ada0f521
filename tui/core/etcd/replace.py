"""Day two: replace a dead member (KTHW's cluster keeps running on the others).

The plan, on the controller being replaced (every step checks, previews and verifies):

1. ``snapshot``        save a verified snapshot from a healthy member on this machine
2. ``stop``            ``systemctl stop etcd`` on the member (it may already be dead)
3. ``move data``       its data directory moved aside (``DATA.hardway-replaced-STAMP``)
4. ``remove member``   ``/v3/cluster/member/remove`` of its old ID, through a healthy member
5. ``add member``      ``/v3/cluster/member/add`` with its peer URL
6. ``unit``            etcd.service with ``--initial-cluster-state existing``, daemon-reload
7. ``start``           ``systemctl start --no-block etcd``; wait for ``/health``
8. ``verify``          the whole cluster equals the inventory again
"""

from __future__ import annotations

import time
from pathlib import Path

from tui.core.errors import UserError
from tui.core.etcd.bootstrap import EtcdContext, wait_healthy
from tui.core.etcd.client import EtcdError, Member, SnapshotResult
from tui.core.etcd.cluster import problems
from tui.core.etcd.unit import SERVICE, etcd_paths, peer_url, render_unit, unit_state
from tui.core.plan import Plan, Preview, Step, StepFailed, file_change


async def healthy_peer(ctx: EtcdContext, exclude: str) -> str:
    """The address of a healthy member other than ``exclude``.

    Raises:
        StepFailed: none is healthy (the cluster has lost quorum: replace cannot help).
    """
    for host in ctx.inventory.controllers:
        if host.name != exclude and (await ctx.client.health(str(host.address))).ok:
            return str(host.address)
    raise StepFailed(f"no member other than {exclude} is healthy: the cluster has no quorum, "
                     "and replacing one member cannot restore it (restore from a snapshot)")


async def member_named(ctx: EtcdContext, name: str, via: str) -> Member | None:
    """The member called ``name`` or advertising its peer URL (None: not a member)."""
    wanted = peer_url(ctx.host(name))
    for member in (await ctx.client.members(via)).members:
        if member.name == name or wanted in member.peer_urls:
            return member
    return None


async def nothing_to_replace(ctx: EtcdContext, name: str) -> str | None:
    """A reason when ``name`` is healthy and the cluster matches the inventory."""
    health = await ctx.client.health(str(ctx.host(name).address))
    view = await ctx.view(fresh=True)
    if health.ok and not problems(view, ctx.inventory):
        return f"{name} is healthy and the cluster matches the inventory: nothing to replace"
    return None


def replace_plan(ctx: EtcdContext, name: str, snapshot_dir: Path) -> Plan:
    """The plan replacing controller ``name``'s member (see the module docstring)."""
    if name not in ctx.controllers:
        raise UserError(f"{name} is not a controller of {ctx.inventory.path}; controllers: "
                        f"{', '.join(ctx.controllers)}.")
    paths = etcd_paths(ctx.inventory)
    host = ctx.host(name)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    data = ctx.remote(name, paths.data)
    aside = ctx.remote(name, f"{paths.data}.hardway-replaced-{stamp}")
    state: dict[str, object] = {}

    async def snapshot(_n: str) -> str:
        via = await healthy_peer(ctx, name)
        target = snapshot_dir / f"etcd-before-replace-{name}-{stamp}.db"
        snapshot_dir.mkdir(parents=True, exist_ok=True)
        try:
            result: SnapshotResult = await ctx.client.snapshot(via, target)
        except EtcdError as exc:
            raise StepFailed(str(exc)) from None
        state["snapshot"] = result
        return f"{target} ({result.size} bytes, verified)"

    async def stop(_n: str) -> str:
        await ctx.sh(name, f"systemctl stop {SERVICE}", check=False)
        status, _ = await ctx.sh(name, f"systemctl is-active {SERVICE}", check=False)
        if status == 0:
            raise StepFailed(f"{name}: etcd is still active after systemctl stop")
        return "stopped"

    async def move(_n: str) -> str:
        await ctx.sh(name, f"if [ -e {data} ]; then mv {data} {aside}; fi; "
                           f"mkdir -p {data} && chmod 700 {data}")
        return f"old data in {aside}"

    async def remove(_n: str) -> str | None:
        via = await healthy_peer(ctx, name)
        member = await member_named(ctx, name, via)
        if member is None:
            return "not a member any more"
        try:
            await ctx.client.member_remove(via, member.id)
        except EtcdError as exc:
            raise StepFailed(str(exc)) from None
        return f"removed {member.hex_id}"

    async def add(_n: str) -> str:
        via = await healthy_peer(ctx, name)
        if (found := await member_named(ctx, name, via)) is not None and not found.started:
            return f"already added as {found.hex_id}"
        deadline = time.monotonic() + 15.0
        while True:  # etcd adds only once the remaining members are connected for 5 s
            try:
                member, _members = await ctx.client.member_add(via, [peer_url(host)])
                return f"added as {member.hex_id}"
            except EtcdError as exc:
                if "unhealthy cluster" not in str(exc) or time.monotonic() > deadline:
                    raise StepFailed(str(exc)) from None
            await ctx.sh(name, "sleep 0.5", check=False)

    def existing_unit() -> bytes:
        return render_unit(ctx.inventory, host, state="existing").encode()

    async def unit_preview(_n: str) -> Preview:
        old = await ctx.read(name, paths.unit)
        return Preview(commands=("systemctl daemon-reload",), files=(
            file_change(paths.unit, existing_unit(), old,
                        description="--initial-cluster-state existing"),))

    async def unit(_n: str) -> str:
        put = await ctx.fleet.put(name, existing_unit(), paths.unit)
        if not put.ok:
            raise StepFailed(f"{name}: {put.error}")
        await ctx.sh(name, "systemctl daemon-reload")
        return "existing"

    async def unit_verify(_n: str) -> str:
        text = await ctx.read(name, paths.unit)
        if text is None or unit_state(text.decode()) != "existing":
            raise StepFailed(f"{name}: the unit does not say --initial-cluster-state existing")
        return "--initial-cluster-state existing"

    async def start(_n: str) -> str:
        await ctx.sh(name, f"systemctl start --no-block {SERVICE}")
        return await wait_healthy(ctx, name, time.monotonic() + ctx.start_timeout)

    async def verify(_n: str) -> str:
        deadline = time.monotonic() + ctx.start_timeout
        while True:
            view = await ctx.view(fresh=True)
            found = problems(view, ctx.inventory)
            if not found:
                return f"{len(view.members)} members, leader {view.leader}"
            if time.monotonic() > deadline:
                raise StepFailed("; ".join(p.message for p in found))
            await ctx.sh(name, "sleep 0.5", check=False)

    def commands(*lines: str) -> Preview:
        return Preview(commands=lines)

    async def p_snapshot(_n: str) -> Preview:
        return Preview(notes=(f"POST /v3/maintenance/snapshot from a healthy member into "
                              f"{snapshot_dir}",))

    async def p_stop(_n: str) -> Preview:
        return commands(f"systemctl stop {SERVICE}")

    async def p_move(_n: str) -> Preview:
        return commands(f"mv {data} {aside}", f"mkdir -p {data}", f"chmod 700 {data}")

    async def p_remove(_n: str) -> Preview:
        return Preview(notes=(f"POST /v3/cluster/member/remove (the member named {name})",))

    async def p_add(_n: str) -> Preview:
        return Preview(notes=(f"POST /v3/cluster/member/add peerURLs={peer_url(host)}",))

    async def p_start(_n: str) -> Preview:
        return commands(f"systemctl start --no-block {SERVICE}")

    hosts = [name]
    return Plan([
        Step("snapshot", hosts, preview=p_snapshot, apply=snapshot),
        Step("stop", hosts, preview=p_stop, apply=stop),
        Step("move data", hosts, preview=p_move, apply=move),
        Step("remove member", hosts, preview=p_remove, apply=remove),
        Step("add member", hosts, preview=p_add, apply=add),
        Step("unit existing", hosts, preview=unit_preview, apply=unit, verify=unit_verify),
        Step("start", hosts, preview=p_start, apply=start),
        Step("verify", hosts, verify=verify),
    ], mode="parallel")


__all__ = ["healthy_peer", "member_named", "nothing_to_replace", "replace_plan"]
