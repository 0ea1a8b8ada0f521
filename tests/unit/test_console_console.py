"""Console: broadcast with per-host substitution, set membership, interrupts, type-through,
last exits, gather with a divergent host, closed shells, transcripts and history.

The shells here are an in-test double with the Shell API of tui.core.fleet.shell: like
the real one, ``send_line`` reports CommandStarted synchronously and the test decides
when each command finishes and with what output.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.core.console.console import Console, ConsoleChanged
from tui.core.console.events import HostState, ReconnectResult, SubmitKind
from tui.core.console.history import History
from tui.core.console.record import LastExit
from tui.core.console.transcript import TranscriptStore
from tui.core.errors import UserError
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.fleet.shell import (
    CommandFinished,
    CommandStarted,
    ShellClosed,
    ShellEvent,
    ShellOutput,
)
from tui.core.inventory.model import Api, Host, Inventory, Networks, Role, SSHOptions

NOW = datetime(2024, 5, 17, 9, 30, 5, tzinfo=UTC)
CONTROLLERS = ["controller-0", "controller-1", "controller-2"]


def make_inventory() -> Inventory:
    def host(name: str, address: str, role: Role, **vars: str) -> Host:
        return Host(name, ipaddress.IPv4Address(address), role, vars=dict(vars))

    return Inventory(
        path=Path("/nonexistent/hardway.toml"), name="lab", domain="lab.internal",
        networks=Networks(ipaddress.IPv4Network("10.10.0.0/24"), None,
                          ipaddress.IPv4Network("10.100.0.0/16"),
                          ipaddress.IPv4Network("10.110.0.0/24")),
        api=Api(None, None), ssh=SSHOptions(),
        controllers=tuple(host(f"controller-{i}", f"10.10.0.1{i}", "controller")
                          for i in range(3)),
        workers=(host("worker-0", "10.10.0.20", "worker", POD_CIDR="10.100.0.0/24"),))


class FakeShell:
    """Test double of tui.core.fleet.shell.Shell (records what it was sent)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.state = "open"
        self.reason = ""
        self.sent: list[str] = []
        self.written: list[str] = []
        self.interrupts = 0
        self.resized: list[tuple[int, int]] = []
        self.closed = False
        self._listeners: list[Callable[[ShellEvent], None]] = []
        self._queue: list[str] = []

    @property
    def busy(self) -> bool:
        return bool(self._queue)

    def subscribe(self, callback: Callable[[ShellEvent], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def emit(self, event: ShellEvent) -> None:
        for callback in list(self._listeners):
            callback(event)

    def write(self, data: str) -> None:
        self.written.append(data)

    def send_line(self, line: str) -> None:
        if self.state != "open":
            return
        self.sent.append(line)
        self._queue.append(line)
        self.emit(CommandStarted(self.host, line, 0.0))

    def interrupt(self) -> None:
        self.interrupts += 1

    def resize(self, columns: int, rows: int) -> None:
        self.resized.append((columns, rows))

    async def close(self) -> None:
        self.closed = True

    def finish(self, output: str, status: int = 0, duration: float = 0.25) -> None:
        command = self._queue.pop(0)
        self.emit(ShellOutput(self.host, output))
        self.emit(CommandFinished(self.host, status, duration, output, command))

    def lose(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        while self._queue:
            self.emit(CommandFinished(self.host, None, 1.0, "", self._queue.pop(0)))
        self.emit(ShellClosed(self.host, reason))


class FakeFleet:
    """The Fleet calls the console makes; connection states are set by the test."""

    def __init__(self, down: dict[str, str] | None = None) -> None:
        self.down = dict(down or {})
        self.shells: dict[str, FakeShell] = {}
        self.listeners: list[Callable[[StateChanged], None]] = []

    def state(self, name: str) -> ConnState:
        return ConnState.FAILED if name in self.down else ConnState.READY

    def reason(self, name: str) -> str:
        return self.down.get(name, "")

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)

    async def connect(self, names: object = None) -> dict[str, ConnState]:
        return {}

    async def reconnect(self, name: str) -> ConnState:
        self.down.pop(name, None)
        return ConnState.READY

    async def open_shell(self, name: str) -> FakeShell:
        self.shells[name] = FakeShell(name)
        return self.shells[name]


def console_on(fleet: FakeFleet, tmp_path: Path) -> Console:
    """A console on ``fleet`` with its history and transcripts under ``tmp_path``."""
    return Console(make_inventory(), fleet, history=History(tmp_path / "history"),
                   transcripts=TranscriptStore("lab", tmp_path / "t", clock=lambda: NOW),
                   clock=lambda: NOW)


@pytest.fixture
def fleet() -> FakeFleet:
    return FakeFleet(down={"worker-0": "connection refused by 10.10.0.20:22"})


@pytest.fixture
async def console(fleet: FakeFleet, tmp_path: Path) -> Console:
    console = console_on(fleet, tmp_path)
    results = await console.start()
    assert list(results) == CONTROLLERS and all(r.ok for r in results.values())
    return console


async def test_broadcast_substitutes_per_host_and_records_results(
        console: Console, fleet: FakeFleet) -> None:
    changes: list[ConsoleChanged] = []
    console.subscribe(changes.append)
    record = console.broadcast("echo {name} {ip} $ETCD_NAME {POD_CIDR} {{name}}")
    assert record is not None
    assert [fleet.shells[n].sent for n in CONTROLLERS] == [
        [f"echo controller-{i} 10.10.0.1{i} $ETCD_NAME {{POD_CIDR}} {{name}}"]
        for i in range(3)]
    assert record.id == 1 and record.started_at == NOW
    assert list(record.runs) == CONTROLLERS
    assert record.skipped == {"worker-0": "failed: connection refused by 10.10.0.20:22"}
    assert record.describe() == ("sent to controller-[0-2] (3); not sent to worker-0 "
                                 "(failed: connection refused by 10.10.0.20:22)")
    assert record.pending == CONTROLLERS
    assert console.status("controller-0").running is True
    fleet.shells["controller-1"].finish("\x1b[1mcontroller-1\x1b[0m 10.10.0.11\n", 0, 0.5)
    assert record.runs["controller-1"].state == "done"
    assert record.runs["controller-1"].output == "controller-1 10.10.0.11"
    assert record.pending == ["controller-0", "controller-2"]
    assert console.last_exit("controller-1") == LastExit(0, 0.5)
    assert console.status("controller-1").last_exit == LastExit(0, 0.5)
    assert console.last_exit("controller-0") is None
    assert console.status("controller-1").running is False
    assert ConsoleChanged("broadcast", "controller-1", 1) in changes


async def test_worker_vars_are_substituted(fleet: FakeFleet, tmp_path: Path) -> None:
    fleet.down.clear()
    console = Console(make_inventory(), fleet, clock=lambda: NOW)
    await console.start()
    console.broadcast("ip route add {POD_CIDR} via {ip}")
    assert fleet.shells["worker-0"].sent == ["ip route add 10.100.0.0/24 via 10.10.0.20"]
    assert fleet.shells["controller-0"].sent == ["ip route add {POD_CIDR} via 10.10.0.10"]


async def test_toggled_off_host_receives_nothing(console: Console, fleet: FakeFleet) -> None:
    assert console.broadcast_set.toggle("controller-1") is False
    assert console.status("controller-1").in_set is False
    record = console.broadcast("touch /tmp/x")
    assert record is not None
    assert fleet.shells["controller-1"].sent == []
    assert fleet.shells["controller-0"].sent == ["touch /tmp/x"]
    assert list(record.runs) == ["controller-0", "controller-2"]
    assert "controller-1" not in record.skipped  # not selected is not "skipped"
    assert console.interrupt() == ["controller-0", "controller-2"]
    assert [fleet.shells[n].interrupts for n in CONTROLLERS] == [1, 0, 1]


async def test_submit_routes_set_expressions_and_keeps_history(
        console: Console, fleet: FakeFleet, tmp_path: Path) -> None:
    changed = console.submit("@controller-[0-1]")
    assert (changed.kind, changed.message) == (SubmitKind.SET,
                                               "broadcast to controller-[0-1] (2)")
    assert changed.worth_telling  # the bar says nothing about a set change itself
    sent = console.submit("hostname")
    assert (sent.kind, sent.message) == (SubmitKind.BROADCAST, "sent to controller-[0-1] (2)")
    assert sent.skipped == {} and not sent.worth_telling
    assert sent.broadcast is not None and list(sent.broadcast.runs) == CONTROLLERS[:2]
    assert fleet.shells["controller-2"].sent == []
    assert console.submit("@none").message == "broadcast to no hosts (0)"
    with pytest.raises(UserError) as caught:
        console.submit("uptime")
    assert str(caught.value) == (
        "Cannot send this line: no host receives broadcast input (broadcast to no hosts "
        "(0)). Type @all to select every host, or reconnect the hosts that are down.")
    with pytest.raises(UserError, match='"@bogus" is neither a group nor a host'):
        console.submit("@bogus")
    assert console.history.entries == [
        "@controller-[0-1]", "hostname", "@none", "uptime", "@bogus"]
    assert (tmp_path / "history").read_text().splitlines() == console.history.entries


async def test_type_through_sends_raw_keys_only_when_on(
        console: Console, fleet: FakeFleet) -> None:
    assert console.keystroke("q") == []
    console.set_type_through(True)
    assert console.type_through is True
    assert console.keystroke("s3cret\r") == CONTROLLERS
    assert [fleet.shells[n].written for n in CONTROLLERS] == [["s3cret\r"]] * 3
    assert console.history.entries == []
    console.set_type_through(False)
    assert console.keystroke("x") == []
    assert console.type_to("controller-1", "ls\r") is True
    assert console.type_to("worker-0", "ls\r") is False  # no shell: never connected
    assert [fleet.shells[n].written for n in CONTROLLERS] == [
        ["s3cret\r"], ["s3cret\r", "ls\r"], ["s3cret\r"]]


async def test_blank_line_sends_enter_without_a_record(
        console: Console, fleet: FakeFleet) -> None:
    assert console.broadcast("") is None
    assert fleet.shells["controller-2"].sent == [""]
    assert console.broadcasts == []


def finish_three(fleet: FakeFleet, outputs: dict[str, tuple[str, int]]) -> None:
    for name, (output, status) in outputs.items():
        fleet.shells[name].finish(output, status)


async def test_gather_groups_identical_outputs_and_diffs_the_divergent_host(
        console: Console, fleet: FakeFleet) -> None:
    record = console.broadcast("cat /etc/etcd/etcd.conf")
    assert record is not None
    same = "name=etcd\nport=2379\n"
    finish_three(fleet, {"controller-0": (same, 0), "controller-2": (same, 0),
                         "controller-1": ("name=etcd\nport=2380\n", 0)})
    report = console.gather()
    assert report.summary == (
        "2 different results: controller-[0,2] (2) | controller-1 (1); "
        "worker-0: not sent: failed: connection refused by 10.10.0.20:22")
    assert [(b.hosts, b.lines) for b in report.blocks] == [
        (("controller-0", "controller-2"), ("name=etcd", "port=2379")),
        (("controller-1",), ("name=etcd", "port=2380"))]
    assert report.diff == (
        "--- controller-[0,2] (2)\n"
        "+++ controller-1 (1)\n"
        "@@ -1,2 +1,2 @@\n"
        " name=etcd\n"
        "-port=2379\n"
        "+port=2380\n")
    assert report.text == (
        "---------------\ncontroller-[0,2] (2)\n---------------\nname=etcd\nport=2379\n"
        + report.diff
        + "worker-0: not sent: failed: connection refused by 10.10.0.20:22\n")
    assert [(r.host, r.state, r.status, r.duration) for r in report.rows] == [
        ("controller-0", "done", 0, 0.25), ("controller-1", "done", 0, 0.25),
        ("controller-2", "done", 0, 0.25), ("worker-0", "not sent", None, None)]


async def test_gather_shows_pending_hosts_as_still_running(
        console: Console, fleet: FakeFleet) -> None:
    console.broadcast_set.apply("@controllers")
    first = console.broadcast("systemctl start etcd")
    assert first is not None
    fleet.shells["controller-0"].finish("", 0)
    fleet.shells["controller-1"].finish("Job failed\n", 1)
    report = console.gather()
    assert report.summary == (
        "2 different results: controller-0 (1) | controller-1 (1) exited with exit code 1; "
        "controller-2: still running")  # worker-0 is not in @controllers: not "skipped"
    assert report.rows[2].state == "running" and report.rows[2].detail == "still running"
    assert report.rows[1].detail == "exited with exit code 1"
    second = console.broadcast("true")
    assert second is not None and second.id == 2
    assert console.gather().broadcast is second
    assert console.gather(1).broadcast is first
    with pytest.raises(UserError, match="There is no broadcast number 7 to gather"):
        console.gather(7)


async def test_gather_before_any_broadcast_is_a_user_error(console: Console) -> None:
    with pytest.raises(UserError, match="There is nothing to gather yet"):
        console.gather()


async def test_closed_shell_is_excluded_reported_and_never_blocks_others(
        console: Console, fleet: FakeFleet) -> None:
    record = console.broadcast("sleep 100")
    assert record is not None
    fleet.shells["controller-1"].lose("connection to 127.0.0.1:22 lost")
    assert record.runs["controller-1"].state == "closed"
    assert console.status("controller-1").state == "closed"
    assert console.status("controller-1").reason == "connection to 127.0.0.1:22 lost"
    assert console.broadcast_set.members == ["controller-0", "controller-2"]
    assert "controller-1" in console.broadcast_set  # still selected: rejoins on reconnect
    fleet.shells["controller-0"].finish("", 0)
    fleet.shells["controller-2"].finish("", 0)
    second = console.broadcast("hostname")
    assert second is not None
    assert list(second.runs) == ["controller-0", "controller-2"]
    assert second.skipped["controller-1"] == "shell closed: connection to 127.0.0.1:22 lost"
    assert fleet.shells["controller-1"].sent == ["sleep 100"]
    report = console.gather(1)
    assert "controller-1: shell closed (connection to 127.0.0.1:22 lost)" in report.text
    assert await console.reconnect("controller-1") == ReconnectResult(
        "controller-1", HostState.READY)
    assert console.status("controller-1").state == "ready"
    assert console.broadcast_set.members == CONTROLLERS


async def test_connection_failure_from_the_fleet_closes_the_pane(
        console: Console, fleet: FakeFleet) -> None:
    record = console.broadcast("sleep 5")
    assert record is not None
    fleet.down["controller-2"] = "keepalive timeout"
    for listener in fleet.listeners:
        listener(StateChanged("controller-2", ConnState.FAILED, "keepalive timeout"))
    assert console.status("controller-2").state == "failed"
    assert console.status("controller-2").reason == "keepalive timeout"
    assert record.runs["controller-2"].state == "closed"
    assert console.broadcast_set.members == ["controller-0", "controller-1"]


async def test_a_fleet_failure_leaves_a_shell_with_its_own_connection_open(
        console: Console, fleet: FakeFleet) -> None:
    """Shells in the relay have their own connections: the shell reports its own loss."""
    fleet.separate_shell_connections = True  # type: ignore[attr-defined]
    record = console.broadcast("sleep 5")
    assert record is not None
    for listener in fleet.listeners:
        listener(StateChanged("controller-2", ConnState.FAILED, "keepalive timeout"))
    assert console.status("controller-2").state == "ready"
    assert record.runs["controller-2"].state == "running"
    assert console.broadcast_set.members == CONTROLLERS


async def test_sending_to_a_broken_shell_skips_it(console: Console, fleet: FakeFleet) -> None:
    def broken(line: str) -> None:
        raise BrokenPipeError("channel closed")

    fleet.shells["controller-0"].send_line = broken  # type: ignore[method-assign]
    record = console.broadcast("uptime")
    assert record is not None
    assert list(record.runs) == ["controller-1", "controller-2"]
    assert record.skipped["controller-0"] == "shell closed: sending failed: channel closed"


async def test_transcripts_record_output_and_broadcast_lines_not_keystrokes(
        console: Console, fleet: FakeFleet, tmp_path: Path) -> None:
    paths = console.set_transcripts(True)
    assert sorted(paths) == CONTROLLERS
    assert paths["controller-0"] == tmp_path / "t" / "lab" / "controller-0-20240517T093005Z.log"
    assert console.status("controller-0").transcript == paths["controller-0"]
    console.broadcast("export DB_PASSWORD=hunter22; echo {name}")
    fleet.shells["controller-0"].finish("controller-0\r\n", 0)
    console.set_type_through(True)
    console.keystroke("typed-at-a-password-prompt\r")
    fleet.shells["controller-0"].emit(ShellOutput("controller-0", "Password: \r\n"))
    assert console.set_transcripts(False) == {}
    text = paths["controller-0"].read_text()
    assert text == (
        "# 2024-05-17T09:30:05Z broadcast: export DB_PASSWORD=[REDACTED]; echo controller-0\n"
        "controller-0\n"
        "Password: \n")
    assert "typed-at" not in text and "hunter22" not in text
    assert console.status("controller-0").transcript is None


async def test_transcripts_that_cannot_be_written_stay_off(
        fleet: FakeFleet, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    console = Console(make_inventory(), fleet,
                      transcripts=TranscriptStore("lab", blocker, clock=lambda: NOW))
    await console.start()
    with pytest.raises(UserError) as caught:
        console.set_transcripts(True)
    assert str(caught.value).startswith(
        f"Cannot write controller-0's console transcript in {blocker / 'lab'} (")
    assert console.transcripts_on is False and console.transcripts == {}
    assert console.broadcast("true") is not None  # the console carries on


async def test_a_busy_host_gets_the_line_as_input_not_as_a_command(
        console: Console, fleet: FakeFleet) -> None:
    console.broadcast_set.apply("@controllers")
    console.broadcast("read answer")
    fleet.shells["controller-0"].finish("", 0)
    fleet.shells["controller-1"].finish("", 0)
    second = console.broadcast("yes")
    assert second is not None
    assert fleet.shells["controller-2"].sent == ["read answer", "yes"]
    assert second.skipped == {"controller-2": "typed ahead while a command was running"}
    assert sorted(second.runs) == ["controller-0", "controller-1"]
    assert second.describe() == ("sent to controller-[0-1] (2); controller-2 was busy: "
                                 "line typed ahead, not tracked")


async def test_the_hints_set_syntax_changes_the_set_and_is_never_broadcast(
        console: Console, fleet: FakeFleet) -> None:
    """Issue 12 #2: ``-controller-1``, ``+name`` and bare host sets, as the bar's hint
    shows them, change the set; before, ``-controller-1`` ran on all three hosts."""
    console.submit("@controllers")
    removed = console.submit("-controller-1")
    assert (removed.kind, removed.message) == (SubmitKind.SET,
                                               "broadcast to controller-[0,2] (2)")
    assert console.submit("+controller-1").message == "broadcast to controller-[0-2] (3)"
    assert console.submit("controller-[0-1]").kind is SubmitKind.SET
    assert console.submit("controller-2").message == "broadcast to controller-2 (1)"
    assert console.submit("controller-0,controller-1").kind is SubmitKind.SET
    for looks_like_a_set in ("-controller-9", "+nobody", "ctl-[0-1]", "web-1,web-2"):
        with pytest.raises(UserError, match=r"unknown host|neither a group"):
            console.submit(looks_like_a_set)
    assert all(fleet.shells[name].sent == [] for name in CONTROLLERS)
    for command in ("hostname", "ls -la", "echo controller-1", "cat a,b"):
        assert console.submit(command).kind is SubmitKind.BROADCAST


async def test_no_partial_broadcast_while_a_shell_is_still_opening(
        fleet: FakeFleet, tmp_path: Path) -> None:
    """Issue 18: the header said 3/3 connected while controller-2's shell was still
    opening, and the line ran on two hosts only. The whole line waits instead."""
    console = Console(make_inventory(), fleet, history=History(tmp_path / "history"),
                      clock=lambda: NOW)
    console.broadcast_set.apply("@controllers")
    await console.open(["controller-0", "controller-1"])  # controller-2: still opening
    assert console.status("controller-2").state == "connecting"
    with pytest.raises(UserError) as refused:
        console.submit("sudo systemctl start etcd")
    assert "controller-2 is still opening its shell" in str(refused.value)
    assert "-controller-2" in str(refused.value)
    assert fleet.shells["controller-0"].sent == [] and fleet.shells["controller-1"].sent == []
    await console.open(["controller-2"])
    result = console.submit("sudo systemctl start etcd")
    assert result.broadcast is not None and list(result.broadcast.runs) == CONTROLLERS
    # a host that failed is skipped as before (it is not opening: it is down)
    fleet.shells["controller-1"].lose("connection lost")
    for name in ("controller-0", "controller-2"):
        fleet.shells[name].finish("", 0)
    second = console.broadcast("hostname")
    assert second is not None and list(second.runs) == ["controller-0", "controller-2"]
    await console.close()


class SeparateFleet(FakeFleet):
    """A relay-like fleet: shells have their own connections; the fleet's own connect
    is slow, and a host key the relay does not know yet refuses the first shell."""

    separate_shell_connections = True

    def __init__(self, down: dict[str, str] | None = None,
                 refuse_first: tuple[str, ...] = ()) -> None:
        super().__init__(down)
        self.connected = asyncio.Event()
        self.refused = set(refuse_first)
        self.attempts: dict[str, int] = {}

    def state(self, name: str) -> ConnState:
        if not self.connected.is_set():
            return ConnState.CONNECTING
        return super().state(name)

    async def connect(self, names: object = None) -> dict[str, ConnState]:
        await asyncio.sleep(0.05)  # the handshakes of the app's own connections
        self.connected.set()
        return {}

    async def open_shell(self, name: str) -> FakeShell:
        self.attempts[name] = self.attempts.get(name, 0) + 1
        if name in self.down:
            raise OSError(self.down[name])
        if name in self.refused and not self.connected.is_set():
            raise OSError(f"Host key is not trusted for host {name}")
        return await super().open_shell(name)


async def test_shells_with_their_own_connections_open_while_the_fleet_connects(
        tmp_path: Path) -> None:
    """The relay has been connecting since the app started: the console does not wait
    for the app's own connections before opening its shells."""
    fleet = SeparateFleet(down={"worker-0": "connection refused by 10.10.0.20:22"})
    console = Console(make_inventory(), fleet, history=History(tmp_path / "history"))
    opened_before_connected: list[str] = []
    console.subscribe(lambda change: opened_before_connected.extend(
        [change.host] if change.host and not fleet.connected.is_set()
        and console.shell(change.host) is not None else []))
    results = await console.start()
    assert sorted(set(opened_before_connected)) == CONTROLLERS
    assert list(results) == CONTROLLERS and all(r.ok for r in results.values())
    assert console.status("worker-0").state == "failed"
    assert console.status("worker-0").reason == "connection refused by 10.10.0.20:22"
    await console.close()


async def test_a_shell_refused_while_connecting_is_opened_once_its_host_connects(
        tmp_path: Path) -> None:
    fleet = SeparateFleet(refuse_first=("controller-1",))
    console = Console(make_inventory(), fleet, history=History(tmp_path / "history"))
    results = await console.start()
    assert fleet.attempts["controller-1"] == 2 and fleet.attempts["controller-0"] == 1
    assert results["controller-1"].ok and console.shell("controller-1") is not None
    assert "controller-1" not in console._closed  # never shown as closed
    await console.close()


async def test_shells_open_at_the_size_of_their_panes(tmp_path: Path) -> None:
    """A shell opened at 80x24 and resized when its pane is drawn gets SIGWINCH while it
    prints its first prompt (bash then draws it twice); the console opens each shell at
    its pane's size once the view has said it."""

    class SizedFleet(FakeFleet):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: dict[str, tuple[int, int] | None] = {}

        async def open_shell(self, name: str, **size: int) -> FakeShell:  # type: ignore[override]
            self.sizes[name] = (size["columns"], size["rows"]) if size else None
            return await super().open_shell(name)

    fleet = SizedFleet()
    console = console_on(fleet, tmp_path)
    console.set_size("controller-0", 63, 41)
    console.set_size("controller-1", 0, 0)  # a pane not laid out yet: no size
    await console.start()
    assert fleet.sizes["controller-0"] == (63, 41)
    assert fleet.sizes["controller-1"] is None


async def test_a_pane_laid_out_again_while_its_shell_opens_resizes_it(tmp_path: Path) -> None:
    """The screen re-tiles its panes once the console exists: a shell still opening then
    has no ``resize`` to follow, so it would keep the old size for good (seen under load
    as a prompt drawn twice in the twelve-host grid)."""
    opening = asyncio.Event()
    go_on = asyncio.Event()

    class SlowFleet(FakeFleet):
        async def open_shell(self, name: str, **size: int) -> FakeShell:  # type: ignore[override]
            if name == "controller-0":
                opening.set()
                await go_on.wait()
            return await super().open_shell(name)

    fleet = SlowFleet()
    console = console_on(fleet, tmp_path)
    console.set_size("controller-0", 80, 24)
    console.set_size("controller-1", 80, 24)
    started = asyncio.ensure_future(console.start())
    await opening.wait()
    console.set_size("controller-0", 61, 11)  # the re-tile, while the shell opens
    go_on.set()
    await started
    assert fleet.shells["controller-0"].resized == [(61, 11)]
    assert fleet.shells["controller-1"].resized == []
