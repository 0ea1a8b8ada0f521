"""The console model on real shells: three lab controllers over asyncssh PTY shells."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tui.core.console.console import Console
from tui.core.console.history import History
from tui.core.console.record import Broadcast
from tui.core.console.transcript import TranscriptStore
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.load import load_inventory
from tui.lab.lab import LabRunner

NAMES = ["controller-0", "controller-1", "controller-2"]


@pytest.fixture
async def console(lab_runner: LabRunner, tmp_path: Path) -> AsyncIterator[Console]:
    inventory = load_inventory(lab_runner.lab.inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False) as fleet:
        console = Console(inventory, fleet, history=History(tmp_path / "history"),
                          transcripts=TranscriptStore(inventory.name, tmp_path / "transcripts"))
        try:
            results = await console.start()
            assert {n: r.state for n, r in results.items()} == dict.fromkeys(NAMES, "ready")
            yield console
        finally:
            await console.close()


async def finished(record: Broadcast, seconds: float = 10.0) -> float:
    """Wait until every host finished ``record``; returns the seconds it took."""
    start = time.monotonic()
    while not record.done:
        if time.monotonic() - start > seconds:
            pytest.fail(f"broadcast {record.line!r} still pending on {record.pending}")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_broadcast_runs_with_each_hosts_values_and_skips_a_toggled_off_host(
        console: Console, lab_runner: LabRunner) -> None:
    lab = lab_runner.lab
    marker = f"console-test-{os.getpid()}-{time.monotonic_ns()}"
    paths = console.set_transcripts(True)
    assert sorted(paths) == NAMES
    assert console.broadcast_set.toggle("controller-1") is False
    record = console.broadcast(f"echo $ETCD_NAME {{ip}} && touch {marker}-{{name}}")
    assert record is not None
    await finished(record)
    addresses = {h.name: str(h.address) for h in console.inventory.hosts}
    assert list(record.runs) == ["controller-0", "controller-2"]
    for name in ("controller-0", "controller-2"):
        run = record.runs[name]
        assert (run.state, run.status, run.output) == ("done", 0, f"{name} {addresses[name]}")
        assert (lab.host_root(name) / "root" / f"{marker}-{name}").is_file()
    assert list((lab.host_root("controller-1") / "root").glob(f"{marker}*")) == []
    assert console.last_exit("controller-1") is None

    assert console.set_transcripts(False) == {}
    text = paths["controller-0"].read_text()
    assert f"broadcast: echo $ETCD_NAME {addresses['controller-0']} && touch" in text
    assert "\x1b" not in text


async def test_export_persists_and_gather_shows_the_divergent_host(console: Console) -> None:
    first = console.broadcast("export HW_TEST=same")
    assert first is not None
    await finished(first)
    second = console.broadcast('[ "$ETCD_NAME" = controller-1 ] && echo other || echo $HW_TEST')
    assert second is not None
    await finished(second)
    report = console.gather()
    assert [(b.hosts, b.lines) for b in report.blocks] == [
        (("controller-0", "controller-2"), ("same",)), (("controller-1",), ("other",))]
    assert "-same\n+other\n" in report.diff
    assert report.summary == "2 different results: controller-[0,2] (2) | controller-1 (1)"


def running_commands(lab_runner: LabRunner, name: str) -> list[str]:
    """Command lines of the live processes the lab started for host ``name``."""
    lines = []
    for pid in lab_runner.lab.pids(name):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue  # exited meanwhile
    return lines


async def wait_for_command(lab_runner: LabRunner, text: str, seconds: float = 5.0) -> None:
    """Wait until every lab controller runs a process whose command line contains ``text``."""
    deadline = time.monotonic() + seconds
    while not all(any(text in line for line in running_commands(lab_runner, name))
                  for name in NAMES):
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} did not start on every controller")
        await asyncio.sleep(0.02)


async def test_interrupt_stops_a_long_command_everywhere_within_a_second(
        console: Console, lab_runner: LabRunner) -> None:
    record = console.broadcast("sleep 100")
    assert record is not None
    await wait_for_command(lab_runner, "sleep 100")
    assert record.pending == NAMES
    assert console.interrupt() == NAMES
    assert await finished(record, seconds=5.0) < 1.0
    assert all(run.status not in (0, None) for run in record.runs.values())
    for name in NAMES:
        assert not any("sleep 100" in line for line in running_commands(lab_runner, name))
    after = console.broadcast("echo alive")
    assert after is not None
    await finished(after)
    assert {run.output for run in after.runs.values()} == {"alive"}


async def test_transcript_keeps_a_wrapped_command_as_accepted(console: Console) -> None:
    """A command longer than the 80-column pane is echoed (and, by readline, redrawn) in
    pieces; the transcript stores the line as accepted, redacted whole, never the pieces."""
    secret = "Zq31x7Hb4Kp9Wd3Lm8TrQ" * 3
    paths = console.set_transcripts(True)
    record = console.broadcast(f": {'x' * 50} curl -u admin:{secret} https://10.0.0.1:6443/v; "
                               "echo done-marker")
    assert record is not None
    await finished(record)
    console.set_transcripts(False)
    for name in NAMES:
        text = paths[name].read_text()
        pieces = [secret[i:i + 8] for i in range(0, len(secret) - 8)]
        assert not [p for p in pieces if p in text], text
        assert "curl -u admin:[REDACTED] https://10.0.0.1:6443/v; echo done-marker" in text
        assert "\ndone-marker\n" in text
