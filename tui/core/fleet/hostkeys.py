"""Host-key policy: strict by default, accept-new only as an explicit choice.

Keys are looked up (with file and line, for messages) in, in order: the host's own
known_hosts files (inventory ``ssh.known_hosts``, the OpenSSH config's
``UserKnownHostsFile``), the policy's files, the product's record file
(``$XDG_STATE_HOME/hardway/known_hosts``), ``~/.ssh/known_hosts`` and
``/etc/ssh/ssh_known_hosts``.  asyncssh asks the connection's client about a key only when
it is not trusted; the client captures it and refuses, and the fleet then asks this policy:

* a key on record for that host/port that differs -> always refused ("HOST KEY CHANGED");
* an unknown key -> refused in ``strict`` mode with the fingerprint to verify; in
  ``accept-new`` mode, :attr:`HostKeyPolicy.confirm` (the app's modal) decides
  ``once``/``record``/``refuse``; without it the fingerprint is announced through
  :attr:`HostKeyPolicy.notify` and the key is recorded (``[host]:port`` form when port != 22).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import asyncssh

from tui.core.fleet.defaults import default_record_file as default_record_file

log = logging.getLogger("hardway.fleet.hostkeys")

Mode = Literal["strict", "accept-new"]
Decision = Literal["once", "record", "refuse"]

USER_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")


def key_type(key: asyncssh.SSHKey) -> str:
    """``ED25519``, ``RSA``, ``ECDSA``... as OpenSSH prints it."""
    algorithm = key.algorithm.decode()
    if algorithm.startswith("ecdsa-"):
        return "ECDSA"
    if algorithm.startswith("sk-"):
        return algorithm.split("@")[0].upper()
    return algorithm.removeprefix("ssh-").upper()


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:...`` fingerprint of ``key``."""
    return key.get_fingerprint("sha256")


def host_pattern(host: str, port: int | None) -> str:
    """``host`` or ``[host]:port`` as written in known_hosts files."""
    return host if not port or port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class HostKeyPrompt:
    """What the user is asked to confirm for an unknown host key."""

    host: str
    addr: str
    port: int
    key_type: str
    fingerprint: str


@dataclass(frozen=True)
class KnownHostEntry:
    """One key line of a known_hosts file."""

    path: Path
    line: int
    marker: str | None
    patterns: str
    key: asyncssh.SSHKey

    def matches(self, candidates: Sequence[str]) -> str | None:
        """Return the candidate (``host`` or ``[host]:port``) this line matches, if any."""
        if self.patterns.startswith("|"):
            return _hashed_match(self.patterns, candidates)
        positive: list[str] = []
        negative: list[str] = []
        for pattern in self.patterns.lower().split(","):
            if pattern.startswith("!"):
                negative.append(_escape(pattern[1:]))
            elif pattern:
                positive.append(_escape(pattern))
        for candidate in candidates:
            value = candidate.lower()
            if any(fnmatchcase(value, p) for p in negative):
                return None
        for candidate in candidates:
            value = candidate.lower()
            if any(fnmatchcase(value, p) for p in positive):
                return candidate
        return None

    @property
    def where(self) -> str:
        """``FILE:LINE`` for messages."""
        return f"{self.path}:{self.line}"


def _escape(pattern: str) -> str:
    return "".join("[[]" if ch == "[" else "[]]" if ch == "]" else ch for ch in pattern)


def _hashed_match(patterns: str, candidates: Sequence[str]) -> str | None:
    try:
        magic, salt, digest = patterns[1:].split("|")
        salt_bytes = base64.b64decode(salt)
        expected = base64.b64decode(digest)
    except ValueError:
        return None
    if magic != "1":
        return None
    for candidate in candidates:
        if hmac.compare_digest(
                hmac.new(salt_bytes, candidate.encode(), hashlib.sha1).digest(), expected):
            return candidate
    return None


@dataclass
class KnownHostsMatch:
    """Entries that apply to one host/address/port."""

    host_keys: list[KnownHostEntry] = field(default_factory=list)
    ca_keys: list[KnownHostEntry] = field(default_factory=list)
    revoked: list[KnownHostEntry] = field(default_factory=list)
    matched_as: str = ""


class _FileCache:
    """Parsed known_hosts files, re-read when their size or mtime changes."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int], list[KnownHostEntry]]] = {}

    def entries(self, path: Path) -> list[KnownHostEntry]:
        try:
            stat = path.stat()
        except OSError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        entries = list(_parse(path))
        self._files[path] = (stamp, entries)
        return entries


def _parse(path: Path) -> Iterable[KnownHostEntry]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        log.warning("cannot read known_hosts file %s: %s", path, exc.strerror)
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = None
        if line.startswith("@"):
            parts = line[1:].split(None, 2)
            if len(parts) < 3:
                continue
            marker, patterns, data = parts
        else:
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            patterns, data = parts
        try:
            key = asyncssh.import_public_key(data)
        except (asyncssh.KeyImportError, ValueError):
            continue  # certificates and unsupported key types: not ours to judge
        yield KnownHostEntry(path, number, marker, patterns, key)


class HostKeyPolicy:
    """How unknown and changed host keys are handled.

    Args:
        mode: ``strict`` (default: unknown keys are refused) or ``accept-new``.
        record_file: where accepted keys are recorded (default :func:`default_record_file`).
        known_hosts: extra known_hosts files trusted for every host.
        confirm: async callback asked about each unknown key in accept-new mode; returns
            ``once`` (trust for this session), ``record`` or ``refuse``.
        notify: called with a sentence when a key is recorded without confirmation.
        user_files: also trust ``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``
            (tests turn this off to be hermetic).
    """

    def __init__(self, mode: Mode = "strict", record_file: Path | None = None,
                 known_hosts: Sequence[Path] = (),
                 confirm: Callable[[HostKeyPrompt], Awaitable[Decision]] | None = None,
                 *, notify: Callable[[str], None] | None = None,
                 user_files: bool = True) -> None:
        if mode not in ("strict", "accept-new"):
            raise ValueError(f"host key mode must be 'strict' or 'accept-new', not {mode!r}")
        self.mode: Mode = mode
        self.record_file = Path(record_file) if record_file else default_record_file()
        self.known_hosts = [Path(p) for p in known_hosts]
        self.confirm = confirm
        self.notify = notify
        self.user_files = user_files
        self._cache = _FileCache()
        self._session: dict[tuple[str, int], list[asyncssh.SSHKey]] = {}

    def files(self, extra: Iterable[Path] = ()) -> list[Path]:
        """Every known_hosts file consulted for a host, most specific first."""
        paths = [*extra, *self.known_hosts, self.record_file]
        if self.user_files:
            paths += [USER_KNOWN_HOSTS, SYSTEM_KNOWN_HOSTS]
        unique: list[Path] = []
        for path in paths:
            resolved = Path(os.path.expanduser(path))
            if resolved not in unique:
                unique.append(resolved)
        return unique

    def lookup(self, files: Sequence[Path], host: str, addr: str,
               port: int | None) -> KnownHostsMatch:
        """Entries of ``files`` for ``host``/``addr`` on ``port`` (no port fallback)."""
        candidates = [host_pattern(host, port)]
        if addr and addr != host:
            candidates.append(host_pattern(addr, port))
        match = KnownHostsMatch()
        for path in files:
            for entry in self._cache.entries(path):
                hit = entry.matches(candidates)
                if hit is None:
                    continue
                match.matched_as = match.matched_as or hit
                if entry.marker == "revoked":
                    match.revoked.append(entry)
                elif entry.marker == "cert-authority":
                    match.ca_keys.append(entry)
                elif entry.marker is None:
                    match.host_keys.append(entry)
        return match

    def trusted(self, files: Sequence[Path], host: str, addr: str, port: int | None
                ) -> tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]:
        """(host keys, CA keys, revoked keys) for asyncssh's ``known_hosts`` callable."""
        match = self.lookup(files, host, addr, port)
        keys = [e.key for e in match.host_keys]
        keys += self._session.get((host, port or 22), [])
        return keys, [e.key for e in match.ca_keys], [e.key for e in match.revoked]

    def trust_once(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        """Trust ``key`` for ``host``:``port`` until this process ends (not recorded)."""
        self._session.setdefault((host, port), []).append(key)

    def session_keys(self) -> list[tuple[str, int, str]]:
        """Every key trusted for this process only: (host, port, OpenSSH public key)."""
        return [(host, port, key.export_public_key("openssh").decode())
                for (host, port), keys in self._session.items() for key in keys]

    async def decide(self, prompt: HostKeyPrompt) -> Decision:
        """What to do with an unknown key: always ``refuse`` in strict mode."""
        if self.mode == "strict":
            return "refuse"
        if self.confirm is not None:
            return await self.confirm(prompt)
        return "record"

    def record(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> Path:
        """Append ``key`` for ``host`` (and ``addr`` when it differs) to the record file."""
        names = [host_pattern(host, port)]
        if addr and addr != host:
            names.append(host_pattern(addr, port))
        public = key.export_public_key("openssh").decode().split()
        line = f"{','.join(names)} {public[0]} {public[1]}\n"
        self.record_file.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        fd = os.open(self.record_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        message = (f"Recorded the {key_type(key)} host key {fingerprint(key)} of "
                   f"{names[0]} in {self.record_file}.")
        log.info(message)
        if self.notify is not None:
            self.notify(message)
        return self.record_file


def unknown_message(name: str, addr: str, port: int, key: asyncssh.SSHKey) -> str:
    """The strict-mode refusal for an unknown key."""
    return (f"unknown host key for {name} ({addr}:{port}): {key_type(key)} key "
            f"{fingerprint(key)}; verify it out of band and rerun with --accept-new to "
            "record it")


def refused_message(name: str, addr: str, port: int, key: asyncssh.SSHKey) -> str:
    """The user refused an unknown key when asked."""
    return (f"host key for {name} ({addr}:{port}) refused: {key_type(key)} key "
            f"{fingerprint(key)} was not accepted")


def changed_message(name: str, addr: str, port: int, key: asyncssh.SSHKey,
                    match: KnownHostsMatch) -> str:
    """The refusal for a key that differs from the one on record."""
    entry = match.host_keys[0]
    pattern = match.matched_as or host_pattern(addr, port)
    return (f"HOST KEY CHANGED for {name} ({addr}:{port}): the key on record "
            f"({entry.where}) is {fingerprint(entry.key)}, the server offered "
            f"{fingerprint(key)}. If the host was reinstalled, remove the old line with "
            f"`ssh-keygen -R '{pattern}' -f {entry.path}`; otherwise someone may be "
            "intercepting.")


def revoked_message(name: str, addr: str, port: int, match: KnownHostsMatch) -> str:
    """The refusal for a key marked @revoked."""
    where = ", ".join(e.where for e in match.revoked) or "a known_hosts file"
    return (f"the host key of {name} ({addr}:{port}) is marked @revoked in {where}; "
            "hardway will not connect to it")


def mismatched_types_message(name: str, addr: str, port: int,
                             match: KnownHostsMatch) -> str:
    """Key exchange failed because the server offers none of the key types on record."""
    on_record = ", ".join(f"{key_type(e.key)} {fingerprint(e.key)} ({e.where})"
                          for e in match.host_keys)
    return (f"HOST KEY CHANGED for {name} ({addr}:{port}): the server offers none of the "
            f"key types on record ({on_record}). If the host was reinstalled, remove the old "
            f"line with `ssh-keygen -R '{match.matched_as}' -f {match.host_keys[0].path}`; "
            "otherwise someone may be intercepting.")
