"""`hardway lab up`: run the embedded lab in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, TextIO

LAB_HELP = """\
The embedded lab: Kubernetes-the-hard-way hosts without VMs, a place you can break
without harm.

Confined (the default where Linux allows unprivileged namespaces): every host has its
own mount, PID, UTS and network namespaces inside a user namespace the lab owns. Its
/etc, /var, /opt and /usr/local are overlays whose writes land in DIR/hosts/NAME; /root,
/home, /tmp and /run are its own; /usr is the machine's, read-only. The hosts live on a
private network that exists only inside the lab: controllers at 10.10.0.10, .11, ...,
workers at 10.10.0.20, ..., the hypervisor `nucklehead` at 10.10.0.1 holding the API
VIP 10.50.0.1. You log in as root (sudo works) and type KTHW's commands verbatim. The
way in is the hypervisor, the jump host: its SSH server also listens on NETWORK.1:PORT
(127.0.10.1:2222), and the lab's inventory and ssh_config go through it (ProxyJump).

Not confined (--isolation none, or where namespaces are unavailable, which the lab
says in one line): each host is an SSH server on its own loopback address (NETWORK.10+i,
port PORT) running commands as you, on this machine, under DIR/hosts/NAME.

Either way the lab writes an inventory, a client key, a known_hosts file and an
OpenSSH client config into DIR, and nothing outside it. At most 100 hosts in all
(controllers + workers).
"""

UP_HELP = LAB_HELP + """
Each host has a `systemctl` and `journalctl` backed by the lab's service supervisor.
The lab also writes a Kubernetes-the-hard-way cluster: a CA and the KTHW certificates
in DIR/pki (the default --pki of `hardway certs`), each host's certificates, and on
every controller an enabled kube-apiserver unit running the lab's stand-in (HTTPS
/healthz /livez /readyz /version on :6443). --scenario starts it broken on
purpose; --no-services gives bare hosts.

`lab up` starts the lab and keeps it running in the foreground; Ctrl-C (or SIGTERM)
stops every host and every process started on them.

scenarios:
{scenarios}

examples:
  hardway lab up
  hardway lab up --controllers 5 --workers 2 --dir /tmp/lab
  hardway lab up --network 127.0.11     # a second lab beside the default one
  hardway lab up --scenario seed-cert-bug
  hardway lab up --isolation none       # unconfined hosts on loopback addresses

then, in another terminal:
  ssh -F DIR/ssh_config controller-0
  hardway run -i DIR/inventory.toml -b -- 'echo $ETCD_NAME; uname -s'
"""


def default_lab_dir() -> Path:
    """``$XDG_RUNTIME_DIR/hardway-lab``, else ``/tmp/hardway-lab-$USER``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "hardway-lab"
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = os.environ.get("USER") or str(os.getuid())
    return Path("/tmp") / f"hardway-lab-{user}"


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add the ``lab`` subcommand and its ``up`` action."""
    lab = sub.add_parser("lab", help="run the embedded lab (SSH hosts on loopback)",
                         description=LAB_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    from tui.lab import scenarios

    up = actions.add_parser("up", help="start the lab in the foreground (Ctrl-C stops it)",
                            description=UP_HELP.format(scenarios=scenarios.describe()),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--controllers", type=int, default=3, metavar="N",
                    help="number of controllers, at NETWORK.10+i (default 3)")
    up.add_argument("--workers", type=int, default=0, metavar="N",
                    help="number of workers, at NETWORK.20+i (default 0)")
    up.add_argument("--dir", type=Path, default=None, metavar="DIR",
                    help="lab directory: keys, configs, inventory and host roots (default "
                         f"{default_lab_dir()}); reused, with the same keys, next time")
    up.add_argument("--network", default="127.0.10", metavar="A.B.C",
                    help="first three octets of the loopback /24 the hosts live in "
                         "(default 127.0.10)")
    up.add_argument("--port", type=int, default=2222,
                    help="SSH port of every lab host (default 2222)")
    add_scenario_options(up)
    up.set_defaults(handler=lab_up)
    for name, helptext, handler in (
            ("status", "is a lab running in DIR (started in another terminal)? its hosts",
             lab_status),
            ("down", "stop the lab running in DIR (started in another terminal)", lab_down)):
        action = actions.add_parser(name, help=helptext, description=helptext[0].upper()
                                    + helptext[1:] + ". Exit status 0 when a lab runs there "
                                    "(status) or was stopped (down), 3 when none runs.")
        action.add_argument("--dir", type=Path, default=None, metavar="DIR",
                            help=f"lab directory (default {default_lab_dir()})")
        action.set_defaults(handler=handler)
    lab.set_defaults(handler=lambda _args: _usage(lab))


def add_scenario_options(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--scenario NAME``, ``--no-services`` and ``--isolation`` (``lab up`` and ``demo``)."""
    from tui.lab import scenarios

    chosen = default or scenarios.DEFAULT
    parser.add_argument("--scenario", default=chosen, metavar="NAME",
                        help="the state the lab cluster starts in: "
                             f"{', '.join(scenarios.names())} (default {chosen})")
    parser.add_argument("--no-services", dest="services", action="store_false",
                        help="bare hosts: no PKI, no kube-apiserver (systemctl still works)")
    parser.add_argument("--isolation", choices=("auto", "namespaces", "none"), default="auto",
                        help="confine each host in its own namespaces on a private network "
                             "(namespaces), run them unconfined on loopback (none), or "
                             "confine where the system allows it (auto, the default)")


NOT_RUNNING = 3


def lab_status(args: argparse.Namespace) -> int:
    """Say whether a lab runs in DIR, and what it holds."""
    from tui.core.inventory.load import load_inventory
    from tui.lab.lab import running_pid

    directory = args.dir if args.dir is not None else default_lab_dir()
    pid = running_pid(directory)
    if pid is None:
        print(f"hardway lab: no lab is running in {directory}.")
        return NOT_RUNNING
    print(f"hardway lab: running in {directory} (pid {pid}).")
    inventory_path = directory / "inventory.toml"
    if inventory_path.exists():
        inventory = load_inventory(inventory_path)
        for host in inventory.hosts:
            print(f"  {host.name:<14} {host.role:<10} {host.address}")
        if inventory.hypervisor is not None:
            hv = inventory.hypervisor
            jump = " (jump host)" if inventory.ssh.jump == hv.name else ""
            print(f"  {hv.name:<14} {'hypervisor':<10} {hv.address}:{hv.ssh.port}{jump}")
        print(f"  inventory: {inventory_path}")
    return 0


def lab_down(args: argparse.Namespace) -> int:
    """SIGTERM the process running the lab in DIR and wait until it has stopped."""
    import time

    from tui.lab.lab import running_pid

    directory = args.dir if args.dir is not None else default_lab_dir()
    pid = running_pid(directory)
    if pid is None or pid <= 0:
        print(f"hardway lab: no lab is running in {directory}.")
        return NOT_RUNNING
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"hardway lab: no lab is running in {directory}.")
        return NOT_RUNNING
    except PermissionError:
        print(f"hardway lab: the lab in {directory} belongs to another user (pid {pid}).",
              file=sys.stderr)
        return 1
    deadline = time.monotonic() + 30
    while running_pid(directory) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(directory) is not None:
        print(f"hardway lab: the lab in {directory} (pid {pid}) did not stop within 30 s.",
              file=sys.stderr)
        return 1
    print(f"hardway lab: stopped the lab in {directory}; every lab process has ended.")
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def lab_up(args: argparse.Namespace) -> int:
    """Start the lab, print how to use it, wait for Ctrl-C or SIGTERM, stop it."""
    from tui.lab.lab import Lab

    directory = args.dir if args.dir is not None else default_lab_dir()
    lab = Lab(directory, controllers=args.controllers, workers=args.workers,
              network=args.network, port=args.port, services=args.services,
              scenario=args.scenario, isolation=args.isolation)
    return asyncio.run(_serve(lab, sys.stdout))


async def _serve(lab: Any, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    try:
        await lab.start()
        try:
            print(describe(lab), file=out, flush=True)
            await stop.wait()
        finally:
            await lab.stop()
        print("hardway lab: stopped; every lab process has ended.", file=out, flush=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    return 0


def describe(lab: Any) -> str:
    """What the lab started and how to use it (printed by ``lab up``)."""
    directory = lab.directory
    q = shlex.quote
    hosts = lab.hosts
    controllers = sum(1 for h in hosts if h.role == "controller")
    hosts_only = [h for h in hosts if h.role != "hypervisor"]
    workers = sum(1 for h in hosts_only if h.role == "worker")
    counted = f"{controllers} controller{'s' * (controllers != 1)}"
    if workers:
        counted += f" and {workers} worker{'s' * (workers != 1)}"
    width = max(len(h.name) for h in hosts)
    lines = [f"hardway lab: {counted} running in {directory}", ""]
    for host in hosts:
        endpoint = f"{host.listen}:{host.port}"
        if host.door is not None:
            endpoint += f" (door {host.door[0]}:{host.door[1]})"
        where = "files in" if getattr(lab, "confined", False) else "root"
        lines.append(f"  {host.name:<{width}}  {endpoint:<20} {where} {host.root}")
    lines += [f"  note: {note}" for note in lab.notes]
    if getattr(lab, "confined", False):
        lines += ["", "The hosts are confined: their network exists only inside the lab; "
                  "reach them through the hypervisor (ssh.jump / ProxyJump)."]
    if getattr(lab, "services_running", False):
        scenario = lab.scenario
        if scenario.runs_apiserver:
            port, what = 6443, "kube-apiserver"
        elif scenario.stage == "etcd-up":
            port, what = 2379, "etcd (no control plane yet)"
        else:
            port, what = 0, "nothing installed yet (the files are in each home)"
        at = ", ".join(f"https://{h.address}:{port}" for h in hosts if h.role == "controller")
        lines += ["", f"Cluster ({scenario.name}): {what}" + (f" on {at}" if port else "")]
        for problem in lab.scenario.problems:
            lines += textwrap.wrap(problem, 88, initial_indent="  broken on purpose: ",
                                   subsequent_indent="    ", break_on_hyphens=False)
    files = [
        (lab.inventory_path, "the inventory for every hardway command"),
        (lab.ssh_config_path, "OpenSSH client config (strict host key checking)"),
        (lab.known_hosts_path, "the lab hosts' keys"),
        (lab.client_key_path, "the client key the lab accepts"),
    ]
    if getattr(lab, "services_running", False):
        files.append((lab.pki_directory, "the cluster CA and certificates (--pki default)"))
    path_width = max(len(str(path)) for path, _ in files)
    lines += ["", "Files:"]
    lines += [f"  {path!s:<{path_width}}  {what}" for path, what in files]
    lines += [
        "",
        "Use it from another terminal:",
        f"  ssh -F {q(str(lab.ssh_config_path))} {hosts[0].name}",
        f"  hardway run -i {q(str(lab.inventory_path))} -b -- 'echo $ETCD_NAME; uname -s'",
        f"  hardway -i {q(str(lab.inventory_path))}",
        f"  ssh -F {q(str(lab.ssh_config_path))} {hosts[0].name} "
        "systemctl status kube-apiserver",
        "",
        "Ctrl-C stops the lab and every process started on it.",
    ]
    return "\n".join(lines)
