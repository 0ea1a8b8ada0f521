"""`hardway health` without a cluster: help, probe names, errors, the printer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tui.cli import main
from tui.commands.health import _Printer, parse_kinds
from tui.core.errors import UserError
from tui.core.health.model import Kind, Outcome, Status
from tui.core.health.poller import StateChanged
from tui.core.health.report import CellSnapshot, RoundReport, judge, summarize
from tui.core.health.states import State, Transition

ROOT = Path(__file__).resolve().parents[2]


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["health", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--once", "--watch", "--json", "--interval", "-w HOSTS", "exit status",
                 "examples:", "readyz", "10259", "10257", "kubernetes.default.svc.cluster.local"):
        assert word in out


def test_probe_names() -> None:
    assert parse_kinds(["etcd,readyz", "vip"], "-p") == {Kind.ETCD_HEALTH, Kind.READYZ,
                                                        Kind.VIP_ADDRESS}
    with pytest.raises(UserError, match="'etc' is not a probe; the probes are ssh, etcd"):
        parse_kinds(["etc"], "-p")


def test_a_missing_ca_is_one_paragraph(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "cluster.toml"
    inventory.write_text((ROOT / "config" / "kthw-gcp.toml").read_text())
    status = main(["health", "-i", str(inventory), "--pki", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("hardway: The health probes verify TLS")
    assert "--pki" in err and "Traceback" not in err


def report_with_a_transition() -> tuple[RoundReport, list[StateChanged]]:
    outcome = Outcome(Status.FAIL, "etcd: nothing listens on 10.0.0.10:2379", at=0.0)
    cell = CellSnapshot("c0/etcd", "c0", Kind.ETCD_HEALTH, "https://10.0.0.10:2379/health",
                        State.DOWN, "", outcome, False, 3)
    verdict, reasons = judge([cell])
    report = RoundReport(3, 0.0, 0.01, (cell,), verdict, reasons, summarize([cell]))
    change = StateChanged("c0/etcd", "c0", Kind.ETCD_HEALTH,
                          Transition(0.0, State.UP, State.DOWN, outcome.detail))
    return report, [change]


def test_watch_prints_transitions_as_text_and_json() -> None:
    report, changes = report_with_a_transition()
    out = io.StringIO()
    _Printer(out, json_output=False, verbose=False, watch=True).round(report, changes)
    assert "c0 etcd UP -> DOWN: etcd: nothing listens on 10.0.0.10:2379" in out.getvalue()
    out = io.StringIO()
    _Printer(out, json_output=True, verbose=False, watch=True).round(report, changes)
    data = json.loads(out.getvalue())
    assert data["transitions"] == [{"key": "c0/etcd", "at": 0.0, "from": "up", "to": "down",
                                    "reason": "etcd: nothing listens on 10.0.0.10:2379"}]
    assert data["verdict"] == "down" and data["exit_code"] == 2
