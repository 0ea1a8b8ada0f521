"""`hardway certs plan|check|issue|push`: the cluster's PKI from the command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tui.commands.argtypes import positive_seconds
from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.core.inventory.model import Inventory
    from tui.core.pki.diagnose import CertFinding
    from tui.core.pki.survey import Survey
    from tui.core.plan import PlanResult
    from tui.core.workbench import Workbench

CERTS_HELP = """\
The cluster's certificates, as in Kubernetes the Hard Way (doc 04): a CA with cfssl
file names (ca.pem, ca-key.pem) and admin, worker-N, kube-controller-manager,
kube-proxy, kube-scheduler, kubernetes (the API server, also etcd's) and
service-account pairs. The PKI directory defaults to pki/ beside the inventory file
(the lab creates its CA there too); an existing cfssl directory works as it is.

  plan    the certificates the cluster needs, their SANs and why, and where they go
  check   inspect the local files, the files and doc-05 kubeconfigs on every host and
          the certificates kube-apiserver (:6443) and etcd (:2379) actually serve;
          explain what is wrong (exit 1 on errors)
  issue   create the CA if there is none (never overwrites one), (re)issue the
          certificates that are missing or wrong, and write the kubeconfigs of doc 05
  push    copy them to the hosts and restart what uses them, one host at a time,
          each checked by its health probe; --restore puts the previous files back;
          a login that is not root writes through `sudo -n`

examples:
  hardway certs plan -i config/something.local.toml
  hardway certs check -i /tmp/lab/inventory.toml
  hardway certs issue -i /tmp/lab/inventory.toml
  hardway certs push -i /tmp/lab/inventory.toml --dry-run
  hardway certs push -i /tmp/lab/inventory.toml --yes
  hardway certs push -i /tmp/lab/inventory.toml --restore --yes
"""

PLAN_HELP = """\
List every certificate the cluster needs with its subject, its SANs and who dials each
of them, whether the PKI directory has it (and whether it still fits), and which files
go to which hosts. Nothing is contacted.

examples:
  hardway certs plan -i config/something.local.toml
  hardway certs plan -i hardway.toml --json | jq '.certificates[] | select(.name=="kubernetes")'
"""

CHECK_HELP = """\
Inspect the certificates three ways and explain every problem in plain words with its
fix: the local PKI directory; the files on every host (read over SFTP; keys and
kubeconfigs through `sudo -n` when the login is not root); and the certificates
kube-apiserver and etcd really serve on each controller's address, ports 6443 and 2379
(a TLS handshake without verification and without SNI). It finds missing SANs (and who
dials them), a served certificate that differs from the file on disk, the self-signed
apiserver.crt kube-apiserver generates when its unit lost --tls-cert-file, wrong
issuers, keys that do not match, certificates expiring within 30 days, and hosts that
hold a different CA.

The kubeconfigs of KTHW doc 05 are read where doc 08/09 installs them
(/var/lib/kubernetes/kube-controller-manager.kubeconfig and kube-scheduler.kubeconfig,
/var/lib/kubelet/kubeconfig, /var/lib/kube-proxy/kubeconfig), else in the login's home
where the scp of doc 05 left them (admin.kubeconfig always there): the embedded client
certificate must be signed by the cluster CA, carry its CN and O (admin /
system:masters, system:node:worker-N / system:nodes, ...), be valid and match the
embedded key; certificate-authority-data must be the cluster CA; the server must be
https://127.0.0.1:6443 (admin, controller-manager, scheduler) or the API address
(kubelet, kube-proxy). The local PKI's kubeconfigs are checked the same way.

exit status: 0 no errors (warnings allowed), 1 errors found, 2 could not run.

examples:
  hardway certs check -i /tmp/lab/inventory.toml
  hardway certs check -i hardway.toml -w @controllers --json | jq '.findings[]'
"""

ISSUE_HELP = """\
Create the CA in the PKI directory when there is none (RSA 2048 by default, 5 years; an
existing ca.pem/ca-key.pem is loaded and never overwritten), then issue every
certificate that is missing or no longer fits its profile: missing SANs (e.g. 127.0.0.1
or a new VIP), another issuer, a subject that differs, a key that does not match, or
fewer than 30 days left. Keys are written 0600. Then the kubeconfigs of KTHW doc 05
(admin, kube-controller-manager, kube-scheduler, kube-proxy, each worker's) are written
beside them (0600) when missing or when they no longer fit: another server URL or CA,
or an older certificate than the pair they embed. Give NAMEs (file stems such as
kubernetes or worker-0) to limit the work to those; --force reissues them even when
they fit. Nothing is contacted; `certs push` copies the certificates to the hosts.

examples:
  hardway certs issue -i /tmp/lab/inventory.toml
  hardway certs issue -i hardway.toml kubernetes --force
  hardway certs issue -i hardway.toml --dry-run
"""

PUSH_HELP = """\
Copy the PKI to the hosts and restart what uses it, one host at a time:

  1. put files        controllers: /var/lib/kubernetes (ca, ca-key, kubernetes,
                      service-account, and the kube-controller-manager and
                      kube-scheduler kubeconfigs) and /etc/etcd (ca, kubernetes);
                      workers: /var/lib/kubernetes/ca.pem, /var/lib/kubelet/worker-N(-key).pem,
                      /var/lib/kubelet/kubeconfig, /var/lib/kube-proxy/kubeconfig
                      (kubeconfigs when the PKI has them; admin.kubeconfig stays yours).
                      Atomic writes, keys 0600, the previous file kept as NAME.hardway-bak
  2. repair unit      mend a `\\` continuation in kube-apiserver.service that dropped
                      flags, add a missing --tls-cert-file/--tls-private-key-file,
                      then systemctl daemon-reload
  3. remove stale     move the self-signed apiserver.crt/.key out of --cert-dir
                      (kube-apiserver would serve them again)
  4. restart          etcd, kube-apiserver, ... where their files changed, each waited for
                      until its health probe passes: kube-apiserver /livez verified
                      against the new ca.pem, etcd /health with a client certificate

A login that is not root (the inventory's ssh user, e.g. a cloud image's default user)
cannot write /var/lib/kubernetes over SFTP: on such hosts (and on every host with
--sudo) the files go to a private directory in the login's home first, then one
`sudo -n` script copies them beside their targets and links the backups, and another
switches them back to back, with the same journal and backups as a root login. sudo
must not ask for a password (NOPASSWD in sudoers): it is checked on every host before
anything changes, and a host where it asks is named.

A host that does not come back stops the push there and leaves the remaining hosts
untouched. What each host got is recorded in PKI/last-push.json; `push --restore`
puts exactly those previous files back and restarts what they concern.

On a terminal the push asks before changing anything; --yes answers for scripts (the
push refuses to run unattended without it). --dry-run prints the plan: files per host
with sizes and fingerprints (private keys are never shown), unit diffs, commands and
the services to restart.

exit status: 0 done, 1 a host failed (the push stopped), 2 could not start.

examples:
  hardway certs push -i /tmp/lab/inventory.toml --dry-run
  hardway certs push -i /tmp/lab/inventory.toml --yes
  hardway certs push -i hardway.toml -w controller-0 --yes --health-timeout 120
  hardway certs push -i hardway.toml --restore --yes
"""


def register(sub: Any, parser: argparse.ArgumentParser) -> None:
    """Add ``certs`` and its actions to the top-level parser."""
    certs = sub.add_parser("certs", help="plan, check, issue and push the cluster's "
                           "certificates", description=CERTS_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    certs.set_defaults(handler=lambda _args: _usage(certs))
    actions = certs.add_subparsers(dest="certs_command", metavar="ACTION")

    def action(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=description,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("-i", "--inventory", metavar="FILE", default=argparse.SUPPRESS,
                       help="inventory TOML (default: ./hardway.toml, then "
                            "$XDG_CONFIG_HOME/hardway/inventory.toml)")
        p.add_argument("--pki", metavar="DIR", type=Path,
                       help="the PKI directory (default: pki/ beside the inventory)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        return p

    plan = action("plan", "list the certificates, their SANs and where they go", PLAN_HELP)
    plan.set_defaults(handler=run_plan)

    check = action("check", "inspect local, remote and served certificates", CHECK_HELP)
    _remote_options(check)
    check.add_argument("--no-served", action="store_true",
                       help="do not fetch the certificates served on the API port")
    check.set_defaults(handler=run_check)

    issue = action("issue", "create the CA if needed, issue missing or wrong certificates",
                   ISSUE_HELP)
    issue.add_argument("names", nargs="*", metavar="NAME",
                       help="certificates to consider (file stems; default: all)")
    issue.add_argument("--force", action="store_true",
                       help="reissue the certificates even when they fit (never the CA)")
    issue.add_argument("--key-type", choices=("rsa", "ecdsa"), default="rsa",
                       help="rsa (2048, KTHW's; default) or ecdsa (P-256)")
    issue.add_argument("--dry-run", action="store_true",
                       help="say what would be issued and why, write nothing")
    issue.set_defaults(handler=run_issue)

    push = action("push", "copy the PKI to the hosts and restart behind health probes",
                  PUSH_HELP)
    _remote_options(push)
    push.add_argument("--dry-run", action="store_true",
                      help="print the plan per host (files, diffs, commands); change nothing")
    push.add_argument("--yes", action="store_true",
                      help="do not ask for confirmation (needed when not on a terminal)")
    push.add_argument("--restore", action="store_true",
                      help="put back the files the last push replaced, and restart")
    push.add_argument("--health-timeout", type=positive_seconds, default=60.0, metavar="S",
                      help="seconds a restarted service gets to pass its probe (default 60)")
    push.add_argument("--sudo", action="store_true",
                      help="write files and run systemctl through `sudo -n` on every host "
                           "(automatic where the login is not root)")
    push.set_defaults(handler=run_push)


def _remote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", dest="include", action="append", metavar="HOSTS",
                   help="hosts: names, host sets, @controllers @workers (default @all)")
    p.add_argument("-x", dest="exclude", action="append", metavar="HOSTS",
                   help="hosts to leave out")
    p.add_argument("--accept-new", action="store_true", default=argparse.SUPPRESS,
                   help="record unknown SSH host keys (a changed key is always refused)")
    p.add_argument("--connect-timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="give up connecting to a host after S seconds (default 10)")
    p.add_argument("--audit", metavar="FILE",
                   help="append the audit record to FILE (default in $XDG_STATE_HOME/hardway/)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# -- shared ----------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """What every action needs: the inventory, the PKI directory, where to print."""

    inventory: Inventory
    pki: Path
    out: TextIO
    err: TextIO
    colour: bool


def _context(args: argparse.Namespace) -> Context:
    from tui.core.inventory.load import load_inventory
    from tui.core.inventory.locate import locate_inventory

    path = locate_inventory(getattr(args, "inventory", None))
    inventory = load_inventory(path)
    pki = args.pki if args.pki is not None else path.parent / "pki"
    colour = (not os.environ.get("NO_COLOR") and sys.stdout.isatty()
              and not getattr(args, "json", False))
    return Context(inventory, Path(pki), sys.stdout, sys.stderr, colour)


def _names(ctx: Context, args: argparse.Namespace) -> list[str]:
    from tui.core.hostset import select
    from tui.core.inventory.gate import require_runnable

    require_runnable(ctx.inventory, f"certs {args.certs_command}")
    names = select(ctx.inventory, args.include, args.exclude)
    if not names:
        raise UserError(f"-w/-x selected no hosts of {ctx.inventory.path}; hosts there: "
                        f"{', '.join(h.name for h in ctx.inventory.hosts)}.")
    return names


def _workbench(ctx: Context, args: argparse.Namespace) -> Workbench:
    """The workbench of every certs action: strict host keys unless --accept-new."""
    from tui.commands.session import open_workbench

    return open_workbench(ctx.inventory, args, err=ctx.err, pki=ctx.pki)


def _paint(ctx: Context, text: str, code: str) -> str:
    from tui.core.pki.report import paint

    return paint(text, code, ctx.colour)


def _wrap(text: str, indent: str) -> str:
    from tui.core.pki.report import wrap

    return wrap(text, indent)


def _json(ctx: Context, data: object) -> None:
    ctx.out.write(json.dumps(data, indent=2, default=str) + "\n")


# -- plan ------------------------------------------------------------------------------


def run_plan(args: argparse.Namespace) -> int:
    """Handler of ``certs plan``."""
    from tui.core.pki.host_findings import local_findings, local_pair_findings
    from tui.core.pki.profiles import profiles_for
    from tui.core.pki.survey import placements

    ctx = _context(args)
    ca, ca_findings = local_findings(ctx.inventory, ctx.pki) if ctx.pki.is_dir() else (None, [])
    rows = []
    for profile in profiles_for(ctx.inventory):
        problems = (local_pair_findings(profile, ctx.pki, ca.cert) if ca is not None
                    else [])
        exists = (ctx.pki / profile.cert_file).exists()
        status = ("missing" if not exists else "unchecked (no CA)" if ca is None
                  else "ok" if not problems else "needs reissue")
        rows.append((profile, status, problems))
    where = {h.name: [dataclasses.asdict(p) for p in placements(ctx.inventory, h)]
             for h in ctx.inventory.hosts}
    if args.json:
        _json(ctx, {
            "inventory": str(ctx.inventory.path), "pki": str(ctx.pki),
            "ca": {"present": ca is not None,
                   "problems": [dataclasses.asdict(f) for f in ca_findings
                                if f.certificate == "ca.pem"]},
            "certificates": [{
                "name": p.name, "cert_file": p.cert_file, "key_file": p.key_file,
                "common_name": p.common_name, "organization": p.organization,
                "validity_days": p.validity_days, "dns_names": list(p.dns_names),
                "ip_addresses": list(p.ip_addresses),
                "sans": [dataclasses.asdict(s) for s in p.sans_reasons],
                "status": status, "problems": [f.message for f in problems]}
                for p, status, problems in rows],
            "placements": where})
        return 0
    out = ctx.out
    out.write(f"Certificates of cluster {ctx.inventory.name!r} (PKI directory {ctx.pki}; "
              f"CA {'present' if ca is not None else 'not created yet'})\n\n")
    width = max(len(p.cert_file) for p, _s, _f in rows)
    for profile, status, problems in rows:
        subject = f"CN={profile.common_name}, O={profile.organization}"
        colour = "32" if status == "ok" else "33"
        out.write(f"  {profile.cert_file:<{width}}  {subject:<60} "
                  f"{_paint(ctx, status, colour)}\n")
        for finding in problems:
            out.write(_wrap(finding.message, " " * (width + 4)) + "\n")
        missing = _missing_locally(ctx.pki / profile.cert_file, profile.sans_reasons)
        for san in profile.sans_reasons:
            kind = "IP " if san.kind == "ip" else "DNS"
            mark = _paint(ctx, "MISSING:", "1;31") + " " if san in missing else ""
            out.write(f"  {'':<{width}}    {kind} {san.value:<38} {mark}{san.reason}\n")
    out.write("\nWhere they go (`hardway certs push`):\n")
    seen: set[str] = set()
    for host in ctx.inventory.hosts:
        files = [f"{p.path} ({p.mode:04o})" for p in placements(ctx.inventory, host)]
        key = host.role if host.role == "controller" else host.name
        if key in seen:
            continue
        seen.add(key)
        label = "every controller" if host.role == "controller" else host.name
        out.write(f"  {label}:\n")
        for line in files:
            out.write(f"    {line}\n")
    return 0


def _missing_locally(cert_path: Path, sans: Sequence[Any]) -> list[Any]:
    """The SANs of ``sans`` the local certificate lacks ([] when it does not exist)."""
    from tui.core.pki.diagnose import missing_sans
    from tui.core.pki.inspect import inspect_file

    if not sans or not cert_path.exists():
        return []
    try:
        return missing_sans(inspect_file(cert_path), sans)
    except UserError:
        return []


# -- check -----------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``certs check``: exit 1 when any finding is an error."""
    from tui.core.pki.host_findings import local_findings
    from tui.core.pki.report import host_json, render_findings

    ctx = _context(args)
    names = _names(ctx, args)
    ca, local = local_findings(ctx.inventory, ctx.pki)
    report = asyncio.run(_survey(ctx, args, names, ca_cert=ca.cert if ca else None,
                                 served=not args.no_served))
    report.local = local
    findings = report.findings
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if args.json:
        _json(ctx, {"inventory": str(ctx.inventory.path), "pki": str(ctx.pki),
                    "errors": errors, "warnings": warnings,
                    "findings": [dataclasses.asdict(f) for f in findings],
                    "hosts": {n: host_json(h) for n, h in report.hosts.items()}})
        return 1 if errors else 0
    groups: dict[str, list[CertFinding]] = {f"Local PKI ({ctx.pki})": list(report.local)}
    for name, host in report.hosts.items():
        groups[name] = list(host.findings)
    if report.fleet_findings:
        groups["Cluster"] = list(report.fleet_findings)
    render_findings(ctx.out, groups, colour=ctx.colour,
                    empty_ok="every certificate fits its profile")
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    configs = sum(len(h.kubeconfigs) for h in report.hosts.values())
    served = sum((h.served is not None) + (h.etcd_served is not None)
                 for h in report.hosts.values())
    ctx.out.write(f"\n{summary} on {len(names)} host{'s' * (len(names) != 1)} "
                  f"({configs} kubeconfig{'s' * (configs != 1)} and {served} served "
                  f"certificate{'s' * (served != 1)} checked).\n")
    return 1 if errors else 0


async def _survey(ctx: Context, args: argparse.Namespace, names: list[str], *,
                  ca_cert: Any, served: bool) -> Survey:
    from tui.core.pki.rollout import add_push_findings
    from tui.core.pki.survey import survey

    async with _workbench(ctx, args) as workbench:
        await workbench.connect(names)
        report = await survey(ctx.inventory, workbench.fleet, ca_cert=ca_cert, names=names,
                              pki_dir=ctx.pki if ctx.pki.is_dir() else None, served=served)
        await add_push_findings(ctx.inventory, workbench.fleet, report)
        return report


# -- issue -----------------------------------------------------------------------------


def run_issue(args: argparse.Namespace) -> int:
    """Handler of ``certs issue``."""
    ctx = _context(args)
    work = _workbench(ctx, args).certs
    actions = asyncio.run(work.issue(args.names, force=args.force, dry_run=args.dry_run,
                                     key_type=args.key_type)).actions
    if args.json:
        _json(ctx, {"pki": str(ctx.pki), "dry_run": args.dry_run, "certificates": actions})
        return 0
    width = max(len(str(a["name"])) for a in actions)
    for item in actions:
        verb = str(item["action"])
        code = "32" if verb in ("issued", "created", "written") else "2" if verb == "kept" else "33"
        line = f"  {_paint(ctx, f'{verb:<12}', code)} {item['name']!s:<{width}}"
        if item["action"] == "kept" and "not_after" in item:
            line += f"  fits its profile; valid until {str(item['not_after'])[:10]}"
        elif item["action"] == "kept":
            line += "  fits (server, CA, client certificate and key)"
        elif item.get("fingerprint"):
            line += f"  {str(item['fingerprint'])[:23]}  valid until {str(item['not_after'])[:10]}"
        ctx.out.write(line.rstrip() + "\n")
        why = item["reasons"]
        assert isinstance(why, list)
        for reason in why:
            if reason != "not issued yet":
                ctx.out.write(_wrap(f"- {reason}", " " * 17) + "\n")
    changed = sum(a["action"] in ("issued", "created", "written") for a in actions)
    if args.dry_run:
        ctx.out.write("\nDry run: nothing was written.\n")
    elif changed:
        ctx.out.write(f"\n{changed} written to {ctx.pki} (keys 0600). Next: "
                      f"`hardway certs push -i {ctx.inventory.path} --dry-run`.\n")
    else:
        ctx.out.write(f"\nNothing to issue: every certificate in {ctx.pki} fits.\n")
    return 0


# -- push ------------------------------------------------------------------------------


def run_push(args: argparse.Namespace) -> int:
    """Handler of ``certs push`` (and ``--restore``)."""
    ctx = _context(args)
    names = _names(ctx, args)
    from tui.core.interrupt import run_interruptible

    return run_interruptible(_push(ctx, args, names))


async def _push(ctx: Context, args: argparse.Namespace, names: list[str]) -> int:
    from tui.core.pki.report import (
        ProgressPrinter,
        preview_json,
        render_preview,
        render_summary,
    )
    from tui.core.pki.services import RolloutOptions

    options = RolloutOptions(health_timeout=args.health_timeout, sudo=args.sudo)
    async with _workbench(ctx, args) as workbench:
        work = workbench.certs
        if args.restore:
            prepared = await work.prepare_restore(names, options=options)
            if prepared.empty:
                _say(ctx, args, f"Nothing to restore: {ctx.pki}/last-push.json records no "
                     f"change on {', '.join(names)}.")
                return 0
        else:
            def surveying() -> None:
                if not args.json:
                    ctx.err.write(f"Surveying {len(names)} host{'s' * (len(names) != 1)} ...\n")
                    ctx.err.flush()

            prepared = await work.prepare_push(names, options=options, on_survey=surveying)
        what, preview = prepared.title, prepared.preview
        if args.dry_run:
            if args.json:
                _json(ctx, {"dry_run": True, "restore": args.restore,
                            "hosts": {h: [preview_json(p) for p in items]
                                      for h, items in preview.items()}})
            else:
                render_preview(ctx.out, preview, colour=ctx.colour)
                ctx.out.write("\nDry run: nothing was changed.\n")
            return 0
        if not args.json:
            render_summary(ctx.out, preview, what)
        if not args.yes:
            await _confirm(ctx, what)
        result = await prepared.run(ProgressPrinter(ctx.out, names, colour=ctx.colour,
                                                    as_json=args.json))
    return _report(ctx, args, result, prepared.plan.hosts)


def _say(ctx: Context, args: argparse.Namespace, message: str) -> None:
    if args.json:
        _json(ctx, {"ok": True, "message": message})
    else:
        ctx.out.write(message + "\n")


async def _confirm(ctx: Context, what: str) -> None:
    if not sys.stdin.isatty():
        raise UserError("certs push changes files and restarts services on the hosts; it "
                        "asks for confirmation on a terminal, and needs --yes when run "
                        "without one (preview it first with --dry-run).")
    answer = await asyncio.to_thread(input, f"{what.split(' ', 1)[0]} now? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("Nothing was changed (not confirmed).", exit_code=1)


def _report(ctx: Context, args: argparse.Namespace, result: PlanResult,
            hosts: list[str]) -> int:
    failure = result.failure
    untouched = result.untouched_hosts()
    touched = result.touched_hosts()
    restore = args.restore
    if args.json:
        ctx.out.write(json.dumps({
            "ok": result.ok, "failure": dataclasses.asdict(failure) if failure else None,
            "touched": touched, "untouched": untouched}) + "\n")
        return 0 if result.ok else 1
    if failure is None:
        verb = "Restore" if restore else "Push"
        ctx.out.write(f"\n{verb} complete on {len(hosts)} host{'s' * (len(hosts) != 1)}. "
                      f"Check with `hardway certs check -i {ctx.inventory.path}`.\n")
        return 0
    ctx.out.write(f"\n{'Restore' if restore else 'Push'} stopped at {failure.host}: "
                  f"{failure.step} failed.")
    if untouched:
        ctx.out.write(f" Untouched: {', '.join(untouched)}.")
    ctx.out.write("\n")
    if not restore and touched:
        ctx.out.write(f"Put the previous files back on {', '.join(touched)} with "
                      f"`hardway certs push -i {ctx.inventory.path} --restore`.\n")
    return 1


