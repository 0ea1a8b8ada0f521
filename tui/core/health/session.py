"""One health monitor for an inventory: probes, poller, client and dialer built together.

The CLI and the health screen both start here, so they probe the same way::

    session = HealthSession.open(inventory, fleet, Credentials.from_pki(pki_dir))
    session.poller.subscribe(view.on_health_event)
    session.poller.start()              # or: await session.poller.run_round(wait_all=True)
    ...
    await session.close()               # stops the rounds, closes kept connections

Its seams (:class:`~tui.core.health.catalog.Seams`: DNS resolution, the VIP rules) are
optional; ``vip-rules`` learns which API servers are up from this session's poller (not
DOWN: before its first answer an API server is not taken for a dead one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.core.fleet.dial import Dialer, dialer_for
from tui.core.health.catalog import Credentials, ProbeOptions, Seams, build_probes
from tui.core.health.client import HttpClient
from tui.core.health.model import Kind
from tui.core.health.poller import Poller
from tui.core.inventory.model import Inventory

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

__all__ = ["HealthSession"]


@dataclass
class HealthSession:
    """The poller over an inventory's probes, and what it owns.

    Attributes:
        inventory: the cluster.
        poller: runs the probes (subscribe to it for events).
        client: the kept-alive HTTP(S) connections.
        dialer: how cluster addresses are reached.
        owns_dialer: close the dialer with the session (it was made here).
    """

    inventory: Inventory
    poller: Poller
    client: HttpClient
    dialer: Dialer
    owns_dialer: bool = True

    @classmethod
    def open(cls, inventory: Inventory, fleet: Fleet | None, credentials: Credentials,
             options: ProbeOptions | None = None, *, seams: Seams | None = None,
             dialer: Dialer | None = None, interval: float = 2.0, rise: int = 2,
             fall: int = 3) -> HealthSession:
        """Build the probes and the poller (nothing is contacted yet).

        Args:
            fleet: for SSH probes and the jump host (None: no SSH probes, direct dialling
                unless ``dialer`` is given).
            dialer: default: the inventory's (through its jump host, if it names one).

        Raises:
            UserError: credentials that cannot be loaded, unknown hosts, no probe at all.
        """
        from tui.core.errors import UserError
        from tui.core.fleet.dial import DirectDialer

        owns = dialer is None
        if dialer is None:
            dialer = dialer_for(inventory, fleet) if fleet is not None else DirectDialer()
        seams = seams or Seams()
        if seams.fleet is None and fleet is not None:
            seams.fleet = fleet
        client = HttpClient(dialer)
        probes = build_probes(inventory, client, credentials, options, seams)
        if not probes:
            raise UserError("No probe applies to the selected hosts and probe names.")
        poller = Poller(probes, interval=interval, rise=rise, fall=fall)
        addresses = {h.name: str(h.address) for h in inventory.hosts}
        seams.up_backends = lambda: [addresses[row] for row in poller.rows_not_down(Kind.READYZ)
                                     if row in addresses]
        return cls(inventory, poller, client, dialer, owns)

    def retarget(self, inventory: Inventory, credentials: Credentials,
                 options: ProbeOptions | None = None, seams: Seams | None = None) -> int:
        """Point the running probes at a rewritten inventory's addresses (a VIP move): each
        cell keeps its key, state and history and probes the new target from the next
        round.  Returns how many cells were retargeted."""
        self.inventory = inventory
        probes = build_probes(inventory, self.client, credentials, options,
                              seams or Seams())
        return self.poller.retarget(probes)

    async def close(self) -> None:
        """Stop the poller and close the connections (and the dialer when owned)."""
        await self.poller.stop()
        await self.client.close()
        if self.owns_dialer:
            await self.dialer.close()
