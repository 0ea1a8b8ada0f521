"""Repository-wide pytest hooks.

Under CI (CI=true) a test that skips because a real component (sshd, BIND, etcd,
openssl) is missing is a failure: CI installs them, so a skip means a broken setup.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time

import pytest

STRICT = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

if STRICT:
    # CI runs the same examples every time (a fuzz finding is fixed from a local run, not
    # discovered as a random red CI); locally hypothesis keeps exploring.
    from hypothesis import settings as _hypothesis

    _hypothesis.register_profile("ci", derandomize=True, print_blob=True)
    _hypothesis.load_profile("ci")

#: A hung test must end the run with the stacks that show where, not eat CI's whole budget:
#: pytest-timeout fails a test after its ``timeout``, but a teardown that hangs after that
#: (an event loop waiting on cancelled tasks) is beyond its reach.
TEST_LIMIT = float(os.environ.get("HARDWAY_TEST_LIMIT", "300"))
SUITE_LIMIT = float(os.environ.get("HARDWAY_SUITE_LIMIT", "1500"))


class _Watchdog:
    """A daemon thread that ends the run (stacks on stderr, exit 3) when one test, its
    setup and teardown included, runs past TEST_LIMIT or the whole suite past SUITE_LIMIT."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.monotonic()
        self.test: tuple[str, float] | None = None
        threading.Thread(target=self._watch, name="suite-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(5.0)
            now = time.monotonic()
            current = self.test
            if current is not None and now - current[1] > TEST_LIMIT:
                self._end(f"{current[0]} has run for {now - current[1]:.0f} s "
                          f"(HARDWAY_TEST_LIMIT={TEST_LIMIT:.0f})")
            if now - self.started > SUITE_LIMIT:
                where = current[0] if current else "between tests"
                self._end(f"the suite has run for {now - self.started:.0f} s "
                          f"(HARDWAY_SUITE_LIMIT={SUITE_LIMIT:.0f}), now in {where}")

    def _end(self, reason: str) -> None:
        capture = self.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:  # give fd 2 back, or the stacks vanish with the test's output
            capture.suspend_global_capture(in_=False)
        sys.stderr.write(f"\n\nWATCHDOG: {reason}; stacks of every thread follow.\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(3)


_WATCHDOG: _Watchdog | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the watchdog."""
    global _WATCHDOG
    _WATCHDOG = _Watchdog(session.config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    """Tell the watchdog which test runs, from its setup to its teardown."""
    if _WATCHDOG is not None:
        _WATCHDOG.test = (item.nodeid, time.monotonic())
    yield
    if _WATCHDOG is not None:
        _WATCHDOG.test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Turn skips into failures when running in CI."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must not happen: {reason}"


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep history, audit logs, transcripts and recorded host keys out of the real home."""
    base = tmp_path_factory.mktemp("xdg")
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        path = base / name.lower()
        path.mkdir()
        monkeypatch.setenv(name, str(path))
