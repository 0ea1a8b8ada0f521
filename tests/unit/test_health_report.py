"""The round's verdict, summary line, table and JSON."""

from __future__ import annotations

import json

from tui.core.health.model import Kind, Outcome, Status
from tui.core.health.report import (
    CellSnapshot,
    RoundReport,
    Verdict,
    judge,
    render_text,
    summarize,
    to_json,
)
from tui.core.health.states import State


def cell(row: str, kind: Kind, state: State, status: Status = Status.OK,
         detail: str = "fine", counter: str = "", **facts: object) -> CellSnapshot:
    outcome = Outcome(status, detail, 0.003, f"verbose {detail}", 1.0, dict(facts))
    return CellSnapshot(f"{row}/{kind.value}", row, kind, f"target {row}", state, counter,
                        outcome, False, 1)


def healthy() -> list[CellSnapshot]:
    cells = []
    for i in range(3):
        cells += [cell(f"c{i}", Kind.ETCD_HEALTH, State.UP), cell(f"c{i}", Kind.READYZ, State.UP)]
    cells.append(cell("vip", Kind.VIP_ADDRESS, State.UP, failed_fraction=0.0))
    return cells


def test_healthy_when_everything_is_up_and_ok() -> None:
    assert judge(healthy()) == (Verdict.HEALTHY, ())
    assert Verdict.HEALTHY.exit_code == 0


def test_degraded_names_each_cell_that_is_not_clean() -> None:
    cells = healthy()
    cells[0] = cell("c0", Kind.ETCD_HEALTH, State.DOWN, Status.FAIL, "refused")
    cells[1] = cell("c0", Kind.READYZ, State.UP, Status.FAIL, "readyz 500", "1/3 DOWN")
    verdict, reasons = judge(cells)
    assert verdict is Verdict.DEGRADED and verdict.exit_code == 1
    assert reasons == ("c0 etcd DOWN: refused", "c0 readyz 1/3 DOWN: readyz 500")


def test_down_without_a_ready_api_server_etcd_quorum_or_the_vip() -> None:
    no_ready = [c if c.kind is not Kind.READYZ else
                cell(c.row, Kind.READYZ, State.DOWN, Status.FAIL) for c in healthy()]
    assert judge(no_ready)[0] is Verdict.DOWN
    assert "no API server is ready (0/3)" in judge(no_ready)[1]
    quorum = healthy()
    quorum[0] = cell("c0", Kind.ETCD_HEALTH, State.DOWN, Status.FAIL)
    quorum[2] = cell("c1", Kind.ETCD_HEALTH, State.DOWN, Status.FAIL)
    verdict, reasons = judge(quorum)
    assert verdict is Verdict.DOWN and reasons == ("etcd has no quorum (1/3 members up)",)
    assert Verdict.DOWN.exit_code == 2
    one_down = healthy()
    one_down[0] = quorum[0]
    assert judge(one_down)[0] is Verdict.DEGRADED
    vip = healthy()
    vip[-1] = cell("vip", Kind.VIP_ADDRESS, State.DOWN, Status.FAIL, "18/18 failed",
                   failed_fraction=1.0)
    assert judge(vip)[0] is Verdict.DOWN


def test_summary_counts_rows_and_the_vip_share() -> None:
    cells = healthy()
    cells[1] = cell("c0", Kind.READYZ, State.DOWN, Status.FAIL)
    cells[-1] = cell("vip", Kind.VIP_ADDRESS, State.UP, Status.WARN, "6/18 failed",
                     failed_fraction=1 / 3)
    summary = summarize(cells)
    assert " · ".join(str(s) for s in summary) == "etcd 3/3 · apiserver 2/3 · vip 67% ok"


def test_text_and_json() -> None:
    cells = healthy()
    cells[0] = cell("c0", Kind.ETCD_HEALTH, State.DOWN, Status.FAIL, "nothing listens",
                    "1/2 UP")
    verdict, reasons = judge(cells)
    report = RoundReport(4, 0.0, 0.012, tuple(cells), verdict, reasons, summarize(cells))
    text = render_text(report)
    assert text.splitlines()[0].startswith("round 4 at ")
    assert "DEGRADED  etcd 2/3 · apiserver 3/3 · vip 100% ok" in text
    assert "  c0   etcd    DOWN 1/2 UP" in text and "nothing listens" in text
    data = to_json(report, verbose=True)
    json.dumps(data)
    assert data["verdict"] == "degraded" and data["exit_code"] == 1
    first = data["probes"][0]  # type: ignore[index]
    assert first["state"] == "down" and first["counter"] == "1/2 UP"
    assert first["status"] == "fail" and first["verbose"] == "verbose nothing listens"
    assert data["summary"]["vip"] == {"ok_fraction": 1.0}  # type: ignore[index]
