"""What the cluster really has: certificate files, units and served certificates, per host.

:func:`placements` says which PKI file belongs where (KTHW docs 04, 07, 08, 09);
:func:`survey` reads those files over the Fleet (SFTP), asks systemd for kube-apiserver's
ExecStart, looks for a stale self-signed ``apiserver.crt`` in its --cert-dir, fetches the
certificates served on ADDR:6443 and (where etcd runs) ADDR:2379, reads and checks the
doc-05 kubeconfigs, and turns it all into findings with
:mod:`tui.core.pki.host_findings`.  A login that is not root reads keys and kubeconfigs
with ``sudo -n``.

Private keys read from hosts are used to check that they match their certificate and are
then dropped: only their SHA-256 is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from tui.core.errors import UserError
from tui.core.fleet.dial import Dialer, dialer_for
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.staged_sudo import sudo_read_many
from tui.core.inventory.model import Host, Inventory
from tui.core.pki.ca import CA_CERT_FILE
from tui.core.pki.diagnose import (
    CertFinding,
    diagnose_fleet,
)
from tui.core.pki.inspect import (
    CertInfo,
    certificate_info,
    fetch_served,
    inspect_pem,
    key_matches,
)
from tui.core.pki.kubeconfig import (
    KubeconfigCheck,
    KubeconfigProblem,
    KubeconfigSpec,
    Problem,
    check_kubeconfig,
    specs_for_host,
)
from tui.core.pki.profiles import profiles_for
from tui.core.pki.services import login_user
from tui.core.systemd_unit import exec_argv

__all__ = ["ETCD_CLIENT_PORT", "KUBELET_DIR", "SERVICES", "HostSurvey", "Placement",
           "RemoteFile", "Survey", "cert_dir_of", "exec_start_argv", "flag_value",
           "logical_path", "placements", "remote_path", "survey", "unit_path"]

KUBELET_DIR = "/var/lib/kubelet"
"""Where KTHW doc 09 puts a worker's own certificate and key."""

SERVICES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet")
"""Services whose unit files the survey looks for."""

STALE_FILES = ("apiserver.crt", "apiserver.key")
ETCD_CLIENT_PORT = 2379
SURVEY_TIMEOUT = 20.0
SERVED_TIMEOUT = 5.0


@dataclass(frozen=True)
class Placement:
    """One PKI file on one host.

    Attributes:
        source: the file's name in the local PKI directory (``kubernetes-key.pem``).
        path: the logical remote path (``/var/lib/kubernetes/kubernetes-key.pem``).
        mode: permission bits on the host (0600 for keys).
        secret: a private key (or a kubeconfig embedding one): never shown, never diffed.
        services: the services that read it (restarted when it changes).
        optional: pushed only when the local PKI has it (doc 05's kubeconfigs).
    """

    source: str
    path: str
    mode: int
    secret: bool
    services: tuple[str, ...]
    optional: bool = False


def placements(inventory: Inventory, host: Host) -> list[Placement]:
    """Where KTHW puts the PKI files on ``host`` (controllers and workers differ), then
    the doc-05 kubeconfigs doc 08/09 installs (optional: only when the PKI has them;
    admin.kubeconfig stays in the operator's home and is not pushed)."""
    return _certificate_placements(inventory, host) + [
        Placement(spec.file, spec.installed, 0o600, True,
                  (spec.reader,) if spec.reader else (), optional=True)
        for spec in specs_for_host(inventory, host) if spec.installed]


def _certificate_placements(inventory: Inventory, host: Host) -> list[Placement]:
    paths = inventory.paths
    k, e = paths.kubernetes_config, paths.etcd_config
    if host.role == "controller":
        api = ("kube-apiserver",)
        cm = ("kube-controller-manager",)
        return [
            Placement("ca.pem", f"{k}/ca.pem", 0o644, False, (*api, *cm)),
            Placement("ca-key.pem", f"{k}/ca-key.pem", 0o600, True, cm),
            Placement("kubernetes.pem", f"{k}/kubernetes.pem", 0o644, False, api),
            Placement("kubernetes-key.pem", f"{k}/kubernetes-key.pem", 0o600, True, api),
            Placement("service-account.pem", f"{k}/service-account.pem", 0o644, False,
                      (*api, *cm)),
            Placement("service-account-key.pem", f"{k}/service-account-key.pem", 0o600, True,
                      cm),
            Placement("ca.pem", f"{e}/ca.pem", 0o644, False, ("etcd",)),
            Placement("kubernetes.pem", f"{e}/kubernetes.pem", 0o644, False, ("etcd",)),
            Placement("kubernetes-key.pem", f"{e}/kubernetes-key.pem", 0o600, True, ("etcd",)),
        ]
    return [
        Placement("ca.pem", f"{k}/ca.pem", 0o644, False, ("kubelet",)),
        Placement(f"{host.name}.pem", f"{KUBELET_DIR}/{host.name}.pem", 0o644, False,
                  ("kubelet",)),
        Placement(f"{host.name}-key.pem", f"{KUBELET_DIR}/{host.name}-key.pem", 0o600, True,
                  ("kubelet",)),
    ]


def unit_path(inventory: Inventory, service: str) -> str:
    """The logical path of ``service``'s unit file."""
    return f"{inventory.paths.systemd_units}/{service}.service"


def remote_path(host: Host, path: str) -> str:
    """``path`` on the host's file system: through ``root`` unless it is already there."""
    root = host.root.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return path
    return host.path(path)


def logical_path(host: Host, path: str) -> str:
    """Undo :func:`remote_path` for a path that lies under the host's ``root``."""
    root = host.root.rstrip("/")
    if root and path.startswith(root + "/"):
        return path[len(root):]
    return path


@dataclass(frozen=True)
class RemoteFile:
    """A file as found on a host.

    Attributes:
        path: logical path.
        present: the file exists.
        sha256: hex digest of its content (None when absent or unreadable).
        size: bytes (None when absent or unreadable).
        data: the content (None for private keys, absent or unreadable files).
        error: why it could not be read.
    """

    path: str
    present: bool
    sha256: str | None = None
    data: bytes | None = None
    error: str | None = None
    size: int | None = None


@dataclass
class HostSurvey:
    """Everything the survey learnt about one host.

    Attributes:
        host: the inventory host.
        error: why the host could not be surveyed (unreachable...), else None.
        files: logical path -> RemoteFile, for every placement and unit file.
        units: service -> logical unit path, for the services installed on the host.
        exec_start: ``systemctl show -p ExecStart kube-apiserver`` (None: not installed).
        cert_dir: kube-apiserver's --cert-dir (logical; KTHW default /var/run/kubernetes).
        stale_files: logical paths of apiserver.crt/.key present in ``cert_dir``.
        served: the certificate served on ADDR:api-port (controllers).
        served_error: why nothing could be fetched there.
        etcd_served: the certificate etcd serves on ADDR:2379 (controllers with etcd).
        etcd_served_error: why nothing could be fetched there.
        key_matches: the apiserver (controller) or kubelet (worker) key matches its cert.
        home: the login's home directory (logical), where KTHW's scp leaves files.
        kubeconfigs: doc-05 kubeconfig name -> its check (where it was found: the path
            doc 08/09 installs it to, else the home copy); absent ones are left out.
        findings: the diagnosis of this host.
    """

    host: Host
    error: str | None = None
    files: dict[str, RemoteFile] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    exec_start: str | None = None
    cert_dir: str = "/var/run/kubernetes"
    stale_files: tuple[str, ...] = ()
    served: CertInfo | None = None
    served_error: str | None = None
    etcd_served: CertInfo | None = None
    etcd_served_error: str | None = None
    key_matches: bool | None = None
    home: str | None = None
    kubeconfigs: dict[str, KubeconfigCheck] = field(default_factory=dict)
    findings: list[CertFinding] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The host's name."""
        return self.host.name

    def cert(self, path: str) -> CertInfo | None:
        """The certificate at logical ``path`` (None: absent or not a certificate)."""
        found = self.files.get(path)
        if found is None or found.data is None:
            return None
        try:
            return inspect_pem(found.data, f"{self.host.name}:{path}")
        except UserError:
            return None


@dataclass
class Survey:
    """The survey of several hosts plus the cluster-wide findings."""

    hosts: dict[str, HostSurvey]
    fleet_findings: list[CertFinding] = field(default_factory=list)
    local: list[CertFinding] = field(default_factory=list)

    @property
    def findings(self) -> list[CertFinding]:
        """Local, then per host (inventory order), then cluster-wide findings."""
        out = list(self.local)
        for host in self.hosts.values():
            out += host.findings
        return out + self.fleet_findings

    @property
    def errors(self) -> list[CertFinding]:
        """The findings of severity ``error``."""
        return [f for f in self.findings if f.severity == "error"]


# -- ExecStart -------------------------------------------------------------------------


def exec_start_argv(exec_start: str) -> list[str]:
    """The argv of ``systemctl show -p ExecStart`` output (or of a plain command line),
    split by the core's systemd parser (:func:`tui.core.systemd_unit.exec_argv`)."""
    return exec_argv(exec_start)


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` in ``argv`` (last one wins)."""
    value = None
    for index, word in enumerate(argv):
        if word.startswith(flag + "="):
            value = word[len(flag) + 1:]
        elif word == flag and index + 1 < len(argv):
            value = argv[index + 1]
    return value


def cert_dir_of(exec_start: str | None, default: str) -> str:
    """kube-apiserver's --cert-dir from its ExecStart, else ``default``."""
    if not exec_start:
        return default
    return flag_value(exec_start_argv(exec_start), "--cert-dir") or default


# -- the survey ------------------------------------------------------------------------


async def survey(inventory: Inventory, fleet: Fleet, *, ca_cert: x509.Certificate | None,
                 names: Iterable[str] | None = None, pki_dir: Path | None = None,
                 served: bool = True, timeout: float = SURVEY_TIMEOUT) -> Survey:
    """Survey ``names`` (default every host) concurrently and diagnose them.

    Args:
        inventory: the cluster.
        fleet: an open Fleet over the inventory's hosts.
        ca_cert: the cluster CA (None: issuer checks are skipped).
        names: hosts to survey.
        pki_dir: the local PKI directory: files differing from it are reported.
        served: fetch the certificate served on each controller's API port.
        timeout: seconds per remote command and per TLS handshake.
    """
    selected = list(names) if names is not None else [h.name for h in inventory.hosts]
    hosts = [inventory.host(n) for n in selected]
    dialer = dialer_for(inventory, fleet)  # served certificates: as SSH reaches the hosts
    try:
        results = await asyncio.gather(*(_survey_host(inventory, fleet, h, served, timeout,
                                                      dialer, ca_cert) for h in hosts))
    finally:
        await dialer.close()
    from tui.core.pki.host_findings import host_findings

    report = Survey({r.name: r for r in results})
    for result in results:
        result.findings = host_findings(inventory, result, ca_cert, pki_dir)
    fingerprints: dict[str, str] = {}
    for result in results:
        if result.error is None:
            info = result.cert(f"{inventory.paths.kubernetes_config}/{CA_CERT_FILE}")
            fingerprints[result.name] = info.fingerprint if info is not None else ""
    expected = certificate_info(ca_cert, "ca").fingerprint if ca_cert is not None else None
    report.fleet_findings = diagnose_fleet(fingerprints, expected=expected)
    return report


async def _survey_host(inventory: Inventory, fleet: Fleet, host: Host, served: bool,
                       timeout: float, dialer: Dialer,
                       ca_cert: x509.Certificate | None = None) -> HostSurvey:
    result = HostSurvey(host, cert_dir=inventory.paths.kubernetes_run)
    wanted = [p.path for p in placements(inventory, host)]
    units = {s: unit_path(inventory, s) for s in SERVICES}
    default_stale = [f"{inventory.paths.kubernetes_run}/{n}" for n in STALE_FILES]
    configs = specs_for_host(inventory, host)
    installed = [s.installed for s in configs if s.installed]
    listing = await _list(fleet, host, [*wanted, *units.values(), *default_stale, *installed],
                          controller=host.role == "controller", timeout=timeout,
                          home_names=[s.file for s in configs])
    if isinstance(listing, str):
        result.error = listing
        return result
    present, exec_start, result.home = listing
    result.units = {s: p for s, p in units.items() if p in present}
    if "kube-apiserver" in result.units and exec_start:
        result.exec_start = exec_start
    result.cert_dir = logical_path(host, cert_dir_of(result.exec_start,
                                                     inventory.paths.kubernetes_run))
    stale = [f"{result.cert_dir}/{n}" for n in STALE_FILES]
    if stale != default_stale:
        extra = await _list(fleet, host, stale, controller=False, timeout=timeout)
        if not isinstance(extra, str):
            present |= extra[0]
    result.kubeconfigs = await _kubeconfigs(inventory, fleet, result, configs, present,
                                            ca_cert)
    result.stale_files = tuple(p for p in stale if p in present)
    secret = {p.path for p in placements(inventory, host) if p.secret}
    read = set(result.files)  # the kubeconfigs, read (and checked) already
    files = [p for p in (*wanted, *result.units.values()) if p not in read]
    private = await _read_private(fleet, host, [p for p in files if p in present
                                                and p in secret])
    fetched = await asyncio.gather(*(_fetch(fleet, host, p, p in present, p in secret,
                                            private)
                                     for p in files))
    result.files.update({f.path: f for f, _key in fetched})
    keys = {f.path: key for f, key in fetched if key is not None}
    result.key_matches = _key_check(inventory, host, result, keys)
    keys.clear()  # private keys live no longer than the check
    if host.role == "controller" and served:
        try:
            result.served = await fetch_served(str(host.address), inventory.api.port,
                                               timeout=min(timeout, SERVED_TIMEOUT),
                                               dialer=dialer)
        except UserError as exc:
            result.served_error = str(exc)
    if host.role == "controller" and served and "etcd" in result.units:
        try:
            result.etcd_served = await fetch_served(str(host.address), ETCD_CLIENT_PORT,
                                                    timeout=min(timeout, SERVED_TIMEOUT),
                                                    dialer=dialer)
        except UserError as exc:
            result.etcd_served_error = str(exc)
    return result


async def _kubeconfigs(inventory: Inventory, fleet: Fleet, result: HostSurvey,
                       configs: Sequence[KubeconfigSpec], present: set[str],
                       ca_cert: x509.Certificate | None) -> dict[str, KubeconfigCheck]:
    """Read and check each kubeconfig found (installed path first, else the home copy)."""
    profiles = {p.name: p for p in profiles_for(inventory)}
    found: list[tuple[KubeconfigSpec, str]] = []
    for spec in configs:
        home_copy = f"{result.home}/{spec.file}" if result.home else None
        path = spec.installed if spec.installed in present else (
            home_copy if home_copy in present else None)
        if path is not None:
            found.append((spec, path))
    private = await _read_private(fleet, result.host, [p for _s, p in found])
    fetched = await asyncio.gather(*(_fetch(fleet, result.host, p, True, True, private)
                                     for _s, p in found))
    checks = {}
    for (spec, path), (remote, data) in zip(found, fetched, strict=True):
        result.files[path] = remote
        if data is None:
            checks[spec.name] = KubeconfigCheck(spec, path, "", None, (KubeconfigProblem(
                Problem.UNREADABLE, "error", f"cannot be read: {remote.error}"),))
            continue
        checks[spec.name] = check_kubeconfig(spec, data, path, profile=profiles[spec.name],
                                             ca_cert=ca_cert)
        del data  # embedded private key: only for the check
    return checks


async def _list(fleet: Fleet, host: Host, paths: Sequence[str], *, controller: bool,
                timeout: float, home_names: Sequence[str] = ()
                ) -> tuple[set[str], str | None, str | None] | str:
    """Which of ``paths`` (and of ``home_names`` in the login's home) exist,
    kube-apiserver's ExecStart and the home (logical); a string on failure."""
    remote = {remote_path(host, p): p for p in paths}
    quoted = " ".join(shlex.quote(r) for r in remote)
    script = (f"for f in {quoted}; do if [ -e \"$f\" ]; then printf 'present %s\\n' \"$f\"; "
              "fi; done")
    if home_names:
        names = " ".join(shlex.quote(n) for n in home_names)
        script += (f"; printf 'home %s\\n' \"$HOME\"; for f in {names}; do "
                   "if [ -e \"$HOME/$f\" ]; then printf 'present %s\\n' \"$HOME/$f\"; fi; done")
    if controller:
        script += ("; echo '--- execstart'; systemctl show -p ExecStart kube-apiserver "
                   "2>/dev/null; true")
    results = await fleet.run([host.name], script, timeout=timeout)
    outcome = results[host.name]
    if outcome.error is not None:
        return f"cannot reach {host.name}: {outcome.error}"
    if outcome.timed_out:
        return f"{host.name} did not answer the survey within {timeout:g} s"
    head, _, tail = outcome.stdout.partition("--- execstart\n")
    present = set()
    home = None
    for line in head.splitlines():
        if line.startswith("present "):
            name = line[len("present "):]
            present.add(remote.get(name, logical_path(host, name)))
        elif line.startswith("home /"):
            home = logical_path(host, line[len("home "):].rstrip("/")) or "/"
    exec_start = next((line for line in tail.splitlines() if "ExecStart=" in line), None)
    if exec_start is not None and exec_start.strip() in ("ExecStart=", "ExecStart={}"):
        exec_start = None
    return present, exec_start, home


async def _read_private(fleet: Fleet, host: Host,
                        paths: list[str]) -> dict[str, bytes | str | None] | None:
    """Keys and kubeconfigs (0600 root) for a login that is not root: one ``sudo -n``
    round trip (path -> content, None when absent, the reason when it failed); None for
    a root login (SFTP reads them)."""
    if not paths or login_user(fleet, host.name) in ("", "root"):
        return None
    remote = [host.path(p) for p in paths]
    try:
        found = await sudo_read_many(fleet, host.name, remote)
    except UserError as exc:
        return dict.fromkeys(paths, str(exc))
    return {p: found[r] for p, r in zip(paths, remote, strict=True)}


async def _fetch(fleet: Fleet, host: Host, path: str, present: bool,
                 secret: bool, private: dict[str, bytes | str | None] | None = None
                 ) -> tuple[RemoteFile, bytes | None]:
    """Read one file; a private key comes back separately (for the key check only).
    ``private``: what :func:`_read_private` read with sudo."""
    if not present:
        return RemoteFile(path, False), None
    if private is not None and path in private:
        found = private[path]
        if isinstance(found, str):
            return RemoteFile(path, True, error=found), None
        if found is None:
            return RemoteFile(path, False), None
        data = found
    else:
        try:
            data = await fleet.get(host.name, path)
        except UserError as exc:
            return RemoteFile(path, True, error=str(exc)), None
    digest = hashlib.sha256(data).hexdigest()
    if secret:
        return RemoteFile(path, True, digest, size=len(data)), data
    return RemoteFile(path, True, digest, data, size=len(data)), None


def _key_check(inventory: Inventory, host: Host, result: HostSurvey,
               keys: dict[str, bytes]) -> bool | None:
    """Whether the API server's (controller) or kubelet's (worker) key fits its cert."""
    if host.role == "controller":
        cert_path = f"{inventory.paths.kubernetes_config}/kubernetes.pem"
    else:
        cert_path = f"{KUBELET_DIR}/{host.name}.pem"
    cert = result.files.get(cert_path)
    key = keys.get(cert_path.removesuffix(".pem") + "-key.pem")
    if cert is None or cert.data is None or key is None:
        return None
    return key_matches(cert.data, key)
