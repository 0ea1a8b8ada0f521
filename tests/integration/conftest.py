"""Fixtures shared by the integration tests (a module may define its own to override)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.core.audit import AuditLog
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.lab.lab import LabRunner


@pytest.fixture
def inventory(lab_runner: LabRunner) -> Inventory:
    """The session lab's inventory."""
    return load_inventory(lab_runner.lab.inventory_path)


@pytest.fixture
async def fleet(inventory: Inventory, tmp_path: Path) -> AsyncIterator[Fleet]:
    """A strict fleet on the lab (its known_hosts file comes from the inventory)."""
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False,
                                    audit=AuditLog(tmp_path / "audit.jsonl")) as fleet:
        yield fleet
