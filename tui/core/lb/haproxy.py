"""The HAProxy alternative for the API VIP: TCP passthrough with verified HTTPS checks.

Unlike ipfw's blind round robin, HAProxy stops sending new connections to a controller
whose ``/healthz`` fails: ``fall`` failed checks (every ``inter``) take it out, ``rise``
good ones bring it back.  The TLS of the API is not terminated (``mode tcp``: clients
still verify kube-apiserver's own certificate); only the health check speaks TLS
(``check-ssl``), verified against the cluster CA (``verify required ca-file``), so a
controller serving the self-signed fallback certificate counts as down.

``option httpchk GET /healthz`` with ``http-check expect status 200`` works in TCP
mode; ``option ssl-hello-chk`` must NOT follow it (it would replace the HTTP check, the
kubeadm HA guide's bug).  With the defaults (inter 2 s, fall 3) a dead controller is
out after about 6 s; ``retries`` with ``option redispatch`` retries a refused
connection on another server meanwhile, so clients see no failures.

The config is written atomically and checked with ``haproxy -c -f`` before it replaces
the live file and HAProxy is reloaded (:func:`haproxy_step`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tui.core.errors import UserError
from tui.core.lb.ipfw import Backend
from tui.core.plan import Preview, Step, StepFailed, file_change

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

CONFIG_PATH = "/etc/haproxy/haproxy.cfg"
CA_PATH = "/etc/haproxy/kubernetes-ca.pem"
NEW_SUFFIX = ".hardway-new"
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


@dataclass(frozen=True)
class HaproxySettings:
    """What the VIP's HAProxy needs.

    Attributes:
        vip: the address HAProxy binds (the API VIP).
        port: the VIP's port.
        backends: the controllers (name, address, API port).
        ca_file: the cluster CA on the HAProxy host (verifies the checks' TLS).
        health_path: the checked URL path (kube-apiserver answers /healthz anonymously).
        inter_ms: milliseconds between checks.
        rise: consecutive good checks to bring a server up.
        fall: consecutive failed checks to take it down.
        connect_timeout_s, tunnel_timeout_s: TCP timeouts (watches are long-lived).
        stats_socket: path of an admin socket (``show servers state``), or None.
        daemon_user: ``user``/``group`` in ``global`` (None: keep the caller's user).
    """

    vip: str
    backends: tuple[Backend, ...]
    ca_file: str = CA_PATH
    port: int = 6443
    health_path: str = "/healthz"
    inter_ms: int = 2000
    rise: int = 2
    fall: int = 3
    connect_timeout_s: int = 5
    tunnel_timeout_s: int = 3600
    stats_socket: str | None = None
    daemon_user: str | None = "haproxy"

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.vip)
        except ValueError:
            raise UserError(f"HAProxy: the VIP {self.vip!r} is not an IPv4 address.") from None
        if not self.backends:
            raise UserError("HAProxy: the VIP has no backends (no controllers).")
        for backend in self.backends:
            if not _NAME.match(backend.name):
                raise UserError(f"HAProxy: server name {backend.name!r} has characters "
                                f"HAProxy does not accept (letters, digits, . _ : - only).")
        for key, value, low in (("inter_ms", self.inter_ms, 100), ("rise", self.rise, 1),
                                ("fall", self.fall, 1)):
            if value < low:
                raise UserError(f"HAProxy: {key} is {value}; it must be at least {low}.")
        if not self.health_path.startswith("/") or any(c.isspace() for c in self.health_path):
            raise UserError(f"HAProxy: health path {self.health_path!r} must start with / "
                            f"and contain no spaces.")

    @property
    def detection_seconds(self) -> float:
        """About how long a dead controller keeps being offered new connections."""
        return self.fall * self.inter_ms / 1000


def render_config(settings: HaproxySettings) -> str:
    """The whole ``haproxy.cfg`` for the VIP."""
    s = settings
    lines = ["# Written by hardway: the Kubernetes API VIP, TCP passthrough, HTTPS health",
             "# checks verified against the cluster CA. Checked with haproxy -c before use.",
             "global",
             "    maxconn 4096"]
    if s.daemon_user:
        lines += [f"    user {s.daemon_user}", f"    group {s.daemon_user}"]
    if s.stats_socket:
        lines.append(f"    stats socket {s.stats_socket} mode 600 level admin")
    lines += ["",
              "defaults",
              "    mode tcp",
              "    option tcplog",
              "    option redispatch",
              "    retries 3",
              f"    timeout connect {s.connect_timeout_s}s",
              f"    timeout client {s.tunnel_timeout_s}s",
              f"    timeout server {s.tunnel_timeout_s}s",
              f"    timeout check {s.connect_timeout_s}s",
              "",
              "frontend kubernetes-api",
              f"    bind {s.vip}:{s.port}",
              "    default_backend kubernetes-controllers",
              "",
              "backend kubernetes-controllers",
              "    balance roundrobin",
              f"    option httpchk GET {s.health_path}",
              "    http-check expect status 200",
              f"    default-server inter {s.inter_ms} rise {s.rise} fall {s.fall} "
              f"check check-ssl verify required ca-file {s.ca_file}"]
    lines += [f"    server {b.name} {b.address}:{b.port}" for b in s.backends]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ConfigCheck:
    """The verdict of ``haproxy -c``: ``ok`` and HAProxy's own words."""

    ok: bool
    output: str


def check_command(path: str, *, haproxy: str = "haproxy") -> str:
    """The command that validates the config at ``path`` without running it."""
    return f"{haproxy} -c -q -f {path}"


def check_config_local(text: str, *, haproxy: str = "haproxy") -> ConfigCheck:
    """Run the local ``haproxy -c`` on ``text`` (for previews and tests).

    Raises:
        UserError: HAProxy is not installed here.
    """
    binary = shutil.which(haproxy)
    if binary is None:
        raise UserError(f"`{haproxy}` is not installed on this machine, so the config cannot "
                        f"be checked here (Debian: apt-get install haproxy).")
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as handle:
        handle.write(text)
    try:
        done = subprocess.run([binary, "-c", "-f", handle.name], capture_output=True,
                              text=True, timeout=30, check=False)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    output = (done.stdout + done.stderr).replace(handle.name, "haproxy.cfg").strip()
    return ConfigCheck(done.returncode == 0, output)


def haproxy_step(fleet: Fleet, host: str, settings: HaproxySettings, ca_pem: bytes, *,
                 config_path: str = CONFIG_PATH, sudo: bool = False,
                 reload_command: str = "systemctl reload haproxy",
                 haproxy: str = "haproxy") -> Step:
    """A plan step that installs the config (and CA) on ``host``, checked, then reloads.

    The candidates go to ``CONFIG.hardway-new`` and ``CA.hardway-new`` first; only when
    ``haproxy -c`` accepts them do they replace the live files (atomically, the previous
    ones kept as backups) and HAProxy reloads.  A refused config leaves the live files
    untouched.  ``haproxy`` is the binary on the host (e.g. ``/usr/sbin/haproxy`` when
    it is not on the PATH).
    """
    target = fleet.host(host)
    # the config names the CA as the host's processes see it (through ``root``)
    text = render_config(dataclasses.replace(
        settings, ca_file=target.path(settings.ca_file))).encode()
    candidate = config_path + NEW_SUFFIX
    ca_candidate = settings.ca_file + NEW_SUFFIX
    candidate_text = render_config(dataclasses.replace(
        settings, ca_file=target.path(ca_candidate))).encode()
    check_line = check_command(shlex.quote(target.path(candidate)), haproxy=haproxy)
    prefix = "sudo " if sudo else ""

    async def current(path: str) -> bytes | None:
        try:
            return await fleet.get(host, path)
        except UserError:
            return None

    async def check(_host: str) -> str | None:
        same = (await current(config_path) == text
                and await current(settings.ca_file) == ca_pem)
        return "haproxy.cfg and the CA are already in place" if same else None

    async def preview(_host: str) -> Preview:
        return Preview(
            commands=(check_line, f"{prefix}{reload_command}"),
            files=(file_change(settings.ca_file, ca_pem, await current(settings.ca_file),
                               diff_text=False, description="the cluster CA for the checks"),
                   file_change(config_path, text, await current(config_path))))

    async def run(command: str) -> None:
        result = (await fleet.run([host], command))[host]
        if not result.ok:
            words = (result.error or (result.stdout + result.stderr).strip()
                     or f"exit {result.status}")
            raise StepFailed(f"`{command}` failed on {host}: {words}")

    async def put(path: str, data: bytes, *, backup: bool) -> None:
        result = await fleet.put(host, data, path, mode=0o644, backup=backup)
        if not result.ok:
            raise StepFailed(f"writing {path} on {host} failed: {result.error}")

    async def apply(_host: str) -> str | None:
        # candidates first (CA and config side by side); the live files only once
        # haproxy -c accepted them
        await put(ca_candidate, ca_pem, backup=False)
        await put(candidate, candidate_text, backup=False)
        await run(check_line)
        await put(settings.ca_file, ca_pem, backup=True)
        await put(config_path, text, backup=True)
        await run(f"{prefix}{reload_command}")
        return f"haproxy serves {settings.vip}:{settings.port}"

    return Step(f"HAProxy for {settings.vip}", [host], check=check, preview=preview,
                apply=apply)


def settings_for(vip: str, backends: Sequence[Backend], **kwargs: object) -> HaproxySettings:
    """Settings with ``backends`` as a tuple (convenience for callers holding lists)."""
    return HaproxySettings(vip=vip, backends=tuple(backends), **kwargs)  # type: ignore[arg-type]


__all__ = ["CA_PATH", "CONFIG_PATH", "ConfigCheck", "HaproxySettings", "check_command",
           "check_config_local", "haproxy_step", "render_config", "settings_for"]
