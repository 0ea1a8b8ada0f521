"""The files a lab writes: keys, known_hosts, an OpenSSH config, the inventory, shims.

Everything is rendered from the lab's host specs so the product reads the lab like
any other cluster: ``inventory.toml`` in the agreed TOML format, ``ssh_config`` for the
system's ``ssh -F``, and a ``known_hosts`` that keeps strict host key checking on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncssh

from tui.core.inventory.model import Host, Inventory
from tui.lab.server import LabHostSpec
from tui.lab.session import ORDINARY_LOGIN

CLUSTER_NAME = "lab"
DOMAIN = "lab.home.arpa"
PODS = "10.200.0.0/16"
SERVICES = "10.32.0.0/24"

HOSTNAME_SHIM = """\
#!/bin/sh
# hardway lab shim: answers as the lab host, not as the machine running the lab.
case "${{1:-}}" in
  "") echo {name} ;;
  -s|--short) echo {name} ;;
  -f|--fqdn|--long|-A|--all-fqdns) echo {name}.{domain} ;;
  -d|--domain) echo {domain} ;;
  -i|--ip-address|-I|--all-ip-addresses) echo {address} ;;
  *) echo "hostname: the lab host {name} does not support '$1'" >&2; exit 1 ;;
esac
"""

SUDO_SHIM = """\
#!/bin/sh
# hardway lab shim: root's sudo runs the command as root. On a confined host the ordinary
# login (kthw) sees the host read-only; sudo gives it the host's own view, as root, when
# /etc/sudoers.d lets it without a password (otherwise it answers as sudo does).
nonint=
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -n) nonint=1; shift ;;
    -u|-g|-p|-C|-D|-U|-r|-t|-T) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || set -- "${SHELL:-/bin/sh}"
if [ "${LOGNAME:-}" = @ORDINARY@ ] && [ -e /proc/1/ns/mnt ]; then
  if ! grep -qs "^$LOGNAME[[:space:]].*NOPASSWD" /etc/sudoers.d/*; then
    if [ -n "$nonint" ]; then echo "sudo: a password is required" >&2; exit 1; fi
    echo "sudo: a terminal is required to read the password" >&2; exit 1
  fi
  exec nsenter --mount=/proc/1/ns/mnt --wd="$PWD" -- \
    env USER=root LOGNAME=root HOME=/root "$@"
fi
exec env "$@"
""".replace("@ORDINARY@", ORDINARY_LOGIN)
SUDOERS = "/etc/sudoers.d/hardway-lab"
"""Lets the ordinary login use sudo without a password (remove the line to be asked)."""


CONTROL_SHIM = """\
#!/bin/sh
# hardway lab shim: {tool} talks to this lab host's service supervisor, inside the lab
# process, over the host's control socket.
exec {python} -P {client} {tool} {socket} "$@"
"""

CONTROL_CLIENT = Path(__file__).resolve().parent / "standins" / "lab_ctl.py"
CONTROL_SOCKET = "var/run/systemd/private"  # relative to the host root


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically with permission ``mode``."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load_or_create_key(path: Path, comment: str) -> asyncssh.SSHKey:
    """Read the ed25519 key at ``path``, or create it (0600, with a ``.pub`` beside it)."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    write_file(path, key.export_private_key("openssh").decode(), 0o600)
    write_file(path.with_name(path.name + ".pub"), key.export_public_key("openssh").decode())
    return key


def public_line(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA...`` without a comment."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{algorithm} {blob}"


def render_known_hosts(hosts: Sequence[tuple[LabHostSpec, asyncssh.SSHKey]]) -> str:
    """One line per host: ``[ADDRESS]:PORT,[NAME]:PORT ssh-ed25519 ...``."""
    lines = ["# hardway lab host keys (regenerated only when DIR/hostkeys is removed)"]
    for spec, key in hosts:
        lines.append(f"[{spec.listen}]:{spec.port},[{spec.name}]:{spec.port} {public_line(key)}")
    return "\n".join(lines) + "\n"


def _config_value(path: Path) -> str:
    text = str(path).replace("%", "%%")  # OpenSSH expands %-tokens in file options
    return f'"{text}"' if any(c.isspace() for c in text) else text


def render_ssh_config(specs: Sequence[LabHostSpec], user: str, identity: Path,
                      known_hosts: Path) -> str:
    """An OpenSSH client config with one ``Host`` block per lab host."""
    out = [
        "# hardway lab: use with `ssh -F THIS_FILE controller-0` (strict host key checking)",
    ]
    for spec in specs:
        out += [
            "",
            f"Host {spec.name}",
            f"  HostName {spec.listen}",
            f"  Port {spec.port}",
            f"  User {user}",
            f"  IdentityFile {_config_value(identity)}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {_config_value(known_hosts)}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  PasswordAuthentication no",
        ]
    return "\n".join(out) + "\n"


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def control_plane_block(network: str) -> str:
    """The control-plane services /24 for node network ``127.A.B``: ``127.A.(B±40).0/24``.

    The default lab (127.0.10) gets 127.0.50.0/24; labs on other networks get blocks of
    their own, never the node block and never 127.0.0.0/24.
    """
    prefix, _, third = network.rpartition(".")
    octet = int(third) + 40 if int(third) + 40 <= 255 else int(third) - 40
    return f"{prefix}.{octet}.0/24"


def render_inventory(specs: Sequence[LabHostSpec], *, network: str, port: int, user: str,
                     identity: Path, known_hosts: Path, ssh_config: Path) -> str:
    """The lab's inventory in the agreed TOML format (absolute paths throughout)."""
    block = control_plane_block(network)
    vip = block.replace(".0/24", ".1")
    out = [
        "# hardway lab inventory: written by `hardway lab up`; every path is inside the lab",
        "# directory and every remote path is mapped under the host's `root`.",
        "",
        "[cluster]",
        f"name = {_toml(CLUSTER_NAME)}",
        f"domain = {_toml(DOMAIN)}",
        "",
        "[networks]",
        f"nodes = {_toml(network + '.0/24')}",
        f"control_plane_services = {_toml(block)}",
        f"pods = {_toml(PODS)}",
        f"services = {_toml(SERVICES)}",
        "",
        "[api]",
        f"vip = {_toml(vip)}",
        f"hostname = {_toml('kubernetes.' + DOMAIN)}",
        "port = 6443",
        "",
        "[ssh]",
        f"user = {_toml(user)}",
        f"port = {port}",
        f"identity = {_toml(str(identity))}",
        f"known_hosts = {_toml(str(known_hosts))}",
        f"config = {_toml(str(ssh_config))}",
    ]
    for spec in specs:
        table = "controllers" if spec.role == "controller" else "workers"
        out += ["", f"[[{table}]]", f"name = {_toml(spec.name)}",
                f"address = {_toml(spec.address)}", f"root = {_toml(str(spec.root))}"]
        if spec.listen != spec.address or spec.port != port:
            out.append(f"ssh = {{ host = {_toml(spec.listen)}, port = {spec.port} }}")
    return "\n".join(out) + "\n"


def prepare_root(spec: LabHostSpec) -> None:
    """Create the host's directory tree (kept when it exists) and (re)write its shims."""
    root = spec.root
    for sub in ("etc", "var/lib", "var/run", "usr/local/bin", "root", "lab-bin", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "root", 0o700)
    os.chmod(root / "tmp", 0o1777)
    write_file(root / "etc" / "hostname", spec.name + "\n")
    shim = HOSTNAME_SHIM.format(name=spec.name, domain=DOMAIN, address=spec.address)
    write_file(root / "lab-bin" / "hostname", shim, 0o755)
    write_file(root / "lab-bin" / "sudo", SUDO_SHIM, 0o755)
    for tool in ("systemctl", "journalctl"):
        write_file(root / "lab-bin" / tool, CONTROL_SHIM.format(
            tool=tool, python=shlex.quote(sys.executable),
            client=shlex.quote(str(CONTROL_CLIENT)),
            socket=shlex.quote(str(root / CONTROL_SOCKET))), 0o755)


DNS_SERVER = "10.10.0.2"
"""The confined lab's DNS server (the hypervisor's second address)."""
CONFINED_CONTROL_SOCKET = "/run/systemd/private"
"""The supervisor's control socket as a confined host sees it (``DIR/hosts/NAME/var/run``)."""


def prepare_confined(specs: Sequence[LabHostSpec], hosts: Sequence[tuple[str, str]]) -> None:
    """What a confined host's own files need: ``/etc/hosts``, ``/etc/hostname`` and, in
    ``/usr/local/sbin`` (first on root's PATH), ``systemctl``, ``journalctl`` and ``sudo``."""
    table = "".join(f"{address}\t{name}.{DOMAIN} {name}\n" for address, name in hosts)
    for spec in specs:
        root = spec.root
        for sub in ("etc/systemd/system", "var/run/lock", "var/lib", "var/log", "var/cache",
                    "var/tmp", "usr/local/sbin", "usr/local/bin", "home", "opt"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "var" / "tmp", 0o1777)
        if not os.path.lexists(root / "var" / "lock"):
            os.symlink("/run/lock", root / "var" / "lock")
        write_file(root / "etc" / "hostname", spec.name + "\n")
        write_file(root / "etc" / "hosts", f"127.0.0.1\tlocalhost\n{table}")
        resolv = root / "etc" / "resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        write_file(resolv, f"# hardway lab: the zone's server on the hypervisor\n"
                           f"nameserver {DNS_SERVER}\nsearch {DOMAIN}\n")
        sbin = root / "usr" / "local" / "sbin"
        write_file(sbin / "sudo", SUDO_SHIM, 0o755)
        (root / "home" / ORDINARY_LOGIN).mkdir(parents=True, exist_ok=True)
        (root / SUDOERS.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        write_file(root / SUDOERS.lstrip("/"), f"{ORDINARY_LOGIN} ALL=(ALL:ALL) NOPASSWD: ALL\n",
                   0o440)
        for tool in ("systemctl", "journalctl"):
            write_file(sbin / tool, CONTROL_SHIM.format(
                tool=tool, python=shlex.quote(sys.executable),
                client=shlex.quote(str(CONTROL_CLIENT)),
                socket=CONFINED_CONTROL_SOCKET), 0o755)


def rooted(inventory: Inventory, host_root: Callable[[str], Path]) -> Inventory:
    """``inventory`` with each host's ``root`` set to its directory on this machine: how
    the lab itself writes a confined host's files (the product sees no root)."""
    def move(host: Host) -> Host:
        return dataclasses.replace(host, root=str(host_root(host.name)))

    return dataclasses.replace(inventory, controllers=tuple(map(move, inventory.controllers)),
                               workers=tuple(map(move, inventory.workers)))


def render_confined_ssh_config(specs: Sequence[LabHostSpec], identity: Path,
                               known_hosts: Path) -> str:
    """``ssh -F THIS controller-0``: through the hypervisor (ProxyJump), as root."""
    out = ["# hardway lab (confined hosts): `ssh -F THIS_FILE controller-0` goes through the",
           "# hypervisor, the jump host (strict host key checking)"]
    for spec in specs:
        door = spec.door
        out += ["", f"Host {spec.name}",
                f"  HostName {door[0] if door else spec.address}",
                f"  Port {door[1] if door else spec.port}", "  User root",
                f"  IdentityFile {_config_value(identity)}", "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {_config_value(known_hosts)}",
                "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes",
                "  PasswordAuthentication no"]
        if door is None:
            jump = next(s.name for s in specs if s.door is not None)
            out.append(f"  ProxyJump {jump}")
    return "\n".join(out) + "\n"


def render_confined_known_hosts(hosts: Sequence[tuple[LabHostSpec, asyncssh.SSHKey]]) -> str:
    """Each host by address and name (port 22), the hypervisor also at its door."""
    lines = ["# hardway lab host keys (regenerated only when DIR/hostkeys is removed)"]
    for spec, key in hosts:
        lines.append(f"{spec.address},{spec.name} {public_line(key)}")
        if spec.door is not None:
            lines.append(f"[{spec.door[0]}]:{spec.door[1]},[{spec.name}]:{spec.door[1]} "
                         f"{public_line(key)}")
    return "\n".join(lines) + "\n"


def render_confined_inventory(specs: Sequence[LabHostSpec], *, identity: Path,
                              known_hosts: Path, ssh_config: Path, vip: str,
                              etcd_version: str | None = None,
                              dns: tuple[str, str, Path] | None = None) -> str:
    """The confined lab's inventory: KTHW's paths, no root prefix, the hypervisor as the
    jump host -- nothing that tells the product it is a lab."""
    hypervisor = next(s for s in specs if s.door is not None)
    assert hypervisor.door is not None
    out = [
        "# hardway lab inventory (confined hosts): written by `hardway lab up`. The hosts",
        "# live on the lab's private network, reached through the hypervisor (ssh.jump).",
        "", "[cluster]", f"name = {_toml(CLUSTER_NAME)}", f"domain = {_toml(DOMAIN)}",
        "", "[networks]", f'nodes = "{hypervisor.address.rpartition(".")[0]}.0/24"',
        'control_plane_services = "10.50.0.0/24"',
        f"pods = {_toml(PODS)}", f"services = {_toml(SERVICES)}",
        "", "[api]", f"vip = {_toml(vip)}", f"hostname = {_toml('kubernetes.' + DOMAIN)}",
        "port = 6443",
        "", "[ssh]", 'user = "root"', "port = 22", f"jump = {_toml(hypervisor.name)}",
        f"identity = {_toml(str(identity))}", f"known_hosts = {_toml(str(known_hosts))}",
        f"config = {_toml(str(ssh_config))}",
        "", "[hypervisor]", f"name = {_toml(hypervisor.name)}",
        f"address = {_toml(hypervisor.door[0])}", 'os = "linux"', 'firewall = "ipfw"',
        f"ssh = {{ port = {hypervisor.door[1]} }}",
    ]
    if dns is not None:
        server, key, secret = dns
        out += ["", "[dns]", f"server = {_toml(server)}", f"zone = {_toml(DOMAIN)}",
                'mode = "rfc2136"', f"tsig_name = {_toml(key)}",
                f"tsig_secret_file = {_toml(str(secret))}"]
    if etcd_version:
        out += ["", "[versions]", f"etcd = {_toml(etcd_version)}  # the lab's release cache"]
    for spec in specs:
        if spec.door is not None:
            continue
        table = "controllers" if spec.role == "controller" else "workers"
        out += ["", f"[[{table}]]", f"name = {_toml(spec.name)}",
                f"address = {_toml(spec.address)}"]
    return "\n".join(out) + "\n"
