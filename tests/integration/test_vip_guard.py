"""The VIP guard on the confined lab: the hypervisor's ipfw round robin follows /readyz."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import running_lab
from tui.core.audit import AuditLog
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.health.catalog import Credentials
from tui.core.inventory.load import load_inventory
from tui.core.lb.guard import GuardAction, GuardEvent, GuardSettings, VipGuard
from tui.core.lb.hypervisor import HypervisorIpfw
from tui.lab import namespaces
from tui.lab.lab import HYPERVISOR, LabRunner

pytestmark = pytest.mark.skipif(namespaces.unavailable() is not None,
                                reason=f"no namespaces: {namespaces.unavailable()}")

REFUSE_SWAP = """#!/bin/sh
case "$*" in *swap*) echo "ipfw: setsockopt(IP_FW_XDEL): Operation not permitted" >&2; exit 71;;
esac
exec ipfw "$@"
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A confined, healthy 3-controller lab (the seed's round robin on the VIP)."""
    with running_lab(tmp_path_factory.mktemp("guard"), 41, controllers=3,
                     isolation="namespaces") as runner:
        yield runner


@pytest.fixture
async def fleet(lab: LabRunner, tmp_path: Path) -> AsyncIterator[Fleet]:
    """The product's fleet on the lab, with an audit log."""
    inventory = load_inventory(lab.lab.inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False,
                                    audit=AuditLog(tmp_path / "audit.jsonl")) as fleet:
        yield fleet


def ssh(lab: LabRunner, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on a lab host with OpenSSH, as a user would."""
    return subprocess.run(["ssh", "-F", str(lab.lab.ssh_config_path), host, command],
                          capture_output=True, text=True, timeout=120, check=False)


def apiserver(lab: LabRunner, host: str, verb: str) -> None:
    """``systemctl VERB kube-apiserver`` on ``host``."""
    assert ssh(lab, host, f"systemctl {verb} kube-apiserver").returncode == 0


class Running:
    """A guard running in the background, its events collected."""

    def __init__(self, guard: VipGuard) -> None:
        self.guard = guard
        self.events: list[GuardEvent] = []
        guard.subscribe(self.events.append)
        self.task = asyncio.ensure_future(guard.run())

    async def until(self, action: GuardAction, backends: tuple[str, ...] | None = None,
                    timeout: float = 30.0) -> GuardEvent:
        """Wait for an event (not wall-clock asserted: the timeout only stops a hang)."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[seen:]:
                    if event.action is action and (backends is None
                                                   or event.backends == backends):
                        return event
                seen = len(self.events)
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Cancel the guard and wait for it."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def _guard(lab: LabRunner, fleet: Fleet, **kwargs: object) -> VipGuard:
    inventory = load_inventory(lab.lab.inventory_path)
    return VipGuard(inventory, fleet, Credentials.from_pki(lab.lab.pki_directory),
                    GuardSettings(interval=0.5, timeout=1.0), **kwargs)  # type: ignore[arg-type]


def _vip_ok(lab: LabRunner, count: int) -> int:
    loop = (f"for i in $(seq {count}); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
            "--cacert ca.pem https://10.50.0.1:6443/version; done")
    return ssh(lab, HYPERVISOR, loop).stdout.split().count("200")


ALL = ("controller-0", "controller-1", "controller-2")


async def test_a_backend_down_is_removed_and_comes_back(lab: LabRunner, fleet: Fleet) -> None:
    running = Running(_guard(lab, fleet))
    try:
        await running.until(GuardAction.STARTED)
        apiserver(lab, "controller-1", "stop")
        swapped = await running.until(GuardAction.SWAPPED, ("controller-0", "controller-2"))
        assert "controller-1 removed" in swapped.reason
        assert await asyncio.to_thread(_vip_ok, lab, 100) == 100
        rules = ssh(lab, HYPERVISOR, "ipfw list").stdout
        assert "10.10.0.11" not in rules and "prob 0.500000 fwd 10.10.0.10" in rules
        apiserver(lab, "controller-1", "start")
        await running.until(GuardAction.SWAPPED, ALL)
        assert "10.10.0.11" in ssh(lab, HYPERVISOR, "ipfw list").stdout
    finally:
        apiserver(lab, "controller-1", "start")
        await running.stop()
    audit = (fleet.audit.path.read_text() if fleet.audit else "")  # type: ignore[union-attr]
    assert '"kind":"vip-guard"' in audit and "ipfw set swap 10 11" in audit


async def test_the_last_backend_is_never_removed(lab: LabRunner, fleet: Fleet) -> None:
    running = Running(_guard(lab, fleet))
    try:
        await running.until(GuardAction.STARTED)
        apiserver(lab, "controller-0", "stop")
        apiserver(lab, "controller-1", "stop")
        await running.until(GuardAction.SWAPPED, ("controller-2",))
        assert "fwd 10.10.0.12,6443" in ssh(lab, HYPERVISOR, "ipfw list").stdout
        apiserver(lab, "controller-2", "stop")
        kept = await running.until(GuardAction.KEPT_LAST)
        assert kept.backends == ("controller-2",)
        assert "fwd 10.10.0.12,6443" in ssh(lab, HYPERVISOR, "ipfw list").stdout
    finally:
        for host in ALL:
            apiserver(lab, host, "start")
        await running.until(GuardAction.SWAPPED, ALL)
        await running.stop()


async def test_a_refused_swap_leaves_the_old_rules_in_force(lab: LabRunner,
                                                            fleet: Fleet) -> None:
    root = lab.lab.host_root(HYPERVISOR) / "root"
    (root / "refuse-swap").write_text(REFUSE_SWAP)
    (root / "refuse-swap").chmod(0o755)
    before = ssh(lab, HYPERVISOR, "ipfw -S list").stdout
    refusing = HypervisorIpfw(fleet, HYPERVISOR, ipfw="/root/refuse-swap")
    running = Running(_guard(lab, fleet, hypervisor=refusing))
    try:
        await running.until(GuardAction.STARTED)
        apiserver(lab, "controller-1", "stop")
        failed = await running.until(GuardAction.SWAP_FAILED)
        assert "Operation not permitted" in failed.reason
        after = ssh(lab, HYPERVISOR, "ipfw list").stdout
        assert "fwd 10.10.0.11,6443" in after  # still the old, enabled set
        active = [line for line in before.splitlines() if "set 10" in line]
        assert active and all(line in ssh(lab, HYPERVISOR, "ipfw -S list").stdout
                              for line in active)
    finally:
        apiserver(lab, "controller-1", "start")
        await running.stop()


def test_dry_run_changes_nothing(lab: LabRunner, tmp_path: Path) -> None:
    import signal
    import sys

    before = ssh(lab, HYPERVISOR, "ipfw -S list").stdout
    guard = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "vip", "guard", "-i", str(lab.lab.inventory_path),
         "--dry-run", "--interval", "0.5", "--audit", str(tmp_path / "audit.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert guard.stdout is not None
        assert "watching" in guard.stdout.readline()
        apiserver(lab, "controller-2", "stop")
        for line in guard.stdout:
            if "dry run: would swap" in line:
                assert "controller-0, controller-1" in line
                break
        assert ssh(lab, HYPERVISOR, "ipfw -S list").stdout == before
    finally:
        apiserver(lab, "controller-2", "start")
        guard.send_signal(signal.SIGTERM)
        guard.wait(timeout=30)
    assert guard.returncode == 0


def _hardway(lab: LabRunner, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hardway vip guard ARGS`` on the lab's inventory, as a user runs it."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "vip", "guard", "-i", str(lab.lab.inventory_path),
         "--audit", str(tmp_path / "audit.jsonl"), *args],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)


def _guard_command() -> str:
    """This checkout's hardway, as the lab's hypervisor runs it (the project directory and
    the interpreter are mounted there read-only at their own paths)."""
    import shlex
    import sys

    from tui.lab.hypervisor import PROJECT

    return shlex.join(["/usr/bin/env", f"PYTHONPATH={PROJECT}", sys.executable, "-m",
                       "tui.cli"])


async def _until(check: object, timeout: float = 30.0) -> None:
    """Poll ``check()`` (a blocking callable) until true (the timeout only stops a hang)."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(check):  # type: ignore[arg-type]
            await asyncio.sleep(0.3)


def test_install_needs_hardway_on_the_hypervisor(lab: LabRunner, tmp_path: Path) -> None:
    done = _hardway(lab, tmp_path, "--install", "--dry-run")
    assert done.returncode == 2
    assert "nucklehead has no /usr/local/bin/hardway" in done.stderr
    assert "--guard-command" in done.stderr and "Traceback" not in done.stderr
    rc_d = _hardway(lab, tmp_path, "--install", "--yes", "--service", "rc.d",
                    "--guard-command", _guard_command())
    assert rc_d.returncode == 2 and "Traceback" not in rc_d.stderr
    assert "nucklehead lacks sysrc or service or /usr/sbin/daemon" in rc_d.stderr
    assert ssh(lab, HYPERVISOR, "test -e /usr/local/etc/hardway").returncode == 1  # untouched


async def test_the_guard_as_a_service_follows_readyz_and_uninstalls(lab: LabRunner,
                                                                    tmp_path: Path) -> None:
    command = ("--install", "--guard-command", _guard_command(), "--fall", "2")
    before = ssh(lab, HYPERVISOR, "ipfw -S list").stdout
    dry = await asyncio.to_thread(_hardway, lab, tmp_path, *command, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ExecStart=/usr/bin/env" in dry.stdout and "vip guard --local" in dry.stdout
    assert "$ systemctl enable --now hardway-guard.service" in dry.stdout
    assert "Dry run: nothing was changed." in dry.stdout
    assert ssh(lab, HYPERVISOR, "test -e /etc/hardway/guard").returncode == 1
    try:
        done = await asyncio.to_thread(_hardway, lab, tmp_path, *command, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "guard service ... ok" in done.stdout
        assert ssh(lab, HYPERVISOR, "systemctl is-active hardway-guard").stdout.strip() == \
            "active"
        processes = ssh(lab, HYPERVISOR, "ps -eo args").stdout
        assert "vip guard --local -i /etc/hardway/guard/inventory.toml" in processes
        assert ssh(lab, HYPERVISOR, "ipfw -S list").stdout == before
        # the service, not this test, takes the stopped controller out and puts it back
        apiserver(lab, "controller-1", "stop")
        await _until(lambda: "10.10.0.11" not in ssh(lab, HYPERVISOR, "ipfw list").stdout)
        assert await asyncio.to_thread(_vip_ok, lab, 100) == 100
        apiserver(lab, "controller-1", "start")
        await _until(lambda: "10.10.0.11" in ssh(lab, HYPERVISOR, "ipfw list").stdout)
        log = ssh(lab, HYPERVISOR, "journalctl -u hardway-guard --no-pager").stdout
        assert "controller-1 is DOWN" in log and "controller-1 added (UP)" in log
        again = await asyncio.to_thread(_hardway, lab, tmp_path, *command, "--yes")
        assert again.returncode == 0 and "Nothing to do" in again.stdout
    finally:
        apiserver(lab, "controller-1", "start")
        gone = await asyncio.to_thread(_hardway, lab, tmp_path, "--uninstall", "--yes")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "3 files moved away" in gone.stdout
    assert ssh(lab, HYPERVISOR, "systemctl is-active hardway-guard").returncode != 0
    assert "vip guard --local" not in ssh(lab, HYPERVISOR, "ps -eo args").stdout
    assert ssh(lab, HYPERVISOR, "test -e /etc/systemd/system/hardway-guard.service"
               ).returncode == 1
    rerun = await asyncio.to_thread(_hardway, lab, tmp_path, "--uninstall", "--yes")
    assert rerun.returncode == 0 and "Nothing to do" in rerun.stdout
