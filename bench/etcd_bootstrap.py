"""etcd bootstrap benchmark: the plan vs KTHW doc 07's commands typed through `hardway run`.

Each round starts a fresh 3-controller lab in the certs-pushed state (the lab's default:
/etc/etcd and /var/lib/kubernetes hold ca.pem, kubernetes.pem, kubernetes-key.pem) and
times, from there to three healthy members, both ways in turn (order alternating):

* plan: ``hardway etcd bootstrap --etcd-tarball T --yes`` (pushes the binaries over SFTP,
  every check, preview-free apply and HTTPS verification included);
* commands: doc 07's commands, each sent to the three controllers with ``hardway run``
  in sequence as a user types them into three panes: tar, mv, mkdir, chmod, cp, the
  ``cat > etcd.service <<EOF`` heredoc, mv, daemon-reload, enable, start, then ``etcdctl
  member list`` repeated until it answers on all three.  The release tarball is put in
  each host's home before the clock starts (KTHW's wget), which favours the commands.

The fallback lab runs commands on the machine's own file system (only the service
supervisor maps an executable through the host root), so the commands name the host's
root as ``$HARDWAY_LAB_HOST`` (the lab exports it) where KTHW writes /usr/local/bin,
/etc/etcd, /var/lib/etcd and /etc/systemd/system; the unit's text is KTHW's.  The
release's ``etcd`` is the adapter tests/integration/test_etcd_lab.py explains.

Run: ``PYTHONPATH=. .venv/bin/python bench/etcd_bootstrap.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_etcd_lab import build_release, clean_etcd
from tests.support.etcd_cluster import etcd_binary
from tui.cli import main
from tui.lab.lab import LabRunner

UNIT = r"""cat > etcd.service <<EOF
[Unit]
Description=etcd
Documentation=https://github.com/coreos

[Service]
Type=notify
ExecStart=/usr/local/bin/etcd \\
  --name ${ETCD_NAME} \\
  --cert-file=/etc/etcd/kubernetes.pem \\
  --key-file=/etc/etcd/kubernetes-key.pem \\
  --peer-cert-file=/etc/etcd/kubernetes.pem \\
  --peer-key-file=/etc/etcd/kubernetes-key.pem \\
  --trusted-ca-file=/etc/etcd/ca.pem \\
  --peer-trusted-ca-file=/etc/etcd/ca.pem \\
  --peer-client-cert-auth \\
  --client-cert-auth \\
  --initial-advertise-peer-urls https://${INTERNAL_IP}:2380 \\
  --listen-peer-urls https://${INTERNAL_IP}:2380 \\
  --listen-client-urls https://${INTERNAL_IP}:2379,https://127.0.0.1:2379 \\
  --advertise-client-urls https://${INTERNAL_IP}:2379 \\
  --initial-cluster-token etcd-cluster-0 \\
  --initial-cluster INITIAL_CLUSTER \\
  --initial-cluster-state new \\
  --data-dir=/var/lib/etcd
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF"""


def quiet(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def commands(prefix: str, initial_cluster: str) -> list[str]:
    r = '"$HARDWAY_LAB_HOST"'
    return [
        f"tar -xvf {prefix}.tar.gz",
        f"mv {prefix}/etcd* {r}/usr/local/bin/",
        f"mkdir -p {r}/etc/etcd {r}/var/lib/etcd",
        f"chmod 700 {r}/var/lib/etcd",
        f"cd {r}/var/lib/kubernetes && cp ca.pem kubernetes-key.pem kubernetes.pem {r}/etc/etcd/",
        UNIT.replace("INITIAL_CLUSTER", initial_cluster),
        f"mv etcd.service {r}/etc/systemd/system/",
        "systemctl daemon-reload",
        "systemctl enable etcd",
        "systemctl start etcd",
    ]


def by_commands(runner: LabRunner, tarball: Path) -> float:
    inv = str(runner.lab.inventory_path)
    for name in runner.lab.names:
        shutil.copy(tarball, runner.lab.host_root(name) / "root" / tarball.name)
    addresses = {n: f"{runner.lab.network}.{10 + i}" for i, n in enumerate(runner.lab.names)}
    cluster = ",".join(f"{n}=https://{a}:2380" for n, a in addresses.items())
    check = ('ETCDCTL_API=3 etcdctl member list --endpoints=https://${INTERNAL_IP}:2379 '
             '--cacert="$HARDWAY_LAB_HOST"/etc/etcd/ca.pem '
             '--cert="$HARDWAY_LAB_HOST"/etc/etcd/kubernetes.pem '
             '--key="$HARDWAY_LAB_HOST"/etc/etcd/kubernetes-key.pem')
    start = time.perf_counter()
    for command in commands(tarball.name[:-len(".tar.gz")], cluster):
        status = quiet(["run", "-i", inv, "-w", "@controllers", "--", command])
        if status != 0:
            raise SystemExit(f"`{command[:60]}` failed with {status}")
    while quiet(["run", "-i", inv, "-w", "@controllers", "--", check]) != 0:
        if time.perf_counter() - start > 60:
            raise SystemExit("the commands did not give a healthy cluster within 60 s")
    return time.perf_counter() - start


def by_plan(runner: LabRunner, tarball: Path) -> float:
    start = time.perf_counter()
    status = quiet(["etcd", "bootstrap", "-i", str(runner.lab.inventory_path),
                    "--etcd-tarball", str(tarball), "--yes"])
    if status != 0:
        raise SystemExit("hardway etcd bootstrap failed")
    return time.perf_counter() - start


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--network", default=f"127.0.{150 + os.getpid() % 40}")
    args = parser.parse_args()
    binary = etcd_binary("3.5") or etcd_binary("3.4")
    if binary is None:
        raise SystemExit("no etcd binary")
    times: dict[str, list[float]] = {"plan": [], "commands": []}
    for round_ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            os.environ["XDG_STATE_HOME"] = str(base / "state")
            tarball, _version = build_release(base, binary)
            runner = LabRunner(base / "lab", controllers=3, network=args.network)
            runner.start()
            try:
                order = [("plan", by_plan), ("commands", by_commands)]
                for label, way in order if round_ % 2 == 0 else order[::-1]:
                    times[label].append(way(runner, tarball))
                    clean_etcd(runner)
            finally:
                runner.stop()
    plan, typed = statistics.median(times["plan"]), statistics.median(times["commands"])
    for label, values in times.items():
        print(f"{label:>9}: median {statistics.median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print(f"plan / commands = {plan / typed:.2f} (must be <= 1.00)")


if __name__ == "__main__":
    main_bench()
