"""Turn certificate facts into findings: a severity, a plain sentence and the fix.

Nothing here touches the network or files: callers (``hardway certs check``, the survey, the
screen) gather :class:`~tui.core.pki.inspect.CertInfo` objects and flags, then call
:func:`diagnose_host` per host and :func:`diagnose_fleet` once.

The seed's worst hour is the case this module exists for: kube-apiserver lost
``--tls-cert-file`` to a broken ``\\`` continuation and served the self-signed
``/var/run/kubernetes/apiserver.crt`` it had generated, so reissuing kubernetes.pem changed
nothing that clients saw.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from cryptography import x509

from tui.core.inventory.model import Host, Paths, San
from tui.core.pki.inspect import CertInfo, certificate_info, chains_to

__all__ = [
    "EXPIRY_WARNING_DAYS",
    "CertFinding",
    "FindingSeverity",
    "FixAction",
    "diagnose_fleet",
    "diagnose_host",
    "is_generated_self_signed",
    "missing_sans",
    "served_findings",
    "unit_has_flag",
]

FindingSeverity = Literal["error", "warning", "ok"]
EXPIRY_WARNING_DAYS = 30
GENERATED_ISSUER = re.compile(r"^(?P<host>.+)-ca@(?P<stamp>\d+)$")

ISSUE_AND_PUSH = "reissue {cert} with `hardway certs issue` and push it with `hardway certs push`"


class FixAction(StrEnum):
    """A step of a fix that hardway does itself (the screen names its key, the CLI its
    command): ``issue`` (``hardway certs issue``, key i), ``push`` (p), ``restore`` (u)."""

    ISSUE = "issue"
    PUSH = "push"
    RESTORE = "restore"


ISSUE_PUSH = (FixAction.ISSUE, FixAction.PUSH)
PUSH = (FixAction.PUSH,)


@dataclass(frozen=True)
class CertFinding:
    """One diagnosis.

    Attributes:
        severity: ``error`` (clients fail or will), ``warning`` (act soon), ``ok``.
        host: the host it concerns, or None for the whole cluster / the local PKI.
        certificate: the file or thing concerned, e.g. ``kubernetes.pem`` or ``ca.pem``.
        message: what is wrong, in plain words.
        fix: what to do about it, as the CLI says it ("" for ok findings).
        actions: the hardway actions that carry the fix out, in order (empty: the fix is
            a manual one, or there is none).
        after: what remains to do by hand after ``actions`` ("" when nothing).
    """

    severity: FindingSeverity
    host: str | None
    certificate: str
    message: str
    fix: str
    actions: tuple[FixAction, ...] = ()
    after: str = ""


def missing_sans(info: CertInfo, required: Sequence[San]) -> list[San]:
    """The required SANs ``info`` lacks (IPs compared as addresses, DNS case-insensitively)."""
    have_ips = {ipaddress.ip_address(ip) for ip in info.ip_addresses}
    have_dns = {name.lower().rstrip(".") for name in info.dns_names}
    missing = []
    for san in required:
        if san.kind == "ip":
            present = ipaddress.ip_address(san.value) in have_ips
        else:
            present = san.value.lower().rstrip(".") in have_dns
        if not present:
            missing.append(san)
    return missing


def is_generated_self_signed(info: CertInfo) -> bool:
    """True for the certificate kube-apiserver generates itself (issuer ``<host>-ca@<digits>``)."""
    return GENERATED_ISSUER.match(info.issuer_cn) is not None


def unit_has_flag(exec_start: str, flag: str) -> bool:
    """Whether ``flag`` (e.g. ``--tls-cert-file``) is one of the ExecStart arguments.

    Accepts a plain command line or systemd's ``show -p ExecStart`` form
    (``ExecStart={ path=... ; argv[]=... }``).
    """
    try:
        words = shlex.split(exec_start)
    except ValueError:
        words = exec_start.split()
    return any(word == flag or word.startswith(flag + "=") for word in words)


def diagnose_host(host: Host | str, *, required_sans: Sequence[San],
                  ca_cert: x509.Certificate | None, on_disk: CertInfo | None,
                  served: CertInfo | None, key_pem_matches: bool | None,
                  exec_start: str | None, stale_cert_dir_file: bool,
                  certificate: str = "kubernetes.pem", paths: Paths | None = None,
                  remote_path: str | None = None,
                  now: dt.datetime | None = None) -> list[CertFinding]:
    """Everything wrong with one host's certificate (the API server's by default).

    Args:
        host: the host (or its name).
        required_sans: SANs the certificate must carry (``inventory.api_server_sans``).
        ca_cert: the cluster CA (None: issuer checks are skipped).
        on_disk: the certificate file on the host (None: it is missing or unreadable).
        served: what the service presents over TLS (None: not checked / not a server cert).
        key_pem_matches: whether the key file matches ``on_disk`` (None: not checked).
        exec_start: kube-apiserver's ExecStart (None: not checked).
        stale_cert_dir_file: ``/var/run/kubernetes/apiserver.crt`` exists.
        certificate: the file name the findings talk about.
        paths: remote paths for the messages (KTHW defaults).
        remote_path: where the file lives on the host (default
            ``paths.kubernetes_config/certificate``; a worker's is e.g. /var/lib/kubelet).
        now: the time to judge validity against (default: now).

    Returns:
        Findings; a single ``ok`` finding when nothing is wrong.
    """
    name = host.name if isinstance(host, Host) else host
    paths = paths or Paths()
    now = now or dt.datetime.now(dt.UTC)
    reissue = ISSUE_AND_PUSH.format(cert=certificate)
    disk_path = remote_path or f"{paths.kubernetes_config}/{certificate}"
    findings: list[CertFinding] = []

    def add(severity: FindingSeverity, message: str, fix: str,
            actions: tuple[FixAction, ...] = ISSUE_PUSH, after: str = "") -> None:
        findings.append(CertFinding(severity, name, certificate, message, fix,
                                    actions if severity != "ok" else (), after))

    if on_disk is None:
        add("error", f"{disk_path} is missing or unreadable on {name}.",
            f"issue {certificate} with `hardway certs issue` and push it with "
            "`hardway certs push`")
    else:
        findings += _file_findings(name, certificate, disk_path, on_disk, required_sans,
                                   ca_cert, now, reissue)
        if key_pem_matches is False:
            key_path = disk_path.removesuffix(".pem") + "-key.pem"
            add("error", f"{key_path} on {name} is not the private "
                f"key of {disk_path}: TLS with this pair fails at the handshake.",
                f"push the matching pair again with `hardway certs push` (or {reissue})",
                PUSH)

    run_dir = paths.kubernetes_run
    flag_missing = exec_start is not None and not unit_has_flag(exec_start, "--tls-cert-file")
    if served is not None and is_generated_self_signed(served):
        add("error", _self_signed_message(name, certificate, served, flag_missing,
                                          stale_cert_dir_file, run_dir, required_sans),
            _self_signed_fix(flag_missing or exec_start is None, run_dir), PUSH)
    else:
        if flag_missing:
            add("error", f"kube-apiserver.service on {name} has no --tls-cert-file in its "
                f"ExecStart, so kube-apiserver ignores {certificate} and serves a self-signed "
                f"certificate it generates in {run_dir}.",
                _self_signed_fix(True, run_dir), PUSH)
        elif stale_cert_dir_file:
            add("warning", f"{run_dir}/apiserver.crt exists on {name}: kube-apiserver "
                "generated a self-signed certificate there at some start without "
                "--tls-cert-file, and would serve it again (without any SAN check) if the "
                "flag were lost.",
                f"remove {run_dir}/apiserver.crt and apiserver.key (`hardway certs push` "
                "does this)", PUSH)
        if served is not None and (on_disk is None or served.fingerprint != on_disk.fingerprint):
            findings += _served_differs(name, certificate, disk_path, served, ca_cert,
                                        required_sans, now)

    if not findings and on_disk is not None:
        checked = ["is signed by the cluster CA" if ca_cert is not None else "",
                   f"has all {len(required_sans)} required SANs" if required_sans else "",
                   "matches its key" if key_pem_matches else "",
                   f"is the certificate {served.source}" if served is not None else ""]
        add("ok", f"{certificate} on {name} {_and([p for p in checked if p]) or 'looks right'}"
            f"; it is valid for {int(on_disk.days_left(now))} more days.", "")
    return findings


def diagnose_fleet(per_host_ca_fingerprints: Mapping[str, str], *,
                   expected: str | None = None,
                   certificate: str = "ca.pem") -> list[CertFinding]:
    """Find hosts that hold a different CA than the others (or than ``expected``).

    Args:
        per_host_ca_fingerprints: host -> ``SHA256:...`` of its ca.pem ("" when missing).
        expected: the local PKI's CA fingerprint; without it the most common one is presumed
            right.
        certificate: the file name the findings talk about.
    """
    if not per_host_ca_fingerprints:
        return []
    groups: dict[str, list[str]] = {}
    for host, fingerprint in per_host_ca_fingerprints.items():
        groups.setdefault(fingerprint, []).append(host)
    present = {fp: hosts for fp, hosts in groups.items() if fp}
    if expected is None and present:
        expected = max(present, key=lambda fp: len(present[fp]))
    findings: list[CertFinding] = []
    for host, fingerprint in per_host_ca_fingerprints.items():
        if not fingerprint:
            findings.append(CertFinding(
                "error", host, certificate, f"{host} has no readable {certificate}.",
                f"push {certificate} with `hardway certs push`", PUSH))
        elif fingerprint != expected:
            agreeing = groups.get(expected or "", [])
            if agreeing:
                others = f"{_names(agreeing)} {'has' if len(agreeing) == 1 else 'have'} " \
                         f"{_short(expected)}"
            else:
                others = f"the cluster CA is {_short(expected)}"
            findings.append(CertFinding(
                "error", host, certificate,
                f"{host} holds a different CA ({_short(fingerprint)}) than the cluster: "
                f"{others}. Certificates signed by one CA are rejected by hosts trusting "
                "the other.",
                f"push the cluster's {certificate} and the certificates it signed to {host} "
                "with `hardway certs push`", PUSH))
    if not findings:
        findings.append(CertFinding(
            "ok", None, certificate,
            f"all {len(per_host_ca_fingerprints)} hosts hold the same CA ({_short(expected)}).",
            ""))
    return findings


def _file_findings(name: str, certificate: str, disk_path: str, info: CertInfo,
                   required: Sequence[San], ca_cert: x509.Certificate | None,
                   now: dt.datetime, reissue: str) -> list[CertFinding]:
    findings = []
    missing = missing_sans(info, required)
    if missing:
        findings.append(CertFinding(
            "error", name, certificate,
            f"{disk_path} on {name} lacks {_missing_text(missing)}", reissue, ISSUE_PUSH))
    if ca_cert is not None and not chains_to(info, ca_cert):
        findings.append(CertFinding(
            "error", name, certificate,
            f"{disk_path} on {name} was not signed by the cluster CA: its issuer is "
            f"{info.issuer or '(empty)'}, the CA is {_ca_name(ca_cert)}. Clients that trust "
            "ca.pem reject it.", reissue, ISSUE_PUSH))
    findings += _validity_findings(name, certificate, f"{disk_path} on {name}", info, now,
                                   reissue)
    return findings


def _validity_findings(name: str, certificate: str, what: str, info: CertInfo,
                       now: dt.datetime, reissue: str) -> list[CertFinding]:
    days = info.days_left(now)
    until = info.not_after.strftime("%Y-%m-%d %H:%M UTC")
    if days <= 0:
        return [CertFinding("error", name, certificate,
                            f"{what} expired on {until} ({_days(-days)} ago): every TLS "
                            "client rejects it.", reissue, ISSUE_PUSH)]
    if info.not_before > now:
        start = info.not_before.strftime("%Y-%m-%d %H:%M UTC")
        return [CertFinding("error", name, certificate,
                            f"{what} is not valid before {start}: the clock of the machine "
                            "that issued it, or of this host, is wrong.",
                            f"fix the clocks (NTP), then {reissue}", ISSUE_PUSH,
                            "fix the clocks (NTP) first")]
    if days < EXPIRY_WARNING_DAYS:
        return [CertFinding("warning", name, certificate,
                            f"{what} expires in {_days(days)}, on {until}.",
                            f"{reissue} before then", ISSUE_PUSH)]
    return []


def _served_differs(name: str, certificate: str, disk_path: str, served: CertInfo,
                    ca_cert: x509.Certificate | None, required: Sequence[San],
                    now: dt.datetime) -> list[CertFinding]:
    return served_findings(name, certificate, disk_path, served, ca_cert, required, now,
                           service="kube-apiserver")


SERVED_FIX = {
    "kube-apiserver": "restart kube-apiserver so it loads the file on disk (it also re-reads "
                      "it within a minute); if it still differs, check --tls-cert-file in "
                      "kube-apiserver.service",
    "etcd": "etcd re-reads its serving certificate on every handshake, so its unit names "
            "another file: check --cert-file in etcd.service, then restart etcd",
}


def served_findings(name: str, certificate: str, disk_path: str, served: CertInfo,
                    ca_cert: x509.Certificate | None, required: Sequence[San],
                    now: dt.datetime | None = None, *,
                    service: str) -> list[CertFinding]:
    """A served certificate that differs from ``disk_path``: what is wrong with it.

    Args:
        service: ``kube-apiserver`` (port 6443) or ``etcd`` (2379), for the messages.
    """
    now = now or dt.datetime.now(dt.UTC)
    problems = []
    if ca_cert is not None and not chains_to(served, ca_cert):
        problems.append(f"it was not signed by the cluster CA (issuer {served.issuer})")
    missing = missing_sans(served, required)
    if missing:
        problems.append(f"it lacks {len(missing)} required SAN"
                        f"{'s' if len(missing) != 1 else ''} ({_few(missing)})")
    detail = (": " + "; ".join(problems)) if problems else ""
    findings = [CertFinding(
        "error" if problems else "warning", name, certificate,
        f"{service} on {name} ({served.source}) presents a different certificate "
        f"(CN {served.subject_cn}, {served.fingerprint[:19]}...) than {disk_path}{detail}.",
        SERVED_FIX[service])]
    findings += _validity_findings(name, certificate, f"the certificate {served.source}",
                                   served, now, f"restart {service} after pushing a "
                                   "fresh " + certificate)
    return findings


def _self_signed_message(name: str, certificate: str, served: CertInfo, flag_missing: bool,
                         stale: bool,
                         run_dir: str, required: Sequence[San]) -> str:
    evidence = []
    if flag_missing:
        evidence.append("its unit's ExecStart has no --tls-cert-file")
    if stale:
        evidence.append(f"{run_dir}/apiserver.crt is present")
    because = (" Evidence: " + " and ".join(evidence) + ".") if evidence else ""
    missing = missing_sans(served, required)
    lacks = (f" That certificate is signed by no cluster CA and lacks {_few(missing)}, so "
             "kubectl and every client that trusts ca.pem fail.") if missing else (
             " No client that trusts ca.pem accepts it.")
    return (f"kube-apiserver on {name} ({served.source}) serves the self-signed certificate "
            f"it generated itself (issuer {served.issuer_cn}, {run_dir}/apiserver.crt), not "
            f"{certificate}, so reissuing {certificate} changes nothing clients see."
            f"{lacks}{because}")


def _self_signed_fix(flag_missing: bool, run_dir: str) -> str:
    steps = []
    if flag_missing:
        steps.append("put --tls-cert-file and --tls-private-key-file back into the unit's "
                     "ExecStart (check the `\\` continuations in kube-apiserver.service: a "
                     "dropped `\\` loses every flag after it), run `systemctl daemon-reload`")
    steps.append(f"remove {run_dir}/apiserver.crt and .key")
    steps.append("restart kube-apiserver")
    return (", ".join(steps)
            + " (`hardway certs push` does all of this, showing the unit diff first)")


def _missing_text(missing: Sequence[San]) -> str:
    parts = [f"{'IP' if san.kind == 'ip' else 'DNS name'} {san.value} ({san.reason})"
             for san in missing]
    noun = "a required SAN" if len(missing) == 1 else f"{len(missing)} required SANs"
    them = "it" if len(missing) == 1 else "them"
    return f"{noun}: " + "; ".join(parts) + f". Clients that dial {them} fail TLS verification."


def _ca_name(ca_cert: x509.Certificate) -> str:
    return certificate_info(ca_cert, "ca").subject


def _and(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _names(hosts: Sequence[str]) -> str:
    return _and(hosts)


def _few(sans: Sequence[San], limit: int = 4) -> str:
    """``127.0.0.1, 10.50.0.1 and 3 more``: the first few values of a SAN list."""
    values = [san.value for san in sans]
    if len(values) <= limit:
        return _and(values)
    return ", ".join(values[:limit]) + f" and {len(values) - limit} more"


def _short(fingerprint: str | None) -> str:
    if not fingerprint:
        return "none"
    return fingerprint[:19] + "..." if len(fingerprint) > 22 else fingerprint


def _days(days: float) -> str:
    whole = int(days)
    if whole < 1:
        hours = max(1, int(days * 24))
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{whole} day{'s' if whole != 1 else ''}"
