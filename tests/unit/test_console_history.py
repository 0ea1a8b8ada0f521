"""History: readline-style navigation, dedupe, cap, the history file and secret lines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tui.core.console import history as history_module
from tui.core.console.history import History


def test_navigation_walks_back_and_returns_to_the_draft() -> None:
    history = History()
    for line in ("echo a", "echo b", "echo c"):
        history.add(line)
    assert history.previous("ech") == "echo c"
    assert history.previous() == "echo b"
    assert history.previous() == "echo a"
    assert history.previous() == "echo a"  # stays at the oldest
    assert history.next() == "echo b"
    assert history.next() == "echo c"
    assert history.next() == "ech"  # the draft typed before Up
    assert history.next() == "ech"
    history.add("ls")
    assert history.next() == ""  # navigation reset by add; no draft
    assert history.previous("x") == "ls"


def test_navigation_is_prefix_free_and_empty_history_keeps_the_line() -> None:
    history = History()
    assert history.previous("typed") == "typed"
    assert history.next() == "typed"
    history.add("uptime")
    assert history.previous("echo") == "uptime"  # not filtered by what was typed


def test_consecutive_duplicates_and_blank_lines_are_not_recorded() -> None:
    history = History()
    for line in ("a", "a", " ", "", "b", "a", "a"):
        history.add(line)
    assert history.entries == ["a", "b", "a"]


def test_cap_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "history"
    history = History(path, limit=3)
    for number in range(5):
        history.add(f"echo {number}")
    assert history.entries == ["echo 2", "echo 3", "echo 4"]
    assert path.read_text() == "echo 2\necho 3\necho 4\n"
    history.add("echo 5")
    assert path.read_text() == "echo 3\necho 4\necho 5\n"
    assert History(path, limit=2).entries == ["echo 4", "echo 5"]


def test_persisted_across_runs_in_the_xdg_state_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = history_module.default_path()
    assert path == tmp_path / "state" / "hardway" / "history"
    first = History(path)
    assert first.add("echo $ETCD_NAME") is True
    first.add("systemctl status etcd")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    second = History(path)
    assert second.entries == ["echo $ETCD_NAME", "systemctl status etcd"]
    assert second.previous() == "systemctl status etcd"


def test_an_existing_file_with_loose_permissions_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "history"
    path.write_text("old\n")
    path.chmod(0o644)
    History(path).add("new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "old\nnew\n"


@pytest.mark.parametrize("line", [
    "export ETCDCTL_PASSWORD=hunter22",
    "mysql --password hunter22",
    "curl -H 'Authorization: Bearer abcdef0123456789' https://127.0.0.1:6443/api",
    "kubectl config set-credentials admin --token=abcdef0123",
    "curl https://admin:hunter22@127.0.0.1:6443/",
    "nsupdate -y hmac-sha256:key:secret=c2VjcmV0c2VjcmV0",
    "echo '-----BEGIN RSA PRIVATE KEY-----MIIE' > k",
])
def test_secret_lines_stay_in_memory_and_never_reach_the_file(tmp_path: Path, line: str) -> None:
    path = tmp_path / "history"
    history = History(path)
    history.add("echo before")
    assert history.add(line) is False
    history.add("echo after")
    assert history.entries == ["echo before", line, "echo after"]
    assert path.read_text() == "echo before\necho after\n"
    assert History(path).entries == ["echo before", "echo after"]


def test_registered_secrets_are_recognised_through_the_redactor(tmp_path: Path) -> None:
    path = tmp_path / "history"
    history = History(path, redact=lambda text: text.replace("s3cr3tvalue", "[REDACTED]"))
    assert history.add("echo s3cr3tvalue | base64") is False
    assert not path.exists()


def test_unwritable_file_is_reported_once_and_history_still_works(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    history = History(blocker / "history")
    assert history.add("echo one") is False
    assert history.problem is not None
    assert history.problem.startswith(
        f"The console history cannot be written to {blocker / 'history'} (")
    history.add("echo two")
    assert history.entries == ["echo one", "echo two"]
