"""known_hosts lookup (with file:line), recording, and the policy's decisions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import asyncssh
import pytest

from tui.core.fleet import hostkeys
from tui.core.fleet.hostkeys import HostKeyPolicy, HostKeyPrompt

KEY_A = asyncssh.generate_private_key("ssh-ed25519")
KEY_B = asyncssh.generate_private_key("ssh-ed25519")


def public(key: asyncssh.SSHKey) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def fp(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")


def hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def policy(tmp_path: Path, **kwargs: object) -> HostKeyPolicy:
    return HostKeyPolicy(record_file=tmp_path / "record", user_files=False,
                         **kwargs)  # type: ignore[arg-type]


def test_lookup_reports_file_line_and_respects_ports(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"# comment\n\n[10.0.0.1]:2222 {public(KEY_A)}\n"
                     f"10.0.0.1 {public(KEY_B)}\n")
    pol = policy(tmp_path)
    match = pol.lookup([known], "10.0.0.1", "10.0.0.1", 2222)
    assert [(e.where, fp(e.key)) for e in match.host_keys] == [(f"{known}:3", fp(KEY_A))]
    assert match.matched_as == "[10.0.0.1]:2222"
    on_22 = pol.lookup([known], "10.0.0.1", "10.0.0.1", None)
    assert [e.line for e in on_22.host_keys] == [4]
    assert pol.lookup([known], "10.0.0.1", "10.0.0.1", 2200).host_keys == []


def test_hashed_wildcard_negated_and_marked_entries(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        f"{hashed('[ctl-0]:2222')} {public(KEY_A)}\n"
        f"ctl-*,!ctl-9 {public(KEY_B)}\n"
        f"@revoked * {public(KEY_B)}\n"
        f"@cert-authority *.example {public(KEY_A)}\n"
        "garbage line that is not a key\n")
    pol = policy(tmp_path)
    match = pol.lookup([known], "ctl-0", "192.0.2.1", 2222)
    assert [e.line for e in match.host_keys] == [1]
    assert [e.line for e in match.revoked] == [3]
    assert pol.lookup([known], "ctl-1", "", None).host_keys[0].line == 2
    assert pol.lookup([known], "ctl-9", "", None).host_keys == []
    assert [e.line for e in pol.lookup([known], "a.example", "", None).ca_keys] == [4]


def test_record_then_trusted_sees_the_new_line(tmp_path: Path) -> None:
    notes: list[str] = []
    pol = policy(tmp_path, notify=notes.append)
    files = pol.files()
    assert pol.trusted(files, "ctl-0", "127.0.10.10", 2222) == ([], [], [])
    pol.record("ctl-0", "127.0.10.10", 2222, KEY_A)
    text = (tmp_path / "record").read_text()
    assert text == f"[ctl-0]:2222,[127.0.10.10]:2222 {public(KEY_A)}\n"
    assert [fp(k) for k in pol.trusted(files, "ctl-0", "127.0.10.10", 2222)[0]] == [fp(KEY_A)]
    by_address = pol.trusted(files, "other", "127.0.10.10", 2222)[0]
    assert [fp(k) for k in by_address] == [fp(KEY_A)]
    assert notes and KEY_A.get_fingerprint("sha256") in notes[0]
    assert oct((tmp_path / "record").stat().st_mode & 0o777) == "0o600"


def test_trust_once_is_not_written(tmp_path: Path) -> None:
    pol = policy(tmp_path)
    pol.trust_once("ctl-0", 22, KEY_B)
    assert pol.trusted(pol.files(), "ctl-0", "", None)[0] == [KEY_B]
    assert not (tmp_path / "record").exists()


async def test_decisions_by_mode(tmp_path: Path) -> None:
    prompt = HostKeyPrompt("ctl-0", "127.0.10.10", 2222, "ED25519", "SHA256:x")
    assert await policy(tmp_path).decide(prompt) == "refuse"
    assert await policy(tmp_path, mode="accept-new").decide(prompt) == "record"

    async def confirm(p: HostKeyPrompt) -> str:
        assert p == prompt
        return "once"

    assert await policy(tmp_path, mode="accept-new", confirm=confirm).decide(prompt) == "once"
    with pytest.raises(ValueError, match="strict"):
        HostKeyPolicy("yolo")  # type: ignore[arg-type]


def test_messages_name_host_endpoint_fingerprints_and_fix(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.10.10]:2222 {public(KEY_A)}\n")
    match = policy(tmp_path).lookup([known], "127.0.10.10", "127.0.10.10", 2222)
    fp_a, fp_b = (k.get_fingerprint("sha256") for k in (KEY_A, KEY_B))
    assert hostkeys.changed_message("controller-0", "127.0.10.10", 2222, KEY_B, match) == (
        f"HOST KEY CHANGED for controller-0 (127.0.10.10:2222): the key on record "
        f"({known}:1) is {fp_a}, the server offered {fp_b}. If the host was reinstalled, "
        f"remove the old line with `ssh-keygen -R '[127.0.10.10]:2222' -f {known}`; "
        "otherwise someone may be intercepting.")
    assert hostkeys.unknown_message("controller-0", "127.0.10.10", 2222, KEY_B) == (
        f"unknown host key for controller-0 (127.0.10.10:2222): ED25519 key {fp_b}; verify "
        "it out of band and rerun with --accept-new to record it")


def test_default_record_file_is_in_xdg_state(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert hostkeys.default_record_file() == tmp_path / "hardway" / "known_hosts"
    assert HostKeyPolicy().files()[0] == tmp_path / "hardway" / "known_hosts"
