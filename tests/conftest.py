"""Shared pytest fixtures.  Keep each fixture small and documented; add yours below.

Fixtures:
    lab_runner: one embedded lab (3 controllers) for the whole test session, running on
        its own thread and event loop; unconfined unless HARDWAY_TEST_LAB_ISOLATION says
        ``namespaces`` (the confined lab has tests of its own).  ``lab_runner.lab`` gives the paths
        (``inventory_path``, ``ssh_config_path``, ``known_hosts_path``,
        ``client_key_path``, ``host_root(name)``) and ``pids(name)``;
        ``lab_runner.call(lab_runner.lab.stop_host, "controller-1")`` runs lab
        coroutines.  A test that stops a host must start it again before it ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import loopback
from tui.lab.lab import LabRunner
from tui.lab.server import LabAddressInUse


def lab_network(attempt: int = 0) -> str:
    """A loopback /24 for a test lab: 127.W.(100 + (pid + attempt) % 100), W the xdist
    worker's number (:mod:`tests.support.loopback`).

    Different pytest processes (several engineers, CI) then rarely collide, and never
    with a demo lab on the default 127.0.10.
    """
    return loopback.network(100, 100, attempt)


@contextlib.contextmanager
def running_lab(directory: Path, offset: int, **kwargs: Any) -> Iterator[LabRunner]:
    """A started LabRunner on a loopback network of its own (``lab_network(offset)``, the
    next ones when another session holds it), stopped on exit.  ``kwargs`` go to
    :class:`LabRunner` (controllers, isolation, scenario, ...)."""
    for attempt in range(5):
        runner = LabRunner(directory, network=lab_network(offset + attempt), **kwargs)
        try:
            runner.start()
        except LabAddressInUse:
            continue
        try:
            yield runner
        finally:
            runner.stop()
        return
    pytest.fail(f"no free loopback network for the lab in {directory} after 5 attempts")


@pytest.fixture(scope="session")
def lab_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A running 3-controller lab shared by the session (see the module docstring)."""
    with running_lab(tmp_path_factory.mktemp("lab"), 0, controllers=3,
                     isolation=os.environ.get("HARDWAY_TEST_LAB_ISOLATION", "none")) as runner:
        yield runner


@pytest.fixture
def no_real_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and XDG state dir: the test never reads the real ~/.ssh or writes the
    real state dir (history, log, known hosts record). Returns the home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    return home
