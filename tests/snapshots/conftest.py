"""Fixtures for snapshot tests: a lab on a fixed loopback network (deterministic text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.lab.lab import LabRunner

SNAPSHOT_NETWORK = "127.0.77"


@pytest.fixture(scope="module")
def snapshot_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A 3-controller lab on 127.0.77.x so addresses in snapshots never change."""
    with LabRunner(tmp_path_factory.mktemp("snaplab"), controllers=3,
                   network=SNAPSHOT_NETWORK) as runner:
        yield runner


@pytest.fixture(autouse=True)
def _frozen_pane_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The times panes write into their scrollback (session lost / new session)."""
    monkeypatch.setattr("tui.widgets.host_pane.clock", lambda: "12:00:00")


@pytest.fixture(autouse=True)
def _no_real_home(no_real_home: Path) -> None:
    """Snapshots never read the real ~/.ssh or write the real state dir (history, log)."""
