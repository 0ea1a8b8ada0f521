"""The confined lab: hosts in their own namespaces behind the hypervisor (issue 10, part 1).

Everything here goes through the product's own path (the inventory, the Fleet with its
jump host) or OpenSSH (``ssh -F DIR/ssh_config``, ProxyJump), as a user would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import lab_network, running_lab
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.load import load_inventory
from tui.lab import namespaces
from tui.lab.lab import HYPERVISOR, LabRunner
from tui.lab.namespaces import LabAddressRefused, guard_address

pytestmark = pytest.mark.skipif(namespaces.unavailable() is not None,
                                reason=f"no namespaces: {namespaces.unavailable()}")


def _lab_processes(directory: Path) -> list[int]:
    """Live processes whose command line or environment names the lab directory."""
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            data = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in data:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A confined 3-controller lab with its services."""
    with running_lab(tmp_path_factory.mktemp("confined"), 7, controllers=3,
                     isolation="namespaces") as runner:
        yield runner


@pytest.fixture
async def fleet(confined: LabRunner, tmp_path: Path) -> AsyncIterator[Fleet]:
    """The product's fleet on the confined lab (through the jump host)."""
    inventory = load_inventory(confined.lab.inventory_path)
    policy = HostKeyPolicy(record_file=tmp_path / "record", user_files=False)
    async with Fleet.from_inventory(inventory, host_keys=policy,
                                    use_user_config=False) as fleet:
        yield fleet


def test_inventory_has_kthw_paths_and_the_jump_host(confined: LabRunner) -> None:
    inventory = load_inventory(confined.lab.inventory_path)
    assert [h.root for h in inventory.hosts] == ["", "", ""]
    assert [str(h.address) for h in inventory.controllers] == [
        "10.10.0.10", "10.10.0.11", "10.10.0.12"]
    assert inventory.ssh.jump == HYPERVISOR
    assert inventory.hypervisor is not None and inventory.hypervisor.name == HYPERVISOR
    assert str(inventory.api.vip) == "10.50.0.1"


async def test_writes_stay_on_their_host(confined: LabRunner, fleet: Fleet) -> None:
    mark = f"hardway-confined-{uuid.uuid4().hex[:8]}"
    wrote = await fleet.run(["controller-0"], (
        f"sudo mkdir -p /etc/{mark} && echo $HOST_NAME | sudo tee /etc/{mark}/who >/dev/null && "
        f"sudo mv /etc/{mark}/who /usr/local/bin/{mark} && touch /tmp/{mark} && "
        f"cat /usr/local/bin/{mark}"))
    assert wrote["controller-0"].ok, wrote["controller-0"].stderr
    assert wrote["controller-0"].stdout.strip() == "controller-0"
    for path in (f"/etc/{mark}", f"/usr/local/bin/{mark}", f"/tmp/{mark}"):
        assert not os.path.lexists(path), f"{path} reached the machine"
    elsewhere = await fleet.run(["controller-1"], (
        f"test -e /etc/{mark} || test -e /usr/local/bin/{mark} || test -e /tmp/{mark}"))
    assert elsewhere["controller-1"].status == 1
    root = confined.lab.host_root("controller-0")
    assert (root / "usr" / "local" / "bin" / mark).read_text() == "controller-0\n"
    assert (root / "tmp" / mark).exists()


async def test_system_directories_are_read_only(fleet: Fleet) -> None:
    result = await fleet.run(["controller-0"], "touch /usr/bin/hardway-nope")
    assert result["controller-0"].status != 0
    assert "Read-only file system" in result["controller-0"].stderr
    assert not os.path.exists("/usr/bin/hardway-nope")


async def test_each_host_sees_its_own_processes_and_ports(fleet: Fleet) -> None:
    # A daemon started by hand, as KTHW readers do, on 127.0.0.1 of two hosts at once, on
    # a port of its own (every host's etcd already holds its own 127.0.0.1:2379).
    start = ("echo $HOST_NAME > /tmp/who && cd /tmp && setsid python3 -m http.server "
             "--bind 127.0.0.1 12379 >/dev/null 2>&1 < /dev/null & "
             "for i in $(seq 50); do curl -s 127.0.0.1:12379/who && break; sleep 0.1; done")
    served = await fleet.run(["controller-0", "controller-1"], start)
    assert served["controller-0"].stdout.strip() == "controller-0"
    assert served["controller-1"].stdout.strip() == "controller-1"
    listing = await fleet.run(["controller-0", "controller-2"],
                              "ps -e -o pid=,args= | grep -c '[h]ttp.server'; "
                              "ps -e -o pid= | head -1")
    assert listing["controller-0"].stdout.split() == ["1", "1"]
    assert listing["controller-2"].stdout.split() == ["0", "1"]


def test_openssh_reaches_controllers_through_the_hypervisor(confined: LabRunner) -> None:
    config = str(confined.lab.ssh_config_path)
    result = subprocess.run(
        ["ssh", "-F", config, "controller-2", "hostname; id -u; pwd; ip -br -4 addr show eth0"],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[:3] == ["controller-2", "0", "/root"]
    assert "10.10.0.12/24" in lines[3]
    vip = subprocess.run(
        ["ssh", "-F", config, HYPERVISOR, "ip -br -4 addr show lo"],
        capture_output=True, text=True, timeout=60, check=False)
    assert "10.50.0.1/32" in vip.stdout


def test_non_loopback_addresses_are_refused_outside_the_lab() -> None:
    with pytest.raises(LabAddressRefused, match=r"10\.10\.0\.10"):
        guard_address("10.10.0.10", inside=False)
    guard_address("10.10.0.10", inside=True)
    guard_address("127.0.10.1", inside=False)


def test_an_unconfined_host_never_forwards_to_a_lab_address(tmp_path: Path) -> None:
    from tui.lab.server import LabHost, LabHostSpec

    spec = LabHostSpec("h", "controller", "127.0.77.10", "127.0.77.10", 2222, tmp_path)
    host = LabHost(spec, host_key=None, client_key=None, user="u")  # type: ignore[arg-type]
    assert host.forward_to("10.10.0.10", 6443) is False
    opening = host.forward_to("127.0.77.11", 6443)
    assert asyncio.iscoroutine(opening)
    opening.close()


def test_a_killed_lab_leaves_nothing_behind(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "lab", "up", "--dir", str(directory),
         "--controllers", "1", "--no-services", "--isolation", "namespaces",
         "--network", lab_network(13)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        else:
            pytest.fail("lab up did not come up")
        daemon = subprocess.run(
            ["ssh", "-F", str(directory / "ssh_config"), "controller-0",
             "setsid sleep 1000 >/dev/null 2>&1 < /dev/null & echo started"],
            capture_output=True, text=True, timeout=60, check=False)
        assert daemon.stdout.strip() == "started", daemon.stderr
        assert _lab_processes(directory)
        namespaces_made = _namespaces(_lab_processes(directory)) - _namespaces([os.getpid()])
        assert namespaces_made  # the hosts' net, mount, PID, UTS (and user) namespaces
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _lab_processes(directory) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _lab_processes(directory) == []
    # a namespace lives while a process (or a bind mount of it) holds it: none is left
    def left() -> set[str]:
        return namespaces_made & _namespaces(
            int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())

    while left() and time.monotonic() < deadline:  # processes still being torn down
        time.sleep(0.1)
    assert left() == set()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(directory) not in mounts  # nothing of the lab mounted on the machine


def _namespaces(pids: Iterable[int]) -> set[str]:
    """The namespaces (``net:[4026...]``...) the processes ``pids`` are in."""
    found = set()
    for pid in pids:
        for kind in ("net", "mnt", "pid", "uts", "user"):
            try:
                found.add(os.readlink(f"/proc/{pid}/ns/{kind}"))
            except OSError:
                continue
    return found


def test_lab_status_and_down_from_another_terminal(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    cli = [sys.executable, "-m", "tui.cli", "lab"]
    proc = subprocess.Popen(
        [*cli, "up", "--dir", str(directory), "--controllers", "1", "--no-services",
         "--isolation", "namespaces", "--network", lab_network(19)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Ctrl-C stops"):
                break
        status = subprocess.run([*cli, "status", "--dir", str(directory)],
                                capture_output=True, text=True, timeout=30, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"(pid {proc.pid})" in status.stdout
        assert "controller-0" in status.stdout and "(jump host)" in status.stdout
        down = subprocess.run([*cli, "down", "--dir", str(directory)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert down.returncode == 0, down.stdout + down.stderr
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    again = subprocess.run([*cli, "status", "--dir", str(directory)],
                           capture_output=True, text=True, timeout=30, check=False)
    assert again.returncode == 3
    assert _lab_processes(directory) == []


def test_sigterm_stops_the_lab_cleanly(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "lab", "up", "--dir", str(directory),
         "--controllers", "1", "--no-services", "--isolation", "namespaces",
         "--network", lab_network(17)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Ctrl-C stops"):
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "every lab process has ended" in out
    assert _lab_processes(directory) == []


async def test_the_healthy_scenario_runs_kthw_docs_07_and_08(fleet: Fleet) -> None:
    checks = await fleet.run(["controller-0"], (
        "systemctl is-active etcd kube-apiserver; "
        "curl -sk 'https://127.0.0.1:6443/readyz?verbose' | grep etcd; "
        "ETCDCTL_API=3 etcdctl member list --endpoints=https://127.0.0.1:2379 "
        "--cacert=/etc/etcd/ca.pem --cert=/etc/etcd/kubernetes.pem "
        "--key=/etc/etcd/kubernetes-key.pem | grep -c started"))
    assert checks["controller-0"].stdout.split() == ["active", "active", "[+]etcd", "ok", "3"]


async def test_control_plane_components_report_health(fleet: Fleet) -> None:
    checks = await fleet.run(["controller-1"], (
        "for i in $(seq 150); do curl -sf http://127.0.0.1:10252/healthz >/dev/null && break; "
        "sleep 0.1; done; curl -s http://127.0.0.1:10252/healthz; echo; "
        "curl -sk https://127.0.0.1:10259/healthz; echo; "
        "sleep 1.2; systemctl is-active kube-apiserver kube-controller-manager kube-scheduler"))
    assert checks["controller-1"].stdout.split() == ["ok", "ok", "active", "active", "active"]


async def test_nginx_health_proxy_answers_on_port_80(fleet: Fleet) -> None:
    if not os.access("/usr/sbin/nginx", os.X_OK):
        pytest.skip("nginx is not installed (scripts/install-test-deps.sh installs it)")
    result = await fleet.run(["controller-2"], (
        "for i in $(seq 50); do curl -sf -H 'Host: kubernetes.default.svc.cluster.local' "
        "http://127.0.0.1/healthz && break; sleep 0.1; done"))
    assert result["controller-2"].stdout == "ok"


def test_seed_cert_bug_shows_in_the_components_health(tmp_path: Path) -> None:
    with LabRunner(tmp_path / "seed", controllers=1, network=lab_network(29),
                   isolation="namespaces", scenario="seed-cert-bug") as runner:
        result = subprocess.run(
            ["ssh", "-F", str(runner.lab.ssh_config_path), "controller-0",
             "for i in $(seq 150); do journalctl -u kube-controller-manager | grep -q "
             "'x509: certificate signed by unknown authority' && break; sleep 0.1; done; "
             "curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:10252/healthz; "
             "journalctl -u kube-controller-manager | grep -c 'x509: certificate signed by "
             "unknown authority'"],
            capture_output=True, text=True, timeout=60, check=False)
    status, count = result.stdout.split()
    assert status == "500"
    assert int(count) >= 1


def test_vip_in_node_block_and_controller_down_scenarios(tmp_path: Path) -> None:
    with LabRunner(tmp_path / "vip", controllers=3, network=lab_network(31),
                   isolation="namespaces", scenario="vip-in-node-block") as runner:
        inventory = load_inventory(runner.lab.inventory_path)
        assert str(inventory.api.vip) == "10.10.0.100"
        alias = subprocess.run(["ssh", "-F", str(runner.lab.ssh_config_path), HYPERVISOR,
                                "ip -br -4 addr show lo"],
                               capture_output=True, text=True, timeout=60, check=False)
        assert "10.10.0.100/32" in alias.stdout
    with LabRunner(tmp_path / "down", controllers=3, network=lab_network(37),
                   isolation="namespaces", scenario="controller-down") as runner:
        assert [runner.lab.running(n) for n in ("controller-0", "controller-1",
                                                "controller-2")] == [True, True, False]
        dead = subprocess.run(["ssh", "-F", str(runner.lab.ssh_config_path), HYPERVISOR,
                               "curl -sk -m 2 https://10.10.0.12:6443/healthz; echo $?; "
                               "curl -sk -m 2 https://10.10.0.11:6443/healthz"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert dead.stdout.split("\n")[0] == "28"  # curl: timed out, as for a dead VM
        assert dead.stdout.endswith("ok")


async def test_services_are_reached_through_the_jump_host(confined: LabRunner,
                                                          fleet: Fleet) -> None:
    import asyncio
    import ssl

    from tui.core.fleet.dial import TunnelDialer, dialer_for

    inventory = load_inventory(confined.lab.inventory_path)
    dialer = dialer_for(inventory, fleet)
    assert isinstance(dialer, TunnelDialer) and dialer.jump == HYPERVISOR
    try:
        with pytest.raises(OSError, match=r"Connection refused .*through the jump host"):
            await dialer.endpoint("10.10.0.10", 2381)  # nothing listens there
        host, port = await dialer.endpoint("10.10.0.10", 6443)
        assert host == "127.0.0.1"
        context = ssl.create_default_context(
            cafile=str(confined.lab.pki_directory / "ca.pem"))
        _reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                        server_hostname="10.10.0.10")
        assert writer.get_extra_info("peercert") is not None  # verified as 10.10.0.10
        writer.close()
    finally:
        await dialer.close()


def _vip_requests(config: str, count: int) -> dict[str, int]:
    """``count`` new HTTPS connections to the VIP from the hypervisor, as a KTHW reader
    checks it (``curl --cacert ca.pem https://VIP:6443/version``): status -> how many."""
    loop = (f"for i in $(seq {count}); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
            "--cacert ca.pem https://10.50.0.1:6443/version; done")
    result = subprocess.run(["ssh", "-F", config, HYPERVISOR, loop], capture_output=True,
                            text=True, timeout=300, check=False)
    counts: dict[str, int] = {}
    for line in result.stdout.split():
        counts[line] = counts.get(line, 0) + 1
    return counts


def test_the_vip_round_robin_fails_a_third_with_a_controller_down(confined: LabRunner) -> None:
    config = str(confined.lab.ssh_config_path)
    assert _vip_requests(config, 30) == {"200": 30}
    stop = subprocess.run(["ssh", "-F", config, "controller-1",
                           "systemctl stop kube-apiserver"], timeout=60, check=False)
    assert stop.returncode == 0
    try:
        counts = _vip_requests(config, 300)
        failed = 300 - counts.get("200", 0)
        print(f"VIP round robin with controller-1's kube-apiserver stopped: {failed}/300 "
              f"failed ({failed / 3:.1f}%)")
        assert 0.20 <= failed / 300 <= 0.45
    finally:
        subprocess.run(["ssh", "-F", config, "controller-1",
                        "systemctl start kube-apiserver"], timeout=60, check=False)


def test_the_zone_is_served_and_updated_with_the_labs_key(confined: LabRunner) -> None:
    if not os.access("/usr/sbin/named", os.X_OK):
        pytest.skip("named is not installed (scripts/install-test-deps.sh installs bind9)")
    config = str(confined.lab.ssh_config_path)

    def on_hypervisor(command: str) -> str:
        result = subprocess.run(["ssh", "-F", config, HYPERVISOR, command],
                                capture_output=True, text=True, timeout=60, check=False)
        return result.stdout + result.stderr

    secret = load_inventory(confined.lab.inventory_path).dns.tsig_secret_file
    assert secret is not None and secret.stat().st_mode & 0o777 == 0o600
    assert on_hypervisor("dig +short @10.10.0.2 kubernetes.lab.home.arpa").strip() == \
        "10.50.0.1"
    update = ("server 10.10.0.2\\nzone lab.home.arpa\\n"
              "update add test-{n}.lab.home.arpa 60 A 10.10.0.99\\nsend\\n")
    wrong = ("key \"hardway-key\" { algorithm hmac-sha256; "
             "secret \"d3JvbmcgYnV0IGxvbmcgZW5vdWdoIHNlY3JldCEhIQ==\"; };")
    out = on_hypervisor(
        f"printf '{update.format(n=1)}' | nsupdate -k hardway-key.secret && "
        "dig +short @10.10.0.2 test-1.lab.home.arpa; "
        f"echo '{wrong}' > wrong.key; printf '{update.format(n=2)}' | nsupdate -k wrong.key; "
        "echo status=$?; dig +short @10.10.0.2 test-2.lab.home.arpa")
    assert "10.10.0.99" in out.split("status=")[0]
    assert "BADSIG" in out or "BADKEY" in out
    assert out.split("status=")[1].split()[0] != "0"
    assert "10.10.0.99" not in out.split("status=")[1]


def test_etcd_stale_member_scenario_is_diagnosed_and_replaced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--scenario etcd-stale-member``: doc 07 done, then controller-2 lost its data
    directory and was started again with ``new``; `hardway etcd status` names it and
    `hardway etcd replace controller-2` brings the cluster back to three healthy members."""
    import json

    from tui.cli import main
    from tui.lab import etcd_release

    if etcd_release.find_binaries() is None:
        pytest.skip("no etcd binaries (scripts/install-test-deps.sh: etcd-server, etcd-client)")
    with running_lab(tmp_path / "stale", 43, controllers=3, isolation="namespaces",
                     scenario="etcd-stale-member") as runner:
        inv = str(runner.lab.inventory_path)
        problems: set[tuple[str, str]] = set()
        out = ""
        for _ in range(20):
            main(["etcd", "status", "-i", inv, "--json"])
            out = capsys.readouterr().out
            problems = {(d["host"], d["problem"]) for d in json.loads(out)["diagnoses"]}
            if problems:
                break
            time.sleep(0.5)
        assert ("controller-2", "new-state-rejoin") in problems, out
        assert main(["etcd", "replace", "controller-2", "-i", inv, "--yes"]) == 0, \
            capsys.readouterr().out
        capsys.readouterr()
        main(["etcd", "status", "-i", inv, "--json"])
        assert json.loads(capsys.readouterr().out)["healthy"]
