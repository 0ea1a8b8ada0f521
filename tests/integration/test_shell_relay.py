"""Console shells whose SSH connections live in the relay process, against the embedded lab."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.core.audit import AuditLog
from tui.core.fleet import relayhost
from tui.core.fleet.events import ConnState
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.relay import RelayFleet, ShellRelay
from tui.core.fleet.shell import CommandFinished, CommandStarted, Shell, ShellClosed, ShellOutput
from tui.core.inventory.load import load_inventory
from tui.lab.lab import LabRunner

WAIT = 10.0


@pytest.fixture
async def console_fleet(lab_runner: LabRunner, tmp_path: Path) -> AsyncIterator[RelayFleet]:
    inventory = load_inventory(lab_runner.lab.inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False,
                                    audit=AuditLog(tmp_path / "audit.jsonl")) as fleet:
        relay = ShellRelay(fleet)
        try:
            yield RelayFleet(fleet, relay)
        finally:
            await relay.stop()


class Events:
    """What a subscriber on the UI loop receives, with the thread it ran on."""

    def __init__(self, shell: Shell) -> None:
        self.events: list[object] = []
        self.threads: set[int] = set()
        shell.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        self.events.append(event)
        self.threads.add(threading.get_ident())

    def finished(self) -> list[CommandFinished]:
        return [e for e in self.events if isinstance(e, CommandFinished)]

    async def wait_finished(self, count: int, timeout: float = WAIT) -> CommandFinished:
        async def poll() -> None:
            while len(self.finished()) < count:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)
        return self.finished()[count - 1]


async def test_relay_shell_runs_commands_with_ssh_in_another_process(
        console_fleet: RelayFleet) -> None:
    await console_fleet.connect(["controller-1"])
    shell = await console_fleet.open_shell("controller-1")
    assert shell.state == "open", shell.reason
    relay = console_fleet.relay
    assert relay.running and relay._process is not None
    assert relay._process.pid != os.getpid()
    seen = Events(shell)
    ui_thread = threading.get_ident()

    started = shell.send_line("echo $HOST_NAME-{x}")
    assert isinstance(started, CommandStarted)  # delivered before send_line returned
    assert started in seen.events
    finished = await seen.wait_finished(1)
    assert finished.status == 0
    assert finished.output.strip() == "controller-1-{x}"
    assert seen.threads == {ui_thread}
    assert not shell.busy

    shell.write("false\r")  # raw keys, typed in the pane
    finished = await seen.wait_finished(2)
    assert finished.status == 1
    await shell.close()
    assert shell.state == "closed"
    assert isinstance(seen.events[-1], ShellClosed)


async def test_flood_arrives_whole_in_few_batches(console_fleet: RelayFleet) -> None:
    await console_fleet.connect(["controller-2"])
    shell = await console_fleet.open_shell("controller-2")
    assert shell.state == "open", shell.reason
    seen = Events(shell)
    shell.send_line("seq 1 100000")
    finished = await seen.wait_finished(1, timeout=30)
    assert finished.status == 0
    numbers = finished.output.split()
    assert not finished.truncated, (finished.output[:80], finished.output[-80:])
    assert numbers[0] == "1" and numbers[-1] == "100000" and len(numbers) == 100000
    outputs = [e.data for e in seen.events if isinstance(e, ShellOutput)]
    assert "99999\r\n100000\r\n" in "".join(outputs)
    assert len(outputs) < 300  # batched by the relay, not one event per SSH packet
    # flow control: nothing larger than the flood window (plus one read) in one piece
    assert max(map(len, outputs)) <= relayhost.FLOOD_PENDING + 512 * 1024
    await shell.close()


async def test_shells_are_lost_when_the_relay_dies_and_a_new_one_serves(
        console_fleet: RelayFleet) -> None:
    await console_fleet.connect(["controller-0"])
    shell = await console_fleet.open_shell("controller-0")
    assert shell.state == "open", shell.reason
    seen = Events(shell)
    relay = console_fleet.relay
    assert relay._process is not None
    first = relay._process.pid
    relay._process.kill()

    async def closed() -> None:
        while not any(isinstance(e, ShellClosed) for e in seen.events):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(closed(), WAIT)
    assert shell.state == "failed" and "lost" in shell.reason and "relay" in shell.reason
    again = await console_fleet.open_shell("controller-0")
    assert again.state == "open", again.reason
    assert relay._process is not None and relay._process.pid != first
    seen = Events(again)
    again.send_line("echo again")
    assert (await seen.wait_finished(1)).output.strip() == "again"
    await again.close()


async def test_an_unreachable_host_fails_with_the_reason(console_fleet: RelayFleet,
                                                         lab_runner: LabRunner) -> None:
    await console_fleet.connect(["controller-1"])
    await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.stop_host, "controller-1"))
    try:
        shell = await console_fleet.open_shell("controller-1")
    finally:
        await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.start_host, "controller-1"))
    assert shell.state == "failed"
    assert "controller-1" in shell.reason or "127." in shell.reason, shell.reason


async def test_reconnect_after_the_host_went_away(console_fleet: RelayFleet,
                                                  lab_runner: LabRunner) -> None:
    await console_fleet.connect(["controller-0"])
    shell = await console_fleet.open_shell("controller-0")
    seen = Events(shell)
    await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.stop_host, "controller-0"))
    try:
        async def closed() -> None:
            while not any(isinstance(e, ShellClosed) for e in seen.events):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(closed(), WAIT)
        assert shell.state in ("closed", "failed")
    finally:
        await asyncio.wrap_future(lab_runner.submit(lab_runner.lab.start_host, "controller-0"))
    assert await console_fleet.reconnect("controller-0") == ConnState.READY
    again = await console_fleet.open_shell("controller-0")
    assert again.state == "open", again.reason
    seen = Events(again)
    again.send_line("echo back")
    assert (await seen.wait_finished(1)).output.strip() == "back"
    await again.close()


async def test_a_relay_started_early_serves_and_stopping_during_start_leaves_none(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    inventory = load_inventory(lab_runner.lab.inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy,
                                    use_user_config=False) as fleet:
        relay = ShellRelay(fleet)
        relay.prestart()
        shell = await RelayFleet(fleet, relay).open_shell("controller-0")
        assert shell.state == "open", shell.reason
        await shell.close()
        await relay.stop()
        early = ShellRelay(fleet)
        early.prestart()
        await early.stop()  # while the interpreter is still starting
        assert early._process is None or early._process.returncode is not None


async def test_a_workbench_relay_warmed_before_the_console_serves_it_or_ends_with_it(
        lab_runner: LabRunner, tmp_path: Path) -> None:
    """``Workbench.warm_relay`` (called by the app before it imports Textual) starts the
    process the console then uses; a warm process nobody used ends with the workbench."""
    from tui.core.workbench import Workbench

    inventory = load_inventory(lab_runner.lab.inventory_path)
    async with Workbench(inventory, host_keys="accept-new", user_ssh_files=False,
                         audit_path=tmp_path / "audit.jsonl") as workbench:
        workbench.warm_relay()
        early = workbench._early_relay
        assert early is not None
        warm = await early
        await workbench.start_console()
        assert workbench.relay is not None and workbench.relay.running
        assert workbench.relay._process is warm.process  # the warm one, not a second
        shell = workbench.console.shell("controller-0")
        assert shell is not None and shell.state == "open", shell and shell.reason
    assert warm.process.returncode is not None

    async with Workbench(inventory, host_keys="accept-new", user_ssh_files=False,
                         audit_path=tmp_path / "audit.jsonl") as unused:
        unused.warm_relay()
        early = unused._early_relay
        assert early is not None
        idle = await early
    assert idle.process.returncode is not None  # killed and reaped, not orphaned


def test_the_warm_relays_specification_is_the_workbench_fleets(lab_runner: LabRunner,
                                                               tmp_path: Path) -> None:
    """The INIT sent before the app loads SSH (built from the inventory) describes the
    fleet the workbench builds later, so the console keeps the warm process (a mismatch
    would start a second relay)."""
    import dataclasses

    from tui.core.fleet.relaylaunch import RelaySpec
    from tui.core.workbench import Workbench

    inventory = load_inventory(lab_runner.lab.inventory_path)
    zone_host = dataclasses.replace(inventory.hosts[0], name="zone-host")  # `dns`'s extra
    for user_files, extra in ((True, ()), (False, (zone_host,))):
        workbench = Workbench(inventory, host_keys="ask", user_ssh_files=user_files,
                              audit_path=tmp_path / "audit.jsonl", fanout=7,
                              connect_timeout=3.0, extra_hosts=extra)
        early = RelaySpec.for_inventory(inventory, fanout=7, connect_timeout=3.0,
                                        user_ssh_files=user_files, extra=extra,
                                        preconnect=("x",))
        assert early == RelaySpec.of(workbench.fleet)
        assert early != RelaySpec.for_inventory(inventory, fanout=8, connect_timeout=3.0,
                                                user_ssh_files=user_files)


async def test_the_relay_connects_its_hosts_before_the_app_asks(lab_runner: LabRunner,
                                                               tmp_path: Path) -> None:
    """``preconnect``: the relay connects every host as soon as it has its INIT; the
    app's CONNECT then takes the connection made meanwhile instead of making another."""
    from tui.core.fleet import relaywire as wire
    from tui.core.fleet.relaylaunch import RelaySpec

    inventory = load_inventory(lab_runner.lab.inventory_path)
    names = tuple(h.name for h in inventory.hosts)
    spec = RelaySpec.for_inventory(inventory, fanout=8, connect_timeout=5.0,
                                   user_ssh_files=False, preconnect=names)
    sent: list[bytes] = []

    class Writer:
        def is_closing(self) -> bool:
            return False

        def write(self, data: bytes) -> None:
            sent.append(data)

    relay = relayhost.Relay(spec, Writer())  # type: ignore[arg-type]
    try:
        relay.preconnect(spec.preconnect)
        await asyncio.wait_for(asyncio.gather(*relay._preconnects.values()), WAIT)
        assert [relay.fleet.state(n) for n in names] == [ConnState.READY] * len(names)
        made = relay.fleet._connection(names[0]).connection
        relay._handle(wire.CONNECT, 1, wire.encode({"host": names[0], "session_keys": []}))
        await asyncio.wait_for(asyncio.gather(*relay._tasks), WAIT)
        assert relay.fleet._connection(names[0]).connection is made
        kinds = [wire.HEADER.unpack(frame[:wire.HEADER.size])[:2] for frame in sent]
        assert kinds == [(wire.CONNECTED, 1)]
    finally:
        await relay.fleet.close()
