"""OpenSSH conventions: which config file, which keys, and the asyncssh options per host.

A :class:`Target` is anything the fleet dials (a controller, a worker, the hypervisor as a
jump host).  :class:`OptionsFactory` builds its ``SSHClientConnectionOptions`` once per
fleet: the OpenSSH config file (the inventory's ``ssh.config``, else ``~/.ssh/config`` when it
exists) is applied for that host (Host/Match blocks, HostName, User, Port, IdentityFile,
ProxyJump...), identity files are read once and shared, ssh-agent is used when
``SSH_AUTH_SOCK`` is set (asyncssh's default), and keepalives are on.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh.misc import parse_time_interval

from tui.core.errors import UserError
from tui.core.inventory.model import Host, Hypervisor, SSHOptions

USER_CONFIG = Path("~/.ssh/config")
KEEPALIVE_INTERVAL = 15.0
KEEPALIVE_COUNT_MAX = 3
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
"""Ciphers offered first when the OpenSSH config names none: with AES-NI one call per
packet, where chacha20-poly1305 (asyncssh's first choice) builds three cipher objects per
packet -- a third of the CPU of a console pane receiving a flood."""


@dataclass(frozen=True)
class Target:
    """Something the fleet connects to.

    Attributes:
        name: inventory name (``controller-0``, ``nucklehead``).
        dial: host name or address handed to the SSH client.
        ssh: resolved SSH options.
        host: the inventory Host (None for a hypervisor).
    """

    name: str
    dial: str
    ssh: SSHOptions
    host: Host | None = None

    @property
    def jump(self) -> str | None:
        """Name of the jump host, or None (a target never jumps through itself)."""
        jump = self.ssh.jump
        return jump if jump and jump != self.name else None

    @classmethod
    def of(cls, machine: Host | Hypervisor) -> Target:
        """The target for an inventory host or hypervisor."""
        if isinstance(machine, Host):
            return cls(machine.name, machine.dial, machine.ssh, machine)
        return cls(machine.name, machine.address, machine.ssh, None)


@dataclass
class Resolved:
    """What the OpenSSH config made of a target: the address, port and user to use."""

    options: asyncssh.SSHClientConnectionOptions
    host: str
    port: int
    user: str
    known_hosts: list[Path] = field(default_factory=list)
    ciphers: Sequence[str] = ()
    """``encryption_algs`` for the connect: :data:`FAST_CIPHERS` first unless the config
    names ``Ciphers`` (then ``()``: asyncssh applies the config's list)."""


def config_paths(ssh: SSHOptions, use_user_config: bool = True) -> list[Path]:
    """The OpenSSH client config file(s) for a host: inventory's, else ~/.ssh/config."""
    if ssh.config is not None:
        if not Path(ssh.config).is_file():
            raise UserError(
                f"The OpenSSH config file {ssh.config} (inventory key ssh.config) does not "
                "exist; point ssh.config at an existing file or remove the key.")
        return [Path(ssh.config)]
    default = USER_CONFIG.expanduser()
    if use_user_config and os.access(default, os.R_OK):
        return [default]
    return []


class OptionsFactory:
    """Build and cache asyncssh client options per target (config parsed once per host).

    Args:
        connect_timeout: seconds for TCP connect + handshake + authentication.
        use_user_config: read ``~/.ssh/config`` when the inventory names no config file.
        keepalive_interval: seconds between keepalives (0 turns them off).
        keepalive_count_max: unanswered keepalives before the connection is dropped.
    """

    def __init__(self, *, connect_timeout: float, use_user_config: bool = True,
                 keepalive_interval: float = KEEPALIVE_INTERVAL,
                 keepalive_count_max: int = KEEPALIVE_COUNT_MAX) -> None:
        self.connect_timeout = connect_timeout
        self.use_user_config = use_user_config
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self._keys: dict[Path, asyncssh.SSHKey] = {}
        self._resolved: dict[str, Resolved] = {}

    def identity(self, path: Path, target: Target) -> asyncssh.SSHKey:
        """Read the private key at ``path`` once per fleet."""
        path = Path(os.path.expanduser(path))
        key = self._keys.get(path)
        if key is not None:
            return key
        if not path.is_file():
            raise UserError(
                f"The identity file {path} for {target.name} (inventory key ssh.identity) does "
                "not exist; create the key or fix the path.")
        try:
            key = asyncssh.read_private_key(str(path))
        except asyncssh.KeyImportError as exc:
            if "passphrase" in str(exc).lower():
                raise UserError(
                    f"The identity file {path} for {target.name} is protected by a passphrase; "
                    "hardway cannot prompt for it: load it into ssh-agent (`ssh-add "
                    f"{path}`) and remove ssh.identity, or use an unencrypted key.") from None
            raise UserError(
                f"The identity file {path} for {target.name} (inventory key ssh.identity) is "
                f"not a private key asyncssh can read: {exc}.") from None
        except OSError as exc:
            raise UserError(f"The identity file {path} for {target.name} cannot be read: "
                            f"{exc.strerror}.") from None
        self._keys[path] = key
        return key

    async def resolve(self, target: Target) -> Resolved:
        """Options for ``target`` (cached; the config file is read on first use).

        The known_hosts callable, client factory and tunnel are passed per connect.
        """
        cached = self._resolved.get(target.name)
        if cached is not None:
            return cached
        ssh = target.ssh
        kwargs: dict[str, Any] = {
            "config": [str(p) for p in config_paths(ssh, self.use_user_config)] or None,
            "host": target.dial,
            "password_auth": False,
            "kbdint_auth": False,
            "connect_timeout": self.connect_timeout,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_count_max": self.keepalive_count_max,
        }
        if ssh.port and ssh.port != 22:
            kwargs["port"] = ssh.port
        if ssh.user:
            kwargs["username"] = ssh.user
        if ssh.identity is not None:
            kwargs["client_keys"] = [self.identity(ssh.identity, target)]
        try:
            options = await asyncssh.SSHClientConnectionOptions.construct(**kwargs)
        except asyncssh.ConfigParseError as exc:
            raise UserError(f"The OpenSSH config for {target.name} cannot be used: {exc}.",
                            ) from None
        except RecursionError:
            raise UserError(
                f"The OpenSSH config for {target.name} ({', '.join(kwargs['config'] or [])}) "
                "includes itself, directly or through other Include lines; `hardway "
                "inventory check` shows the loop.") from None
        except asyncssh.KeyImportError as exc:
            raise UserError(
                f"A key named in the OpenSSH config for {target.name} cannot be read: {exc}; "
                "load it into ssh-agent or fix the IdentityFile line.") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"The SSH options for {target.name} are not usable: {exc}.",
                            ) from None
        _keepalives_from_config(options)
        port = options.port if isinstance(options.port, int) and options.port else 22
        host = options.host or target.dial
        files = [Path(p) for p in _listify(options.config.get("UserKnownHostsFile"))]
        files += [Path(p) for p in _listify(options.config.get("GlobalKnownHostsFile"))]
        if ssh.known_hosts is not None:
            files.insert(0, Path(ssh.known_hosts))
        ciphers = () if options.config.get("Ciphers") else fast_first(options.encryption_algs)
        resolved = Resolved(options, host, port, options.username, files, ciphers)
        self._resolved[target.name] = resolved
        return resolved

    def forget(self, name: str) -> None:
        """Drop cached options for ``name`` (the next connect re-reads the config)."""
        self._resolved.pop(name, None)


def _keepalives_from_config(options: asyncssh.SSHClientConnectionOptions) -> None:
    """Let the OpenSSH config's ServerAliveInterval/CountMax win over hardway's defaults.

    hardway passes its own keepalive settings (on by default, so a frozen host is declared
    lost in bounded time); a config that sets them, as ``ssh`` would read them, decides.
    """
    interval = options.config.get("ServerAliveInterval")
    if interval is not None:
        with contextlib.suppress(ValueError, TypeError):
            seconds = float(parse_time_interval(str(interval)))
            # kwargs too: asyncssh.connect(options=...) rebuilds options from them
            options.keepalive_interval = options.kwargs["keepalive_interval"] = seconds
    count = options.config.get("ServerAliveCountMax")
    if isinstance(count, int) and count > 0:
        options.keepalive_count_max = options.kwargs["keepalive_count_max"] = count


def _listify(value: object) -> Sequence[str]:
    if value is None or value == ():
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]  # type: ignore[attr-defined]


def fast_first(algs: Sequence[bytes]) -> list[str]:
    """``algs`` with :data:`FAST_CIPHERS` first (the server still picks what it supports)."""
    names = [alg.decode("ascii") for alg in algs]
    first = [alg for alg in FAST_CIPHERS if alg in names]
    return first + [alg for alg in names if alg not in first]
