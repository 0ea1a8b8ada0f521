"""etcd bootstrap benchmark: `hardway etcd bootstrap --yes` on a fresh lab, median of N.

Each round starts a new 3-controller lab in the certs-pushed state (the lab's default:
/etc/etcd holds ca.pem, kubernetes.pem, kubernetes-key.pem), builds a release tarball
from this machine's etcd (tests/integration/test_etcd_lab.py explains the adapter the
fallback lab needs), and times the CLI from start to three healthy, verified members.

NOT measured (see the report of issue 13): the same KTHW commands typed through
`hardway run`.  In the fallback lab a command runs on the machine's own file system
(only the supervisor maps an executable through the host root), so KTHW's `mv
etcd-v*/etcd* /usr/local/bin/` and `cat <<EOF | sudo tee /etc/systemd/system/etcd.service`
would write the machine's real directories.  That comparison waits for the lab with
namespaces, where KTHW's commands run verbatim.

Run: ``PYTHONPATH=. .venv/bin/python bench/etcd_bootstrap.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_etcd_lab import build_release
from tests.support.etcd_cluster import etcd_binary
from tui.cli import main
from tui.lab.lab import LabRunner


def one_round(binary: Path, network: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["XDG_STATE_HOME"] = str(base / "state")
        tarball, _version = build_release(base, binary)
        runner = LabRunner(base / "lab", controllers=3, network=network)
        runner.start()
        try:
            out = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(out):
                status = main(["etcd", "bootstrap", "-i", str(runner.lab.inventory_path),
                               "--etcd-tarball", str(tarball), "--yes"])
            elapsed = time.perf_counter() - start
            if status != 0:
                raise SystemExit(f"bootstrap failed:\n{out.getvalue()}")
            for name in runner.lab.names:
                root = runner.lab.host_root(name)
                os.system(f"cd {root} && PATH={root}/lab-bin:$PATH systemctl stop etcd "
                          ">/dev/null 2>&1")
        finally:
            runner.stop()
    return elapsed


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--network", default=f"127.0.{150 + os.getpid() % 40}")
    args = parser.parse_args()
    binary = etcd_binary("3.5") or etcd_binary("3.4")
    if binary is None:
        raise SystemExit("no etcd binary")
    times = [one_round(binary, args.network) for _ in range(args.repeat)]
    print(f"etcd bootstrap (3 controllers, certs pushed -> healthy): median "
          f"{statistics.median(times):.2f} s over {len(times)} runs "
          f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main_bench()
