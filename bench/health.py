"""Health benchmark: the poller's CPU share with 100 hosts x every per-host probe every 2 s.

A child process plays the cluster, so its CPU is not counted: 100 lab hosts (real
asyncssh servers from :mod:`tui.lab`, one address each on 127.0.B.x) and on every
address HTTPS services like a controller's -- kube-apiserver :6443 (/livez,
/readyz?verbose with the 1.18 check list), etcd :2379 (client certificate required;
/health, the v3 gateway's maintenance/status and cluster/member/list), scheduler
:10259, controller-manager :10257 -- plus plain HTTP :80 (the nginx health proxy), all
with certificates from :mod:`tui.core.pki`, and a real BIND (``named``) answering every
host's record.  The benchmark's own process builds the probes from the inventory exactly
as ``hardway health`` does (SSH keepalive round trips over the Fleet, the HTTPS client
with kept-alive connections, served-certificate checks, DNS over TCP) and runs the
poller with its default interval for ``--seconds``.

It prints the poller's CPU share over the measured window (after the first round, which
opens every connection: its cost is printed too), rounds, round durations, probe
results and connections opened.  Target: under 25% of one core.

Then the first full grid on a 3-controller lab (target: within 1 s of opening), median of
``--grid-runs``: on the confined lab where Linux allows it (what ``hardway demo``
runs: healthy scenario, hosts reached through the hypervisor's SSH, the lab in this
process as in the demo), ``ctrl+g h`` pressed in the real app (headless, 200x50, a fresh
app each run) until every cell shows a result, with the time to the first painted result
and to the first round's end; and the engine alone (a fresh fleet and session: SSH
connections included).  ``--no-lab`` skips it.

Run: ``.venv/bin/python bench/health.py [--hosts 100] [--seconds 60] [--interval 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

READYZ = ["ping", "log", "etcd", "poststarthook/start-kube-apiserver-admission-initializer",
          "poststarthook/generic-apiserver-start-informers",
          "poststarthook/start-apiextensions-informers",
          "poststarthook/start-apiextensions-controllers", "poststarthook/crd-informer-synced",
          "poststarthook/bootstrap-controller", "poststarthook/rbac/bootstrap-roles",
          "poststarthook/scheduling/bootstrap-system-priority-classes",
          "poststarthook/start-cluster-authentication-info-controller",
          "poststarthook/start-kube-aggregator-informers",
          "poststarthook/apiservice-registration-controller",
          "poststarthook/apiservice-status-available-controller",
          "poststarthook/kube-apiserver-autoregistration", "autoregister-completion",
          "poststarthook/apiservice-openapi-controller", "shutdown"]


# -- the cluster (child process) ------------------------------------------------------------

def inventory_text(lab_inventory: Path, dns_port: int, zone: str) -> str:
    """The lab's inventory with every host as a controller and a DNS server."""
    text = lab_inventory.read_text().replace("[[workers]]", "[[controllers]]")
    head, _, rest = text.partition("[ssh]")
    dns = (f'[dns]\nserver = "127.0.0.1"\nport = {dns_port}\nzone = "{zone}"\n'
           'mode = "zonefile"\nzone_file = "/etc/bind/zone"\n\n')
    return head + dns + "[ssh]" + rest


def answer(path: str, method: str, members: bytes, status: bytes) -> tuple[int, bytes]:
    """What the stand-in services answer (kube-apiserver, etcd, scheduler, nginx)."""
    if path.startswith("/readyz") or path.startswith("/livez"):
        if "verbose" in path:
            lines = [f"[+]{name} ok" for name in READYZ] + ["healthz check passed"]
            return 200, ("\n".join(lines) + "\n").encode()
        return 200, b"ok"
    if path == "/healthz":
        return 200, b"ok"
    if path == "/health":
        return 200, b'{"health":"true","reason":""}'
    if path == "/v3/maintenance/status" and method == "POST":
        return 200, status
    if path == "/v3/cluster/member/list" and method == "POST":
        return 200, members
    return 404, b"404 page not found\n"


async def serve_cluster(directory: Path, hosts: int, network: str) -> None:
    """Start the lab hosts, the HTTP(S) services and named; write DIR/ready; wait."""
    from tui.core.inventory.load import load_inventory
    from tui.core.pki.ca import CertificateAuthority
    from tui.core.pki.profiles import profile_named, write_pair
    from tui.lab.lab import Lab

    lab = Lab(directory / "lab", controllers=1, workers=hosts - 1, network=network,
              services=False)
    await lab.start()
    dns_port = _free_port()
    inventory_path = directory / "inventory.toml"
    zone = load_inventory(lab.inventory_path).domain
    inventory_path.write_text(inventory_text(lab.inventory_path, dns_port, zone))
    inventory = load_inventory(inventory_path)
    pki = directory / "pki"
    ca = CertificateAuthority.create(pki, key_type="ecdsa")
    write_pair(pki, "kubernetes", ca.issue(profile_named(inventory, "kubernetes"),
                                           key_type="ecdsa"))
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    plain.load_cert_chain(pki / "kubernetes.pem", pki / "kubernetes-key.pem")
    mutual = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    mutual.load_cert_chain(pki / "kubernetes.pem", pki / "kubernetes-key.pem")
    mutual.load_verify_locations(pki / "ca.pem")
    mutual.verify_mode = ssl.CERT_REQUIRED
    members = json.dumps({"header": {"cluster_id": "1", "member_id": "1"}, "members": [
        {"ID": str(i + 1), "name": h.name, "peerURLs": [f"https://{h.address}:2380"],
         "clientURLs": [f"https://{h.address}:2379"]}
        for i, h in enumerate(inventory.controllers)]}).encode()
    status = json.dumps({"header": {"cluster_id": "1", "member_id": "1", "raft_term": "2"},
                         "version": "3.4.10", "dbSize": "20480", "leader": "1",
                         "raftIndex": "99", "raftTerm": "2"}).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, *lines = head.decode("latin-1").split("\r\n")
                method, target, _version = first.split(" ")
                length = 0
                for line in lines:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                if length:
                    await reader.readexactly(length)
                code, body = answer(target, method, members, status)
                writer.write(f"HTTP/1.1 {code} OK\r\nContent-Type: text/plain\r\n"
                             f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()

    servers = []
    for host in inventory.controllers:
        address = str(host.address)
        for port, context in ((6443, plain), (2379, mutual), (10259, plain), (10257, plain),
                              (80, None)):
            servers.append(await asyncio.start_server(handle, address, port, ssl=context,
                                                      backlog=256))
    named = start_named(directory, inventory, dns_port)
    (directory / "ready").write_text(str(inventory_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent went away
    await stop.wait()
    named.terminate()
    named.wait(10)
    for server in servers:
        server.close()
    await lab.stop()


def start_named(directory: Path, inventory: object, port: int) -> subprocess.Popen[bytes]:
    """BIND for the inventory's domain with every host's A record."""
    from tui.core.inventory.model import Inventory

    assert isinstance(inventory, Inventory)
    zone_dir = directory / "named"
    zone_dir.mkdir()
    records = "\n".join(f"{h.name} IN A {h.address}" for h in inventory.hosts)
    (zone_dir / "zone").write_text("$TTL 60\n@ IN SOA ns admin ( 1 60 60 600 60 )\n"
                                   f"@ IN NS ns\nns IN A 127.0.0.1\n{records}\n")
    (zone_dir / "named.conf").write_text(
        f'options {{ directory "{zone_dir}"; pid-file none; listen-on port {port} '
        '{ 127.0.0.1; }; listen-on-v6 { none; }; recursion no; dnssec-validation no; '
        f'notify no; }};\ncontrols {{ }};\nzone "{inventory.domain}" {{ type master; '
        f'file "{zone_dir}/zone"; }};\n')
    log = open(zone_dir / "named.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([shutil.which("named") or "/usr/sbin/named", "-g", "-c",
                             str(zone_dir / "named.conf")], stdout=log, stderr=log)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the poller (this process) --------------------------------------------------------------

def cpu() -> float:
    """CPU seconds of this process (every thread), user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(inventory_path: Path, seconds: float, interval: float) -> dict[str, object]:
    """Run the poller on the cluster and measure it."""
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import HostKeyPolicy
    from tui.core.health.catalog import Credentials, ProbeOptions
    from tui.core.health.model import Kind
    from tui.core.health.poller import ProbeUpdated, RoundFinished
    from tui.core.health.session import HealthSession
    from tui.core.inventory.load import load_inventory

    inventory = load_inventory(inventory_path)
    policy = HostKeyPolicy(mode="strict", record_file=inventory_path.parent / "record",
                           user_files=False)
    fleet = Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False)
    per_host = frozenset(k for k in Kind if k.group.value not in {"vip", "vip-rules"}
                         and k is not Kind.DNS_API)
    session = HealthSession.open(inventory, fleet,
                                 Credentials.from_pki(inventory_path.parent / "pki"),
                                 ProbeOptions(kinds=per_host), interval=interval)
    poller, client = session.poller, session.client
    probes = list(poller.cells)
    results = {"ok": 0, "warn": 0, "fail": 0}
    failures: dict[str, str] = {}
    durations: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, ProbeUpdated) and event.cell.outcome is not None:
            results[event.cell.outcome.status.value] += 1
            if event.cell.outcome.status.value == "fail":
                failures.setdefault(event.cell.kind.value, event.cell.outcome.detail)
        elif isinstance(event, RoundFinished):
            durations.append(event.report.duration)

    poller.subscribe(on_event)
    cpu0, wall0 = cpu(), time.monotonic()
    first = await poller.run_round(wait_all=True)
    first_cpu, first_wall = cpu() - cpu0, time.monotonic() - wall0
    opened_after_first = client.opened
    await asyncio.sleep(interval)
    counts_before = dict(results)
    cpu1, wall1, round1 = cpu(), time.monotonic(), poller.round
    task = poller.start()
    await asyncio.sleep(seconds)
    cpu2, wall2, round2 = cpu(), time.monotonic(), poller.round
    del task
    await session.close()
    await fleet.close()
    steady = {k: results[k] - counts_before[k] for k in results}
    return {
        "hosts": len(inventory.controllers), "probes": len(probes),
        "probes_per_host": len(probes) // max(1, len(inventory.controllers)),
        "interval_s": interval,
        "first_round": {"wall_s": round(first_wall, 3), "cpu_s": round(first_cpu, 3),
                        "verdict": first.verdict.value,
                        "connections_opened": opened_after_first},
        "steady": {"wall_s": round(wall2 - wall1, 2), "cpu_s": round(cpu2 - cpu1, 3),
                   "cpu_share_of_one_core": round((cpu2 - cpu1) / (wall2 - wall1), 4),
                   "rounds": round2 - round1,
                   "round_ms_median": round(statistics.median(durations[1:]) * 1000, 1)
                   if len(durations) > 1 else None,
                   "round_ms_max": round(max(durations[1:]) * 1000, 1)
                   if len(durations) > 1 else None,
                   "results": steady,
                   "connections_opened": client.opened - opened_after_first},
        "failures": failures,
    }


async def engine_first_round(directory: Path, inventory_path: Path,
                             pki: Path) -> tuple[float, object]:
    """Seconds from nothing (no SSH connection) to the engine's first full round."""
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import HostKeyPolicy
    from tui.core.health.catalog import Credentials
    from tui.core.health.session import HealthSession
    from tui.core.inventory.load import load_inventory

    inventory = load_inventory(inventory_path)
    started = time.monotonic()
    policy = HostKeyPolicy(mode="strict", record_file=directory / "record", user_files=False)
    fleet = Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False)
    session = HealthSession.open(inventory, fleet, Credentials.from_pki(pki))
    report = await session.poller.run_round(wait_all=True)
    elapsed = time.monotonic() - started
    await session.close()
    await fleet.close()
    return elapsed, report


async def screen_first_grid(directory: Path, inventory_path: Path) -> dict[str, float]:
    """``ctrl+g h`` in a fresh app (headless) until every cell of the grid shows a result.

    The times are taken where they happen (the engine's events; the grid's cell updates),
    not by polling, since the pilot's key press returns only once the app is idle.
    """
    from tui.app import create_app
    from tui.core.health.poller import ProbeUpdated, RoundFinished
    from tui.core.inventory.load import load_inventory
    from tui.core.workbench import Workbench
    from tui.widgets.health_grid import HealthGrid

    workbench = Workbench(load_inventory(inventory_path), audit_path=directory / "audit.jsonl",
                          user_ssh_files=False)  # the console's shells in the relay, as in the demo
    marks: dict[str, float] = {}
    started = 0.0

    def mark(name: str) -> None:
        marks.setdefault(name, time.monotonic() - started)

    def on_event(event: object) -> None:
        if isinstance(event, ProbeUpdated):
            mark("first_result")
        elif isinstance(event, RoundFinished):
            mark("round_end")

    def painted(grid: HealthGrid) -> None:
        texts = [str(grid.get_cell(c.probe.row, c.probe.kind.value).plain)
                 for c in grid.cells.values()]
        if any(t != "…" for t in texts):
            mark("first_paint")
        if texts and all(t != "…" for t in texts):
            mark("full_grid")

    build, refresh = HealthGrid.build, HealthGrid.refresh_cells

    def build_and_mark(grid: HealthGrid, cells: Any) -> None:
        build(grid, cells)
        painted(grid)

    def refresh_and_mark(grid: HealthGrid, cells: Any) -> None:
        refresh(grid, cells)
        painted(grid)

    HealthGrid.build = build_and_mark  # type: ignore[method-assign]
    HealthGrid.refresh_cells = refresh_and_mark  # type: ignore[method-assign]
    unsubscribe = workbench.health.subscribe(on_event)
    try:
        app = create_app(workbench, confirm_quit=False)
        async with app.run_test(size=(200, 50)) as pilot:
            hosts = [h.name for h in workbench.inventory.hosts]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # the console connected, as a user finds it
                console = workbench._console
                if console is not None and all(console.shell(h) is not None for h in hosts):
                    break
                await asyncio.sleep(0.05)
            await pilot.pause(0.5)
            started = time.monotonic()
            await pilot.press("ctrl+g", "h")
            while "full_grid" not in marks and time.monotonic() - started < 30:
                await asyncio.sleep(0.02)
    finally:
        HealthGrid.build, HealthGrid.refresh_cells = build, refresh  # type: ignore[method-assign]
        unsubscribe()
    return {k: round(v, 3) for k, v in marks.items()}


def first_grid_on_lab(runner_dir: Path, network: str, runs: int) -> dict[str, object]:
    """The first full grid on a 3-controller lab, screen and engine (median of ``runs``)."""
    from tui.lab import namespaces
    from tui.lab.lab import LabRunner

    isolation = "namespaces" if namespaces.unavailable() is None else "none"
    with LabRunner(runner_dir, controllers=3, network=network, isolation=isolation) as runner:
        inventory, pki = runner.lab.inventory_path, runner.lab.pki_directory
        time.sleep(3.0)  # etcd elects, the stand-ins dial it
        engine = []
        report: object = None
        for _ in range(runs):
            seconds, report = asyncio.run(engine_first_round(runner_dir, inventory, pki))
            engine.append(seconds)
        screens = [asyncio.run(screen_first_grid(runner_dir, inventory)) for _ in range(runs)]
    cells = getattr(report, "cells", ())
    up = sorted({c.kind.value for c in cells if c.state.value == "up"})

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3) if values else float("nan")

    return {"isolation": isolation, "runs": runs, "probes": len(cells),
            "answered": sum(1 for c in cells if c.outcome is not None), "up_kinds": up,
            "engine_s": median(engine), "engine_all": [round(x, 3) for x in engine],
            **{f"screen_{k}_s": median([r[k] for r in screens if k in r])
               for k in ("first_result", "first_paint", "round_end", "full_grid")},
            "screen_full_grid_all": [r.get("full_grid") for r in screens]}


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--network", default="127.0.231",
                        help="first three octets of the loopback /24 of the hosts")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--no-lab", action="store_true",
                        help="skip the first-grid timing on a 3-controller lab")
    parser.add_argument("--grid-runs", type=int, default=5, metavar="N",
                        help="first-grid timings on the lab (the median is printed)")
    parser.add_argument("--grid-only", action="store_true",
                        help="only the first-grid timing on the lab (no 100-host cluster)")
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_cluster(Path(args.serve), args.hosts, args.network))
        return 0
    if args.grid_only:
        with tempfile.TemporaryDirectory(prefix="hardway-bench-grid-") as tmp:
            lab = first_grid_on_lab(Path(tmp) / "lab3", args.network.rpartition(".")[0]
                                    + ".232", args.grid_runs)
        print(json.dumps(lab, indent=2) if args.json else _lab_line(lab))
        return 0
    if shutil.which("named") is None:
        print("bench/health.py needs BIND's named (scripts/install-test-deps.sh)",
              file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="hardway-bench-health-"))
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(directory), "--hosts",
                              str(args.hosts), "--network", args.network],
                             stdin=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.monotonic() + 120
        while not (directory / "ready").exists():
            if child.poll() is not None or time.monotonic() > deadline:
                print("the cluster process did not start", file=sys.stderr)
                return 2
            time.sleep(0.1)
        result = asyncio.run(measure(Path((directory / "ready").read_text()), args.seconds,
                                     args.interval))
        if not args.no_lab:
            result["lab_first_grid"] = first_grid_on_lab(
                directory / "lab3", args.network.rpartition(".")[0] + ".232", args.grid_runs)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        steady = result["steady"]
        first = result["first_round"]
        assert isinstance(steady, dict) and isinstance(first, dict)
        share = float(steady["cpu_share_of_one_core"])
        print(f"health poller: {result['hosts']} hosts x {result['probes_per_host']} probes "
              f"every {args.interval:g} s ({result['probes']} probes)")
        print(f"  first round (opens every connection): {first['wall_s']} s wall, "
              f"{first['cpu_s']} s CPU, {first['connections_opened']} HTTP(S) connections, "
              f"verdict {first['verdict']}")
        print(f"  steady: {steady['rounds']} rounds in {steady['wall_s']} s, round median "
              f"{steady['round_ms_median']} ms (max {steady['round_ms_max']} ms), results "
              f"{steady['results']}, new connections {steady['connections_opened']}")
        verdict = "OK" if share < 0.25 else "OVER TARGET"
        print(f"  poller CPU: {steady['cpu_s']} s over {steady['wall_s']} s = "
              f"{share:.1%} of one core (target < 25%: {verdict})")
        if result["failures"]:
            print(f"  failures: {result['failures']}")
        lab = result.get("lab_first_grid")
        if isinstance(lab, dict):
            print(_lab_line(lab))
    return 0


def _lab_line(lab: dict[str, object]) -> str:
    up = lab["up_kinds"]
    assert isinstance(up, list)
    verdict = "OK" if float(str(lab["screen_full_grid_s"])) < 1.0 else "OVER TARGET"
    return (f"  3-controller lab ({lab['isolation']}), median of {lab['runs']}: the health "
            f"screen's full grid {lab['screen_full_grid_s']} s after ctrl+g h (first result "
            f"{lab['screen_first_result_s']} s, first painted {lab['screen_first_paint_s']} s, "
            f"round end {lab['screen_round_end_s']} s; target < 1 s: {verdict}); the engine "
            f"alone, SSH connections included: {lab['engine_s']} s "
            f"({lab['answered']}/{lab['probes']} probes answered; UP: {', '.join(up)})\n"
            f"  all full-grid runs: {lab['screen_full_grid_all']}; engine: {lab['engine_all']}")


if __name__ == "__main__":
    raise SystemExit(main())
