"""Snapshots of the certificates screen: healthy, the seed's bug, push preview, rollout.

Certificates are real (random keys, dates of today, kube-apiserver's `-ca@<ts>` issuer), so
the free text goes through one display hook that these tests freeze.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.certs import CertsScreen
from tui.app import create_app
from tui.core.inventory.load import load_inventory
from tui.core.plan import PlanEvent
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets import format as display_format
from tui.widgets.plan_preview import PlanPreviewScreen

SIZE = (170, 44)
PATTERNS = [
    (re.compile(r"SHA256:[0-9a-fA-F:]{8,}"), "SHA256:3f1c…"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "3f1c9a…"),
    (re.compile(r"-ca@\d+"), "-ca@1600000000"),
    (re.compile(r"@\d{9,}"), "@1600000000"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "2027-01-01"),
    (re.compile(r"\(\d+ days left\)"), "(364 days left)"),
    (re.compile(r"\b\d+ (bytes|B)\b"), r"1234 \1"),
    (re.compile(r"/tmp/[^\s:]+"), "/tmp/…"),
]


def _stable(text: str) -> str:
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_format, "stable", _stable)
    monkeypatch.setattr(display_format, "format_duration", lambda seconds: "0.01 s")


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """The seed's broken cluster on a fixed network."""
    with LabRunner(tmp_path_factory.mktemp("seedlab"), controllers=3, network="127.0.79",
                   scenario="seed-cert-bug") as runner:
        yield runner


async def _certs(pilot: Pilot[Any]) -> CertsScreen:
    """Open the certificates screen and wait for its survey; put the cursor on
    controller-0's kubernetes.pem."""
    await pilot.press("ctrl+g", "k")
    await _until(pilot, lambda: isinstance(pilot.app.screen, CertsScreen))
    screen = pilot.app.screen
    assert isinstance(screen, CertsScreen)
    await _until(pilot, lambda: screen.survey is not None)
    await pilot.app.workers.wait_for_complete()
    table = screen.query_one("#cert-matrix")
    table.move_cursor(row=1, column=2)  # type: ignore[attr-defined]
    await pilot.pause()
    return screen


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 30.0) -> None:
    """Wait (polling) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.05)


def _app(runner: LabRunner, tmp_path: Path) -> Any:
    return create_app(Workbench(load_inventory(runner.lab.inventory_path), host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))


def test_healthy_cluster(snap_compare: Any, snapshot_lab: LabRunner, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _certs(pilot)

    assert snap_compare(_app(snapshot_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_seed_scenario(snap_compare: Any, seed_lab: LabRunner, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _certs(pilot)

    assert snap_compare(_app(seed_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_seed_scenario_at_80x24(snap_compare: Any, seed_lab: LabRunner,
                                tmp_path: Path) -> None:
    """Narrow: the host columns stay visible (glyphs under c-0, c-1, c-2) and the
    certificate's detail moves under the findings."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _certs(pilot)

    assert snap_compare(_app(seed_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


@pytest.fixture(scope="module")
def full_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """Every KTHW certificate and kubeconfig: 3 controllers and a worker on a fixed network,
    with kube-scheduler.kubeconfig pointing elsewhere on controller-[1-2] and worker-0's
    kubelet certificate gone."""
    with LabRunner(tmp_path_factory.mktemp("fulllab"), controllers=3, workers=1,
                   network="127.0.76") as runner:
        hosts = runner.lab.directory / "hosts"
        for host in ("controller-1", "controller-2"):
            path = hosts / host / "var/lib/kubernetes/kube-scheduler.kubeconfig"
            path.write_text(path.read_text().replace("https://127.0.0.1:6443",
                                                     "https://127.0.76.10:6443"))
        (hosts / "worker-0/var/lib/kubelet/worker-0.pem").unlink()
        yield runner


async def _full(pilot: Pilot[Any]) -> None:
    """The certificates screen on the full lab, the cursor on controller-1's broken
    kube-scheduler.kubeconfig."""
    screen = await _certs(pilot)
    assert screen.matrix is not None
    row = [r.key for r in screen.matrix.rows].index("kube-scheduler-kubeconfig")
    screen.query_one("#cert-matrix").move_cursor(row=row, column=3)  # type: ignore[attr-defined]
    await pilot.pause()


def test_full_set_at_200x50(snap_compare: Any, full_lab: LabRunner, tmp_path: Path) -> None:
    """Every certificate (the client ones that live only in kubeconfigs too), the
    kubeconfigs per host, etcd's :2379; findings grouped per host with the screen's keys."""
    assert snap_compare(_app(full_lab, tmp_path), terminal_size=(200, 50), run_before=_full)


def test_full_set_at_80x24(snap_compare: Any, full_lab: LabRunner, tmp_path: Path) -> None:
    """Narrow: glyph columns under short names; the matrix scrolls, nothing is cut."""
    assert snap_compare(_app(full_lab, tmp_path), terminal_size=(80, 24), run_before=_full)


def test_full_set_detail_at_80x24(snap_compare: Any, full_lab: LabRunner,
                                  tmp_path: Path) -> None:
    """Narrow, after d: the highlighted kubeconfig (file, server, problem) under the
    matrix instead of the findings."""
    async def run_before(pilot: Pilot[Any]) -> None:
        await _full(pilot)
        await pilot.press("d")
        await pilot.pause()

    assert snap_compare(_app(full_lab, tmp_path), terminal_size=(80, 24),
                        run_before=run_before)


def test_push_preview(snap_compare: Any, seed_lab: LabRunner, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _certs(pilot)
        await pilot.press("p")
        await _until(pilot, lambda: isinstance(pilot.app.screen, PlanPreviewScreen)
                     and pilot.app.screen.is_mounted)
        await pilot.pause()

    assert snap_compare(_app(seed_lab, tmp_path), terminal_size=SIZE, run_before=run_before)


def test_mid_rollout_progress(snap_compare: Any, seed_lab: LabRunner, tmp_path: Path) -> None:
    """The progress table as the rollout's events arrive (fixed events, real screen)."""
    steps = ["put files", "repair unit", "remove stale cert", "restart kube-apiserver"]
    hosts = ["controller-0", "controller-1", "controller-2"]
    events = [PlanEvent(step, "controller-0", "done", "ok") for step in steps]
    events += [PlanEvent("put files", "controller-1", "done", "3 files"),
               PlanEvent("repair unit", "controller-1", "running")]

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _certs(pilot)
        screen._start_progress(steps, hosts)
        for event in events:
            screen._on_plan_event(event)
        await pilot.pause()

    assert snap_compare(_app(seed_lab, tmp_path), terminal_size=SIZE, run_before=run_before)
