"""The certificates screen used like a user on the seed's broken cluster: it names both
problems, issue + push fix them, and the served certificate then verifies."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from screens.certs import CertsScreen
from tests.support import loopback
from tui.app import create_app
from tui.core.inventory.load import load_inventory
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner
from tui.widgets.plan_preview import PlanPreviewScreen


@pytest.fixture
def seed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A fresh seed-cert-bug lab for this test (the push changes it)."""
    for attempt in range(5):
        network = loopback.network(150, 1, attempt)
        try:
            runner = LabRunner(tmp_path_factory.mktemp("seedscreen"), controllers=3,
                               network=network, scenario="seed-cert-bug")
            runner.start()
        except Exception:
            continue
        try:
            yield runner
        finally:
            runner.stop()
        return
    pytest.fail("no free loopback network for the seed lab")


async def _until(pilot: Pilot[Any], condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within timeout"
        await pilot.pause(0.1)


def _findings(screen: CertsScreen) -> str:
    return "\n".join(f.message for f in (screen.survey.findings if screen.survey else []))


async def test_issue_and_push_from_the_screen_fix_the_seed(seed_lab: LabRunner,
                                                          tmp_path: Path) -> None:
    inventory = load_inventory(seed_lab.lab.inventory_path)
    app = create_app(Workbench(inventory, host_keys="ask",
                           audit_path=tmp_path / "audit.jsonl"))
    async with app.run_test(size=(170, 44)) as pilot:
        await pilot.press("ctrl+g", "k")
        await _until(pilot, lambda: isinstance(app.screen, CertsScreen)
                     and app.screen.survey is not None)
        screen = app.screen
        assert isinstance(screen, CertsScreen)
        text = _findings(screen)
        assert "lacks a required SAN: IP 127.0.0.1" in text
        assert "serves the self-signed certificate it generated itself" in text
        assert screen.matrix is not None
        assert screen.matrix.cell("kubernetes-served", "controller-0").short == "self-signed"

        await pilot.press("i")  # issue: kubernetes.pem now carries 127.0.0.1
        await pilot.pause(0.2)
        assert screen.matrix.cell("kubernetes", "local").status == "ok"

        await pilot.press("p")
        await _until(pilot, lambda: isinstance(app.screen, PlanPreviewScreen))
        await pilot.pause(0.2)
        await pilot.click("#go")
        before = screen.survey
        await _until(pilot, lambda: screen.survey is not before
                     and not app.workers._workers, timeout=120)
        assert screen.survey is not None
        assert [f.message for f in screen.survey.findings if f.severity == "error"] == []
        for host in ("controller-0", "controller-1", "controller-2"):
            assert screen.matrix.cell("kubernetes-served", host).status == "ok"

    # what kubectl would do: verify the served certificate against the cluster CA
    context = ssl.create_default_context(cafile=str(seed_lab.lab.pki_directory / "ca.pem"))
    address = str(inventory.host("controller-0").address)
    with socket.create_connection((address, 6443), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=address) as tls:
        assert tls.getpeercert() is not None
