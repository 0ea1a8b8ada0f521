"""The bootstrap plan: KTHW doc 07 on every controller, previewed, idempotent, verified.

Steps (each with check -> preview -> apply -> verify per controller):

1. ``binaries``      etcd + etcdctl of the wanted version in ``paths.bin`` (from a release
                     tarball, SHA-256 checked; skipped when ``etcd --version`` already says it)
2. ``directories``   ``paths.etcd_config`` and ``paths.etcd_data``, mode 700
3. ``certificates``  ca.pem, kubernetes.pem, kubernetes-key.pem from the PKI directory
                     (atomic puts, the previous file kept as NAME.hardway-bak)
4. ``unit``          etcd.service (diff preview), ``systemctl daemon-reload``, ``enable``
5. ``start``         ``systemctl start --no-block etcd`` on all members at once (Type=notify:
                     a lone member waits for quorum), then wait for every member's
                     ``/health`` under ONE overall deadline (a member whose unit says
                     etcd exited, with a cause in its journal, fails at once)
6. ``verify``        over HTTPS with the client certificate: health, member list equals the
                     inventory, one leader, one cluster ID, versions

A failing start or verify reads ``journalctl -u etcd`` on that host and puts the
diagnosis (:mod:`tui.core.etcd.diagnose`) in the failure detail.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.errors import UserError
from tui.core.etcd.client import EtcdClient, EtcdError
from tui.core.etcd.cluster import ClusterView, observe, problems
from tui.core.etcd.diagnose import Diagnosis, diagnose_journal
from tui.core.etcd.release import CHECKSUMS, Release
from tui.core.etcd.unit import (
    SERVICE,
    UNIT_NAME,
    ClusterState,
    etcd_paths,
    render_unit,
    unit_state,
)
from tui.core.fleet.fleet import Fleet
from tui.core.inventory.model import Host, Inventory
from tui.core.plan import FileChange, Plan, Preview, Step, StepFailed, file_change

START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 30.0
ETCD_FILES = ("ca.pem", "kubernetes.pem", "kubernetes-key.pem")
JOURNAL_LINES = 80


@dataclass
class EtcdContext:
    """What the etcd plans work with.

    Attributes:
        inventory: the cluster.
        fleet: SSH to the controllers.
        client: HTTPS to etcd (cluster CA + kubernetes.pem from ``pki``).
        pki: the local PKI directory (ca.pem, kubernetes.pem, kubernetes-key.pem).
        release: the release tarball to install from (None: only check the version).
        version: the wanted etcd version (the release's, else the inventory's).
        start_timeout: seconds for every member to become healthy after the start.
        diagnoses: per host, what the last failure's journal said.
        journals: per host, the journal lines that diagnosis read (the tail a view shows).
        changed: hosts where this run changed the certificates or the unit (a running
            etcd there is restarted by the start step).
        sudo: run commands through ``sudo -n`` (file writes still need a root login).
    """

    inventory: Inventory
    fleet: Fleet
    client: EtcdClient
    pki: Path
    release: Release | None = None
    version: str = ""
    start_timeout: float = START_TIMEOUT
    diagnoses: dict[str, list[Diagnosis]] = field(default_factory=dict)
    journals: dict[str, list[str]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    sudo: bool = False
    _deadline: float | None = None
    _view: ClusterView | None = None
    _view_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        if not self.version:
            self.version = (self.release.version if self.release is not None
                            else self.inventory.versions.etcd)

    @property
    def controllers(self) -> list[str]:
        """Controller names."""
        return [h.name for h in self.inventory.controllers]

    def host(self, name: str) -> Host:
        """The controller called ``name``."""
        return self.inventory.host(name)

    def remote(self, name: str, logical: str) -> str:
        """A logical path as the host's shell sees it (``Host.path``), shell-quoted."""
        return shlex.quote(self.host(name).path(logical))

    async def sh(self, name: str, command: str, *, check: bool = True,
                 timeout: float = COMMAND_TIMEOUT) -> tuple[int | None, str]:
        """Run ``command`` on ``name``; (status, stdout+stderr).  ``check``: StepFailed
        unless it exits 0."""
        result = (await self.fleet.run([name], command, timeout=timeout,
                                       sudo=self.sudo))[name]
        output = (result.stdout + result.stderr).strip()
        if result.error is not None:
            raise StepFailed(f"{name}: {result.error}")
        if check and result.status != 0:
            raise StepFailed(f"{name}: `{command}` failed (exit {result.status}): "
                             f"{output[-300:]}")
        return result.status, output

    async def read(self, name: str, logical: str) -> bytes | None:
        """A remote file's content (None when absent or unreadable)."""
        try:
            return await self.fleet.get(name, logical)
        except UserError:
            return None

    async def journal(self, name: str, lines: int = JOURNAL_LINES) -> list[str]:
        """The tail of ``journalctl -u etcd`` on ``name`` (empty when it cannot be read)."""
        try:
            _status, text = await self.sh(
                name, f"journalctl -u {SERVICE} -n {lines} --no-pager", check=False)
        except StepFailed:
            return []
        return text.splitlines()

    async def diagnose(self, name: str) -> list[Diagnosis]:
        """Read the journal of ``name`` and diagnose it (kept in ``diagnoses``, the lines
        in ``journals``)."""
        lines = await self.journal(name)
        found = diagnose_journal(name, lines, self.inventory)
        self.journals[name] = lines
        self.diagnoses[name] = found
        return found

    async def view(self, *, fresh: bool = False) -> ClusterView:
        """The cluster as etcd reports it (observed once per plan run unless ``fresh``)."""
        async with self._view_lock:
            if self._view is None or fresh:
                self._view = await observe(self.inventory, self.client)
            return self._view


# -- step 1: binaries ---------------------------------------------------------------------

async def installed_version(ctx: EtcdContext, name: str) -> str | None:
    """What ``etcd --version`` says on ``name`` (None when etcd is not there)."""
    binary = ctx.remote(name, etcd_paths(ctx.inventory).binary)
    status, out = await ctx.sh(name, f"{binary} --version", check=False)
    if status != 0:
        return None
    for line in out.splitlines():
        if line.startswith("etcd Version:"):
            return line.split(":", 1)[1].strip()
    return None


def binaries_step(ctx: EtcdContext) -> Step:
    """Step 1: etcd and etcdctl of the wanted version in ``paths.bin``."""
    paths = etcd_paths(ctx.inventory)
    targets = {"etcd": paths.binary, "etcdctl": paths.etcdctl}

    async def check(name: str) -> str | None:
        found = await installed_version(ctx, name)
        if found == ctx.version:
            status, _out = await ctx.sh(name, f"test -x {ctx.remote(name, paths.etcdctl)}",
                                        check=False)
            if status == 0:
                return f"etcd {found} already installed"
        return None

    async def preview(name: str) -> Preview:
        found = await installed_version(ctx, name)
        if ctx.release is None:
            return Preview(notes=(f"installed: {found or 'none'}; wanted {ctx.version}; no "
                                  "release tarball given (--etcd-tarball or the cache)",))
        files = tuple(
            file_change(targets[b], ctx.release.binaries[b], None, mode=0o755,
                        diff_text=False,
                        description=f"{b} {ctx.release.version} from {ctx.release.path.name}")
            for b in targets)
        return Preview(files=files, notes=(f"installed: {found or 'none'}",
                                           ctx.release.checksum_note))

    async def apply(name: str) -> str:
        if ctx.release is None:
            raise StepFailed(f"etcd {ctx.version} is not installed on {name} and no release "
                             "tarball was given: pass --etcd-tarball FILE or put "
                             f"etcd-v{ctx.version}-linux-amd64.tar.gz in the cache directory.")
        for binary, target in targets.items():
            put = await ctx.fleet.put(name, ctx.release.binaries[binary], target, mode=0o755)
            if not put.ok:
                raise StepFailed(f"{name}: {put.error}")
        check = ("checksum verified" if ctx.release.checksum == "verified"
                 else f"no {CHECKSUMS} to check against")
        return f"installed etcd {ctx.release.version} ({check})"

    async def verify(name: str) -> str:
        found = await installed_version(ctx, name)
        if found != ctx.version:
            raise StepFailed(f"{name}: etcd --version says {found or 'nothing'}, "
                             f"not {ctx.version}")
        return f"etcd --version: {found}"

    return Step("binaries", ctx.controllers, check=check, preview=preview, apply=apply,
                verify=verify)


# -- step 2: directories ------------------------------------------------------------------

def directories_step(ctx: EtcdContext) -> Step:
    """Step 2: the config and data directories, mode 700."""
    paths = etcd_paths(ctx.inventory)

    def commands(name: str) -> list[str]:
        dirs = f"{ctx.remote(name, paths.config)} {ctx.remote(name, paths.data)}"
        return [f"mkdir -p {dirs} && chmod 700 {dirs}"]

    async def modes(name: str) -> str:
        dirs = f"{ctx.remote(name, paths.config)} {ctx.remote(name, paths.data)}"
        _status, out = await ctx.sh(name, f"stat -c %a {dirs} 2>/dev/null", check=False)
        return " ".join(out.split())

    async def check(name: str) -> str | None:
        if await modes(name) == "700 700":
            return f"{paths.config} and {paths.data} exist with mode 700"
        return None

    async def preview(name: str) -> Preview:
        return Preview(commands=tuple(commands(name)))

    async def apply(name: str) -> str:
        for command in commands(name):
            await ctx.sh(name, command)
        return "created, mode 700"

    async def verify(name: str) -> str:
        found = await modes(name)
        if found != "700 700":
            raise StepFailed(f"{name}: the directories have modes {found or 'none'}, not 700")
        return "mode 700"

    return Step("directories", ctx.controllers, check=check, preview=preview, apply=apply,
                verify=verify)


# -- step 3: certificates -----------------------------------------------------------------

def certificates_step(ctx: EtcdContext) -> Step:
    """Step 3: ca.pem, kubernetes.pem, kubernetes-key.pem from the PKI directory."""
    paths = etcd_paths(ctx.inventory)

    def local(file: str) -> bytes:
        path = ctx.pki / file
        try:
            return path.read_bytes()
        except OSError as exc:
            raise UserError(f"The PKI directory {ctx.pki} lacks {file} ({exc.strerror}); run "
                            "`hardway certs issue` first or give --pki.") from None

    async def changes(name: str) -> list[FileChange]:
        out = []
        for file in ETCD_FILES:
            new = local(file)
            old = await ctx.read(name, f"{paths.config}/{file}")
            secret = file.endswith("-key.pem")
            out.append(file_change(f"{paths.config}/{file}", new, old,
                                   mode=0o600 if secret else 0o644, secret=secret,
                                   diff_text=False, description=f"{file} from {ctx.pki}"))
        return out

    async def check(name: str) -> str | None:
        if not any(c.changed for c in await changes(name)):
            return f"{', '.join(ETCD_FILES)} already match {ctx.pki}"
        return None

    async def preview(name: str) -> Preview:
        return Preview(files=tuple(await changes(name)))

    async def apply(name: str) -> str:
        written = []
        for file in ETCD_FILES:
            mode = 0o600 if file.endswith("-key.pem") else 0o644
            put = await ctx.fleet.put(name, local(file), f"{paths.config}/{file}", mode=mode)
            if not put.ok:
                raise StepFailed(f"{name}: {put.error}")
            if put.changed:
                written.append(file + (" (previous kept)" if put.backup else ""))
                ctx.changed.add(name)
        return "wrote " + (", ".join(written) or "nothing")

    async def verify(name: str) -> str:
        if any(c.changed for c in await changes(name)):
            raise StepFailed(f"{name}: the certificates in {paths.config} still differ")
        return "match"

    return Step("certificates", ctx.controllers, check=check, preview=preview, apply=apply,
                verify=verify)


# -- step 4: unit -------------------------------------------------------------------------

def unit_step(ctx: EtcdContext) -> Step:
    """Step 4: etcd.service, daemon-reload, enable."""
    paths = etcd_paths(ctx.inventory)
    commands = (f"systemctl daemon-reload && systemctl enable {SERVICE}",)

    def text(name: str, old: bytes | None) -> bytes:
        # a member that joined a running cluster (replace) keeps "existing": "new" with an
        # empty data directory would recreate the member ID the cluster removed
        state: ClusterState = "existing" if old is not None and unit_state(
            old.decode("utf-8", "replace")) == "existing" else "new"
        return render_unit(ctx.inventory, ctx.host(name), state=state).encode()

    async def enabled(name: str) -> bool:
        status, _out = await ctx.sh(name, f"systemctl is-enabled {SERVICE}", check=False)
        return status == 0

    async def check(name: str) -> str | None:
        old = await ctx.read(name, paths.unit)
        if old == text(name, old) and await enabled(name):
            return f"{UNIT_NAME} is up to date and enabled"
        return None

    async def preview(name: str) -> Preview:
        old = await ctx.read(name, paths.unit)
        change = file_change(paths.unit, text(name, old), old,
                             description="KTHW doc 07's unit")
        return Preview(commands=commands, files=(change,))

    async def apply(name: str) -> str:
        old = await ctx.read(name, paths.unit)
        put = await ctx.fleet.put(name, text(name, old), paths.unit, mode=0o644)
        if not put.ok:
            raise StepFailed(f"{name}: {put.error}")
        for command in commands:
            await ctx.sh(name, command)
        if put.changed:
            ctx.changed.add(name)
        return "unit written" if put.changed else "unit unchanged"

    async def verify(name: str) -> str:
        if not await enabled(name):
            raise StepFailed(f"{name}: systemctl is-enabled {SERVICE} does not say enabled")
        return "enabled"

    return Step("unit", ctx.controllers, check=check, preview=preview, apply=apply,
                verify=verify)


# -- step 5: start ------------------------------------------------------------------------

UNIT_CHECK = 1.0
"""Seconds between looks at the unit's state while waiting for ``/health`` (the first one
this long after the wait begins: a ``start --no-block`` may not have run yet)."""
PROBE_TIMEOUT = 2.0
"""The longest one ``/health`` probe may take while waiting (a port held by something that
accepts and never answers would otherwise take the client's whole timeout)."""


async def unit_exited(ctx: EtcdContext, name: str) -> str | None:
    """How etcd's unit on ``name`` says its process is gone (failed, or exited and waiting
    for ``Restart=on-failure``), or None while it runs or starts."""
    status, out = await ctx.sh(name, f"systemctl show --property=ActiveState "
                                     f"--property=SubState {SERVICE}", check=False)
    if status != 0:
        return None
    state = dict(line.partition("=")[::2] for line in out.splitlines())
    if state.get("ActiveState") == "failed":
        return "etcd.service failed"
    if state.get("SubState") == "auto-restart":
        return "etcd exited (systemd restarts it after RestartSec)"
    return None


async def probe_health(ctx: EtcdContext, name: str, timeout: float = PROBE_TIMEOUT,
                       ) -> tuple[bool, str, float | None]:
    """``/health`` of ``name`` within ``timeout``: (healthy, detail, round trip)."""
    address = str(ctx.host(name).address)
    try:
        health = await asyncio.wait_for(ctx.client.health(address), timeout)
    except TimeoutError:
        return False, f"https://{address}:2379/health gave no answer within {timeout:.1f} s", \
            None
    return health.ok, health.detail, health.rtt


async def wait_healthy(ctx: EtcdContext, name: str, deadline: float) -> str:
    """Poll ``/health`` of ``name`` until ``deadline`` (monotonic); StepFailed with the
    journal's diagnosis when it does not come, or as soon as the unit says etcd exited
    and its journal says why (a port in use, a wrong flag: waiting changes nothing)."""
    next_look = time.monotonic() + UNIT_CHECK
    while True:
        probe = max(0.5, min(PROBE_TIMEOUT, deadline - time.monotonic()))
        healthy, last, rtt = await probe_health(ctx, name, probe)
        if healthy:
            return f"healthy (/health answered in {rtt or 0:.2f} s)"
        now = time.monotonic()
        if now >= next_look:
            next_look = now + UNIT_CHECK
            exited = await unit_exited(ctx, name)
            found = await ctx.diagnose(name) if exited else []
            if found:
                why = "; ".join(d.summary for d in found)
                raise StepFailed(f"{name}: {exited}; {why}")
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    found = await ctx.diagnose(name)
    why = "; ".join(d.summary for d in found) or last
    raise StepFailed(f"{name} did not become healthy within {ctx.start_timeout:g} s: {why}")


def start_step(ctx: EtcdContext) -> Step:
    """Step 5: start every member at once (restart where this run changed its files), one
    overall deadline."""
    command = f"systemctl start --no-block {SERVICE}"
    restart = f"systemctl restart --no-block {SERVICE}"

    async def active(name: str) -> bool:
        status, _out = await ctx.sh(name, f"systemctl is-active {SERVICE}", check=False)
        return status == 0

    async def check(name: str) -> str | None:
        if name in ctx.changed:
            return None
        if await active(name) and (await probe_health(ctx, name))[0]:
            return "etcd is active and healthy"
        return None

    async def preview(name: str) -> Preview:
        return Preview(commands=(command,), notes=(
            f"started on every controller at once; all must answer /health within "
            f"{ctx.start_timeout:g} s",
            f"`{restart}` instead where etcd runs and step 3 or 4 changed a file"))

    done: dict[str, str] = {}

    async def apply(name: str) -> str:
        if ctx._deadline is None:
            ctx._deadline = time.monotonic() + ctx.start_timeout
        if name in ctx.changed and await active(name):
            await ctx.sh(name, restart)
            done[name] = "restarted (its files changed)"
        else:
            await ctx.sh(name, command)
            done[name] = "started"
        return done[name]

    async def verify(name: str) -> str:
        deadline = ctx._deadline or time.monotonic() + ctx.start_timeout
        try:
            return await wait_healthy(ctx, name, deadline)
        except StepFailed as exc:  # say that it was restarted, then why it failed
            restarted = done.get(name, "").startswith("restarted")
            raise StepFailed(f"{done[name]}; {exc}" if restarted else str(exc)) from None

    return Step("start", ctx.controllers, check=check, preview=preview, apply=apply,
                verify=verify)


# -- step 6: verify -----------------------------------------------------------------------

def verify_step(ctx: EtcdContext) -> Step:
    """Step 6: the cluster over HTTPS equals the inventory."""

    async def preview(name: str) -> Preview:
        return Preview(notes=("GET /health, POST /v3/cluster/member/list and "
                              "/v3/maintenance/status with kubernetes.pem",))

    async def verify(name: str) -> str:
        view = await ctx.view(fresh=ctx._view is None)
        found = [p for p in problems(view, ctx.inventory) if p.host in (name, "")]
        if found:
            raise StepFailed("; ".join(p.message for p in found))
        member = view.members.get(name)
        status = view.statuses.get(name)
        role = "leader" if status is not None and status.is_leader else "follower"
        version = status.version if status is not None else "?"
        ident = member.hex_id if member is not None else "?"
        return f"{ident} {role}, etcd {version}, cluster {view.cluster_id:x}"

    return Step("verify", ctx.controllers, preview=preview, verify=verify)


def bootstrap_plan(ctx: EtcdContext) -> Plan:
    """The six steps of KTHW doc 07 as one parallel plan."""
    return Plan([binaries_step(ctx), directories_step(ctx), certificates_step(ctx),
                 unit_step(ctx), start_step(ctx), verify_step(ctx)], mode="parallel")


async def pull_errors(ctx: EtcdContext) -> None:
    """Fill ``ctx.diagnoses`` for every controller whose etcd is not healthy."""
    async def one(name: str) -> None:
        if ctx.diagnoses.get(name):  # the failed step has read its journal already
            return
        healthy, _detail, _rtt = await probe_health(ctx, name)
        if not healthy:
            await ctx.diagnose(name)

    await asyncio.gather(*(one(n) for n in ctx.controllers))


__all__ = ["EtcdContext", "EtcdError", "bootstrap_plan", "installed_version", "pull_errors",
           "wait_healthy"]
