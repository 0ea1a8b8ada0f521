"""`hardway run` killed by any signal leaves nothing running on a real OpenSSH host.

SIGINT, SIGTERM and SIGHUP make `run` interrupt the command and kill its remote process
group; SIGKILL leaves the client no say, so the remote wrapper itself notices that its
SSH session is gone and ends its process group.  Each case uses a unique sleep so the
check cannot see another test's processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import Sshd, loopback_network, running_sshd, sshd_missing_reason

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(sshd_missing_reason() is not None, reason=sshd_missing_reason() or ""),
]

ROOT = Path(__file__).resolve().parents[2]
NET = loopback_network()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), address=f"{NET}.30") as sshd:
        yield sshd


def inventory_for(tmp: Path, server: Sshd) -> Path:
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line())
    prefix = server.address.rsplit(".", 1)[0]
    path = tmp / "inventory.toml"
    path.write_text(f"""\
[cluster]
name = "signals"
domain = "signals.home.arpa"

[networks]
nodes = "{prefix}.0/24"
pods = "10.200.0.0/16"
services = "10.32.0.0/24"

[ssh]
user = "{server.user}"
port = {server.port}
identity = "{server.client_key_path}"
known_hosts = "{known}"

[[controllers]]
name = "controller-0"
address = "{server.address}"
""")
    return path


def remote(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True,
                           check=False).stdout.splitlines()
    return [line for line in found if "pgrep" not in line and "tui.cli" not in line]


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                                    signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_killed_run_leaves_no_remote_process(tmp_path: Path, server: Sshd,
                                             signum: signal.Signals) -> None:
    seconds = 1000 + int(signum) * 7 + os.getpid() % 1000
    pattern = f"sleep {seconds}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
           "XDG_STATE_HOME": str(tmp_path / "state")}
    client = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "run", "-i", str(inventory_for(tmp_path, server)),
         "--", f"sh -c '{pattern}; echo survived' & wait"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: remote(pattern), 15), "the remote sleep never started"
        client.send_signal(signum)
        _, err = client.communicate(timeout=15)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    left = [] if wait_for(lambda: not remote(pattern), 8) else remote(pattern)
    assert left == [], f"left on the host after {signum.name}: {left}"
    assert "Traceback" not in err
    if signum != signal.SIGKILL:
        assert client.returncode == 128 + int(signum), (client.returncode, err)
        assert "interrupted" in err
