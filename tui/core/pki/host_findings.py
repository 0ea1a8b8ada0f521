"""The diagnosis of surveyed hosts and of the local PKI directory, as findings.

:func:`host_findings` turns one :class:`~tui.core.pki.survey.HostSurvey` into findings (the
API server's certificate, etcd's copies and what it serves on :2379, files not pushed yet,
the doc-05 kubeconfigs); :func:`local_findings` checks the local PKI directory (the CA,
every KTHW pair, the kubeconfigs); :func:`reissue_reasons` says why a local pair no
longer fits its profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from cryptography import x509

from tui.core.errors import UserError
from tui.core.inventory.model import Inventory, San
from tui.core.pki.ca import CA_CERT_FILE, CertificateAuthority
from tui.core.pki.diagnose import (
    EXPIRY_WARNING_DAYS,
    PUSH,
    CertFinding,
    FixAction,
    diagnose_host,
    missing_sans,
    served_findings,
)
from tui.core.pki.inspect import CertInfo, chains_to, inspect_file, key_matches
from tui.core.pki.kubeconfig import (
    kubeconfig_findings,
    local_kubeconfig_checks,
    specs_for_host,
)
from tui.core.pki.profiles import Profile, profiles_for
from tui.core.pki.survey import ETCD_CLIENT_PORT, KUBELET_DIR, HostSurvey, placements

__all__ = ["host_findings", "local_findings", "local_pair_findings", "reissue_reasons"]


def host_findings(inventory: Inventory, result: HostSurvey, ca_cert: x509.Certificate | None,
                  pki_dir: Path | None) -> list[CertFinding]:
    """The diagnosis of one surveyed host."""
    name = result.name
    if result.error is not None:
        return [CertFinding("error", name, "ssh", f"{result.error}.",
                            f"check that {name} is up and that `hardway run -w {name} -- true` "
                            "works, then check again")]
    paths = inventory.paths
    findings: list[CertFinding] = []
    if result.host.role == "controller":
        cert_path = f"{paths.kubernetes_config}/kubernetes.pem"
        findings += diagnose_host(
            result.host, required_sans=inventory.api_server_sans, ca_cert=ca_cert,
            on_disk=result.cert(cert_path), served=result.served,
            key_pem_matches=result.key_matches, exec_start=result.exec_start,
            stale_cert_dir_file=bool(result.stale_files),
            paths=dataclasses.replace(paths, kubernetes_run=result.cert_dir))
        if "kube-apiserver" in result.units and result.served_error is not None:
            findings.append(CertFinding(
                "error", name, "kubernetes.pem",
                f"kube-apiserver on {name} serves nothing that can be checked: "
                f"{result.served_error}",
                f"look at `systemctl status kube-apiserver` and `journalctl -u "
                f"kube-apiserver` on {name}"))
        findings += _etcd_copy_findings(inventory, result)
        findings += _etcd_served_findings(inventory, result, ca_cert)
        findings += _pushed_findings(inventory, result, pki_dir)
        findings += _kubeconfig_host_findings(inventory, result, pki_dir, ca_cert)
    else:
        profile = next(p for p in profiles_for(inventory) if p.name == name)
        cert_file = f"{name}.pem"
        findings += diagnose_host(
            result.host, required_sans=profile.sans_reasons, ca_cert=ca_cert,
            on_disk=result.cert(f"{KUBELET_DIR}/{cert_file}"), served=None,
            key_pem_matches=result.key_matches, exec_start=None, stale_cert_dir_file=False,
            certificate=cert_file,
            paths=dataclasses.replace(paths, kubernetes_config=KUBELET_DIR))
        findings += _pushed_findings(inventory, result, pki_dir)
        findings += _kubeconfig_host_findings(inventory, result, pki_dir, ca_cert)
    return _ok_last(findings)


def _ok_last(findings: list[CertFinding]) -> list[CertFinding]:
    problems = [f for f in findings if f.severity != "ok"]
    return problems or findings[:1]


def _etcd_copy_findings(inventory: Inventory, result: HostSurvey) -> list[CertFinding]:
    if "etcd" not in result.units:
        return []
    k, e = inventory.paths.kubernetes_config, inventory.paths.etcd_config
    findings = []
    for name in ("kubernetes.pem", "ca.pem"):
        mine, etcd = result.files.get(f"{k}/{name}"), result.files.get(f"{e}/{name}")
        if etcd is None or not etcd.present:
            findings.append(CertFinding(
                "error", result.name, name, f"{e}/{name} is missing on {result.name}, where "
                "etcd is installed: etcd cannot start its TLS listeners without it.",
                "push it with `hardway certs push`", PUSH))
        elif mine is not None and mine.sha256 and etcd.sha256 != mine.sha256:
            findings.append(CertFinding(
                "warning", result.name, name, f"{e}/{name} on {result.name} differs from "
                f"{k}/{name}: etcd and kube-apiserver use different files.",
                "push both copies with `hardway certs push`", PUSH))
    return findings


def _etcd_served_findings(inventory: Inventory, result: HostSurvey,
                          ca_cert: x509.Certificate | None) -> list[CertFinding]:
    """The certificate etcd serves on :2379 against /etc/etcd/kubernetes.pem."""
    if "etcd" not in result.units:
        return []
    name, e = result.name, inventory.paths.etcd_config
    if result.etcd_served_error is not None:
        return [CertFinding(
            "error", name, "kubernetes.pem",
            f"etcd on {name} serves nothing that can be checked on :{ETCD_CLIENT_PORT}: "
            f"{result.etcd_served_error}",
            f"look at `systemctl status etcd` and `journalctl -u etcd` on {name}")]
    served, disk = result.etcd_served, result.cert(f"{e}/kubernetes.pem")
    if served is None:
        return []
    if disk is None or served.fingerprint != disk.fingerprint:
        return served_findings(name, "kubernetes.pem", f"{e}/kubernetes.pem", served,
                               ca_cert, inventory.api_server_sans, service="etcd")
    problems = []
    if ca_cert is not None and not chains_to(served, ca_cert):
        problems.append(f"was not signed by the cluster CA (issuer {served.issuer})")
    missing = missing_sans(served, inventory.api_server_sans)
    if missing:
        problems.append("lacks " + ", ".join(s.value for s in missing))
    if served.days_left() <= 0:
        problems.append(f"expired on {served.not_after:%Y-%m-%d}")
    if not problems:
        return []
    return [CertFinding(
        "error", name, "kubernetes.pem",
        f"etcd on {name} ({served.source}) serves {e}/kubernetes.pem, which "
        f"{' and '.join(problems)}: kube-apiserver and etcdctl, trusting ca.pem and dialling "
        "these addresses, reject it.",
        f"push the cluster's kubernetes.pem to {e} with `hardway certs push` (it restarts "
        "etcd)", PUSH)]


def _kubeconfig_host_findings(inventory: Inventory, result: HostSurvey,
                              pki_dir: Path | None,
                              ca_cert: x509.Certificate | None) -> list[CertFinding]:
    """Each kubeconfig found on the host, judged; a missing one its service reads."""
    findings: list[CertFinding] = []
    local = {c.spec.name: c for c in (
        local_kubeconfig_checks(inventory, pki_dir, ca_cert) if pki_dir is not None else ())}
    for spec in specs_for_host(inventory, result.host):
        check = result.kubeconfigs.get(spec.name)
        if check is not None:
            mine = local.get(spec.name)
            findings += kubeconfig_findings(check, result.name, pki_dir,
                                            local_fits=mine is not None and not mine.problems)
            continue
        reader = spec.reader
        if reader is not None and reader in result.units and spec.installed:
            source = f"{pki_dir}/{spec.file}" if pki_dir is not None else spec.file
            mine = local.get(spec.name)
            fits = mine is not None and not mine.problems
            findings.append(CertFinding(
                "error", result.name, spec.file,
                f"{spec.installed} is missing on {result.name}, where {reader} is installed: "
                f"{reader} cannot reach the API server without it.",
                ("" if fits else f"write {source} with `hardway certs issue`, then ")
                + f"push it with `hardway certs push` (it installs {source} there)",
                (FixAction.PUSH,) if fits else (FixAction.ISSUE, FixAction.PUSH)))
    return findings


def _pushed_findings(inventory: Inventory, result: HostSurvey,
                     pki_dir: Path | None) -> list[CertFinding]:
    """Files on the host that differ from the local PKI directory (not pushed yet)."""
    if pki_dir is None:
        return []
    differing = []
    for placement in placements(inventory, result.host):
        local = pki_dir / placement.source
        remote = result.files.get(placement.path)
        if remote is None or not remote.present or remote.sha256 is None:
            continue
        try:
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest != remote.sha256:
            differing.append(placement.path)
    if not differing:
        return []
    return [CertFinding(
        "warning", result.name, "pushed files",
        f"{len(differing)} file{'s' if len(differing) != 1 else ''} on {result.name} "
        f"differ{'s' if len(differing) == 1 else ''} from {pki_dir}: {', '.join(differing)}.",
        "push the local PKI with `hardway certs push` (preview it with --dry-run)", PUSH)]


def local_findings(inventory: Inventory, pki_dir: Path
                   ) -> tuple[CertificateAuthority | None, list[CertFinding]]:
    """Check the local PKI directory: the CA and every KTHW certificate of the cluster.

    Returns:
        The CA (None when there is none or it cannot be loaded) and the findings.
    """
    if not (pki_dir / CA_CERT_FILE).exists():
        return None, [CertFinding(
            "warning", None, CA_CERT_FILE,
            f"There is no CA in {pki_dir} ({CA_CERT_FILE} is missing), so hardway cannot "
            "check who signed the certificates on the hosts.",
            "create the PKI with `hardway certs issue`, or point --pki at your cfssl "
            "directory (ca.pem and ca-key.pem)", (FixAction.ISSUE,))]
    try:
        ca = CertificateAuthority.load(pki_dir)
    except UserError as exc:
        return None, [CertFinding("error", None, CA_CERT_FILE, str(exc),
                                  "fix or restore the CA files; hardway never overwrites a CA")]
    findings: list[CertFinding] = []
    for profile in profiles_for(inventory):
        findings += local_pair_findings(profile, pki_dir, ca.cert)
    for check in local_kubeconfig_checks(inventory, pki_dir, ca.cert):
        findings += kubeconfig_findings(check, None)
    return ca, findings


def local_pair_findings(profile: Profile, pki_dir: Path,
                        ca_cert: x509.Certificate) -> list[CertFinding]:
    """Problems of the local ``NAME.pem``/``NAME-key.pem`` (empty when it is fine)."""
    cert_path, key_path = pki_dir / profile.cert_file, pki_dir / profile.key_file
    reissue = f"reissue it with `hardway certs issue {profile.name}`"
    if not cert_path.exists() or not key_path.exists():
        return [CertFinding("warning", None, profile.cert_file,
                            f"{cert_path if not cert_path.exists() else key_path} has not "
                            "been issued yet.", "issue it with `hardway certs issue`",
                            (FixAction.ISSUE,))]
    try:
        info = inspect_file(cert_path)
        key_data = key_path.read_bytes()
    except (UserError, OSError) as exc:
        return [CertFinding("error", None, profile.cert_file, str(exc), reissue,
                            (FixAction.ISSUE,))]
    problems = reissue_reasons(profile, info, key_data, ca_cert)
    return [CertFinding("error" if not text.startswith("expires") else "warning", None,
                        profile.cert_file, f"{cert_path} {text}.", reissue,
                        (FixAction.ISSUE,))
            for text in problems]


def reissue_reasons(profile: Profile, info: CertInfo, key_pem: bytes,
                    ca_cert: x509.Certificate) -> list[str]:
    """Why a local pair no longer fits its profile (empty: it fits).

    Each reason reads after the file name: ``lacks IP 127.0.0.1 (...)``.
    """
    reasons = []
    if not chains_to(info, ca_cert):
        reasons.append(f"was not signed by the CA in this directory (issuer {info.issuer})")
    if info.subject_cn != profile.common_name:
        reasons.append(f"has CN {info.subject_cn!r}, the profile wants "
                       f"{profile.common_name!r}")
    if f"O={profile.organization}" not in info.subject:
        reasons.append(f"is not in organization {profile.organization!r} ({info.subject})")
    missing: list[San] = missing_sans(info, profile.sans_reasons)
    if missing:
        reasons.append("lacks " + "; ".join(
            f"{'IP' if s.kind == 'ip' else 'DNS name'} {s.value} ({s.reason})" for s in missing))
    if not key_matches(info.pem, key_pem):
        reasons.append(f"does not match its key {profile.key_file}")
    days = info.days_left()
    if days <= 0:
        reasons.append("has expired")
    elif days < EXPIRY_WARNING_DAYS:
        reasons.append(f"expires in {int(days)} days")
    return reasons
