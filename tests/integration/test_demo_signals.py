"""A demo ended by a closed terminal (SIGHUP) or a kill (SIGTERM) cleans up as ctrl+q
does: its temporary directory, which holds the lab's CA key, is removed (issue 12 #16)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_ends_the_demo_and_removes_its_directory(tmp_path: Path, sig: int) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TMPDIR=str(tmp_path), TERM="xterm-256color",
               PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "demo"],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"connected" not in seen:  # the header's summary: the app is up
            assert time.monotonic() < deadline, seen[-2000:]
            if select.select([master], [], [], 1)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        demo_dirs = list(tmp_path.glob("hardway-demo-*"))
        assert len(demo_dirs) == 1, seen[-3000:]
        assert any(demo_dirs[0].rglob("ca-key.pem"))
        process.send_signal(sig)
        ends = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < ends:
            if select.select([master], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
        assert process.poll() == 128 + sig
        assert not demo_dirs[0].exists()
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
