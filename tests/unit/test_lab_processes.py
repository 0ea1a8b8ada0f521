"""Finding and ending the lab's processes by their environment mark (tui.lab.processes)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.lab import processes
from tui.lab.service import SERVICE_MARKER


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Processes marked for hosts a and b (a session and a service each), and one
    process of the same shape marked for host c."""
    started: dict[str, subprocess.Popen[bytes]] = {}
    for host in ("a", "b", "c"):
        for marker in (processes.MARKER, SERVICE_MARKER):
            env = dict(os.environ, **{marker: str(tmp_path / host)})
            started[f"{host}-{marker}"] = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    yield started
    for process in started.values():
        process.kill()
        process.wait()


def test_one_pass_finds_every_mark(tmp_path: Path,
                                   sleepers: dict[str, subprocess.Popen[bytes]]) -> None:
    found = processes.pids_marked_with([f"{processes.MARKER}={tmp_path / 'a'}",
                                        f"{SERVICE_MARKER}={tmp_path / 'b'}"])
    assert found == sorted([sleepers[f"a-{processes.MARKER}"].pid,
                            sleepers[f"b-{SERVICE_MARKER}"].pid])
    assert processes.marked_pids(tmp_path / "c", SERVICE_MARKER) == \
        [sleepers[f"c-{SERVICE_MARKER}"].pid]
    # a host whose root is a prefix of another's is not matched by it
    assert processes.pids_marked_with([f"{processes.MARKER}={tmp_path}"]) == []


def test_the_lab_going_away_kills_every_host_at_once(
        tmp_path: Path, sleepers: dict[str, subprocess.Popen[bytes]]) -> None:
    ended = asyncio.run(processes.kill_everywhere(
        [tmp_path / "a", tmp_path / "b"], [processes.MARKER, SERVICE_MARKER]))
    assert len(ended) == 4
    for name, process in sleepers.items():
        if name.startswith("c-"):
            assert process.poll() is None, f"{name} belongs to another host"
        else:
            assert process.wait(timeout=5) == -9, name
    assert processes.pids_marked_with(
        [f"{m}={tmp_path / h}" for h in "ab" for m in (processes.MARKER, SERVICE_MARKER)]
    ) == []
