"""What every step of a VIP move works with: the hosts, the hypervisor, DNS, the journal.

:class:`MoveContext` bundles the inventory, the fleet, the hypervisor's ipfw, the DNS
client, the PKI directory and the journal, and offers the few operations several steps
share: reading the VIP's ipfw sets, running ipfw commands (stopping at the first
failure), reading and conditionally rewriting the API name's A RRset, and HTTPS GETs
through a VIP verified against the cluster CA (by address, or by name).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.dns.drift import RRset
from tui.core.dns.query import DnsClient, DnsUnreachable
from tui.core.dns.records import absolute
from tui.core.dns.tsig import TsigKeyRef
from tui.core.dns.update import Change, ChangeAction, build_update, render_update, send_update
from tui.core.errors import UserError
from tui.core.lb.hypervisor import HypervisorIpfw
from tui.core.lb.ipfw import Backend, IpfwCommand, VipLayout
from tui.core.lb.move_journal import MoveJournal
from tui.core.lb.move_rules import SetState, read_sets
from tui.core.pki.services import RolloutOptions
from tui.core.plan import PlanEvent, StepFailed

if TYPE_CHECKING:
    from tui.core.fleet.dial import Dialer
    from tui.core.fleet.fleet import Fleet
    from tui.core.health.probes import HttpAnswer
    from tui.core.inventory.model import Inventory


class MoveStepKind(StrEnum):
    """The steps of a VIP move, in the order they run."""

    ALIASES = "aliases"
    RULES = "rules"
    CERTIFICATE = "certificate"
    SWITCH = "switch"
    DNS = "dns"
    VERIFY = "verify"
    REMOVE_RULES = "remove-rules"
    REMOVE_ALIASES = "remove-aliases"
    REMOVE_DNS = "remove-dns"
    INVENTORY = "inventory"


def step_title(kind: MoveStepKind, old: str, new: str) -> str:
    """One line saying what ``kind`` does when moving ``old`` to ``new``."""
    return {
        MoveStepKind.ALIASES: f"add {new}/32 to lo on every controller (beside {old})",
        MoveStepKind.RULES: f"build the ipfw rules for {new} beside {old}'s in the spare set",
        MoveStepKind.CERTIFICATE: f"reissue kubernetes.pem with IP {new}, push it with the "
                                  "health-gated restart",
        MoveStepKind.SWITCH: f"switch the rules: {new} and {old} both served",
        MoveStepKind.DNS: f"DNS: add {new} to the API name (conditional update)",
        MoveStepKind.VERIFY: f"verify through {new}: TLS, /version, /healthz by address and "
                             "by name",
        MoveStepKind.REMOVE_RULES: f"remove {old}'s ipfw rules",
        MoveStepKind.REMOVE_ALIASES: f"remove {old}/32 from lo on every controller",
        MoveStepKind.REMOVE_DNS: f"DNS: remove {old} from the API name (conditional update)",
        MoveStepKind.INVENTORY: f"write [api] vip = \"{new}\" into the inventory",
    }[kind]


FAILED_MARK = "hardway-batch-failed"
"""What :func:`batch_script` prints on stderr, with the index, when a line fails."""


def batch_script(lines: Sequence[str]) -> str:
    """One shell script running ``lines`` in order, stopping at the first that fails
    (its exit status kept, ``FAILED_MARK INDEX`` on stderr)."""
    return "\n".join(f"{line} || {{ s=$?; echo '{FAILED_MARK}' {index} >&2; exit $s; }}"
                     for index, line in enumerate(lines))


def failed_line(stderr: str, stdout: str, count: int) -> tuple[int | None, str]:
    """Which line of a :func:`batch_script` failed (None: unknown) and its message."""
    failed: int | None = None
    messages = []
    for line in stderr.splitlines():
        head, _, index = line.partition(" ")
        if head == FAILED_MARK and index.strip().isdigit() and int(index) < count:
            failed = int(index)
        elif line.strip():
            messages.append(line.strip())
    return failed, "; ".join(messages) or stdout.strip()


Fault = Callable[[MoveStepKind, str], Awaitable[None]]
"""Called after a step's change and before its verification (tests inject failures)."""

LOCAL = "local"
"""The pseudo host of steps done on this machine (the inventory file)."""
PKI_HOST = "kubernetes.pem"
"""The pseudo host of the certificate step (the PKI, then every controller in turn)."""


@dataclass
class MoveContext:
    """Everything the steps of one move (or its rollback) use.

    Attributes:
        inventory: the cluster as it was when the move was prepared.
        fleet: the workbench's fleet (controllers; the hypervisor is its jump host).
        hv: the hypervisor's ipfw.
        old: the old VIP's ipfw layout.
        new: the new VIP's ipfw layout.
        backends: the controllers behind the VIP.
        pki_dir: the local PKI directory (``ca.pem``, ``kubernetes.pem``...).
        journal: the move's journal (None while only previewing).
        dialer: how cluster addresses are reached (the jump host).
        dns: the zone's server (None: the inventory has no ``[dns]``).
        options: rollout timeouts and sudo.
        fault: see :data:`Fault`.
        on_event: where sub-steps (the certificate push) report.
        ipfw: the ipfw command on the hypervisor.
        live: the plan is running (a preview's checks never write the journal).
    """

    inventory: Inventory
    fleet: Fleet
    hv: HypervisorIpfw
    old: VipLayout
    new: VipLayout
    backends: list[Backend]
    pki_dir: Path
    dialer: Dialer
    dns: DnsClient | None = None
    journal: MoveJournal | None = None
    options: RolloutOptions = field(default_factory=RolloutOptions)
    fault: Fault | None = None
    on_event: Callable[[PlanEvent], None] | None = None
    ipfw: str = "ipfw"
    live: bool = False

    @property
    def controllers(self) -> list[str]:
        """Controller names, in inventory order."""
        return [h.name for h in self.inventory.controllers]

    @property
    def api_name(self) -> str | None:
        """The API's DNS name (absolute), when the inventory has one and a zone."""
        if self.inventory.api.hostname is None or self.inventory.dns is None:
            return None
        return absolute(self.inventory.api.hostname)

    def need_journal(self) -> MoveJournal:
        """The journal (a step that changes something needs one)."""
        if self.journal is None:
            raise StepFailed("internal: no journal is open, so nothing may change")
        return self.journal

    async def injected(self, kind: MoveStepKind, host: str) -> None:
        """Run the fault hook of ``kind`` on ``host``, if any."""
        if self.fault is not None:
            await self.fault(kind, host)

    # -- ipfw -------------------------------------------------------------------------

    async def sets(self) -> SetState:
        """The VIP's two ipfw sets as the hypervisor has them now."""
        return read_sets(await self.hv.read_rules(), self.old)

    def lines(self, commands: Sequence[IpfwCommand]) -> tuple[str, ...]:
        """The shell lines of ``commands`` with this hypervisor's ipfw."""
        return tuple(self.hv.commands(commands))

    async def run_ipfw(self, commands: Sequence[IpfwCommand]) -> int:
        """Run ``commands`` in order, in one remote shell (one round trip to the
        hypervisor), stopping at the first that fails; returns how many ran.

        Raises:
            StepFailed: one failed (the later ones were not run).
        """
        lines = self.lines(commands)
        if not lines:
            return 0
        result = await self.hv.run(batch_script(lines))
        if result.ok:
            return len(lines)
        failed, reason = failed_line(result.stderr, result.stdout, len(lines))
        if failed is None:
            raise StepFailed(f"the ipfw commands could not run on {self.hv.name} (exit "
                             f"{result.status}): {reason or 'no message'}")
        raise StepFailed(f"`{lines[failed]}` failed on {self.hv.name} (exit {result.status}): "
                         f"{reason}; {len(lines) - failed - 1} later commands were not run")

    async def expect_sets(self, wanted: SetState, what: str) -> None:
        """Raise StepFailed unless the sets read back are ``wanted``."""
        have = await self.sets()
        if not have.same_as(wanted):
            raise StepFailed(f"{what}: the rules read back from {self.hv.name} differ: "
                             f"active {have.lines()['active']}, spare {have.lines()['spare']}")

    # -- DNS --------------------------------------------------------------------------

    def need_dns(self) -> tuple[DnsClient, str]:
        """The DNS client and the API name."""
        name = self.api_name
        if self.dns is None or name is None:
            raise StepFailed("the inventory has no [dns] table or no api.hostname")
        return self.dns, name

    async def api_rrset(self) -> RRset | None:
        """The API name's A RRset as the server answers it now (None: none)."""
        client, name = self.need_dns()
        try:
            answer = await client.rrset(name, "A")
        except DnsUnreachable as exc:
            raise StepFailed(f"the DNS server {exc.server} did not answer: {exc.reason}") \
                from None
        if not answer.exists:
            return None
        return RRset(name, "A", answer.ttl or 300, answer.values)

    def rrset_change(self, before: RRset | None, values: Sequence[str],
                     ttl: int | None = None) -> Change:
        """The conditional change from ``before`` to ``values`` (empty: delete)."""
        _client, name = self.need_dns()
        new_values = tuple(sorted(set(values)))
        keep_ttl = ttl or (before.ttl if before is not None else 300)
        if not new_values:
            return Change(ChangeAction.DELETE, name, "A", None, before)
        action = ChangeAction.ADD if before is None else ChangeAction.REPLACE
        return Change(action, name, "A", RRset(name, "A", keep_ttl, new_values), before)

    def update_text(self, change: Change) -> str:
        """The UPDATE message for ``change`` as nsupdate shows it (unsigned)."""
        assert self.inventory.dns is not None
        return render_update(build_update(self.inventory.dns.zone, [change]))

    async def send(self, change: Change) -> str:
        """Send ``change`` signed with the inventory's key; returns the server's verdict.

        Raises:
            StepFailed: the server did not apply it (the explanation says why).
        """
        client, _name = self.need_dns()
        assert self.inventory.dns is not None
        key = TsigKeyRef.from_inventory(self.inventory.dns)
        if key is None:
            raise StepFailed("the inventory names no TSIG key (dns.tsig_name, "
                             "dns.tsig_secret_file); hardway sends no unsigned update")
        try:
            result = await send_update(client, build_update(self.inventory.dns.zone, [change]),
                                       key, changes=[change], audit=self.fleet.audit)
        except UserError as exc:
            raise StepFailed(str(exc)) from None
        if not result.ok:
            raise StepFailed(result.explanation)
        return change.text(self.inventory.dns.zone)

    # -- HTTPS through a VIP ----------------------------------------------------------

    def ca_context(self) -> ssl.SSLContext:
        """TLS verified against the PKI's ``ca.pem`` (name or IP checked)."""
        from tui.core.health.probes import tls_context

        try:
            return tls_context(self.pki_dir / "ca.pem")
        except ValueError as exc:
            raise StepFailed(f"{self.pki_dir / 'ca.pem'}: {exc}") from None

    async def get(self, address: str, path: str, *, server_name: str | None = None,
                  timeout: float = 5.0) -> HttpAnswer:
        """``GET path`` over TLS to ``address`` (through the dialer), the certificate
        verified against the CA for ``server_name`` (default: the address itself).

        Raises:
            StepFailed: no connection, TLS refused, or no HTTP answer.
        """
        from tui.core.health.probes import https_get

        name = server_name or address
        port = self.inventory.api.port
        try:
            return await https_get(address, port, path, context=self.ca_context(),
                                   timeout=timeout, dialer=self.dialer, server_name=name,
                                   user_agent="hardway-vip-move")
        except ssl.SSLCertVerificationError as exc:
            raise StepFailed(f"https://{address}:{port}{path}: the certificate is not valid "
                             f"for {name} against {self.pki_dir / 'ca.pem'} "
                             f"({exc.verify_message})") from None
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            raise StepFailed(f"https://{address}:{port}{path} (as {name}): "
                             f"{str(exc) or type(exc).__name__}") from None


__all__ = ["FAILED_MARK", "LOCAL", "PKI_HOST", "Fault", "MoveContext", "MoveStepKind",
           "batch_script", "failed_line", "step_title"]
