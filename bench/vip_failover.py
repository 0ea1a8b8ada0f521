"""A controller dies behind the API VIP: how many requests fail, and for how long?

On the confined lab (3 controllers, the hypervisor `nucklehead` owning the VIP), a client
on the hypervisor opens a NEW HTTPS connection to https://VIP:6443/version at a steady
rate (TLS verified against the cluster CA, 1 s timeout each) for the whole episode. At
10 s controller-1's kube-apiserver is stopped, at 40 s started again (60 s episodes; the
times scale with --seconds). The same episode runs, in one process and one lab, for:

1. plain ipfw round robin (the seed's setup: no health checks);
2. ``hardway vip guard`` with its defaults (probe every 1 s, rise 2, fall 2), run by
   this process against the lab like the CLI does;
3. HAProxy on the hypervisor with the configuration ``tui.core.lb.haproxy`` generates
   (TLS-verified /healthz checks, rise 2, fall 3, inter 2 s), in the VIP forwarder's
   place (only where haproxy is installed).

For each it prints the share of failed requests over the episode and the time from the
failure to the last failed request. Targets (issue 16): the guard under 2% failed and no
failure later than fall x interval + 1 s after the controller died; plain round robin is
expected near a third of the requests during the outage.

    .venv/bin/python bench/vip_failover.py                 # 3 x 60 s episodes
    .venv/bin/python bench/vip_failover.py --seconds 30 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.audit import AuditLog
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.health.catalog import Credentials
from tui.core.inventory.load import load_inventory
from tui.core.lb.guard import GuardSettings, VipGuard
from tui.core.lb.haproxy import render_config, settings_for
from tui.core.lb.hypervisor import vip_backends
from tui.lab import namespaces
from tui.lab.lab import HYPERVISOR, LabRunner

CLIENT = r'''
import json, socket, ssl, sys, time
vip, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile="/root/ca.pem")
results = []
start = time.monotonic()
n = 0
while True:
    due = start + n / rate
    now = time.monotonic()
    if due - start >= seconds:
        break
    if due > now:
        time.sleep(due - now)
    t = time.monotonic() - start
    ok = False
    try:
        with socket.create_connection((vip, port), timeout=1.0) as raw:
            raw.settimeout(1.0)
            with ctx.wrap_socket(raw, server_hostname=vip) as tls:
                tls.sendall(b"GET /version HTTP/1.1\r\nHost: " + vip.encode() +
                            b"\r\nConnection: close\r\n\r\n")
                ok = tls.recv(64).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        ok = False
    results.append((round(t, 3), ok))
    n += 1
print(json.dumps(results))
'''


def ssh(lab: LabRunner, host: str, command: str, *, timeout: float = 120) -> str:
    """Run ``command`` on a lab host (OpenSSH through the jump host)."""
    result = subprocess.run(["ssh", "-F", str(lab.lab.ssh_config_path), host, command],
                            capture_output=True, text=True, timeout=timeout, check=False)
    return result.stdout + result.stderr


async def episode(lab: LabRunner, args: argparse.Namespace) -> list[tuple[float, bool]]:
    """One episode: the client runs while controller-1's kube-apiserver stops and starts."""
    seconds = args.seconds
    fail_at, back_at = seconds / 6, seconds * 2 / 3
    client = asyncio.create_task(asyncio.to_thread(
        ssh, lab, HYPERVISOR,
        f"python3 /root/vipload.py 10.50.0.1 6443 {args.rate} {seconds}", timeout=seconds + 60))
    begun = time.monotonic()
    await asyncio.sleep(fail_at)
    await asyncio.to_thread(ssh, lab, "controller-1", "systemctl stop kube-apiserver")
    await asyncio.sleep(max(0.0, back_at - (time.monotonic() - begun)))
    await asyncio.to_thread(ssh, lab, "controller-1", "systemctl start kube-apiserver")
    output = await client
    line = next((x for x in output.splitlines() if x.startswith("[")), "[]")
    return [(float(t), bool(ok)) for t, ok in json.loads(line)]


def summarise(name: str, results: list[tuple[float, bool]], fail_at: float) -> str:
    """One table row: requests, failed share, time from the failure to the last failure."""
    failed = [t for t, ok in results if not ok]
    share = len(failed) / len(results) if results else 0.0
    last = f"{max(failed) - fail_at:6.2f} s" if failed else "     -  "
    return (f"  {name:<28} {len(results):6d} {len(failed):7d} {share * 100:8.2f}%   "
            f"{last}")


async def with_guard(lab: LabRunner, args: argparse.Namespace,
                     scratch: Path) -> list[tuple[float, bool]]:
    """The episode with ``VipGuard`` (defaults) running against the lab."""
    inventory = load_inventory(lab.lab.inventory_path)
    policy = HostKeyPolicy(record_file=scratch / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False,
                                    audit=AuditLog(scratch / "audit.jsonl")) as fleet:
        guard = VipGuard(inventory, fleet, Credentials.from_pki(lab.lab.pki_directory),
                         GuardSettings())
        task = asyncio.create_task(guard.run())
        await asyncio.sleep(3)  # its first rounds: every backend judged UP
        try:
            return await episode(lab, args)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def with_haproxy(lab: LabRunner, args: argparse.Namespace) -> list[tuple[float, bool]]:
    """The episode with HAProxy on the hypervisor in the forwarder's place."""
    inventory = load_inventory(lab.lab.inventory_path)
    settings = settings_for(str(inventory.api.vip), vip_backends(inventory),
                            ca_file="/root/ca.pem", daemon_user=None)
    root = lab.lab.host_root(HYPERVISOR) / "root"
    (root / "haproxy.cfg").write_text(render_config(settings))
    print(ssh(lab, HYPERVISOR, "haproxy -c -f /root/haproxy.cfg").strip())
    ssh(lab, HYPERVISOR, "systemctl stop ipfw; (setsid haproxy -f /root/haproxy.cfg -db "
                         ">/root/haproxy.log 2>&1 < /dev/null &); sleep 3")
    try:
        return await episode(lab, args)
    finally:
        ssh(lab, HYPERVISOR, "pkill -x haproxy; systemctl start ipfw")


async def main_async(args: argparse.Namespace) -> int:
    reason = namespaces.unavailable()
    if reason is not None:
        print(f"vip_failover: the lab cannot confine hosts here ({reason})")
        return 1
    with tempfile.TemporaryDirectory(prefix="hardway-bench-vip-") as tmp:
        scratch = Path(tmp)
        runner = LabRunner(scratch / "lab", controllers=3, isolation="namespaces",
                           network="127.0.93")
        runner.start()
        try:
            (runner.lab.host_root(HYPERVISOR) / "root" / "vipload.py").write_text(CLIENT)
            fail_at = args.seconds / 6
            rows = [("plain ipfw round robin", await episode(runner, args))]
            rows.append(("hardway vip guard (defaults)",
                         await with_guard(runner, args, scratch)))
            if shutil.which("haproxy", path="/usr/sbin:/usr/bin"):
                rows.append(("HAProxy (rise 2 fall 3 2 s)",
                             await with_haproxy(runner, args)))
            else:
                print("haproxy is not installed: its row is left out")
        finally:
            runner.stop()
    print(f"\nVIP failover, {args.seconds:g} s episodes, {args.rate:g} new HTTPS "
          f"connections/s, controller-1's kube-apiserver down from {fail_at:g} s to "
          f"{args.seconds * 2 / 3:g} s:")
    print(f"  {'':<28} {'sent':>6} {'failed':>7} {'share':>9}   last failure after death")
    for name, results in rows:
        print(summarise(name, results, fail_at))
    guard = rows[1][1]
    guard_failed = [t for t, ok in guard if not ok]
    share = len(guard_failed) / len(guard) if guard else 1.0
    last = max(guard_failed) - fail_at if guard_failed else 0.0
    bound = GuardSettings().fall * GuardSettings().interval + 1
    print(f"\nguard: {share * 100:.2f}% failed (target < 2%), last failure {last:.2f} s "
          f"after the death (target <= fall x interval + 1 s = {bound:g} s): "
          f"{'met' if share < 0.02 and last <= bound else 'NOT met'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="new connections per second")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
