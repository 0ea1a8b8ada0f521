"""The lab's warden: PID 1 of the lab's own user, network, mount and PID namespaces.

Started by the lab process (:mod:`tui.lab.namespaces`) through util-linux ``unshare``::

    unshare --user --map-root-user --net --mount --pid --fork --kill-child --mount-proc \\
        python -P warden.py SPEC.json

It builds the lab's private network -- a bridge ``br0`` in its own network namespace and,
for every host, a network namespace joined to the bridge by a veth pair (``eth0`` inside)
-- then starts each host's init (:mod:`tui.lab.nshost`) inside that namespace, in new
mount, PID and UTS namespaces.  It prints ``ready NAME`` (or ``failed NAME: why``) per
host, then ``up``, and waits: when its standard input closes (the lab stopped, or died),
it exits, and the kernel ends every process of every host with it.  Standard library only.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

MS_NOSUID = 0x2
MS_NODEV = 0x4


def _reap(*_args: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def build_network(hosts: list[dict[str, Any]]) -> None:
    """The bridge, one named network namespace per host, and their veth pairs."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "lab-run", "/run"], check=True)
    os.makedirs("/run/netns", exist_ok=True)
    lines = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
    for index, host in enumerate(hosts):
        name = host["netns"]
        lines += [f"netns add {name}",
                  f"link add vh{index} type veth peer name eth0 netns {name}",
                  f"link set vh{index} master br0", f"link set vh{index} up"]
    result = subprocess.run(["ip", "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"network setup: {result.stderr.strip() or result.stdout.strip()}")


def start_hosts(spec: dict[str, Any]) -> dict[str, subprocess.Popen[str]]:
    """Start every host's init; returns the processes by host name."""
    python, script = spec["python"], spec["nshost"]
    started: dict[str, subprocess.Popen[str]] = {}
    for host in spec["hosts"]:
        argv = ["nsenter", f"--net=/run/netns/{host['netns']}", "--",
                "unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--",
                python, "-P", script, host["spec"]]
        started[host["name"]] = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
    return started


def wait_ready(started: dict[str, subprocess.Popen[str]], timeout: float) -> bool:
    """Relay each host's ``ready`` (or its failure) to the lab; True when all are up."""
    waiting = {proc.stdout.fileno(): (name, proc) for name, proc in started.items()
               if proc.stdout is not None}
    deadline = time.monotonic() + timeout
    ok = True
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            for name, _proc in waiting.values():
                _say(f"failed {name}: not ready after {timeout:g} s")
            return False
        try:
            ready, _w, _x = select.select(list(waiting), [], [], min(left, 1.0))
        except InterruptedError:
            continue
        for fd in ready:
            name, proc = waiting[fd]
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line == "ready":
                _say(f"ready {name}")
            else:
                ok = False
                rest = proc.stdout.read() if not line else ""
                _say(f"failed {name}: {(line or rest).strip() or 'exited'}")
            del waiting[fd]
    return ok


def main(argv: list[str]) -> int:
    """Build the lab from ``argv[1]`` and live until standard input closes."""
    with open(argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    signal.signal(signal.SIGCHLD, _reap)
    try:
        build_network(spec["hosts"])
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        _say(f"error {exc}")
        return 1
    started = start_hosts(spec)
    if not wait_ready(started, float(spec.get("timeout", 30.0))):
        return 1
    _say("up")
    while True:
        try:
            ready, _w, _x = select.select([sys.stdin], [], [], 5.0)
        except InterruptedError:
            continue
        _reap()
        if ready and not sys.stdin.readline():
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
