"""Audit log: JSON lines, file permissions, XDG location and secret redaction."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path

import pytest

from tui.core.audit import AuditLog

PEM = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
-----END OPENSSH PRIVATE KEY-----"""


def read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_record_writes_one_json_line_per_call(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "state" / "hardway" / "audit.jsonl")
    log.record(host="controller-0", kind="exec", command="systemctl start etcd", status=0,
               duration=0.12345, remote_user="root")
    log.record(host="controller-1", kind="put", path="/etc/etcd/ca.pem", status=None,
               duration=1.0, error="connection lost", size=12)
    first, second = read(log.path)
    assert first["host"] == "controller-0" and first["kind"] == "exec"
    assert first["command"] == "systemctl start etcd"
    assert first["status"] == 0 and first["duration"] == 0.123
    assert first["remote_user"] == "root" and first["user"]
    assert str(first["time"]).endswith("Z")
    datetime.fromisoformat(str(first["time"]).replace("Z", "+00:00"))
    assert second["path"] == "/etc/etcd/ca.pem" and second["status"] is None
    assert second["error"] == "connection lost" and second["size"] == 12
    assert "command" not in second
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


def test_default_path_follows_xdg_state_home(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert AuditLog.default_path() == tmp_path / "hardway" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert AuditLog.default_path() == tmp_path / "home" / ".local/state/hardway/audit.jsonl"


@pytest.mark.parametrize(("text", "expected"), [
    ("nsupdate --tsig-secret c2VjcmV0 -v", "nsupdate --tsig-secret [REDACTED] -v"),
    ("tool --tsig-secret=c2VjcmV0", "tool --tsig-secret=[REDACTED]"),
    ("curl -u admin --password 'hunter 2' x", "curl -u admin --password [REDACTED] x"),
    ("env secret=abc123 password=xyz ./run", "env secret=[REDACTED] password=[REDACTED] ./run"),
    ("DB_PASSWORD=p4ss; echo", "DB_PASSWORD=[REDACTED]; echo"),
    ('key "k" { algorithm hmac-sha256; secret "c2VjcmV0"; };',
     'key "k" { algorithm hmac-sha256; secret [REDACTED]; };'),
    ("tsig_secret_file = secrets/k.secret", "tsig_secret_file = secrets/k.secret"),
    ("echo hello", "echo hello"),
])
def test_redaction_of_secret_options(tmp_path: Path, text: str, expected: str) -> None:
    assert AuditLog(tmp_path / "a.jsonl").redact(text) == expected


def test_private_keys_and_registered_secrets_never_reach_the_file(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.add_secret("Zm9vYmFyYmF6cXV4")
    log.add_secret("ab")  # too short to redact safely: ignored
    log.record(host="c0", kind="exec", status=0, duration=0.0,
               command=f"cat > key.pem <<'EOF'\n{PEM}\nEOF\necho Zm9vYmFyYmF6cXV4 ab",
               note="secret Zm9vYmFyYmF6cXV4 in a detail")
    text = log.path.read_text()
    assert "PRIVATE KEY-----\nb3Bl" not in text and "b3BlbnNzaC1rZXkt" not in text
    assert "Zm9vYmFyYmF6cXV4" not in text
    entry = read(log.path)[0]
    assert entry["command"] == ("cat > key.pem <<'EOF'\n[REDACTED PRIVATE KEY]\nEOF\n"
                                "echo [REDACTED] ab")
    assert entry["note"] == "secret [REDACTED] in a detail"


def test_unterminated_private_key_block_is_redacted_to_the_end(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    text = "printf '-----BEGIN RSA PRIVATE KEY-----\nMIIEow...' > k"
    assert log.redact(text) == "printf '[REDACTED PRIVATE KEY]"


def test_check_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    import os

    from tui.core.audit import AuditUnwritable

    os.mkfifo(tmp_path / "fifo")
    for target, reason in ((Path("/dev/full"), "not a regular file"),
                           (tmp_path, "it is a directory"),
                           (tmp_path / "fifo", "named pipe (FIFO) nobody reads")):
        with pytest.raises(AuditUnwritable) as caught:
            AuditLog(target).check()
        message = str(caught.value)
        assert message.startswith(f"the audit log {target} cannot be written (")
        assert reason in message and "nothing was run" in message and "\n" not in message
    AuditLog(Path("/dev/null")).check()
    fine = AuditLog(tmp_path / "new" / "audit.jsonl")
    fine.check()
    assert fine.path.exists() and list(fine.path.parent.iterdir()) == [fine.path]


def test_a_failed_append_is_a_user_error(tmp_path: Path) -> None:
    from tui.core.audit import AuditUnwritable

    with pytest.raises(AuditUnwritable, match="the command ran but is not recorded"):
        AuditLog(Path("/dev/full")).record(host="c0", kind="exec", status=0, duration=0.0,
                                           command="true")
