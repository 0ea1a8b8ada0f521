"""The fleet against the embedded lab: streaming, exports, kills, SFTP, unreachable hosts."""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.fleet.events import ConnState, Event, Exited, Failed, Output, StateChanged
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.model import Inventory, SSHOptions
from tui.lab.lab import Lab, LabRunner

NAMES = ["controller-0", "controller-1", "controller-2"]




async def lab_call(runner: LabRunner, fn: Callable[..., Awaitable[None]], *args: str) -> None:
    """Run a lab coroutine on the lab's loop without blocking ours."""
    await asyncio.wrap_future(runner.submit(fn, *args))


async def wait_no_pids(lab: Lab, name: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not lab.pids(name):
            return []
        await asyncio.sleep(0.05)
    return lab.pids(name)


async def test_concurrent_streaming_from_three_hosts(fleet: Fleet) -> None:
    states: list[StateChanged] = []
    unsubscribe = fleet.subscribe(states.append)
    assert await fleet.connect() == dict.fromkeys(NAMES, ConnState.READY)
    unsubscribe()
    assert {(s.host, s.state) for s in states} == {
        (n, st) for n in NAMES for st in (ConnState.CONNECTING, ConnState.READY)}

    events: list[tuple[float, Event]] = []
    started = time.monotonic()
    async for event in fleet.stream(None, "for i in 1 2 3; do echo {name}-$i; sleep 0.3; done"):
        events.append((time.monotonic() - started, event))
    total = time.monotonic() - started

    outputs = [e for _, e in events if isinstance(e, Output)]
    finals = [e for _, e in events if isinstance(e, Exited | Failed)]
    assert sorted(f.host for f in finals) == NAMES
    assert all(isinstance(f, Exited) and f.status == 0 for f in finals)
    for name in NAMES:
        text = "".join(o.data for o in outputs if o.host == name)
        assert text == f"{name}-1\n{name}-2\n{name}-3\n"
    first_final = min(t for t, e in events if isinstance(e, Exited))
    first_lines = [t for t, e in events if isinstance(e, Output) and e.data.endswith("-1\n")]
    assert len(first_lines) == 3 and max(first_lines) < first_final  # interleaved, live
    assert total < 2.0  # concurrent: about 0.9 s, not 2.7 s


async def test_exports_and_substitution_per_host(fleet: Fleet, inventory: Inventory) -> None:
    results = await fleet.run(
        None, 'echo "$HOST_NAME $INTERNAL_IP $ETCD_NAME"; echo {name} {ip}; '
              'ETCD_NAME=$(hostname -s); echo "$ETCD_NAME" ${HOST_NAME} {nope}')
    for host in inventory.hosts:
        result = results[host.name]
        assert result.ok, result
        assert result.stdout == (f"{host.name} {host.address} {host.name}\n"
                                 f"{host.name} {host.address}\n"
                                 f"{host.name} {host.name} {{nope}}\n")


async def test_timeout_kills_the_remote_process(fleet: Fleet, lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    seen_running: list[int] = []
    finals = []

    async def follow() -> None:
        async for event in fleet.stream(["controller-0"],
                                        "echo started; sleep 100 & sleep 101", timeout=1.0):
            if isinstance(event, Output) and event.data == "started\n":
                await asyncio.sleep(0.1)
                seen_running.extend(lab.pids("controller-0"))
            elif isinstance(event, Exited | Failed):
                finals.append(event)

    await asyncio.wait_for(follow(), 30)  # the sleeps end only when killed
    assert len(seen_running) >= 2
    assert len(finals) == 1 and isinstance(finals[0], Exited) and finals[0].timed_out
    assert await wait_no_pids(lab, "controller-0") == []


async def test_cancel_kills_only_the_cancelled_host(fleet: Fleet,
                                                    lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    finals: dict[str, Event] = {}
    async with fleet.stream(None, "echo started; sleep 1.5; echo finished") as stream:
        started = 0
        async for event in stream:
            if isinstance(event, Output) and event.data == "started\n":
                started += 1
                if started == 3:
                    assert lab.pids("controller-1")
                    stream.cancel(["controller-1"])
            elif isinstance(event, Exited | Failed):
                finals[event.host] = event
    cancelled = finals["controller-1"]
    assert isinstance(cancelled, Exited) and cancelled.cancelled and cancelled.status is None
    assert all(isinstance(finals[n], Exited) and finals[n].status == 0  # type: ignore[union-attr]
               for n in ("controller-0", "controller-2"))
    assert await wait_no_pids(lab, "controller-1") == []


async def test_closing_the_stream_early_kills_everything(fleet: Fleet,
                                                         lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    async with fleet.stream(None, "echo started; sleep 100") as stream:
        async for event in stream:
            if isinstance(event, Output):
                break
    for name in NAMES:
        assert await wait_no_pids(lab, name) == []


async def test_atomic_put_with_backup_and_get(fleet: Fleet, lab_runner: LabRunner) -> None:
    root = lab_runner.lab.host_root("controller-0")
    target = root / "etc/etcd/fleet-ca.pem"
    first = await fleet.put("controller-0", b"first\n", "/etc/etcd/fleet-ca.pem", mode=0o600)
    second = await fleet.put("controller-0", b"second\n", "/etc/etcd/fleet-ca.pem",
                             mode=0o640)
    assert first.ok and first.backup is None and first.remote_path == str(target)
    assert second.ok and second.changed and second.backup == str(target) + ".hardway-bak"
    assert target.read_bytes() == b"second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert Path(second.backup).read_bytes() == b"first\n"
    assert await fleet.get("controller-0", "/etc/etcd/fleet-ca.pem") == b"second\n"
    nested = await fleet.put("controller-0", b"x", "/var/lib/fleet-new/dir/unit.service")
    assert nested.ok and (root / "var/lib/fleet-new/dir/unit.service").read_bytes() == b"x"
    assert not [p for p in target.parent.iterdir() if ".hardway-tmp-" in p.name]


def _temps(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if ".hardway-tmp-" in p.name]


async def _wait_for_temp(directory: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not _temps(directory) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    assert _temps(directory), "the put never started writing"


async def test_cancelled_put_leaves_old_file_and_no_temp(fleet: Fleet,
                                                         lab_runner: LabRunner) -> None:
    root = lab_runner.lab.host_root("controller-1")
    target = root / "etc/etcd/cancel.pem"
    assert (await fleet.put("controller-1", b"old\n", "/etc/etcd/cancel.pem")).ok
    big = bytes(256 * 1024 * 1024)
    task = asyncio.create_task(fleet.put("controller-1", big, "/etc/etcd/cancel.pem"))
    await _wait_for_temp(target.parent)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert target.read_bytes() == b"old\n"
    assert _temps(target.parent) == []


async def test_dropped_connection_mid_put_leaves_old_file(fleet: Fleet,
                                                          lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    root = lab.host_root("controller-2")
    target = root / "etc/etcd/drop.pem"
    assert (await fleet.put("controller-2", b"old\n", "/etc/etcd/drop.pem")).ok
    big = bytes(256 * 1024 * 1024)
    task = asyncio.create_task(fleet.put("controller-2", big, "/etc/etcd/drop.pem"))
    await _wait_for_temp(target.parent)
    await lab_call(lab_runner, lab.stop_host, "controller-2")
    try:
        result = await asyncio.wait_for(task, 20)
        assert not result.ok and result.error
        assert target.read_bytes() == b"old\n"
    finally:
        await lab_call(lab_runner, lab.start_host, "controller-2")
    assert await fleet.reconnect("controller-2") == ConnState.READY
    again = await fleet.put("controller-2", b"new\n", "/etc/etcd/drop.pem")
    assert again.ok and target.read_bytes() == b"new\n"
    assert _temps(target.parent) == []  # the stale temp was removed by the next put


async def test_unreachable_host_does_not_delay_the_others(fleet: Fleet,
                                                           lab_runner: LabRunner,
                                                           tmp_path: Path) -> None:
    lab = lab_runner.lab
    await fleet.connect()
    await lab_call(lab_runner, lab.stop_host, "controller-2")
    try:
        # a barrier: each host's command ends only once both have started (run one after
        # the other, the first gives up after 20 s and exits 9)
        here = tmp_path / "barrier"
        here.mkdir()
        barrier = (f"touch {here}/$HOST_NAME; n=0; until [ -e {here}/controller-0 ] && "
                   f"[ -e {here}/controller-1 ]; do n=$((n+1)); [ $n -gt 400 ] && exit 9; "
                   "sleep 0.05; done; echo ok")
        results = await fleet.run(None, barrier)
        down = results["controller-2"]
        assert down.error is not None and down.status is None
        assert results["controller-0"].stdout == "ok\n" and results["controller-1"].ok
        assert fleet.state("controller-2") == ConnState.FAILED
        retry = (await fleet.run(["controller-2"], "true"))["controller-2"]
        assert retry.error is not None and "connection refused" in retry.error
    finally:
        await lab_call(lab_runner, lab.start_host, "controller-2")
    assert await fleet.reconnect("controller-2") == ConnState.READY
    assert (await fleet.run(["controller-2"], "echo back"))["controller-2"].stdout == "back\n"


async def test_openssh_config_supplies_hostname_port_user_key_and_known_hosts(
        inventory: Inventory, lab_runner: LabRunner, tmp_path: Path) -> None:
    """A host dialled by name with nothing but ``ssh.config``: all else comes from the file."""
    lab = lab_runner.lab
    original = inventory.host("controller-1")
    by_name = replace(original, ssh_host="controller-1",
                      ssh=SSHOptions(config=lab.ssh_config_path))
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet([by_name], host_keys=policy, use_user_config=False) as fleet:
        result = (await fleet.run(None, "echo $HOST_NAME; hostname -s"))["controller-1"]
        assert fleet.endpoint("controller-1") == f"{original.address}:{lab.port}"
    assert result.ok, result
    assert result.stdout == "controller-1\ncontroller-1\n"
    assert not (tmp_path / "record").exists()  # the key was known via UserKnownHostsFile


async def test_aes_gcm_is_offered_first_unless_the_config_names_ciphers(
        inventory: Inventory, lab_runner: LabRunner, tmp_path: Path) -> None:
    """AES-GCM (one call per packet) is negotiated by default; a ``Ciphers`` line wins."""
    lab = lab_runner.lab
    config = tmp_path / "ssh_config"
    config.write_text(lab.ssh_config_path.read_text()
                      + "\nHost *\n  Ciphers chacha20-poly1305@openssh.com\n")
    original = inventory.host("controller-1")
    chosen = replace(original, ssh_host="controller-1", ssh=SSHOptions(config=config))
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy,
                                    use_user_config=False) as fleet, \
            Fleet([chosen], host_keys=policy, use_user_config=False) as configured:
        await fleet.connect(["controller-0"])
        await configured.connect()
        connections = {"controller-0": fleet.connection("controller-0"),
                       "controller-1": configured.connection("controller-1")}
        ciphers = {name: conn.get_extra_info("recv_cipher") if conn else None
                   for name, conn in connections.items()}
    assert ciphers == {"controller-0": "aes128-gcm@openssh.com",
                       "controller-1": "chacha20-poly1305@openssh.com"}


async def test_configuration_mistakes_become_failed_events(inventory: Inventory,
                                                           tmp_path: Path) -> None:
    base = inventory.host("controller-0")
    no_key = replace(base, name="no-key",
                     ssh=replace(base.ssh, identity=tmp_path / "missing_ed25519"))
    no_jump = replace(base, name="no-jump", ssh=replace(base.ssh, jump="bastion"))
    no_config = replace(base, name="no-config",
                        ssh=replace(base.ssh, config=tmp_path / "missing_config"))
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet([no_key, no_jump, no_config], host_keys=policy,
                     use_user_config=False) as fleet:
        results = await fleet.run(None, "true")
        with pytest.raises(UserError, match="no host called 'controller-9'"):
            fleet.stream(["controller-9"], "true")
    assert results["no-key"].error == (
        f"The identity file {tmp_path / 'missing_ed25519'} for no-key (inventory key "
        "ssh.identity) does not exist; create the key or fix the path.")
    assert results["no-jump"].error == (
        "no-jump should be reached through the jump host 'bastion' (ssh.jump), but no host or "
        "hypervisor of that name is in the inventory")
    assert results["no-config"].error == (
        f"The OpenSSH config file {tmp_path / 'missing_config'} (inventory key ssh.config) "
        "does not exist; point ssh.config at an existing file or remove the key.")
