"""`hardway vip rules|apply` over SSH against a lab host acting as the hypervisor, whose
`ipfw` is the lab's command (tui.lab.ipfw) with its state file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tui.cli import main
from tui.core.inventory.load import load_inventory
from tui.lab.ipfw import load_state
from tui.lab.lab import LabRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(lab_runner: LabRunner, tmp_path: Path) -> tuple[Path, Path, str]:
    """(inventory with a [hypervisor], ipfw state file, --ipfw command)."""
    source = lab_runner.lab.inventory_path
    inventory = load_inventory(source)
    first = inventory.controllers[0]
    path = tmp_path / "inventory.toml"
    path.write_text(source.read_text() + (
        f'\n[hypervisor]\nname = "nucklehead"\naddress = "{first.dial}"\n'
        f'os = "freebsd"\nfirewall = "ipfw"\nssh = {{ port = {first.ssh.port} }}\n'))
    state = tmp_path / "ipfw.json"
    ipfw = f"env PYTHONPATH={ROOT} {sys.executable} -m tui.lab.ipfw --state {state}"
    return path, state, ipfw


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_rules_apply_dry_run_rollback(setup: tuple[Path, Path, str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    inventory, state, ipfw = setup
    common = ["-i", str(inventory), "--ipfw", ipfw, "--audit", str(tmp_path / "audit.jsonl")]
    vip = str(load_inventory(inventory).api.vip)

    status, out, _ = run(capsys, "vip", "rules", *common, "--json")
    data = json.loads(out)
    assert status == 1 and not data["in_sync"]
    assert [d["change"] for d in data["diff"]] == ["missing"] * 3
    assert data["wanted"][0]["line"].startswith("01000 set 10 prob 0.333333 fwd ")

    status, out, _ = run(capsys, "vip", "apply", *common, "--dry-run")
    assert status == 0 and "Dry run: nothing was changed." in out
    assert "ipfw set swap 10 11" in out.replace(ipfw, "ipfw")
    assert not state.exists() or not load_state(state).rules

    status, _, err = run(capsys, "vip", "apply", *common)  # no terminal, no --yes
    assert status == 2 and "--yes" in err

    status, out, _ = run(capsys, "vip", "apply", *common, "--yes")
    assert status == 0, out
    assert "Swapped: set 10 on nucklehead serves" in out
    rules = [r for r in load_state(state).ordered() if r.set == 10]
    assert [r.fwd_address for r in rules] == [str(h.address) for h in
                                               load_inventory(inventory).controllers]
    assert run(capsys, "vip", "rules", *common)[0] == 0

    status, out, _ = run(capsys, "vip", "apply", *common, "--vip", "127.0.0.99", "--yes")
    assert status == 0
    assert {r.dst for r in load_state(state).ordered() if r.set == 10} == {"127.0.0.99"}
    assert run(capsys, "vip", "rules", *common)[0] == 1  # the inventory's VIP differs now

    status, out, _ = run(capsys, "vip", "apply", *common, "--rollback", "--yes", "--json")
    assert status == 0 and json.loads(out)["ok"]
    assert {r.dst for r in load_state(state).ordered() if r.set == 10} == {vip}
    assert run(capsys, "vip", "rules", *common)[0] == 0

    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    swaps = [e for e in audit if e["host"] == "nucklehead" and "set swap 10 11" in e["command"]]
    assert len(swaps) == 3 and all(e["status"] == 0 for e in swaps)


def test_errors_are_one_paragraph(setup: tuple[Path, Path, str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    inventory, _state, _ipfw = setup
    status, _, err = run(capsys, "vip", "rules", "-i", str(inventory), "--set", "31")
    assert status == 2 and "set 31 cannot be disabled" in err
    status, _, err = run(capsys, "vip", "rules", "-i", str(inventory), "--ipfw",
                         "/nonexistent/ipfw")
    assert status == 2
    assert "nucklehead: `/nonexistent/ipfw -S list` failed" in err
    assert "Traceback" not in err


async def test_ipfw_step_in_a_plan(setup: tuple[Path, Path, str], tmp_path: Path) -> None:
    """The step the "move the VIP" plan uses: preview, apply + verify, then skipped."""
    from tui.core.audit import AuditLog
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import HostKeyPolicy
    from tui.core.lb.hypervisor import HypervisorIpfw, ipfw_step, vip_backends, vip_layout
    from tui.core.plan import Plan

    inventory_path, state, ipfw = setup
    inventory = load_inventory(inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False,
                                    audit=AuditLog(tmp_path / "a.jsonl")) as fleet:
        hv = HypervisorIpfw(fleet, "nucklehead", ipfw=ipfw)
        plan = Plan([ipfw_step(hv, vip_layout(inventory), vip_backends(inventory))])
        preview = (await plan.preview())["nucklehead"][0]
        assert preview.done is None and preview.preview.commands[-1].endswith("set swap 10 11")
        assert len(preview.preview.notes) == 3  # three missing rules
        result = await plan.run()
        assert result.ok, result.failure
        assert result.states[(plan.steps[0].name, "nucklehead")].state == "done"
        again = await Plan([ipfw_step(hv, vip_layout(inventory),
                                      vip_backends(inventory))]).run()
        assert [e.state for e in again.states.values()] == ["skipped"]
    assert len([r for r in load_state(state).ordered() if r.set == 10]) == 3
