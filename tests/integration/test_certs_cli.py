"""`hardway certs` on the command line: plan and issue (local only), help, argument errors.

The commands that contact hosts (check, push) are exercised against the lab in
tests/integration/test_certs_lab.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tui.cli import main
from tui.core.inventory.load import load_inventory
from tui.core.pki.inspect import chains_to, inspect_file, key_matches
from tui.core.pki.kubeconfig import kubeconfig_specs

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["admin", "worker-0", "worker-1", "worker-2", "kube-controller-manager", "kube-proxy",
         "kube-scheduler", "kubernetes", "service-account"]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.toml"
    shutil.copy(ROOT / "config" / "something.local.toml", path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_help_lists_actions_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["certs", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("plan", "check", "issue", "push", "--restore", "examples:", "pki/"):
        assert word in out
    with pytest.raises(SystemExit):
        main(["certs", "push", "--help"])
    out = capsys.readouterr().out
    for word in ("--dry-run", "--yes", "--restore", "--health-timeout", "hardway-bak",
                 "last-push.json", "exit status"):
        assert word in out


def test_plan_lists_every_certificate_with_sans_and_placements(
        inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "certs", "plan", "-i", str(inventory), "--json")
    assert status == 0
    data = json.loads(out)
    assert [c["name"] for c in data["certificates"]] == NAMES
    assert {c["status"] for c in data["certificates"]} == {"missing"}
    assert data["pki"] == str(inventory.parent / "pki")
    kubernetes = next(c for c in data["certificates"] if c["name"] == "kubernetes")
    expected = load_inventory(inventory).api_server_sans
    assert [(s["kind"], s["value"]) for s in kubernetes["sans"]] == [
        (s.kind, s.value) for s in expected]
    assert "127.0.0.1" in kubernetes["ip_addresses"]
    assert [p["path"] for p in data["placements"]["worker-2"]] == [
        "/var/lib/kubernetes/ca.pem", "/var/lib/kubelet/worker-2.pem",
        "/var/lib/kubelet/worker-2-key.pem", "/var/lib/kubelet/kubeconfig",
        "/var/lib/kube-proxy/kubeconfig"]
    status, out, _ = run(capsys, "certs", "plan", "-i", str(inventory))
    assert status == 0
    assert "kubernetes.pem" in out and "loopback: controller-manager" in out
    assert "CA not created yet" in out


def test_issue_creates_the_ca_and_every_pair_then_keeps_them(
        inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = inventory.parent / "pki"
    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory), "--dry-run")
    assert status == 0 and "would issue" in out and not pki.exists()

    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory), "--json")
    assert status == 0
    actions = {c["name"]: c["action"] for c in json.loads(out)["certificates"]}
    configs = {f"{s.name}.kubeconfig": "written"
               for s in kubeconfig_specs(load_inventory(inventory))}
    assert "admin.kubeconfig" in configs and "kube-proxy.kubeconfig" in configs
    assert actions == {"ca": "created", **{n: "issued" for n in NAMES}, **configs}
    assert "PRIVATE KEY" not in out
    ca = inspect_file(pki / "ca.pem")
    for name in NAMES:
        assert (pki / f"{name}-key.pem").stat().st_mode & 0o777 == 0o600
        info = inspect_file(pki / f"{name}.pem")
        assert chains_to(info, ca.cert)
        assert key_matches(info.pem, (pki / f"{name}-key.pem").read_bytes())

    before = {n: inspect_file(pki / f"{n}.pem").fingerprint for n in NAMES}
    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory))
    assert status == 0 and "Nothing to issue" in out
    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory), "kubernetes",
                         "--force")
    assert status == 0
    after = {n: inspect_file(pki / f"{n}.pem").fingerprint for n in NAMES}
    assert [n for n in NAMES if before[n] != after[n]] == ["kubernetes"]
    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory), "admin", "--force")
    assert status == 0 and re.search(r"written +admin\.kubeconfig", out)
    assert "embeds an older admin.pem" in out
    assert inspect_file(pki / "ca.pem").fingerprint == ca.fingerprint


def test_issue_reissues_what_no_longer_fits(inventory: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "certs", "issue", "-i", str(inventory), "--key-type", "ecdsa")[0] == 0
    text = inventory.read_text().replace('vip = "10.50.0.1"', 'vip = "10.50.0.7"')
    inventory.write_text(text)
    status, out, _ = run(capsys, "certs", "plan", "-i", str(inventory))
    assert "MISSING: the API VIP" in out and "needs reissue" in out
    status, out, _ = run(capsys, "certs", "issue", "-i", str(inventory), "--json",
                         "--key-type", "ecdsa")
    assert status == 0
    items = {c["name"]: c for c in json.loads(out)["certificates"]}
    assert items["kubernetes"]["action"] == "issued"
    assert any("10.50.0.7" in r for r in items["kubernetes"]["reasons"])
    assert {n for n, c in items.items() if c["action"] == "issued"} == {"kubernetes"}
    assert "10.50.0.7" in inspect_file(inventory.parent / "pki" / "kubernetes.pem").ip_addresses


def test_issue_never_overwrites_a_ca(inventory: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "certs", "issue", "-i", str(inventory), "--key-type", "ecdsa")[0] == 0
    pki = inventory.parent / "pki"
    ca_pem = (pki / "ca.pem").read_bytes()
    (pki / "ca-key.pem").unlink()
    status, _, err = run(capsys, "certs", "issue", "-i", str(inventory), "--force")
    assert status == 2
    assert "ca-key.pem does not exist" in err
    assert (pki / "ca.pem").read_bytes() == ca_pem


def test_argument_errors(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "certs", "issue", "-i", str(inventory), "kubelet")
    assert status == 2 and "no certificate called kubelet" in err and "worker-0" in err
    status, _, err = run(capsys, "certs", "plan", "-i", str(inventory.parent / "nope.toml"))
    assert status == 2 and "does not exist" in err
