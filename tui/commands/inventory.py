"""`hardway inventory check FILE [--json]`: validate, lint and explain an inventory."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar, TextIO

from tui.core.errors import UserError
from tui.core.inventory.lint import lint
from tui.core.inventory.load import InventoryError, load_inventory
from tui.core.inventory.model import Finding, Host, Inventory

INVENTORY_HELP = """\
Work with inventory files: the TOML description of your cluster (networks, API VIP
and name, controllers and workers, SSH access, DNS). config/README.md documents every
key; config/something.local.toml and config/kthw-gcp.toml are complete examples.

examples:
  hardway inventory check config/something.local.toml
  hardway inventory check --json hardway.toml | jq .facts.etcd_initial_cluster
"""

CHECK_HELP = """\
Load FILE, report every problem, and print the facts hardway derives from it: the etcd
--initial-cluster and --etcd-servers values, the first service IP and the cluster DNS
IP, the SANs the API server certificate needs (and who dials each), and how every host
is reached over SSH.

Errors are mistakes that would break the cluster (a VIP inside the node block,
overlapping networks, duplicate or invalid names, a missing key file...); warnings are
risks (a .local zone, an API name outside the zone...). Nothing is contacted: the check
only reads FILE and looks at whether the files it names exist.

exit status: 0 no errors (warnings allowed), 1 errors found, 2 the file does not load.

examples:
  hardway inventory check config/something.local.toml
  hardway inventory check --json config/kthw-gcp.toml
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``inventory`` and its ``check`` subcommand to the top-level parser."""
    inventory = sub.add_parser(
        "inventory", help="check an inventory file and show the facts derived from it",
        description=INVENTORY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    inventory.set_defaults(handler=lambda args: _usage(inventory))
    actions = inventory.add_subparsers(dest="inventory_command", metavar="ACTION")
    check = actions.add_parser(
        "check", help="validate and lint FILE, print findings and derived facts",
        description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("file", metavar="FILE", nargs="?",
                       help="the inventory TOML file (default: the top-level -i FILE)")
    check.add_argument("--json", action="store_true",
                       help="print one JSON object {file, ok, findings, facts} instead of text")
    check.set_defaults(handler=run_check)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``hardway inventory check``; returns 0, 1 (errors) or raises (2)."""
    name = args.file or getattr(args, "inventory", None)
    if not name:
        raise UserError("inventory check needs the inventory file; expected "
                        "`hardway inventory check FILE`, e.g. config/something.local.toml.")
    path = Path(name)
    try:
        inventory = load_inventory(path)
    except InventoryError as exc:
        if args.json:
            _print_json({"file": str(path), "ok": False, "error": str(exc), "findings": [],
                         "facts": None})
        raise
    findings = lint(inventory)
    ok = not any(f.severity == "error" for f in findings)
    if args.json:
        _print_json({"file": str(path), "ok": ok,
                     "findings": [finding_dict(f) for f in findings],
                     "facts": facts(inventory)})
    else:
        _emit(render_report(inventory, findings, _Style(sys.stdout)))
    return 0 if ok else 1


def _print_json(document: dict[str, Any]) -> None:
    _emit(json.dumps(document, indent=2) + "\n")


def _emit(text: str) -> None:
    """Write ``text`` to stdout; a reader that went away (``| head``) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit does not fail again
        os.close(devnull)


def finding_dict(finding: Finding) -> dict[str, str]:
    """A finding as JSON-ready data."""
    return {"severity": finding.severity, "key": finding.key, "message": finding.message}


def _ssh_target(host: Host) -> str:
    user = f"{host.ssh.user}@" if host.ssh.user else ""
    return f"{user}{host.dial}:{host.ssh.port}"


def facts(inv: Inventory) -> dict[str, Any]:
    """The derived facts of ``inv`` as JSON-ready data (no secrets)."""
    hosts: list[dict[str, Any]] = [
        {"name": h.name, "role": h.role, "address": str(h.address), "dial": h.dial,
         "user": h.ssh.user, "port": h.ssh.port, "jump": h.ssh.jump,
         "identity": str(h.ssh.identity) if h.ssh.identity else None,
         "root": h.root, "vars": dict(h.vars)}
        for h in inv.hosts
    ]
    hypervisor = None
    if inv.hypervisor is not None:
        hv = inv.hypervisor
        hypervisor = {"name": hv.name, "address": hv.address, "os": hv.os,
                      "firewall": hv.firewall, "user": hv.ssh.user, "port": hv.ssh.port}
    return {
        "cluster": inv.name,
        "domain": inv.domain,
        "api": {"vip": str(inv.api.vip) if inv.api.vip else None,
                "hostname": inv.api.hostname, "port": inv.api.port},
        "etcd_initial_cluster": inv.etcd_initial_cluster,
        "etcd_servers": inv.etcd_servers,
        "first_service_ip": str(inv.first_service_ip),
        "cluster_dns_ip": str(inv.cluster_dns_ip),
        "api_server_sans": [{"kind": s.kind, "value": s.value, "reason": s.reason}
                            for s in inv.api_server_sans],
        "hosts": hosts,
        "hypervisor": hypervisor,
        "dns": {"server": inv.dns.server, "port": inv.dns.port, "zone": inv.dns.zone,
                "mode": inv.dns.mode, "tsig_name": inv.dns.tsig_name}
        if inv.dns else None,
        "versions": {"etcd": inv.versions.etcd, "kubernetes": inv.versions.kubernetes},
    }


class _Style:
    """ANSI colours on a terminal (unless NO_COLOR), plain text otherwise."""

    CODES: ClassVar[dict[str, str]] = {
        "error": "31;1", "warning": "33;1", "heading": "1", "ok": "32;1"}

    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty() and "NO_COLOR" not in os.environ
        self.width = shutil.get_terminal_size((100, 24)).columns if self.enabled else 0

    def __call__(self, kind: str, text: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{self.CODES[kind]}m{text}\x1b[0m"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            .rstrip() for row in rows]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def render_report(inv: Inventory, findings: list[Finding], style: _Style) -> str:
    """The human report: findings, derived facts, SANs and the hosts table."""
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    lines = [style("heading", f'{inv.path}: cluster "{inv.name}" ({inv.domain})'), ""]
    lines.append(style("heading", f"Findings: {_plural(errors, 'error')}, "
                       f"{_plural(warnings, 'warning')}"))
    for finding in findings:
        label = f"{finding.severity:<8} "
        text = finding.message
        if style.width:
            text = textwrap.fill(text, width=max(60, min(style.width, 120)) - 2,
                                 initial_indent=" " * 11,
                                 subsequent_indent=" " * 11,
                                 break_on_hyphens=False, break_long_words=False).lstrip()
        lines.append("  " + style(finding.severity, label) + text)
    if not findings:
        lines.append("  none")
    api = inv.api.vip or inv.api.hostname or "(no VIP or hostname)"
    lines += ["", style("heading", "Derived facts")]
    lines += _table([
        ["etcd initial cluster", inv.etcd_initial_cluster],
        ["etcd servers", inv.etcd_servers],
        ["first service IP", str(inv.first_service_ip)],
        ["cluster DNS IP", str(inv.cluster_dns_ip)],
        ["API endpoint", f"https://{api}:{inv.api.port}"
         + (f" ({inv.api.hostname})" if inv.api.vip and inv.api.hostname else "")],
        ["versions", f"etcd {inv.versions.etcd}, kubernetes {inv.versions.kubernetes}"],
    ])
    lines += ["", style("heading", "API server certificate SANs")]
    lines += _table([[san.kind.upper(), san.value, san.reason] for san in inv.api_server_sans])
    lines += ["", style("heading", "Hosts")]
    rows = [["NAME", "ROLE", "ADDRESS", "SSH", "JUMP", "ROOT"]]
    rows += [[h.name, h.role, str(h.address), _ssh_target(h), h.ssh.jump or "-", h.root or "-"]
             for h in inv.hosts]
    if inv.hypervisor is not None:
        hv = inv.hypervisor
        user = f"{hv.ssh.user}@" if hv.ssh.user else ""
        rows.append([hv.name, f"hypervisor ({hv.os}, {hv.firewall})", hv.address,
                     f"{user}{hv.address}:{hv.ssh.port}", hv.ssh.jump or "-", "-"])
    lines += _table(rows)
    lines.append("")
    if errors:
        lines.append(style("error", f"NOT OK: {_plural(errors, 'error')} above to fix before "
                           "using this inventory (warnings alone do not fail the check)."))
    else:
        lines.append(style("ok", "OK: no errors" + (
            f" ({_plural(warnings, 'warning')} to consider)." if warnings else ".")))
    return "\n".join(lines) + "\n"
