"""A local file for every host in the set: run it as a script, or put it at a path.

KTHW users keep their steps in local scripts and config files; today they paste them.
:func:`read_local` reads what may be sent (a regular file, at most :data:`MAX_SIZE`,
text for scripts), :func:`script_command` wraps a script into one command that each
host's shell runs whole (``bash -s`` reading a quoted heredoc, so nothing in it is
expanded before bash runs it), and :func:`put_text` gives each host's copy with
``{name}`` / ``{ip}`` / ``{VAR}`` replaced when asked.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tui.core.errors import UserError
from tui.core.fleet.command import substitute, values_for
from tui.core.inventory.model import Host

MAX_SIZE = 1 << 20
"""The largest file sent (1 MiB): scripts and configs, not releases (use ``scp``)."""


@dataclass(frozen=True)
class LocalFile:
    """A file read for sending.

    Attributes:
        path: where it was read.
        data: its bytes.
        mode: its permission bits (kept on the hosts).
    """

    path: Path
    data: bytes
    mode: int

    def text(self) -> str:
        """The content as UTF-8 text.

        Raises:
            UserError: it is not text.
        """
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            raise UserError(f"{self.path} is not UTF-8 text, so it cannot be sent as a "
                            "script or with {name} substitution; copy it as it is instead "
                            "(leave substitution off).") from None


def read_local(path: str | Path) -> LocalFile:
    """Read ``path`` (``~`` expanded) for sending.

    Raises:
        UserError: missing, not a regular file, unreadable or larger than MAX_SIZE.
    """
    local = Path(os.path.expanduser(str(path))).resolve()
    try:
        info = local.stat()
    except OSError as error:
        raise UserError(f"Cannot send {path}: {error.strerror or error}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"Cannot send {path}: it is not a regular file.")
    if info.st_size > MAX_SIZE:
        raise UserError(f"Cannot send {path}: it has {info.st_size:,} bytes, more than the "
                        f"{MAX_SIZE:,} this sends; copy large files with scp or "
                        "`hardway run`.")
    try:
        data = local.read_bytes()
    except OSError as error:
        raise UserError(f"Cannot read {path}: {error.strerror or error}.") from None
    return LocalFile(local, data, stat.S_IMODE(info.st_mode))


def script_command(text: str) -> str:
    """One command that runs ``text`` with bash on the host, whole: a quoted heredoc, so
    the host's shell expands nothing before bash reads it (its ``$VARS`` are the host's,
    at run time)."""
    marker = "HARDWAY_SCRIPT"
    lines = set(text.splitlines())
    number = 0
    while marker in lines:
        number += 1
        marker = f"HARDWAY_SCRIPT_{number}"
    return f"bash -s <<'{marker}'\n{text.rstrip(chr(10))}\n{marker}"


def put_text(local: LocalFile, host: Host, substitute_values: bool) -> bytes:
    """``host``'s copy of ``local``: as it is, or with its placeholders replaced."""
    if not substitute_values:
        return local.data
    return substitute(local.text(), values_for(host)).encode()


def remote_path(path: str, host: Host) -> str:
    """The absolute remote path for ``host`` (``{name}`` and the like replaced).

    Raises:
        UserError: the path is not absolute.
    """
    result = substitute(path.strip(), values_for(host))
    if not result.startswith("/"):
        raise UserError(f"The remote path {path!r} must be absolute (e.g. /etc/etcd/x.conf).")
    return result
