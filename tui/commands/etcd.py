"""`hardway etcd plan|bootstrap|status|snapshot|replace`: KTHW doc 07 from the command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.etcd.engine import EtcdOptions, EtcdWork, PreparedEtcdPlan
    from tui.core.inventory.model import Inventory
    from tui.core.plan import PlanEvent, PlanResult

ETCD_HELP = """\
etcd on the controllers, as in Kubernetes the Hard Way (doc 07), over SSH and HTTPS:
every request to etcd uses the cluster CA and kubernetes.pem from the PKI directory
(default pki/ beside the inventory); no etcdctl is needed anywhere.

  plan       what bootstrap would do on every controller: commands, file diffs, skips
  bootstrap  install etcd, directories, certificates, the unit; start all members at
             once; verify over HTTPS (a rerun on a healthy cluster changes nothing)
  status     members, leader, raft term and index, DB size, version, round trip;
             what differs from the inventory, and the journal's diagnosis
  snapshot   save a verified snapshot of the keyspace on this machine
  replace    replace one member: snapshot, member remove, data dir moved aside,
             member add, --initial-cluster-state existing, start, verify

exit status: 0 done (or healthy), 1 a step failed (or the cluster is unhealthy),
2 could not start (bad inventory, unreachable, bad arguments).

examples:
  hardway etcd plan -i /tmp/lab/inventory.toml --etcd-tarball etcd-v3.4.10-linux-amd64.tar.gz
  hardway etcd bootstrap -i /tmp/lab/inventory.toml --yes \
      --etcd-tarball ./etcd-v3.4.10-linux-amd64.tar.gz
  hardway etcd status -i hardway.toml --json | jq '.members'
  hardway etcd snapshot -i hardway.toml -o backups/
  hardway etcd replace controller-1 -i hardway.toml --yes
"""

BOOTSTRAP_HELP = """\
KTHW doc 07 on every controller, each step checked first (skipped with the reason when
already done), previewed, applied and verified:

  1. binaries      etcd + etcdctl of the wanted version into paths.bin, from
                   --etcd-tarball or the cache (~/.cache/hardway/etcd/etcd-vV-linux-amd64.tar.gz;
                   SHA-256 checked against SHA256SUMS beside it when present)
  2. directories   paths.etcd_config and paths.etcd_data, mode 700
  3. certificates  ca.pem, kubernetes.pem, kubernetes-key.pem (atomic, previous kept)
  4. unit          etcd.service from the inventory (diff shown), daemon-reload, enable
  5. start         on all members at once (a lone member waits for quorum), one
                   overall --start-timeout
  6. verify        /health, member list = inventory, one leader, one cluster ID

On a failure the journal of that host is read and explained (wrong name, peer
certificate without the member's IP, foreign data directory, port in use, ...).
On a terminal it asks first; --yes answers for scripts; --dry-run only previews.

examples:
  hardway etcd bootstrap -i /tmp/lab/inventory.toml --dry-run \
      --etcd-tarball ./etcd-v3.4.10-linux-amd64.tar.gz
  hardway etcd bootstrap -i hardway.toml --yes --json
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``etcd`` and its actions to the top-level parser."""
    etcd = sub.add_parser("etcd", help="bootstrap, check, back up and repair etcd",
                          description=ETCD_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    etcd.set_defaults(handler=lambda _args: _usage(etcd))
    actions = etcd.add_subparsers(dest="etcd_command", metavar="ACTION")

    def action(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=description,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                       help="inventory TOML (default: ./hardway.toml, then "
                            "$XDG_CONFIG_HOME/hardway/inventory.toml)")
        p.add_argument("--pki", metavar="DIR", type=Path,
                       help="the PKI directory (default: pki/ beside the inventory)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                       help="record unknown SSH host keys (a changed key is always refused)")
        p.add_argument("--connect-timeout", type=positive_seconds, default=10.0,
                       metavar="S", help="give up connecting to a host after S seconds")
        p.add_argument("--audit", metavar="FILE", help="append the audit record to FILE")
        p.add_argument("--sudo", action="store_true",
                       help="run remote commands with sudo -n (file writes still need a "
                            "root login)")
        return p

    def changing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dry-run", action="store_true",
                       help="print the plan per host (commands, diffs); change nothing")
        p.add_argument("--yes", action="store_true",
                       help="do not ask for confirmation (needed when not on a terminal)")
        p.add_argument("--start-timeout", type=positive_seconds, default=60.0, metavar="S",
                       help="seconds for the members to become healthy (default 60)")

    for name, text, handler in (("plan", "preview the bootstrap: commands, diffs, skips",
                                 run_plan),
                                ("bootstrap", "bootstrap etcd on every controller",
                                 run_bootstrap)):
        p = action(name, text, BOOTSTRAP_HELP)
        p.add_argument("--etcd-tarball", metavar="FILE", type=Path,
                       help="the release tarball etcd-vX.Y.Z-linux-amd64.tar.gz")
        p.add_argument("--cache", metavar="DIR", type=Path,
                       help="where release tarballs are looked for (default "
                            "~/.cache/hardway/etcd)")
        if name == "bootstrap":
            changing(p)
        p.set_defaults(handler=handler)
    status = action("status", "members, leader, raft, DB size, versions, diagnosis",
                    ETCD_HELP)
    status.set_defaults(handler=run_status)
    snapshot = action("snapshot", "save a verified snapshot on this machine", ETCD_HELP)
    snapshot.add_argument("-o", "--output", metavar="PATH", type=Path, default=Path("."),
                          help="file, or directory for etcd-snapshot-STAMP.db (default .)")
    snapshot.set_defaults(handler=run_snapshot)
    replace = action("replace", "replace one member (remove, re-add, start)", ETCD_HELP)
    replace.add_argument("member", metavar="NAME", help="the controller to replace")
    replace.add_argument("--snapshot-dir", metavar="DIR", type=Path,
                         help="where the safety snapshot goes (default: snapshots/ beside "
                              "the inventory)")
    replace.add_argument("--force", action="store_true",
                         help="replace even when the member looks healthy")
    changing(replace)
    replace.set_defaults(handler=run_replace)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


@dataclasses.dataclass
class Cli:
    """What every action needs."""

    args: argparse.Namespace
    inventory: Inventory
    pki: Path
    out: TextIO
    colour: bool


def _cli(args: argparse.Namespace) -> Cli:
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    path = locate_inventory(getattr(args, "inventory", None))
    inventory = load_inventory(path)
    if not inventory.controllers:
        raise UserError(f"{path} lists no controllers; etcd runs on the controllers.")
    pki = args.pki if args.pki is not None else path.parent / "pki"
    colour = bool(not os.environ.get("NO_COLOR") and sys.stdout.isatty() and not args.json)
    return Cli(args, inventory, Path(pki), sys.stdout, colour)


@asynccontextmanager
async def _engine(cli: Cli) -> AsyncIterator[EtcdWork]:
    """The workbench's etcd engine (the one the screen uses), closed on exit."""
    from tui.commands.session import open_workbench
    from tui.core.etcd.engine import EtcdWork

    async with open_workbench(cli.inventory, cli.args, pki=cli.pki) as workbench:
        work = workbench.engine("etcd")
        assert isinstance(work, EtcdWork)
        yield work


def _options(cli: Cli) -> EtcdOptions:
    from tui.core.etcd.engine import EtcdOptions

    args = cli.args
    return EtcdOptions(tarball=getattr(args, "etcd_tarball", None),
                       cache=getattr(args, "cache", None),
                       start_timeout=getattr(args, "start_timeout", 60.0), sudo=args.sudo)


def _json(cli: Cli, data: object) -> None:
    cli.out.write(json.dumps(data, indent=2, default=str) + "\n")


# -- plan / bootstrap ----------------------------------------------------------------------

def run_plan(args: argparse.Namespace) -> int:
    """``hardway etcd plan``."""
    cli = _cli(args)
    return asyncio.run(_bootstrap(cli, preview_only=True))


def run_bootstrap(args: argparse.Namespace) -> int:
    """``hardway etcd bootstrap``."""
    cli = _cli(args)
    return asyncio.run(_bootstrap(cli, preview_only=args.dry_run))


async def _bootstrap(cli: Cli, *, preview_only: bool) -> int:
    async with _engine(cli) as work:
        # --yes: the run's own checks decide (no separate preview pass)
        prepared = await work.prepare_bootstrap(_options(cli),
                                                preview=preview_only or not cli.args.yes)
        if preview_only:
            _show_preview(cli, prepared.preview)
            return 0
        if not cli.args.yes and prepared.todo:
            _show_preview(cli, prepared.preview)
            await _confirm(prepared.title + " " + ", ".join(prepared.ctx.controllers))
        return await _run(cli, prepared, "Bootstrap")


def _show_preview(cli: Cli, preview: dict[str, Any]) -> None:
    from tui.core.pki.report import preview_json, render_preview

    if cli.args.json:
        _json(cli, {host: [preview_json(i) for i in items] for host, items in preview.items()})
    else:
        render_preview(cli.out, preview, colour=cli.colour)


async def _confirm(what: str) -> None:
    if not sys.stdin.isatty():
        raise UserError(f"{what}: this changes the hosts; it asks on a terminal and needs "
                        "--yes without one (preview it with --dry-run).")
    answer = await asyncio.to_thread(input, f"{what} now? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("Nothing was changed (not confirmed).", exit_code=1)


async def _run(cli: Cli, prepared: PreparedEtcdPlan, verb: str) -> int:
    from tui.core.pki.report import ProgressPrinter

    ctx, hosts = prepared.ctx, prepared.plan.hosts
    printer = (ProgressPrinter(cli.out, hosts, as_json=True) if cli.args.json
               else _Progress(cli, hosts))
    result: PlanResult = await prepared.run(printer)
    diagnoses = {h: [dataclasses.asdict(d) for d in ds] for h, ds in ctx.diagnoses.items()}
    if cli.args.json:  # one line: the progress before it is JSON lines too
        cli.out.write(json.dumps({"ok": result.ok,
                    "failure": dataclasses.asdict(result.failure) if result.failure else None,
                    "skipped": [f"{s}@{h}" for (s, h), e in result.states.items()
                                if e.state == "skipped"],
                    "untouched": result.untouched_hosts(), "diagnoses": diagnoses},
                                 default=str) + "\n")
        return 0 if result.ok else 1
    if result.ok:
        changed = [e for e in result.states.values() if e.state == "done" and e.step != "verify"]
        cli.out.write(f"\n{verb} complete: " + ("nothing changed, the cluster was already "
                                               "healthy.\n" if not changed else
                                               f"{len(changed)} step(s) applied.\n"))
        return 0
    failure = result.failure
    assert failure is not None
    failed = result.failed_hosts(failure.step) or [failure.host]
    cli.out.write(f"\n{verb} stopped: {failure.step} failed on {', '.join(failed)}.\n")
    for host, found in ctx.diagnoses.items():
        for d in found:
            cli.out.write(f"  {host}: {d.summary}\n    fix: {d.fix}\n    log: {d.evidence}\n")
    return 1


class _Progress:
    """One line per host and step as it ends (steps run on every host at once)."""

    def __init__(self, cli: Cli, hosts: list[str]) -> None:
        self.cli = cli
        self.pad = max((len(h) for h in hosts), default=0)

    def __call__(self, event: PlanEvent) -> None:
        from tui.core.pki.report import paint

        if event.state not in ("skipped", "done", "failed"):
            return
        word, code = {"done": ("ok", "32"), "skipped": ("skipped", "2"),
                      "failed": ("FAILED", "1;31")}[event.state]
        took = f" {event.duration:.1f} s" if event.duration is not None else ""
        detail = f" ({event.detail})" if event.detail else ""
        self.cli.out.write(f"{event.host:<{self.pad}}  {event.step:<12} "
                           f"{paint(word, code, self.cli.colour)}{took}{detail}\n")
        self.cli.out.flush()


# -- status ----------------------------------------------------------------------------

def run_status(args: argparse.Namespace) -> int:
    """``hardway etcd status``."""
    cli = _cli(args)
    return asyncio.run(_status(cli))


async def _status(cli: Cli) -> int:
    async with _engine(cli) as work:
        status = await work.status()
        view, found = status.view, status.problems
        if cli.args.json:
            _json(cli, {"healthy": status.healthy,
                        "members": [r.as_json() for r in status.rows],
                        "problems": [p.message for p in found],
                        "diagnoses": [dataclasses.asdict(d) for d in status.diagnoses]})
            return 0 if status.healthy else 1
        out = cli.out
        out.write(f"{'NAME':<14}{'ID':<18}{'HEALTH':<8}{'LEADER':<8}{'TERM':>6}"
                  f"{'INDEX':>9}{'DB':>10}  {'VERSION':<9}{'RTT':>8}\n")
        for r in status.rows:
            db = f"{r.db_size / 1024:.0f} KiB" if r.db_size else "-"
            rtt = f"{round(r.rtt * 1000, 1)} ms" if r.rtt is not None else "-"
            out.write(f"{r.name:<14}{r.member_id or '-':<18}"
                      f"{'ok' if r.healthy else 'DOWN':<8}"
                      f"{'*' if r.leader else '':<8}{r.raft_term or '-':>6}"
                      f"{r.raft_index or '-':>9}{db:>10}  {r.version or '-':<9}"
                      f"{rtt:>8}\n")
        for p in found:
            out.write(f"problem: {p.message}\n")
        for d in status.diagnoses:
            out.write(f"{d.host}: {d.summary}\n  fix: {d.fix}\n")
        if status.healthy:
            out.write(f"cluster {view.cluster_id:x}: {len(status.rows)} members, all "
                      f"healthy, leader {view.leader}.\n")
        return 0 if status.healthy else 1


# -- snapshot --------------------------------------------------------------------------

def run_snapshot(args: argparse.Namespace) -> int:
    """``hardway etcd snapshot``."""
    cli = _cli(args)
    return asyncio.run(_snapshot(cli))


async def _snapshot(cli: Cli) -> int:
    import time

    target: Path = cli.args.output
    if target.is_dir() or str(target).endswith("/"):
        target = target / f"etcd-snapshot-{time.strftime('%Y%m%dT%H%M%S')}.db"
    async with _engine(cli) as work:
        member, result = await work.snapshot(target)
    if cli.args.json:
        _json(cli, {**dataclasses.asdict(result), "member": member})
    else:
        cli.out.write(f"Saved {result.path} from {member}: {result.size} bytes, "
                      f"SHA-256 {result.sha256[:16]}..., {result.detail}.\n")
    return 0


# -- replace ---------------------------------------------------------------------------

def run_replace(args: argparse.Namespace) -> int:
    """``hardway etcd replace NAME``."""
    cli = _cli(args)
    return asyncio.run(_replace(cli))


async def _replace(cli: Cli) -> int:
    args = cli.args
    async with _engine(cli) as work:
        reason, prepared = await work.prepare_replace(
            args.member, args.snapshot_dir or cli.inventory.path.parent / "snapshots",
            _options(cli))
        if reason is not None and not args.force:
            if args.json:
                _json(cli, {"ok": True, "skipped": reason})
            else:
                cli.out.write(f"{reason} (--force replaces it anyway).\n")
            return 0
        await work.connect()
        prepared.preview = await prepared.plan.preview()
        if args.dry_run:
            _show_preview(cli, prepared.preview)
            return 0
        if not args.yes:
            _show_preview(cli, prepared.preview)
            await _confirm(f"Replace etcd member {args.member}")
        return await _run(cli, prepared, "Replace")
