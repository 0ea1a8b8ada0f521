"""KTHW doc 05's kubeconfigs: which exist, where they live, and what is wrong with one.

Each kubeconfig embeds a client certificate of :mod:`tui.core.pki.profiles` (admin,
kube-controller-manager, kube-scheduler, kube-proxy, each worker's kubelet), its key, the
cluster CA and the API server's URL.  :func:`check_kubeconfig` judges one file: the
embedded certificate must be signed by the cluster CA, carry its profile's CN and O, be
valid and match its key; the embedded CA must be the cluster's; the server must be the
one KTHW writes (``https://127.0.0.1:6443`` for admin, controller-manager and scheduler on
the controllers, the API address for kubelet and kube-proxy).  Private keys are only held
while a file is checked.

:func:`write_kubeconfigs` writes them into the PKI directory as doc 05 does (``certs issue``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509

from tui.core.errors import UserError
from tui.core.inventory.model import Host, Inventory
from tui.core.pki.ca import CA_CERT_FILE, write_atomic
from tui.core.pki.diagnose import EXPIRY_WARNING_DAYS, CertFinding, FindingSeverity, FixAction
from tui.core.pki.inspect import CertInfo, certificate_info, chains_to, inspect_pem, key_matches
from tui.core.pki.kubeconfig_text import parse_kubeconfig, render_kubeconfig
from tui.core.pki.profiles import Profile, profiles_for

__all__ = ["LOOPBACK_SERVER", "KubeconfigCheck", "KubeconfigProblem", "KubeconfigSpec",
           "Problem", "check_kubeconfig", "kubeconfig_findings", "kubeconfig_specs",
           "local_kubeconfig_checks", "specs_for_host", "write_kubeconfigs"]

LOOPBACK_SERVER = "https://127.0.0.1:6443"
KUBELET_KUBECONFIG = "/var/lib/kubelet/kubeconfig"
PROXY_KUBECONFIG = "/var/lib/kube-proxy/kubeconfig"


@dataclass(frozen=True)
class KubeconfigSpec:
    """One kubeconfig of KTHW doc 05.

    Attributes:
        name: the profile it embeds (``admin``, ``worker-0``...); the file is NAME.kubeconfig.
        role: who holds it: ``controller``, ``worker`` (every worker) or a worker's name.
        servers: server URLs KTHW accepts there; the first is the one hardway writes.
        installed: where KTHW doc 08/09 moves it on the host (None: it stays in the home).
        user: the user entry name (the certificate's CN).
        reader: the service that reads it there (None: kubectl, admin.kubeconfig).
    """

    name: str
    role: str
    servers: tuple[str, ...]
    installed: str | None
    user: str
    reader: str | None = None

    @property
    def file(self) -> str:
        """``NAME.kubeconfig``."""
        return f"{self.name}.kubeconfig"

    def holds(self, host: Host) -> bool:
        """True when ``host`` should hold this kubeconfig."""
        return self.role in (host.role, host.name)


def api_servers(inventory: Inventory) -> tuple[str, ...]:
    """The URLs kubelet and kube-proxy may dial: the VIP, the API name (first: what hardway
    writes), or the first controller when the inventory has neither."""
    port = inventory.api.port
    urls = [f"https://{inventory.api.vip}:{port}"] if inventory.api.vip else []
    if inventory.api.hostname:
        urls.append(f"https://{inventory.api.hostname}:{port}")
    if not urls and inventory.controllers:
        urls.append(f"https://{inventory.controllers[0].address}:{port}")
    return tuple(urls)


def kubeconfig_specs(inventory: Inventory) -> list[KubeconfigSpec]:
    """Every kubeconfig of doc 05, controllers' first, with where doc 08/09 puts each."""
    k = inventory.paths.kubernetes_config
    loop = (LOOPBACK_SERVER.replace("6443", str(inventory.api.port)),)
    api = api_servers(inventory)
    specs = [KubeconfigSpec("admin", "controller", loop, None, "admin"),
             KubeconfigSpec("kube-controller-manager", "controller", loop,
                            f"{k}/kube-controller-manager.kubeconfig",
                            "system:kube-controller-manager", "kube-controller-manager"),
             KubeconfigSpec("kube-scheduler", "controller", loop,
                            f"{k}/kube-scheduler.kubeconfig", "system:kube-scheduler",
                            "kube-scheduler")]
    specs += [KubeconfigSpec(w.name, w.name, api, KUBELET_KUBECONFIG, f"system:node:{w.name}",
                             "kubelet") for w in inventory.workers]
    if inventory.workers:
        specs.append(KubeconfigSpec("kube-proxy", "worker", api, PROXY_KUBECONFIG,
                                    "system:kube-proxy", "kube-proxy"))
    return specs


def specs_for_host(inventory: Inventory, host: Host) -> list[KubeconfigSpec]:
    """The kubeconfigs ``host`` should hold."""
    return [s for s in kubeconfig_specs(inventory) if s.holds(host)]


class Problem(StrEnum):
    """What can be wrong with a kubeconfig (the matrix's short label is the value)."""

    UNREADABLE = "unreadable"
    SERVER = "wrong server"
    CA = "other CA"
    NO_CERT = "no client cert"
    ISSUER = "other issuer"
    SUBJECT = "wrong CN/O"
    EXPIRED = "expired"
    NOT_YET = "not yet valid"
    EXPIRING = "expiring"
    KEY = "key mismatch"
    FILES = "file references"
    STALE = "older cert"


@dataclass(frozen=True)
class KubeconfigProblem:
    """One problem: its kind, severity and the words after the file's name."""

    kind: Problem
    severity: FindingSeverity
    text: str


@dataclass(frozen=True)
class KubeconfigCheck:
    """One kubeconfig as found and judged.

    Attributes:
        spec: which kubeconfig it is.
        where: the file (``/root/admin.kubeconfig`` on a host, a local path).
        server: its server URL ("" when unreadable).
        cert: the embedded client certificate (None: none or unreadable).
        problems: what is wrong (empty: it fits).
    """

    spec: KubeconfigSpec
    where: str
    server: str
    cert: CertInfo | None
    problems: tuple[KubeconfigProblem, ...]

    @property
    def worst(self) -> FindingSeverity:
        """``error``, ``warning`` or ``ok``."""
        severities = {p.severity for p in self.problems}
        return "error" if "error" in severities else "warning" if severities else "ok"

    @property
    def short(self) -> str:
        """The matrix's label: the first problem of the worst severity, or ``ok``."""
        for problem in self.problems:
            if problem.severity == self.worst:
                return problem.kind.value
        return "ok"


def check_kubeconfig(spec: KubeconfigSpec, data: bytes, where: str, *, profile: Profile,
                     ca_cert: x509.Certificate | None,
                     now: dt.datetime | None = None) -> KubeconfigCheck:
    """Judge one kubeconfig's content (``data`` is dropped afterwards by the caller)."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        doc = parse_kubeconfig(data, where)
    except UserError as exc:
        return KubeconfigCheck(spec, where, "", None, (KubeconfigProblem(
            Problem.UNREADABLE, "error", f"cannot be read: {exc}"),))
    problems: list[KubeconfigProblem] = []

    def add(kind: Problem, text: str, severity: FindingSeverity = "error") -> None:
        problems.append(KubeconfigProblem(kind, severity, text))

    if doc.server not in spec.servers:
        wanted = " or ".join(spec.servers)
        add(Problem.SERVER, f"points {spec.user} at {doc.server or 'no server'}; KTHW's "
            f"{spec.file} dials {wanted}")
    if doc.referenced_files:
        add(Problem.FILES, f"refers to {', '.join(doc.referenced_files)} instead of embedding "
            "them (kubectl --embed-certs), so hardway cannot check those", "warning")
    if ca_cert is not None and doc.ca_pem is not None:
        try:
            embedded_ca = inspect_pem(doc.ca_pem, f"{where} certificate-authority-data")
            if embedded_ca.fingerprint != certificate_info(ca_cert, "ca").fingerprint:
                add(Problem.CA, f"trusts another CA ({embedded_ca.subject_cn}, "
                    f"{embedded_ca.fingerprint[:19]}...) than the cluster's {CA_CERT_FILE}: "
                    "the API server's certificate is rejected")
        except UserError:
            add(Problem.CA, "has certificate-authority-data that is not a certificate")
    elif doc.ca_pem is None and not doc.referenced_files:
        add(Problem.CA, "has no certificate-authority-data: the client cannot verify the "
            "API server")
    cert: CertInfo | None = None
    if doc.client_certificate_pem is None:
        if not doc.referenced_files:
            add(Problem.NO_CERT, "embeds no client certificate: the API server sees an "
                "anonymous client")
    else:
        try:
            cert = inspect_pem(doc.client_certificate_pem, f"{where} client-certificate-data")
        except UserError:
            add(Problem.NO_CERT, "has client-certificate-data that is not a certificate")
    if cert is not None:
        problems += _cert_problems(cert, doc.client_key_pem, profile, ca_cert, now)
    return KubeconfigCheck(spec, where, doc.server, cert, tuple(problems))


def _cert_problems(cert: CertInfo, key_pem: bytes | None, profile: Profile,
                   ca_cert: x509.Certificate | None,
                   now: dt.datetime) -> list[KubeconfigProblem]:
    out = []
    if ca_cert is not None and not chains_to(cert, ca_cert):
        out.append(KubeconfigProblem(
            Problem.ISSUER, "error", f"embeds a client certificate not signed by the cluster "
            f"CA (issuer {cert.issuer}): the API server rejects it"))
    if cert.subject_cn != profile.common_name or f"O={profile.organization}" not in cert.subject:
        out.append(KubeconfigProblem(
            Problem.SUBJECT, "error", f"embeds a certificate for {cert.subject_cn!r} "
            f"({cert.subject}); {profile.name} must be CN={profile.common_name}, "
            f"O={profile.organization}, the user and group RBAC grants"))
    days = cert.days_left(now)
    if days <= 0:
        out.append(KubeconfigProblem(Problem.EXPIRED, "error", "embeds a client certificate "
                                     f"that expired on {cert.not_after:%Y-%m-%d}"))
    elif cert.not_before > now:
        out.append(KubeconfigProblem(Problem.NOT_YET, "error", "embeds a client certificate "
                                     f"not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC"))
    elif days < EXPIRY_WARNING_DAYS:
        out.append(KubeconfigProblem(Problem.EXPIRING, "warning", "embeds a client "
                                     f"certificate that expires in {int(days)} days"))
    if key_pem is None or not key_matches(cert.pem, key_pem):
        out.append(KubeconfigProblem(
            Problem.KEY, "error", "embeds a client-key-data that is not the key of its "
            "certificate: TLS fails at the handshake" if key_pem is not None else
            "embeds no client-key-data"))
    return out


def kubeconfig_findings(check: KubeconfigCheck, host: str | None,
                        pki_dir: Path | None = None, *,
                        local_fits: bool = False) -> list[CertFinding]:
    """The check's problems as findings.

    A local file is fixed by ``certs issue`` (it rewrites it); one where doc 08/09
    installs it by ``certs push`` (after ``certs issue`` unless ``local_fits``); a copy in
    a home (admin.kubeconfig, the scp of doc 05) by copying the local file there.
    """
    where = f"{check.where} on {host}" if host else check.where
    local = f"{pki_dir}/{check.spec.file}" if pki_dir is not None else check.spec.file
    findings = []
    for problem in check.problems:
        if host is None:
            fix = (f"rewrite it with `hardway certs issue` (it reissues "
                   f"{check.spec.name}.pem if needed and writes {check.spec.file} again)")
            actions: tuple[FixAction, ...] = (FixAction.ISSUE,)
            after = ""
        elif check.where == check.spec.installed:
            after = ""
            push = f"push it with `hardway certs push` (it installs {local} there)"
            fix = push if local_fits else f"rewrite {local} with `hardway certs issue`, then " \
                + push
            actions = (FixAction.PUSH,) if local_fits else (FixAction.ISSUE, FixAction.PUSH)
        else:
            after = f"copy {local} to {check.where} on {host}"
            fix = after if local_fits else (
                f"rewrite {local} with `hardway certs issue`, then {after}")
            actions = () if local_fits else (FixAction.ISSUE,)
        findings.append(CertFinding(problem.severity, host, check.spec.file,
                                    f"{where} {problem.text}.", fix, actions, after))
    return findings


def local_kubeconfig_checks(inventory: Inventory, pki_dir: Path,
                            ca_cert: x509.Certificate | None) -> list[KubeconfigCheck]:
    """Check every doc-05 kubeconfig present in the local PKI directory."""
    profiles = {p.name: p for p in profiles_for(inventory)}
    checks = []
    for spec in kubeconfig_specs(inventory):
        path = pki_dir / spec.file
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            checks.append(KubeconfigCheck(spec, str(path), "", None, (KubeconfigProblem(
                Problem.UNREADABLE, "error", f"cannot be read ({exc.strerror})"),)))
            continue
        check = check_kubeconfig(spec, data, str(path), profile=profiles[spec.name],
                                 ca_cert=ca_cert)
        pair = pki_dir / profiles[spec.name].cert_file
        if check.cert is not None and not check.problems and pair.exists() \
                and check.cert.pem != _pem(pair.read_bytes()):
            check = dataclasses.replace(check, problems=(KubeconfigProblem(
                Problem.STALE, "warning", f"embeds an older certificate than {pair}"),))
        checks.append(check)
    return checks


def write_kubeconfigs(inventory: Inventory, pki_dir: Path, ca_cert: x509.Certificate, *,
                      names: Sequence[str] = (),
                      dry_run: bool = False) -> list[dict[str, object]]:
    """Write (as doc 05 does) each kubeconfig that is missing or does not fit, for every
    profile whose pair is in ``pki_dir`` (only ``names`` when given); files that fit are
    kept.

    Returns:
        One action per kubeconfig: ``name`` (the file), ``action`` (written, kept, would
        write), ``reasons``.
    """
    profiles = {p.name: p for p in profiles_for(inventory)}
    ca_pem = (pki_dir / CA_CERT_FILE).read_bytes()
    actions: list[dict[str, object]] = []
    for spec in kubeconfig_specs(inventory):
        if names and spec.name not in names:
            continue
        profile = profiles[spec.name]
        cert_path, key_path = pki_dir / profile.cert_file, pki_dir / profile.key_file
        if not (cert_path.exists() and key_path.exists()):
            continue
        path = pki_dir / spec.file
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
        if path.exists():
            check = check_kubeconfig(spec, path.read_bytes(), str(path), profile=profile,
                                     ca_cert=ca_cert)
            reasons = [p.text for p in check.problems]
            if not reasons and check.cert is not None and check.cert.pem != _pem(cert_pem):
                reasons = [f"embeds an older {profile.cert_file}"]
        else:
            reasons = ["not written yet"]
        if not reasons:
            actions.append({"name": spec.file, "action": "kept", "reasons": []})
            continue
        if dry_run:
            actions.append({"name": spec.file, "action": "would write", "reasons": reasons})
            continue
        text = render_kubeconfig(cluster=inventory.name, server=spec.servers[0],
                                 user=spec.user, ca_pem=ca_pem, cert_pem=cert_pem,
                                 key_pem=key_pem)
        write_atomic(path, text.encode(), 0o600)
        actions.append({"name": spec.file, "action": "written", "reasons": reasons,
                        "cert": str(path)})
    return actions


def _pem(data: bytes) -> bytes:
    try:
        return inspect_pem(data, "pem").pem
    except UserError:
        return data
