"""Atomic file writes and reads over SFTP.

A put never leaves a half-written target:

1. the directory is created when missing (``mkdir -p``);
2. the data goes to ``.NAME.hardway-tmp-XXXXXXXX`` in the same directory, created with the
   requested mode, then ``fsync``-ed (OpenSSH's ``fsync@openssh.com``; skipped where the
   server lacks it), ``chown``-ed when an owner is given (resolved on the host with
   ``id -u``/``getent group``; only root may give files away) and ``chmod``-ed;
3. the previous version, if any, is kept as ``NAME.hardway-bak`` -- one backup, replaced by
   every put that changes the file -- as a hard link (or a copy where links are unsupported);
4. the temp file is renamed over the target with ``posix-rename@openssh.com``.

If anything fails or the put is cancelled, the temp file is removed when the connection still
allows it; otherwise it is remembered and removed before the next put to that host.  A put
whose data, mode (and owner) already match changes nothing (``PutResult.changed`` is False).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import secrets
import shlex
import time
from dataclasses import dataclass

import asyncssh

from tui.core.audit import AuditLog
from tui.core.errors import UserError
from tui.core.fleet.connection import HostConnection, HostUnavailable
from tui.core.inventory.model import Host

BACKUP_SUFFIX = ".hardway-bak"
TEMP_MARK = ".hardway-tmp-"
OWNER_LOOKUP_TIMEOUT = 10.0

_SFTP_ERRORS = (asyncssh.SFTPError, asyncssh.Error, OSError, HostUnavailable, UserError)


class RemoteFileMissing(UserError):
    """:func:`get_file`: the file does not exist (the host answered)."""


@dataclass(frozen=True)
class PutResult:
    """The outcome of one file write on one host.

    Attributes:
        host: inventory name.
        path: the logical path (as given to ``Fleet.put``).
        remote_path: the path on the host (after the host's ``root`` prefix).
        size: bytes written.
        changed: False when the file already had this content, mode and owner.
        backup: path of the previous version kept, or None.
        duration: seconds.
        error: why the write failed (None on success); the old file is then intact.
    """

    host: str
    path: str
    remote_path: str
    size: int
    changed: bool
    backup: str | None
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file is in place."""
        return self.error is None


def temp_name(remote_path: str) -> str:
    """A fresh temp name next to ``remote_path``."""
    directory, name = posixpath.split(remote_path)
    return posixpath.join(directory, f".{name}{TEMP_MARK}{secrets.token_hex(4)}")


async def _owner_ids(conn: asyncssh.SSHClientConnection, host: Host,
                     owner: str) -> tuple[int, int]:
    """Resolve ``user[:group]`` to numeric ids on the host itself."""
    user, _, group = owner.partition(":")
    script = ('u=$(id -u -- "$1") || exit 3; '
              'if [ -n "$2" ]; then g=$(getent group "$2" | cut -d: -f3); '
              'case "$2" in *[!0-9]*) ;; *) g=$2;; esac; [ -n "$g" ] || exit 4; '
              'else g=$(id -g -- "$1") || exit 3; fi; echo "$u $g"')
    command = f"sh -c {shlex.quote(script)} hardway {shlex.quote(user)} {shlex.quote(group)}"
    result = await conn.run(command, check=False, timeout=OWNER_LOOKUP_TIMEOUT)
    if result.exit_status == 3:
        raise UserError(f"Cannot set the owner {owner!r} on {host.name}: there is no user "
                        f"{user!r} on that host.")
    if result.exit_status == 4:
        raise UserError(f"Cannot set the owner {owner!r} on {host.name}: there is no group "
                        f"{group!r} on that host.")
    try:
        uid, gid = (int(v) for v in str(result.stdout).split())
    except ValueError:
        raise UserError(f"Cannot resolve the owner {owner!r} on {host.name}: `id`/`getent` "
                        f"answered {str(result.stdout).strip()!r} "
                        f"({str(result.stderr).strip()}).") from None
    return uid, gid


async def _cleanup(sftp: asyncssh.SFTPClient, hc: HostConnection, temp: str) -> None:
    try:
        await asyncio.wait_for(sftp.remove(temp), 5.0)
    except asyncssh.SFTPNoSuchFile:
        pass
    except (asyncssh.Error, OSError, TimeoutError, asyncssh.SFTPError):
        hc.stale_temps.add(temp)


async def _remove_stale(sftp: asyncssh.SFTPClient, hc: HostConnection) -> None:
    for temp in list(hc.stale_temps):
        try:
            await sftp.remove(temp)
        except asyncssh.SFTPNoSuchFile:
            pass
        except (asyncssh.SFTPError, asyncssh.Error, OSError):
            continue
        hc.stale_temps.discard(temp)


async def _keep_backup(sftp: asyncssh.SFTPClient, remote: str, backup: str) -> None:
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(backup)
    try:
        await sftp.link(remote, backup)
    except (asyncssh.SFTPOpUnsupported, asyncssh.SFTPFailure):
        await sftp.copy(remote, backup, preserve=True)


async def put_file(hc: HostConnection, host: Host, data: bytes, path: str, *,
                   mode: int = 0o644, owner: str | None = None, backup: bool = True,
                   audit: AuditLog | None = None) -> PutResult:
    """Write ``data`` to the logical ``path`` on ``host`` atomically (see module docs)."""
    start = time.monotonic()
    remote = host.path(path)
    directory = posixpath.dirname(remote) or "/"
    temp = temp_name(remote)
    backup_path: str | None = None
    changed = True
    sftp: asyncssh.SFTPClient | None = None
    wrote_temp = renaming = False
    try:
        sftp = await hc.sftp()
        await _remove_stale(sftp, hc)
        ids = await _owner_ids(await hc.ensure(), host, owner) if owner else None
        existing = await _stat(sftp, remote)
        if existing is not None and await _same(sftp, remote, existing, data, mode, ids):
            changed = False
        else:
            await sftp.makedirs(directory, exist_ok=True)
            wrote_temp = True
            async with sftp.open(temp, "wb",
                                 attrs=asyncssh.SFTPAttrs(permissions=mode)) as handle:
                await handle.write(data)
                with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                    await handle.fsync()
            if ids is not None:
                try:
                    await sftp.chown(temp, *ids)
                except asyncssh.SFTPPermissionDenied:
                    raise UserError(
                        f"Cannot give {remote} on {host.name} to {owner}: the login user "
                        f"{hc.user or '?'} is not root, and only root may change a file's "
                        "owner; log in as root or leave the owner out.") from None
            await sftp.chmod(temp, mode)
            if backup and existing is not None:
                backup_path = remote + BACKUP_SUFFIX
                await _keep_backup(sftp, remote, backup_path)
            renaming = True
            await sftp.posix_rename(temp, remote)
            wrote_temp = False
    except asyncio.CancelledError:
        if sftp is not None and wrote_temp:
            await _cleanup(sftp, hc, temp)
        raise
    except _SFTP_ERRORS as exc:
        if sftp is not None and wrote_temp:
            await _cleanup(sftp, hc, temp)
        result = PutResult(host.name, path, remote, len(data), False, None,
                           time.monotonic() - start, _describe(exc, host, remote, renaming))
        _audit(audit, hc, result, data, mode, owner)
        return result
    result = PutResult(host.name, path, remote, len(data), changed, backup_path,
                       time.monotonic() - start)
    _audit(audit, hc, result, data, mode, owner)
    return result



async def _stat(sftp: asyncssh.SFTPClient, remote: str) -> asyncssh.SFTPAttrs | None:
    try:
        return await sftp.stat(remote)
    except asyncssh.SFTPNoSuchFile:
        return None


async def _same(sftp: asyncssh.SFTPClient, remote: str, attrs: asyncssh.SFTPAttrs,
                data: bytes, mode: int, ids: tuple[int, int] | None) -> bool:
    if attrs.size != len(data) or (attrs.permissions or 0) & 0o7777 != mode:
        return False
    if ids is not None and (attrs.uid, attrs.gid) != ids:
        return False
    async with sftp.open(remote, "rb") as handle:
        return bool(await handle.read() == data)


def _describe(exc: BaseException, host: Host, remote: str, renaming: bool = False) -> str:
    if isinstance(exc, HostUnavailable):
        return exc.reason
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return f"permission denied writing {remote} on {host.name}"
    if isinstance(exc, asyncssh.SFTPError):
        return f"cannot write {remote} on {host.name}: {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    if renaming:  # the rename was sent: it may or may not have happened
        return (f"the connection to {host.name} failed while {remote} was being replaced "
                f"({reason}); it is unknown whether it holds the new or the previous "
                "version: check it before relying on it")
    return (f"the connection to {host.name} failed while writing {remote} ({reason}); "
            "the previous file is intact (it was not yet replaced)")


async def get_file(hc: HostConnection, host: Host, path: str) -> bytes:
    """Read the logical ``path`` from ``host``.

    Raises:
        UserError: the host is unreachable or the file cannot be read.
    """
    remote = host.path(path)
    try:
        sftp = await hc.sftp()
        async with sftp.open(remote, "rb") as handle:
            data = await handle.read()
            return data if isinstance(data, bytes) else data.encode()
    except HostUnavailable as exc:
        raise UserError(f"Cannot read {remote} from {host.name}: {exc.reason}.") from None
    except asyncssh.SFTPNoSuchFile:
        raise RemoteFileMissing(f"Cannot read {remote} from {host.name}: no such file.") \
            from None
    except asyncssh.SFTPPermissionDenied:
        raise UserError(f"Cannot read {remote} from {host.name}: permission denied for "
                        f"user {hc.user or '?'}.") from None
    except (asyncssh.SFTPError, asyncssh.Error, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"Cannot read {remote} from {host.name}: {reason}.") from None


async def list_dir(hc: HostConnection, host: Host, path: str,
                   limit: int = 500) -> list[tuple[str, bool]]:
    """``(name, is_directory)`` of the entries in ``path`` on ``host`` (an absolute logical
    path, or relative to the login directory), at most ``limit`` of them.

    Raises:
        UserError: the host is unreachable or the directory cannot be listed.
    """
    remote = host.path(path) if path.startswith("/") else path
    try:
        sftp = await hc.sftp()
        entries: list[tuple[str, bool]] = []
        async for entry in sftp.scandir(remote):
            name = entry.filename if isinstance(entry.filename, str) \
                else entry.filename.decode(errors="replace")
            is_dir = entry.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
            if entry.attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK:
                with contextlib.suppress(*_SFTP_ERRORS):
                    is_dir = await sftp.isdir(posixpath.join(remote, name))
            entries.append((name, is_dir))
            if len(entries) >= limit:
                break
        return entries
    except HostUnavailable as exc:
        raise UserError(f"Cannot list {remote} on {host.name}: {exc.reason}.") from None
    except (asyncssh.SFTPError, asyncssh.Error, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"Cannot list {remote} on {host.name}: {reason}.") from None


def _audit(audit: AuditLog | None, hc: HostConnection, result: PutResult, data: bytes,
           mode: int, owner: str | None) -> None:
    if audit is None:
        return
    audit.record(host=result.host, kind="put", path=result.remote_path,
                 status=0 if result.ok else None, duration=result.duration,
                 size=result.size, sha256=hashlib.sha256(data).hexdigest(),
                 mode=f"{mode:04o}", owner=owner, changed=result.changed,
                 backup=result.backup, error=result.error, remote_user=hc.user or None)
