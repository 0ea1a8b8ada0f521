"""The confined lab's hypervisor: the API VIP's ipfw round robin and its data path.

As on the seed's FreeBSD box, the hypervisor (``nucklehead``) owns the VIP and spreads
it over the controllers with ipfw: ``prob`` rules with ``fwd`` and ``keep-state`` in set
10, set 11 spare (disabled) for atomic swaps.  In the lab:

* ``/usr/local/sbin/ipfw`` is :mod:`tui.lab.ipfw` on the state file ``/var/db/ipfw.json``;
* ``ipfw.service`` runs :mod:`tui.lab.forwarder`, which takes every connection to port
  6443 that reaches the hypervisor (the VIP's block is routed to it, see
  :data:`tui.lab.lab.CONTROL_PLANE_BLOCK`) and sends it where the rules say (what the
  kernel does with ``fwd``; no rule for the address: reset), so a VIP moved to another
  address is served as soon as its rules are, and ``systemctl status ipfw`` and
  ``journalctl -u ipfw`` show it.

The rules start as the seed's: no health checks, so with a controller down about a
third of new connections through the VIP fail.

It also serves the cluster zone, as the seed's DNS box did: real BIND (``named.service``)
on 10.10.0.2:53 with a TSIG key and ``update-policy``, so ``dig``, ``nsupdate -k`` and
``hardway dns`` work against it.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tui.core.dns.records import wanted_records
from tui.core.inventory.model import Inventory
from tui.core.lb.ipfw import Backend, VipLayout, wanted_rules
from tui.lab import ipfw
from tui.lab.bind import BindServer, named_missing_reason
from tui.lab.control_plane import write_bytes
from tui.lab.dns_server import write_secret_file
from tui.lab.files import DNS_SERVER
from tui.lab.zonedata import zone_text

STATE = "/var/db/ipfw.json"
"""The ipfw state file, as the hypervisor sees it."""

PROJECT = str(Path(__file__).resolve().parents[2])
"""The checkout holding ``tui`` (mounted read-only in every host): ``python -m tui.lab.*``
there must find this package even when the interpreter's site-packages point elsewhere
(an editable install of another checkout, e.g. a git worktree)."""

UNIT = """\
[Unit]
Description=IPFW firewall (hardway lab: the VIP's fwd rules, forwarded in user space)
Documentation=man:ipfw(8)

[Service]
Type=simple
Environment=PYTHONPATH={pythonpath}
ExecStart={python} -m tui.lab.forwarder --state {state} --listen 0.0.0.0:{port}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


ADMIN_FILES = ("ca.pem", "admin.pem", "admin-key.pem", "admin.kubeconfig")
"""What the admin machine keeps in its home after KTHW docs 04-05 (made there)."""


def prepare(root: Path, vip: str, controllers: Sequence[tuple[str, str]],
            port: int = 6443, pki_dir: Path | None = None) -> None:
    """Write the hypervisor's ipfw command, its first rules and the forwarder's unit, and
    the admin's files from ``pki_dir`` into its home (``curl --cacert ca.pem ...``).

    Args:
        root: the hypervisor's directory (its files as ``root/<path>``).
        vip: the API VIP.
        controllers: (name, address) of the backends.
        port: the API port.
        pki_dir: the lab's PKI (None: no admin files).
    """
    for name in ADMIN_FILES:
        source = pki_dir / name if pki_dir is not None else None
        if source is None:
            break
        if source.exists():
            secret = name.endswith(("-key.pem", ".kubeconfig"))
            write_bytes(root / "root" / name, source.read_bytes(), 0o600 if secret else 0o644)
    state_path = root / STATE.lstrip("/")
    if not state_path.exists():  # a reused lab keeps the rules its user made
        layout = VipLayout(vip, port)
        state = ipfw.IpfwState(disabled_sets={layout.spare_set})
        for rule in wanted_rules(layout, [Backend(n, a, port) for n, a in controllers]):
            state.add(rule)
        ipfw.save_state(state_path, state)
    write_bytes(root / "usr/local/sbin/ipfw",
                ipfw.shim_script(Path(STATE), pythonpath=PROJECT).encode(), 0o755)
    unit = UNIT.format(python=shlex.quote(sys.executable), state=STATE, port=port,
                       pythonpath=shlex.quote(PROJECT))
    units = root / "etc/systemd/system"
    write_bytes(units / "ipfw.service", unit.encode())
    _enable(units, "ipfw.service")


DNS_ADDRESS = DNS_SERVER
"""Where the lab's zone is served: a second address of the hypervisor, as the seed's."""
DNS_DIR = "/var/lib/bind-lab"
TSIG_NAME = "hardway-key"
NAMED = "/usr/sbin/named"

NAMED_UNIT = """\
[Unit]
Description=BIND Domain Name Server (the lab's zone, RFC 2136 with TSIG)
Documentation=man:named(8)

[Service]
Type=simple
ExecStart={named} -g -n 1 -c {conf} -p 53
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def secret_path(directory: Path) -> Path:
    """The TSIG secret file the lab's inventory names (``DIR/secrets/hardway-key.secret``)."""
    return directory / "secrets" / f"{TSIG_NAME}.secret"


def prepare_dns(root: Path, directory: Path, inventory: Inventory) -> bool:
    """BIND on the hypervisor for the inventory's zone (a ``named.service`` unit), with a
    fresh TSIG key whose secret file (0600) the inventory names; False when this machine
    has no ``named`` (then the lab serves no zone)."""
    if named_missing_reason() is not None or inventory.dns is None:
        return False
    secret = write_secret_file(secret_path(directory), TSIG_NAME)
    write_bytes(root / "root" / secret_path(directory).name,  # the admin's copy, for nsupdate -k
                secret_path(directory).read_bytes(), 0o600)
    server = BindServer(inventory.dns.zone, wanted_records(inventory), key_name=TSIG_NAME,
                        key_secret=secret, directory=Path(DNS_DIR))
    server.address, server.port = DNS_ADDRESS, 53
    here = root / DNS_DIR.lstrip("/")
    for stale in here.glob("*.jnl") if here.is_dir() else ():
        stale.unlink()
    write_bytes(here / server.zone_path.name,
                zone_text(server.zone, server.records, DNS_ADDRESS).encode())
    write_bytes(here / "named.conf", server.config().encode(), 0o600)
    units = root / "etc/systemd/system"
    write_bytes(units / "named.service", NAMED_UNIT.format(
        named=NAMED, conf=f"{DNS_DIR}/named.conf").encode())
    _enable(units, "named.service")
    return True


def _enable(units: Path, name: str) -> None:
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / name
    if not link.is_symlink():
        link.symlink_to(f"../{name}")
