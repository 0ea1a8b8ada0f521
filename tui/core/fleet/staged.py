"""Write a set of files on one host as a unit: stage everything, journal, then switch.

:func:`put_file` is atomic for one file; a certificate and its key are two files, and a
client killed between them leaves a host whose next restart loads a mismatched pair.  A
:class:`StagedWrite` does it in three phases:

1. **stage**: every changed file goes to a temp name beside its target (``.NAME.hardway-tmp-
   XXXXXXXX``, mode set, ``fsync``-ed) and the current version is linked to
   ``NAME.hardway-bak``; then the journal (:data:`JOURNAL_PATH` under the host's root: each
   target, its temp, whether it existed, the new content's SHA-256) is written atomically.
   Nothing the host reads has changed yet.
2. the caller records the change locally (``last-push.json``) -- *before* anything is
   replaced, so ``push --restore`` always knows every file it must undo;
3. **switch**: the renames are sent back to back in the caller's order (a certificate
   next to its key), pipelined on one SFTP channel, then the journal is removed.

A journal left on a host means a write set was interrupted: :func:`read_journal` returns it
(``certs check`` turns it into findings), :func:`settle` removes its temps and the journal
(the next push writes every file again; a restore puts the backups back, which were made
before any switch).  :func:`sweep_temps` removes the temps interrupted puts left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import hashlib
import json
import posixpath
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncssh

from tui.core.errors import UserError
from tui.core.fleet.connection import HostConnection, HostUnavailable
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.sftp import BACKUP_SUFFIX, TEMP_MARK, temp_name
from tui.core.fleet.staged_sudo import (
    SudoFailed,
    compare_script,
    stage_script,
    sudo_read,
    sudo_remove,
    sudo_run,
    sudo_sweep,
    sudo_switch,
    upload_private,
)
from tui.core.inventory.model import Host

JOURNAL_PATH = "/var/lib/hardway/pending-write.json"
"""Logical path of the journal of an unfinished write set (under the host's root)."""

_ERRORS = (asyncssh.SFTPError, asyncssh.Error, OSError, HostUnavailable)


class StagingFailed(UserError):
    """A write set could not be staged or switched; ``switched`` says how far it got."""

    def __init__(self, message: str, *, switched: bool) -> None:
        super().__init__(message)
        self.switched = switched


@dataclass(frozen=True)
class FileWrite:
    """One file of a write set.

    Attributes:
        path: logical remote path.
        data: the new content.
        mode: permission bits.
    """

    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class JournalEntry:
    """One file of a staged write set, as the host's journal records it.

    Attributes:
        path: logical path.
        target: the path on the host (after ``root``).
        temp: the staged temp file on the host.
        existed: a previous version was linked to ``target + BACKUP_SUFFIX``.
        sha256: the new content's digest (compare with the target to see if it switched).
    """

    path: str
    target: str
    temp: str
    existed: bool
    sha256: str


@dataclass
class Journal:
    """An unfinished (or just staged) write set on one host."""

    host: str
    label: str
    started: str
    entries: list[JournalEntry] = field(default_factory=list)

    def to_json(self) -> bytes:
        """The journal file's content."""
        return (json.dumps({"label": self.label, "started": self.started,
                            "files": [e.__dict__ for e in self.entries]}, indent=2)
                + "\n").encode()

    @classmethod
    def parse(cls, host: str, data: bytes) -> Journal:
        """Read a journal file (raises ValueError when it is not one)."""
        raw = json.loads(data.decode("utf-8"))
        entries = [JournalEntry(str(e["path"]), str(e["target"]), str(e["temp"]),
                                bool(e["existed"]), str(e["sha256"])) for e in raw["files"]]
        return cls(host, str(raw.get("label", "")), str(raw.get("started", "")), entries)


@dataclass
class StagedWrite:
    """A staged write set on one host (see the module docstring).

    Attributes:
        journal: what was staged (only the files whose content or mode changes).
        unchanged: logical paths already holding the new content and mode.
    """

    fleet: Fleet
    name: str
    journal: Journal
    unchanged: list[str]
    sudo: bool = False

    @property
    def changed(self) -> list[JournalEntry]:
        """The staged files, in switch order."""
        return list(self.journal.entries)

    async def switch(self) -> None:
        """Rename every staged file over its target, back to back, then drop the journal.

        Raises:
            StagingFailed: the connection failed during the switch (``switched`` True: some
                files may be new; the journal stays so ``certs check`` reports it).
        """
        if not self.journal.entries:
            return
        hc, host = _parts(self.fleet, self.name)
        if self.sudo:
            try:
                await sudo_switch(self.fleet, self.name,
                                  [(e.temp, e.target) for e in self.journal.entries],
                                  host.path(JOURNAL_PATH))
            except SudoFailed as exc:
                raise StagingFailed(
                    f"the switch of {len(self.journal.entries)} staged files on {self.name} "
                    f"was interrupted ({exc}): some may be new and some old; `hardway certs "
                    "check` shows which, the next push finishes it and `push --restore` "
                    "undoes it", switched=True) from None
            return
        try:
            sftp = await hc.sftp()
            renames = [sftp.posix_rename(e.temp, e.target) for e in self.journal.entries]
            await asyncio.gather(*renames)
        except _ERRORS as exc:
            raise StagingFailed(
                f"the switch of {len(self.journal.entries)} staged files on {self.name} was "
                f"interrupted ({_reason(exc)}): some may be new and some old; `hardway certs "
                "check` shows which, the next push finishes it and `push --restore` undoes "
                "it", switched=True) from None
        with contextlib.suppress(*_ERRORS):
            await sftp.remove(host.path(JOURNAL_PATH))


def _parts(fleet: Fleet, name: str) -> tuple[HostConnection, Host]:
    return fleet._connection(name), fleet.host(name)  # same package


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HostUnavailable):
        return exc.reason
    if isinstance(exc, asyncssh.SFTPFailure) and str(exc.reason).strip() == "Failure":
        return ("SFTP said only 'Failure': usually a read-only file system or a full disk "
                "on the host")
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _same(sftp: asyncssh.SFTPClient, target: str, data: bytes, mode: int) -> bool | None:
    """True when ``target`` holds ``data`` with ``mode``; None when it does not exist."""
    try:
        attrs = await sftp.stat(target)
    except asyncssh.SFTPNoSuchFile:
        return None
    if attrs.size != len(data) or (attrs.permissions or 0) & 0o7777 != mode:
        return False
    async with sftp.open(target, "rb") as handle:
        return bool(await handle.read() == data)


async def _write(sftp: asyncssh.SFTPClient, path: str, data: bytes, mode: int) -> None:
    async with sftp.open(path, "wb", attrs=asyncssh.SFTPAttrs(permissions=mode)) as handle:
        await handle.write(data)
        with contextlib.suppress(asyncssh.SFTPOpUnsupported):
            await handle.fsync()
    await sftp.chmod(path, mode)


async def stage(fleet: Fleet, name: str, files: Sequence[FileWrite], *,
                label: str, sudo: bool = False) -> StagedWrite:
    """Stage ``files`` on ``name`` (phase 1): temps written, backups linked, journal written.

    An earlier unfinished write set on the host is settled first (see :func:`settle`).
    With ``sudo`` (a login that is not root) the contents go through the login's home and
    ``sudo -n`` (see :mod:`tui.core.fleet.staged_sudo`).

    Raises:
        StagingFailed: a file could not be staged (``switched`` False: every target is
            as it was; the temps written so far are removed when the connection allows).
    """
    if sudo:
        return await _stage_sudo(fleet, name, files, label=label)
    hc, host = _parts(fleet, name)
    journal = Journal(name, label, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    unchanged: list[str] = []
    sftp: asyncssh.SFTPClient | None = None
    doing = ""  # the file being written when it fails: SFTP's reason may be just 'Failure'
    try:
        await settle(fleet, name)
        sftp = await hc.sftp()
        for item in files:
            target = host.path(item.path)
            same = await _same(sftp, target, item.data, item.mode)
            if same:
                unchanged.append(item.path)
                continue
            doing = target
            await sftp.makedirs(posixpath.dirname(target) or "/", exist_ok=True)
            entry = JournalEntry(item.path, target, temp_name(target), same is not None,
                                 _sha(item.data))
            journal.entries.append(entry)
            doing = entry.temp
            await _write(sftp, entry.temp, item.data, item.mode)
        for entry in journal.entries:
            if entry.existed:
                backup = doing = entry.target + BACKUP_SUFFIX
                with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                    await sftp.remove(backup)
                try:
                    await sftp.link(entry.target, backup)
                except (asyncssh.SFTPOpUnsupported, asyncssh.SFTPFailure):
                    await sftp.copy(entry.target, backup, preserve=True)
        if journal.entries:
            where = host.path(JOURNAL_PATH)
            await sftp.makedirs(posixpath.dirname(where), exist_ok=True)
            temp = doing = temp_name(where)
            await _write(sftp, temp, journal.to_json(), 0o600)
            await sftp.posix_rename(temp, where)
    except (*_ERRORS, UserError) as exc:
        if sftp is not None:
            for entry in journal.entries:
                with contextlib.suppress(*_ERRORS):
                    await sftp.remove(entry.temp)
        at = f" writing {doing}" if doing else ""
        raise StagingFailed(f"could not stage {label} on {name}{at} ({_reason(exc)}); every "
                            "file there is as it was", switched=False) from None
    return StagedWrite(fleet, name, journal, unchanged)


async def _stage_sudo(fleet: Fleet, name: str, files: Sequence[FileWrite], *,
                      label: str) -> StagedWrite:
    host = fleet.host(name)
    journal = Journal(name, label, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    directories: list[str] = []
    temps: list[str] = []
    try:
        await settle(fleet, name, sudo=True)
        directory, staged = await upload_private(fleet, name, [f.data for f in files])
        directories.append(directory)
        targets = [host.path(f.path) for f in files]
        _status, out = await sudo_run(fleet, name, compare_script(
            [(t, s, f.mode) for t, s, f in zip(targets, staged, files, strict=True)]),
            what=f"compare the {label} with the files in place")
        state: dict[str, str] = {}
        for line in out.splitlines():
            word, _, index_text = line.partition(" ")
            state[index_text] = word
        unchanged, items = [], []
        for index, (item, target, copy) in enumerate(zip(files, targets, staged, strict=True)):
            found = state.get(str(index), "new")
            if found == "same":
                unchanged.append(item.path)
                continue
            entry = JournalEntry(item.path, target, temp_name(target), found == "existed",
                                 _sha(item.data))
            journal.entries.append(entry)
            items.append((target, entry.temp, copy, item.mode, entry.existed))
        if journal.entries:
            directory, [journal_copy] = await upload_private(fleet, name,
                                                             [journal.to_json()])
            directories.append(directory)
            temps = [e.temp for e in journal.entries]
            await sudo_run(fleet, name, stage_script(items, (host.path(JOURNAL_PATH),
                                                             journal_copy)),
                           what=f"stage the {label}")
    except UserError as exc:
        with contextlib.suppress(UserError):
            await sudo_remove(fleet, name, temps)
        raise StagingFailed(f"could not stage {label} on {name} ({exc}); every file there "
                            "is as it was", switched=False) from None
    finally:
        for directory in directories:
            await _drop(fleet, name, directory)
    return StagedWrite(fleet, name, journal, unchanged, sudo=True)


async def _drop(fleet: Fleet, name: str, directory: str) -> None:
    """Remove the login's own staging directory (best effort)."""
    parent = posixpath.dirname(directory)
    await fleet.run([name], f"rm -rf {shlex.quote(directory)}; rmdir {shlex.quote(parent)} "
                    "2>/dev/null; true", timeout=30.0)


async def read_journal(fleet: Fleet, name: str, *, sudo: bool = False) -> Journal | None:
    """The unfinished write set recorded on ``name``, or None.

    Raises:
        UserError: the host cannot be reached or the journal cannot be read.
    """
    hc, host = _parts(fleet, name)
    if sudo:
        raw = await sudo_read(fleet, name, host.path(JOURNAL_PATH))
        if raw is None:
            return None
        try:
            return Journal.parse(name, raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"The write journal {host.path(JOURNAL_PATH)} on {name} is not "
                            f"readable ({exc}); remove it after checking the files.") from None
    try:
        sftp = await hc.sftp()
        async with sftp.open(host.path(JOURNAL_PATH), "rb") as handle:
            data = await handle.read()
    except asyncssh.SFTPNoSuchFile:
        return None
    except _ERRORS as exc:
        raise UserError(f"Cannot read the write journal on {name}: {_reason(exc)}.") from None
    try:
        return Journal.parse(name, data if isinstance(data, bytes) else data.encode())
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"The write journal {host.path(JOURNAL_PATH)} on {name} is not "
                        f"readable ({exc}); remove it after checking the files.") from None


async def settle(fleet: Fleet, name: str, *, sudo: bool = False) -> Journal | None:
    """Remove the temps and the journal of an unfinished write set on ``name``.

    Files already switched stay switched (the caller rewrites or restores them).

    Returns:
        The journal that was settled, or None when there was none.
    """
    journal = await read_journal(fleet, name, sudo=sudo)
    if journal is None:
        return None
    hc, host = _parts(fleet, name)
    if sudo:
        await sudo_remove(fleet, name, [*(e.temp for e in journal.entries),
                                        host.path(JOURNAL_PATH)])
        return journal
    sftp = await hc.sftp()
    for entry in journal.entries:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(entry.temp)
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(host.path(JOURNAL_PATH))
    return journal


async def sweep_temps(fleet: Fleet, name: str, paths: Iterable[str], *,
                      remove: bool = True, sudo: bool = False) -> list[str]:
    """Temp files of interrupted writes next to the logical ``paths`` on ``name``.

    Only ``.NAME.hardway-tmp-*`` files of the listed targets' directories are touched (and
    never the temps of a journal still being written: call :func:`settle` for those).

    Returns:
        The temp files found (removed unless ``remove`` is False).
    """
    hc, host = _parts(fleet, name)
    by_directory: dict[str, set[str]] = {}
    for path in paths:
        directory, base = posixpath.split(host.path(path))
        by_directory.setdefault(directory, set()).add(base)
    if sudo:
        swept = await sudo_sweep(fleet, name, by_directory)
        if remove:
            await sudo_remove(fleet, name, swept)
        return swept
    try:
        sftp = await hc.sftp()
    except HostUnavailable:
        return []
    found: list[str] = []
    for directory, bases in by_directory.items():
        try:
            listing = await sftp.listdir(directory)
        except _ERRORS:
            continue
        for entry in sorted(str(n) for n in listing):
            if any(fnmatch.fnmatchcase(entry, f".{b}{TEMP_MARK}*") for b in bases):
                found.append(posixpath.join(directory, entry))
    if remove:
        for temp in found:
            with contextlib.suppress(*_ERRORS):
                await sftp.remove(temp)
    return found
