"""Lab services over real SSH: systemctl/journalctl, the kube-apiserver stand-in, scenarios."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.conftest import lab_network
from tui.core.inventory.load import load_inventory
from tui.lab.control_plane import kube_apiserver_unit
from tui.lab.lab import Lab, LabRunner
from tui.lab.server import LabAddressInUse

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")

UNITS = "etc/systemd/system"


def start_lab(directory: Path, offset: int, **kwargs: Any) -> LabRunner:
    """A started LabRunner on a loopback network of its own (retrying collisions)."""
    for attempt in range(5):
        runner = LabRunner(directory, network=lab_network(offset + attempt), **kwargs)
        try:
            runner.start()
        except LabAddressInUse:
            continue
        return runner
    pytest.fail("no free loopback network for the services lab")


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """Two healthy controllers with their services (module scope: tests restore state)."""
    runner = start_lab(tmp_path_factory.mktemp("svclab"), 60, controllers=2)
    try:
        yield runner
    finally:
        runner.stop()


def address(lab: Lab, name: str) -> str:
    return next(spec.address for spec in lab.hosts if spec.name == name)


@dataclass(frozen=True)
class Ran:
    """What a command on a lab host printed and how it exited."""

    stdout: str
    stderr: str
    exit_status: int | None


async def sh(lab: Lab, name: str, command: str) -> Ran:
    """Run ``command`` on lab host ``name`` over SSH (strict host keys)."""
    spec = next(s for s in lab.hosts if s.name == name)
    async with asyncssh.connect(spec.listen, spec.port, username=lab.user, config=None,
                                client_keys=[str(lab.client_key_path)],
                                known_hosts=str(lab.known_hosts_path)) as conn:
        result = await conn.run(command)
    return Ran(str(result.stdout), str(result.stderr), result.exit_status)


async def eventually(predicate: Callable[[], Any], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    return predicate()


def served_certificate(host: str, port: int = 6443) -> x509.Certificate:
    """The certificate served on host:port (no verification, no SNI)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    import socket

    with socket.create_connection((host, port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=None) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def https_get(url: str, *, cafile: Path | None = None, cert: tuple[Path, Path] | None = None,
              verify: bool = True) -> tuple[int, str]:
    """GET ``url`` with Python's ssl (verified against ``cafile`` when given)."""
    import http.client
    from urllib.parse import urlsplit

    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context,
                                       timeout=5)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


async def livez_verifies(lab: Lab, name: str, timeout: float = 8.0) -> bool:
    """Wait until https://ADDRESS:6443/livez answers 200 and verifies against the lab CA
    (``systemctl restart`` returns before the new process listens, as with systemd)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = await asyncio.to_thread(
                https_get, f"https://{address(lab, name)}:6443/livez",
                cafile=lab.pki_directory / "ca.pem")
            return status == 200
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def cn(name: x509.Name) -> str:
    return str(name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def ip_sans(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def dns_sans(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(sans.get_values_for_type(x509.DNSName))


# -- the default lab: a healthy cluster ---------------------------------------------------

async def test_every_controller_serves_the_cluster_certificate(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    ca = lab.pki_directory / "ca.pem"
    for name in ("controller-0", "controller-1"):
        status, body = await asyncio.to_thread(
            https_get, f"https://{address(lab, name)}:6443/version", cafile=ca)
        assert status == 200 and json.loads(body)["gitVersion"] == "v1.18.6"
        served = served_certificate(address(lab, name))
        on_disk = x509.load_pem_x509_certificate(
            (lab.host_root(name) / "var/lib/kubernetes/kubernetes.pem").read_bytes())
        assert served.fingerprint(hashes.SHA256()) == on_disk.fingerprint(hashes.SHA256())
        assert "127.0.0.1" in ip_sans(served)
    inventory = load_inventory(lab.inventory_path)
    worker_free = {p.name for p in lab.pki_directory.iterdir()}
    assert {"ca.pem", "ca-key.pem", "kubernetes.pem", "admin.pem", "service-account.pem",
            "kube-proxy.pem", "kube-scheduler.pem", "kube-controller-manager.pem"} <= worker_free
    assert (lab.pki_directory / "kubernetes-key.pem").stat().st_mode & 0o777 == 0o600
    for host in inventory.controllers:
        for path in ("/etc/etcd/kubernetes.pem", "/var/lib/kubernetes/service-account-key.pem",
                     "/var/lib/kubernetes/encryption-config.yaml"):
            assert Path(host.path(path)).is_file()
        assert Path(host.path("/var/lib/kubernetes/kubernetes-key.pem")).stat().st_mode \
            & 0o777 == 0o600


async def test_standin_health_version_and_forbidden_paths(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    base = f"https://{address(lab, 'controller-0')}:6443"
    ca = lab.pki_directory / "ca.pem"

    def get(path: str, **kw: Any) -> tuple[int, str]:
        return https_get(base + path, cafile=ca, **kw)

    assert await asyncio.to_thread(get, "/livez") == (200, "ok")
    assert await asyncio.to_thread(get, "/healthz") == (200, "ok")
    status, body = await asyncio.to_thread(get, "/readyz?verbose")
    lines = body.splitlines()
    assert status == 200 and lines[0] == "[+]ping ok" and lines[-1] == "healthz check passed"
    assert "[+]shutdown ok" in lines and all(re.fullmatch(r"\[\+\]\S+ ok", x)
                                             for x in lines[:-1])
    status, body = await asyncio.to_thread(get, "/livez?verbose&exclude=log")
    assert status == 200 and "[+]log excluded: ok" in body.splitlines()
    status, body = await asyncio.to_thread(get, "/readyz/etcd")
    assert status == 403
    assert json.loads(body)["message"] == ('forbidden: User "system:anonymous" cannot get '
                                           'path "/readyz/etcd"')
    admin = (lab.pki_directory / "admin.pem", lab.pki_directory / "admin-key.pem")
    assert await asyncio.to_thread(get, "/readyz/ping", cert=admin) == (200, "ok")
    kube_proxy = (lab.pki_directory / "kube-proxy.pem", lab.pki_directory / "kube-proxy-key.pem")
    status, body = await asyncio.to_thread(get, "/readyz/ping", cert=kube_proxy)
    assert status == 403 and 'User \\"system:kube-proxy\\"' in body


# -- systemctl and journalctl through SSH ---------------------------------------------------

TICKER = """\
# systemd turns $$ into $: the shell sees `echo tick $$` and prints its pid
[Unit]
Description=Lab ticker

[Service]
ExecStart=/bin/sh -c 'echo tick $$$$; exec sleep 300'
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


async def test_systemctl_start_stop_restart_is_active_and_show(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    (lab.host_root(name) / UNITS / "ticker.service").write_text(TICKER)
    assert (await sh(lab, name, "systemctl daemon-reload")).exit_status == 0

    result = await sh(lab, name, "systemctl is-active ticker")
    assert (result.stdout, result.exit_status) == ("inactive\n", 3)
    result = await sh(lab, name, "systemctl start ticker && systemctl is-active ticker")
    assert (result.stdout, result.exit_status) == ("active\n", 0)

    main_pid = int((await sh(lab, name, "systemctl show -p MainPID --value ticker")).stdout)
    assert main_pid in lab.service_pids(name) and main_pid not in lab.pids(name)
    status = Path(f"/proc/{main_pid}/status").read_text()
    assert re.search(rf"(?m)^PPid:\s+{os.getpid()}$", status)  # a child of the lab itself

    shown = (await sh(lab, name, "systemctl show -p ExecStart ticker")).stdout
    assert re.fullmatch(
        r"ExecStart=\{ path=/bin/sh ; argv\[\]=/bin/sh -c \"echo tick \$\$\$\$; exec sleep 300\" "
        r"; ignore_errors=no ; start_time=\[.+\] ; stop_time=\[n/a\] ; pid=(\d+) ; "
        r"code=\(null\) ; status=0/0 \}\n", shown)
    assert f"pid={main_pid} " in shown

    journal = await sh(lab, name, "journalctl -u ticker --no-pager")
    assert re.search(rf"controller-1 sh\[{main_pid}\]: tick {main_pid}$", journal.stdout, re.M)
    assert "systemd[1]: Started Lab ticker." in journal.stdout

    result = await sh(lab, name, "systemctl restart ticker; systemctl show -p MainPID --value "
                                 "ticker")
    new_pid = int(result.stdout)
    assert new_pid != main_pid and await eventually(lambda: main_pid not in
                                                    lab.service_pids(name))
    result = await sh(lab, name, "systemctl stop ticker; systemctl is-active ticker")
    assert (result.stdout, result.exit_status) == ("inactive\n", 3)
    assert await eventually(lambda: new_pid not in lab.service_pids(name))
    status_text = (await sh(lab, name, "systemctl status ticker")).stdout
    assert status_text.startswith("\u25cb ticker.service - Lab ticker\n")
    assert "Stopped Lab ticker." in status_text


async def test_enable_disable_and_unknown_units(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    (lab.host_root(name) / UNITS / "ticker.service").write_text(TICKER)
    result = await sh(lab, name, "systemctl disable ticker; systemctl enable ticker; "
                                 "systemctl is-enabled ticker")
    assert result.stderr.endswith(
        "Created symlink /etc/systemd/system/multi-user.target.wants/ticker.service \u2192 "
        "/etc/systemd/system/ticker.service.\n")
    assert result.stdout == "enabled\n"
    assert (lab.host_root(name) / UNITS / "multi-user.target.wants/ticker.service").is_symlink()
    result = await sh(lab, name, "systemctl disable ticker; systemctl is-enabled ticker")
    assert result.stdout == "disabled\n" and result.exit_status == 1
    assert 'Removed "/etc/systemd/system/multi-user.target.wants/ticker.service".' in \
        result.stderr
    result = await sh(lab, name, "systemctl start nosuch")
    assert (result.stderr, result.exit_status) == (
        "Failed to start nosuch.service: Unit nosuch.service not found.\n", 5)
    result = await sh(lab, name, "systemctl status nosuch")
    assert result.exit_status == 4
    result = await sh(lab, name, "systemctl frobnicate x")
    assert (result.stderr, result.exit_status) == ("Unknown command verb frobnicate.\n", 1)


async def test_restart_on_failure_then_start_limit(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    (lab.host_root(name) / UNITS / "crasher.service").write_text(
        "[Unit]\nDescription=Crasher\nStartLimitBurst=3\n\n[Service]\n"
        "ExecStart=/bin/sh -c 'echo boom; exit 2'\nRestart=on-failure\nRestartSec=50ms\n")
    result = await sh(lab, name, "systemctl start crasher")
    assert result.exit_status == 0  # Type=simple: the job succeeds, the service fails later
    supervisor = lab.supervisor(name)
    assert await eventually(lambda: supervisor.service("crasher").active_state == "failed")
    journal = (await sh(lab, name, "journalctl -u crasher -o cat")).stdout.splitlines()
    assert journal.count("boom") == 3
    assert "crasher.service: Main process exited, code=exited, status=2/INVALIDARGUMENT" \
        in journal
    assert "crasher.service: Scheduled restart job, restart counter is at 2." in journal
    assert journal[-3:] == ["crasher.service: Start request repeated too quickly.",
                            "crasher.service: Failed with result 'start-limit-hit'.",
                            "Failed to start Crasher."]
    result = await sh(lab, name, "systemctl is-active crasher; systemctl is-failed crasher")
    assert result.stdout == "failed\nfailed\n"
    (lab.host_root(name) / UNITS / "crasher.service").unlink()


async def test_changed_unit_needs_daemon_reload(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    path = lab.host_root(name) / UNITS / "ticker.service"
    path.write_text(TICKER)
    await sh(lab, name, "systemctl daemon-reload")
    path.write_text(TICKER.replace("sleep 300", "sleep 301"))
    result = await sh(lab, name, "systemctl cat ticker")
    assert "changed on disk. Run 'systemctl daemon-reload' to reload units." in result.stderr
    assert result.stdout.startswith("# /etc/systemd/system/ticker.service\n" + TICKER[:20])
    result = await sh(lab, name, "systemctl daemon-reload; systemctl show -p ExecStart ticker")
    assert "sleep 301" in result.stdout and result.stderr == ""


async def test_journalctl_follow_streams_until_the_client_leaves(
        services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    (lab.host_root(name) / UNITS / "ticker.service").write_text(TICKER)
    spec = next(s for s in lab.hosts if s.name == name)
    async with asyncssh.connect(spec.listen, spec.port, username=lab.user, config=None,
                                client_keys=[str(lab.client_key_path)],
                                known_hosts=str(lab.known_hosts_path)) as conn:
        follower = await conn.create_process("journalctl -f -o cat -u ticker")
        await conn.run("systemctl daemon-reload; systemctl restart ticker")
        seen = ""
        async with asyncio.timeout(8):
            while "Started Lab ticker." not in seen:
                seen += await follower.stdout.read(4096)
        follower.close()
        await conn.run("systemctl stop ticker")
    control = lab._host(name).control
    assert control is not None
    assert await eventually(lambda: control.open_requests == 0)


def test_pki_is_kept_across_starts_and_follows_the_scenario(tmp_path: Path) -> None:
    from tui.core.pki.profiles import profiles_for
    from tui.lab.pki_setup import ensure_pki
    from tui.lab.scenarios import scenario_named

    inventory = load_inventory(Path(__file__).resolve().parents[2] / "config" /
                               "something.local.toml")
    profiles = profiles_for(inventory)
    first = ensure_pki(tmp_path, profiles)
    assert first.created_ca and set(first.issued) == {p.name for p in profiles}
    ca_pem = (tmp_path / "ca.pem").read_bytes()
    again = ensure_pki(tmp_path, profiles)
    assert not again.created_ca and again.issued == () and len(again.kept) == len(profiles)
    seed = scenario_named("seed-cert-bug")
    broken = ensure_pki(tmp_path, [seed.certificate_profile(p) for p in profiles])
    assert broken.issued == ("kubernetes",)
    cert = x509.load_pem_x509_certificate((tmp_path / "kubernetes.pem").read_bytes())
    assert "127.0.0.1" not in ip_sans(cert) and "10.50.0.1" in ip_sans(cert)
    healed = ensure_pki(tmp_path, profiles)
    assert healed.issued == ("kubernetes",) and (tmp_path / "ca.pem").read_bytes() == ca_pem


# -- the stand-in's certificate behaviour -------------------------------------------------

async def test_missing_tls_flags_serve_a_reused_self_signed_cert(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    root = lab.host_root(name)
    inventory = load_inventory(lab.inventory_path)
    host = inventory.host(name)
    unit = root / UNITS / "kube-apiserver.service"
    healthy = unit.read_text()
    unit.write_text(kube_apiserver_unit(inventory, host,
                                        drop_continuation_before="--tls-cert-file"))
    try:
        result = await sh(lab, name, "systemctl daemon-reload && systemctl restart "
                                     "kube-apiserver && systemctl show -p ExecStart "
                                     "kube-apiserver")
        assert result.exit_status == 0 and "--tls-cert-file" not in result.stdout
        assert await eventually(lambda: (root / "var/run/kubernetes/apiserver.crt").exists())
        ip = address(lab, name)

        def served() -> x509.Certificate | None:
            try:
                cert = served_certificate(ip)
            except OSError:
                return None
            return cert if "-ca@" in cn(cert.issuer) else None

        cert = await eventually(served)
        assert cert is not None
        assert re.fullmatch(rf"{re.escape(ip)}-ca@\d+", cn(cert.issuer))
        assert re.fullmatch(rf"{re.escape(ip)}@\d+", cn(cert.subject))
        assert ip_sans(cert) == [ip, "10.32.0.1"]
        assert dns_sans(cert) == ["kubernetes.default.svc", "kubernetes.default", "kubernetes",
                                  "localhost"]
        journal = (await sh(lab, name, "journalctl -u kube-apiserver -o cat")).stdout
        assert ("Generated self-signed cert (/var/run/kubernetes/apiserver.crt, "
                "/var/run/kubernetes/apiserver.key)") in journal
        assert ("/etc/systemd/system/kube-apiserver.service:34: Unknown key name "
                "'--tls-cert-file' in section 'Service', ignoring.") in journal
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.to_thread(https_get, f"https://{ip}:6443/livez",
                                    cafile=lab.pki_directory / "ca.pem")
        journal = (await sh(lab, name, "journalctl -u kube-apiserver -n 1 -o cat")).stdout
        assert re.fullmatch(r"I\d{4} [\d:.]+ +\d+ log\.go:172\] http: TLS handshake error "
                            r"from [\d.]+:\d+: remote error: tls: [a-z ]+\n", journal), journal

        # like the real one: a restart reuses the files in --cert-dir, no new certificate
        await sh(lab, name, "systemctl restart kube-apiserver")
        again = await eventually(served)
        assert again is not None and again.fingerprint(hashes.SHA256()) == \
            cert.fingerprint(hashes.SHA256())
    finally:
        unit.write_text(healthy)
        for leftover in ("apiserver.crt", "apiserver.key"):
            (root / "var/run/kubernetes" / leftover).unlink(missing_ok=True)
        await sh(lab, name, "systemctl daemon-reload; systemctl restart kube-apiserver")
    assert await livez_verifies(lab, name)


async def test_unreadable_certificate_stops_the_standin(services_lab: LabRunner) -> None:
    lab = services_lab.lab
    result = await sh(lab, "controller-0",
                      "kube-apiserver --secure-port=6444 "
                      "--tls-cert-file=/var/lib/kubernetes/missing.pem "
                      "--tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem")
    assert result.exit_status == 1
    assert result.stderr.endswith(
        "Error: unable to load server certificate: open /var/lib/kubernetes/missing.pem: "
        "no such file or directory\n")
    result = await sh(lab, "controller-0", "kube-apiserver --tls-cert-fil=/x")
    assert (result.exit_status, result.stderr) == (1, "Error: unknown flag: --tls-cert-fil\n")


async def test_stop_host_stops_its_services_and_start_host_restarts_them(
        services_lab: LabRunner) -> None:
    lab = services_lab.lab
    name = "controller-1"
    before = lab.service_pids(name)
    assert before
    await asyncio.wrap_future(services_lab.submit(lab.stop_host, name))
    assert lab.service_pids(name) == []
    with pytest.raises(OSError):
        served_certificate(address(lab, name))
    await asyncio.wrap_future(services_lab.submit(lab.start_host, name))
    # as after a VM's boot, SSH may answer before the enabled services have started
    deadline = time.monotonic() + 15
    while not lab.service_pids(name) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert lab.service_pids(name) and not set(lab.service_pids(name)) & set(before)
    assert await livez_verifies(lab, name)


# -- the seed scenario --------------------------------------------------------------------

def test_seed_scenario_reproduces_both_problems_and_stop_leaves_nothing(tmp_path: Path) -> None:
    runner = start_lab(tmp_path / "seed", 70, controllers=1, scenario="seed-cert-bug")
    lab = runner.lab
    try:
        ip = address(lab, "controller-0")
        issued = x509.load_pem_x509_certificate(
            (lab.pki_directory / "kubernetes.pem").read_bytes())
        inventory = load_inventory(lab.inventory_path)
        assert "127.0.0.1" not in ip_sans(issued)
        assert {ip, str(inventory.api.vip), "10.32.0.1"} <= set(ip_sans(issued))
        installed = lab.host_root("controller-0") / "var/lib/kubernetes/kubernetes.pem"
        assert installed.read_bytes() == (lab.pki_directory / "kubernetes.pem").read_bytes()

        served = served_certificate(ip)
        assert re.fullmatch(rf"{re.escape(ip)}-ca@\d+", cn(served.issuer))
        assert (lab.host_root("controller-0") / "var/run/kubernetes/apiserver.crt").exists()
        shown = asyncio.run(sh(lab, "controller-0",
                               "systemctl show -p ExecStart --value kube-apiserver")).stdout
        assert "--service-node-port-range=30000-32767 ;" in shown
        assert "--tls-cert-file" not in shown
        pids = lab.service_pids("controller-0")
        assert pids
    finally:
        runner.stop()
    assert lab.service_pids("controller-0") == [] and lab.pids("controller-0") == []
    assert all(not Path(f"/proc/{pid}").exists() or
               Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
               for pid in pids)
