"""The workbench every host-touching command opens (from its common options)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tui.core.inventory.model import Host, Inventory
    from tui.core.workbench import Workbench


def open_workbench(inventory: Inventory, args: argparse.Namespace, *,
                   err: TextIO | None = None, pki: Path | None = None,
                   extra_hosts: Sequence[Host] = ()) -> Workbench:
    """The :class:`~tui.core.workbench.Workbench` for a command: strict host keys unless
    ``--accept-new`` (each recorded key reported on ``err``), the audit log of
    ``--audit`` (default the XDG state dir), ``--connect-timeout``."""
    from tui.core.workbench import Workbench

    stream = err if err is not None else sys.stderr

    def notify(message: str) -> None:
        print(f"hardway: {message}", file=stream, flush=True)

    audit = getattr(args, "audit", None)
    return Workbench(inventory, pki_dir=pki,
                     host_keys="accept-new" if getattr(args, "accept_new", False) else "strict",
                     notify=notify, audit_path=Path(audit) if audit else None,
                     connect_timeout=getattr(args, "connect_timeout", 10.0),
                     extra_hosts=extra_hosts)
