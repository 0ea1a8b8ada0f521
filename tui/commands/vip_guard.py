"""`hardway vip guard --install | --uninstall`: the guard as a service on the hypervisor."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from tui.core.errors import UserError

if TYPE_CHECKING:
    from tui.commands.vip import _Context
    from tui.core.lb.guard_install import GuardInstall

SERVICE_HELP = """\
as a service:
  --install previews, then (with --yes, or after asking on a terminal) installs the
  guard as a service on the hypervisor with the --interval/--rise/--fall/--timeout
  given: a FreeBSD rc.d script (/usr/local/etc/rc.d/hardway_guard, run under
  daemon(8), `sysrc hardway_guard_enable=YES`, `service hardway_guard start`) or a
  systemd unit (/etc/systemd/system/hardway-guard.service, `systemctl enable --now`),
  as the hypervisor's `uname -s` says unless --service chooses. The service reads its
  own inventory and the cluster CA from /usr/local/etc/hardway/guard (rc.d) or
  /etc/hardway/guard (systemd): only the controllers, the VIP and the hypervisor, no
  SSH settings and no TSIG secret (the guard never updates DNS). It runs `hardway vip
  guard --local` there, so hardway must be installed on the hypervisor
  (--guard-command names it when it is not /usr/local/bin/hardway). --dry-run shows
  the files (diff against the hypervisor's) and commands only; a rerun with nothing to
  change does nothing. --uninstall stops, disables and moves the files away (each kept
  as FILE.hardway-bak).

  hardway vip guard -i hardway.toml --install --dry-run
  hardway vip guard -i hardway.toml --install --fall 3 --interval 2 --yes
  hardway vip guard -i hardway.toml --uninstall --yes
"""


def add_service_options(guard: argparse.ArgumentParser) -> None:
    """The ``--install``/``--uninstall`` options of ``vip guard``."""
    guard.description = (guard.description or "") + "\n" + SERVICE_HELP
    which = guard.add_mutually_exclusive_group()
    which.add_argument("--install", action="store_true",
                       help="install the guard as a service on the hypervisor (a "
                            "previewed plan)")
    which.add_argument("--uninstall", action="store_true",
                       help="stop the guard service and remove its files")
    guard.add_argument("--service", choices=("rc.d", "systemd"),
                       help="the kind of service (default: FreeBSD -> rc.d, Linux -> "
                            "systemd, from the hypervisor's uname -s)")
    guard.add_argument("--guard-command", default=None, metavar="CMD",
                       help="the hardway command on the hypervisor (default "
                            "/usr/local/bin/hardway)")
    guard.add_argument("--yes", action="store_true",
                       help="install/uninstall without asking (needed when not on a "
                            "terminal)")


def run_service(ctx: _Context, args: argparse.Namespace) -> int:
    """Handler of ``vip guard --install`` and ``--uninstall``."""
    if args.local:
        raise UserError("--local is what the installed service runs; install from the "
                        "admin machine without it.")
    return asyncio.run(_service(ctx, args))


async def _service(ctx: _Context, args: argparse.Namespace) -> int:
    from tui.commands.vip import _fleet, _hv
    from tui.core.lb.guard_install import prepare_guard_install
    from tui.core.lb.guard_service import DEFAULT_COMMAND, GuardService, ServiceKind

    ca_pem = b""
    if args.install:
        pki = Path(args.pki) if args.pki else ctx.inventory.path.parent / "pki"
        try:
            ca_pem = (pki / "ca.pem").read_bytes()
        except OSError as exc:
            raise UserError(f"The guard's probes verify TLS against the cluster CA, but "
                            f"{pki / 'ca.pem'} cannot be read ({exc.strerror or exc}); give "
                            "the PKI directory with --pki.") from None
    service = GuardService(
        ServiceKind(args.service or "systemd"), ctx.layout, interval=args.interval,
        rise=args.rise, fall=args.fall, timeout=args.timeout,
        command=args.guard_command or DEFAULT_COMMAND, ipfw=args.ipfw)
    async with _fleet(ctx, args) as fleet:
        prepared = await prepare_guard_install(
            ctx.inventory, _hv(ctx, fleet, args), service, ca_pem,
            detect=args.service is None, uninstall=args.uninstall)
        return await _run(ctx, args, prepared)


async def _run(ctx: _Context, args: argparse.Namespace, prepared: GuardInstall) -> int:
    from tui.commands.vip import _confirm
    from tui.core.pki.report import ProgressPrinter, preview_json, render_preview

    verb = "Uninstall" if prepared.uninstall else "Install"
    what = (f"{verb} the VIP guard ({prepared.service.kind.value}) on {prepared.host}")
    preview = await prepared.plan.preview()
    todo = [item for items in preview.values() for item in items
            if item.done is None and not item.preview.empty]
    if args.json and (args.dry_run or not todo):
        ctx.out.write(json.dumps({"dry_run": args.dry_run, "host": prepared.host,
                                  "service": prepared.service.kind.value,
                                  "nothing_to_do": not todo,
                                  "steps": [preview_json(i) for i in preview[prepared.host]]},
                                 indent=2) + "\n")
        return 0
    if not args.json:
        ctx.out.write(f"{what}:\n\n")
        render_preview(ctx.out, preview, colour=ctx.colour)
    if not todo:
        if not args.json:
            ctx.out.write("\nNothing to do: the hypervisor is already as wanted.\n")
        return 0
    if args.dry_run:
        ctx.out.write("\nDry run: nothing was changed.\n")
        return 0
    if not args.yes:
        await _confirm(what)
    if not args.json:
        ctx.out.write("\n")
    printer = ProgressPrinter(ctx.out, [prepared.host], colour=ctx.colour, as_json=args.json)
    result = await prepared.plan.run(printer)
    if args.json:
        return 0 if result.ok else 1
    if result.ok:
        done = ("removed; the ipfw rules stay as the guard left them" if prepared.uninstall
                else f"running (`{_status_command(prepared)}` on {prepared.host})")
        ctx.out.write(f"\nThe VIP guard service is {done}.\n")
        return 0
    failure = result.failure
    assert failure is not None
    ctx.out.write(f"\n{verb} stopped at '{failure.step}' on {failure.host}: "
                  f"{failure.detail}\n")
    return 1


def _status_command(prepared: GuardInstall) -> str:
    from tui.core.lb.guard_service import RC_NAME, UNIT_NAME, ServiceKind

    if prepared.service.kind is ServiceKind.RC_D:
        return f"service {RC_NAME} status"
    return f"systemctl status {UNIT_NAME}"


class LiveLine:
    """The foreground guard's status line: the last line of the terminal, redrawn in
    place (``\r`` + erase line), cleared before other output."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = False

    def draw(self, text: str) -> None:
        """Show ``text`` (cut to the terminal's width)."""
        width = shutil.get_terminal_size((100, 24)).columns - 1
        if len(text) > width:
            text = text[:max(0, width - 1)] + "…"
        self.out.write("\r\x1b[K" + text)
        self.out.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if self.shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self.shown = False


__all__ = ["LiveLine", "add_service_options", "run_service"]
