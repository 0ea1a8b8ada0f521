"""The certificate rollout: a rolling Plan that pushes the PKI and restarts behind health probes.

For each host in turn (controllers first, then workers; ``Plan(mode="rolling")``):

1. ``put files``: every file of :func:`~tui.core.pki.survey.placements` (keys 0600), staged
   under temp names with a journal on the host, recorded in ``last-push.json``, then
   switched back to back, each certificate next to its key (:mod:`tui.core.fleet.staged`);
   the previous version is kept as ``NAME.hardway-bak``;
2. ``repair kube-apiserver.service``: a ``\\`` continuation that dropped ExecStart flags is
   mended and a missing --tls-cert-file/--tls-private-key-file added (then daemon-reload;
   see :mod:`tui.core.pki.unit_repair`);
3. ``remove stale apiserver.crt``: the self-signed apiserver.crt/.key in --cert-dir are moved
   to ``.hardway-bak`` once the unit has --tls-cert-file (kube-apiserver would reuse them);
4. ``restart etcd``, ``restart kube-apiserver``, ... for the services whose files changed,
   each verified by its health probe (etcd /health with a client certificate, apiserver
   /livez verified against the new CA, ``systemctl is-active`` for the others; see
   :mod:`tui.core.pki.services`).

A host that does not come back stops the rollout there; later hosts are untouched.  Every
change is recorded in ``PKI/last-push.json`` so :func:`tui.core.pki.restore.build_restore`
can put exactly those backups back (and restart what they concern).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.core.errors import UserError
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.sftp import BACKUP_SUFFIX
from tui.core.fleet.staged import (
    JOURNAL_PATH,
    FileWrite,
    Journal,
    StagingFailed,
    read_journal,
    stage,
    sweep_temps,
)
from tui.core.inventory.model import Host, Inventory
from tui.core.pki.ca import CA_CERT_FILE
from tui.core.pki.diagnose import CertFinding, FixAction
from tui.core.pki.inspect import CertInfo, chains_to, inspect_pem, key_matches
from tui.core.pki.kubeconfig import local_kubeconfig_checks
from tui.core.pki.restore import MANIFEST_FILE, PushManifest, build_restore
from tui.core.pki.services import (
    RESTART_ORDER,
    RolloutOptions,
    ServiceProbes,
    login_user,
    remote,
    sudo_for,
)
from tui.core.pki.survey import (
    HostSurvey,
    Placement,
    Survey,
    exec_start_argv,
    flag_value,
    placements,
    remote_path,
)
from tui.core.pki.unit_repair import UnitRepair, repair_unit
from tui.core.plan import (
    FileChange,
    Plan,
    PlanEvent,
    PlanResult,
    Preview,
    Step,
    StepFailed,
    StepPreview,
    file_change,
    file_removal,
)

__all__ = ["MANIFEST_FILE", "Rollout", "RolloutOptions", "add_push_findings", "build_restore",
           "switch_order"]


# -- the rollout -----------------------------------------------------------------------


@dataclass
class _HostPush:
    """Per-host state of a rollout: predicted changes, then what really changed."""

    host: Host
    survey: HostSurvey
    placements: list[Placement]
    unit: UnitRepair | None = None
    stale: tuple[str, ...] = ()
    file_services: set[str] = field(default_factory=set)
    extra_services: set[str] = field(default_factory=set)

    def affected(self) -> set[str]:
        return (self.file_services | self.extra_services) & set(self.survey.units)


class Rollout:
    """The push of the local PKI to the cluster, as a rolling :class:`Plan`.

    Args:
        inventory: the cluster.
        fleet: an open Fleet.
        survey: a fresh survey of the hosts to push to (see :mod:`tui.core.pki.survey`).
        pki_dir: the local PKI directory (ca.pem, ca-key.pem and the issued pairs).
        names: hosts to push to, in order (default: every surveyed host).
        options: timeouts and sudo.

    Raises:
        UserError: a local file is missing, a pair does not match or does not chain to
            the CA, or a selected host could not be surveyed.
    """

    def __init__(self, inventory: Inventory, fleet: Fleet, survey: Survey, pki_dir: Path,
                 *, names: Sequence[str] | None = None,
                 options: RolloutOptions | None = None) -> None:
        self.inventory = inventory
        self.fleet = fleet
        self.pki_dir = Path(pki_dir)
        self.options = options or RolloutOptions()
        self.manifest = PushManifest(self.pki_dir / MANIFEST_FILE)
        selected = list(names) if names is not None else list(survey.hosts)
        unreachable = [survey.hosts[n] for n in selected if survey.hosts[n].error]
        if unreachable:
            raise UserError("Cannot push: " + "; ".join(f"{h.error}" for h in unreachable)
                            + ". Bring the host back, or leave it out with -x "
                            + ",".join(h.name for h in unreachable) + ".")
        self._local = _load_local(self.pki_dir, {p.source for n in selected for p in
                                                 self._placements(inventory.host(n))},
                                  inventory)
        self._ca_pem = self._local[CA_CERT_FILE]
        self._hosts = {n: self._prepare(survey.hosts[n]) for n in selected}
        self.probes = ServiceProbes(
            inventory, fleet, self.options, ca_pem=self._ca_pem,
            etcd_pair=(self._local["kubernetes.pem"], self._local["kubernetes-key.pem"])
            if "kubernetes.pem" in self._local else None)
        self.plan = self._build()

    # -- preparation --------------------------------------------------------------------

    def _prepare(self, survey: HostSurvey) -> _HostPush:
        host = survey.host
        push = _HostPush(host, survey, self._placements(host))
        for placement in push.placements:
            remote = survey.files.get(placement.path)
            if remote is None or remote.sha256 != _sha(self._local[placement.source]):
                push.file_services.update(placement.services)
        if host.role == "controller" and "kube-apiserver" in survey.units:
            unit_file = survey.files.get(survey.units["kube-apiserver"])
            if unit_file is not None and unit_file.data is not None:
                k = self.inventory.paths.kubernetes_config
                text = unit_file.data.decode("utf-8", "replace")
                required = [
                    ("--tls-cert-file", self._unit_path(host, text, f"{k}/kubernetes.pem")),
                    ("--tls-private-key-file",
                     self._unit_path(host, text, f"{k}/kubernetes-key.pem"))]
                repair = repair_unit(text, required=required)
                if repair.changed:
                    push.unit = repair
                    push.extra_services.add("kube-apiserver")
            if survey.stale_files:
                push.stale = survey.stale_files
                push.extra_services.add("kube-apiserver")
        return push

    def _placements(self, host: Host) -> list[Placement]:
        """The host's placements; an optional one (a kubeconfig) when the PKI has it."""
        return [p for p in placements(self.inventory, host)
                if not p.optional or (self.pki_dir / p.source).is_file()]

    @staticmethod
    def _unit_path(host: Host, unit_text: str, path: str) -> str:
        """``path`` as this host's unit spells paths: through ``root`` when it does so."""
        root = host.root.rstrip("/")
        if root and root + "/" in unit_text:
            return remote_path(host, path)
        return path

    # -- plan ---------------------------------------------------------------------------

    def _build(self) -> Plan:
        names = list(self._hosts)
        controllers = [n for n in names if self._hosts[n].host.role == "controller"]
        steps = [
            Step("put files", names, check=self._files_check, preview=self._files_preview,
                 apply=self._files_apply),
            Step("repair kube-apiserver.service", controllers, check=self._unit_check,
                 preview=self._unit_preview, apply=self._unit_apply),
            Step("remove stale apiserver.crt", controllers, check=self._stale_check,
                 preview=self._stale_preview, apply=self._stale_apply),
        ]
        for service in RESTART_ORDER:
            hosts = [n for n in names if service in self._hosts[n].survey.units]
            if hosts:
                steps.append(self._restart_step(service, hosts))
        return Plan(steps, mode="rolling")

    async def preview(self) -> dict[str, list[StepPreview]]:
        """Per host, what the push would do (see :meth:`Plan.preview`)."""
        return await self.plan.preview()

    async def run(self, on_event: Callable[[PlanEvent], None] | None = None) -> PlanResult:
        """Forget the previous push record of these hosts, then run the plan."""
        for name in self._hosts:
            self.manifest.clear(name)
        return await self.plan.run(on_event)

    # put files

    async def _files_check(self, name: str) -> str | None:
        push = self._hosts[name]
        if any(self._differs(push, p) for p in push.placements):
            return None
        return f"all {len(push.placements)} files already in place"

    def _differs(self, push: _HostPush, placement: Placement) -> bool:
        remote = push.survey.files.get(placement.path)
        return remote is None or remote.sha256 != _sha(self._local[placement.source])

    async def _files_preview(self, name: str) -> Preview:
        push = self._hosts[name]
        changes = [self._file_change(push, p) for p in push.placements]
        notes = self._flag_notes(push)
        if self._sudo(name):
            notes.append(f"as {login_user(self.fleet, name) or 'this login'}: staged in its "
                         "home (~/.hardway-staging), moved into place with `sudo -n`")
        return Preview(files=tuple(changes), notes=tuple(notes))

    def _file_change(self, push: _HostPush, placement: Placement) -> FileChange:
        new = self._local[placement.source]
        remote = push.survey.files.get(placement.path)
        old = remote.data if remote is not None else None
        description = f"from {placement.source}"
        if not placement.secret:
            description = _describe_cert(new, old, placement.source)
        if placement.secret:  # never read back: compare digests only
            present = remote is not None and remote.present
            return FileChange(placement.path, len(new), _sha(new), placement.mode,
                              old_size=remote.size if present and remote else None,
                              old_sha256=remote.sha256 if present and remote else None,
                              secret=True, description=description)
        return file_change(placement.path, new, old, mode=placement.mode,
                           description=description, diff_text=False)

    def _flag_notes(self, push: _HostPush) -> list[str]:
        if push.survey.exec_start is None:
            return []
        argv = exec_start_argv(push.survey.exec_start)
        written = {p.path for p in push.placements}
        notes = []
        for flag in ("--tls-cert-file", "--tls-private-key-file", "--client-ca-file",
                     "--etcd-certfile", "--etcd-keyfile"):
            value = flag_value(argv, flag)
            if value is None:
                continue
            logical = value
            root = push.host.root.rstrip("/")
            if root and value.startswith(root + "/"):
                logical = value[len(root):]
            if logical not in written:
                notes.append(f"kube-apiserver on {push.host.name} reads {flag}={value}, "
                             "which this push does not write")
        return notes

    async def _files_apply(self, name: str) -> str:
        """Stage every file, record the change, then switch them back to back.

        A certificate is switched right next to its key (see :func:`switch_order`), the
        change is in ``last-push.json`` before anything is replaced, and the host keeps a
        journal until the switch is done, so an interruption is found by ``certs check``.
        """
        push = self._hosts[name]
        push.file_services = set()
        swept = await sweep_temps(self.fleet, name, [p.path for p in push.placements],
                                  sudo=self._sudo(name))
        order = switch_order(push.placements)
        files = [FileWrite(p.path, self._local[p.source], p.mode) for p in order]
        try:
            staged = await stage(self.fleet, name, files, label="certificate push",
                                 sudo=self._sudo(name))
        except StagingFailed as exc:
            raise StepFailed(str(exc)) from None
        by_path = {p.path: p for p in push.placements}
        for entry in staged.changed:  # record before replacing
            placement = by_path[entry.path]
            push.file_services.update(placement.services)
            installed = set(placement.services) & set(push.survey.units)
            self.manifest.record(name, entry.path, installed, backup=entry.existed)
        try:
            await staged.switch()
        except StagingFailed as exc:
            raise StepFailed(str(exc)) from None
        written, unchanged = len(staged.changed), len(staged.unchanged)
        detail = f"{written} written"
        if unchanged:
            detail += f", {unchanged} unchanged"
        if written:
            detail += ", previous versions kept as *" + BACKUP_SUFFIX
        if swept:
            detail += (f"; removed {len(swept)} temp file{'s' * (len(swept) != 1)} left by an "
                       "interrupted push")
        return detail

    # unit repair

    async def _unit_check(self, name: str) -> str | None:
        if self._hosts[name].unit is None:
            if "kube-apiserver" not in self._hosts[name].survey.units:
                return "kube-apiserver is not installed"
            return "ExecStart has --tls-cert-file and --tls-private-key-file"
        return None

    async def _unit_preview(self, name: str) -> Preview:
        push = self._hosts[name]
        if push.unit is None:
            return Preview()
        path = push.survey.units["kube-apiserver"]
        old = push.survey.files[path].data
        change = file_change(path, push.unit.text.encode(), old,
                             description="kube-apiserver unit with ExecStart mended")
        return Preview(commands=(self._command("systemctl daemon-reload", name),),
                       files=(change,),
                       notes=push.unit.notes)

    async def _unit_apply(self, name: str) -> str:
        push = self._hosts[name]
        assert push.unit is not None
        path = push.survey.units["kube-apiserver"]
        try:  # staged like the certificates: backup kept, sudo when the login needs it
            staged = await stage(self.fleet, name, [FileWrite(path, push.unit.text.encode(),
                                                              0o644)],
                                 label="kube-apiserver unit", sudo=self._sudo(name))
            for entry in staged.changed:
                self.manifest.record(name, path, ("kube-apiserver",), backup=entry.existed)
            await staged.switch()
        except StagingFailed as exc:
            raise StepFailed(f"could not write {path}: {exc}") from None
        await self._remote(name, "systemctl daemon-reload")
        return "; ".join(push.unit.notes)

    # stale self-signed certificate

    async def _stale_check(self, name: str) -> str | None:
        if not self._hosts[name].stale:
            return f"no apiserver.crt in {self._hosts[name].survey.cert_dir}"
        return None

    def _stale_commands(self, push: _HostPush) -> list[str]:
        return [(f"mv -f {shlex.quote(remote_path(push.host, p))} "
                 f"{shlex.quote(remote_path(push.host, p) + BACKUP_SUFFIX)}")
                for p in push.stale]

    async def _stale_preview(self, name: str) -> Preview:
        push = self._hosts[name]
        if not push.stale:
            return Preview()
        files = tuple(file_removal(p, None, present=True, description="self-signed, generated by "
                                   "kube-apiserver; kept as " + p.rsplit("/", 1)[-1]
                                   + BACKUP_SUFFIX) for p in push.stale)
        return Preview(commands=tuple(self._command(c, name)
                                      for c in self._stale_commands(push)),
                       files=files)

    async def _stale_apply(self, name: str) -> str:
        push = self._hosts[name]
        for path, command in zip(push.stale, self._stale_commands(push), strict=True):
            await self._remote(name, command)
            self.manifest.record(name, path, ("kube-apiserver",), backup=True)
        return f"moved {', '.join(p.rsplit('/', 1)[-1] for p in push.stale)} to *{BACKUP_SUFFIX}"

    # restarts

    def _restart_step(self, service: str, hosts: list[str]) -> Step:
        async def check(name: str) -> str | None:
            if service in self._hosts[name].affected():
                return None
            return f"nothing {service} reads has changed"

        async def preview(name: str) -> Preview:
            if service not in self._hosts[name].affected():
                return Preview()
            return Preview(commands=(self._command(f"systemctl restart {service}", name),),
                           notes=(f"then wait up to {self.options.health_timeout:g} s for "
                                  f"{self.probes.describe(service, name)}",))

        async def apply(name: str) -> str:
            await self._remote(name, f"systemctl restart {service}")
            return ""

        async def verify(name: str) -> str:
            return await self.probes.wait(service, name, verified=True)

        return Step(f"restart {service}", hosts, check=check, preview=preview, apply=apply,
                    verify=verify)

    # remote commands

    def _sudo(self, name: str) -> bool:
        return sudo_for(self.fleet, name, self.options)

    def _command(self, command: str, name: str | None = None) -> str:
        sudo = self.options.sudo if name is None else self._sudo(name)
        return f"sudo {command}" if sudo else command

    async def _remote(self, name: str, command: str) -> str:
        return await remote(self.fleet, name, command, sudo=self._sudo(name),
                            timeout=self.options.command_timeout)


# -- interrupted pushes ----------------------------------------------------------------

PUSH_OR_RESTORE = (FixAction.PUSH, FixAction.RESTORE)
"""Finish the interrupted push, or put its backups back (alternatives)."""


def switch_order(items: Sequence[Placement]) -> list[Placement]:
    """``items`` with each certificate immediately followed by its key (``X.pem`` then
    ``X-key.pem`` in the same directory), otherwise in their given order."""
    def pair(placement: Placement) -> str:
        return placement.path.removesuffix(".pem").removesuffix("-key")

    firsts: dict[str, int] = {}
    for index, placement in enumerate(items):
        firsts.setdefault(pair(placement), index)
    return sorted(items, key=lambda p: (firsts[pair(p)], p.path.endswith("-key.pem")))


async def add_push_findings(inventory: Inventory, fleet: Fleet, survey: Survey,
                            options: RolloutOptions | None = None) -> None:
    """Add to each surveyed host what an interrupted push left there.

    A journal means a push stopped between staging and the end of its switch: an error
    finding says how many files were switched and names each certificate whose key was
    not switched with it ("key does not match certificate, push was interrupted").
    Temp files of interrupted writes without a journal are removed, and a warning says so.
    """
    for name, found in survey.hosts.items():
        if found.error:
            continue
        sudo = sudo_for(fleet, name, options or RolloutOptions())
        try:
            journal = await read_journal(fleet, name, sudo=sudo)
        except UserError as exc:
            found.findings.append(CertFinding("warning", name, "push journal", str(exc), ""))
            continue
        paths = [p.path for p in placements(inventory, found.host)]
        temps = await sweep_temps(fleet, name, paths, remove=journal is None, sudo=sudo)
        if journal is not None:
            found.findings.extend(_journal_findings(found, journal))
        elif temps:
            found.findings.append(CertFinding(
                "warning", name, "temp files",
                f"removed {len(temps)} temp file{'s' * (len(temps) != 1)} left by an "
                f"interrupted push: {', '.join(temps)}", ""))


def _journal_findings(found: HostSurvey, journal: Journal) -> list[CertFinding]:
    switched = {e.path for e in journal.entries
                if (remote := found.files.get(e.path)) is not None and remote.sha256 == e.sha256}
    fix = ("run `hardway certs push` to finish it, or `hardway certs push --restore` to put "
           "the previous files back")
    findings = []
    paths = {e.path for e in journal.entries}
    for entry in journal.entries:
        if not entry.path.endswith("-key.pem"):
            continue
        cert = entry.path.removesuffix("-key.pem") + ".pem"
        if cert in paths and (cert in switched) != (entry.path in switched):
            findings.append(CertFinding(
                "error", found.host.name, cert.rsplit("/", 1)[-1],
                f"{entry.path} does not match {cert}: the key does not match the certificate, "
                "push was interrupted between them", fix, PUSH_OR_RESTORE))
    findings.append(CertFinding(
        "error", found.host.name, "push journal",
        f"a push started {journal.started} was interrupted: {len(switched)} of "
        f"{len(journal.entries)} files switched (journal {JOURNAL_PATH})", fix,
        PUSH_OR_RESTORE))
    return findings


# -- helpers ---------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_local(pki_dir: Path, sources: set[str],
                inventory: Inventory | None = None) -> dict[str, bytes]:
    """Read and cross-check the local files a push needs (a kubeconfig must fit)."""
    needed = sorted(sources | {CA_CERT_FILE})
    missing = [s for s in needed if not (pki_dir / s).is_file()]
    if missing:
        raise UserError(f"Cannot push: {', '.join(missing)} missing in {pki_dir}. Issue the "
                        "certificates first with `hardway certs issue`.")
    data = {s: (pki_dir / s).read_bytes() for s in needed}
    ca = inspect_pem(data[CA_CERT_FILE], str(pki_dir / CA_CERT_FILE)).cert
    if inventory is not None:
        for check in local_kubeconfig_checks(inventory, pki_dir, ca):
            problems = [p for p in check.problems if p.severity == "error"]
            if check.spec.file in sources and problems:
                raise UserError(f"Cannot push: {check.where} {problems[0].text}. Rewrite it "
                                "with `hardway certs issue` first.")
    for source in needed:
        if source.endswith(("-key.pem", ".kubeconfig")) or source == CA_CERT_FILE:
            continue
        info = inspect_pem(data[source], str(pki_dir / source))
        key = source.removesuffix(".pem") + "-key.pem"
        if key in data and not key_matches(data[source], data[key]):
            raise UserError(f"Cannot push: {pki_dir / key} is not the private key of "
                            f"{pki_dir / source}. Reissue the pair with `hardway certs issue "
                            f"{source.removesuffix('.pem')}`.")
        if not chains_to(info, ca):
            raise UserError(f"Cannot push: {pki_dir / source} was not signed by "
                            f"{pki_dir / CA_CERT_FILE} (issuer {info.issuer}). Reissue it with "
                            "`hardway certs issue`.")
    return data


def _describe_cert(new: bytes, old: bytes | None, source: str) -> str:
    try:
        info = inspect_pem(new, source)
    except UserError:
        return f"from {source}"
    text = f"CN {info.subject_cn}, valid until {info.not_after:%Y-%m-%d}"
    sans = [*info.ip_addresses, *info.dns_names]
    if sans:
        text += f", {len(sans)} SANs"
    previous: CertInfo | None = None
    if old is not None:
        try:
            previous = inspect_pem(old, "old")
        except UserError:
            previous = None
    if previous is not None:
        before = {*previous.ip_addresses, *previous.dns_names}
        added = [s for s in sans if s not in before]
        if added:
            text += " (adds " + ", ".join(added) + ")"
        if previous.issuer != info.issuer:
            text += f"; replaces one issued by {previous.issuer_cn}"
    return text
