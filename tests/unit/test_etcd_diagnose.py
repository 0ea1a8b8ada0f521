"""Diagnosis of etcd journals captured from real etcd 3.4 and 3.5 (tests/data/etcd-logs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.etcd_cluster import write_inventory
from tui.core.etcd.diagnose import Problem, diagnose_client_error, diagnose_journal
from tui.core.inventory.load import load_inventory
from tui.core.inventory.model import Inventory

LOGS = Path(__file__).resolve().parents[1] / "data" / "etcd-logs"
VERSIONS = ["3.4", "3.5"]

# scenario -> (journal of, expected problem, member it concerns)
EXPECTED = {
    "peer-cert-without-ip": ("controller-0", Problem.PEER_CERT_SAN, "controller-1"),
    "name-not-in-initial-cluster": ("controller-2", Problem.NAME_MISMATCH, "controller-2"),
    "url-not-matching": ("controller-1", Problem.URL_MISMATCH, "controller-1"),
    "other-cluster-data": ("controller-2", Problem.FOREIGN_DATA_DIR, "controller-2"),
    "new-state-rejoining": ("controller-2", Problem.NEW_STATE_REJOIN, "controller-2"),
    "port-in-use": ("controller-0", Problem.PORT_IN_USE, "controller-0"),
    "client-cert-refused": ("controller-0", Problem.CLIENT_CERT_REFUSED, "controller-0"),
    "alone": ("controller-0", Problem.NO_QUORUM, "controller-0"),
}


def inventory_for(lines: list[str], tmp_path: Path) -> Inventory | None:
    """The inventory of the capture's loopback network (found in the log)."""
    for line in lines:
        if m := re.search(r"127\.0\.(\d+)\.1[0-2]", line):
            return load_inventory(write_inventory(tmp_path, f"127.0.{m[1]}"))
    return None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_each_captured_failure_is_named(version: str, scenario: str, tmp_path: Path) -> None:
    journal_of, problem, concerns = EXPECTED[scenario]
    lines = (LOGS / version / scenario / f"{journal_of}.log").read_text().splitlines()
    found = diagnose_journal(journal_of, lines, inventory_for(lines, tmp_path))
    assert found, f"nothing found in {version}/{scenario}"
    first = found[0]
    assert (first.problem, first.host) == (problem, concerns), found
    assert first.summary and first.fix and first.evidence and first.seen_on == journal_of
    others = {d.problem for d in found} - {problem}
    assert others <= {Problem.NO_QUORUM, Problem.CLIENT_CERT_REFUSED, Problem.PEER_CERT_SAN}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_member_with_the_bad_certificate_sees_it_refused(version: str,
                                                             tmp_path: Path) -> None:
    lines = (LOGS / version / "peer-cert-without-ip" / "controller-1.log").read_text()
    found = diagnose_journal("controller-1", lines.splitlines(),
                             inventory_for(lines.splitlines(), tmp_path))
    assert any(d.problem == Problem.PEER_CERT_SAN for d in found)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_healthy_journal_has_no_diagnosis(version: str) -> None:
    # client-cert-refused's controller-2 only ever saw healthy traffic
    lines = (LOGS / version / "client-cert-refused" / "controller-2.log").read_text()
    assert diagnose_journal("controller-2", lines.splitlines()) == []


def test_peers_named_in_quorum_wait(tmp_path: Path) -> None:
    lines = (LOGS / "3.4" / "alone" / "controller-0.log").read_text().splitlines()
    inventory = inventory_for(lines, tmp_path)
    (found,) = diagnose_journal("controller-0", lines, inventory)
    assert "controller-1" in found.summary and "controller-2" in found.summary


def test_clock_skew_messages() -> None:
    # etcd cannot be made to drift on one machine (Go reads CLOCK_REALTIME through the
    # vDSO); these lines follow rafthttp/probing_status.go's two formats (3.4 and 3.5).
    v34 = ("2026-12-03 08:25:57.603733 W | rafthttp: the clock difference against peer "
           "7051ed635a9731e9 is too high [2.53s > 1s] (prober \"ROUND_TRIPPER_RAFT_MESSAGE\")")
    v35 = ('{"level":"warn","ts":"2026-12-03T08:26:48.833Z","caller":"rafthttp/probing_status'
           '.go:82","msg":"prober found high clock drift","round-tripper-name":'
           '"ROUND_TRIPPER_RAFT_MESSAGE","remote-peer-id":"7051ed635a9731e9","clock-drift":'
           '"2.53s","rtt":"1ms"}')
    for line in (v34, v35):
        (found,) = diagnose_journal("controller-0", [line])
        assert found.problem == Problem.CLOCK_SKEW and "2.53s" in found.summary


def test_client_error_diagnosis() -> None:
    found = diagnose_client_error("controller-0", "client-cert", "closed")
    assert found is not None and found.problem == Problem.CLIENT_CERT_REFUSED
    assert diagnose_client_error("controller-0", "refused", "x") is None


def test_a_replaced_member_restarted_with_new_state() -> None:
    """Captured from the lab's journal (etcd 3.4): controller-2 had been replaced, then its
    data dir was wiped and it was started with KTHW's `new` unit again."""
    lines = (LOGS / "3.4" / "removed-member-restarted" / "controller-2.log").read_text()
    (found,) = diagnose_journal("controller-2", lines.splitlines())
    assert found.problem == Problem.NEW_STATE_REJOIN and "removed" in found.summary
    assert "hardway etcd replace controller-2" in found.fix


def test_the_evidence_is_the_newest_line_of_a_repeated_failure() -> None:
    """Restart=on-failure repeats a failed start every 5 s: the journal then holds the same
    failure many times, and the line quoted must be the latest, not one minutes old."""
    lines = [f"Dec 04 16:4{n}:24 controller-0 etcd[{100 + n}]: 2026-12-04 16:4{n}:24.858222 C "
             "| etcdmain: listen tcp 10.10.0.10:2379: bind: address already in use"
             for n in range(3)]
    (found,) = diagnose_journal("controller-0", lines)
    assert found.problem == Problem.PORT_IN_USE
    assert found.evidence.startswith("Dec 04 16:42:24"), found.evidence


def _journal(*entries: tuple[str, str]) -> list[str]:
    """Journal lines (journalctl's short format) of ``(ident, message)`` entries."""
    return [f"Dec 04 17:{n:02d}:00 controller-0 {ident}: {message}"
            for n, (ident, message) in enumerate(entries)]


PORT = ("etcd[100]", "2026-12-04 17:00:00.000000 C | etcdmain: listen tcp "
        "10.10.0.10:2379: bind: address already in use")
NAME = ("etcd[200]", '{"level":"fatal","msg":"discovery failed","error":"couldn\'t find local '
        'name \\"etcd-0\\" in the initial cluster configuration"}')


def test_a_failure_fixed_since_an_earlier_start_is_not_diagnosed() -> None:
    """The port was freed, then the next start failed on its --name: only that is said."""
    lines = _journal(("systemd[1]", "Starting etcd..."), PORT,
                     ("systemd[1]", "etcd.service: Main process exited, code=exited, "
                                    "status=1/FAILURE"),
                     ("systemd[1]", "Stopped etcd."), ("systemd[1]", "Starting etcd..."), NAME)
    assert [d.problem for d in diagnose_journal("controller-0", lines)] == \
        [Problem.NAME_MISMATCH]
    both = diagnose_journal("controller-0", [line for line in lines if "Starting" not in line])
    assert {d.problem for d in both} == {Problem.PORT_IN_USE, Problem.NAME_MISMATCH}


def test_a_restart_that_has_logged_nothing_yet_keeps_the_failure_before_it() -> None:
    lines = _journal(("systemd[1]", "Starting etcd..."), PORT,
                     ("systemd[1]", "etcd.service: Scheduled restart job, restart counter "
                                    "is at 3."),
                     ("systemd[1]", "Starting etcd..."))
    assert [d.problem for d in diagnose_journal("controller-0", lines)] == \
        [Problem.PORT_IN_USE]


def test_lines_before_started_belong_to_the_same_start() -> None:
    """Type=notify: "Starting etcd..." then etcd's lines, "Started etcd." once it is
    ready; the lines between are that start's."""
    lines = _journal(("systemd[1]", "Starting etcd..."), PORT,
                     ("systemd[1]", "Started etcd."), ("etcd[100]", "ready to serve"))
    assert [d.problem for d in diagnose_journal("controller-0", lines)] == \
        [Problem.PORT_IN_USE]
    simple = _journal(PORT, ("systemd[1]", "Started etcd."), NAME)  # unannounced starts
    assert [d.problem for d in diagnose_journal("controller-0", simple)] == \
        [Problem.NAME_MISMATCH]
