"""`hardway certs check` and the matrix on a lab where KTHW docs 04-06 are done
(scenario certs-pushed): the kubeconfigs KTHW's scp left in each home are read and judged,
a broken one is found, and the same problem on several controllers is one grouped finding
whose fix names the screen's keys or the copy to make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from screens.certs import screen_fix
from tests.conftest import running_lab
from tui.cli import main
from tui.core.inventory.load import load_inventory
from tui.core.pki.diagnose import CertFinding, FixAction
from tui.core.pki.grouping import group_findings
from tui.core.pki.matrix import build_matrix
from tui.core.pki.usecase import CertificateWork
from tui.core.workbench import Workbench
from tui.lab.lab import LabRunner

KUBECONFIGS = ("admin.kubeconfig", "kube-controller-manager.kubeconfig",
               "kube-scheduler.kubeconfig", "worker-0.kubeconfig", "kube-proxy.kubeconfig")


@pytest.fixture(scope="module")
def pushed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    with running_lab(tmp_path_factory.mktemp("kubeconfigs"), 61, controllers=3, workers=1,
                     isolation="none", scenario="certs-pushed") as runner:
        yield runner


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _check(capsys: pytest.CaptureFixture[str], lab: LabRunner) -> dict:  # type: ignore[type-arg]
    main(["certs", "check", "--json", "-i", str(lab.lab.inventory_path)])
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


async def _matrix(lab: LabRunner):
    inventory = load_inventory(lab.lab.inventory_path)
    async with Workbench(inventory, host_keys="strict") as workbench:
        work: CertificateWork = workbench.certs
        report = await work.survey()
    return report, build_matrix(inventory, report, work.pki_dir)


def test_the_kubeconfigs_in_the_homes_are_clean(pushed_lab: LabRunner,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    report = _check(capsys, pushed_lab)
    assert not [f for f in report["findings"] if f["certificate"].endswith(".kubeconfig")]
    main(["certs", "check", "-i", str(pushed_lab.lab.inventory_path)])
    text = capsys.readouterr().out
    assert "on 4 hosts (11 kubeconfigs and 0 served certificates checked)." in text
    import asyncio

    survey, matrix = asyncio.run(_matrix(pushed_lab))
    for host in ("controller-0", "controller-1", "controller-2"):
        assert survey.hosts[host].home == "/root"
        for name in KUBECONFIGS[:3]:
            cell = matrix.cell(name.replace(".kubeconfig", "-kubeconfig"), host)
            assert (cell.status, cell.short) == ("ok", "ok"), (host, name, cell)
            assert f"file /root/{name}" in cell.notes
    for name in KUBECONFIGS[3:]:
        cell = matrix.cell(name.replace(".kubeconfig", "-kubeconfig"), "worker-0")
        assert cell.status == "ok", (name, cell)
        assert cell.info is not None and cell.info.issuer_cn == "Kubernetes"
    labels = [row.label for row in matrix.rows]
    for wanted in ("admin.pem", "kube-controller-manager.pem", "kube-scheduler.pem",
                   "kube-proxy.pem", "worker-0.pem", "kubernetes.pem served :2379",
                   *KUBECONFIGS):
        assert wanted in labels


def test_a_broken_kubeconfig_is_found_and_grouped(pushed_lab: LabRunner,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lab = pushed_lab.lab
    for host in ("controller-0", "controller-2"):
        path = lab.directory / "hosts" / host / "root" / "kube-scheduler.kubeconfig"
        path.write_text(path.read_text().replace("https://127.0.0.1:6443",
                                                 "https://10.10.0.11:6443"))
    pki = lab.directory / "pki"
    admin = lab.directory / "hosts" / "controller-1" / "root" / "admin.kubeconfig"
    admin.write_text((pki / "kube-scheduler.kubeconfig").read_text())  # another identity
    report = _check(capsys, pushed_lab)
    found = [f for f in report["findings"] if f["certificate"].endswith(".kubeconfig")]
    assert sorted((f["host"], f["certificate"]) for f in found) == [
        ("controller-0", "kube-scheduler.kubeconfig"),
        ("controller-1", "admin.kubeconfig"), ("controller-2", "kube-scheduler.kubeconfig")]
    assert all(f["severity"] == "error" for f in found)
    [wrong_cn] = [f for f in found if f["host"] == "controller-1"]
    assert "embeds a certificate for 'system:kube-scheduler'" in wrong_cn["message"]
    assert wrong_cn["actions"] == []  # the local admin.kubeconfig fits: copy it
    import asyncio

    survey, matrix = asyncio.run(_matrix(pushed_lab))
    assert matrix.cell("kube-scheduler-kubeconfig", "controller-0").short == "wrong server"
    assert matrix.cell("kube-scheduler-kubeconfig", "controller-1").short == "ok"
    assert matrix.cell("admin-kubeconfig", "controller-1").status == "error"
    groups = [g for g in group_findings(survey.findings)
              if g.finding.certificate == "kube-scheduler.kubeconfig"]
    assert len(groups) == 1 and groups[0].hosts == ("controller-0", "controller-2")
    finding = groups[0].finding
    assert finding.message.startswith("/root/kube-scheduler.kubeconfig on controller-[0,2] "
                                      "points system:kube-scheduler at https://10.10.0.11:6443")
    assert screen_fix(finding) == (f"copy {pki}/kube-scheduler.kubeconfig to "
                                   "/root/kube-scheduler.kubeconfig on controller-[0,2]")
    missing = [g.finding for g in group_findings(survey.findings)
               if g.finding.certificate == "kubernetes.pem"]
    assert missing and screen_fix(missing[0]) == "press i to issue, then p to push"


@pytest.fixture(scope="module")
def installed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A healthy lab (doc 08 done: the controllers' kubeconfigs in /var/lib/kubernetes)."""
    with running_lab(tmp_path_factory.mktemp("installed"), 63, controllers=3, workers=1,
                     isolation="none") as runner:
        yield runner


def test_an_installed_kubeconfig_is_fixed_by_push(installed_lab: LabRunner,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lab = installed_lab.lab
    pki = lab.directory / "pki"
    path = lab.directory / "hosts/controller-1/var/lib/kubernetes/kube-scheduler.kubeconfig"
    path.write_text(path.read_text().replace("https://127.0.0.1:6443", "https://x:6443"))
    report = _check(capsys, installed_lab)
    [found] = [f for f in report["findings"] if f["certificate"].endswith(".kubeconfig")]
    assert found["host"] == "controller-1" and found["actions"] == ["push"]
    assert "points system:kube-scheduler at https://x:6443" in found["message"]
    assert screen_fix(_finding(found)) == "press p to push"
    status = main(["certs", "push", "--yes", "-i", str(lab.inventory_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert path.read_bytes() == (pki / "kube-scheduler.kubeconfig").read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    worker = lab.directory / "hosts/worker-0/var/lib"
    assert (worker / "kubelet/kubeconfig").read_bytes() == (
        pki / "worker-0.kubeconfig").read_bytes()
    assert (worker / "kube-proxy/kubeconfig").read_bytes() == (
        pki / "kube-proxy.kubeconfig").read_bytes()
    report = _check(capsys, installed_lab)
    assert report["errors"] == 0, report["findings"]
    assert report["hosts"]["worker-0"]["kubeconfigs"]["worker-0"]["path"] == \
        "/var/lib/kubelet/kubeconfig"


def _finding(data: dict) -> CertFinding:  # type: ignore[type-arg]
    return CertFinding(data["severity"], data["host"], data["certificate"], data["message"],
                       data["fix"], tuple(FixAction(a) for a in data["actions"]),
                       data["after"])
