"""The lab's control plane files: the kube-apiserver unit, its stand-in, encryption config.

Everything here follows KTHW doc 08 with the inventory's values, and is written under
the host roots with the inventory's logical paths (``Host.path``), exactly where a real
controller keeps them: ``/etc/systemd/system/kube-apiserver.service`` (enabled through
``multi-user.target.wants``), ``/usr/local/bin/kube-apiserver`` (a shim running
:mod:`tui.lab.standins.kube_apiserver`) and ``/var/lib/kubernetes/encryption-config.yaml``.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import sys
from pathlib import Path

from tui.core.inventory.model import Host, Inventory

STANDINS = Path(__file__).resolve().parent / "standins"
KUBE_APISERVER = "kube-apiserver"
KUBE_APISERVER_UNIT = "kube-apiserver.service"
ENCRYPTION_CONFIG = "encryption-config.yaml"
ADMISSION_PLUGINS = ("NamespaceLifecycle,NodeRestriction,LimitRanger,ServiceAccount,"
                     "DefaultStorageClass,ResourceQuota")

STANDIN_SHIM = """\
#!/bin/sh
# hardway lab stand-in for kube-apiserver: HTTPS /healthz /livez /readyz /version and the
# real one's self-signed certificate behaviour (source: {script}).
: "${{HARDWAY_LAB_ROOT:={root}}}"
: "${{HARDWAY_LAB_ADDRESS:={address}}}"
export HARDWAY_LAB_ROOT HARDWAY_LAB_ADDRESS
exec {python} -P {script_q} "$@"
"""


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` atomically with ``mode`` (set before any byte is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.lab-tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(temp, mode)
    os.replace(temp, path)


def host_file(host: Host, logical: str) -> Path:
    """Where a host's file lives on the machine running the lab."""
    return Path(host.path(logical))


def kube_apiserver_flags(inventory: Inventory, host: Host) -> list[str]:
    """KTHW's kube-apiserver flags for ``host`` (doc 08), in KTHW's order."""
    config = inventory.paths.kubernetes_config.rstrip("/")
    return [
        f"--advertise-address={host.address}",
        "--allow-privileged=true",
        f"--apiserver-count={len(inventory.controllers)}",
        "--audit-log-maxage=30",
        "--audit-log-maxbackup=3",
        "--audit-log-maxsize=100",
        "--audit-log-path=/var/log/audit.log",
        "--authorization-mode=Node,RBAC",
        "--bind-address=0.0.0.0",
        f"--client-ca-file={config}/ca.pem",
        f"--enable-admission-plugins={ADMISSION_PLUGINS}",
        f"--etcd-cafile={config}/ca.pem",
        f"--etcd-certfile={config}/kubernetes.pem",
        f"--etcd-keyfile={config}/kubernetes-key.pem",
        f"--etcd-servers={inventory.etcd_servers}",
        "--event-ttl=1h",
        f"--encryption-provider-config={config}/{ENCRYPTION_CONFIG}",
        f"--kubelet-certificate-authority={config}/ca.pem",
        f"--kubelet-client-certificate={config}/kubernetes.pem",
        f"--kubelet-client-key={config}/kubernetes-key.pem",
        "--kubelet-https=true",
        "--runtime-config='api/all=true'",
        f"--service-account-key-file={config}/service-account.pem",
        f"--service-cluster-ip-range={inventory.networks.services}",
        "--service-node-port-range=30000-32767",
        f"--tls-cert-file={config}/kubernetes.pem",
        f"--tls-private-key-file={config}/kubernetes-key.pem",
        "--v=2",
    ]


def kube_apiserver_unit(inventory: Inventory, host: Host, *,
                        drop_continuation_before: str | None = None) -> str:
    """The kube-apiserver.service unit KTHW writes for ``host``.

    Args:
        inventory: the cluster.
        host: the controller.
        drop_continuation_before: a flag name (``--tls-cert-file``); the line before it
            loses its trailing backslash, as in the seed's broken unit, so systemd ends
            ExecStart= there and ignores that flag and every later one.
    """
    command = [f"{inventory.paths.bin.rstrip('/')}/{KUBE_APISERVER}",
               *kube_apiserver_flags(inventory, host)]
    return service_unit("Kubernetes API Server", command,
                        drop_continuation_before=drop_continuation_before)


def service_unit(description: str, command: list[str], *,
                 drop_continuation_before: str | None = None) -> str:
    """A KTHW control-plane unit: ``ExecStart=`` one flag per continued line."""
    lines = []
    for index, word in enumerate(command):
        last = index == len(command) - 1
        broken = (drop_continuation_before is not None and not last
                  and command[index + 1].startswith(drop_continuation_before + "="))
        text = word if index == 0 else f"  {word}"
        lines.append(text if last or broken else f"{text} \\")
    return "\n".join([
        "[Unit]",
        f"Description={description}",
        "Documentation=https://github.com/kubernetes/kubernetes",
        "",
        "[Service]",
        "ExecStart=" + "\n".join(lines),
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
SCHEDULER_CONFIG = "/etc/kubernetes/config/kube-scheduler.yaml"


def kube_controller_manager_unit(inventory: Inventory) -> str:
    """KTHW doc 08's kube-controller-manager.service (this inventory's blocks and paths)."""
    config = inventory.paths.kubernetes_config.rstrip("/")
    return service_unit("Kubernetes Controller Manager", [
        f"{inventory.paths.bin.rstrip('/')}/{KUBE_CONTROLLER_MANAGER}",
        "--bind-address=0.0.0.0",
        f"--cluster-cidr={inventory.networks.pods}",
        "--cluster-name=kubernetes",
        f"--cluster-signing-cert-file={config}/ca.pem",
        f"--cluster-signing-key-file={config}/ca-key.pem",
        f"--kubeconfig={config}/kube-controller-manager.kubeconfig",
        "--leader-elect=true",
        f"--root-ca-file={config}/ca.pem",
        f"--service-account-private-key-file={config}/service-account-key.pem",
        f"--service-cluster-ip-range={inventory.networks.services}",
        "--use-service-account-credentials=true",
        "--v=2"])


def kube_scheduler_config(inventory: Inventory) -> str:
    """KTHW doc 08's kube-scheduler.yaml."""
    config = inventory.paths.kubernetes_config.rstrip("/")
    return "\n".join([
        "apiVersion: kubescheduler.config.k8s.io/v1alpha1",
        "kind: KubeSchedulerConfiguration",
        "clientConnection:",
        f'  kubeconfig: "{config}/kube-scheduler.kubeconfig"',
        "leaderElection:",
        "  leaderElect: true",
        ""])


def kube_scheduler_unit(inventory: Inventory) -> str:
    """KTHW doc 08's kube-scheduler.service."""
    return service_unit("Kubernetes Scheduler", [
        f"{inventory.paths.bin.rstrip('/')}/{KUBE_SCHEDULER}",
        f"--config={SCHEDULER_CONFIG}", "--v=2"])


COMPONENT_SHIM = """\
#!/bin/sh
# hardway lab stand-in for {component}: /healthz on its ports, leader election's view of
# the API server (source: {script}).
: "${{HARDWAY_LAB_ROOT:={root}}}"
: "${{HARDWAY_LAB_ADDRESS:={address}}}"
export HARDWAY_LAB_ROOT HARDWAY_LAB_ADDRESS
exec {python} -P {script_q} {component} "$@"
"""


def install_components(host: Host, inventory: Inventory, *, root: str | None = None) -> None:
    """kube-controller-manager and kube-scheduler on ``host``: stand-ins, the scheduler's
    config, both units enabled (KTHW doc 08)."""
    script = STANDINS / "kube_component.py"
    for component in (KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER):
        target = host_file(host, f"{inventory.paths.bin.rstrip('/')}/{component}")
        text = COMPONENT_SHIM.format(component=component, script=script,
                                     script_q=shlex.quote(str(script)),
                                     python=shlex.quote(sys.executable),
                                     root=host.root if root is None else root,
                                     address=host.address)
        write_bytes(target, text.encode(), 0o755)
    write_bytes(host_file(host, SCHEDULER_CONFIG), kube_scheduler_config(inventory).encode())
    install_unit(host, inventory, f"{KUBE_CONTROLLER_MANAGER}.service",
                 kube_controller_manager_unit(inventory))
    install_unit(host, inventory, f"{KUBE_SCHEDULER}.service", kube_scheduler_unit(inventory))


NGINX = "/usr/sbin/nginx"
HEALTH_SITE = "kubernetes.default.svc.cluster.local"
NGINX_CONF = """\
# hardway lab: nginx runs as root of the lab host's user namespace, one process (the user
# namespace has no www-data and refuses setgroups)
user root;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    include /etc/nginx/sites-enabled/*;
}
"""


def nginx_health_site(inventory: Inventory) -> str:
    """KTHW doc 08's health proxy: :80 /healthz -> https://127.0.0.1:6443/healthz."""
    config = inventory.paths.kubernetes_config.rstrip("/")
    return "\n".join([
        "server {",
        "  listen      80;",
        f"  server_name {HEALTH_SITE};",
        "",
        "  location /healthz {",
        f"     proxy_pass                    https://127.0.0.1:{inventory.api.port}/healthz;",
        f"     proxy_ssl_trusted_certificate {config}/ca.pem;",
        "  }",
        "}",
        ""])


def install_nginx_health_proxy(host: Host, inventory: Inventory) -> bool:
    """The health proxy with this machine's nginx, as KTHW's apt-get + site + enable leave
    it; False when nginx is not installed here."""
    if not os.access(NGINX, os.X_OK):
        return False
    site = f"/etc/nginx/sites-available/{HEALTH_SITE}"
    write_bytes(host_file(host, site), nginx_health_site(inventory).encode())
    write_bytes(host_file(host, "/etc/nginx/nginx.conf"), NGINX_CONF.encode())
    enabled = host_file(host, f"/etc/nginx/sites-enabled/{HEALTH_SITE}")
    enabled.parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(enabled):
        os.symlink(site, enabled)
    for directory in ("/var/lib/nginx", "/var/log/nginx"):
        host_file(host, directory).mkdir(parents=True, exist_ok=True)
    install_unit(host, inventory, "nginx.service", "\n".join([
        "[Unit]", "Description=A high performance web server and a reverse proxy server",
        "Documentation=man:nginx(8)", "", "[Service]", "Type=simple",
        f"ExecStart={NGINX} -g 'daemon off; master_process off;'", "Restart=on-failure", "",
        "[Install]", "WantedBy=multi-user.target", ""]))
    return True


def encryption_config(key: bytes) -> str:
    """KTHW doc 06: aescbc with ``key`` (32 bytes), then identity."""
    secret = base64.b64encode(key).decode()
    return "\n".join([
        "kind: EncryptionConfig",
        "apiVersion: v1",
        "resources:",
        "  - resources:",
        "      - secrets",
        "    providers:",
        "      - aescbc:",
        "          keys:",
        "            - name: key1",
        f"              secret: {secret}",
        "      - identity: {}",
        "",
    ])


def ensure_encryption_config(pki_dir: Path) -> bytes:
    """``PKI/encryption-config.yaml`` (0600), created once with a random key."""
    path = pki_dir / ENCRYPTION_CONFIG
    if path.is_file():
        return path.read_bytes()
    data = encryption_config(secrets.token_bytes(32)).encode()
    write_bytes(path, data, 0o600)
    return data


def install_standin(host: Host, inventory: Inventory, *, root: str | None = None) -> Path:
    """Write the kube-apiserver shim into the host's ``/usr/local/bin`` (``root``: the
    prefix the running stand-in maps paths under; default the host's root)."""
    script = STANDINS / "kube_apiserver.py"
    target = host_file(host, f"{inventory.paths.bin.rstrip('/')}/{KUBE_APISERVER}")
    text = STANDIN_SHIM.format(script=script, script_q=shlex.quote(str(script)),
                               python=shlex.quote(sys.executable),
                               root=host.root if root is None else root,
                               address=host.address)
    write_bytes(target, text.encode(), 0o755)
    return target


def install_unit(host: Host, inventory: Inventory, name: str, text: str) -> Path:
    """Write unit ``name`` and enable it (``multi-user.target.wants`` link, like systemctl)."""
    units = inventory.paths.systemd_units.rstrip("/")
    path = host_file(host, f"{units}/{name}")
    write_bytes(path, text.encode(), 0o644)
    wants = host_file(host, f"{units}/multi-user.target.wants")
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / name
    if not os.path.lexists(link):
        os.symlink(f"../{name}", link)
    return path
