"""The foreground guard's live status line, from the guard's own poller state."""

from __future__ import annotations

from pathlib import Path

from tui.core.fleet.fleet import Fleet
from tui.core.health.catalog import Credentials
from tui.core.health.model import Outcome
from tui.core.inventory.load import load_inventory
from tui.core.lb.guard import GuardSettings, VipGuard

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"


async def test_status_line_follows_readyz_and_the_rules() -> None:
    inventory = load_inventory(SEED)
    async with Fleet.from_inventory(inventory, use_user_config=False) as fleet:
        guard = VipGuard(inventory, fleet, Credentials(), GuardSettings(rise=2, fall=2))
        names = [h.name for h in inventory.controllers]
        assert guard.status_line() == " · ".join(
            [f"{n} ?" for n in names] + ["VIP -> ?", "round 0"])
        cells = {c.probe.row: c for c in guard.session.poller.cells.values()}
        for name in names:
            cells[name].apply(Outcome.ok("readyz 200", 0.004))
        cells[names[1]].apply(Outcome.fail("connection refused"))
        guard._status.in_rules = (names[0], names[2])
        line = guard.status_line()
        assert line.startswith(f"{names[0]} UP 4ms · {names[1]} UP 1/2 DOWN · ")
        assert line.endswith(f"VIP -> {names[0]}, {names[2]} · round 0")
        cells[names[1]].apply(Outcome.fail("connection refused"))
        assert f"{names[1]} DOWN ·" in guard.status_line()
        await guard.session.close()
