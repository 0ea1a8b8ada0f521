"""Transcripts: location, permissions, plain text, redaction, no keystrokes."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tui.core.console import transcript as transcript_module
from tui.core.console.transcript import TranscriptStore

NOW = datetime(2024, 5, 17, 9, 30, 5, tzinfo=UTC)


def frozen() -> datetime:
    return NOW


def test_files_live_per_cluster_in_the_xdg_state_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    store = TranscriptStore("something", clock=frozen)
    first = store.open("controller-0")
    second = store.open("controller-0")
    directory = tmp_path / "state" / "hardway" / "transcripts" / "something"
    assert transcript_module.default_directory() == directory.parent
    assert first.path == directory / "controller-0-20240517T093005Z.log"
    assert second.path == directory / "controller-0-20240517T093005Z-2.log"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    first.close()
    second.close()


def test_cluster_and_host_names_cannot_escape_the_directory(tmp_path: Path) -> None:
    store = TranscriptStore("../evil/x", tmp_path, clock=frozen)
    transcript = store.open("../../etc")
    assert transcript.path.parent == tmp_path / "_evil_x"
    assert transcript.path.name == "_.._etc-20240517T093005Z.log"
    transcript.close()


def test_output_is_plain_text_and_broadcast_lines_are_marked(tmp_path: Path) -> None:
    transcript = TranscriptStore("lab", tmp_path, clock=frozen).open("controller-1")
    transcript.output("\x1b[01;32mroot@controller-1\x1b[00m:~# ")
    transcript.broadcast("echo $ETCD_NAME")
    transcript.output(b"echo $ETCD_NAME\r\ncontroller-1\r\n\r 50%\r100%\r\n")
    transcript.output("root@controller-1:~# ")
    transcript.close()
    assert transcript.path.read_text() == (
        "# 2024-05-17T09:30:05Z broadcast: echo $ETCD_NAME\n"
        "root@controller-1:~# echo $ETCD_NAME\n"
        "controller-1\n"
        "100%\n"
        "root@controller-1:~# \n")


def test_secrets_in_output_and_broadcast_lines_are_redacted(tmp_path: Path) -> None:
    store = TranscriptStore("lab", tmp_path, clock=frozen,
                            redact=lambda text: text.replace("tsigkeyvalue", "[REDACTED]"))
    transcript = store.open("controller-0")
    transcript.broadcast("etcdctl --password hunter22 member list")
    transcript.output("# cat ca-key.pem\r\n-----BEGIN RSA PRIVATE KEY-----\r\n"
                      "MIIEowIBAAKCAQEA\r\nq1w2e3r4\r\n-----END RSA PRIVATE KEY-----\r\n"
                      "secret tsigkeyvalue\r\nexport TOKEN=abc123456\r\n")
    transcript.close()
    text = transcript.path.read_text()
    assert text == (
        "# 2024-05-17T09:30:05Z broadcast: etcdctl --password [REDACTED] member list\n"
        "# cat ca-key.pem\n"
        "[REDACTED PRIVATE KEY]\n"
        "secret [REDACTED]\n"
        "export TOKEN=[REDACTED]\n")
    for leaked in ("hunter22", "MIIEow", "q1w2e3r4", "tsigkeyvalue", "abc123456"):
        assert leaked not in text


def test_closed_transcript_ignores_further_output(tmp_path: Path) -> None:
    transcript = TranscriptStore("lab", tmp_path, clock=frozen).open("controller-2")
    transcript.output("one\n")
    transcript.close()
    transcript.close()
    transcript.output("two\n")
    transcript.broadcast("three")
    assert transcript.closed
    assert transcript.path.read_text() == "one\n"
