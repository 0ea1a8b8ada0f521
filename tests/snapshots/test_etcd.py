"""Snapshots of the etcd screen on fixed data (no lab): the plan preview, a bootstrap
running, a failure with its diagnosis above the journal, the healthy member table; each
at 80x24 and 200x50.

The app runs without connecting (``connect=False``); the tests open the screen with
ctrl+g e and feed its view methods typed values, as the engine's workers do.  The
failure's diagnosis is the real :func:`diagnose_journal` of a journal captured from etcd
3.4 (tests/data/etcd-logs), the unit the real :func:`render_unit`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.etcd import EtcdScreen
from tests.support.etcd_cluster import write_inventory
from tui.app import create_app
from tui.core.etcd.diagnose import diagnose_journal
from tui.core.etcd.engine import FailureReport, MemberRow
from tui.core.etcd.unit import etcd_paths, render_unit
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.plan import PlanEvent, Preview, StepPreview, file_change
from tui.core.workbench import Workbench
from tui.widgets import step_matrix
from tui.widgets.step_matrix import StepMatrix

NETWORK = "127.0.248"
"""The network the captured journal (peer-cert-without-ip) was recorded on."""
LOGS = Path(__file__).resolve().parents[1] / "data" / "etcd-logs" / "3.4"
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 50), id="200x50")]
STEPS = ["binaries", "directories", "certificates", "unit", "start", "verify"]
HOSTS = ["controller-0", "controller-1", "controller-2"]
RELEASE = "etcd-v3.4.23-linux-amd64.tar.gz"


class FakeClock:
    """``time.monotonic`` for the matrix's running cells."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(step_matrix, "time", fake)
    return fake


def preview(inventory: Inventory) -> dict[str, list[StepPreview]]:
    """The bootstrap's preview of a half-done doc 07: controller-0 already has etcd,
    controller-1's unit names it ``controller1`` (a typo the diff shows)."""
    paths = etcd_paths(inventory)
    out: dict[str, list[StepPreview]] = {}
    for host in inventory.controllers:
        name = host.name
        items = []
        if name == "controller-0":
            items.append(StepPreview("binaries", name, Preview(),
                                     done="etcd 3.4.23 already installed"))
        else:
            files = tuple(file_change(path, f"{binary} {name}".encode() * 64, None, mode=0o755,
                                      diff_text=False,
                                      description=f"{binary} 3.4.23 from {RELEASE}")
                          for binary, path in (("etcd", paths.binary),
                                               ("etcdctl", paths.etcdctl)))
            items.append(StepPreview("binaries", name, Preview(files=files, notes=(
                "installed: none", f"{RELEASE}: SHA-256 98ac85efbb0a6168... matches "
                "SHA256SUMS"))))
        items.append(StepPreview("directories", name, Preview(commands=(
            "mkdir -p /etc/etcd /var/lib/etcd && chmod 700 /etc/etcd /var/lib/etcd",))))
        certs = tuple(
            file_change(f"/etc/etcd/{file}", f"{file}".encode() * 20, None,
                        mode=0o600 if "key" in file else 0o644, secret="key" in file,
                        diff_text=False, description=f"{file} from pki/")
            for file in ("ca.pem", "kubernetes.pem", "kubernetes-key.pem"))
        items.append(StepPreview("certificates", name, Preview(files=certs)))
        unit = render_unit(inventory, host).encode()
        old = (unit.replace(b"--name controller-1", b"--name controller1")
               if name == "controller-1" else None)
        items.append(StepPreview("unit", name, Preview(
            commands=("systemctl daemon-reload && systemctl enable etcd",),
            files=(file_change(paths.unit, unit, old,
                               description="KTHW doc 07's unit"),))))
        items.append(StepPreview("start", name, Preview(
            commands=("systemctl start --no-block etcd",),
            notes=("started on every controller at once; all must answer /health within "
                   "60 s",))))
        items.append(StepPreview("verify", name, Preview(notes=(
            "GET /health, POST /v3/cluster/member/list and /v3/maintenance/status with "
            "kubernetes.pem",))))
        out[name] = items
    return out


def done_events(steps: list[str]) -> list[PlanEvent]:
    """Every host through ``steps`` (controller-0's binaries skipped), fixed durations."""
    events = []
    for step in steps:
        for index, host in enumerate(HOSTS):
            if step == "binaries" and host == "controller-0":
                events.append(PlanEvent(step, host, "skipped", "etcd 3.4.23 already "
                                        "installed", 0.31))
                continue
            duration = {"binaries": 5.9, "start": 1.2}.get(step, 0.4) + index / 10
            events.append(PlanEvent(step, host, "done", f"{step} ok", duration))
    return events


def members() -> list[MemberRow]:
    ids = ["8e9e05c52164694d", "91bc3c398fb3c146", "fd422379fda50e48"]
    return [MemberRow(name, ids[i], True, "health true", leader=i == 1, raft_term=2,
                      raft_index=12 + i, db_size=20480 + 8192 * (i == 1), version="3.4.23",
                      rtt=0.0012 + i * 0.0003, cluster_id="cdf818194e3a8c32")
            for i, name in enumerate(HOSTS)]


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return load_inventory(write_inventory(tmp_path, NETWORK))


def _app(inventory: Inventory, tmp_path: Path) -> Any:
    workbench = Workbench(inventory, host_keys="ask", audit_path=tmp_path / "audit.jsonl")
    return create_app(workbench, connect=False)


async def _screen(pilot: Pilot[Any]) -> EtcdScreen:
    await pilot.press("ctrl+g", "e")
    deadline = time.monotonic() + 10
    while not isinstance(pilot.app.screen, EtcdScreen):
        assert time.monotonic() < deadline
        await pilot.pause(0.05)
    screen = pilot.app.screen
    assert isinstance(screen, EtcdScreen)
    return screen


@pytest.mark.parametrize("size", SIZES)
def test_plan_preview(snap_compare: Any, inventory: Inventory, tmp_path: Path,
                      size: tuple[int, int]) -> None:
    """Before applying: to do / skipped per cell; controller-1's unit diff beside."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _screen(pilot)
        screen.show_preview(STEPS, HOSTS, preview(inventory))
        screen.query_one(StepMatrix).point_at("unit", "controller-1")
        await pilot.pause()

    assert snap_compare(_app(inventory, tmp_path), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_running(snap_compare: Any, inventory: Inventory, tmp_path: Path, clock: FakeClock,
                 size: tuple[int, int]) -> None:
    """Mid-bootstrap: three steps done, certificates running for 2.4 s on two hosts."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _screen(pilot)
        screen.show_preview(STEPS, HOSTS, preview(inventory))
        for event in done_events(["binaries", "directories"]):
            screen.plan_event(event)
        screen.plan_event(PlanEvent("certificates", "controller-0", "done",
                                    "wrote ca.pem, kubernetes.pem, kubernetes-key.pem", 0.52))
        for host in HOSTS[1:]:
            screen.plan_event(PlanEvent("certificates", host, "running"))
        clock.now += 2.4
        screen.query_one(StepMatrix)._tick()
        screen._render_detail()
        await pilot.pause()

    assert snap_compare(_app(inventory, tmp_path), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_failed_with_diagnosis(snap_compare: Any, inventory: Inventory, tmp_path: Path,
                               size: tuple[int, int]) -> None:
    """The seed's mistake: kubernetes.pem lacks controller-1's IP; its start fails and the
    diagnosis stands above its journal."""
    journal = (LOGS / "peer-cert-without-ip" / "controller-1.log").read_text().splitlines()
    journal = [f"Dec 03 08:25:{10 + i // 20:02d} controller-1 etcd[812]: {line}"
               for i, line in enumerate(journal)]
    diagnoses = diagnose_journal("controller-1", journal, inventory)
    assert diagnoses  # the capture is diagnosed: the snapshot shows a real diagnosis

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _screen(pilot)
        screen.show_preview(STEPS, HOSTS, preview(inventory))
        for event in done_events(["binaries", "directories", "certificates", "unit"]):
            screen.plan_event(event)
        detail = ("controller-1 did not become healthy within 60 s: "
                  + "; ".join(d.summary for d in diagnoses))
        for host in HOSTS:
            screen.plan_event(PlanEvent("start", host, "failed" if host == "controller-1"
                                        else "done", detail if host == "controller-1"
                                        else "started", 60.2 if host == "controller-1"
                                        else 1.1))
        rows = members()
        rows[1] = MemberRow("controller-1", rows[1].member_id, False,
                            f"etcd at {NETWORK}.11:2379: nothing listens there (connection "
                            "refused).")
        rows[2] = dataclasses.replace(rows[2], leader=True, raft_term=3)
        screen.show_members(rows)  # the live table (hidden below 120 columns by a failure)
        screen.show_failure(FailureReport("start", "controller-1", detail,
                                          tuple(diagnoses), tuple(journal)))
        await pilot.pause()

    assert snap_compare(_app(inventory, tmp_path), terminal_size=size,
                        run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_healthy_members(snap_compare: Any, inventory: Inventory, tmp_path: Path,
                         size: tuple[int, int]) -> None:
    """After success: every cell done, the live member table (a second round updates
    cells of the same rows)."""
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _screen(pilot)
        screen.show_preview(STEPS, HOSTS, preview(inventory))
        for event in done_events(STEPS):
            screen.plan_event(event)
        screen.applied = True
        screen.show_members(members())
        screen.show_members(members()[:1] + [
            dataclasses.replace(row, rtt=0.0021) for row in members()[1:]])
        screen.query_one(StepMatrix).point_at("verify", "controller-0")
        await pilot.pause()

    assert snap_compare(_app(inventory, tmp_path), terminal_size=size,
                        run_before=run_before)
