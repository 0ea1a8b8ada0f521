"""How long the lab takes to come up: confined hosts against the unconfined fallback.

Each round starts a fresh lab in a fresh directory in this process (``LabRunner``), from
nothing to "every host accepts SSH and its services are up" (``Lab.start`` returns only
then), then stops it and checks that no process of it is left.  Rounds alternate
between the confined lab (``--isolation namespaces``: the warden, one network, mount,
PID and UTS namespace per host, the hypervisor) and the unconfined one on loopback, so
the ratio compares like with like on the same machine in the same run.  The target
(issue 10) is under 5 s for 3 controllers + the hypervisor.

    .venv/bin/python bench/lab_start.py                    # 3 controllers, median of 5
    .venv/bin/python bench/lab_start.py --controllers 30 --repeat 3 --scenario certs-pushed
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.lab import namespaces
from tui.lab.lab import LabRunner


def one_start(directory: Path, isolation: str, args: argparse.Namespace,
              network: str) -> tuple[float, float]:
    """(seconds to start, seconds to stop) of one fresh lab."""
    began = time.perf_counter()
    runner = LabRunner(directory, controllers=args.controllers, workers=args.workers,
                       isolation=isolation, scenario=args.scenario, network=network)
    runner.start(timeout=120)
    started = time.perf_counter()
    runner.stop()
    stopped = time.perf_counter()
    leftovers = [pid for pid in _pids_naming(directory)]
    if leftovers:
        raise SystemExit(f"processes left behind by the {isolation} lab: {leftovers}")
    return started - began, stopped - started


def _pids_naming(directory: Path) -> list[int]:
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controllers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", default="healthy")
    args = parser.parse_args()
    reason = namespaces.unavailable()
    if reason is not None:
        print(f"lab_start: no namespaces here ({reason}); nothing to compare")
        return 1
    times: dict[str, list[float]] = {"namespaces": [], "none": []}
    stops: dict[str, list[float]] = {"namespaces": [], "none": []}
    with tempfile.TemporaryDirectory(prefix="hardway-bench-lab-") as scratch:
        one_start(Path(scratch) / "warm", "namespaces", args, "127.0.91")  # caches, imports
        for index in range(args.repeat):
            for isolation in ("namespaces", "none"):
                start, stop = one_start(Path(scratch) / f"{isolation}-{index}", isolation,
                                        args, "127.0.92")
                times[isolation].append(start)
                stops[isolation].append(stop)
    confined = statistics.median(times["namespaces"])
    plain = statistics.median(times["none"])
    hosts = f"{args.controllers} controllers" + (f" + {args.workers} workers"
                                                  if args.workers else "")
    print(f"lab start, {hosts}, scenario {args.scenario}, median of {args.repeat}:")
    print(f"  confined (+ hypervisor)   start {confined:6.2f} s   "
          f"stop {statistics.median(stops['namespaces']):5.2f} s")
    print(f"  unconfined (loopback)     start {plain:6.2f} s   "
          f"stop {statistics.median(stops['none']):5.2f} s")
    print(f"  ratio confined/unconfined {confined / plain:6.2f}x   "
          f"target: confined under 5 s -> {'met' if confined < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
