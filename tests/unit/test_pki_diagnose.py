"""Diagnoses from real certificates: each problem named in plain words with its fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory, San
from tui.core.pki.ca import CertificateAuthority, Issued
from tui.core.pki.diagnose import (
    CertFinding,
    diagnose_fleet,
    diagnose_host,
    is_generated_self_signed,
    missing_sans,
    unit_has_flag,
)
from tui.core.pki.inspect import CertInfo, certificate_info, inspect_pem, key_matches
from tui.core.pki.profiles import Profile, profile_named

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"
GOOD_UNIT = ("ExecStart={ path=/usr/local/bin/kube-apiserver ; argv[]=/usr/local/bin/"
             "kube-apiserver --advertise-address=10.10.0.10 --bind-address=0.0.0.0 "
             "--tls-cert-file=/var/lib/kubernetes/kubernetes.pem "
             "--tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem ; "
             "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; "
             "status=0/0 }")
BROKEN_UNIT = ("ExecStart={ path=/usr/local/bin/kube-apiserver ; argv[]=/usr/local/bin/"
               "kube-apiserver --advertise-address=10.10.0.10 --bind-address=0.0.0.0 "
               "--service-cluster-ip-range=10.110.0.0/24 ; ignore_errors=no ; pid=0 }")
SELF_SIGNED_FIX = (
    "put --tls-cert-file and --tls-private-key-file back into the unit's ExecStart (check the "
    "`\\` continuations in kube-apiserver.service: a dropped `\\` loses every flag after it), "
    "run `systemctl daemon-reload`, remove /var/run/kubernetes/apiserver.crt and .key, restart "
    "kube-apiserver (`hardway certs push` does all of this, showing the unit diff first)")


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(SEED)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def good(ca: CertificateAuthority, inv: Inventory) -> Issued:
    return ca.issue(profile_named(inv, "kubernetes"))


def info(issued: Issued, source: str = "controller-0:/var/lib/kubernetes/kubernetes.pem"
         ) -> CertInfo:
    return inspect_pem(issued.cert_pem, source)


def without(profile: Profile, *values: str) -> Profile:
    """``profile`` minus the SANs ``values`` (the seed's original kubernetes.pem)."""
    sans = tuple(s for s in profile.sans_reasons if s.value not in values)
    return Profile.from_sans(profile.name, profile.common_name, profile.organization, sans)


def generated_self_signed(host: str, stamp: int, advertise: str) -> CertInfo:
    """What kube-apiserver serves without TLS flags: a leaf under its own throwaway CA."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = dt.datetime.fromtimestamp(stamp, dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}-ca@{stamp}")])
    sans = [x509.IPAddress(ipaddress.ip_address(advertise)),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
            *(x509.DNSName(n) for n in ("kubernetes.default.svc", "kubernetes.default",
                                        "kubernetes", "localhost"))]
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{stamp}")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=365 * 100))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return certificate_info(leaf, f"served on {advertise}:6443")


def diagnose(inv: Inventory, ca: CertificateAuthority, **overrides: object) -> list[CertFinding]:
    arguments: dict[str, object] = {
        "required_sans": inv.api_server_sans, "ca_cert": ca.cert, "on_disk": None,
        "served": None, "key_pem_matches": True, "exec_start": GOOD_UNIT,
        "stale_cert_dir_file": False}
    arguments.update(overrides)
    return diagnose_host(inv.controllers[0], **arguments)  # type: ignore[arg-type]


def test_a_healthy_host_gets_one_ok(inv: Inventory, ca: CertificateAuthority,
                                    good: Issued) -> None:
    findings = diagnose(inv, ca, on_disk=info(good), served=info(good, "served on x:6443"))
    assert len(findings) == 1
    ok = findings[0]
    assert (ok.severity, ok.host, ok.certificate, ok.fix) == (
        "ok", "controller-0", "kubernetes.pem", "")
    assert "all 14 required SANs" in ok.message and "served on x:6443" in ok.message


def test_missing_sans_are_named_with_who_dials_them(inv: Inventory, ca: CertificateAuthority
                                                    ) -> None:
    old = info(ca.issue(without(profile_named(inv, "kubernetes"), "127.0.0.1", "10.50.0.1")))
    assert [s.value for s in missing_sans(old, inv.api_server_sans)] == ["10.50.0.1",
                                                                         "127.0.0.1"]
    findings = diagnose(inv, ca, on_disk=old, served=old)
    assert [f.severity for f in findings] == ["error"]
    message = findings[0].message
    assert message.startswith("/var/lib/kubernetes/kubernetes.pem on controller-0 lacks "
                              "2 required SANs: IP 10.50.0.1 (the API VIP: kubelets, "
                              "kube-proxy and kubectl dial it); IP 127.0.0.1 (loopback:")
    assert findings[0].fix == ("reissue kubernetes.pem with `hardway certs issue` and push it "
                               "with `hardway certs push`")


def test_missing_sans_compares_addresses_and_names_loosely() -> None:
    fake = dataclasses.replace(
        generated_self_signed("c", 1, "10.0.0.5"), dns_names=("KUBERNETES.Default.",))
    required = [San("dns", "kubernetes.default", "r"), San("ip", "10.0.0.5", "r"),
                San("dns", "kubernetes.default.svc.cluster.local", "r")]
    assert [s.value for s in missing_sans(fake, required)] == [
        "kubernetes.default.svc.cluster.local"]


def test_seed_scenario_names_both_problems(inv: Inventory, ca: CertificateAuthority) -> None:
    """The seed's hour: kubernetes.pem lacks 127.0.0.1 AND the apiserver serves its own."""
    on_disk = info(ca.issue(without(profile_named(inv, "kubernetes"), "127.0.0.1")))
    served = generated_self_signed("controller-0", 1600000000, "10.10.0.10")
    assert is_generated_self_signed(served) and not is_generated_self_signed(on_disk)
    findings = diagnose(inv, ca, on_disk=on_disk, served=served, exec_start=BROKEN_UNIT,
                        stale_cert_dir_file=True)
    assert [f.severity for f in findings] == ["error", "error"]
    assert "lacks a required SAN: IP 127.0.0.1 (loopback" in findings[0].message
    self_signed = findings[1]
    assert self_signed.message == (
        "kube-apiserver on controller-0 (served on 10.10.0.10:6443) serves the self-signed "
        "certificate it generated itself (issuer controller-0-ca@1600000000, "
        "/var/run/kubernetes/apiserver.crt), not kubernetes.pem, so reissuing kubernetes.pem "
        "changes nothing clients see. That certificate is signed by no cluster CA and lacks "
        "10.110.0.1, 10.10.0.11, 10.10.0.12, 10.50.0.1 and 5 more, so kubectl and "
        "every client that trusts ca.pem fail. Evidence: its unit's ExecStart has no "
        "--tls-cert-file and /var/run/kubernetes/apiserver.crt is present.")
    assert self_signed.fix == SELF_SIGNED_FIX


def test_unit_without_tls_flag_and_stale_file(inv: Inventory, ca: CertificateAuthority,
                                              good: Issued) -> None:
    flag = diagnose(inv, ca, on_disk=info(good), exec_start=BROKEN_UNIT)
    assert [(f.severity, f.fix) for f in flag] == [("error", SELF_SIGNED_FIX)]
    assert "has no --tls-cert-file in its ExecStart" in flag[0].message
    stale = diagnose(inv, ca, on_disk=info(good), stale_cert_dir_file=True)
    assert [f.severity for f in stale] == ["warning"]
    assert stale[0].message.startswith("/var/run/kubernetes/apiserver.crt exists on "
                                       "controller-0")


def test_unit_has_flag_reads_plain_and_systemd_forms() -> None:
    assert unit_has_flag(GOOD_UNIT, "--tls-cert-file")
    assert not unit_has_flag(BROKEN_UNIT, "--tls-cert-file")
    assert unit_has_flag("/bin/x --tls-cert-file /a.pem", "--tls-cert-file")
    assert not unit_has_flag("/bin/x --tls-cert-file-x=/a.pem", "--tls-cert-file")
    assert not unit_has_flag('/bin/x "unbalanced', "--tls-cert-file")


def test_wrong_issuer(inv: Inventory, ca: CertificateAuthority, tmp_path: Path) -> None:
    other = CertificateAuthority.create(tmp_path)
    foreign = info(other.issue(profile_named(inv, "kubernetes")))
    findings = diagnose(inv, ca, on_disk=foreign, served=foreign)
    assert [f.severity for f in findings] == ["error"]
    assert "was not signed by the cluster CA" in findings[0].message
    assert "`hardway certs issue`" in findings[0].fix


def test_key_mismatch(inv: Inventory, ca: CertificateAuthority, good: Issued) -> None:
    other_key = ca.issue(Profile("admin", "admin", "system:masters")).key_pem
    matches = key_matches(good.cert_pem, other_key)
    assert matches is False
    findings = diagnose(inv, ca, on_disk=info(good), key_pem_matches=matches)
    assert [f.severity for f in findings] == ["error"]
    assert findings[0].message.startswith("/var/lib/kubernetes/kubernetes-key.pem on "
                                          "controller-0 is not the private key of "
                                          "/var/lib/kubernetes/kubernetes.pem")


def test_expiring_and_expired(inv: Inventory, ca: CertificateAuthority) -> None:
    profile = profile_named(inv, "kubernetes")
    short = ca.issue(profile, validity_days=10)
    now = short.cert.not_valid_before_utc + dt.timedelta(hours=1)
    findings = diagnose(inv, ca, on_disk=info(short), now=now)
    assert [f.severity for f in findings] == ["warning"]
    assert "expires in 9 days" in findings[0].message
    assert findings[0].fix.endswith("before then")
    assert diagnose(inv, ca, on_disk=info(short), now=now - dt.timedelta(days=30))[0].message \
        .endswith("the clock of the machine that issued it, or of this host, is wrong.")
    old = ca.issue(profile, validity_days=10,
                   not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    expired = diagnose(inv, ca, on_disk=info(old))
    assert [f.severity for f in expired] == ["error"]
    assert "expired on 2020-01-11 00:00 UTC" in expired[0].message


def test_served_certificate_differs_from_disk(inv: Inventory, ca: CertificateAuthority,
                                              good: Issued) -> None:
    old = info(ca.issue(without(profile_named(inv, "kubernetes"), "10.50.0.1")),
               "served on 10.10.0.10:6443")
    findings = diagnose(inv, ca, on_disk=info(good), served=old)
    assert [f.severity for f in findings] == ["error"]
    assert "presents a different certificate" in findings[0].message
    assert "lacks 1 required SAN (10.50.0.1)" in findings[0].message
    assert findings[0].fix.startswith("restart kube-apiserver")
    renewed = info(ca.issue(profile_named(inv, "kubernetes")), "served on 10.10.0.10:6443")
    same_content = diagnose(inv, ca, on_disk=info(good), served=renewed)
    assert [f.severity for f in same_content] == ["warning"]  # valid, just not reloaded yet


def test_worker_certificate_at_its_own_path(inv: Inventory, ca: CertificateAuthority) -> None:
    worker = profile_named(inv, "worker-0")
    issued = ca.issue(worker)
    other_key = ca.issue(Profile("admin", "admin", "system:masters")).key_pem
    findings = diagnose_host(
        inv.workers[0], required_sans=worker.sans_reasons, ca_cert=ca.cert,
        on_disk=info(issued), served=None,
        key_pem_matches=key_matches(issued.cert_pem, other_key), exec_start=None,
        stale_cert_dir_file=False, certificate="worker-0.pem",
        remote_path="/var/lib/kubelet/worker-0.pem")
    assert [(f.severity, f.host, f.certificate) for f in findings] == [
        ("error", "worker-0", "worker-0.pem")]
    assert findings[0].message.startswith("/var/lib/kubelet/worker-0-key.pem on worker-0 is "
                                          "not the private key of /var/lib/kubelet/worker-0.pem")


def test_missing_file(inv: Inventory, ca: CertificateAuthority) -> None:
    findings = diagnose(inv, ca, on_disk=None, key_pem_matches=None)
    assert [(f.severity, f.message) for f in findings] == [
        ("error", "/var/lib/kubernetes/kubernetes.pem is missing or unreadable on "
                  "controller-0.")]


def test_different_cas_across_controllers() -> None:
    a, b = "SHA256:" + "a" * 64, "SHA256:" + "b" * 64
    findings = diagnose_fleet({"controller-0": a, "controller-1": a, "controller-2": b})
    assert [(f.severity, f.host) for f in findings] == [("error", "controller-2")]
    assert findings[0].message == (
        "controller-2 holds a different CA (SHA256:bbbbbbbbbbbb...) than the cluster: "
        "controller-0 and controller-1 have SHA256:aaaaaaaaaaaa.... Certificates signed by "
        "one CA are rejected by hosts trusting the other.")
    assert findings[0].fix.startswith("push the cluster's ca.pem")
    against_local = diagnose_fleet({"controller-0": a, "controller-1": a, "controller-2": b},
                                   expected=b)
    assert [f.host for f in against_local] == ["controller-0", "controller-1"]
    same = diagnose_fleet({"controller-0": a, "controller-1": a})
    assert [(f.severity, f.host) for f in same] == [("ok", None)]
    missing = diagnose_fleet({"controller-0": a, "controller-1": ""})
    assert [(f.severity, f.host) for f in missing] == [("error", "controller-1")]
    assert diagnose_fleet({}) == []


def test_findings_never_contain_key_material(inv: Inventory, ca: CertificateAuthority,
                                             good: Issued) -> None:
    findings = diagnose(inv, ca, on_disk=info(good), key_pem_matches=False,
                        served=generated_self_signed("controller-0", 1, "10.10.0.10"),
                        exec_start=BROKEN_UNIT, stale_cert_dir_file=True)
    text = " ".join(f.message + f.fix for f in findings)
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    key_body = ca.key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).splitlines()[1].decode()
    assert key_body not in text
