"""Plan and Step: check/preview/apply/verify per host, parallel and rolling, stop on failure."""

from __future__ import annotations

import asyncio

import pytest

from tui.core.errors import UserError
from tui.core.plan import (
    Plan,
    PlanEvent,
    Preview,
    Step,
    StepFailed,
    file_change,
    file_removal,
)

HOSTS = ["controller-0", "controller-1", "controller-2"]


class Recorder:
    """Collects plan events and a log of what the callables did, in order."""

    def __init__(self) -> None:
        self.events: list[PlanEvent] = []
        self.log: list[str] = []

    def __call__(self, event: PlanEvent) -> None:
        self.events.append(event)

    def states(self, step: str, host: str) -> list[str]:
        return [e.state for e in self.events if e.step == step and e.host == host]

    def action(self, label: str, *, fail_on: str | None = None, delay: float = 0.0,
               result: str | None = None):
        async def act(host: str) -> str | None:
            self.log.append(f"{label}:{host}")
            if delay:
                await asyncio.sleep(delay)
            if host == fail_on:
                raise StepFailed(f"{label} refused on {host}")
            return result
        return act


async def test_parallel_runs_hosts_at_once_and_steps_in_order() -> None:
    rec = Recorder()
    started: set[str] = set()
    everyone = asyncio.Event()

    async def put(host: str) -> None:  # finishes only once every host has started
        rec.log.append(f"put:{host}")
        started.add(host)
        if started == set(HOSTS):
            everyone.set()
        await everyone.wait()

    plan = Plan([Step("put files", HOSTS, apply=put),
                 Step("restart", HOSTS, apply=rec.action("restart"))])
    result = await asyncio.wait_for(plan.run(rec), 30)  # one host at a time never ends
    assert result.ok and result.not_started == []
    assert rec.log[:3] == [f"put:{h}" for h in HOSTS]
    assert sorted(rec.log[3:]) == sorted(f"restart:{h}" for h in HOSTS)
    for host in HOSTS:
        assert rec.states("put files", host) == ["pending", "running", "done"]
    assert result.touched_hosts() == HOSTS


async def test_check_skips_a_host_that_needs_nothing() -> None:
    rec = Recorder()

    async def check(host: str) -> str | None:
        return "files already in place" if host == "controller-1" else None

    plan = Plan([Step("put files", HOSTS, check=check, apply=rec.action("put"))])
    result = await plan.run(rec)
    assert result.ok
    assert rec.log == ["put:controller-0", "put:controller-2"]
    assert rec.states("put files", "controller-1") == ["pending", "checking", "skipped"]
    skipped = result.states[("put files", "controller-1")]
    assert skipped.detail == "files already in place"
    assert "controller-1" not in result.touched_hosts()


async def test_parallel_failure_stops_before_the_next_step() -> None:
    rec = Recorder()
    plan = Plan([Step("put files", HOSTS, apply=rec.action("put", fail_on="controller-1")),
                 Step("restart", HOSTS, apply=rec.action("restart"))])
    result = await plan.run(rec)
    assert not result.ok
    assert result.failure is not None
    assert (result.failure.step, result.failure.host) == ("put files", "controller-1")
    assert result.failure.detail == "put refused on controller-1"
    assert not any(entry.startswith("restart") for entry in rec.log)
    assert result.not_started == [("restart", h) for h in HOSTS]


async def test_rolling_goes_host_by_host_behind_the_gate() -> None:
    rec = Recorder()
    plan = Plan([Step("put files", HOSTS, apply=rec.action("put")),
                 Step("restart", HOSTS[:2], apply=rec.action("restart"))],
                mode="rolling", gate=rec.action("gate", result="livez 200"))
    result = await plan.run(rec)
    assert result.ok
    assert rec.log == ["put:controller-0", "restart:controller-0", "gate:controller-0",
                       "put:controller-1", "restart:controller-1", "gate:controller-1",
                       "put:controller-2", "gate:controller-2"]
    gate = result.states[("health gate", "controller-0")]
    assert gate.state == "done" and gate.detail == "livez 200"
    assert gate.duration is not None and gate.duration >= 0


async def test_rolling_stops_at_a_host_that_does_not_come_back() -> None:
    rec = Recorder()
    plan = Plan([Step("put files", HOSTS, apply=rec.action("put")),
                 Step("restart", HOSTS, apply=rec.action("restart"))],
                mode="rolling", gate=rec.action("gate", fail_on="controller-1"))
    result = await plan.run(rec)
    assert result.failure is not None
    assert (result.failure.step, result.failure.host) == ("health gate", "controller-1")
    assert "controller-2" not in " ".join(rec.log)
    assert result.untouched_hosts() == ["controller-2"]
    assert result.touched_hosts() == ["controller-0", "controller-1"]
    assert ("put files", "controller-2") in result.not_started


async def test_verify_failure_fails_the_step() -> None:
    rec = Recorder()
    plan = Plan([Step("restart", HOSTS[:1], apply=rec.action("restart", result="restarted"),
                      verify=rec.action("verify", fail_on="controller-0"))])
    result = await plan.run(rec)
    assert result.failure is not None and result.failure.detail == (
        "verify refused on controller-0")


async def test_user_error_and_unexpected_errors_become_failed_events() -> None:
    async def user_error(host: str) -> str:
        raise UserError(f"Cannot read /etc/etcd/ca.pem from {host}: no such file.")

    async def bug(host: str) -> str:
        raise KeyError("oops")

    for action, expected in ((user_error, "Cannot read /etc/etcd/ca.pem from h: no such file."),
                             (bug, "internal error: KeyError: 'oops'")):
        result = await Plan([Step("s", ["h"], apply=action)]).run()
        assert result.failure is not None and result.failure.detail == expected


async def test_step_timeout() -> None:
    rec = Recorder()
    cancelled: list[str] = []

    async def slow(host: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(host)
            raise

    plan = Plan([Step("slow", ["h"], apply=slow, timeout=0.1)])
    result = await asyncio.wait_for(plan.run(rec), 30)
    assert cancelled == ["h"]  # the step's timeout ended it, not its own end
    assert result.failure is not None
    assert result.failure.detail == "did not finish within 0.1 s"


async def test_cancelling_a_run_reports_the_running_step() -> None:
    rec = Recorder()
    plan = Plan([Step("slow", ["h"], apply=rec.action("slow", delay=5))])
    task = asyncio.create_task(plan.run(rec))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.states("slow", "h")[-1] == "failed"
    assert rec.events[-1].detail == "cancelled"


async def test_preview_per_host_changes_nothing() -> None:
    rec = Recorder()

    async def check(host: str) -> str | None:
        return "up to date" if host == "controller-2" else None

    async def preview(host: str) -> Preview:
        return Preview(commands=(f"systemctl restart kube-apiserver # {host}",),
                       files=(file_change("/etc/etcd/ca.pem", b"new\n", b"old\n"),))

    plan = Plan([Step("put", HOSTS, check=check, preview=preview, apply=rec.action("put"))],
                mode="rolling")
    previews = await plan.preview()
    assert rec.log == []
    assert list(previews) == HOSTS
    first = previews["controller-0"][0]
    assert first.step == "put" and first.done is None
    assert first.preview.commands == ("systemctl restart kube-apiserver # controller-0",)
    assert previews["controller-2"][0].done == "up to date"


def test_file_change_diffs_text_and_hides_secrets() -> None:
    change = file_change("/etc/etcd/x.conf", b"a\nb\n", b"a\nc\n")
    assert change.changed and change.old_size == 4 and change.size == 4
    assert change.diff is not None
    assert "--- a/etc/etcd/x.conf" in change.diff and "+b" in change.diff and "-c" in change.diff
    assert change.fingerprint.startswith("SHA256:") and len(change.fingerprint) == 23

    key = b"-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"
    secret = file_change("/etc/etcd/kubernetes-key.pem", key, None, mode=0o600, secret=True)
    assert secret.diff is None and secret.changed and secret.old_size is None

    same = file_change("/etc/etcd/ca.pem", b"x\n", b"x\n")
    assert not same.changed and same.diff is None

    binary = file_change("/bin/tool", b"\0\1\2", b"\0\1")
    assert binary.diff is None and binary.changed

    new = file_change("/etc/new", b"line\n", None)
    assert new.diff is not None and new.diff.startswith("--- /dev/null")


def test_file_removal() -> None:
    gone = file_removal("/var/run/kubernetes/apiserver.crt", b"pem")
    assert gone.removed and gone.changed and gone.size == 0
    absent = file_removal("/var/run/kubernetes/apiserver.crt", None)
    assert not absent.changed


def test_preview_empty() -> None:
    assert Preview().empty
    assert not Preview(commands=("true",)).empty
    assert Preview(files=(file_change("/x", b"1", b"1"),)).empty


def test_duplicate_step_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Plan([Step("a", ["h"]), Step("a", ["h"])])
