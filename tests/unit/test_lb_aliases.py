"""The controllers' VIP alias: commands run for real in a private network namespace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.lb.aliases import (
    AliasState,
    add_command,
    alias_files,
    apply_commands,
    check_command,
    parse_check,
    remove_command,
)

VIP = "10.50.0.10"


def in_netns(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as root of a fresh user + network namespace (nothing leaves it)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("util-linux unshare and iproute2 ip are needed (scripts/install-test-deps.sh)")
    return subprocess.run(["unshare", "--user", "--map-root-user", "--net", "sh", "-c",
                           "ip link set lo up\n" + script],
                          capture_output=True, text=True, timeout=30, check=False)


def test_add_is_idempotent_and_check_sees_it() -> None:
    done = in_netns(f"{check_command(VIP)}; echo ---; {add_command(VIP)}; {add_command(VIP)}; "
                    f"{check_command(VIP)}; echo ---; {remove_command(VIP)}; "
                    f"{remove_command(VIP)}; {check_command(VIP)}")
    assert done.returncode == 0, done.stderr
    before, present, after = done.stdout.split("---\n")
    assert parse_check(before, VIP) is AliasState.ABSENT
    assert parse_check(present, VIP) is AliasState.PRESENT
    assert present.count(f"inet {VIP}/32") == 1  # added once although run twice
    assert parse_check(after, VIP) is AliasState.ABSENT


def test_sysctl_file_loads_in_a_namespace(tmp_path: Path) -> None:
    files = alias_files(VIP)
    path = tmp_path / "vip.conf"
    path.write_text(files.sysctl)
    done = in_netns(f"sysctl -q -p {path} && cat /proc/sys/net/ipv4/conf/lo/arp_ignore "
                    f"/proc/sys/net/ipv4/conf/all/arp_announce")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2"]


def test_unit_and_commands() -> None:
    files = alias_files(VIP)
    assert files.unit_path == "/etc/systemd/system/hardway-api-vip.service"
    assert f"ExecStart=/sbin/ip addr replace {VIP}/32 dev lo" in files.unit
    assert "Type=oneshot" in files.unit and "WantedBy=multi-user.target" in files.unit
    cmds = apply_commands(VIP, sudo=True)
    assert cmds[0].startswith("sudo sysctl -q -p /etc/sysctl.d/")
    assert cmds[2] == "sudo systemctl enable hardway-api-vip.service"
    with pytest.raises(UserError, match="not an IPv4 address"):
        add_command("10.50.0.300")
