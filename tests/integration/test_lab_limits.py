"""The lab's host limits (issue 10): up to 100 hosts, refused beyond in one line, and a
confined lab of 30 controllers (the demo's certs-pushed start) whose every host answers
through the jump host."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import running_lab
from tui.core.errors import UserError
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.load import load_inventory
from tui.lab import namespaces
from tui.lab.lab import MAX_HOSTS, Lab


def test_more_than_a_hundred_hosts_are_refused_in_one_paragraph(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        Lab(tmp_path / "lab", controllers=90, workers=11)
    message = str(caught.value)
    assert f"at most {MAX_HOSTS} hosts" in message and "\n" not in message, message
    assert not (tmp_path / "lab").exists()  # nothing half-made


@pytest.mark.skipif(namespaces.unavailable() is not None,
                    reason=f"confined lab unavailable: {namespaces.unavailable()}")
async def test_thirty_controllers_start_confined_and_all_answer(tmp_path: Path) -> None:
    with running_lab(tmp_path / "lab", 71, controllers=30, isolation="namespaces",
                     scenario="certs-pushed") as runner:
        inventory = load_inventory(runner.lab.inventory_path)
        assert len(inventory.controllers) == 30
        policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
        async with Fleet.from_inventory(inventory, host_keys=policy,
                                        use_user_config=False) as fleet:
            results = await fleet.run(None, "echo $HOST_NAME $INTERNAL_IP; hostname")
    assert sorted(results) == sorted(h.name for h in inventory.hosts)
    for host in inventory.controllers:
        result = results[host.name]
        assert result.ok, result
        assert result.stdout == f"{host.name} {host.address}\n{host.name}\n"
