"""Lint: inventories that load but describe a broken cluster produce precise findings."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import pytest

from tui.core.inventory.lint import lint
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Finding

CONFIG = Path(__file__).resolve().parents[2] / "config"
SEED = CONFIG / "something.local.toml"
LOCAL_WARNING = ("warning", "cluster.domain")


def seed_with(tmp_path: Path, old: str = "", new: str = "", *, secret: bool = True) -> Path:
    """The seed with one change, next to a TSIG secret file (mode 600) unless told not to."""
    text = SEED.read_text()
    if old:
        assert old in text, f"test setup: {old!r} is not in the seed"
        text = text.replace(old, new, 1)
    if secret:
        (tmp_path / "secrets").mkdir()
        secret_file = tmp_path / "secrets" / "hardway-key.secret"
        secret_file.write_text("not-a-real-secret\n")
        secret_file.chmod(0o600)
    target = tmp_path / "inventory.toml"
    target.write_text(text)
    return target


def findings_for(path: Path) -> list[Finding]:
    return lint(load_inventory(path))


def test_seed_with_its_secret_has_only_the_local_warning(tmp_path: Path) -> None:
    findings = findings_for(seed_with(tmp_path))
    assert [(f.severity, f.key) for f in findings] == [LOCAL_WARNING]
    message = findings[0].message
    assert 'cluster.domain "something.local"' in message
    assert "RFC 6762" in message and "something.home.arpa" in message and "RFC 8375" in message


def test_seed_in_the_repo_reports_its_missing_secret() -> None:
    findings = findings_for(SEED)
    errors = [f for f in findings if f.severity == "error"]
    assert [f.key for f in errors] == ["dns.tsig_secret_file"]
    assert str(CONFIG / "secrets" / "hardway-key.secret") in errors[0].message
    assert "does not exist" in errors[0].message and "tsig-keygen" in errors[0].message


def test_kthw_example_has_only_the_placeholder_warning() -> None:
    findings = findings_for(CONFIG / "kthw-gcp.toml")
    assert [(f.severity, f.key) for f in findings] == [("warning", "api.vip")]
    assert "203.0.113.10 is a documentation address (RFC 5737" in findings[0].message


def test_errors_come_before_warnings(tmp_path: Path) -> None:
    findings = findings_for(seed_with(tmp_path, 'vip = "10.50.0.1"', 'vip = "10.10.0.5"'))
    assert [f.severity for f in findings] == ["error", "warning"]


# (id, old, new, severity, key, substrings of that finding's message)
LINT_CASES: list[tuple[str, str, str, str, str, list[str]]] = [
    ("vip-in-node-block", 'vip = "10.50.0.1"', 'vip = "10.10.0.5"', "error", "api.vip",
     ["api.vip 10.10.0.5 is inside networks.nodes 10.10.0.0/24", "ARP",
      "networks.control_plane_services 10.50.0.0/24"]),
    ("vip-outside-control-plane", 'vip = "10.50.0.1"', 'vip = "10.60.0.1"', "error", "api.vip",
     ["api.vip 10.60.0.1 is outside networks.control_plane_services 10.50.0.0/24",
      "such as 10.50.0.1"]),
    ("vip-in-services", 'vip = "10.50.0.1"', 'vip = "10.110.0.50"', "error", "api.vip",
     ["api.vip 10.110.0.50 is inside networks.services 10.110.0.0/24"]),
    ("vip-is-host", 'vip = "10.50.0.1"', 'vip = "10.10.0.10"', "error", "api.vip",
     ["api.vip 10.10.0.10 equals controllers[0].address (controller-0)"]),
    ("vip-network-address", 'vip = "10.50.0.1"', 'vip = "10.50.0.0"', "error", "api.vip",
     ["api.vip 10.50.0.0 is the network or broadcast address",
      "networks.control_plane_services 10.50.0.0/24"]),
    ("vip-placeholder", 'vip = "10.50.0.1"', 'vip = "198.51.100.7"', "warning", "api.vip",
     ["documentation address (RFC 5737 block 198.51.100.0/24)"]),
    ("pods-overlap-services", 'pods = "10.100.0.0/16"', 'pods = "10.110.0.0/16"', "error",
     "networks.pods", ["networks.pods 10.110.0.0/16 overlaps networks.services 10.110.0.0/24"]),
    ("control-plane-overlaps-nodes", 'control_plane_services = "10.50.0.0/24"',
     'control_plane_services = "10.10.0.0/16"', "error", "networks.nodes",
     ["networks.nodes 10.10.0.0/24 overlaps networks.control_plane_services 10.10.0.0/16"]),
    ("host-outside-nodes", 'address = "10.10.0.12"', 'address = "10.20.0.12"', "error",
     "controllers[2].address",
     ["controllers[2].address 10.20.0.12 (controller-2) is outside networks.nodes "
      "10.10.0.0/24"]),
    ("host-broadcast", 'address = "10.10.0.22"', 'address = "10.10.0.255"', "error",
     "workers[2].address", ["workers[2].address 10.10.0.255 (worker-2) is the network or "
                            "broadcast address"]),
    ("duplicate-name", 'name = "worker-2"', 'name = "worker-1"', "error", "workers[2].name",
     ['workers[2].name "worker-1" repeats workers[1].name']),
    ("name-is-hypervisor", 'name = "controller-0"', 'name = "nucklehead"', "error",
     "controllers[0].name", ['controllers[0].name "nucklehead" repeats hypervisor.name']),
    ("duplicate-address", 'address = "10.10.0.22"', 'address = "10.10.0.21"', "error",
     "workers[2].address",
     ["workers[2].address 10.10.0.21 (worker-2) repeats workers[1].address"]),
    ("name-not-label", 'name = "controller-1"', 'name = "Controller_1"', "error",
     "controllers[1].name",
     ['controllers[1].name "Controller_1" is not a DNS label (RFC 1123)', "such as controller-1"]),
    ("name-too-long", 'name = "worker-0"', f'name = "{"w" * 64}"', "error", "workers[0].name",
     [f'workers[0].name "{"w" * 64}" is not a DNS label', "at most 63"]),
    ("api-name-invalid", 'hostname = "kubernetes.something.local"',
     'hostname = "kube_api.something.local"', "error", "api.hostname",
     ['api.hostname "kube_api.something.local" is not a DNS name']),
    ("api-name-outside-zone", 'hostname = "kubernetes.something.local"',
     'hostname = "kubernetes.example.com"', "warning", "api.hostname",
     ['api.hostname "kubernetes.example.com" is not inside dns.zone "something.local"',
      "kubernetes.something.local"]),
    ("zone-local", 'domain = "something.local"', 'domain = "something.home.arpa"', "warning",
     "dns.zone", ['dns.zone "something.local" ends in .local', "RFC 6762", "RFC 8375"]),
    ("identity-missing", 'user = "root"', 'user = "root"\nidentity = "keys/id_ed25519"',
     "error", "ssh.identity", ["ssh.identity", "keys/id_ed25519\" does not exist",
                               "SSH private key"]),
    ("host-identity-missing", 'address = "10.10.0.10"',
     'address = "10.10.0.10"\nssh = { identity = "c0.key" }', "error",
     "controllers[0].ssh.identity", ["controllers[0].ssh.identity", "c0.key\" does not exist"]),
    ("identity-is-directory", 'user = "root"', 'user = "root"\nidentity = "secrets"',
     "error", "ssh.identity", ["secrets\" is a directory, not a regular file"]),
    ("ssh-config-missing", 'user = "root"', 'user = "root"\nconfig = "ssh_config"', "error",
     "ssh.config", ["ssh_config\" does not exist", "OpenSSH client config"]),
    ("known-hosts-missing", 'user = "root"', 'user = "root"\nknown_hosts = "kh"', "warning",
     "ssh.known_hosts", ["kh\" does not exist yet", "--accept-new"]),
    ("jump-unknown", 'jump = "nucklehead"', 'jump = "nuckelhead"', "error", "ssh.jump",
     ['ssh.jump "nuckelhead" names no machine in the inventory', "(nucklehead)"]),
    ("jump-self", 'address = "10.10.0.11"', 'address = "10.10.0.11"\nssh = { jump = '
     '"controller-1" }', "error", "controllers[1].ssh.jump",
     ["controllers[1].ssh.jump of controller-1 loops back (controller-1 -> controller-1)"]),
    ("services-too-small", 'services = "10.110.0.0/24"', 'services = "10.110.0.0/29"',
     "error", "networks.services",
     ["networks.services 10.110.0.0/29 is too small", "10.110.0.10", "/28 or larger"]),
    ("pod-cidr-outside", 'POD_CIDR = "10.100.1.0/24"', 'POD_CIDR = "10.200.1.0/24"', "error",
     "workers[1].vars.POD_CIDR",
     ["workers[1].vars.POD_CIDR 10.200.1.0/24 (worker-1) is outside networks.pods "
      "10.100.0.0/16"]),
    ("pod-cidr-overlap", 'POD_CIDR = "10.100.2.0/24"', 'POD_CIDR = "10.100.1.0/24"', "error",
     "workers[2].vars.POD_CIDR",
     ["workers[2].vars.POD_CIDR 10.100.1.0/24 (worker-2) overlaps workers[1].vars.POD_CIDR"]),
    ("pod-cidr-invalid", 'POD_CIDR = "10.100.0.0/24"', 'POD_CIDR = "10.100.0/24"', "error",
     "workers[0].vars.POD_CIDR",
     ['workers[0].vars.POD_CIDR "10.100.0/24" is not an IPv4 network']),
    ("even-controllers", '[[controllers]]\nname = "controller-2"\naddress = "10.10.0.12"\n', "",
     "warning", "controllers", ["controllers has 2 entries", "odd number"]),
]


@pytest.mark.parametrize(("old", "new", "severity", "key", "expected"),
                         [case[1:] for case in LINT_CASES], ids=[c[0] for c in LINT_CASES])
def test_lint_finding(tmp_path: Path, old: str, new: str, severity: str, key: str,
                      expected: list[str]) -> None:
    findings = findings_for(seed_with(tmp_path, old, new))
    matching = [f for f in findings if f.key == key and f.severity == severity]
    assert matching, f"no {severity} for {key} in {findings}"
    text = " | ".join(f.message for f in matching)
    for part in expected:
        assert part in text, f"{part!r} not in {text!r}"


def test_secret_file_is_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = seed_with(tmp_path)
    inventory = load_inventory(path)
    secret = str(tmp_path / "secrets" / "hardway-key.secret")
    opened: list[str] = []

    def guard(real):
        def wrapper(file, *args, **kwargs):
            if str(file) == secret:
                opened.append(str(file))
                raise AssertionError("the TSIG secret was opened")
            return real(file, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", guard(builtins.open))
    monkeypatch.setattr(io, "open", guard(io.open))
    monkeypatch.setattr(os, "open", guard(os.open))
    findings = lint(inventory)
    monkeypatch.undo()
    assert opened == []
    assert [(f.severity, f.key) for f in findings] == [LOCAL_WARNING]


def test_secret_readable_by_others_is_a_warning(tmp_path: Path) -> None:
    path = seed_with(tmp_path)
    (tmp_path / "secrets" / "hardway-key.secret").chmod(0o644)
    findings = findings_for(path)
    found = [f for f in findings if f.key == "dns.tsig_secret_file"]
    assert [f.severity for f in found] == ["warning"]
    assert "mode 644" in found[0].message and "chmod 600" in found[0].message


def test_missing_secret_is_an_error(tmp_path: Path) -> None:
    findings = findings_for(seed_with(tmp_path, secret=False))
    found = [f for f in findings if f.key == "dns.tsig_secret_file"]
    assert [f.severity for f in found] == ["error"]
    assert str(tmp_path / "secrets" / "hardway-key.secret") in found[0].message


def test_jump_loop_between_two_hosts(tmp_path: Path) -> None:
    path = seed_with(tmp_path, 'address = "10.10.0.10"',
                     'address = "10.10.0.10"\nssh = { jump = "controller-1" }')
    text = path.read_text().replace('address = "10.10.0.11"',
                                    'address = "10.10.0.11"\nssh = { jump = "controller-0" }')
    path.write_text(text)
    messages = [f.message for f in findings_for(path) if f.severity == "error"]
    assert any("controller-0 -> controller-1 -> controller-0" in m for m in messages), messages


def test_identity_readable_by_others_is_a_warning(tmp_path: Path) -> None:
    path = seed_with(tmp_path, 'user = "root"', 'user = "root"\nidentity = "id_test"')
    key = tmp_path / "id_test"
    key.write_text("x")
    os.chmod(key, 0o644)
    findings = [f for f in findings_for(path) if f.key == "ssh.identity"]
    assert [f.severity for f in findings] == ["warning"]
    key.chmod(0o600)
    assert [f for f in findings_for(path) if f.key == "ssh.identity"] == []
