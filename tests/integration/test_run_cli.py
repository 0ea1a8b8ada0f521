"""`hardway run` end to end: the real CLI in a subprocess against the embedded lab.

Every test runs ``python -m tui.cli run ...`` on the session's 3-controller lab and
asserts on the exact text and exit status a user would see.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tui.lab.lab import LabRunner

ROOT = Path(__file__).resolve().parents[2]
RULE = "---------------"


def block(header: str, *lines: str) -> str:
    """A gathered block as `hardway run -b` prints it."""
    return f"{RULE}\n{header}\n{RULE}\n" + "".join(f"{line}\n" for line in lines)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A hermetic environment: audit log and host-key records in a temp state dir."""
    state = tmp_path_factory.mktemp("state")
    values = dict(os.environ)
    values.update({"XDG_STATE_HOME": str(state), "XDG_CONFIG_HOME": str(state / "config"),
                   "NO_COLOR": "1", "PYTHONPATH": str(ROOT)})
    return values


@pytest.fixture(scope="module")
def inventory(lab_runner: LabRunner) -> Path:
    return lab_runner.lab.inventory_path


def hardway(env: dict[str, str], *args: str, cwd: Path = ROOT,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `hardway run ARGS` and capture its output."""
    return subprocess.run([sys.executable, "-m", "tui.cli", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_gathered_identical_output_is_one_block(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "-b", "--", "echo same")
    assert result.stdout == block("controller-[0-2] (3)", "same")
    assert result.stderr == ""
    assert result.returncode == 0


def test_gathered_per_host_variables(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "-b", "--", 'echo "$ETCD_NAME"; uname -s')
    system = os.uname().sysname
    assert result.stdout == (
        block("controller-0 (1)", "controller-0", system)
        + block("controller-1 (1)", "controller-1", system)
        + block("controller-2 (1)", "controller-2", system)
    )
    assert result.returncode == 0


def test_diff_against_majority(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--diff", "--",
                     "echo etcd; test {name} = controller-1 && echo odd || echo even; echo ok")
    assert result.stdout == (
        block("controller-[0,2] (2)", "etcd", "even", "ok")
        + "--- controller-[0,2] (2)\n"
        "+++ controller-1 (1)\n"
        "@@ -1,3 +1,3 @@\n"
        " etcd\n"
        "-even\n"
        "+odd\n"
        " ok\n"
    )
    assert result.returncode == 0


def test_exit_status_is_the_largest_and_failures_are_summarised(
        env: dict[str, str], inventory: Path) -> None:
    command = ("echo {name}; case {name} in controller-1) exit 3;; controller-2) exit 1;; "
               "esac")
    result = hardway(env, "-i", str(inventory), "-b", "--", command)
    assert result.returncode == 3
    assert result.stdout == (
        block("controller-0 (1)", "controller-0")
        + block("controller-1 (1) exited with exit code 3", "controller-1")
        + block("controller-2 (1) exited with exit code 1", "controller-2")
    )
    assert result.stderr == (
        "controller-1: exited with exit code 3\n"
        "controller-2: exited with exit code 1\n"
    )


def test_same_exit_code_failures_fold_in_the_summary(env: dict[str, str],
                                                     inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--", "test {name} = controller-0")
    assert result.stdout == ""
    assert result.stderr == "controller-[1-2]: exited with exit code 1\n"
    assert result.returncode == 1


def test_unreachable_host_is_255_and_others_answer(env: dict[str, str], inventory: Path,
                                                   lab_runner: LabRunner) -> None:
    lab_runner.call(lab_runner.lab.stop_host, "controller-1")
    try:
        result = hardway(env, "-i", str(inventory), "-b", "--", "echo up", timeout=30)
    finally:
        lab_runner.call(lab_runner.lab.start_host, "controller-1")
    assert result.returncode == 255
    assert result.stdout == block("controller-[0,2] (2)", "up")
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("controller-1: unreachable: ")
    assert "refused" in lines[0]


@pytest.fixture
def silent_listener(lab_runner: LabRunner) -> Iterator[tuple[str, int]]:
    """A TCP port that accepts connections and never says a word (a hung sshd)."""
    address = lab_runner.lab.network + ".99"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        sock.listen(16)
        yield address, sock.getsockname()[1]


def test_hung_host_does_not_delay_the_others(env: dict[str, str], inventory: Path,
                                             tmp_path: Path,
                                             silent_listener: tuple[str, int]) -> None:
    address, port = silent_listener
    text = inventory.read_text()
    text, count = re.subn(r'(name = "controller-1"\n(?:[^\[\n].*\n)*)',
                          rf'\1ssh = {{ host = "{address}", port = {port} }}\n', text)
    assert count == 1
    hung = tmp_path / "inventory.toml"
    hung.write_text(text)
    # controller-1's connect would wait ten minutes: the others' results must come first
    argv = [sys.executable, "-m", "tui.cli", "run", "-i", str(hung), "--json",
            "--connect-timeout", "600", "--", "echo {name}"]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    got: dict[str, dict[str, Any]] = {}
    watchdog = threading.Timer(30, process.kill)  # had they waited, this ends the test
    watchdog.start()
    try:
        for line in process.stdout:
            record = json.loads(line)
            got[record["host"]] = record
            if {"controller-0", "controller-2"} <= set(got):
                break
        hung_meanwhile = process.poll() is None
        process.send_signal(signal.SIGINT)  # Ctrl-C: give up on the hung host
        _, stderr = process.communicate(timeout=30)
    finally:
        watchdog.cancel()
    assert hung_meanwhile and sorted(got) == ["controller-0", "controller-2"], (got, stderr)
    for name in ("controller-0", "controller-2"):
        assert got[name]["stdout"] == f"{name}\n" and got[name]["status"] == 0
    assert process.returncode != 0


def test_timeout_kills_and_reports(env: dict[str, str], inventory: Path,
                                   lab_runner: LabRunner) -> None:
    result = hardway(env, "-i", str(inventory), "--json", "--timeout", "1", "--",
                     "echo start; sleep 300; echo never", timeout=60)  # ends only if killed
    assert result.returncode == 124
    assert result.stderr == "controller-[0-2]: timed out after 1 s (killed)\n"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(r["host"] for r in records) == ["controller-0", "controller-1",
                                                  "controller-2"]
    for record in records:
        assert record["timed_out"] is True
        assert record["stdout"] == "start\n"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(lab_runner.lab.pids(n) for n in
                                              lab_runner.lab.names):
        time.sleep(0.1)
    assert not any(lab_runner.lab.pids(n) for n in lab_runner.lab.names)


def test_timeout_is_beaten_by_a_larger_exit_code(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--timeout", "1", "--",
                     "test {name} = controller-0 && exit 200; sleep 30")
    assert result.returncode == 200
    # the shell on a killed host may report "Terminated" on stderr: live lines, not summary
    summary = [line for line in result.stderr.splitlines() if " (stderr): " not in line]
    assert summary == [
        "controller-[1-2]: timed out after 1 s (killed)",
        "controller-0: exited with exit code 200",
    ]


def test_json_one_object_per_host(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--json", "--",
                     "echo out-{name}; echo err >&2; exit 2")
    assert result.returncode == 2
    records = sorted((json.loads(line) for line in result.stdout.splitlines()),
                     key=lambda r: r["host"])
    assert [r["host"] for r in records] == ["controller-0", "controller-1", "controller-2"]
    for record in records:
        assert set(record) == {"host", "status", "signal", "timed_out", "duration", "stdout",
                               "stderr", "error"}
        assert record["stdout"] == f"out-{record['host']}\n"
        assert record["stderr"] == "err\n"
        assert record["status"] == 2 and record["error"] is None
        assert record["signal"] is None and record["timed_out"] is False
        assert 0 < record["duration"] < 10


def test_live_output_prefixes_lines_and_marks_stderr(env: dict[str, str],
                                                     inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--", "echo a; echo b >&2; printf c")
    assert sorted(result.stdout.splitlines()) == [
        f"controller-{i}: {text}" for i in range(3) for text in ("a", "c")
    ]
    assert sorted(result.stderr.splitlines()) == [
        f"controller-{i} (stderr): b" for i in range(3)
    ]
    assert result.returncode == 0


@pytest.mark.parametrize(("options", "expected"), [
    (["-w", "controller-[0-1]", "-x", "controller-1"], ["controller-0"]),
    (["-w", "@controllers", "-x", "controller-0,controller-2"], ["controller-1"]),
    (["-w", "controller-2", "-w", "controller-0"], ["controller-0", "controller-2"]),
    (["-x", "@workers,controller-[1-2]"], ["controller-0"]),
])
def test_host_selection(env: dict[str, str], inventory: Path, options: list[str],
                        expected: list[str]) -> None:
    result = hardway(env, "-i", str(inventory), *options, "--", "echo $HOST_NAME")
    assert sorted(result.stdout.splitlines()) == [f"{n}: {n}" for n in expected]
    assert result.returncode == 0


def test_unknown_host_is_a_user_error(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "-w", "controller-7", "--", "true")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("hardway: unknown host controller-7")
    assert "Traceback" not in result.stderr


def test_json_and_gather_conflict(env: dict[str, str], inventory: Path) -> None:
    result = hardway(env, "-i", str(inventory), "--json", "-b", "--", "true")
    assert result.returncode == 2
    assert "--json cannot be combined with -b or --diff" in result.stderr


def test_missing_inventory_names_the_places_looked(env: dict[str, str],
                                                   tmp_path: Path) -> None:
    result = hardway(env, "--", "true", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("hardway: no inventory given and none found")
    assert "hardway.toml" in result.stderr and "Traceback" not in result.stderr


def test_default_inventory_in_current_directory(env: dict[str, str], inventory: Path,
                                                tmp_path: Path) -> None:
    (tmp_path / "hardway.toml").write_text(inventory.read_text())
    result = hardway(env, "-b", "-w", "controller-0", "--", "echo here", cwd=tmp_path)
    assert result.stdout == block("controller-0 (1)", "here")
    assert result.returncode == 0


def test_lint_errors_block_run_before_anything_runs(env: dict[str, str], inventory: Path,
                                                    lab_runner: LabRunner,
                                                    tmp_path: Path) -> None:
    vip_in_nodes = lab_runner.lab.network + ".5"
    text, count = re.subn(r'(?m)^vip = ".*"$', f'vip = "{vip_in_nodes}"',
                          inventory.read_text())
    assert count == 1
    linted = tmp_path / "inventory.toml"
    linted.write_text(text)
    marker = tmp_path / "ran"
    result = hardway(env, "-i", str(linted), "-b", "-w", "controller-0", "--",
                     f"touch {marker}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"hardway: {linted}: run refused: the inventory has 1 "
                                    "error")
    assert f"  - api.vip: api.vip {vip_in_nodes} is inside networks.nodes" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("where", ["/dev/full", "directory"])
def test_unwritable_audit_log_stops_run_before_anything_runs(
        env: dict[str, str], inventory: Path, tmp_path: Path, where: str) -> None:
    audit = str(tmp_path) if where == "directory" else where
    marker = f"audit-probe-{where.strip('/').replace('/', '-')}"
    result = hardway(env, "-i", str(inventory), "--audit", audit, "-w", "controller-0", "--",
                     f"echo ran > {marker}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"hardway: the audit log {audit} cannot be written (")
    assert "nothing was run" in result.stderr
    check = hardway(env, "-i", str(inventory), "-b", "-w", "controller-0", "--",
                    f"cat {marker} 2>/dev/null || echo absent")
    assert check.stdout == block("controller-0 (1)", "absent")
