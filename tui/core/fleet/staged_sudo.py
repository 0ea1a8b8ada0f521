"""The staged write set of :mod:`tui.core.fleet.staged` for a login that is not root.

Most real hosts are reached as an ordinary user with ``sudo``: SFTP cannot write
/var/lib/kubernetes there.  The same three phases then run as:

1. the new contents go over SFTP into a private directory in the login's home
   (``~/.hardway-staging/XXXXXXXX``, 0700, files 0600);
2. one ``sudo -n`` script per phase on the host: compare each target with its staged copy
   (content and mode), copy the changed ones to their temp names beside their targets
   (mode set, synced), link the backups, and write the same journal as a root login
   would (:data:`~tui.core.fleet.staged.JOURNAL_PATH`);
3. the switch is one ``sudo -n`` shell running the renames back to back (a certificate
   next to its key), then removing the journal.

The user's staging directory is removed as soon as the temps are in place.  A ``sudo``
that wants a password fails before anything changes, with one paragraph naming the
host (:func:`tui.core.fleet.command.needs_sudo_password`).
"""

from __future__ import annotations

import base64
import posixpath
import secrets
import shlex
from collections.abc import Iterable, Sequence

from tui.core.errors import UserError
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.sftp import BACKUP_SUFFIX, TEMP_MARK, temp_name

__all__ = ["STAGING_DIR", "SudoFailed", "sudo_read", "sudo_read_many", "sudo_run",
           "sudo_sweep",
           "sudo_switch", "upload_private"]

STAGING_DIR = ".hardway-staging"
"""Under the login's home: where a non-root push puts the new contents first."""
SUDO_TIMEOUT = 60.0


class SudoFailed(UserError):
    """A ``sudo -n`` script failed on a host; the message names the host and why."""


async def sudo_run(fleet: Fleet, name: str, script: str, *, what: str,
                   ok: Sequence[int] = (0,)) -> tuple[int, str]:
    """Run ``script`` as root through ``sudo -n`` on ``name``; (status, stdout).

    Raises:
        SudoFailed: sudo refused (a password is wanted, not installed), the host is
            unreachable, or the status is not in ``ok``.
    """
    result = (await fleet.run([name], script, sudo=True, timeout=SUDO_TIMEOUT))[name]
    if result.error is not None:
        raise SudoFailed(f"Cannot {what} on {name}: {result.error}")
    if result.timed_out or result.status is None:
        raise SudoFailed(f"Cannot {what} on {name}: `sudo -n sh -c ...` did not finish "
                         f"within {SUDO_TIMEOUT:g} s.")
    if result.status not in ok:
        tail = " / ".join((result.stderr.strip() or result.stdout.strip()).splitlines()[-3:])
        raise SudoFailed(f"Cannot {what} on {name}: the sudo script exited {result.status}"
                         + (f" ({tail[:300]})" if tail else "") + ".")
    return result.status, result.stdout


async def upload_private(fleet: Fleet, name: str,
                         contents: Sequence[bytes]) -> tuple[str, list[str]]:
    """Put ``contents`` into a fresh private directory in the login's home over SFTP.

    Returns:
        The directory and one path per content, in order.

    Raises:
        UserError: the home cannot be found or written.
    """
    home = (await fleet.run([name], 'printf %s "$HOME"', timeout=SUDO_TIMEOUT))[name]
    if not home.ok or not home.stdout.startswith("/"):
        raise UserError(f"Cannot find the login's home directory on {name} "
                        f"({home.error or home.stderr.strip() or 'no $HOME'}).")
    directory = posixpath.join(home.stdout, STAGING_DIR, secrets.token_hex(4))
    hc = fleet._connection(name)  # same package
    import asyncssh

    try:
        sftp = await hc.sftp()
        await sftp.makedirs(directory, attrs=asyncssh.SFTPAttrs(permissions=0o700))
        await sftp.chmod(posixpath.dirname(directory), 0o700)
        await sftp.chmod(directory, 0o700)
        paths = []
        for index, data in enumerate(contents):
            path = posixpath.join(directory, str(index))
            async with sftp.open(path, "wb",
                                 attrs=asyncssh.SFTPAttrs(permissions=0o600)) as handle:
                await handle.write(data)
            paths.append(path)
    except (asyncssh.Error, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"Cannot stage files in {directory} on {name} (the login's own "
                        f"directory): {reason}.") from None
    return directory, paths


def compare_script(pairs: Sequence[tuple[str, str, int]]) -> str:
    """For each (target, staged copy, mode): ``same I``, ``existed I`` or ``new I``."""
    lines = []
    for index, (target, staged, mode) in enumerate(pairs):
        t, s = shlex.quote(target), shlex.quote(staged)
        lines.append(f'if [ -f {t} ] && cmp -s {s} {t} && [ "$(stat -c %a {t})" = '
                     f"'{mode:o}' ]; then echo 'same {index}'; elif [ -e {t} ]; then "
                     f"echo 'existed {index}'; else echo 'new {index}'; fi")
    return "\n".join(lines)


def stage_script(items: Sequence[tuple[str, str, str, int, bool]], journal: tuple[str, str],
                 ) -> str:
    """Copy each staged file to its temp (target, temp, staged, mode, existed), link the
    backups, then move the journal's staged copy into place (0600)."""
    lines = ["set -e"]
    for target, temp, staged, mode, existed in items:
        t, tmp, s = shlex.quote(target), shlex.quote(temp), shlex.quote(staged)
        lines += [f"mkdir -p {shlex.quote(posixpath.dirname(target) or '/')}",
                  f"cp {s} {tmp}", f"chmod {mode:o} {tmp}"]
        if existed:
            bak = shlex.quote(target + BACKUP_SUFFIX)
            lines += [f"rm -f {bak}", f"ln {t} {bak} 2>/dev/null || cp -p {t} {bak}"]
    lines.append("sync")
    where, staged_journal = journal
    temp = temp_name(where)
    lines += [f"mkdir -p {shlex.quote(posixpath.dirname(where))}",
              f"cp {shlex.quote(staged_journal)} {shlex.quote(temp)}",
              f"chmod 600 {shlex.quote(temp)}", f"mv -f {shlex.quote(temp)} {shlex.quote(where)}"]
    return "\n".join(lines)


def switch_script(renames: Sequence[tuple[str, str]], journal: str) -> str:
    """The renames back to back in one shell, then the journal removed."""
    moves = " && ".join(f"mv -f {shlex.quote(temp)} {shlex.quote(target)}"
                        for temp, target in renames)
    return f"{moves} && rm -f {shlex.quote(journal)}"


async def sudo_switch(fleet: Fleet, name: str, renames: Sequence[tuple[str, str]],
                      journal: str) -> None:
    """Phase 3 with sudo (raises SudoFailed)."""
    await sudo_run(fleet, name, switch_script(renames, journal),
                   what="switch the staged files")


async def sudo_read(fleet: Fleet, name: str, path: str) -> bytes | None:
    """``path`` read as root (None: it does not exist). Text files only (the journal)."""
    quoted = shlex.quote(path)
    status, out = await sudo_run(fleet, name, f"[ -e {quoted} ] || exit 3; cat {quoted}",
                                 what=f"read {path}", ok=(0, 3))
    return None if status == 3 else out.encode()


async def sudo_read_many(fleet: Fleet, name: str,
                         paths: Sequence[str]) -> dict[str, bytes | None]:
    """Several files read as root in one ``sudo -n`` round trip (None: absent)."""
    if not paths:
        return {}
    script = "; ".join(f"printf '\\n--- {i}\\n'; if [ -e {shlex.quote(p)} ]; then "
                       f"base64 {shlex.quote(p)} | tr -d '\\n'; else printf '-'; fi"
                       for i, p in enumerate(paths))
    _status, out = await sudo_run(fleet, name, script, what="read the private files")
    found: dict[str, bytes | None] = dict.fromkeys(paths)
    for chunk in out.split("\n--- ")[1:]:
        index, _, body = chunk.partition("\n")
        body = body.strip()
        if index.isdigit() and int(index) < len(paths) and body != "-":
            found[paths[int(index)]] = base64.b64decode(body)
    return found


async def sudo_remove(fleet: Fleet, name: str, paths: Iterable[str]) -> None:
    """``rm -f`` the paths as root."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    if quoted:
        await sudo_run(fleet, name, f"rm -f {quoted}", what="remove staged files")


async def sudo_sweep(fleet: Fleet, name: str, directories: dict[str, set[str]]) -> list[str]:
    """Temp files of interrupted writes in ``directories`` (dir -> target base names)."""
    script = "; ".join(f"for f in {shlex.quote(d)}/.*{TEMP_MARK}*; do [ -e \"$f\" ] && "
                       "printf '%s\\n' \"$f\"; done" for d in directories) + "; true"
    _status, out = await sudo_run(fleet, name, script, what="look for leftover temp files")
    found = []
    for line in out.splitlines():
        directory, base = posixpath.split(line.strip())
        if any(base.startswith(f".{b}{TEMP_MARK}") for b in directories.get(directory, ())):
            found.append(line.strip())
    return sorted(found)
