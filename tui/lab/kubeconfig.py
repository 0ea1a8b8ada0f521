"""KTHW doc 05's kubeconfigs, as ``kubectl config set-cluster/set-credentials --embed-certs``
writes them (the lab has no kubectl)."""

from __future__ import annotations

import base64
from pathlib import Path

from tui.lab.control_plane import write_bytes


def render(*, cluster: str, server: str, user: str, ca_pem: bytes, cert_pem: bytes,
           key_pem: bytes) -> str:
    """One kubeconfig with the CA, client certificate and key embedded."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {b64(ca_pem)}\n"
        f"    server: {server}\n"
        f"  name: {cluster}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {cluster}\n"
        f"    user: {user}\n"
        "  name: default\n"
        "current-context: default\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    client-certificate-data: {b64(cert_pem)}\n"
        f"    client-key-data: {b64(key_pem)}\n")


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
        text = render(cluster=cluster, server=server, user=user, ca_pem=ca,
                      cert_pem=cert.read_bytes(), key_pem=key.read_bytes())
        write_bytes(path, text.encode(), 0o600)
        written.append(path)
    return written
