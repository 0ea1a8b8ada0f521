"""The confined lab's hypervisor: the API VIP's ipfw round robin and its data path.

As on the seed's FreeBSD box, the hypervisor (``nucklehead``) owns the VIP and spreads
it over the controllers with ipfw: ``prob`` rules with ``fwd`` and ``keep-state`` in set
10, set 11 spare (disabled) for atomic swaps.  In the lab:

* ``/usr/local/sbin/ipfw`` is :mod:`tui.lab.ipfw` on the state file ``/var/db/ipfw.json``;
* ``ipfw.service`` runs :mod:`tui.lab.forwarder`, which listens on VIP:6443 inside the
  hypervisor and sends each new connection where the rules say (what the kernel does
  with ``fwd``), so ``systemctl status ipfw`` and ``journalctl -u ipfw`` show it.

The rules start as the seed's: no health checks, so with a controller down about a
third of new connections through the VIP fail.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tui.core.lb.ipfw import Backend, VipLayout, wanted_rules
from tui.lab import ipfw
from tui.lab.control_plane import write_bytes

STATE = "/var/db/ipfw.json"
"""The ipfw state file, as the hypervisor sees it."""

UNIT = """\
[Unit]
Description=IPFW firewall (hardway lab: the VIP's fwd rules, forwarded in user space)
Documentation=man:ipfw(8)

[Service]
Type=simple
ExecStart={python} -m tui.lab.forwarder --state {state} --listen {vip}:{port}
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
    for name in ADMIN_FILES if pki_dir is not None else ():
        source = pki_dir / name
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
                ipfw.shim_script(Path(STATE)).encode(), 0o755)
    unit = UNIT.format(python=shlex.quote(sys.executable), state=STATE, vip=vip, port=port)
    units = root / "etc/systemd/system"
    write_bytes(units / "ipfw.service", unit.encode())
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "ipfw.service"
    if not link.is_symlink():
        link.symlink_to("../ipfw.service")
