"""Doc 05's kubeconfigs: the strict reader, and every way one can be wrong (real certs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.diagnose import FixAction
from tui.core.pki.kubeconfig import (
    Problem,
    check_kubeconfig,
    kubeconfig_findings,
    kubeconfig_specs,
    write_kubeconfigs,
)
from tui.core.pki.kubeconfig_text import parse_kubeconfig, parse_layout, render_kubeconfig
from tui.core.pki.profiles import profile_named

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(ROOT / "config" / "something.local.toml")


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority,
                                                              CertificateAuthority]:
    return (CertificateAuthority.create(tmp_path_factory.mktemp("ca"), key_type="ecdsa"),
            CertificateAuthority.create(tmp_path_factory.mktemp("other"), key_type="ecdsa"))


def _config(inventory: Inventory, ca: CertificateAuthority, name: str, *,
            server: str | None = None, issuer: CertificateAuthority | None = None,
            as_profile: str | None = None, key_from: str | None = None) -> bytes:
    spec = next(s for s in kubeconfig_specs(inventory) if s.name == name)
    issued = (issuer or ca).issue(profile_named(inventory, as_profile or name),
                                  key_type="ecdsa")
    key = ca.issue(profile_named(inventory, key_from), key_type="ecdsa").key_pem \
        if key_from else issued.key_pem
    return render_kubeconfig(cluster="lab", server=server or spec.servers[0], user=spec.user,
                             ca_pem=ca.cert_path.read_bytes(), cert_pem=issued.cert_pem,
                             key_pem=key).encode()


def _check(inventory: Inventory, ca: CertificateAuthority, name: str, data: bytes):
    spec = next(s for s in kubeconfig_specs(inventory) if s.name == name)
    return check_kubeconfig(spec, data, f"/var/lib/kubernetes/{spec.file}",
                            profile=profile_named(inventory, name), ca_cert=ca.cert)


def test_specs_follow_kthw_doc_05(inventory: Inventory) -> None:
    specs = {s.name: s for s in kubeconfig_specs(inventory)}
    assert specs["admin"].servers == ("https://127.0.0.1:6443",)
    assert specs["kube-scheduler"].installed == "/var/lib/kubernetes/kube-scheduler.kubeconfig"
    assert specs["kube-proxy"].servers[0] == f"https://{inventory.api.vip}:6443"
    assert specs["kube-proxy"].installed == "/var/lib/kube-proxy/kubeconfig"
    worker = inventory.workers[0].name
    assert specs[worker].installed == "/var/lib/kubelet/kubeconfig"
    assert specs[worker].user == f"system:node:{worker}"


def test_a_right_kubeconfig_has_no_problem(inventory: Inventory, cas) -> None:
    ca, _other = cas
    check = _check(inventory, ca, "kube-scheduler", _config(inventory, ca, "kube-scheduler"))
    assert check.problems == () and check.short == "ok"
    assert check.cert is not None and check.cert.subject_cn == "system:kube-scheduler"


def test_wrong_server_url(inventory: Inventory, cas) -> None:
    ca, _other = cas
    data = _config(inventory, ca, "admin", server="https://10.10.0.11:6443")
    check = _check(inventory, ca, "admin", data)
    assert [p.kind for p in check.problems] == [Problem.SERVER]
    assert check.short == "wrong server" and check.server == "https://10.10.0.11:6443"
    [finding] = kubeconfig_findings(check, "controller-1", Path("/pki"), local_fits=True)
    assert finding.severity == "error" and finding.host == "controller-1"
    assert "points admin at https://10.10.0.11:6443" in finding.message
    assert "https://127.0.0.1:6443" in finding.message
    assert finding.actions == () and finding.fix == (
        "copy /pki/admin.kubeconfig to /var/lib/kubernetes/admin.kubeconfig on controller-1")


def test_certificate_from_another_ca(inventory: Inventory, cas) -> None:
    ca, other = cas
    check = _check(inventory, ca, "kube-proxy", _config(inventory, ca, "kube-proxy",
                                                        issuer=other))
    assert [p.kind for p in check.problems] == [Problem.ISSUER]
    [finding] = kubeconfig_findings(check, None)
    assert "not signed by the cluster CA" in finding.message
    assert finding.actions == (FixAction.ISSUE,)


def test_embedded_ca_of_another_cluster(inventory: Inventory, cas) -> None:
    ca, other = cas
    check = _check(inventory, other, "admin", _config(inventory, ca, "admin"))
    kinds = [p.kind for p in check.problems]
    assert Problem.CA in kinds and Problem.ISSUER in kinds


def test_wrong_cn(inventory: Inventory, cas) -> None:
    ca, _other = cas
    data = _config(inventory, ca, "kube-controller-manager", as_profile="kube-scheduler")
    check = _check(inventory, ca, "kube-controller-manager", data)
    assert [p.kind for p in check.problems] == [Problem.SUBJECT]
    assert "CN=system:kube-controller-manager" in check.problems[0].text
    assert "'system:kube-scheduler'" in check.problems[0].text


def test_key_mismatch(inventory: Inventory, cas) -> None:
    ca, _other = cas
    check = _check(inventory, ca, "admin", _config(inventory, ca, "admin", key_from="admin"))
    assert [p.kind for p in check.problems] == [Problem.KEY]
    assert check.short == "key mismatch"


def test_unreadable_kubeconfig_is_a_finding_not_a_traceback(inventory: Inventory,
                                                            cas) -> None:
    ca, _other = cas
    check = _check(inventory, ca, "admin", b"apiVersion: v1\nclusters: &anchor\n")
    assert [p.kind for p in check.problems] == [Problem.UNREADABLE]
    assert "line 2" in check.problems[0].text


def test_reader_takes_kubectl_layout_indented_lists_and_json() -> None:
    text = ("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n  - name: k\n"
            "    cluster:\n      server: 'https://k:6443'\ncontexts:\n  - name: c\n"
            "    context: {}\nusers:\n  - name: u\n    user:\n"
            "      client-certificate: /etc/admin.pem\n")
    with pytest.raises(UserError, match="names cluster 'nope'"):
        parse_kubeconfig(text.replace("context: {}", "context:\n      cluster: nope")
                         .encode(), "x")
    doc = parse_kubeconfig(text.replace("context: {}", "context:\n      cluster: k\n"
                                        "      user: u").encode(), "x")
    assert doc.server == "https://k:6443" and doc.referenced_files == ("/etc/admin.pem",)
    assert parse_layout('{"kind": "Config"}', "j") == {"kind": "Config"}
    with pytest.raises(UserError, match=r"x line 2: the key .a. appears twice"):
        parse_layout("a: 1\na: 2\n", "x")


def test_write_kubeconfigs_writes_then_keeps_then_rewrites(tmp_path: Path,
                                                           inventory: Inventory) -> None:
    ca = CertificateAuthority.create(tmp_path, key_type="ecdsa")
    from tui.core.pki.profiles import write_pair

    for name in ("admin", "kube-scheduler"):
        write_pair(tmp_path, name, ca.issue(profile_named(inventory, name), key_type="ecdsa"))
    first = write_kubeconfigs(inventory, tmp_path, ca.cert)
    assert {a["name"]: a["action"] for a in first} == {
        "admin.kubeconfig": "written", "kube-scheduler.kubeconfig": "written"}
    assert (tmp_path / "admin.kubeconfig").stat().st_mode & 0o777 == 0o600
    assert {a["action"] for a in write_kubeconfigs(inventory, tmp_path, ca.cert)} == {"kept"}
    write_pair(tmp_path, "admin", ca.issue(profile_named(inventory, "admin"), key_type="ecdsa"))
    again = {a["name"]: a for a in write_kubeconfigs(inventory, tmp_path, ca.cert)}
    assert again["admin.kubeconfig"]["action"] == "written"
    assert again["admin.kubeconfig"]["reasons"] == ["embeds an older admin.pem"]
