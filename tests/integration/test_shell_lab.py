"""Persistent shells against the embedded lab: state, markers, ^C, resize, host loss, ssh."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.openssh import attach_argv, ssh_argv
from tui.core.fleet.shell import (
    CommandFinished,
    CommandStarted,
    Shell,
    ShellClosed,
    ShellEvent,
    ShellOutput,
    ShellState,
)
from tui.core.inventory.model import Inventory
from tui.lab.lab import Lab, LabRunner

WAIT = 10.0


class Recorder:
    """Collects a shell's events and lets a test wait for the next one of a kind."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.events: list[ShellEvent] = []
        self._queue: asyncio.Queue[ShellEvent] = asyncio.Queue()
        shell.subscribe(self._on_event)

    def _on_event(self, event: ShellEvent) -> None:
        self.events.append(event)
        self._queue.put_nowait(event)

    async def next(self, kind: type, timeout: float = WAIT) -> ShellEvent:
        """The next event of ``kind`` (earlier events of other kinds are skipped)."""
        async def find() -> ShellEvent:
            while True:
                event = await self._queue.get()
                if isinstance(event, kind):
                    return event
        return await asyncio.wait_for(find(), timeout)

    async def run(self, line: str, timeout: float = WAIT) -> CommandFinished:
        """Send ``line`` and return its CommandFinished."""
        assert self.shell.send_line(line) is not None
        finished = await self.next(CommandFinished, timeout)
        assert isinstance(finished, CommandFinished)
        assert finished.command == line
        return finished

    def screen(self) -> str:
        """Everything the pane was given to show."""
        return "".join(e.data for e in self.events if isinstance(e, ShellOutput))




@pytest.fixture
async def shell(fleet: Fleet) -> AsyncIterator[Shell]:
    shell = await fleet.open_shell("controller-0")
    assert shell.state == ShellState.OPEN, shell.reason
    yield shell
    await shell.close()


async def lab_call(runner: LabRunner, fn: Callable[..., Awaitable[None]], *args: str) -> None:
    await asyncio.wrap_future(runner.submit(fn, *args))


def lab_processes(lab: Lab, name: str, command: str) -> list[int]:
    """Lab processes of ``name`` whose command line is exactly ``command``."""
    found = []
    for pid in lab.pids(name):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if b" ".join(argv).decode() == command:
            found.append(pid)
    return found


async def poll(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_one_shell_keeps_variables_cwd_and_reports_statuses(
        shell: Shell, inventory: Inventory) -> None:
    rec = Recorder(shell)
    host = inventory.host("controller-0")
    assert shell.kind == "bash" and shell.integrated and not shell.busy
    assert (await rec.run("export X=1")).output == ""
    assert (await rec.run("echo $X")).output == "1\n"
    ours = await rec.run('echo "$HOST_NAME $ETCD_NAME $INTERNAL_IP"')
    assert ours.output == f"controller-0 controller-0 {host.address}\n"
    assert (await rec.run("cd /tmp")).status == 0
    assert (await rec.run("pwd")).output == "/tmp\n"
    failed = await rec.run("false")
    assert (failed.status, failed.output) == (1, "")
    done = await rec.run("true")
    assert (done.status, done.output) == (0, "")
    printed = await rec.run("echo one; echo two >&2; (exit 3)")
    assert (printed.status, printed.output) == (3, "one\ntwo\n")
    assert 0 < printed.duration < 5
    screen = rec.screen()
    assert "\x1b]133" not in screen and "__hw_id" not in screen
    assert "export HOST_NAME" not in screen
    prompt = f"{inventory.ssh.user}@controller-0:"
    assert screen.startswith(f"\x1b[?2004h{prompt}")  # the first prompt, replayed
    assert "echo $X\r\n\x1b[?2004l\r1\r\n" in screen
    starts = [e for e in rec.events if isinstance(e, CommandStarted)]
    assert [s.command for s in starts][:2] == ["export X=1", "echo $X"]
    assert not shell.busy


async def test_a_carriage_return_progress_bar_and_split_utf8_pass_through(shell: Shell) -> None:
    rec = Recorder(shell)
    bar = await rec.run("printf 'get 10%%\\rget 55%%\\rget 100%%\\n'")
    assert bar.output == "get 10%\rget 55%\rget 100%\n"
    assert "get 10%\rget 55%\rget 100%\r\n" in rec.screen()
    euros = await rec.run("printf '\\342\\202\\254%.0s' $(seq 1 30000); echo")
    assert euros.output == "\u20ac" * 30000 + "\n"
    assert "\ufffd" not in rec.screen()


async def test_a_multi_line_command_and_a_command_typed_in_the_pane(shell: Shell) -> None:
    rec = Recorder(shell)
    loop = await rec.run("for i in 1 2; do\necho n$i\ndone")
    assert (loop.status, loop.output) == (0, "n1\nn2\n")
    shell.write("echo typed\r")
    started = await rec.next(CommandStarted)
    finished = await rec.next(CommandFinished)
    assert isinstance(started, CommandStarted) and started.command == ""
    assert isinstance(finished, CommandFinished)
    assert (finished.command, finished.output, finished.status) == ("", "typed\n", 0)


async def test_a_line_sent_while_a_command_runs_is_its_input(shell: Shell) -> None:
    rec = Recorder(shell)
    question = "printf 'sure? '; read answer; echo got $answer"
    assert shell.send_line(question) is not None
    assert shell.busy
    assert await poll(lambda: rec.screen().endswith("sure? "), 5)
    assert shell.send_line("yes") is None  # an answer, not a new command
    finished = await rec.next(CommandFinished)
    assert isinstance(finished, CommandFinished)
    assert (finished.command, finished.status) == (question, 0)
    assert finished.output == "sure? yes\ngot yes\n"
    assert (await rec.run("echo next")).output == "next\n"


async def test_interrupt_kills_the_foreground_job_within_a_second(
        shell: Shell, lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    rec = Recorder(shell)
    shell.send_line("sleep 100")
    assert await poll(lambda: bool(lab_processes(lab, "controller-0", "sleep 100")), 5)
    assert shell.busy
    started = time.monotonic()
    shell.interrupt()
    finished = await rec.next(CommandFinished, timeout=1.0)
    assert isinstance(finished, CommandFinished) and finished.status == 130
    assert await poll(lambda: not lab_processes(lab, "controller-0", "sleep 100"),
                      1.0 - (time.monotonic() - started))
    assert not shell.busy
    assert (await rec.run("echo still here")).output == "still here\n"


async def test_resize_changes_the_window_size(shell: Shell) -> None:
    rec = Recorder(shell)
    assert (await rec.run("stty size")).output == "24 80\n"
    shell.resize(132, 43)
    assert (await rec.run("stty size")).output == "43 132\n"
    assert shell.size == (132, 43)


async def test_window_size_and_term_are_set_at_open(fleet: Fleet) -> None:
    shell = await fleet.open_shell("controller-1", columns=100, rows=30)
    try:
        rec = Recorder(shell)
        result = await rec.run('stty size; echo "$TERM"')
        assert result.output == "30 100\nxterm-256color\n"
    finally:
        await shell.close()


async def test_a_nested_root_shell_can_be_integrated(shell: Shell) -> None:
    rec = Recorder(shell)
    assert (await rec.run("cd /tmp")).status == 0
    shell.send_line("sudo -i")  # the lab's sudo starts a plain shell, like `sudo -i`
    assert shell.busy
    assert await shell.integrate()
    assert shell.kind == "sh" and shell.busy is False
    inner = await rec.run('echo "in $0 $ETCD_NAME"; pwd')
    assert inner.output == "in /bin/sh controller-0\n/tmp\n"
    assert (await rec.run("false")).status == 1
    assert (await rec.run("exit 4")).status is None  # the inner shell is gone
    outer = await rec.next(CommandFinished)
    assert isinstance(outer, CommandFinished)
    assert (outer.command, outer.status) == ("sudo -i", 4)
    assert shell.kind == "bash"
    assert (await rec.run("echo back")).output == "back\n"
    assert "__hw_id" not in rec.screen()


async def test_close_ends_the_remote_shell(fleet: Fleet, lab_runner: LabRunner) -> None:
    shell = await fleet.open_shell("controller-2")
    rec = Recorder(shell)
    pid = int((await rec.run("echo $$")).output)
    assert pid in lab_runner.lab.pids("controller-2")
    await shell.close()
    closed = await rec.next(ShellClosed)
    assert isinstance(closed, ShellClosed) and closed.reason == "closed"
    assert shell.state == ShellState.CLOSED
    assert await poll(lambda: pid not in lab_runner.lab.pids("controller-2"), 5)
    assert shell.send_line("echo nope") is None


async def test_the_shell_exiting_closes_it_with_the_status(fleet: Fleet) -> None:
    shell = await fleet.open_shell("controller-2")
    rec = Recorder(shell)
    shell.send_line("exit 3")
    closed = await rec.next(ShellClosed)
    assert isinstance(closed, ShellClosed)
    assert closed.reason == "the shell on controller-2 exited with status 3"
    assert shell.state == ShellState.CLOSED


async def test_reconnecting_closes_the_shell_plainly(fleet: Fleet, lab_runner: LabRunner) -> None:
    spec = next(s for s in lab_runner.lab.hosts if s.name == "controller-2")
    shell = await fleet.open_shell("controller-2")
    rec = Recorder(shell)
    await fleet.reconnect("controller-2")
    closed = await rec.next(ShellClosed)
    assert isinstance(closed, ShellClosed)
    assert closed.reason == f"the connection to {spec.listen}:{spec.port} was closed"
    assert shell.state == ShellState.CLOSED


async def test_a_stopped_host_closes_its_shell_and_a_new_one_opens_after_reconnect(
        fleet: Fleet, lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    spec = next(s for s in lab.hosts if s.name == "controller-1")
    shell = await fleet.open_shell("controller-1")
    rec = Recorder(shell)
    shell.send_line("sleep 100")
    try:
        await lab_call(lab_runner, lab.stop_host, "controller-1")
        closed = await rec.next(ShellClosed)
        assert isinstance(closed, ShellClosed)
        assert closed.reason == f"connection to {spec.listen}:{spec.port} lost"
        assert shell.state == ShellState.FAILED and shell.reason == closed.reason
        finished = [e for e in rec.events if isinstance(e, CommandFinished)]
        assert [(f.command, f.status) for f in finished] == [("sleep 100", None)]
        down = await fleet.open_shell("controller-1")
        assert down.state == ShellState.FAILED and str(spec.port) in down.reason
    finally:
        await lab_call(lab_runner, lab.start_host, "controller-1")
    await fleet.reconnect("controller-1")
    again = await fleet.open_shell("controller-1")
    try:
        assert again.state == ShellState.OPEN
        assert (await Recorder(again).run("hostname -s")).output == "controller-1\n"
    finally:
        await again.close()


async def test_a_million_lines_arrive_complete(shell: Shell) -> None:
    rec = Recorder(shell)
    result = await rec.run("seq 1 1000000", timeout=60)
    assert result.status == 0 and result.truncated
    assert result.output.startswith("1\n2\n3\n")
    screen = rec.screen()
    assert screen.count("\r\n") >= 1_000_000 and "\r\n999999\r\n1000000\r\n" in screen


async def test_commands_are_audited(shell: Shell, tmp_path: Path) -> None:
    rec = Recorder(shell)
    await rec.run("echo audited")
    log = (tmp_path / "audit.jsonl").read_text()
    assert '"kind":"shell"' in log and '"command":"echo audited"' in log


async def test_lines_typed_in_the_pane_are_audited_as_the_shell_accepted_them(
        shell: Shell, tmp_path: Path) -> None:
    """Issue 18: commands typed into a pane (or by type-through) reach the shell as keys;
    each accepted line is one audit record with its exit status, read back from the echo
    after readline's editing, history recall and wrap, secrets redacted."""
    import json

    rec = Recorder(shell)
    shell.resize(30, 24)  # the line below wraps
    await asyncio.sleep(0.2)

    async def typed(*keys: str) -> CommandFinished:
        for key in keys:
            shell.write(key)
            await asyncio.sleep(0.05)
        finished = await rec.next(CommandFinished)
        assert isinstance(finished, CommandFinished)
        return finished

    await typed("echo typo", "\x7f\x7f", "ped in the pane and wrapped twice over", "\r")
    await typed("false", "\r")
    await typed("\x1b[A", "\x1b[A", "\r")  # history: the echo again
    await typed(" export API_TOKEN=s3cr3t-value-42", "\r")  # kept out of the history
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    typed_records = [r for r in records if r.get("typed")]
    assert [(r["host"], r["command"], r["status"]) for r in typed_records[:3]] == [
        ("controller-0", "echo typed in the pane and wrapped twice over", 0),
        ("controller-0", "false", 1),
        ("controller-0", "echo typed in the pane and wrapped twice over", 0)]
    assert len(typed_records) == 4 and typed_records[3]["kind"] == "shell"
    assert "s3cr3t-value-42" not in (tmp_path / "audit.jsonl").read_text()
    assert typed_records[3]["command"].startswith("export API_TOKEN=")


def test_attach_exports_the_panes_variables(inventory: Inventory, tmp_path: Path) -> None:
    """Issue 12 #4: in the OpenSSH shell F7 opens, $ETCD_NAME and $INTERNAL_IP are set
    (by the remote command: sshd refuses SendEnv) and the shell is the login shell."""
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    host = inventory.host("controller-1")
    argv = attach_argv(host, inventory, policy=policy)
    script = 'echo "vars:$ETCD_NAME:$INTERNAL_IP:$HOST_NAME"; exit\n'
    result = subprocess.run([*argv[:-2], "-o", "BatchMode=yes", *argv[-2:]], input=script,
                            capture_output=True, text=True, timeout=30, check=False)
    assert f"vars:controller-1:{host.address}:controller-1" in result.stdout, result


def test_the_ssh_command_line_reaches_the_host(inventory: Inventory, tmp_path: Path) -> None:
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    argv = ssh_argv(inventory.host("controller-0"), inventory, command="hostname -s",
                    policy=policy)
    assert argv[0] == "ssh" and "-t" in argv and "StrictHostKeyChecking=yes" in argv
    known = next(a for a in argv if a.startswith("UserKnownHostsFile="))
    assert str(tmp_path / "record") in known
    assert str(inventory.ssh.known_hosts) in known
    result = subprocess.run([*argv[:-2], "-o", "BatchMode=yes", *argv[-2:]],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=30, check=False)
    assert (result.returncode, result.stdout) == (0, "controller-0\n"), result.stderr
