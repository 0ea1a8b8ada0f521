"""`hardway dns check|diff|apply` end to end against real BIND and the stand-in.

The CLI runs as a subprocess (`python -m tui.cli`), as a user runs it; the zone server
runs in the test, on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.dnsd import (
    KINDS,
    ZoneServer,
    dig,
    missing_reason,
    nsupdate,
    start_zone_server,
    tool_missing_reason,
)
from tui.core.dns.records import wanted_records
from tui.core.inventory.load import load_inventory

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = """\
[cluster]
name = "something"
domain = "something.local"

[networks]
nodes = "10.10.0.0/24"
control_plane_services = "10.50.0.0/24"
pods = "10.100.0.0/16"
services = "10.110.0.0/24"

[api]
vip = "10.50.0.1"
hostname = "kubernetes.something.local"

[dns]
server = "127.0.0.1"
port = {port}
zone = "something.local"
tsig_name = "hardway-key"
tsig_secret_file = "{secret_file}"

[[controllers]]
name = "controller-0"
address = "10.10.0.10"

[[controllers]]
name = "controller-1"
address = "10.10.0.11"

[[controllers]]
name = "controller-2"
address = "10.10.0.12"
"""


@dataclass
class Cli:
    server: ZoneServer
    inventory: Path
    audit: Path

    async def run(self, *args: str) -> tuple[int, str, str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", "dns", *args, "-i", str(self.inventory),
            "--audit", str(self.audit), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def dig(self, name: str) -> str:
        return await asyncio.to_thread(dig, self.server, name)

    async def nsupdate(self, commands: str) -> None:
        done = await asyncio.to_thread(nsupdate, self.server, self.server.key_file, commands)
        assert done.returncode == 0, done.stderr


@pytest.fixture(params=KINDS)
async def cli(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cli]:
    reason = missing_reason(request.param) or tool_missing_reason("dig", "nsupdate")
    if reason:
        pytest.skip(reason)
    # The records come from the inventory itself, so the zone starts in sync.
    draft = tmp_path / "draft.toml"
    draft.write_text(INVENTORY.format(port=53, secret_file="key"))
    records = wanted_records(load_inventory(draft))
    server = await start_zone_server(request.param, tmp_path / "dns", "something.local",
                                     records)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(INVENTORY.format(port=server.port, secret_file=server.key_file))
    try:
        yield Cli(server, inventory, tmp_path / "audit.jsonl")
    finally:
        await server.stop()


async def test_check_in_sync_then_drift(cli: Cli) -> None:
    status, out, _err = await cli.run("check")
    assert status == 0, out
    assert "The zone matches the inventory." in out
    await cli.nsupdate("update delete kubernetes.something.local A\n"
                       "update add kubernetes.something.local 300 A 10.10.0.10\n"
                       "update delete controller-2.something.local A")
    status, out, _err = await cli.run("check")
    assert status == 1
    assert "kubernetes    A   10.50.0.1        wrong value  (served: 10.10.0.10 TTL 300)" in out
    assert "controller-2  A   10.10.0.12       missing" in out
    status, out, _err = await cli.run("check", "--json")
    data = json.loads(out)
    assert status == 1 and not data["in_sync"] and data["extras_checked"]
    assert {d["kind"] for d in data["drift"]} == {"wrong value", "missing"}


async def test_diff_dry_run_and_apply(cli: Cli) -> None:
    await cli.nsupdate("update delete kubernetes.something.local A\n"
                       "update add kubernetes.something.local 300 A 10.10.0.10\n"
                       "update add old-vip.something.local 300 A 10.10.0.200")
    status, out, _err = await cli.run("diff", "--delete-extras")
    assert status == 1
    assert "replace kubernetes 300 A 10.50.0.1 (was 10.10.0.10 TTL 300)" in out
    assert "prereq yxrrset kubernetes.something.local. IN A 10.10.0.10" in out
    assert "update delete old-vip.something.local. A" in out
    status, out, _err = await cli.run("apply", "--dry-run")
    assert status == 0 and "Dry run: nothing was sent or written." in out
    assert await cli.dig("kubernetes.something.local") == "10.10.0.10"
    status, _out, err = await cli.run("apply")
    assert status == 2 and "needs --yes" in err
    status, out, _err = await cli.run("apply", "--yes")
    assert status == 0, out
    assert out.index("update add kubernetes.something.local. 300 A 10.50.0.1") < \
        out.index("applied:")
    assert await cli.dig("kubernetes.something.local") == "10.50.0.1"
    assert await cli.dig("old-vip.something.local") == "10.10.0.200"   # extras kept
    status, out, _err = await cli.run("check")
    assert status == 1 and "extra" in out
    assert cli.server.secret not in cli.audit.read_text()


async def test_ptr_records_without_a_reverse_zone_are_reported_not_sent(cli: Cli) -> None:
    status, out, _err = await cli.run("diff", "--ptr")
    assert status == 1
    assert "Not changed: 10.0.10.10.in-addr.arpa. PTR" in out
    assert "serves no zone for this name" in out
    status, out, _err = await cli.run("apply", "--ptr", "--yes")
    assert status == 1 and "applied" not in out and "Not changed" in out


async def test_apply_with_a_wrong_secret_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    await cli.nsupdate("update delete controller-1.something.local A")
    cli.server.write_key(cli.server.key_file,
                         secret="d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==")
    status, out, err = await cli.run("apply", "--yes", "--no-extras")
    assert status == 1, out + err
    assert "BADSIG" in out and "Nothing was changed" in out
    assert await cli.dig("controller-1.something.local") == ""
    for text in (out, err, cli.audit.read_text()):
        assert cli.server.secret not in text
        assert "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA==" not in text
    status, out, _err = await cli.run("apply", "--yes", "--json", "--no-extras")
    data = json.loads(out)
    assert status == 1 and data["status"] == "BADSIG" and data["rcode"] == "NOTAUTH"


async def test_unreachable_server_is_one_paragraph(cli: Cli) -> None:
    await cli.server.stop()
    status, _out, err = await cli.run("check", "--timeout", "0.5")
    assert status == 2 and "Traceback" not in err
    assert "did not answer" in err and "dns.server" in err
