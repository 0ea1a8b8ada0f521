"""The Workbench (composition root), its one listener type and the log file."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.core import logfile
from tui.core.errors import UserError
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.inventory.model import Api, Host, Inventory, Networks, SSHOptions
from tui.core.pki.usecase import CertificateWork
from tui.core.workbench import ENGINES, ActionEvent, ActionPhase, Workbench


def make_inventory() -> Inventory:
    """Three controllers on addresses nothing listens on (nothing is contacted)."""
    return Inventory(
        path=Path("/nonexistent/hardway.toml"), name="lab", domain="lab.internal",
        networks=Networks(ipaddress.IPv4Network("10.10.0.0/24"), None,
                          ipaddress.IPv4Network("10.100.0.0/16"),
                          ipaddress.IPv4Network("10.110.0.0/24")),
        api=Api(None, None), ssh=SSHOptions(),
        controllers=tuple(Host(f"controller-{i}", ipaddress.IPv4Address(f"10.10.0.1{i}"),
                               "controller") for i in range(3)))

KEY = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
       "-----END PRIVATE KEY-----")


@pytest.fixture
def log_path(tmp_path: Path) -> Iterator[Path]:
    path = logfile.configure("INFO", tmp_path / "state" / "hardway.log")
    yield path
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logfile.HardwayLogHandler)]:
        root.removeHandler(handler)
        handler.close()


def _workbench(tmp_path: Path) -> Workbench:
    return Workbench(make_inventory(), audit_path=tmp_path / "audit.jsonl",
                     user_ssh_files=False, relay=False)


async def test_a_failing_listener_reaches_the_log_file_redacted(tmp_path: Path,
                                                              log_path: Path) -> None:
    workbench = _workbench(tmp_path)
    heard: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError(f"listener bug while holding {KEY}")

    workbench.subscribe(broken)
    workbench.subscribe(heard.append)
    event = ActionEvent("push", ActionPhase.STARTED, "controller-0")
    workbench.emit(event)
    workbench.fleet._emit(StateChanged("controller-1", ConnState.CONNECTING))
    workbench.console._emit(_mode_change())  # type: ignore[arg-type]
    await workbench.close()
    text = log_path.read_text()
    assert heard[:2] == [event, StateChanged("controller-1", ConnState.CONNECTING)]
    assert text.count("RuntimeError: listener bug") == 3  # workbench, fleet, console
    assert "a workbench listener (test_a_failing_listener_reaches_the_log_file_redacted" \
        in text
    assert "Traceback (most recent call last)" in text
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in text
    assert "[REDACTED PRIVATE KEY]" in text
    assert oct(log_path.stat().st_mode & 0o777) == "0o600"


def _mode_change() -> object:
    from tui.core.console.events import ConsoleChanged

    return ConsoleChanged("mode")


def test_the_log_level_is_checked_and_the_default_path_is_xdg(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert logfile.default_path() == tmp_path / "xdg" / "hardway" / "hardway.log"
    with pytest.raises(UserError, match="--log-level 'LOUD' is not a level"):
        logfile.configure("LOUD", tmp_path / "x.log")


def test_the_log_rotates(tmp_path: Path, log_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logfile.HardwayLogHandler))
    monkeypatch.setattr(handler, "maxBytes", 2000)
    for i in range(100):
        logging.getLogger("hardway.test").warning("line %d %s", i, "x" * 50)
    assert log_path.with_name("hardway.log.1").exists()
    assert log_path.stat().st_size <= 2000


async def test_engines_open_lazily_once_and_parts_close_with_it(tmp_path: Path) -> None:
    workbench = _workbench(tmp_path)
    assert set(ENGINES) >= {"certs"}
    assert workbench._engines == {}
    certs = workbench.certs
    assert isinstance(certs, CertificateWork) and workbench.certs is certs
    assert certs.pki_dir == Path("/nonexistent/pki") and certs.fleet is workbench.fleet
    console = workbench.console
    assert console.fleet is workbench.fleet  # no relay asked for
    async with workbench:
        pass
    assert workbench.closed
    with pytest.raises(UserError, match="console of this workbench was stopped"):
        _ = workbench.console
    await workbench.close()  # idempotent


def test_host_key_modes_build_the_policy(tmp_path: Path) -> None:
    strict = Workbench(make_inventory(), audit_path=tmp_path / "a", user_ssh_files=False)
    assert strict.policy.mode == "strict"

    async def ask(_prompt: object) -> str:
        return "refuse"

    strict.ask_host_keys_with(ask)  # type: ignore[arg-type]
    assert strict.policy.confirm is None  # strict never asks
    asking = Workbench(make_inventory(), host_keys="ask", audit_path=tmp_path / "b",
                       user_ssh_files=False)
    asking.ask_host_keys_with(ask)  # type: ignore[arg-type]
    assert asking.policy.mode == "accept-new" and asking.policy.confirm is ask
    assert asking.policy.user_files is False


class _Follower:
    """An engine that takes a new inventory (as the health engine does)."""

    def __init__(self, workbench: Workbench) -> None:
        self.seen: list[str] = []

    def inventory_changed(self, inventory: Inventory) -> None:
        self.seen.append(str(inventory.api.vip))


def make_follower(workbench: Workbench) -> _Follower:
    return _Follower(workbench)


def test_reload_inventory_reaches_built_engines_and_the_views(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a VIP move rewrote the file, the engines built so far and the views get the
    new inventory (the health grid kept probing the old VIP)."""
    from tui.core.inventory.load import load_inventory
    from tui.core.workbench import InventoryChanged

    source = Path(__file__).parents[2] / "config" / "something.local.toml"
    path = tmp_path / "hardway.toml"
    path.write_text(source.read_text())
    workbench = Workbench(load_inventory(path), audit_path=tmp_path / "audit.jsonl",
                          user_ssh_files=False, relay=False)
    monkeypatch.setitem(ENGINES, "follower", f"{__name__}:make_follower")
    follower = workbench.engine("follower")
    assert isinstance(follower, _Follower)
    heard: list[object] = []
    workbench.subscribe(heard.append)
    path.write_text(source.read_text().replace('vip = "10.50.0.1"', 'vip = "10.50.0.7"'))
    inventory = workbench.reload_inventory("api.vip 10.50.0.1 -> 10.50.0.7")
    assert str(workbench.inventory.api.vip) == "10.50.0.7" and inventory is workbench.inventory
    assert follower.seen == ["10.50.0.7"]
    assert [e.what for e in heard if isinstance(e, InventoryChanged)] == [
        "api.vip 10.50.0.1 -> 10.50.0.7"]
    path.write_text("[cluster\n")  # broken: the old inventory stays in use
    with pytest.raises(UserError):
        workbench.reload_inventory()
    assert str(workbench.inventory.api.vip) == "10.50.0.7"
