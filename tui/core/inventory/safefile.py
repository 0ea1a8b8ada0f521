"""Read a small local file without hanging on a FIFO, a device or a huge file.

An inventory (and the files it names) can come from someone else: ``inventory.toml`` may
be a named pipe that never delivers, a symlink to ``/dev/zero`` or a gigabyte of text.
:func:`read_small` refuses anything that is not a regular file (checked before opening,
and again on the open descriptor) and never reads more than its limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

INVENTORY_LIMIT = 1 << 20
"""Bytes read at most from an inventory or an OpenSSH config (they are kilobytes)."""


class NotReadable(Exception):
    """The file cannot be used; ``problem`` completes "PATH ..." in plain words."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def kind(mode: int) -> str:
    """What a file of ``mode`` is, with an article: "a named pipe (FIFO)"..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable regular file ("does not exist", ...), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        target = "" if not os.path.islink(path) else f" (a symlink to {os.path.realpath(path)})"
        return f"is {kind(info.st_mode)}{target}, not a regular file"
    return None


def read_small(path: Path, limit: int = INVENTORY_LIMIT) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        NotReadable: the file is missing, unreadable, not a regular file (FIFO, device,
            socket, directory; also through a symlink) or larger than ``limit``.
    """
    problem = regular_problem(path)
    if problem is not None:
        raise NotReadable(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped between stat and open
            raise NotReadable(f"is {kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise NotReadable(f"is {info.st_size} bytes, larger than the {limit // 1024} KiB "
                              "hardway reads")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise NotReadable(f"is larger than the {limit // 1024} KiB hardway reads")
        return b"".join(chunks)
    except OSError as exc:
        raise NotReadable(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)
