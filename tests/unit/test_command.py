"""Command text per host: substitution, exports, and the kill-on-signal wrapper (local sh)."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.errors import UserError
from tui.core.fleet.command import (
    exports,
    killable,
    needs_sudo_password,
    remote_command,
    substitute,
    values_for,
)
from tui.core.inventory.model import Host

HOST = Host("controller-1", ipaddress.IPv4Address("10.10.0.11"), "controller",
            vars={"POD_CIDR": "10.100.1.0/24", "zone": "b"})
VALUES = values_for(HOST)


@pytest.mark.parametrize(("command", "expected"), [
    ("echo {name} {ip}", "echo controller-1 10.10.0.11"),
    ("echo {POD_CIDR} {zone}", "echo 10.100.1.0/24 b"),
    ("echo {HOST_NAME} {ETCD_NAME} {INTERNAL_IP}", "echo controller-1 controller-1 10.10.0.11"),
    ("echo ${name} ${POD_CIDR}", "echo ${name} ${POD_CIDR}"),
    ("cp {a,b}.pem /etc/etcd/", "cp {a,b}.pem /etc/etcd/"),
    ("awk '{print $1}' f", "awk '{print $1}' f"),
    ("awk '{print}' f", "awk '{print}' f"),
    ("echo {unknown} {pod_cidr}", "echo {unknown} {pod_cidr}"),
    ("echo {{name}} {name}", "echo {name} controller-1"),
    ("f() { echo {name}; }", "f() { echo controller-1; }"),
    ("", ""),
])
def test_substitute(command: str, expected: str) -> None:
    assert substitute(command, VALUES) == expected


@given(st.text().filter(lambda t: "{" not in t))
def test_substitute_leaves_text_without_braces_alone(text: str) -> None:
    assert substitute(text, VALUES) == text


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
def test_dollar_brace_is_never_substituted(word: str) -> None:
    assert substitute("${" + word + "}", {word: "X"}) == "${" + word + "}"


def test_exports_are_quoted_and_ordered() -> None:
    line = exports({"HOST_NAME": "c-0", "NOTE": "it's a $test; rm -rf /"})
    assert line == "export HOST_NAME=c-0 NOTE='it'\"'\"'s a $test; rm -rf /'"
    assert exports({}) == ""


def test_exports_refuse_bad_variable_names() -> None:
    with pytest.raises(UserError, match="'POD-CIDR' cannot be exported"):
        exports({"POD-CIDR": "x"})


def run_sh(script: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["/bin/sh", "-c", script], input=stdin, capture_output=True,
                          check=False, timeout=10)


def test_remote_command_exports_and_passes_status_and_stdin_through() -> None:
    script = remote_command('read line; echo "$line $HOST_NAME $POD_CIDR"; exit 7',
                            HOST.env())
    result = run_sh(script, b"hello\n")
    assert result.returncode == 7
    assert result.stdout == b"hello controller-1 10.100.1.0/24\n"
    assert result.stderr == b""


def test_remote_command_keeps_trailing_comments_and_multiline() -> None:
    result = run_sh(remote_command("echo one # a comment\necho two", {}))
    assert result.stdout == b"one\ntwo\n" and result.returncode == 0


def test_sudo_wraps_exports_inside_sudo_and_pty_skips_the_wrapper() -> None:
    text = remote_command("id -u", {"A": "1"}, sudo=True, pty=True)
    assert text == "sudo -n sh -c 'export A=1\nid -u'"
    assert "trap" in remote_command("id -u", {}, sudo=True)


def _alive(pattern: str) -> list[str]:
    result = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True,
                            check=False)
    return [pid for pid in result.stdout.split() if int(pid) != os.getpid()]


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_killable_wrapper_kills_the_whole_group_on_term(shell: str, tmp_path: Path) -> None:
    if not Path(shell).exists():
        pytest.skip(f"{shell} is not installed")
    marker = f"sleep {500000 + os.getpid() % 1000}{len(shell)}"
    script = killable(f"{marker} & {marker}; echo never")
    # like sshd: the remote shell leads its own session
    process = subprocess.Popen([shell, "-c", script], start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while len(_alive(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_alive(marker)) >= 2
    process.send_signal(signal.SIGTERM)  # what sshd does for a `signal TERM` request
    process.wait(timeout=5)
    assert process.stdout is not None and b"never" not in process.stdout.read()
    deadline = time.monotonic() + 3
    while _alive(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive(marker) == []


def test_needs_sudo_password() -> None:
    assert needs_sudo_password("sudo: a password is required\n")
    assert needs_sudo_password("sudo: a terminal is required to read the password")
    assert not needs_sudo_password("permission denied\n")
