"""Rollout pieces that need no hosts: unit repair (checked with the lab's systemd-faithful
parser), the push record, ExecStart parsing and where files go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory
from tui.core.pki.restore import PushManifest
from tui.core.pki.survey import (
    cert_dir_of,
    exec_start_argv,
    flag_value,
    logical_path,
    placements,
    remote_path,
)
from tui.core.pki.unit_repair import repair_unit
from tui.core.systemd_unit import ExecSyntaxError, parse_unit, split_exec

ROOT = Path(__file__).resolve().parents[2]
K = "/var/lib/kubernetes"
REQUIRED = [("--tls-cert-file", f"{K}/kubernetes.pem"),
            ("--tls-private-key-file", f"{K}/kubernetes-key.pem")]

SEED_UNIT = f"""\
[Unit]
Description=Kubernetes API Server

[Service]
ExecStart=/usr/local/bin/kube-apiserver \\
  --advertise-address=10.10.0.10 \\
  --service-cluster-ip-range=10.110.0.0/24
  --tls-cert-file={K}/kubernetes.pem \\
  --tls-private-key-file={K}/kubernetes-key.pem \\
  --v=2
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def argv_of(text: str) -> tuple[str, ...]:
    """ExecStart's argv as systemd reads the unit (the lab's faithful parser)."""
    unit = parse_unit(text, "/etc/systemd/system/kube-apiserver.service")
    return split_exec(unit.value("Service", "ExecStart")).argv


def test_seed_unit_loses_its_tls_flags_and_the_repair_restores_them() -> None:
    assert f"--tls-cert-file={K}/kubernetes.pem" not in argv_of(SEED_UNIT)
    repair = repair_unit(SEED_UNIT, required=REQUIRED)
    assert repair.changed
    assert repair.notes == ("line 8 `--tls-cert-file=/var/lib/kubernetes/kubernetes.pem \\` was "
                            "outside ExecStart because line 7 lacks its trailing `\\`; systemd "
                            "ignored it",)
    argv = argv_of(repair.text)
    assert argv == ("/usr/local/bin/kube-apiserver", "--advertise-address=10.10.0.10",
                    "--service-cluster-ip-range=10.110.0.0/24",
                    f"--tls-cert-file={K}/kubernetes.pem",
                    f"--tls-private-key-file={K}/kubernetes-key.pem", "--v=2")
    assert not parse_unit(repair.text, "u").warnings
    assert "Restart=on-failure" in repair.text and repair.text.endswith("\n")
    assert repair_unit(repair.text, required=REQUIRED).changed is False


def test_missing_flags_are_added_to_execstart() -> None:
    unit = ("[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n"
            "    --advertise-address=10.10.0.10\nRestart=on-failure\n")
    repair = repair_unit(unit, required=REQUIRED)
    assert repair.notes == ("added --tls-cert-file and --tls-private-key-file to ExecStart",)
    assert argv_of(repair.text)[-2:] == (f"--tls-cert-file={K}/kubernetes.pem",
                                         f"--tls-private-key-file={K}/kubernetes-key.pem")
    assert "    --tls-cert-file=" in repair.text, "continuation indent is kept"


def test_a_healthy_unit_is_left_alone() -> None:
    unit = (f"[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n"
            f"  --tls-cert-file {K}/kubernetes.pem \\\n"
            f"  # a comment inside the continuation\n"
            f"  --tls-private-key-file={K}/kubernetes-key.pem\n\n[Install]\nWantedBy=x\n")
    assert repair_unit(unit, required=REQUIRED).changed is False
    assert repair_unit("[Unit]\nDescription=x\n", required=REQUIRED).changed is False


def test_trailing_blanks_after_a_backslash() -> None:
    unit = ("[Service]\nExecStart=/bin/x \\  \n  --a=1\nRestart=always\n")
    repair = repair_unit(unit, required=[])
    with pytest.raises(ExecSyntaxError):  # systemd: `\` then blanks is no continuation
        argv_of(unit)
    assert argv_of(repair.text) == ("/bin/x", "--a=1")


def test_exec_start_parsing() -> None:
    show = ("ExecStart={ path=/usr/local/bin/kube-apiserver ; argv[]=/usr/local/bin/"
            "kube-apiserver --advertise-address=10.10.0.10 --cert-dir /run/k8s ; "
            "ignore_errors=no ; start_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }")
    argv = exec_start_argv(show)
    assert argv == ["/usr/local/bin/kube-apiserver", "--advertise-address=10.10.0.10",
                    "--cert-dir", "/run/k8s"]
    assert flag_value(argv, "--cert-dir") == "/run/k8s"
    assert flag_value(argv, "--advertise-address") == "10.10.0.10"
    assert flag_value(argv, "--tls-cert-file") is None
    assert cert_dir_of(show, "/var/run/kubernetes") == "/run/k8s"
    assert cert_dir_of(None, "/var/run/kubernetes") == "/var/run/kubernetes"
    assert exec_start_argv("/bin/x --a=1") == ["/bin/x", "--a=1"]


def test_push_manifest_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "last-push.json"
    manifest = PushManifest(path)
    manifest.record("controller-0", f"{K}/kubernetes.pem", ["kube-apiserver"], backup=True)
    manifest.record("controller-0", "/etc/etcd/ca.pem", ["etcd"], backup=False)
    manifest.record("controller-0", "/etc/etcd/ca.pem", ["etcd"], backup=True)
    assert path.stat().st_mode & 0o777 == 0o600
    again = PushManifest(path)
    entries = again.entries("controller-0")
    assert [(e.path, e.services, e.backup) for e in entries] == [
        (f"{K}/kubernetes.pem", ("kube-apiserver",), True),
        ("/etc/etcd/ca.pem", ("etcd",), False)], "the first record of a path wins its backup"
    assert again.hosts == ["controller-0"]
    again.clear("controller-0")
    assert PushManifest(path).hosts == []
    data = json.loads(path.read_text())
    assert "PRIVATE" not in path.read_text() and data["hosts"] == {}
    path.write_text("{not json")
    with pytest.raises(UserError, match="not a readable push record"):
        PushManifest(path)


def test_placements_follow_kthw() -> None:
    inv = load_inventory(ROOT / "config" / "something.local.toml")
    controller = placements(inv, inv.host("controller-0"))
    assert [(p.path, oct(p.mode)) for p in controller] == [
        (f"{K}/ca.pem", "0o644"), (f"{K}/ca-key.pem", "0o600"),
        (f"{K}/kubernetes.pem", "0o644"), (f"{K}/kubernetes-key.pem", "0o600"),
        (f"{K}/service-account.pem", "0o644"), (f"{K}/service-account-key.pem", "0o600"),
        ("/etc/etcd/ca.pem", "0o644"), ("/etc/etcd/kubernetes.pem", "0o644"),
        ("/etc/etcd/kubernetes-key.pem", "0o600"),
        (f"{K}/kube-controller-manager.kubeconfig", "0o600"),
        (f"{K}/kube-scheduler.kubeconfig", "0o600")]
    assert all(p.secret == p.source.endswith(("-key.pem", ".kubeconfig")) for p in controller)
    assert [p.services for p in controller if p.optional] == [
        ("kube-controller-manager",), ("kube-scheduler",)]
    worker = placements(inv, inv.host("worker-1"))
    assert [(p.source, p.path) for p in worker] == [
        ("ca.pem", f"{K}/ca.pem"), ("worker-1.pem", "/var/lib/kubelet/worker-1.pem"),
        ("worker-1-key.pem", "/var/lib/kubelet/worker-1-key.pem"),
        ("worker-1.kubeconfig", "/var/lib/kubelet/kubeconfig"),
        ("kube-proxy.kubeconfig", "/var/lib/kube-proxy/kubeconfig")]


def test_remote_and_logical_paths() -> None:
    inv = load_inventory(ROOT / "config" / "something.local.toml")
    host = inv.host("controller-0")
    assert remote_path(host, "/etc/etcd/ca.pem") == "/etc/etcd/ca.pem"
    from dataclasses import replace

    jailed = replace(host, root="/jail/c0")
    assert remote_path(jailed, "/etc/etcd/ca.pem") == "/jail/c0/etc/etcd/ca.pem"
    assert remote_path(jailed, "/jail/c0/etc/etcd/ca.pem") == "/jail/c0/etc/etcd/ca.pem"
    assert logical_path(jailed, "/jail/c0/var/run/kubernetes") == "/var/run/kubernetes"
    assert logical_path(jailed, "/var/run/kubernetes") == "/var/run/kubernetes"
