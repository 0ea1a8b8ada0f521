"""Client of a lab host's control socket: what the ``systemctl``/``journalctl`` shims run.

Usage (written by the lab into each host's ``lab-bin``)::

    python -P lab_ctl.py TOOL SOCKET [ARGS...]

It sends ``{"tool": TOOL, "argv": ARGS}`` as one JSON line and copies the answer (JSON
lines ``{"o": ...}``, ``{"e": ...}``, ``{"x": status}``) to stdout, stderr and its exit
status.  Standard library only; it must not import ``tui``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory, name = os.path.split(path)
    if len(os.fsencode(path)) < 100:
        sock.connect(path)
    else:  # longer than sun_path: connect relative to the directory
        os.chdir(directory)
        sock.connect(name)
    return sock


def main(argv: list[str]) -> int:
    """Run one request; returns the exit status the lab sent."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(argv) < 2:
        print("usage: lab_ctl.py TOOL SOCKET [ARGS...]", file=sys.stderr)
        return 2
    tool, path, *args = argv
    try:
        sock = _connect(path)
    except OSError as exc:
        print(f"System has not been booted with systemd as init system (PID 1). Can't "
              f"operate.\nFailed to connect to bus: {exc.strerror or exc} "
              "(the lab's service supervisor is not running on this host)", file=sys.stderr)
        return 1
    with sock:
        sock.sendall(json.dumps({"tool": tool, "argv": args}).encode() + b"\n")
        stream = sock.makefile("rb")
        for line in stream:
            message = json.loads(line)
            if "o" in message:
                sys.stdout.buffer.write(message["o"].encode())
                sys.stdout.buffer.flush()
            elif "e" in message:
                sys.stderr.buffer.write(message["e"].encode())
                sys.stderr.buffer.flush()
            elif "x" in message:
                return int(message["x"])
    print(f"{tool}: the lab closed the connection", file=sys.stderr)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
