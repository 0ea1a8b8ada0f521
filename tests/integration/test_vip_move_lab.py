"""`hardway vip move` on the confined lab, from the seed's VIP inside the node block.

One lab for the module (scenario ``vip-in-node-block``: the API VIP 10.10.0.100 in DNS,
in the hypervisor's ipfw rules, on every controller's lo and in kubernetes.pem).  The
tests run in file order: a dry run changes nothing; a real failure injected at each step
of the move (a refused ``ip``, a refusing ipfw, a read-only certificate directory, the
DNS server stopped, the forwarder stopped, a concurrent edit of the inventory) stops the
plan there with a message naming the cause, and ``--rollback`` puts the cluster back
exactly as it was (DNS record, rules, aliases, certificates, inventory); finally the move
goes through and leaves a healthy cluster on 10.50.0.1, checked from inside the lab.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import running_lab
from tui.cli import main
from tui.core.errors import UserError
from tui.core.fleet.dial import dialer_for
from tui.core.inventory.load import load_inventory
from tui.core.lb.move import MovePlan, MoveResult, StepOutcome, VipMoves
from tui.core.lb.move_context import MoveStepKind
from tui.core.lb.move_journal import MoveStatus
from tui.core.workbench import Workbench
from tui.lab import namespaces
from tui.lab.lab import HYPERVISOR, LabRunner

pytestmark = pytest.mark.skipif(namespaces.unavailable() is not None,
                                reason=f"no namespaces: {namespaces.unavailable()}")

OLD, NEW = "10.10.0.100", "10.50.0.1"
CONTROLLERS = ("controller-0", "controller-1", "controller-2")
API_NAME = "kubernetes.lab.home.arpa"
UNIT = "/etc/systemd/system/hardway-api-vip.service"
CERTS = ("/var/lib/kubernetes/kubernetes.pem", "/etc/etcd/kubernetes.pem")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRunner]:
    """A confined 3-controller lab whose API VIP sits in the node block."""
    with running_lab(tmp_path_factory.mktemp("vipmove"), 43, controllers=3,
                     isolation="namespaces", scenario="vip-in-node-block") as runner:
        yield runner


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the CLI's host-key record and audit log out of the user's home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def ssh(lab: LabRunner, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on a lab host with OpenSSH, as a user would."""
    return subprocess.run(["ssh", "-F", str(lab.lab.ssh_config_path), host, command],
                          capture_output=True, text=True, timeout=120, check=False)


def must(lab: LabRunner, host: str, command: str) -> str:
    """``ssh`` that must succeed; its stdout."""
    result = ssh(lab, host, command)
    assert result.returncode == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


# -- the cluster's state, as the hosts show it ------------------------------------------

CONTROLLER_STATE = (
    "ip -4 -o addr show dev lo | awk '{{print $4}}' | sort; echo ---; "
    f"cat {UNIT} 2>/dev/null; echo ---; sha256sum {' '.join(CERTS)}; echo ---; "
    "openssl s_client -connect {address}:6443 </dev/null "
    "2>/dev/null | openssl x509 -noout -fingerprint -sha256")
HYPERVISOR_STATE = (f"ipfw -S list; echo ---; dig +noall +answer @10.10.0.2 {API_NAME} A "
                    "| sort")


@dataclass(frozen=True)
class ClusterState:
    """What a move changes, read from the hosts and the local files.

    Attributes:
        hosts: per controller: lo addresses, the alias unit, the installed
            kubernetes.pem checksums and the served certificate's fingerprint.
        rules: the hypervisor's ``ipfw -S list``.
        dns: the API name's A records as the lab's BIND answers them.
        pki: the local kubernetes.pem.
        inventory: the inventory file.
    """

    hosts: tuple[tuple[str, str], ...]
    rules: str
    dns: str
    pki: bytes
    inventory: bytes

    def lo(self, host: str) -> list[str]:
        """The addresses on ``host``'s lo."""
        return dict(self.hosts)[host].split("---")[0].split()


def state(lab: LabRunner) -> ClusterState:
    """Read every host at once."""
    with ThreadPoolExecutor(4) as pool:
        hosts = dict(zip(CONTROLLERS, pool.map(
            lambda i: must(lab, CONTROLLERS[i], CONTROLLER_STATE.format(address=f"10.10.0.1{i}")),
            range(len(CONTROLLERS))), strict=True))
        rules, dns = must(lab, HYPERVISOR, HYPERVISOR_STATE).split("---\n")
    pki = lab.lab.pki_directory
    return ClusterState(tuple(sorted(hosts.items())), rules, dns,
                        (pki / "kubernetes.pem").read_bytes(),
                        lab.lab.inventory_path.read_bytes())


def assert_same(after: ClusterState, before: ClusterState) -> None:
    """Field by field, so a failure names what differs."""
    for name in ("rules", "dns", "hosts", "pki", "inventory"):
        assert getattr(after, name) == getattr(before, name), f"{name} differs"


@pytest.fixture(scope="module")
def before(lab: LabRunner) -> ClusterState:
    """The scenario's state, before any move."""
    first = state(lab)
    assert first.lo("controller-0") == ["10.10.0.100/32", "127.0.0.1/8"]
    assert OLD in first.dns and OLD in first.rules and NEW not in first.rules
    return first


# -- the engine, as the views use it ------------------------------------------------------

Fault = Callable[[MoveStepKind, str], Awaitable[None]]


def workbench_on(lab: LabRunner, tmp_path: Path) -> Workbench:
    """A fresh workbench on the lab, the inventory as the file says now."""
    return Workbench(load_inventory(lab.lab.inventory_path), relay=False,
                     user_ssh_files=False, audit_path=tmp_path / "audit.jsonl")


async def open_dns_vip(pilot: Any) -> Any:
    """ctrl+g v: the DNS/VIP screen, opened."""
    from screens.dns_vip import DnsVipScreen

    await pilot.press("ctrl+g", "v")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DnsVipScreen)
    return screen


async def prepare(lab: LabRunner, tmp_path: Path, *, rollback: bool = False,
                  fault: Fault | None = None) -> tuple[Workbench, MovePlan]:
    """A fresh workbench (the inventory as the file says now) and its prepared plan."""
    workbench = workbench_on(lab, tmp_path)
    engine = workbench.engine("vip")
    assert isinstance(engine, VipMoves)
    engine.configure(fault=fault)
    try:
        plan = await (engine.prepare_rollback() if rollback else engine.prepare(NEW))
    except BaseException:
        await workbench.close()
        raise
    return workbench, plan


async def run(lab: LabRunner, tmp_path: Path, *, rollback: bool = False,
              fault: Fault | None = None,
              before_run: Callable[[], None] | None = None) -> MoveResult:
    """Prepare and run a move (or its rollback) in-process."""
    workbench, plan = await prepare(lab, tmp_path, rollback=rollback, fault=fault)
    async with workbench:
        if before_run is not None:
            await asyncio.to_thread(before_run)
        return await plan.run()


def cli(capsys: pytest.CaptureFixture[str], lab: LabRunner, *argv: str) -> tuple[int, str]:
    """``hardway vip move ARGV -i LAB`` in-process: status, stdout + stderr."""
    status = main(["vip", "move", *argv, "-i", str(lab.lab.inventory_path)])
    out, err = capsys.readouterr()
    return status, out + err


async def acli(capsys: pytest.CaptureFixture[str], lab: LabRunner,
               *argv: str) -> tuple[int, str]:
    """:func:`cli` from a test that runs an event loop (the CLI runs its own)."""
    return await asyncio.to_thread(cli, capsys, lab, *argv)


# -- 1. a dry run changes nothing -------------------------------------------------------


def test_dry_run_changes_nothing(lab: LabRunner, before: ClusterState,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out = cli(capsys, lab, NEW, "--dry-run")
    assert status == 0, out
    assert out.rstrip().endswith("Dry run: nothing was changed.")
    for number, kind in enumerate(MoveStepKind, 1):
        assert f"\n{number:2d}. " in out, f"step {kind.value} missing"
    assert "prereq yxrrset kubernetes.lab.home.arpa. IN A 10.10.0.100" in out
    assert f"ipfw -q add 1100 set 11 prob 0.333333 fwd 10.10.0.10,6443 tcp from any to {NEW}" \
        in out
    status, out = cli(capsys, lab, NEW, "--dry-run", "--json")
    assert status == 0
    plan = json.loads(out)
    assert [s["kind"] for s in plan["steps"]] == [k.value for k in MoveStepKind]
    assert "BEGIN" not in out  # the new key is never shown
    assert_same(state(lab), before)
    assert not (lab.lab.pki_directory / "vip-move").exists()


def test_refused_addresses_change_nothing(lab: LabRunner, before: ClusterState,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, out = cli(capsys, lab, "10.10.0.11", "--dry-run")
    assert status == 2
    assert "10.10.0.11 is inside networks.nodes 10.10.0.0/24" in out
    assert "already used by controller controller-1" in out
    assert "Traceback" not in out
    status, out = cli(capsys, lab, "10.50.0.255", "--yes")
    assert status == 2 and "network or broadcast address" in out
    assert_same(state(lab), before)


async def test_the_dns_vip_screen_reads_the_lab(lab: LabRunner, before: ClusterState,
                                               tmp_path: Path) -> None:
    """ctrl+g v on the seed: the zone and the rules as the lab serves them, the VIP's
    placement called out; the app opens although the inventory has that lint error."""
    from tui.app import create_app

    app = create_app(workbench_on(lab, tmp_path), connect=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_dns_vip(pilot)
        screen.action_survey()
        await app.workers.wait_for_complete()
        survey = screen.survey
        assert survey is not None and survey.vip == OLD
        assert survey.rules is not None and survey.rules.in_sync, survey.rules
        assert survey.rules.have == ("01000 p=0.333 → 10.10.0.10:6443",
                                     "01010 p=0.500 → 10.10.0.11:6443",
                                     "01020 always  → 10.10.0.12:6443")
        assert survey.dns is not None and survey.dns.in_sync, survey.dns.drifts
        assert survey.dns.served[(f"{API_NAME}.", "A")].values == (OLD,)
        assert "inside networks.nodes" in survey.placement[0]
        table = screen.query_one("#dns-records")
        assert table.border_title is not None and "in sync" in str(table.border_title)
    assert_same(state(lab), before)


# -- 2. a failure at each step stops the plan; --rollback restores everything ----------


@dataclass(frozen=True)
class Breakage:
    """A real failure for one step of the move.

    Attributes:
        step: the step that must fail.
        after: break things once this step has changed them (None: before the run).
        breaks: (host, command) that breaks things.
        mends: (host, command) that mends them again, before the rollback.
        message: what the failed step must say.
    """

    step: MoveStepKind
    after: MoveStepKind | None
    breaks: tuple[str, str]
    mends: tuple[str, str]
    message: str


IP_REFUSES = """cat > /usr/local/sbin/ip <<'EOF'
#!/bin/sh
case "$*" in *"addr {verb}"*) echo "RTNETLINK answers: Operation not permitted" >&2; exit 2;;
esac
exec /usr/sbin/ip "$@"
EOF
chmod 755 /usr/local/sbin/ip"""
IPFW_REFUSES = """mv /usr/local/sbin/ipfw /usr/local/sbin/ipfw.real
cat > /usr/local/sbin/ipfw <<'EOF'
#!/bin/sh
case "$*" in *"{verb}"*) echo "ipfw: setsockopt(IP_FW_XADD): Operation not permitted" >&2
exit 71;;
esac
exec /usr/local/sbin/ipfw.real "$@"
EOF
chmod 755 /usr/local/sbin/ipfw"""
IPFW_MENDED = "mv /usr/local/sbin/ipfw.real /usr/local/sbin/ipfw"
NAMED_MENDED = ("systemctl start named; for i in $(seq 100); do dig +short +time=1 +tries=1 "
                "@10.10.0.2 lab.home.arpa SOA | grep -q . && break; sleep 0.1; done")
INVENTORY = "inventory"  # the local file, not a host
K = MoveStepKind
BREAKAGES = [
    Breakage(K.ALIASES, None, ("controller-1", IP_REFUSES.format(verb="add")),
             ("controller-1", "rm /usr/local/sbin/ip"),
             f"ip addr add {NEW}/32 dev lo.*Operation not permitted"),
    Breakage(K.RULES, None, (HYPERVISOR, IPFW_REFUSES.format(verb="add")),
             (HYPERVISOR, IPFW_MENDED),
             r"`ipfw -q add 1000 set 11 .*` failed on nucklehead \(exit 71\).*Operation not "
             r"permitted; 5 later commands were not run"),
    Breakage(K.CERTIFICATE, None,
             ("controller-2", "mount --bind -o ro /var/lib/kubernetes /var/lib/kubernetes"),
             ("controller-2", "umount /var/lib/kubernetes"),
             "the push stopped at `put files` on controller-2: could not stage .* writing "
             r"/var/lib/kubernetes/\.kubernetes\.pem\S* \(SFTP said only 'Failure': usually a "
             "read-only file system"),
    Breakage(K.SWITCH, None, (HYPERVISOR, IPFW_REFUSES.format(verb="swap")),
             (HYPERVISOR, IPFW_MENDED),
             r"`ipfw set swap 10 11` failed on nucklehead \(exit 71\)"),
    Breakage(K.DNS, None, (HYPERVISOR, "systemctl stop named"),
             (HYPERVISOR, NAMED_MENDED),
             r"the DNS server 10\.10\.0\.2:53 did not answer"),
    Breakage(K.VERIFY, None, (HYPERVISOR, "systemctl stop ipfw"),
             (HYPERVISOR, "systemctl start ipfw"),
             rf"https://{NEW}:6443/version .*(refused|reset|closed)"),
    Breakage(K.REMOVE_RULES, K.VERIFY, (HYPERVISOR, IPFW_REFUSES.format(verb="add")),
             (HYPERVISOR, IPFW_MENDED),
             r"`ipfw -q add 1000 set 11 .*` failed on nucklehead \(exit 71\)"),
    Breakage(K.REMOVE_ALIASES, None, ("controller-0", IP_REFUSES.format(verb="del")),
             ("controller-0", "rm /usr/local/sbin/ip"),
             f"ip addr del {OLD}/32 dev lo.*Operation not permitted"),
    Breakage(K.REMOVE_DNS, K.REMOVE_ALIASES, (HYPERVISOR, "systemctl stop named"),
             (HYPERVISOR, NAMED_MENDED),
             r"the DNS server 10\.10\.0\.2:53 did not answer"),
    Breakage(K.INVENTORY, K.REMOVE_DNS, (INVENTORY, f'vip = "{OLD}"/vip = "10.10.0.99"'),
             (INVENTORY, f'vip = "10.10.0.99"/vip = "{OLD}"'),
             r"line \d+: \[api\] vip is '10\.10\.0\.99', not '10\.10\.0\.100': the file "
             "changed since it was read"),
]


def _act(lab: LabRunner, where: tuple[str, str]) -> None:
    host, command = where
    if host == INVENTORY:
        path = lab.lab.inventory_path
        old, new = command.split("/")
        path.write_text(path.read_text().replace(old, new, 1))
    else:
        must(lab, host, command)


async def _fail_and_roll_back(lab: LabRunner, tmp_path: Path, breakage: Breakage,
                              capsys: pytest.CaptureFixture[str],
                              expected: ClusterState) -> None:
    """Break things, run the move, check where and why it stopped, mend, roll back, and
    check the cluster is ``expected`` again."""
    broken = asyncio.Event()

    async def fault(kind: MoveStepKind, _host: str) -> None:
        if kind is breakage.after and not broken.is_set():
            broken.set()
            await asyncio.to_thread(_act, lab, breakage.breaks)

    def break_now() -> None:
        if breakage.after is None:
            broken.set()
            _act(lab, breakage.breaks)

    try:
        result = await run(lab, tmp_path, fault=fault, before_run=break_now)
    finally:
        if broken.is_set():
            await asyncio.to_thread(_act, lab, breakage.mends)
    failed = result.failed
    assert failed is not None and failed.kind is breakage.step, result
    details = " ".join(h.detail for h in failed.hosts if h.outcome is StepOutcome.FAILED)
    assert details and re.search(breakage.message, details), details
    order = list(MoveStepKind)
    later = [s for s in result.steps if order.index(s.kind) > order.index(breakage.step)]
    assert all(s.outcome is StepOutcome.NOT_RUN and not s.changed for s in later)
    assert result.status is MoveStatus.FAILED
    with pytest.raises(UserError, match=r"is not finished .* roll it back first"):
        await prepare(lab, tmp_path)

    status, out = await acli(capsys, lab, "--rollback", "--yes")
    assert status == 0, out
    assert "Rolled back: the API VIP is 10.10.0.100 again" in out
    assert_same(state(lab), expected)
    status, out = await acli(capsys, lab, "--rollback", "--yes")
    assert status == 1 and "nothing left to undo (rolled-back" in out


EARLY = [b for b in BREAKAGES if b.step in (K.ALIASES, K.RULES, K.CERTIFICATE)]
LATE = [b for b in BREAKAGES if b not in EARLY]


@pytest.mark.parametrize("breakage", EARLY, ids=[b.step.value for b in EARLY])
async def test_a_failure_stops_the_move_and_rollback_restores(
        lab: LabRunner, before: ClusterState, tmp_path: Path, breakage: Breakage,
        capsys: pytest.CaptureFixture[str]) -> None:
    await _fail_and_roll_back(lab, tmp_path, breakage, capsys, before)


# -- 3. the move itself, and its rollback ----------------------------------------------


async def _https(lab: LabRunner, address: str, name: str) -> httpx.Response:
    """``curl --cacert ca.pem https://ADDRESS:6443/version`` from inside the lab (through
    the jump host's SSH connection), the certificate verified for ``name``."""
    inventory = load_inventory(lab.lab.inventory_path)
    async with Workbench(inventory, relay=False, user_ssh_files=False) as workbench:
        dialer = dialer_for(inventory, workbench.fleet)
        try:
            host, port = await dialer.endpoint(address, 6443)
            context = ssl.create_default_context(cafile=str(lab.lab.pki_directory / "ca.pem"))
            async with httpx.AsyncClient(verify=context, timeout=5) as client:
                return await client.get(f"https://{host}:{port}/version",
                                        extensions={"sni_hostname": name})
        finally:
            await dialer.close()


async def test_the_move_leaves_a_healthy_cluster_on_the_new_vip(
        lab: LabRunner, before: ClusterState, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = await acli(capsys, lab, NEW, "--yes")
    assert status == 0, out
    assert f"Moved: the API VIP is {NEW}" in out
    after = state(lab)
    assert load_inventory(lab.lab.inventory_path).api.vip.exploded == NEW  # type: ignore[union-attr]
    assert after.dns.split() == [f"{API_NAME}.", "300", "IN", "A", NEW]
    active = [line for line in after.rules.splitlines() if " set 10 " in line]
    assert len(active) == 3 and all(f"to {NEW} dst-port 6443" in line for line in active)
    assert "prob 0.333333 fwd 10.10.0.10,6443" in active[0]
    for host in CONTROLLERS:
        assert after.lo(host) == ["10.50.0.1/32", "127.0.0.1/8"]
        assert f"ExecStart=/sbin/ip addr replace {NEW}/32 dev lo" in dict(after.hosts)[host]
    cert = x509.load_pem_x509_certificate(after.pki)
    ips = {str(ip) for ip in cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)}
    assert {NEW, OLD, "127.0.0.1", "10.32.0.1"} <= ips
    served = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    for host in CONTROLLERS:
        assert served in dict(after.hosts)[host].replace(":", "")
    for name in (NEW, API_NAME):
        answer = await _https(lab, NEW, name)
        assert answer.status_code == 200 and answer.json()["gitVersion"].startswith("v1.")
    with pytest.raises((httpx.HTTPError, OSError)):
        await _https(lab, OLD, OLD)  # no rule for the old VIP: the forwarder resets
    status, out = await acli(capsys, lab, NEW, "--dry-run")
    assert status == 2 and f"{NEW} is already the API VIP" in out
    lint = main(["inventory", "check", str(lab.lab.inventory_path)])
    capsys.readouterr()
    assert lint == 0
    health = await asyncio.to_thread(main, ["health", "--once", "-i",
                                            str(lab.lab.inventory_path)])
    out = capsys.readouterr().out
    assert health == 0, out  # every probe UP: etcd, apiserver, certificates, DNS, the VIP
    assert re.search(r"dns-api +UP .*kubernetes\.lab\.home\.arpa -> 10\.50\.0\.1", out), out


async def test_rollback_of_the_finished_move_from_the_screen_restores_the_seed(
        lab: LabRunner, before: ClusterState, tmp_path: Path) -> None:
    """b on the DNS/VIP screen: the exact preview, confirmed, then every undo step done."""
    from screens.dns_vip import MovePreviewScreen
    from tui.app import create_app

    app = create_app(workbench_on(lab, tmp_path), connect=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_dns_vip(pilot)
        await pilot.press("b")
        async with asyncio.timeout(60):
            while not (isinstance(app.screen, MovePreviewScreen) and app.screen.is_mounted):
                await pilot.pause(0.05)
        await pilot.click("#go")
        await app.workers.wait_for_complete()
        result = screen.result
        assert result is not None and result.ok, result
        assert all(s.outcome is StepOutcome.DONE for s in result.steps)
        assert screen.survey is not None and screen.survey.vip == OLD  # read again
    assert_same(state(lab), before)


# -- 4. a failure at each later step, on a cluster that already serves a certificate with
#       the new VIP (the move's certificate step has nothing to do: no restarts) ----------


def _issue_with_new_vip(lab: LabRunner) -> None:
    """kubernetes.pem with the new VIP beside the old one, as an admin may push it ahead
    of the move (the move's certificate step then has nothing to do)."""
    import dataclasses
    import ipaddress

    from tui.core.inventory.model import San
    from tui.core.pki.ca import CertificateAuthority
    from tui.core.pki.profiles import Profile, profile_named, write_pair

    inventory = load_inventory(lab.lab.inventory_path)
    moved = dataclasses.replace(inventory, api=dataclasses.replace(
        inventory.api, vip=ipaddress.IPv4Address(NEW)))
    base = profile_named(moved, "kubernetes")
    profile = Profile.from_sans(base.name, base.common_name, base.organization,
                                (*base.sans_reasons, San("ip", OLD, "the old VIP")))
    write_pair(lab.lab.pki_directory, "kubernetes",
               CertificateAuthority.load(lab.lab.pki_directory).issue(profile))


async def _push(lab: LabRunner, audit: Path) -> None:
    """The certificates' health-gated push to the controllers (the engine of `certs
    push`, which as a command refuses this inventory until its VIP has moved)."""
    async with Workbench(load_inventory(lab.lab.inventory_path), relay=False,
                         user_ssh_files=False, audit_path=audit) as workbench:
        plan = await workbench.certs.prepare_push(list(CONTROLLERS))
        result = await plan.run()
        assert result.failure is None, result.failure


@pytest.fixture(scope="module")
def prepared(lab: LabRunner, before: ClusterState,
             tmp_path_factory: pytest.TempPathFactory) -> ClusterState:
    """The cluster once the certificates' push put a kubernetes.pem with both VIPs."""
    _issue_with_new_vip(lab)
    asyncio.run(_push(lab, tmp_path_factory.mktemp("push") / "audit.jsonl"))
    return state(lab)


async def test_the_health_grid_follows_a_move_and_its_rollback(
        lab: LabRunner, before: ClusterState, tmp_path: Path) -> None:
    """After a move from the screen the workbench kept the old inventory: the health grid
    went on probing the old VIP (and a running guard would have swapped in rules for it)
    until restart. The move's reload now reaches every engine built so far."""
    try:
        await _move_and_follow(lab, tmp_path, OLD, NEW, rollback=False)
        await _move_and_follow(lab, tmp_path, NEW, OLD, rollback=True)
    finally:  # the next tests start from the seed
        if str(load_inventory(lab.lab.inventory_path).api.vip) == NEW:
            await run(lab, tmp_path, rollback=True)


async def _move_and_follow(lab: LabRunner, tmp_path: Path, was: str, now: str, *,
                           rollback: bool) -> None:
    """Run the move (or rollback) with the health engine built, reload, and see the
    grid's VIP cell probe the new address and answer OK."""
    from tui.core.health.model import Kind, Status
    from tui.core.workbench import InventoryChanged

    workbench, plan = await prepare(lab, tmp_path, rollback=rollback)
    heard: list[object] = []
    workbench.subscribe(heard.append)
    async with workbench:
        health = workbench.health
        cell = health.poller.cells[f"vip/{Kind.VIP_ADDRESS.value}"]
        assert f"https://{was}:6443" in cell.probe.target
        result = await plan.run()
        assert result.ok, result.failed
        moves = workbench.engine("vip")
        assert isinstance(moves, VipMoves)
        moves.reload()
        assert str(workbench.inventory.api.vip) == now
        assert [e.what for e in heard if isinstance(e, InventoryChanged)] == [
            f"api.vip {was} -> {now}"]
        assert f"https://{now}:6443" in cell.probe.target, cell.probe.target
        polling = asyncio.create_task(health.run())
        try:
            async with asyncio.timeout(90):
                while cell.last is None:
                    await asyncio.sleep(0.1)
        finally:
            polling.cancel()
        assert cell.last.status is Status.OK, cell.last


@pytest.mark.parametrize("breakage", LATE, ids=[b.step.value for b in LATE])
async def test_a_failure_after_the_certificate_and_rollback(
        lab: LabRunner, prepared: ClusterState, tmp_path: Path, breakage: Breakage,
        capsys: pytest.CaptureFixture[str]) -> None:
    await _fail_and_roll_back(lab, tmp_path, breakage, capsys, prepared)
