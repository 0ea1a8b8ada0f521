"""The certificate work that views share: survey, issue, push and restore.

``hardway certs`` and the certificates screen are two views of this one flow: they
differ only in how they show a preview, ask for confirmation and print progress.

* :meth:`CertificateWork.survey` connects and reads what every host holds and serves;
* :meth:`CertificateWork.issue` creates the CA if needed and (re)issues what does not
  fit, in a worker thread (RSA key generation takes ~0.5 s for the KTHW set: the event
  loop keeps running meanwhile);
* :meth:`CertificateWork.prepare_push` and :meth:`CertificateWork.prepare_restore`
  connect, survey when needed, and return a :class:`PreparedPlan`: the plan, its exact
  preview, and ``run(on_event)`` to carry it out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet
    from tui.core.inventory.model import Inventory
    from tui.core.pki.ca import CertificateAuthority
    from tui.core.pki.issue import KeyType
    from tui.core.pki.services import RolloutOptions
    from tui.core.pki.survey import Survey
    from tui.core.plan import Plan, PlanEvent, PlanResult, StepPreview
    from tui.core.workbench import Workbench


WRITTEN = ("issued", "created", "written")
"""Issue actions that wrote files."""


@dataclass(frozen=True)
class IssueResult:
    """What :meth:`CertificateWork.issue` did.

    Attributes:
        pki: the PKI directory.
        dry_run: nothing was written.
        actions: one per certificate (see :func:`tui.core.pki.issue.issue_certificates`).
    """

    pki: Path
    dry_run: bool
    actions: list[dict[str, object]]

    @property
    def written(self) -> list[str]:
        """Names of the certificates written (the CA included when it was created)."""
        return [str(a["name"]) for a in self.actions if a["action"] in WRITTEN]


class PlanKind(StrEnum):
    """Which certificate plan a :class:`PreparedPlan` is."""

    PUSH = "push"
    RESTORE = "restore"


@dataclass
class PreparedPlan:
    """A push or restore ready to preview and run.

    Attributes:
        kind: push or restore.
        title: one line naming what it does (for a confirmation).
        plan: the plan (its hosts; empty when there is nothing to do).
        preview: host -> the exact commands and file diffs of each step.
        runner: runs the plan, calling ``on_event`` with each :class:`PlanEvent`.
    """

    kind: PlanKind
    title: str
    plan: Plan
    preview: dict[str, list[StepPreview]] = field(default_factory=dict)
    runner: Callable[[Callable[[PlanEvent], None] | None], Awaitable[PlanResult]] | None = None

    @property
    def empty(self) -> bool:
        """True when the plan touches no host (a restore with no recorded change)."""
        return not self.plan.hosts

    async def run(self, on_event: Callable[[PlanEvent], None] | None = None) -> PlanResult:
        """Carry the plan out, host by host, behind its health gates."""
        runner = self.runner or self.plan.run
        return await runner(on_event)


class CertificateWork:
    """Certificate use cases over one inventory, fleet and PKI directory.

    Args:
        inventory: the cluster.
        fleet: the workbench's fleet (connected on demand).
        pki_dir: the local PKI directory (cfssl names).
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, pki_dir: Path) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.pki_dir = Path(pki_dir)

    def load_ca(self) -> CertificateAuthority:
        """The CA of the PKI directory.

        Raises:
            UserError: there is none, or it cannot be read.
        """
        from tui.core.pki.ca import CertificateAuthority

        return CertificateAuthority.load(self.pki_dir)

    def _ca_or_none(self) -> CertificateAuthority | None:
        try:
            return self.load_ca()
        except UserError:
            return None

    async def survey(self, names: Sequence[str] | None = None, *,
                     served: bool = True) -> Survey:
        """Connect to ``names`` (default all) and survey what they hold and serve."""
        from tui.core.pki.survey import survey

        ca = await asyncio.to_thread(self._ca_or_none)
        await self.fleet.connect(names)
        return await survey(self.inventory, self.fleet, ca_cert=ca.cert if ca else None,
                            names=names,
                            pki_dir=self.pki_dir if self.pki_dir.is_dir() else None,
                            served=served)

    async def issue(self, names: Sequence[str] = (), *, force: bool = False,
                    dry_run: bool = False, key_type: KeyType = "rsa") -> IssueResult:
        """Create the CA if there is none and (re)issue what does not fit, off the loop.

        Raises:
            UserError: an unknown certificate name, or an unreadable CA.
        """
        from tui.core.pki.issue import issue_certificates

        actions = await asyncio.to_thread(
            issue_certificates, self.inventory, self.pki_dir, names=names, force=force,
            dry_run=dry_run, key_type=key_type)
        return IssueResult(self.pki_dir, dry_run, actions)

    async def prepare_push(self, names: Sequence[str] | None = None, *,
                           options: RolloutOptions | None = None,
                           on_survey: Callable[[], None] | None = None) -> PreparedPlan:
        """Connect, survey ``names`` and build the health-gated rollout with its preview.

        Args:
            names: hosts to push to, in order (default every host).
            options: timeouts and sudo (hosts whose login is not root use ``sudo -n``
                anyway; it is checked on each before anything else).
            on_survey: called just before the survey starts (a progress line).

        Raises:
            UserError: no CA, a local file missing or wrong, a host that cannot be
                surveyed.
        """
        from tui.core.pki.rollout import Rollout
        from tui.core.pki.services import RolloutOptions, sudo_preflight
        from tui.core.pki.survey import survey

        ca = await asyncio.to_thread(self.load_ca)
        await self.fleet.connect(names)
        wanted = list(names) if names is not None else [h.name for h in self.inventory.hosts]
        await sudo_preflight(self.fleet, wanted, options or RolloutOptions())
        if on_survey is not None:
            on_survey()
        report = await survey(self.inventory, self.fleet, ca_cert=ca.cert, names=names,
                              pki_dir=self.pki_dir)
        rollout = Rollout(self.inventory, self.fleet, report, self.pki_dir, names=names,
                          options=options)
        preview = await rollout.preview()
        return PreparedPlan(PlanKind.PUSH, f"Push {self.pki_dir} to", rollout.plan, preview,
                            rollout.run)

    async def prepare_restore(self, names: Sequence[str] | None = None, *,
                              options: RolloutOptions | None = None) -> PreparedPlan:
        """Connect and build the plan that puts the last push's backups back.

        Raises:
            UserError: ``PKI/last-push.json`` cannot be read (the message names it).
        """
        from tui.core.pki.restore import build_restore, journaled_hosts
        from tui.core.pki.services import RolloutOptions, sudo_preflight

        await self.fleet.connect(names)
        wanted = list(names) if names is not None else [h.name for h in self.inventory.hosts]
        await sudo_preflight(self.fleet, wanted, options or RolloutOptions())
        plan = build_restore(self.inventory, self.fleet, self.pki_dir, names=names,
                             options=options,
                             journaled=await journaled_hosts(self.fleet, wanted, options))
        prepared = PreparedPlan(PlanKind.RESTORE,
                                "Restore the files the last push replaced on", plan)
        if not prepared.empty:
            prepared.preview = await plan.preview()
        return prepared


def open_engine(workbench: Workbench) -> CertificateWork:
    """The workbench's ``certs`` engine (see :data:`tui.core.workbench.ENGINES`)."""
    return CertificateWork(workbench.inventory, workbench.fleet, workbench.pki_dir)
