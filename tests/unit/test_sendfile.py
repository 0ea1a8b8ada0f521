"""Sending a local file: what may be sent, the script wrapper, per-host copies."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from tui.core.console.sendfile import (
    MAX_SIZE,
    put_text,
    read_local,
    remote_path,
    script_command,
)
from tui.core.errors import UserError
from tui.core.inventory.model import Host

HOST = Host("controller-1", ipaddress.IPv4Address("10.10.0.11"), "controller",
            vars={"POD_CIDR": "10.200.1.0/24"})


def test_a_script_becomes_one_quoted_heredoc_for_bash(tmp_path: Path) -> None:
    script = "set -e\necho $HOST_NAME\ncat <<EOF\n${INTERNAL_IP}\nEOF\n"
    command = script_command(script)
    assert command.startswith("bash -s <<'HARDWAY_SCRIPT'\n")
    assert command.endswith("\nHARDWAY_SCRIPT") and script.rstrip("\n") in command


def test_the_heredoc_marker_never_appears_in_the_script() -> None:
    script = "echo a\nHARDWAY_SCRIPT\nHARDWAY_SCRIPT_1\n"
    command = script_command(script)
    assert command.splitlines()[0] == "bash -s <<'HARDWAY_SCRIPT_2'"
    assert command.splitlines()[-1] == "HARDWAY_SCRIPT_2"


def test_what_cannot_be_sent_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"missing\.sh: No such file"):
        read_local(tmp_path / "missing.sh")
    with pytest.raises(UserError, match="not a regular file"):
        read_local(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):
        read_local(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SIZE + 1))
    with pytest.raises(UserError, match="more than the"):
        read_local(big)
    binary = tmp_path / "etcd"
    binary.write_bytes(b"\x7fELF\xff\xfe")
    with pytest.raises(UserError, match="not UTF-8 text"):
        read_local(binary).text()


def test_copies_keep_the_mode_and_substitute_on_request(tmp_path: Path) -> None:
    source = tmp_path / "etcd.conf"
    source.write_text("name={name} ip={ip} cidr={POD_CIDR} literal={{name}} $HOME\n")
    source.chmod(0o640)
    local = read_local(source)
    assert local.mode == 0o640
    assert put_text(local, HOST, False) == source.read_bytes()
    assert put_text(local, HOST, True) == (
        b"name=controller-1 ip=10.10.0.11 cidr=10.200.1.0/24 literal={name} $HOME\n")
    assert remote_path("/etc/etcd/{name}.conf", HOST) == "/etc/etcd/controller-1.conf"
    with pytest.raises(UserError, match="must be absolute"):
        remote_path("etc/x", HOST)
