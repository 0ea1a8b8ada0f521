"""The remote wrapper ends its process group when its SSH session goes away.

sshd does not signal a command without a PTY when the client vanishes: it exits and the
shell is re-parented.  Here a middle process plays sshd: it starts the wrapper in a new
session (as sshd does) and dies without a word.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.core.fleet.command import killable


def alive(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True,
                           check=False).stdout.split()
    return [pid for pid in found if int(pid) != os.getpid()]


def wait_until(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_orphaned_wrapper_kills_its_group(shell: str, tmp_path: Path) -> None:
    marker = f"sleep {700000 + os.getpid() % 1000}{len(shell)}"
    script = killable(f"{marker} & {marker}; echo never")
    middle = (
        "import subprocess, sys, time, os\n"
        f"subprocess.Popen([{shell!r}, '-c', sys.argv[1]], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "time.sleep(0.5)\n"
        "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", middle, script], check=True, timeout=10)
    assert len(alive(marker)) >= 2, "the command should be running after the parent died"
    assert wait_until(lambda: not alive(marker), 5), f"left: {alive(marker)}"


def test_watchdog_does_not_delay_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an hour between the watchdog's checks, a command that waited for its watchdog
    would hit the subprocess timeout."""
    from tui.core.fleet import command

    monkeypatch.setattr(command, "ORPHAN_CHECK_SECONDS", 3593)
    script = killable("echo done; exit 3")
    try:
        result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                                timeout=30, start_new_session=True, check=False)
        assert (result.returncode, result.stdout) == (3, "done\n")
    finally:  # an hour-long check interval would leave its sleep for an hour
        subprocess.run(["pkill", "-f", "sleep 3593"], check=False)


def test_watchdog_does_not_outlive_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """At its next check (about a second in use) the watchdog sees the command gone."""
    from tui.core.fleet import command

    monkeypatch.setattr(command, "ORPHAN_CHECK_SECONDS", 1.0937)
    result = subprocess.run(["/bin/sh", "-c", killable("echo done")], capture_output=True,
                            text=True, timeout=30, start_new_session=True, check=False)
    assert (result.returncode, result.stdout) == (0, "done\n")
    assert wait_until(lambda: not alive("sleep 1.0937"), 10), alive("sleep 1.0937")


def test_a_long_command_with_a_living_parent_is_not_killed() -> None:
    script = killable("sleep 2.5; echo finished")
    result = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True,
                            timeout=10, start_new_session=True, check=False)
    assert (result.returncode, result.stdout) == (0, "finished\n")
