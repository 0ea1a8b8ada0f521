"""Loading inventories: the two examples load with exact facts; bad files explain themselves."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.inventory.load import InventoryError, load_inventory
from tui.core.inventory.model import Paths, SSHOptions, Versions

CONFIG = Path(__file__).resolve().parents[2] / "config"
SEED = CONFIG / "something.local.toml"
KTHW = CONFIG / "kthw-gcp.toml"

SEED_SANS = [
    ("ip", "10.110.0.1"), ("ip", "10.10.0.10"), ("ip", "10.10.0.11"), ("ip", "10.10.0.12"),
    ("ip", "10.50.0.1"), ("ip", "127.0.0.1"), ("dns", "localhost"), ("dns", "kubernetes"),
    ("dns", "kubernetes.default"), ("dns", "kubernetes.default.svc"),
    ("dns", "kubernetes.default.svc.cluster"), ("dns", "kubernetes.svc.cluster.local"),
    ("dns", "kubernetes.default.svc.cluster.local"), ("dns", "kubernetes.something.local"),
]


def seed_with(tmp_path: Path, old: str, new: str) -> Path:
    """Write the seed inventory with one change (``old`` must occur) into tmp_path."""
    text = SEED.read_text()
    assert old in text, f"test setup: {old!r} is not in the seed"
    target = tmp_path / "bad.toml"
    target.write_text(text.replace(old, new, 1))
    return target


def test_seed_loads_with_exact_derived_facts() -> None:
    inv = load_inventory(SEED)
    assert inv.name == "something"
    assert inv.domain == "something.local"
    assert inv.etcd_initial_cluster == (
        "controller-0=https://10.10.0.10:2380,controller-1=https://10.10.0.11:2380,"
        "controller-2=https://10.10.0.12:2380")
    assert inv.etcd_servers == (
        "https://10.10.0.10:2379,https://10.10.0.11:2379,https://10.10.0.12:2379")
    assert str(inv.first_service_ip) == "10.110.0.1"
    assert str(inv.cluster_dns_ip) == "10.110.0.10"
    assert [(s.kind, s.value) for s in inv.api_server_sans] == SEED_SANS
    assert inv.networks.control_plane_services == ipaddress.IPv4Network("10.50.0.0/24")
    assert str(inv.api.vip) == "10.50.0.1" and inv.api.port == 6443
    assert [h.name for h in inv.workers] == ["worker-0", "worker-1", "worker-2"]
    assert inv.workers[1].vars == {"POD_CIDR": "10.100.1.0/24"}
    assert inv.workers[1].env()["INTERNAL_IP"] == "10.10.0.21"
    assert inv.controllers[0].ssh == SSHOptions(user="root", port=22, jump="nucklehead")
    assert inv.controllers[0].dial == "10.10.0.10"
    assert inv.hypervisor is not None and inv.hypervisor.ssh.jump is None
    assert inv.hypervisor.os == "freebsd" and inv.hypervisor.firewall == "ipfw"
    assert inv.dns is not None
    assert inv.dns.tsig_secret_file == CONFIG / "secrets" / "hardway-key.secret"
    assert inv.paths == Paths() and inv.versions == Versions()
    assert inv.settings == {"console.scrollback": 10000}


def test_kthw_gcp_loads_with_exact_derived_facts() -> None:
    inv = load_inventory(KTHW)
    assert inv.etcd_initial_cluster == (
        "controller-0=https://10.240.0.10:2380,controller-1=https://10.240.0.11:2380,"
        "controller-2=https://10.240.0.12:2380")
    assert str(inv.first_service_ip) == "10.32.0.1"
    assert str(inv.cluster_dns_ip) == "10.32.0.10"
    assert [str(h.address) for h in inv.workers] == ["10.240.0.20", "10.240.0.21", "10.240.0.22"]
    assert inv.networks.pods == ipaddress.IPv4Network("10.200.0.0/16")
    assert inv.networks.control_plane_services is None
    assert [s.value for s in inv.api_server_sans if s.kind == "ip"] == [
        "10.32.0.1", "10.240.0.10", "10.240.0.11", "10.240.0.12", "203.0.113.10", "127.0.0.1"]
    assert inv.hypervisor is None and inv.dns is None


def test_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "inv.toml"
    path.write_text("""
[cluster]
name = "lab"
domain = "lab.home.arpa"
[networks]
nodes = "127.0.10.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"
[ssh]
user = "admin"
identity = "keys/id_ed25519"
known_hosts = "~/kh"
[paths]
etcd_data = "/srv/etcd/"
[versions]
etcd = "v3.5.1"
[console]
scrollback = 500
[[controllers]]
name = "controller-0"
address = "127.0.10.10"
root = "/tmp/lab/controller-0"
ssh = { port = 2222, host = "localhost", jump = "", config = "/etc/ssh/ssh_config" }
""")
    inv = load_inventory(path)
    host = inv.controllers[0]
    assert inv.api.vip is None and inv.api.port == 6443
    assert host.ssh.user == "admin" and host.ssh.port == 2222 and host.ssh.jump is None
    assert host.ssh.identity == tmp_path / "keys" / "id_ed25519"
    assert host.ssh.known_hosts == Path.home() / "kh"
    assert host.ssh.config == Path("/etc/ssh/ssh_config")
    assert host.dial == "localhost" and host.ssh_host == "localhost"
    assert host.path("/etc/etcd/ca.pem") == "/tmp/lab/controller-0/etc/etcd/ca.pem"
    assert inv.paths.etcd_data == "/srv/etcd" and inv.paths.etcd_config == "/etc/etcd"
    assert inv.versions.etcd == "3.5.1" and inv.versions.kubernetes == "1.18.6"
    assert inv.settings == {"console.scrollback": 500}
    assert inv.workers == ()


TOP = "# The seed cluster"  # the seed's first line: insert top-level keys before it

# (change to the seed, substrings the one-paragraph message must contain)
BAD_SEEDS: list[tuple[str, str, str, list[str]]] = [
    ("bad-address", 'address = "10.10.0.11"', 'address = "10.10.0.300"',
     ["line 44", 'controllers[1].address = "10.10.0.300" is not an IPv4 address',
      "dotted quad"]),
    ("ipv6-address", 'address = "10.10.0.11"', 'address = "fd00::11"',
     ['controllers[1].address = "fd00::11"', "IPv6", "IPv4 only"]),
    ("address-typo", 'address = "10.10.0.11"', 'adress = "10.10.0.11"',
     ["controllers[1].address is missing", "controllers[1].adress is set",
      "did you mean address?"]),
    ("port-as-string", "port = 6443", 'port = "6443"',
     ['api.port = "6443" is a string', "integer from 1 to 65535", "without quotes"]),
    ("port-zero", "port = 22", "port = 0", ["ssh.port = 0 is out of range", "1 to 65535"]),
    ("port-too-big", "port = 22", "port = 70000", ["ssh.port = 70000 is out of range"]),
    ("toml-syntax", "[cluster]", "[cluster", ["line 4, column", "not valid TOML", "[cluster"]),
    ("toml-duplicate-key", 'name = "something"', 'name = "something"\nname = "other"',
     ["line 6", "not valid TOML", "cannot overwrite a value"]),
    ("host-bits", 'nodes = "10.10.0.0/24"', 'nodes = "10.10.0.1/24"',
     ['networks.nodes = "10.10.0.1/24" has host bits set', "network address 10.10.0.0/24"]),
    ("no-prefix", 'pods = "10.100.0.0/16"', 'pods = "10.100.0.0"',
     ['networks.pods = "10.100.0.0" has no prefix length', "CIDR"]),
    ("vip-is-network", 'vip = "10.50.0.1"', 'vip = "10.50.0.0/24"',
     ['api.vip = "10.50.0.0/24" is a network, not an address']),
    ("inline-secret", 'tsig_name = "hardway-key"',
     'tsig_name = "hardway-key"\ntsig_secret = "c2VjcmV0LXZhbHVl"',
     ["dns.tsig_secret is not allowed", "dns.tsig_secret_file"]),
    ("dns-mode-typo", 'mode = "rfc2136"', 'mode = "rfc2163"',
     ['dns.mode = "rfc2163" is not supported', 'did you mean "rfc2136"?', '"zonefile"']),
    ("zonefile-without-file", 'mode = "rfc2136"', 'mode = "zonefile"',
     ["dns.zone_file is missing", 'dns.mode = "zonefile"']),
    ("tsig-name-without-secret", 'tsig_secret_file = "secrets/hardway-key.secret"', "",
     ["dns.tsig_secret_file is missing", 'dns.tsig_name = "hardway-key"']),
    ("tsig-algorithm", 'tsig_algorithm = "hmac-sha256"', 'tsig_algorithm = "sha256"',
     ['dns.tsig_algorithm = "sha256" is not supported', '"hmac-sha256"']),
    ("var-not-string", 'vars = { POD_CIDR = "10.100.1.0/24" }', "vars = { POD_CIDR = 24 }",
     ["workers[1].vars.POD_CIDR = 24 is an integer", "expected a string"]),
    ("var-bad-name", 'vars = { POD_CIDR = "10.100.0.0/24" }',
     'vars = { POD-CIDR = "10.100.0.0/24" }',
     ["workers[0].vars.POD-CIDR", "shell variable name"]),
    ("version", 'etcd = "3.4.10"', 'etcd = "3.4"',
     ['versions.etcd = "3.4" is not a release version', "MAJOR.MINOR.PATCH", '"3.4.10"']),
    ("unknown-key", 'firewall = "ipfw"', 'firewall = "ipfw"\nfirewal = "pf"',
     ["hypervisor.firewal is not a known key", "did you mean firewall?", "os, firewall"]),
    ("unknown-top-level", TOP, "workerz = 1\n" + TOP,
     ["workerz is not a known key", "did you mean workers?"]),
    ("hypervisor-os", 'os = "freebsd"', 'os = "openbsd"',
     ['hypervisor.os = "openbsd" is not supported', '"freebsd", "linux"']),
    ("hypervisor-address", 'address = "192.168.1.2"', 'address = "192.168.1.300"',
     ['hypervisor.address = "192.168.1.300" is not an IPv4 address']),
    ("hypervisor-no-name", 'name = "nucklehead"', "",
     ["hypervisor.name is missing", '"nucklehead"']),
    ("cluster-name-missing", 'name = "something"', "",
     ["cluster.name is missing", "expected a string"]),
    ("domain-not-string", 'domain = "something.local"', "domain = 5",
     ["cluster.domain = 5 is an integer", "expected a string"]),
    ("empty-name", 'name = "controller-1"', 'name = ""',
     ['controllers[1].name = "" is empty']),
    ("user-boolean", 'user = "root"', "user = true",
     ["ssh.user = true is a boolean", "expected a string"]),
    ("relative-path", TOP, '[paths]\netcd_data = "var/lib/etcd"\n' + TOP,
     ['paths.etcd_data = "var/lib/etcd" is not an absolute path', '"/var/lib/etcd"']),
    ("relative-root", 'address = "10.10.0.10"', 'address = "10.10.0.10"\nroot = "jails/c0"',
     ['controllers[0].root = "jails/c0" is not an absolute path']),
    ("scrollback-zero", TOP, "[console]\nscrollback = 0\n" + TOP,
     ["console.scrollback = 0 is out of range", "1 to 10000000"]),
    ("scrollback-string", TOP, '[console]\nscrollback = "many"\n' + TOP,
     ['console.scrollback = "many" is a string', "integer"]),
    ("host-ssh-unknown", 'address = "10.10.0.12"',
     'address = "10.10.0.12"\nssh = { prot = 2222 }',
     ["controllers[2].ssh.prot is not a known key", "did you mean port?"]),
    ("ssh-host-top-level", 'user = "root"', 'user = "root"\nhost = "x"',
     ["ssh.host is not allowed", "controllers[N].ssh.host"]),
    ("console-not-table", TOP, "console = 1\n" + TOP,
     ["line 1", "console = 1 is an integer", "expected a [console] table"]),
    ("workers-not-array", TOP, 'workers = "worker-0"\n' + TOP,
     ["not valid TOML", "workers"]),
]


@pytest.mark.parametrize(("old", "new", "expected"),
                         [case[1:] for case in BAD_SEEDS], ids=[case[0] for case in BAD_SEEDS])
def test_bad_inventory_explains_itself(tmp_path: Path, old: str, new: str,
                                       expected: list[str]) -> None:
    path = seed_with(tmp_path, old, new)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message
    assert isinstance(caught.value, UserError) and caught.value.exit_code == 2


def test_inline_secret_value_is_never_echoed(tmp_path: Path) -> None:
    path = seed_with(tmp_path, 'tsig_name = "hardway-key"',
                     'tsig_name = "hardway-key"\ntsig_secret = "c2VjcmV0LXZhbHVl"')
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert "c2VjcmV0LXZhbHVl" not in str(caught.value)


def test_secret_line_is_not_quoted_in_syntax_errors(tmp_path: Path) -> None:
    path = seed_with(tmp_path, 'tsig_name = "hardway-key"', 'tsig_secret = "c2VjcmV0 oops')
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert "line 34" in str(caught.value) and "c2VjcmV0" not in str(caught.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("[cluster]\nname = \"x\"\ndomain = \"x.home.arpa\"\n"
     "[networks]\nnodes = \"10.0.0.0/24\"\npods = \"10.1.0.0/16\"\nservices = \"10.2.0.0/24\"\n",
     "controllers is missing; expected at least one [[controllers]]"),
    ("[cluster]\nname = \"x\"\ndomain = \"x.home.arpa\"\n"
     "[networks]\nnodes = \"10.0.0.0/24\"\npods = \"10.1.0.0/16\"\nservices = \"10.2.0.0/24\"\n"
     "[controllers]\nname = \"c-0\"\naddress = \"10.0.0.10\"\n",
     "controllers = { name = \"c-0\", address = \"10.0.0.10\" } is a single table"),
    ("[cluster]\nname = \"x\"\ndomain = \"x.home.arpa\"\n[[controllers]]\nname = \"c-0\"\n"
     "address = \"10.0.0.10\"\n", "networks is missing; expected a [networks] table"),
    ("", "cluster is missing; expected a [cluster] table"),
])
def test_structural_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "inv.toml"
    path.write_text(text)
    with pytest.raises(InventoryError, match=None) as caught:
        load_inventory(path)
    assert expected in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        load_inventory(tmp_path / "missing.toml")
    with pytest.raises(InventoryError, match="is a directory"):
        load_inventory(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"[cluster]\nname = \"\xff\xfe\"\n")
    with pytest.raises(InventoryError, match="is not UTF-8"):
        load_inventory(binary)
