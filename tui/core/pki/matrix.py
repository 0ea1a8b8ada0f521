"""The certificates x hosts matrix the certificates screen shows (Textual-free).

Rows are the KTHW certificates as each place holds them (the local PKI file, the file on
a host, the certificate a controller actually serves on the API port and on etcd's
:2379, and doc 05's kubeconfigs that embed the client certificates); each cell gets a
status, a short label and the inspected certificate for the detail pane.  The client
certificates that live only in kubeconfigs (admin, kube-controller-manager,
kube-scheduler, kube-proxy) have a local row of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tui.core.errors import UserError
from tui.core.inventory.model import Inventory, San
from tui.core.pki.ca import CertificateAuthority
from tui.core.pki.diagnose import is_generated_self_signed, missing_sans
from tui.core.pki.inspect import CertInfo, chains_to, inspect_file
from tui.core.pki.kubeconfig import (
    KubeconfigCheck,
    KubeconfigSpec,
    kubeconfig_specs,
    local_kubeconfig_checks,
)
from tui.core.pki.survey import KUBELET_DIR, Survey

Status = Literal["ok", "warning", "error", "absent", "n/a", "unknown"]
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class Row:
    """One certificate as held in one kind of place.

    Attributes:
        key: stable id (``kubernetes-served``).
        label: what the user reads (``kubernetes.pem served :6443``).
        source: local PKI file name.
        path: logical remote path, or None for the served certificate.
        role: the hosts that hold it (``controller``, ``worker``, a host name, or
            ``local`` for a pair that only the PKI directory holds as files).
        kind: ``file``, ``served`` (the API port), ``etcd-served`` (:2379) or
            ``kubeconfig`` (``source`` is then the kubeconfig's profile name).
    """

    key: str
    label: str
    source: str
    path: str | None
    role: str
    kind: str = "file"


@dataclass(frozen=True)
class Cell:
    """One row on one host (or ``local``)."""

    status: Status
    short: str
    info: CertInfo | None = None
    required: tuple[San, ...] = ()
    missing: tuple[San, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Matrix:
    """Rows, columns (``local`` then hosts) and cells keyed by (row key, column)."""

    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]

    def cell(self, row: str, column: str) -> Cell:
        """The cell, or an ``n/a`` one where the row does not apply."""
        return self.cells.get((row, column), Cell("n/a", "–"))


def rows_for(inventory: Inventory) -> tuple[Row, ...]:
    """The certificate rows for this cluster (controllers first, then each worker)."""
    k, e = inventory.paths.kubernetes_config, inventory.paths.etcd_config
    port = inventory.api.port
    rows = [
        Row("ca", "ca.pem", "ca.pem", f"{k}/ca.pem", "controller"),
        Row("kubernetes", "kubernetes.pem", "kubernetes.pem", f"{k}/kubernetes.pem",
            "controller"),
        Row("kubernetes-served", f"kubernetes.pem served :{port}", "kubernetes.pem", None,
            "controller", "served"),
        Row("etcd", "etcd kubernetes.pem", "kubernetes.pem", f"{e}/kubernetes.pem",
            "controller"),
        Row("etcd-served", "kubernetes.pem served :2379", "kubernetes.pem", None,
            "controller", "etcd-served"),
        Row("service-account", "service-account.pem", "service-account.pem",
            f"{k}/service-account.pem", "controller"),
    ]
    specs = kubeconfig_specs(inventory)
    rows += [Row(f"{s.name}-pem", f"{s.name}.pem", f"{s.name}.pem", None, "local", "local")
             for s in specs if s.role in ("controller", "worker")]
    rows += [_kubeconfig_row(s) for s in specs if s.role == "controller"]
    if inventory.workers:
        rows.append(Row("worker-ca", "ca.pem (workers)", "ca.pem", f"{k}/ca.pem", "worker"))
    for worker in inventory.workers:
        rows.append(Row(worker.name, f"{worker.name}.pem", f"{worker.name}.pem",
                        f"{KUBELET_DIR}/{worker.name}.pem", worker.name))
    rows += [_kubeconfig_row(s) for s in specs if s.role != "controller"]
    return tuple(rows)


def _kubeconfig_row(spec: KubeconfigSpec) -> Row:
    return Row(f"{spec.name}-kubeconfig", spec.file, spec.name, spec.installed, spec.role,
               "kubeconfig")


def kubeconfig_cell(check: KubeconfigCheck | None) -> Cell:
    """A kubeconfig's cell: its worst problem, the embedded certificate, what it says."""
    if check is None:
        return Cell("absent", "absent")
    notes = (f"file {check.where}", f"server {check.server or '(none)'}",
             *(f"{'✖' if p.severity == 'error' else '!'} {p.text}" for p in check.problems))
    return Cell(check.worst, check.short, check.cert, notes=notes)


def judge(info: CertInfo | None, *, ca: CertificateAuthority | None,
          required: Sequence[San] = (), expect: CertInfo | None = None) -> Cell:
    """Status of one certificate: missing SANs, issuer, expiry, and equality with ``expect``."""
    if info is None:
        return Cell("absent", "absent")
    missing = tuple(missing_sans(info, required)) if required else ()
    days = info.days_left()
    if is_generated_self_signed(info):
        return Cell("error", "self-signed", info, tuple(required), missing)
    if ca is not None and not chains_to(info, ca.cert) and not info.is_ca:
        return Cell("error", "other issuer", info, tuple(required), missing)
    if ca is not None and info.is_ca and info.fingerprint != _fingerprint(ca):
        return Cell("error", "other CA", info)
    if days < 0:
        return Cell("error", "expired", info, tuple(required), missing)
    if missing:
        return Cell("error", f"{len(missing)} SAN missing", info, tuple(required), missing)
    if expect is not None and info.fingerprint != expect.fingerprint:
        return Cell("warning", "differs", info, tuple(required), missing)
    if days < EXPIRY_WARNING_DAYS:
        return Cell("warning", f"{int(days)} days left", info, tuple(required), missing)
    return Cell("ok", "ok", info, tuple(required), missing)


def build_matrix(inventory: Inventory, survey: Survey | None, pki_dir: Path) -> Matrix:
    """Judge every certificate locally and on every surveyed host."""
    try:
        ca: CertificateAuthority | None = CertificateAuthority.load(pki_dir)
    except UserError:
        ca = None
    rows = rows_for(inventory)
    columns = ("local", *(h.name for h in inventory.hosts))
    cells: dict[tuple[str, str], Cell] = {}
    sans = inventory.api_server_sans
    local_configs = {c.spec.name: c for c in local_kubeconfig_checks(
        inventory, pki_dir, ca.cert if ca is not None else None)}
    for row in rows:
        if row.kind == "kubeconfig":
            cells[(row.key, "local")] = kubeconfig_cell(local_configs.get(row.source))
            for host in inventory.hosts:
                found = survey.hosts.get(host.name) if survey else None
                if row.role not in (host.role, host.name) or found is None:
                    continue
                cells[(row.key, host.name)] = (
                    Cell("unknown", "unreachable") if found.error else
                    kubeconfig_cell(found.kubeconfigs.get(row.source)))
            continue
        required = sans if row.source == "kubernetes.pem" else ()
        local = _local(pki_dir / row.source)
        if row.kind in ("file", "local"):  # the served rows have no local counterpart
            cells[(row.key, "local")] = judge(local, ca=ca, required=required)
        for host in inventory.hosts:
            if row.role not in (host.role, host.name):
                continue
            found = survey.hosts.get(host.name) if survey else None
            if found is None:
                continue
            if found.error:
                cells[(row.key, host.name)] = Cell("unknown", "unreachable")
                continue
            if row.kind == "etcd-served":
                cells[(row.key, host.name)] = _served_cell(
                    found.etcd_served, "etcd" in found.units, ca, required,
                    found.cert(f"{inventory.paths.etcd_config}/kubernetes.pem"))
                continue
            if row.kind == "served":
                disk = found.cert(f"{inventory.paths.kubernetes_config}/kubernetes.pem")
                cells[(row.key, host.name)] = _served_cell(
                    found.served, "kube-apiserver" in found.units, ca, required, disk)
                continue
            if row.path is None:
                continue
            cells[(row.key, host.name)] = judge(found.cert(row.path), ca=ca,
                                                required=required, expect=local)
    return Matrix(rows, columns, cells)


def _served_cell(served: CertInfo | None, installed: bool, ca: CertificateAuthority | None,
                 required: Sequence[San], disk: CertInfo | None) -> Cell:
    if served is None:
        return Cell("error", "not serving") if installed else Cell(
            "n/a", "–", notes=("not installed on this host: nothing serves it yet",))
    return judge(served, ca=ca, required=required, expect=disk)


def _local(path: Path) -> CertInfo | None:
    try:
        return inspect_file(path) if path.exists() else None
    except UserError:
        return None


def _fingerprint(ca: CertificateAuthority) -> str:
    from tui.core.pki.inspect import certificate_info

    return certificate_info(ca.cert, "ca").fingerprint
