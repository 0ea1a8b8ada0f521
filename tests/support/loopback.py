"""Loopback /24s for test servers that never collide between the suite's workers.

``make test`` runs two pytest-xdist workers at once; both start labs, etcd clusters and
sshds.  Each worker takes a 127.W.0.0/16 of its own (W: its number, 0 when the suite runs
serially), so two workers never meet; within it, the process ID spreads concurrent
pytest runs (several people on one machine) over ``span`` networks from ``base``.
"""

from __future__ import annotations

import os


def worker_number() -> int:
    """This pytest-xdist worker's number (``gw1`` -> 1), 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) % 200 if digits.isdigit() else 0


def network(base: int, span: int, attempt: int = 0) -> str:
    """``127.W.N``: W the worker's number, N in ``base .. base + span - 1`` chosen by the
    process ID (``attempt``: the next one, after an address found in use)."""
    return f"127.{worker_number()}.{base + (os.getpid() + attempt) % span}"
