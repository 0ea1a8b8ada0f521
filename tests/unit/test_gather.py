"""Gathering per-host results like ``clush -b``, diffs, failure summaries, exit status."""

from __future__ import annotations

import io
import json

from tui.core.fleet.events import Exited, Failed, Output
from tui.core.gather import (
    HostOutcome,
    exit_status,
    failures,
    gather,
    render_blocks,
    render_diff,
    render_failures,
)
from tui.core.runreport import LivePrinter, RunRecorder, host_colour


def ok(host: str, output: str) -> HostOutcome:
    return HostOutcome(host, output, status=0)


def test_identical_output_and_status_make_one_block() -> None:
    outcomes = [ok(f"controller-{i}", "same\n") for i in (2, 0, 1)]
    blocks = gather(outcomes)
    assert len(blocks) == 1
    assert blocks[0].hosts == ("controller-0", "controller-1", "controller-2")
    assert render_blocks(blocks) == (
        "---------------\n"
        "controller-[0-2] (3)\n"
        "---------------\n"
        "same\n"
    )


def test_same_output_different_exit_code_are_separate_blocks() -> None:
    outcomes = [
        ok("controller-0", "x\n"),
        HostOutcome("controller-1", "x\n", status=1),
        ok("controller-2", "x\n"),
    ]
    assert render_blocks(gather(outcomes)) == (
        "---------------\n"
        "controller-[0,2] (2)\n"
        "---------------\n"
        "x\n"
        "---------------\n"
        "controller-1 (1) exited with exit code 1\n"
        "---------------\n"
        "x\n"
    )


def test_blocks_ordered_by_size_then_natural_name() -> None:
    outcomes = [
        ok("worker-10", "b\n"),
        ok("worker-2", "c\n"),
        ok("controller-0", "a\n"),
        ok("controller-1", "a\n"),
    ]
    blocks = gather(outcomes)
    assert [b.hosts for b in blocks] == [
        ("controller-0", "controller-1"),
        ("worker-2",),
        ("worker-10",),
    ]


def test_trailing_newline_does_not_split_a_group() -> None:
    blocks = gather([ok("a-0", "line"), ok("a-1", "line\n")])
    assert len(blocks) == 1 and blocks[0].lines == ("line",)


def test_empty_output_block_has_no_lines() -> None:
    assert render_blocks(gather([ok("h-0", ""), ok("h-1", "")])) == (
        "---------------\nh-[0-1] (2)\n---------------\n"
    )


def test_hosts_that_never_ran_are_not_blocks() -> None:
    outcomes = [ok("c-0", "x\n"), HostOutcome("c-1", error="connection refused")]
    blocks = gather(outcomes)
    assert [b.hosts for b in blocks] == [("c-0",)]


def test_diff_against_majority_names_host_sets() -> None:
    outcomes = [
        ok("controller-0", "etcd\nversion 3.4\nready\n"),
        ok("controller-1", "etcd\nversion 3.5\nready\n"),
        ok("controller-2", "etcd\nversion 3.4\nready\n"),
    ]
    assert render_diff(gather(outcomes)) == (
        "---------------\n"
        "controller-[0,2] (2)\n"
        "---------------\n"
        "etcd\n"
        "version 3.4\n"
        "ready\n"
        "--- controller-[0,2] (2)\n"
        "+++ controller-1 (1)\n"
        "@@ -1,3 +1,3 @@\n"
        " etcd\n"
        "-version 3.4\n"
        "+version 3.5\n"
        " ready\n"
    )


def test_diff_same_output_different_ending_gets_a_note() -> None:
    outcomes = [ok("c-0", "x\n"), ok("c-1", "x\n"), HostOutcome("c-2", "x\n", status=3)]
    text = render_diff(gather(outcomes))
    assert text.endswith(
        "--- c-[0-1] (2)\n"
        "+++ c-2 (1) exited with exit code 3\n"
        "  (same output)\n"
    )


def test_diff_of_one_group_is_just_the_block() -> None:
    blocks = gather([ok("c-0", "x\n"), ok("c-1", "x\n")])
    assert render_diff(blocks) == render_blocks(blocks)
    assert render_diff([]) == ""


def test_diff_colour_marks_added_and_removed_lines() -> None:
    text = render_diff(gather([ok("c-0", "a\n"), ok("c-1", "a\n"), ok("c-2", "b\n")]),
                       colour=True)
    assert "\x1b[31m-a\x1b[0m" in text
    assert "\x1b[32m+b\x1b[0m" in text


def test_failures_grouped_by_reason() -> None:
    outcomes = [
        ok("controller-0", ""),
        HostOutcome("controller-1", status=1),
        HostOutcome("controller-2", status=1),
        HostOutcome("worker-0", error="connection refused by 127.0.10.20 port 2222"),
        HostOutcome("controller-3", "partial\n", timed_out=True),
        HostOutcome("worker-1", signal="KILL"),
    ]
    assert render_failures(failures(outcomes, timeout=5)) == (
        "controller-[1-2]: exited with exit code 1\n"
        "controller-3: timed out after 5 s (killed)\n"
        "worker-0: unreachable: connection refused by 127.0.10.20 port 2222\n"
        "worker-1: killed by signal KILL\n"
    )


def test_unreachable_prefix_not_doubled() -> None:
    outcome = HostOutcome("w-0", error="unreachable: no route")
    assert outcome.ending() == "unreachable: no route"


def test_timeout_without_value() -> None:
    assert HostOutcome("w-0", timed_out=True).ending() == "timed out (killed)"
    assert HostOutcome("w-0", timed_out=True).ending(0.5) == "timed out after 0.5 s (killed)"


def test_exit_status_is_largest_code() -> None:
    assert exit_status([]) == 0
    assert exit_status([ok("a", ""), ok("b", "")]) == 0
    assert exit_status([ok("a", ""), HostOutcome("b", status=3), HostOutcome("c", status=1)]) == 3


def test_exit_status_timeout_is_124_unless_larger() -> None:
    timed = HostOutcome("a", timed_out=True)
    assert exit_status([timed, HostOutcome("b", status=1)]) == 124
    assert exit_status([timed, HostOutcome("b", status=200)]) == 200


def test_exit_status_unreachable_is_255() -> None:
    down = HostOutcome("a", error="connection refused")
    assert exit_status([down, HostOutcome("b", status=1), HostOutcome("c", timed_out=True)]) == 255


def test_exit_status_signal_is_128_plus_number() -> None:
    assert exit_status([HostOutcome("a", signal="TERM")]) == 143
    assert exit_status([HostOutcome("a", signal="SIGKILL")]) == 137
    assert exit_status([HostOutcome("a", signal="WEIRD")]) == 255


# --- runreport: turning Fleet events into live lines, outcomes and JSON ---------------


def test_live_printer_buffers_partial_lines_until_newline_or_exit() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = LivePrinter(out, err, ["controller-0", "worker-1"], colour=False)
    printer.feed(Output("controller-0", "stdout", "hel"))
    printer.feed(Output("worker-1", "stdout", "a\nb"))
    assert out.getvalue() == "worker-1:     a\n"
    printer.feed(Output("controller-0", "stdout", "lo\nwor"))
    printer.feed(Output("controller-0", "stderr", "oops\n"))
    printer.feed(Exited("controller-0", 0, 0.1))
    assert out.getvalue() == (
        "worker-1:     a\n"
        "controller-0: hello\n"
        "controller-0: wor\n"
    )
    assert err.getvalue() == "controller-0 (stderr): oops\n"
    printer.flush()
    assert out.getvalue().endswith("worker-1:     b\n")


def test_live_printer_strips_carriage_returns() -> None:
    out = io.StringIO()
    printer = LivePrinter(out, out, ["h-0"], colour=False)
    printer.feed(Output("h-0", "stdout", "pty line\r\n"))
    assert out.getvalue() == "h-0: pty line\n"


def test_live_printer_colours_host_names_stably() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = LivePrinter(out, err, ["controller-0"], colour=True)
    printer.feed(Output("controller-0", "stdout", "x\n"))
    printer.feed(Output("controller-0", "stderr", "y\n"))
    code = host_colour("controller-0")
    assert code == host_colour("controller-0")
    assert out.getvalue() == f"\x1b[{code}mcontroller-0\x1b[0m: x\n"
    assert err.getvalue() == f"\x1b[{code}mcontroller-0\x1b[0m\x1b[31m (stderr)\x1b[0m: y\n"
    assert len({host_colour(f"controller-{i}") for i in range(6)}) > 1


def test_recorder_builds_outcomes_and_json() -> None:
    ticks = iter([100.0, 102.5])
    recorder = RunRecorder(["c-0", "c-1", "c-2"], clock=lambda: next(ticks))
    assert recorder.feed(Output("c-0", "stdout", "out\n")) is None
    recorder.feed(Output("c-0", "stderr", "err\n"))
    recorder.feed(Output("c-0", "stdout", "more\n"))
    assert recorder.feed(Exited("c-0", 2, 0.25)) == "c-0"
    assert recorder.feed(Failed("c-1", "connection refused")) == "c-1"
    assert recorder.outcome("c-0") == HostOutcome("c-0", "out\nerr\nmore\n", status=2)
    assert recorder.outcome("c-1") == HostOutcome("c-1", error="connection refused")
    assert recorder.outcome("c-2").cancelled  # never reported
    assert json.loads(recorder.json_line("c-0")) == {
        "host": "c-0", "status": 2, "signal": None, "timed_out": False, "duration": 0.25,
        "stdout": "out\nmore\n", "stderr": "err\n", "error": None,
    }
    assert recorder.as_json("c-1")["duration"] == 2.5
    assert exit_status(recorder.outcomes()) == 255
