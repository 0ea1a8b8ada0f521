"""Zone-file mode against real NSD on loopback, edited over a real OpenSSH sshd.

NSD runs with its own config in a temp directory (unprivileged port, control over a Unix
socket) as the sshd test user, who owns the zone file, as an operator would.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dnsd import Nsd, dig, running_nsd, tool_missing_reason
from tests.support.sshd import Sshd, loopback_network, running_sshd, sshd_missing_reason
from tui.core.audit import AuditLog
from tui.core.dns.drift import DriftKind, check_drift
from tui.core.dns.query import DnsClient
from tui.core.dns.records import Record, RecordType
from tui.core.dns.update import changes_for
from tui.core.dns.zonefile import (
    ZoneFileOptions,
    ZoneFileStep,
    apply_zone_file,
    plan_zone_file,
)
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.inventory.model import Host, SSHOptions

REASON = sshd_missing_reason() or tool_missing_reason("nsd", "nsd-checkzone", "nsd-control",
                                                      "dig")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

ZONE = "cluster.test."
ZONE_TEXT = """; cluster.test, kept by hand
$ORIGIN cluster.test.
$TTL 300
@       IN SOA ns.cluster.test. hostmaster.cluster.test. (
                2026010101 ; serial YYYYMMDDnn
                3600 900 604800 300 )
        IN NS ns
ns      IN A 127.0.0.1
controller-0 IN A 10.10.0.10
controller-1 IN A 10.10.0.99   ; moved by hand
kubernetes   IN A 10.10.0.10
             IN TXT "api"
stray        IN A 10.10.0.77
"""
RECORDS = (
    Record("controller-0.cluster.test.", RecordType.A, "10.10.0.10", 300, "controller"),
    Record("controller-1.cluster.test.", RecordType.A, "10.10.0.11", 300, "controller"),
    Record("controller-2.cluster.test.", RecordType.A, "10.10.0.12", 300, "controller"),
    Record("kubernetes.cluster.test.", RecordType.A, "10.50.0.1", 300, "the API name"),
)


@dataclass
class Setup:
    nsd: Nsd
    sshd: Sshd
    fleet: Fleet
    client: DnsClient
    audit: Path


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd"),
                      address=f"{loopback_network()}.30") as server:
        yield server


@pytest.fixture
async def setup(sshd: Sshd, tmp_path: Path) -> AsyncIterator[Setup]:
    # The zone's directory must be reachable by the sshd user: not under pytest's 0700 tmp.
    directory = Path(tempfile.mkdtemp(prefix="hardway-nsd-"))
    directory.chmod(0o755)
    try:
        owner = sshd.user if os.geteuid() == 0 else None
        with running_nsd(directory, ZONE, ZONE_TEXT, owner=owner) as nsd:
            known = tmp_path / "known_hosts"
            known.write_text(sshd.known_hosts_line())
            host = Host(name="dns-0", address=ipaddress.IPv4Address(sshd.address),
                        role="worker",
                        ssh=SSHOptions(user=sshd.user, identity=sshd.client_key_path,
                                       port=sshd.port, known_hosts=known))
            policy = HostKeyPolicy("strict", record_file=tmp_path / "record",
                                   user_files=False)
            audit = tmp_path / "audit.jsonl"
            async with Fleet([host], host_keys=policy, use_user_config=False,
                             audit=AuditLog(audit)) as fleet:
                yield Setup(nsd, sshd, fleet, DnsClient(nsd.address, nsd.port), audit)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def options(nsd: Nsd) -> ZoneFileOptions:
    return ZoneFileOptions(check_command="nsd-checkzone {zone} {file}",
                           reload_command=nsd.reload_command, verify_timeout=10)


async def test_nsd_refuses_dynamic_updates_so_zone_file_mode_is_needed(setup: Setup) -> None:
    from tui.core.dns.update import UpdateStatus, build_update, send_update

    changes = changes_for((await check_drift(setup.client, ZONE, RECORDS, extras=False)).drifts)
    result = await send_update(setup.client, build_update(ZONE, changes), None)
    assert result.status in (UpdateStatus.NOTIMP, UpdateStatus.REFUSED)
    assert result.status is not UpdateStatus.NOTIMP or "zonefile" in result.explanation


async def test_edit_check_reload_verify(setup: Setup) -> None:
    report = await check_drift(setup.client, ZONE, RECORDS)
    kinds = {(d.name, d.kind) for d in report.drifts}
    assert ("controller-1.cluster.test.", DriftKind.WRONG_VALUE) in kinds
    assert ("controller-2.cluster.test.", DriftKind.MISSING) in kinds
    changes = changes_for(report.drifts, delete_extras=report.extras_checked)
    edit = await plan_zone_file(setup.fleet, "dns-0", str(setup.nsd.zone_file), ZONE, changes,
                                today=dt.date(2026, 12, 3))
    assert (edit.old_serial, edit.new_serial) == (2026010101, 2026120300)
    assert "-controller-1 IN A 10.10.0.99" in edit.diff()
    assert "; cluster.test, kept by hand" in edit.new_text   # comments and layout kept
    result = await apply_zone_file(setup.fleet, edit, setup.client, options=options(setup.nsd))
    assert result.ok, (result.message, result.output)
    assert dig((setup.nsd.address, setup.nsd.port),
               "controller-1.cluster.test") == "10.10.0.11"
    assert dig((setup.nsd.address, setup.nsd.port), "kubernetes.cluster.test", "TXT") == '"api"'
    assert (await check_drift(setup.client, ZONE, RECORDS, extras=False)).in_sync
    backup = Path(str(setup.nsd.zone_file) + ".hardway-bak")
    assert backup.read_text() == ZONE_TEXT
    assert "put" in setup.audit.read_text()


async def test_a_failed_check_restores_the_previous_file(setup: Setup) -> None:
    report = await check_drift(setup.client, ZONE, RECORDS, extras=False)
    changes = changes_for(report.drifts)
    edit = await plan_zone_file(setup.fleet, "dns-0", str(setup.nsd.zone_file), ZONE, changes)
    # A checker that rejects the new file (as nsd-checkzone does for a broken one).
    broken = ZoneFileOptions(check_command="nsd-checkzone {zone} {file} && "
                             "echo 'zone cluster.test: syntax error' >&2 && false",
                             reload_command=setup.nsd.reload_command)
    result = await apply_zone_file(setup.fleet, edit, setup.client, options=broken)
    assert not result.ok and result.failed_step is ZoneFileStep.CHECK and result.restored
    assert "syntax error" in result.output
    assert setup.nsd.zone_file.read_text() == ZONE_TEXT
    assert dig((setup.nsd.address, setup.nsd.port), "controller-1.cluster.test") == "10.10.0.99"


async def test_an_edit_that_would_break_the_zone_is_refused_before_upload(
        setup: Setup) -> None:
    from tui.core.dns.drift import RRset
    from tui.core.dns.update import Change, ChangeAction
    from tui.core.errors import UserError

    # A CNAME beside other data at the same name: nsd-checkzone would refuse the file;
    # the edit is parsed back before upload, so it never reaches the server.
    change = Change(ChangeAction.ADD, "kubernetes.cluster.test.", "CNAME",
                    RRset("kubernetes.cluster.test.", "CNAME", 300,
                          ("controller-0.cluster.test.",)), None)
    with pytest.raises(UserError, match="CNAME"):
        await plan_zone_file(setup.fleet, "dns-0", str(setup.nsd.zone_file), ZONE, [change])
    assert setup.nsd.zone_file.read_text() == ZONE_TEXT


async def test_a_file_changed_since_the_plan_is_not_overwritten(setup: Setup) -> None:
    changes = changes_for((await check_drift(setup.client, ZONE, RECORDS, extras=False)).drifts)
    edit = await plan_zone_file(setup.fleet, "dns-0", str(setup.nsd.zone_file), ZONE, changes)
    edited = ZONE_TEXT + "late IN A 10.10.0.5\n"
    setup.nsd.zone_file.write_text(edited)
    result = await apply_zone_file(setup.fleet, edit, setup.client, options=options(setup.nsd))
    assert not result.ok and result.failed_step is ZoneFileStep.READ
    assert setup.nsd.zone_file.read_text() == edited


async def test_commands_are_detected_on_the_host(setup: Setup) -> None:
    from tui.core.dns.zonefile import _commands

    changes = changes_for((await check_drift(setup.client, ZONE, RECORDS, extras=False)).drifts)
    edit = await plan_zone_file(setup.fleet, "dns-0", str(setup.nsd.zone_file), ZONE, changes)
    check, reload = await _commands(setup.fleet, edit, ZoneFileOptions())
    assert check.startswith("nsd-checkzone") and reload.startswith("nsd-control reload")


CLI_INVENTORY = """\
[cluster]
name = "cluster"
domain = "cluster.test"

[networks]
nodes = "10.10.0.0/24"
pods = "10.100.0.0/16"
services = "10.110.0.0/24"

[api]
vip = "10.50.0.1"
hostname = "kubernetes.cluster.test"

[ssh]
user = "{user}"
identity = "{identity}"
port = {ssh_port}
known_hosts = "{known}"

[dns]
server = "{address}"
port = {dns_port}
zone = "cluster.test"
mode = "zonefile"
zone_file = "{zone_file}"

[[controllers]]
name = "controller-0"
address = "10.10.0.10"

[[controllers]]
name = "controller-1"
address = "10.10.0.11"

[[controllers]]
name = "controller-2"
address = "10.10.0.12"

[[workers]]
name = "dns-0"
address = "{address}"
"""


async def test_cli_apply_in_zone_file_mode(sshd: Sshd, tmp_path: Path) -> None:
    import asyncio
    import json
    import sys

    root = Path(__file__).resolve().parents[2]
    directory = Path(tempfile.mkdtemp(prefix="hardway-nsd-"))
    directory.chmod(0o755)
    try:
        owner = sshd.user if os.geteuid() == 0 else None
        with running_nsd(directory, ZONE, ZONE_TEXT, owner=owner, address=sshd.address) as nsd:
            known = tmp_path / "known_hosts"
            known.write_text(sshd.known_hosts_line())
            inventory = tmp_path / "inventory.toml"
            inventory.write_text(CLI_INVENTORY.format(
                user=sshd.user, identity=sshd.client_key_path, ssh_port=sshd.port,
                known=known, address=sshd.address, dns_port=nsd.port,
                zone_file=nsd.zone_file))

            async def hardway(*args: str) -> tuple[int, str, str]:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tui.cli", "dns", *args, "-i", str(inventory),
                    "--audit", str(tmp_path / "audit.jsonl"),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=dict(os.environ, PYTHONPATH=str(root), NO_COLOR="1"))
                out, err = await asyncio.wait_for(process.communicate(), 60)
                return process.returncode or 0, out.decode(), err.decode()

            status, out, err = await hardway("diff", "--delete-extras")
            assert status == 1, out + err
            assert "zonefile mode" in out and "-controller-1 IN A 10.10.0.99" in out
            assert "-stray        IN A 10.10.0.77" in out
            status, out, err = await hardway("apply", "--dry-run")
            assert status == 0 and nsd.zone_file.read_text() == ZONE_TEXT
            status, out, err = await hardway("apply", "--yes", "--reload-command",
                                             nsd.reload_command)
            assert status == 0, out + err
            assert "done:" in out and "is served by" in out
            assert dig((nsd.address, nsd.port), "controller-1.cluster.test") == "10.10.0.11"
            status, out, err = await hardway("check", "--json")
            data = json.loads(out)
            # The worker dns-0's own A record is implied too; stray is kept (no
            # --delete-extras), the rest is in sync.
            assert {(d["name"], d["kind"]) for d in data["drift"]} == {
                ("stray.cluster.test.", "extra")}, data["drift"]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_bind_zone_kept_by_hand_named_checkzone_and_rndc(sshd: Sshd,
                                                               tmp_path: Path) -> None:
    from tests.support.dnsd import free_port, missing_reason
    from tui.lab.bind import BindServer

    reason = missing_reason("bind") or tool_missing_reason("named-checkzone", "rndc")
    if reason:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="hardway-bind-"))
    directory.chmod(0o755)
    zone_file = directory / "cluster.test.zone"
    zone_file.write_text(ZONE_TEXT)
    server = BindServer(ZONE, (), key_name="rndc-key", key_secret="c2VjcmV0c2VjcmV0c2VjcmV0",
                        directory=directory / "named", dynamic=False, zone_file=zone_file,
                        control_port=free_port())
    await server.start("127.0.0.1", free_port())
    try:
        if os.geteuid() == 0:   # the operator who keeps the zone may edit it and run rndc
            for path in (directory, zone_file, server.rndc_config_path):
                shutil.chown(path, sshd.user)
            (directory / "named").chmod(0o755)
        known = tmp_path / "known_hosts"
        known.write_text(sshd.known_hosts_line())
        host = Host(name="dns-0", address=ipaddress.IPv4Address(sshd.address), role="worker",
                    ssh=SSHOptions(user=sshd.user, identity=sshd.client_key_path,
                                   port=sshd.port, known_hosts=known))
        policy = HostKeyPolicy("strict", record_file=tmp_path / "record", user_files=False)
        client = DnsClient(server.address, server.port)
        async with Fleet([host], host_keys=policy, use_user_config=False) as fleet:
            report = await check_drift(client, ZONE, RECORDS, extras=False)
            changes = changes_for(report.drifts)
            edit = await plan_zone_file(fleet, "dns-0", str(zone_file), ZONE, changes,
                                        today=dt.date(2026, 12, 3))
            result = await apply_zone_file(fleet, edit, client, options=ZoneFileOptions(
                check_command="named-checkzone {zone} {file}",
                reload_command=f"rndc -c {server.rndc_config_path} reload {{zone}}"))
        assert result.ok, (result.message, result.output)
        assert "loaded serial 2026120300" in result.output      # named-checkzone's report
        assert dig((server.address, server.port), "controller-2.cluster.test") == "10.10.0.12"
        assert dig((server.address, server.port), ZONE, "SOA").split()[2] == "2026120300"
    finally:
        await server.stop()
        shutil.rmtree(directory, ignore_errors=True)
