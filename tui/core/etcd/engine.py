"""The etcd work that views share: bootstrap, replace, status, snapshot (engine ``etcd``).

``hardway etcd`` and the etcd screen are two views of this one engine, built by the
workbench (:data:`tui.core.workbench.ENGINES`).  Both get the same
:class:`PreparedEtcdPlan` (the :class:`~tui.core.plan.Plan`, its preview, its context)
from :meth:`EtcdWork.prepare_bootstrap` or :meth:`EtcdWork.prepare_replace`; they differ
only in how they show the preview, ask for confirmation and draw progress.  Results are
typed: :class:`MemberRow`, :class:`EtcdStatus`, :class:`FailureReport`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tui.core.errors import UserError
from tui.core.etcd.bootstrap import START_TIMEOUT, EtcdContext, bootstrap_plan, pull_errors
from tui.core.etcd.client import EtcdClient, EtcdError, SnapshotResult
from tui.core.etcd.cluster import ClusterProblem, ClusterView, observe, problems
from tui.core.etcd.diagnose import Diagnosis, diagnose_client_error
from tui.core.etcd.release import (
    Release,
    default_cache,
    find_tarball,
    load_release,
    version_of,
)
from tui.core.etcd.unit import etcd_paths

if TYPE_CHECKING:
    from collections.abc import Callable

    from tui.core.fleet.dial import Dialer
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.plan import FileChange, Plan, PlanEvent, PlanResult, StepPreview
    from tui.core.workbench import Workbench

CLIENT_FILES = ("ca.pem", "kubernetes.pem", "kubernetes-key.pem")
"""What the engine's HTTPS client reads from the PKI directory."""

RELEASE_DIR = "cache"
"""A directory beside the inventory also searched for release tarballs (``hardway lab``
writes its release cache there)."""


@dataclass(frozen=True)
class EtcdOptions:
    """How a plan is built.

    Attributes:
        tarball: the release tarball (``--etcd-tarball``); None: look in the caches.
        cache: the only cache directory to look in (``--cache``); None: the default
            cache, then ``cache/`` beside the inventory.
        start_timeout: seconds for every member to answer ``/health`` after the start.
        sudo: remote commands through ``sudo -n``.
    """

    tarball: Path | None = None
    cache: Path | None = None
    start_timeout: float = START_TIMEOUT
    sudo: bool = False


@dataclass(frozen=True)
class MemberRow:
    """One controller's member as etcd reports it (a row of the member table).

    Attributes:
        name: inventory name.
        member_id: hex ID from the member list (None: not listed).
        healthy: ``/health`` said true.
        health: ``health true`` or why not.
        leader: this member leads.
        raft_term, raft_index: raft progress (None: no status).
        db_size: bytes (None: no status).
        version: etcd's version ("" when unknown).
        rtt: seconds ``/health`` took (None: no answer).
        cluster_id: hex cluster ID this member reports (None: no status).
        error: why ``status`` failed (None when it answered).
    """

    name: str
    member_id: str | None
    healthy: bool
    health: str
    leader: bool = False
    raft_term: int | None = None
    raft_index: int | None = None
    db_size: int | None = None
    version: str = ""
    rtt: float | None = None
    cluster_id: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        """The shape ``hardway etcd status --json`` prints."""
        return {"name": self.name, "id": self.member_id, "healthy": self.healthy,
                "health": self.health, "leader": self.leader, "raft_term": self.raft_term,
                "raft_index": self.raft_index, "db_size": self.db_size,
                "version": self.version or None,
                "rtt_ms": round(self.rtt * 1000, 1) if self.rtt is not None else None,
                "cluster_id": self.cluster_id, "error": self.error}


def member_rows(view: ClusterView, inventory: Inventory) -> list[MemberRow]:
    """A :class:`MemberRow` per controller, in inventory order."""
    rows = []
    for host in inventory.controllers:
        status = view.statuses.get(host.name)
        member = view.members.get(host.name)
        health = view.health[host.name]
        rows.append(MemberRow(
            name=host.name, member_id=member.hex_id if member else None, healthy=health.ok,
            health=health.detail, leader=bool(status and status.is_leader),
            raft_term=status.raft_term if status else None,
            raft_index=status.raft_index if status else None,
            db_size=status.db_size if status else None,
            version=status.version if status else "", rtt=health.rtt,
            cluster_id=format(status.cluster_id, "x") if status else None,
            error=view.errors.get(host.name)))
    return rows


@dataclass(frozen=True)
class EtcdStatus:
    """The cluster now: members, what differs from the inventory, diagnoses.

    Attributes:
        view: what the members said.
        rows: one per controller.
        problems: differences from the inventory.
        diagnoses: journal and client-error diagnoses of the unhealthy members, then
            clock skew.
        skewed: clock skew was found.
    """

    view: ClusterView
    rows: list[MemberRow]
    problems: list[ClusterProblem]
    diagnoses: list[Diagnosis]
    skewed: bool = False

    @property
    def healthy(self) -> bool:
        """Every member healthy, as the inventory says, clocks in step."""
        return not self.problems and not self.skewed


@dataclass(frozen=True)
class FailureReport:
    """Why a plan stopped, for one host: the step, its detail, the diagnosis, the journal.

    Attributes:
        step: the step that failed.
        host: where.
        detail: the step's failure detail.
        diagnoses: what the journal (or the HTTPS error) means, with the fix.
        journal: the tail of ``journalctl -u etcd`` on ``host`` (empty when not read).
    """

    step: str
    host: str
    detail: str
    diagnoses: tuple[Diagnosis, ...] = ()
    journal: tuple[str, ...] = ()


PlanKind = Literal["bootstrap", "replace"]


@dataclass
class PreparedEtcdPlan:
    """A bootstrap or replace ready to preview and run (the CLI and the screen share it).

    Attributes:
        kind: bootstrap or replace.
        title: one line naming what it does (for a confirmation).
        ctx: the run's context (diagnoses and journals land there).
        plan: the steps.
        preview: host -> every step's check result, commands and file diffs (empty when
            prepared without a preview).
    """

    kind: PlanKind
    title: str
    ctx: EtcdContext
    plan: Plan
    preview: dict[str, list[StepPreview]] = field(default_factory=dict)

    @property
    def todo(self) -> list[StepPreview]:
        """The previewed steps that would change something (verify does not count)."""
        return [i for items in self.preview.values() for i in items
                if i.done is None and not i.preview.empty and i.step != "verify"]

    def unit_change(self, host: str) -> FileChange | None:
        """The preview's change to ``etcd.service`` on ``host`` (None: not previewed)."""
        unit = etcd_paths(self.ctx.inventory).unit
        for item in self.preview.get(host, []):
            for change in item.preview.files:
                if change.path == unit:
                    return change
        return None

    async def run(self, on_event: Callable[[PlanEvent], None] | None = None) -> PlanResult:
        """Run the plan; when it fails, diagnose every member that is not healthy."""
        result = await self.plan.run(on_event)
        if not result.ok and result.failure is not None and \
                result.failure.step in ("start", "verify"):
            await pull_errors(self.ctx)
        return result

    def failure(self, result: PlanResult) -> FailureReport | None:
        """The failed host's report (None when the plan did not fail)."""
        event = result.failure
        if event is None:
            return None
        return FailureReport(event.step, event.host, event.detail,
                             tuple(self.ctx.diagnoses.get(event.host, ())),
                             tuple(self.ctx.journals.get(event.host, ())))


class EtcdWork:
    """etcd use cases over one inventory, fleet and PKI directory.

    Args:
        inventory: the cluster.
        fleet: the workbench's fleet (connected on demand).
        pki_dir: the PKI directory holding the client's ca.pem and kubernetes(-key).pem.
        dialer: how etcd's addresses are reached (default: what the inventory implies).
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, pki_dir: Path,
                 dialer: Dialer | None = None) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.pki_dir = Path(pki_dir)
        self._dialer = dialer
        self._client: tuple[tuple[int, ...], EtcdClient] | None = None

    @property
    def controllers(self) -> list[str]:
        """Controller names, in inventory order."""
        return [h.name for h in self.inventory.controllers]

    # -- parts --------------------------------------------------------------------------

    @property
    def dialer(self) -> Dialer:
        """The dialer of every HTTPS request (through the jump host when there is one)."""
        if self._dialer is None:
            from tui.core.fleet.dial import dialer_for

            self._dialer = dialer_for(self.inventory, self.fleet)
        return self._dialer

    @property
    def client(self) -> EtcdClient:
        """The HTTPS client (rebuilt when the PKI files change).

        Raises:
            UserError: the PKI directory has no usable client certificate.
        """
        paths = [self.pki_dir / name for name in CLIENT_FILES]
        try:
            stamp = tuple(p.stat().st_mtime_ns for p in paths)
        except OSError:
            stamp = ()
        if self._client is None or self._client[0] != stamp or not stamp:
            try:
                client = EtcdClient.from_files(*paths, dialer=self.dialer)
            except (ValueError, OSError) as exc:
                raise UserError(f"The PKI directory {self.pki_dir} does not give hardway a "
                                f"client certificate for etcd: {exc}. Run `hardway certs "
                                "issue` or pass --pki DIR.") from None
            self._client = (stamp, client)
        return self._client[1]

    def release_dirs(self, options: EtcdOptions) -> list[Path]:
        """Where release tarballs are looked for, in order."""
        if options.cache is not None:
            return [options.cache]
        return [default_cache(), self.inventory.path.parent / RELEASE_DIR]

    def find_release(self, options: EtcdOptions) -> Release | None:
        """The release to install (read and checked; blocking: call it off the loop).

        Raises:
            UserError: the tarball is missing, misnamed or fails its checksum.
        """
        if options.tarball is not None:
            path = find_tarball(version_of(options.tarball), explicit=options.tarball,
                                cache=None)
            return load_release(path) if path is not None else None
        for directory in self.release_dirs(options):
            path = find_tarball(self.inventory.versions.etcd, explicit=None, cache=directory)
            if path is not None:
                return load_release(path)
        return None

    def context(self, options: EtcdOptions, release: Release | None = None) -> EtcdContext:
        """A fresh context for one plan run."""
        return EtcdContext(self.inventory, self.fleet, self.client, self.pki_dir,
                           release=release, start_timeout=options.start_timeout,
                           sudo=options.sudo)

    async def connect(self) -> None:
        """Connect to every controller.

        Raises:
            UserError: one cannot be reached (nothing was changed).
        """
        states = await self.fleet.connect(self.controllers)
        bad = {n: self.fleet.reason(n) for n, s in states.items() if s.value != "ready"}
        if bad:
            raise UserError("Cannot reach " + "; ".join(f"{n}: {r}" for n, r in bad.items())
                            + ". Nothing was changed.")

    # -- plans --------------------------------------------------------------------------

    async def prepare_bootstrap(self, options: EtcdOptions | None = None, *,
                                preview: bool = True) -> PreparedEtcdPlan:
        """Read the release, connect, and build the bootstrap plan (with its preview).

        Raises:
            UserError: a bad tarball, unreachable controllers, no client certificate.
        """
        options = options or EtcdOptions()
        release = await asyncio.to_thread(self.find_release, options)
        ctx = self.context(options, release)
        await self.connect()
        prepared = PreparedEtcdPlan("bootstrap", "Bootstrap etcd on", ctx, bootstrap_plan(ctx))
        if preview:
            prepared.preview = await prepared.plan.preview()
        return prepared

    async def prepare_replace(self, member: str, snapshot_dir: Path,
                              options: EtcdOptions | None = None) -> tuple[str | None,
                                                                            PreparedEtcdPlan]:
        """The plan replacing ``member``, and why it is not needed (None: it is).

        The preview is made only when a replace is needed (it connects first).
        """
        from tui.core.etcd.replace import nothing_to_replace, replace_plan

        options = options or EtcdOptions()
        ctx = self.context(options)
        plan = replace_plan(ctx, member, snapshot_dir)
        prepared = PreparedEtcdPlan("replace", f"Replace etcd member {member} on", ctx, plan)
        reason = await nothing_to_replace(ctx, member)
        return reason, prepared

    # -- day two ------------------------------------------------------------------------

    async def observe(self) -> ClusterView:
        """Ask every member over HTTPS, concurrently."""
        return await observe(self.inventory, self.client)

    async def members(self) -> list[MemberRow]:
        """The member table now (one round of HTTPS requests; no SSH)."""
        return member_rows(await self.observe(), self.inventory)

    async def status(self) -> EtcdStatus:
        """Members, differences from the inventory, and for every unhealthy member the
        journal's diagnosis (over SSH where reachable), then clock skew."""
        from tui.core.etcd.clock import read_clocks, skew_diagnoses

        view = await self.observe()
        found = problems(view, self.inventory)
        ctx = self.context(EtcdOptions())
        states = await self.fleet.connect(self.controllers)
        reachable = [n for n, s in states.items() if s.value == "ready"]
        diagnoses: list[Diagnosis] = []
        for name, health in view.health.items():
            if health.ok:
                continue
            hint = diagnose_client_error(name, health.error_kind, health.detail)
            if hint is not None:
                diagnoses.append(hint)
            if name in reachable:
                diagnoses += await ctx.diagnose(name)
        skew = skew_diagnoses(await read_clocks(self.fleet, reachable))
        return EtcdStatus(view, member_rows(view, self.inventory), found,
                          diagnoses + skew, bool(skew))

    async def journal(self, host: str) -> FailureReport:
        """The tail of ``journalctl -u etcd`` on ``host`` and its diagnosis."""
        ctx = self.context(EtcdOptions())
        await self.fleet.connect([host])
        found = await ctx.diagnose(host)
        return FailureReport("journal", host, "", tuple(found),
                             tuple(ctx.journals.get(host, ())))

    async def snapshot(self, target: Path) -> tuple[str, SnapshotResult]:
        """Save a verified snapshot from the first healthy member: (its name, result).

        Raises:
            UserError: no healthy member gave one.
        """
        errors = []
        for host in self.inventory.controllers:
            if not (await self.client.health(str(host.address))).ok:
                continue
            try:
                return host.name, await self.client.snapshot(str(host.address), target)
            except EtcdError as exc:
                errors.append(str(exc))
        raise UserError("No healthy member gave a snapshot" +
                        (": " + " ".join(errors) if errors else "") + ".", exit_code=1)

    async def aclose(self) -> None:
        """Release the dialer's forwards."""
        if self._dialer is not None:
            await self._dialer.close()


def open_engine(workbench: Workbench) -> EtcdWork:
    """The workbench's ``etcd`` engine (see :data:`tui.core.workbench.ENGINES`)."""
    return EtcdWork(workbench.inventory, workbench.fleet, workbench.pki_dir)


__all__ = ["EtcdOptions", "EtcdStatus", "EtcdWork", "FailureReport", "MemberRow",
           "PreparedEtcdPlan", "member_rows", "open_engine"]
