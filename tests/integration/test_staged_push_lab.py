"""Staged pushes on the lab: certificate and key never split undetected, every touched
file is recorded before it is replaced, and no temp file survives the next push.

The kill -9 loop runs the rollout's put step (stage, record, switch) in a child process
and kills it at random moments; after each kill the host either holds a matching pair or
a journal that ``certs check`` reports, the record names every file that changed, and the
next push leaves no temp file behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tui.core.fleet.fleet import Fleet
from tui.core.fleet.sftp import TEMP_MARK
from tui.core.fleet.staged import FileWrite, read_journal, stage, sweep_temps
from tui.core.inventory.model import Inventory
from tui.core.pki.inspect import key_matches
from tui.core.pki.restore import PushManifest, build_restore, journaled_hosts
from tui.core.pki.rollout import _journal_findings, switch_order
from tui.core.pki.survey import HostSurvey, Placement, RemoteFile

ROOT = Path(__file__).resolve().parents[2]
CERT = "/etc/hardway-killtest/kubernetes.pem"
KEY = "/etc/hardway-killtest/kubernetes-key.pem"
HOST = "controller-0"
KILLS = 20


def make_pair(directory: Path, stem: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kill-{stem}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def test_switch_order_puts_each_key_right_after_its_certificate() -> None:
    items = [Placement("ca-key.pem", "/k/ca-key.pem", 0o600, True, ()),
             Placement("ca.pem", "/k/ca.pem", 0o644, False, ()),
             Placement("kubernetes-key.pem", "/k/kubernetes-key.pem", 0o600, True, ()),
             Placement("x.pem", "/k/x.pem", 0o644, False, ()),
             Placement("kubernetes.pem", "/k/kubernetes.pem", 0o644, False, ())]
    assert [p.path for p in switch_order(items)] == [
        "/k/ca.pem", "/k/ca-key.pem", "/k/kubernetes.pem", "/k/kubernetes-key.pem", "/k/x.pem"]


async def listing(fleet: Fleet, directory: str) -> list[str]:
    sftp = await fleet._connection(HOST).sftp()
    return sorted(str(n) for n in await sftp.listdir(fleet.host(HOST).path(directory)))


async def test_stage_changes_nothing_until_the_switch(fleet: Fleet, tmp_path: Path) -> None:
    make_pair(tmp_path, "a")
    make_pair(tmp_path, "b")
    first = [FileWrite(CERT, (tmp_path / "a.pem").read_bytes()),
             FileWrite(KEY, (tmp_path / "a-key.pem").read_bytes(), 0o600)]
    await (await stage(fleet, HOST, first, label="test")).switch()
    second = [FileWrite(CERT, (tmp_path / "b.pem").read_bytes()),
              FileWrite(KEY, (tmp_path / "b-key.pem").read_bytes(), 0o600)]
    staged = await stage(fleet, HOST, second, label="test")
    assert [e.path for e in staged.changed] == [CERT, KEY]
    assert await fleet.get(HOST, CERT) == (tmp_path / "a.pem").read_bytes()
    journal = await read_journal(fleet, HOST)
    assert journal is not None and [e.path for e in journal.entries] == [CERT, KEY]
    names = await listing(fleet, "/etc/hardway-killtest")
    assert sum(TEMP_MARK in n for n in names) == 2
    assert "kubernetes.pem.hardway-bak" in names
    # an interruption after the certificate only: check reports it as a split pair
    sftp = await fleet._connection(HOST).sftp()
    await sftp.posix_rename(journal.entries[0].temp, journal.entries[0].target)
    cert_now, key_now = await fleet.get(HOST, CERT), await fleet.get(HOST, KEY)
    assert not key_matches(cert_now, key_now)
    survey = HostSurvey(host=fleet.host(HOST), files={
        CERT: RemoteFile(CERT, True, sha256=_sha(cert_now)),
        KEY: RemoteFile(KEY, True, sha256=_sha(key_now))})
    findings = _journal_findings(survey, journal)
    assert [f.severity for f in findings] == ["error", "error"]
    assert findings[0].message == (f"{KEY} does not match {CERT}: the key does not match the "
                                   "certificate, push was interrupted between them")
    assert "1 of 2 files switched" in findings[1].message
    # the next push settles the journal, sweeps temps and leaves a matching pair
    await (await stage(fleet, HOST, second, label="test")).switch()
    assert await read_journal(fleet, HOST) is None
    assert not [n for n in await listing(fleet, "/etc/hardway-killtest") if TEMP_MARK in n]
    assert key_matches(await fleet.get(HOST, CERT), await fleet.get(HOST, KEY))


async def settled_state(fleet: Fleet) -> None:
    """Wait until the host's files stop changing after a client was killed.

    As with OpenSSH's sshd, requests the killed client had already sent (a rename, the
    journal's write) are still carried out by the host's sftp-server until it reads EOF;
    a person running ``push --restore`` comes later than those milliseconds.
    """
    async def snapshot() -> tuple[object, ...]:
        return (await read_journal(fleet, HOST), await fleet.get(HOST, CERT),
                await fleet.get(HOST, KEY), sorted(await listing(fleet, "/etc/hardway-killtest")))
    last = await snapshot()
    for _ in range(40):
        await asyncio.sleep(0.05)
        now = await snapshot()
        if now == last:
            return
        last = now


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


async def test_kill_9_during_pushes_never_leaves_an_undetected_split(
        fleet: Fleet, inventory: Inventory, tmp_path: Path) -> None:
    from tui.core.fleet.staged import settle

    make_pair(tmp_path, "a")
    make_pair(tmp_path, "b")
    manifest_path = tmp_path / "last-push.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(18)
    await (await stage(fleet, HOST, [FileWrite(CERT, (tmp_path / "a.pem").read_bytes()),
                                     FileWrite(KEY, (tmp_path / "a-key.pem").read_bytes(),
                                               0o600)], label="test")).switch()
    # how long one push takes from "ready" to "done": the kills land inside that window
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.push_child", str(inventory.path), HOST,
         str(manifest_path), str(tmp_path), "b"], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    started = time.monotonic()
    assert child.stdout.readline().strip() == "done"
    window = time.monotonic() - started
    child.kill()
    child.wait(10)
    current = "b"
    outcomes = {"untouched": 0, "detected": 0, "switched": 0, "restored": 0}
    for turn in range(KILLS):
        before = {p: _sha(await fleet.get(HOST, p)) for p in (CERT, KEY)}
        other = "b" if current == "a" else "a"
        pause = "0.1" if turn % 2 else "0"  # every other push lingers between stage and switch
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.push_child", str(inventory.path), HOST,
             str(manifest_path), str(tmp_path), other, pause], env=env,
            stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, window * 1.1 + float(pause)))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        await settled_state(fleet)
        journal = await read_journal(fleet, HOST)
        cert, key = await fleet.get(HOST, CERT), await fleet.get(HOST, KEY)
        changed = [p for p, data in ((CERT, cert), (KEY, key)) if _sha(data) != before[p]]
        if journal is not None:
            outcomes["detected"] += 1
        else:
            assert key_matches(cert, key), "a split pair without a journal"
            outcomes["switched" if changed else "untouched"] += 1
        recorded = {e.path for e in PushManifest(manifest_path).entries(HOST)}
        assert set(changed) <= recorded, f"{changed} changed, last-push.json has {recorded}"
        if (changed or journal is not None) and rng.random() < 0.5:
            # push --restore puts back every file the interrupted push touched
            plan = build_restore(inventory, fleet, tmp_path, names=[HOST],
                                 journaled=await journaled_hosts(fleet, [HOST]))
            result = await plan.run()
            assert result.ok, result
            assert {p: _sha(await fleet.get(HOST, p)) for p in (CERT, KEY)} == before
            assert await read_journal(fleet, HOST) is None
            outcomes["restored"] += 1
        # the next push settles any journal, sweeps temps and leaves a matching pair
        await settle(fleet, HOST)
        pair = rng.choice("ab")
        await sweep_temps(fleet, HOST, [CERT, KEY])
        await (await stage(fleet, HOST, [
            FileWrite(CERT, (tmp_path / f"{pair}.pem").read_bytes()),
            FileWrite(KEY, (tmp_path / f"{pair}-key.pem").read_bytes(), 0o600)],
            label="test")).switch()
        current = pair
        assert not [n for n in await listing(fleet, "/etc/hardway-killtest") if TEMP_MARK in n]
        assert key_matches(await fleet.get(HOST, CERT), await fleet.get(HOST, KEY))
    assert outcomes["untouched"] + outcomes["detected"] + outcomes["switched"] == KILLS
    print(f"kill -9 outcomes over a {window * 1000:.0f} ms push:", outcomes)


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_certs_check_reports_an_interrupted_push_and_removes_stray_temps(
        fleet: Fleet, inventory: Inventory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tui.cli import main
    from tui.core.fleet.staged import settle

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    cert_path, key_path = "/var/lib/kubernetes/kubernetes.pem", \
        "/var/lib/kubernetes/kubernetes-key.pem"
    original = {p: await fleet.get(HOST, p) for p in (cert_path, key_path)}
    make_pair(tmp_path, "n")
    staged = await stage(fleet, HOST, [
        FileWrite(cert_path, (tmp_path / "n.pem").read_bytes()),
        FileWrite(key_path, (tmp_path / "n-key.pem").read_bytes(), 0o600)], label="test")
    sftp = await fleet._connection(HOST).sftp()
    first = staged.changed[0]
    await sftp.posix_rename(first.temp, first.target)  # killed between certificate and key
    try:
        status = await asyncio.to_thread(
            main, ["certs", "check", "-i", str(inventory.path), "-w", HOST, "--no-served"])
        out = capsys.readouterr()
        text = " ".join((out.out + out.err).split())
        assert status == 1
        assert (f"{key_path} does not match {cert_path}: the key does not match the "
                "certificate, push was interrupted between them") in text
        assert "1 of 2 files switched" in text and "hardway certs push --restore" in text
        # without a journal, stray temps are removed and reported
        await settle(fleet, HOST)
        stray = fleet.host(HOST).path("/var/lib/kubernetes/.kubernetes-key.pem"
                                      + TEMP_MARK + "deadbeef")
        async with sftp.open(stray, "wb") as handle:
            await handle.write(b"stale")
        await asyncio.to_thread(
            main, ["certs", "check", "-i", str(inventory.path), "-w", HOST, "--no-served"])
        out = capsys.readouterr()
        assert "removed 1 temp file left by an interrupted push" in " ".join(out.out.split())
        assert TEMP_MARK + "deadbeef" not in " ".join(await listing(fleet, "/var/lib/kubernetes"))
    finally:
        await settle(fleet, HOST)
        for path, data in original.items():
            await fleet.put(HOST, data, path, mode=0o600 if path == key_path else 0o644)


async def test_restore_removes_a_journal_left_before_anything_was_recorded(
        fleet: Fleet, inventory: Inventory, tmp_path: Path) -> None:
    """A push killed after staging (journal written) but before it recorded a change:
    `certs check` says to run `push --restore`, which must then clear the journal and
    its staged files instead of answering "Nothing to restore"."""
    make_pair(tmp_path, "j")
    await stage(fleet, HOST, [FileWrite(CERT, (tmp_path / "j.pem").read_bytes()),
                              FileWrite(KEY, (tmp_path / "j-key.pem").read_bytes(), 0o600)],
                label="killed before recording")
    assert await read_journal(fleet, HOST) is not None
    assert build_restore(inventory, fleet, tmp_path, names=[HOST]).steps[0].hosts == []
    plan = build_restore(inventory, fleet, tmp_path, names=[HOST],
                         journaled=await journaled_hosts(fleet, [HOST]))
    result = await plan.run()
    assert result.ok, result
    assert await read_journal(fleet, HOST) is None
    assert not [n for n in await listing(fleet, "/etc/hardway-killtest") if TEMP_MARK in n]
