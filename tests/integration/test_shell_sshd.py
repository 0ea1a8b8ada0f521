"""Persistent shells against a real OpenSSH sshd, with dash and bash as the login shell."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import pwd
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_shell_lab import Recorder
from tests.support.sshd import Sshd, loopback_network, running_sshd, sshd_missing_reason
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.openssh import ssh_argv
from tui.core.fleet.shell import CommandFinished, Shell, ShellClosed, ShellState
from tui.core.inventory.model import Host, Hypervisor, SSHOptions

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=sshd_missing_reason() or ""),
]

NET = loopback_network()
SHELLS = {"bash": ("hardway-bash", "/bin/bash"), "zsh": ("hardway-zsh", "/usr/bin/zsh")}


def login_user(flavour: str) -> str | None:
    """A login user whose shell is bash or zsh (home from /etc/skel), or None if impossible.

    The zsh user gets an empty ~/.zshrc, as a zsh user has: without one, zsh starts its
    interactive new-user menu.
    """
    name, program = SHELLS[flavour]
    if os.geteuid() != 0 or not Path(program).exists():
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", program, name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    if entry.pw_shell != program:
        subprocess.run(["usermod", "--shell", program, name], check=True, capture_output=True)
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    if flavour == "zsh":
        zshrc = Path(entry.pw_dir) / ".zshrc"
        if not zshrc.exists():
            zshrc.touch()
            os.chown(zshrc, entry.pw_uid, entry.pw_gid)
    return name


def make_host(server: Sshd, tmp: Path, *, name: str = "controller-0",
              jump: str | None = None, trust: bool = True) -> Host:
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line() if trust else "")
    return Host(name=name, address=ipaddress.IPv4Address(server.address), role="controller",
                ssh=SSHOptions(user=server.user, identity=server.client_key_path,
                               port=server.port, jump=jump, known_hosts=known),
                vars={"POD_CIDR": "10.200.0.0/24"})


def policy(tmp: Path) -> HostKeyPolicy:
    return HostKeyPolicy(record_file=tmp / "record_known_hosts", user_files=False)


def pgrep(user: str, pattern: str) -> list[str]:
    result = subprocess.run(["pgrep", "-u", user, "-f", pattern], capture_output=True,
                            text=True, check=False)
    return result.stdout.split()


async def poll(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@pytest.fixture(scope="module", params=["dash", "bash", "zsh"])
def login(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, str]]:
    """An sshd whose test user logs in to dash (/bin/sh), bash or zsh."""
    user = None
    if request.param != "dash":
        user = login_user(request.param)
        if user is None:
            pytest.skip(f"a {request.param} login user needs root and {request.param} "
                        "installed")
    with running_sshd(tmp_path_factory.mktemp("sshd"), address=f"{NET}.40",
                      user=user) as server:
        yield server, request.param


@pytest.fixture
async def shell(login: tuple[Sshd, str], tmp_path: Path) -> AsyncIterator[Shell]:
    server, flavour = login
    if flavour == "bash":  # the last command of an earlier session, which must survive
        home = Path(pwd.getpwnam(server.user).pw_dir)
        (home / ".bash_history").write_text("echo earlier-session\n")
    async with Fleet([make_host(server, tmp_path)], host_keys=policy(tmp_path),
                     use_user_config=False) as fleet:
        shell = await fleet.open_shell("controller-0")
        assert shell.state == ShellState.OPEN, shell.reason
        yield shell
        await shell.close()


async def test_state_persists_and_statuses_are_reported(shell: Shell,
                                                        login: tuple[Sshd, str]) -> None:
    server, flavour = login
    assert shell.kind == ("sh" if flavour == "dash" else flavour)
    rec = Recorder(shell)
    assert (await rec.run("export X=1")).status == 0
    assert (await rec.run("echo $X")).output == "1\n"
    names = await rec.run('echo "$HOST_NAME $ETCD_NAME $INTERNAL_IP $POD_CIDR"')
    assert names.output == f"controller-0 controller-0 {server.address} 10.200.0.0/24\n"
    assert (await rec.run("cd /tmp")).status == 0
    assert (await rec.run("pwd")).output == "/tmp\n"
    failed = await rec.run("false")
    assert (failed.status, failed.output) == (1, "")
    passed = await rec.run("true")
    assert (passed.status, passed.output) == (0, "")
    both = await rec.run("echo out; echo err >&2; (exit 5)")
    assert (both.status, both.output) == (5, "out\nerr\n")
    loop = await rec.run("for i in 1 2; do\necho n$i\ndone")
    assert (loop.status, loop.output) == (0, "n1\nn2\n")
    assert (await rec.run("printf 'no newline'")).output == "no newline"
    screen = rec.screen()
    assert "__hw_id" not in screen and "\x1b]133" not in screen
    if flavour == "bash":  # Debian's .bashrc keeps its own title escape in PS1
        assert "\x1b]0;" in screen
        history = await rec.run("history | grep -c _[_]hw_id")
        assert history.output == "0\n"
        earlier = await rec.run("history | grep -c 'echo earlier-sessio[n]'")
        assert earlier.output == "1\n"


async def test_a_line_sent_while_a_command_runs_is_its_input(shell: Shell) -> None:
    rec = Recorder(shell)
    question = "printf 'sure? '; read answer; echo got $answer"
    assert shell.send_line(question) is not None
    assert await poll(lambda: rec.screen().endswith("sure? "), 5)
    assert shell.send_line("yes") is None
    finished = await rec.next(CommandFinished)
    assert isinstance(finished, CommandFinished) and finished.status == 0
    assert finished.output == "sure? yes\ngot yes\n"
    assert (await rec.run("echo next")).output == "next\n"


async def test_a_progress_bar_passes_through(shell: Shell) -> None:
    rec = Recorder(shell)
    bar = await rec.run("printf 'get 10%%\\rget 55%%\\rget 100%%\\n'")
    assert bar.output == "get 10%\rget 55%\rget 100%\n"
    assert "get 10%\rget 55%\rget 100%\r\n" in rec.screen()


async def test_interrupt_kills_sleep_within_a_second(shell: Shell,
                                                     login: tuple[Sshd, str]) -> None:
    server, _flavour = login
    rec = Recorder(shell)
    shell.send_line("sleep 100")
    assert await poll(lambda: bool(pgrep(server.user, "^sleep 100$")), 5)
    started = time.monotonic()
    shell.interrupt()
    finished = await rec.next(CommandFinished, timeout=1.0)
    assert isinstance(finished, CommandFinished) and finished.status == 130
    assert await poll(lambda: not pgrep(server.user, "^sleep 100$"),
                      1.0 - (time.monotonic() - started))
    assert (await rec.run("echo alive")).output == "alive\n"


async def test_resize_changes_stty_size(shell: Shell) -> None:
    rec = Recorder(shell)
    assert (await rec.run("stty size")).output == "24 80\n"
    shell.resize(120, 40)
    assert (await rec.run("stty size")).output == "40 120\n"


async def test_a_dying_server_closes_the_shell_with_a_reason(tmp_path: Path) -> None:
    with running_sshd(tmp_path / "dying", address=f"{NET}.41") as server:
        async with Fleet([make_host(server, tmp_path)], host_keys=policy(tmp_path),
                         use_user_config=False) as fleet:
            shell = await fleet.open_shell("controller-0")
            rec = Recorder(shell)
            assert (await rec.run("echo up")).output == "up\n"
            server.stop()
            closed = await rec.next(ShellClosed)
            assert isinstance(closed, ShellClosed)
            assert closed.reason == f"connection to {server.address}:{server.port} lost"
            assert shell.state == ShellState.FAILED


def test_ssh_argv_jumps_and_trusts_keys_recorded_by_hardway(tmp_path: Path,
                                                             login: tuple[Sshd, str]) -> None:
    server, _flavour = login
    jump = Hypervisor(name="hv", address=server.address,
                      ssh=SSHOptions(user=server.user, identity=server.client_key_path,
                                     port=server.port))
    host = make_host(server, tmp_path, jump="hv", trust=False)
    keys = policy(tmp_path)
    keys.record_file.write_text(server.known_hosts_line())  # accepted earlier in the app
    fleet = Fleet([host], jump_hosts={"hv": jump}, host_keys=keys, use_user_config=False)
    argv = ssh_argv(host, fleet, command="echo via $HOST")
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    assert " -W %h:%p " in proxy and f"{server.user}@{server.address}" in proxy
    logins = server.log().count("Accepted publickey")
    result = subprocess.run([*argv[:-2], "-o", "BatchMode=yes", *argv[-2:]],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("via")
    assert server.log().count("Accepted publickey") == logins + 2  # the jump, then the host

    keys.record_file.write_text("")  # strict: an unknown key is refused, never accepted
    refused = subprocess.run([*argv[:-2], "-o", "BatchMode=yes", *argv[-2:]],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             timeout=30, check=False)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


async def test_a_shell_that_never_reports_is_shown_as_it_is(tmp_path: Path) -> None:
    """Like an rc file that reads stdin: the setup line is swallowed, the shell still works."""
    config = "ForceCommand read swallowed; PS1='plain$ ' exec /bin/sh -i"
    with running_sshd(tmp_path / "plain", address=f"{NET}.42", extra_config=config) as server:
        async with Fleet([make_host(server, tmp_path)], host_keys=policy(tmp_path),
                         use_user_config=False) as fleet:
            shell = await fleet.open_shell("controller-0", ready_timeout=1.0)
            rec = Recorder(shell)
            assert shell.state == ShellState.OPEN and not shell.integrated
            assert shell.kind is None
            assert "plain$ " in rec.screen()
            started = shell.send_line("echo fallback-$((6*7))")
            assert started is not None and not shell.busy
            assert await poll(lambda: "fallback-42" in rec.screen(), 5)
            assert not [e for e in rec.events if isinstance(e, CommandFinished)]
            await shell.close()


async def test_a_shell_that_exits_at_once_fails_with_what_it_said(tmp_path: Path) -> None:
    config = "ForceCommand echo 'This account is currently not available.'; exit 1"
    with running_sshd(tmp_path / "nologin", address=f"{NET}.43", extra_config=config) as server:
        async with Fleet([make_host(server, tmp_path)], host_keys=policy(tmp_path),
                         use_user_config=False) as fleet:
            shell = await fleet.open_shell("controller-0")
    assert shell.state == ShellState.FAILED
    assert shell.reason == ("the shell on controller-0 exited with status 1 while starting: "
                            "This account is currently not available.")
