"""Writing the lab's cluster onto its hosts and waiting for it to come up.

:func:`prepare_cluster` runs before the hosts boot: the PKI in ``DIR/pki``, every host's
certificates, and on each controller the kube-apiserver stand-in and its enabled unit --
all shaped by the lab's :class:`~tui.lab.scenarios.Scenario`.  The hosts' supervisors
then start the enabled units at boot; :func:`wait_until_serving` waits for the API
servers' TLS ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tui.core.inventory.model import Host, Inventory
from tui.core.pki.profiles import profiles_for
from tui.lab import control_plane, etcd_release, kubeconfig, pki_setup
from tui.lab.pki_setup import PkiReport
from tui.lab.scenarios import Scenario

READY_TIMEOUT = 15.0


def prepare_cluster(directory: Path, inventory: Inventory, scenario: Scenario, *,
                    confined: bool = False) -> PkiReport:
    """Write the PKI, the hosts' certificates, the stand-in and the units for ``scenario``.

    ``inventory``'s host roots say where each host's files live on this machine; for a
    confined lab the programs themselves see the host's own paths (no root).
    """
    pki_dir = directory / pki_setup.PKI_DIR
    profiles = [scenario.certificate_profile(p) for p in profiles_for(inventory)]
    report = pki_setup.ensure_pki(pki_dir, profiles)
    control_plane.ensure_encryption_config(pki_dir)
    api = f"https://{inventory.api.vip or inventory.controllers[0].address}:{inventory.api.port}"
    kubeconfig.write_kthw_kubeconfigs(pki_dir, cluster=inventory.name, api_server=api,
                                      workers=[h.name for h in inventory.workers])
    if scenario.stage in ("certs-pushed", "etcd-up"):
        push_to_homes(directory, pki_dir, inventory)
    if scenario.stage == "certs-pushed":
        return report
    if scenario.stage == "etcd-up":
        for host in inventory.controllers:
            install_etcd(directory, pki_dir, inventory, host)
        return report
    pki_setup.install(pki_dir, inventory)
    for host in inventory.controllers:
        if confined:  # each host has its own 127.0.0.1:2379: KTHW's etcd runs as written
            install_etcd(directory, pki_dir, inventory, host)
        control_plane.install_standin(host, inventory, root="" if confined else host.root)
        if confined:  # ports of their own on every host: the rest of KTHW doc 08
            control_plane.install_components(host, inventory, root="")
            control_plane.install_nginx_health_proxy(host, inventory)
        control_plane.install_unit(host, inventory, control_plane.KUBE_APISERVER_UNIT,
                                   scenario.kube_apiserver_unit(inventory, host))
        if confined:  # each host has its own network: addresses on lo stay in the lab
            for path, text in scenario.controller_files(inventory, host).items():
                control_plane.write_bytes(control_plane.host_file(host, path), text.encode())
            for name, text in scenario.controller_units(inventory, host).items():
                control_plane.install_unit(host, inventory, name, text)
    return report


CONTROLLER_HOME_FILES = ("ca.pem", "ca-key.pem", "kubernetes-key.pem", "kubernetes.pem",
                         "service-account-key.pem", "service-account.pem",
                         "admin.kubeconfig", "kube-controller-manager.kubeconfig",
                         "kube-scheduler.kubeconfig", control_plane.ENCRYPTION_CONFIG)
"""What KTHW docs 04-06 ``scp`` to each controller's home."""


def push_to_homes(directory: Path, pki_dir: Path, inventory: Inventory) -> None:
    """Leave in each host's home what KTHW's ``scp`` (and ``wget``) steps leave there."""
    release = etcd_release.ensure_release(directory)
    for host in inventory.hosts:
        home = control_plane.host_file(host, "/root")
        if host.role == "controller":
            names = list(CONTROLLER_HOME_FILES)
        else:
            names = ["ca.pem", f"{host.name}-key.pem", f"{host.name}.pem",
                     f"{host.name}.kubeconfig", "kube-proxy.kubeconfig"]
        for name in names:
            source = pki_dir / name
            if source.exists():
                secret = name.endswith(("-key.pem", ".kubeconfig", ".yaml"))
                control_plane.write_bytes(home / name, source.read_bytes(),
                                          0o600 if secret else 0o644)
        if host.role == "controller" and release is not None:
            etcd_release.place(release, home)


def install_etcd(directory: Path, pki_dir: Path, inventory: Inventory, host: Host) -> bool:
    """KTHW doc 07 done on ``host``: etcd and etcdctl in /usr/local/bin (from the release
    cache), /etc/etcd with ca.pem and kubernetes(-key).pem, /var/lib/etcd (700), and the
    unit the product renders, enabled.  False when this machine has no etcd."""
    from tui.core.etcd.unit import render_unit

    release = etcd_release.ensure_release(directory)
    if release is None:
        return False
    bin_dir = control_plane.host_file(host, inventory.paths.bin)
    etcd_release.unpack_binaries(release, bin_dir)
    for name in pki_setup.ETCD_FILES:
        source = pki_dir / name
        control_plane.write_bytes(
            control_plane.host_file(host, f"{inventory.paths.etcd_config}/{name}"),
            source.read_bytes(), 0o600 if name.endswith("-key.pem") else 0o644)
    data = control_plane.host_file(host, inventory.paths.etcd_data)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    control_plane.install_unit(host, inventory, "etcd.service", render_unit(inventory, host))
    return True


def service_environment(inventory: Inventory, host: Host, *,
                        confined: bool = False, etcd: bool = False) -> dict[str, str]:
    """What every service on ``host`` learns about the lab (see the stand-in's docstring).

    A confined host's services see its own paths and all its addresses (0.0.0.0 is
    every address of the host, as on a VM).
    """
    return {
        "HARDWAY_LAB_ROOT": "" if confined else host.root,
        "HARDWAY_LAB_ADDRESS": "0.0.0.0" if confined else str(host.address),
        "HARDWAY_LAB_HOSTNAME": host.name,
        "HARDWAY_LAB_ETCD": "dial" if etcd else "absent",
        "HARDWAY_LAB_KUBERNETES_VERSION": inventory.versions.kubernetes,
    }


Opener = Callable[[str, str, int], socket.socket]
"""(host name, address, port) -> an unconnected TCP socket in that host's network."""


async def _serving(name: str, address: str, port: int, opener: Opener | None) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(2.0):
            if opener is None:
                _reader, writer = await asyncio.open_connection(
                    address, port, ssl=context, server_hostname=None)
            else:
                sock = opener(name, address, port)
                try:
                    await asyncio.get_running_loop().sock_connect(sock, (address, port))
                except OSError:
                    sock.close()
                    raise
                _reader, writer = await asyncio.open_connection(
                    sock=sock, ssl=context, server_hostname="")
    except (OSError, ssl.SSLError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


async def wait_until_serving(endpoints: Sequence[tuple[str, str, int]],
                             timeout: float = READY_TIMEOUT, *,
                             opener: Opener | None = None) -> list[str]:
    """Wait until every ``(name, address, port)`` completes a TLS handshake (dialled from
    the host's own network through ``opener`` when given).

    Returns the names that did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    waiting = list(endpoints)
    while waiting:
        results = await asyncio.gather(*(_serving(n, a, p, opener) for n, a, p in waiting))
        waiting = [e for e, ok in zip(waiting, results, strict=True) if not ok]
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    return [name for name, _a, _p in waiting]
