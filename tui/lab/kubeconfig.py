"""KTHW doc 05's kubeconfigs, as ``kubectl config set-cluster/set-credentials --embed-certs``
writes them (the lab has no kubectl)."""

from __future__ import annotations

from pathlib import Path

from tui.core.pki.kubeconfig_text import render_kubeconfig
from tui.lab.control_plane import write_bytes


def write_kthw_kubeconfigs(pki_dir: Path, *, cluster: str, api_server: str,
                           workers: list[str]) -> list[Path]:
    """Doc 05's files into ``pki_dir``: admin, kube-controller-manager and kube-scheduler
    (https://127.0.0.1:6443), kube-proxy and each worker (the API address)."""
    ca = (pki_dir / "ca.pem").read_bytes()
    wanted = [("admin", "admin", "https://127.0.0.1:6443"),
              ("kube-controller-manager", "system:kube-controller-manager",
               "https://127.0.0.1:6443"),
              ("kube-scheduler", "system:kube-scheduler", "https://127.0.0.1:6443"),
              ("kube-proxy", "system:kube-proxy", api_server)]
    wanted += [(name, f"system:node:{name}", api_server) for name in workers]
    written = []
    for name, user, server in wanted:
        cert, key = pki_dir / f"{name}.pem", pki_dir / f"{name}-key.pem"
        if not (cert.exists() and key.exists()):
            continue
        path = pki_dir / f"{name}.kubeconfig"
        text = render_kubeconfig(cluster=cluster, server=server, user=user, ca_pem=ca,
                      cert_pem=cert.read_bytes(), key_pem=key.read_bytes())
        write_bytes(path, text.encode(), 0o600)
        written.append(path)
    return written
