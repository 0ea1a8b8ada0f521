"""Judgements that need no network: the VIP rules against the API servers that are up,
etcd's member list against the inventory, served certificates, credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.health.catalog import Credentials
from tui.core.health.cert_checks import judge_certificate
from tui.core.health.etcd_checks import member_differences
from tui.core.health.model import Status
from tui.core.health.vip_checks import rules_check
from tui.core.inventory.model import San
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.inspect import certificate_info
from tui.core.pki.profiles import Profile

CONTROLLERS = ["10.10.0.10", "10.10.0.11", "10.10.0.12"]


def rules(*listed: str):  # type: ignore[no-untyped-def]
    async def backends() -> tuple[str, ...]:
        return listed
    return backends


async def test_vip_rules_must_list_exactly_the_backends_that_are_up() -> None:
    up = {"10.10.0.10", "10.10.0.11"}
    same = await rules_check(rules("10.10.0.10", "10.10.0.11"), lambda: up, CONTROLLERS)
    assert same.status is Status.OK
    stale = await rules_check(rules(*CONTROLLERS), lambda: up, CONTROLLERS)
    assert stale.status is Status.FAIL
    assert stale.detail == "the VIP still sends to 10.10.0.12 (API server down)"
    left_out = await rules_check(rules("10.10.0.10"), lambda: up, CONTROLLERS)
    assert left_out.status is Status.WARN and "10.10.0.11 up but not in the rules" in \
        left_out.detail

    async def unreadable() -> tuple[str, ...]:
        raise OSError("ipfw: permission denied")

    broken = await rules_check(unreadable, lambda: up, CONTROLLERS)
    assert broken.status is Status.FAIL and "ipfw: permission denied" in broken.detail


def test_member_list_differences_in_words() -> None:
    expected = {"controller-0": "https://10.10.0.10:2380",
                "controller-1": "https://10.10.0.11:2380"}
    members = [{"ID": "1", "name": "controller-0", "peerURLs": ["https://10.10.0.10:2380"]},
               {"ID": "2", "name": "controller-9", "peerURLs": ["https://10.10.0.19:2380"]},
               {"ID": "3", "name": "", "peerURLs": ["https://10.10.0.11:2380"]}]
    assert member_differences(members, expected) == [
        "member controller-9 is not a controller of the inventory",
        "member 3 has not started yet (peer URLs https://10.10.0.11:2380)",
        "controller controller-1 is not a member"]
    moved = [{"ID": "1", "name": "controller-0", "peerURLs": ["http://10.10.0.10:2380"]},
             {"ID": "2", "name": "controller-1", "peerURLs": ["https://10.10.0.11:2380"]}]
    assert member_differences(moved, expected) == [
        "member controller-0 advertises http://10.10.0.10:2380, the inventory says "
        "https://10.10.0.10:2380"]


def test_certificate_judgement(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca", key_type="ecdsa")
    other = CertificateAuthority.create(tmp_path / "other", key_type="ecdsa")
    required = (San("ip", "10.10.0.10", "controller-0's address"),
                San("ip", "127.0.0.1", "loopback"), San("dns", "kubernetes", "in-cluster"))
    profile = Profile("kubernetes", "kubernetes", "Kubernetes", dns_names=("kubernetes",),
                      ip_addresses=("10.10.0.10", "127.0.0.1"))
    good = certificate_info(ca.issue(profile, key_type="ecdsa").cert, "served")
    ok = judge_certificate(good, ca.cert, required)
    assert ok.status is Status.OK and ok.detail.startswith("the cluster CA, 3 SANs present")
    short = certificate_info(ca.issue(profile, key_type="ecdsa", validity_days=12).cert, "s")
    warn = judge_certificate(short, ca.cert, required)
    assert warn.status is Status.WARN and warn.detail.startswith("expires in 12 days")
    lacking = dataclasses.replace(profile, ip_addresses=("10.10.0.10",))
    missing = judge_certificate(certificate_info(ca.issue(lacking).cert, "s"), ca.cert,
                                required)
    assert missing.status is Status.FAIL and missing.detail == "missing SAN 127.0.0.1 (loopback)"
    foreign = judge_certificate(certificate_info(other.issue(profile).cert, "s"), ca.cert,
                                required)
    assert foreign.status is Status.FAIL
    assert foreign.detail == "not issued by the cluster CA: issuer 'Kubernetes'"


def test_credentials_name_the_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"ca\.pem cannot be read .*--pki"):
        Credentials.from_pki(tmp_path)
    ca = CertificateAuthority.create(tmp_path, key_type="ecdsa")
    credentials = Credentials.from_pki(tmp_path)
    assert credentials.ca_pem == ca.cert_pem and credentials.client_pair is None
    assert "BEGIN" not in repr(credentials)
