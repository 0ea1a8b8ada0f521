"""Fan-out benchmark: `hardway run` vs parallel-ssh vs clush on 100 hosts, same run.

One real OpenSSH sshd listens on 127.0.0.1 (tests/support/sshd.py: a light test user
with /bin/sh, MaxStartups raised); 100 host names h000..h099 all reach it:

* clush gets an ssh_config (``Host h*`` -> ``HostName 127.0.0.1``, port, key,
  known_hosts) through ``-o "-F FILE"``;
* hardway gets an inventory of 100 controllers whose ``ssh.host`` is 127.0.0.1 (their
  ``address`` is only exported as INTERNAL_IP);
* parallel-ssh (which reads no ssh_config) gets the address 100 times.

Each tool runs ``true`` on every host as a fresh process with fresh connections; we
time wall clock and client CPU (``RUSAGE_CHILDREN``: the tool and everything it forks)
and take the median of ``--repeat`` runs, interleaving the tools so drift hits all of
them alike.  Then an in-process Fleet broadcasts ``true`` over established connections
to 100 hosts and to 1 host.  See bench/README.md for the targets.

Run with ``make bench`` or ``.venv/bin/python bench/fanout.py [--hosts N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sshd import Sshd, running_sshd, sshd_missing_reason  # noqa: E402

PSSH_SCRIPT = """\
import sys
from pssh.clients import ParallelSSHClient

count, port, user, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
client = ParallelSSHClient(["127.0.0.1"] * count, port=port, user=user, pkey=key,
                           num_retries=1, timeout=30)
output = client.run_command("true", stop_on_errors=False)
client.join(output)
failed = [o for o in output if o.exception is not None or o.exit_code != 0]
for o in failed:
    print(o.host, o.exit_code, o.exception, file=sys.stderr)
sys.exit(1 if failed else 0)
"""


@dataclass
class Timings:
    """Wall and client CPU seconds of repeated runs of one tool."""

    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


@dataclass(frozen=True)
class Setup:
    """Files the tools read, all in one scratch directory."""

    directory: Path
    server: Sshd
    hosts: list[str]
    inventory: Path
    ssh_config: Path
    known_hosts: Path
    env: dict[str, str]


def host_names(count: int) -> list[str]:
    """``h000`` ... for ``count`` hosts."""
    return [f"h{i:03d}" for i in range(count)]


def write_setup(directory: Path, server: Sshd, count: int) -> Setup:
    """Write the known_hosts file, the ssh_config for clush and the hardway inventory."""
    hosts = host_names(count)
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    ssh_config = directory / "ssh_config"
    ssh_config.write_text(
        "Host h*\n"
        f"  HostName {server.address}\n"
        f"  Port {server.port}\n"
        f"  User {server.user}\n"
        f"  IdentityFile {server.client_key_path}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  ControlMaster no\n"
        "  LogLevel ERROR\n"
    )
    empty_config = directory / "empty_ssh_config"
    empty_config.write_text("")
    lines = [
        "[cluster]", 'name = "bench"', 'domain = "bench.test"', "",
        "[networks]", 'nodes = "10.10.0.0/16"', 'pods = "10.100.0.0/16"',
        'services = "10.110.0.0/24"', "",
        "[ssh]", f'user = "{server.user}"', f"port = {server.port}",
        f'identity = "{server.client_key_path}"', f'known_hosts = "{known_hosts}"',
        f'config = "{empty_config}"', "",
    ]
    for index, name in enumerate(hosts):
        lines += [
            "[[controllers]]", f'name = "{name}"',
            f'address = "10.10.{index // 200}.{10 + index % 200}"',
            f'ssh = {{ host = "{server.address}" }}', "",
        ]
    inventory = directory / "inventory.toml"
    inventory.write_text("\n".join(lines))
    env = dict(os.environ)
    env.update({
        "XDG_STATE_HOME": str(directory / "state"),
        "XDG_CONFIG_HOME": str(directory / "config"),
        "HOME": str(directory / "home"),
        "NO_COLOR": "1",
    })
    env.pop("SSH_AUTH_SOCK", None)
    (directory / "home").mkdir(exist_ok=True)
    return Setup(directory, server, hosts, inventory, ssh_config, known_hosts, env)


def commands(setup: Setup) -> dict[str, list[str]]:
    """The command line of each tool, running ``true`` on every host."""
    python = sys.executable
    pssh_script = setup.directory / "pssh_run.py"
    pssh_script.write_text(PSSH_SCRIPT)
    clush = shutil.which("clush", path=str(Path(python).parent)) or "clush"
    count = len(setup.hosts)
    return {
        "hardway": [python, "-m", "tui.cli", "run", "-i", str(setup.inventory), "-b",
                    "--audit", str(setup.directory / "audit.jsonl"), "--", "true"],
        "parallel-ssh": [python, str(pssh_script), str(count), str(setup.server.port),
                         setup.server.user, str(setup.server.client_key_path)],
        "clush": [clush, "-w", f"h[000-{count - 1:03d}]", "-b", "-S",
                  "-o", f"-F {setup.ssh_config}", "true"],
    }


def time_child(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` to completion; return (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True,
                            check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed with status {result.returncode}: "
                         f"{' '.join(argv)}\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def bench_tools(setup: Setup, repeat: int) -> dict[str, Timings]:
    """Time every tool ``repeat`` times (after one untimed warm-up), interleaved."""
    argvs = commands(setup)
    timings = {name: Timings(name) for name in argvs}
    for argv in argvs.values():
        time_child(argv, setup.env)
    for _ in range(repeat):
        for name, argv in argvs.items():
            wall, cpu = time_child(argv, setup.env)
            timings[name].wall.append(wall)
            timings[name].cpu.append(cpu)
    return timings


@dataclass(frozen=True)
class Broadcast:
    """Medians of one ``true`` broadcast over established connections.

    Attributes:
        many, one: wall seconds to all hosts / to one host through the Fleet.
        many_cpu, one_cpu: client CPU seconds of the same.
        raw_many, raw_one: wall seconds with bare asyncssh ``conn.run`` on the same
            connections (no exports, no kill wrapper): the floor the Fleet adds to.
    """

    many: float
    one: float
    many_cpu: float
    one_cpu: float
    raw_many: float
    raw_one: float


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bench_broadcast(setup: Setup, repeat: int) -> Broadcast:
    """Time ``true`` over established connections to every host and to one host."""
    from tui.core.fleet.fleet import Fleet
    from tui.core.fleet.hostkeys import HostKeyPolicy
    from tui.core.inventory.load import load_inventory

    os.environ["XDG_STATE_HOME"] = setup.env["XDG_STATE_HOME"]
    inventory = load_inventory(setup.inventory)
    policy = HostKeyPolicy(known_hosts=[setup.known_hosts], user_files=False)
    names = [host.name for host in inventory.hosts]
    async with Fleet.from_inventory(inventory, host_keys=policy) as fleet:
        await fleet.connect()
        down = [name for name in names if fleet.state(name).value != "ready"]
        if down:
            raise SystemExit(f"broadcast: {len(down)} hosts did not connect, e.g. "
                             f"{down[0]}: {fleet.reason(down[0])}")

        async def through_fleet(selection: list[str]) -> tuple[float, float]:
            cpu, start = _cpu_self(), time.perf_counter()
            results = await fleet.run(selection, "true")
            elapsed, used = time.perf_counter() - start, _cpu_self() - cpu
            bad = [r for r in results.values() if r.status != 0]
            if bad:
                raise SystemExit(f"broadcast: `true` failed on {bad[0].host}: {bad[0]}")
            return elapsed, used

        async def bare(selection: list[str]) -> float:
            connections = [fleet.connection(name) for name in selection]
            start = time.perf_counter()
            results = await asyncio.gather(*(c.run("true") for c in connections if c))
            elapsed = time.perf_counter() - start
            if len(results) != len(selection) or any(r.exit_status != 0 for r in results):
                raise SystemExit("broadcast: bare asyncssh `true` failed")
            return elapsed

        await through_fleet(names)  # warm-up: first channel on each connection
        await bare(names)
        many: list[tuple[float, float]] = []
        one: list[tuple[float, float]] = []
        raw_many: list[float] = []
        raw_one: list[float] = []
        for _ in range(repeat):
            many.append(await through_fleet(names))
            one.append(await through_fleet(names[:1]))
            raw_many.append(await bare(names))
            raw_one.append(await bare(names[:1]))
    med = statistics.median
    return Broadcast(
        many=med(w for w, _ in many), one=med(w for w, _ in one),
        many_cpu=med(c for _, c in many), one_cpu=med(c for _, c in one),
        raw_many=med(raw_many), raw_one=med(raw_one),
    )


def verdict(ok: bool) -> str:
    return "target met" if ok else "TARGET MISSED"


def report(count: int, repeat: int, timings: dict[str, Timings],
           broadcast: Broadcast, out: Callable[[str], None] = print) -> None:
    """Print the medians, the ratios and whether each target is met."""
    out(f"fan-out of `true` to {count} hosts (one OpenSSH sshd on loopback), "
        f"median of {repeat} runs, fresh processes and connections:")
    out(f"  {'tool':<14}{'wall s':>9}{'client CPU s':>15}")
    for item in timings.values():
        out(f"  {item.name:<14}{item.wall_median:>9.3f}{item.cpu_median:>15.3f}")
    hw, pssh, clush = timings["hardway"], timings["parallel-ssh"], timings["clush"]
    wall_pssh = hw.wall_median / pssh.wall_median
    wall_clush = hw.wall_median / clush.wall_median
    cpu_pssh = hw.cpu_median / pssh.cpu_median
    cpu_clush = hw.cpu_median / clush.cpu_median
    out("ratios (hardway / peer; below 1 means hardway is cheaper):")
    out(f"  wall  hardway/parallel-ssh {wall_pssh:6.2f}   {verdict(wall_pssh < 1)}")
    out(f"  wall  hardway/clush        {wall_clush:6.2f}   {verdict(wall_clush < 1)}")
    out(f"  CPU   hardway/parallel-ssh {cpu_pssh:6.2f}   {verdict(cpu_pssh <= 1.5)} "
        "(target <= 1.5)")
    out(f"  CPU   hardway/clush        {cpu_clush:6.2f}")
    b = broadcast
    ratio = b.many / b.one
    out(f"broadcast of `true` over established connections (in-process Fleet), "
        f"median of {repeat}:")
    out(f"  {count} hosts {b.many:.3f} s (client CPU {b.many_cpu:.3f} s), "
        f"1 host {b.one:.3f} s (client CPU {b.one_cpu:.3f} s)")
    out(f"  ratio {count} hosts / 1 host {ratio:6.2f}   {verdict(ratio <= 2)} (target <= 2)")
    out(f"  bare asyncssh conn.run on the same connections: {count} hosts {b.raw_many:.3f} s, "
        f"1 host {b.raw_one:.3f} s (ratio {b.raw_many / b.raw_one:.2f})")


def main(argv: list[str] | None = None) -> int:
    """Parse options, start sshd, run the benchmark, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100, help="number of host names (100)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per tool (5)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    reason = sshd_missing_reason()
    if reason:
        print(f"bench/fanout.py: {reason}", file=sys.stderr)
        return 2
    directory = Path(tempfile.mkdtemp(prefix="hardway-bench-"))
    directory.chmod(0o755)
    try:
        with running_sshd(directory / "sshd", log_level="ERROR") as server:
            setup = write_setup(directory, server, args.hosts)
            timings = bench_tools(setup, args.repeat)
            broadcast = asyncio.run(bench_broadcast(setup, args.repeat))
        report(args.hosts, args.repeat, timings, broadcast)
    finally:
        if args.keep:
            print(f"scratch directory kept: {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
