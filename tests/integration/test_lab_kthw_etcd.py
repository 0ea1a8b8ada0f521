"""KTHW doc 07 typed verbatim on the confined ``certs-pushed`` lab brings up a real etcd.

The commands are KTHW 1.18.6's, sent with ``hardway run`` to the three controllers at
once as a reader would paste them (only the release version is the lab's, and the
``wget`` is skipped: the tarball is already in each home, as the scenario promises).
Nothing outside the lab directory may change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import running_lab
from tui.core.inventory.load import load_inventory
from tui.lab import namespaces
from tui.lab.lab import LabRunner

pytestmark = pytest.mark.skipif(namespaces.unavailable() is not None,
                                reason=f"no namespaces: {namespaces.unavailable()}")

INSTALL = """\
tar -xf etcd-v{version}-linux-amd64.tar.gz
sudo mv etcd-v{version}-linux-amd64/etcd* /usr/local/bin/
sudo mkdir -p /etc/etcd /var/lib/etcd
sudo chmod 700 /var/lib/etcd
sudo cp ca.pem kubernetes-key.pem kubernetes.pem /etc/etcd/
"""

UNIT = """\
ETCD_NAME=$(hostname -s)
cat <<EOF | sudo tee /etc/systemd/system/etcd.service
[Unit]
Description=etcd
Documentation=https://github.com/coreos

[Service]
Type=notify
ExecStart=/usr/local/bin/etcd \\\\
  --name ${{ETCD_NAME}} \\\\
  --cert-file=/etc/etcd/kubernetes.pem \\\\
  --key-file=/etc/etcd/kubernetes-key.pem \\\\
  --peer-cert-file=/etc/etcd/kubernetes.pem \\\\
  --peer-key-file=/etc/etcd/kubernetes-key.pem \\\\
  --trusted-ca-file=/etc/etcd/ca.pem \\\\
  --peer-trusted-ca-file=/etc/etcd/ca.pem \\\\
  --peer-client-cert-auth \\\\
  --client-cert-auth \\\\
  --initial-advertise-peer-urls https://${{INTERNAL_IP}}:2380 \\\\
  --listen-peer-urls https://${{INTERNAL_IP}}:2380 \\\\
  --listen-client-urls https://${{INTERNAL_IP}}:2379,https://127.0.0.1:2379 \\\\
  --advertise-client-urls https://${{INTERNAL_IP}}:2379 \\\\
  --initial-cluster-token etcd-cluster-0 \\\\
  --initial-cluster {initial_cluster} \\\\
  --initial-cluster-state new \\\\
  --data-dir=/var/lib/etcd
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
"""

START = """\
sudo systemctl daemon-reload
sudo systemctl enable etcd
sudo systemctl start etcd
"""

VERIFY = """\
sudo ETCDCTL_API=3 etcdctl member list \\
  --endpoints=https://127.0.0.1:2379 \\
  --cacert=/etc/etcd/ca.pem \\
  --cert=/etc/etcd/kubernetes.pem \\
  --key=/etc/etcd/kubernetes-key.pem
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """The confined lab where KTHW docs 04-06 are done."""
    with running_lab(tmp_path_factory.mktemp("kthw"), 23, controllers=3,
                     isolation="namespaces", scenario="certs-pushed") as runner:
        yield runner


def hardway_run(inventory: Path, command: str, timeout: float = 120) -> \
        subprocess.CompletedProcess[str]:
    """``hardway run -i INVENTORY -w @controllers -- COMMAND`` as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "run", "-i", str(inventory), "-w", "@controllers",
         "--", command], capture_output=True, text=True, timeout=timeout, check=False)


def _machine_snapshot() -> dict[str, bool]:
    return {path: os.path.lexists(path) for path in (
        "/etc/etcd", "/etc/systemd/system/etcd.service", "/usr/local/bin/etcd",
        "/usr/local/bin/etcdctl")}


def test_kthw_doc_07_verbatim_brings_up_three_members(lab: LabRunner) -> None:
    before = _machine_snapshot()
    inventory = load_inventory(lab.lab.inventory_path)
    version = inventory.versions.etcd
    homes = [lab.lab.host_root(h.name) / "root" for h in inventory.controllers]
    assert all((home / f"etcd-v{version}-linux-amd64.tar.gz").exists() for home in homes)
    assert all((home / "kubernetes-key.pem").exists() for home in homes)

    for step in (INSTALL.format(version=version),
                 UNIT.format(initial_cluster=inventory.etcd_initial_cluster), START):
        result = hardway_run(lab.lab.inventory_path, step)
        assert result.returncode == 0, result.stdout + result.stderr

    listed = hardway_run(lab.lab.inventory_path, VERIFY)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    for host in inventory.controllers:
        line = f"started, {host.name}, https://{host.address}:2380, https://{host.address}:2379"
        assert listed.stdout.count(line) == 3, listed.stdout  # every member sees all three
    assert _machine_snapshot() == before


async def test_kthw_doc_07_pasted_into_the_console_brings_up_three_members(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same blocks pasted into the console's bar (``Console.paste``: each host's shell
    gets the same bytes, heredocs intact) on a fresh certs-pushed lab: three started
    members, nothing outside the lab directory changed."""
    import asyncio
    import time

    from tui.core.workbench import Workbench

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the console's history
    before = _machine_snapshot()
    with running_lab(tmp_path / "lab", 29, controllers=3, isolation="namespaces",
                     scenario="certs-pushed") as runner:
        inventory = load_inventory(runner.lab.inventory_path)
        names = [h.name for h in inventory.controllers]
        async with Workbench(inventory, host_keys="strict", user_ssh_files=False,
                             audit_path=tmp_path / "audit.jsonl", redial=()) as workbench:
            await workbench.start_console()
            console = workbench.console
            assert all(console.shell(n) is not None for n in names)

            async def pasted(block: str) -> dict[str, tuple[int | None, str]]:
                record = console.paste(block).broadcast
                assert record is not None and sorted(record.runs) == names
                deadline = time.monotonic() + 120
                # a block of several commands: the record ends with its first command
                # (one prompt each), the shell is busy until the last one has run
                while not all(run.finished for run in record.runs.values()) or any(
                        console.status(n).running for n in names):
                    assert time.monotonic() < deadline, f"{block!r} did not finish"
                    await asyncio.sleep(0.1)
                return {n: (r.status, r.output) for n, r in record.runs.items()}

            for block in (INSTALL.format(version=inventory.versions.etcd),
                          UNIT.format(initial_cluster=inventory.etcd_initial_cluster), START):
                await pasted(block)
            listed = await pasted(VERIFY)
            assert all(status == 0 for status, _ in listed.values()), listed
        for host in inventory.controllers:
            line = (f"started, {host.name}, https://{host.address}:2380, "
                    f"https://{host.address}:2379")
            assert all(output.count(line) == 1 for _, output in listed.values()), listed
    assert _machine_snapshot() == before
