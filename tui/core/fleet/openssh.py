"""The OpenSSH ``ssh`` command line that reaches a host the way the Fleet does.

The console's attach key suspends the app and runs this command so full-screen programs
(vim, top, less, a journalctl pager) get the real terminal::

    argv = ssh_argv(inventory.host("controller-0"), fleet)   # or (host, inventory)
    subprocess.run(argv)

The command uses the same settings as the Fleet: the inventory's OpenSSH config file
(``-F``), port, user and identity (``-i`` with ``IdentitiesOnly``), strict host-key
checking against every known_hosts file the Fleet trusts -- the inventory's, the OpenSSH
config's, hardway's record file of keys accepted in the app -- and the jump host.  The
jump host is reached through ``ProxyCommand`` running the same kind of command with
``-W``, not ``-J``: OpenSSH's ``-J`` would check the jump host's key without hardway's
known_hosts files and could not use its identity file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tui.core.errors import UserError
from tui.core.fleet.command import exports
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.sshconfig import Target
from tui.core.inventory.model import Host, Inventory, SSHOptions

MAX_JUMPS = 5
SSH_G_TIMEOUT = 10.0

__all__ = ["ssh_argv"]


def ssh_argv(host: Host, source: Inventory | Fleet, *, command: str | None = None,
             policy: HostKeyPolicy | None = None, program: str = "ssh") -> list[str]:
    """The ``ssh`` argv for an interactive session on ``host`` (``-t``).

    Args:
        host: the inventory host to reach.
        source: the inventory (jump hosts are looked up in it) or the Fleet (its
            host-key policy and jump hosts are used).
        command: a remote command instead of the login shell.
        policy: host-key policy whose files are trusted (default: the Fleet's, else
            hardway's default record file).
        program: the OpenSSH client to run.

    Raises:
        UserError: ``ssh`` is not installed, the jump host is unknown or jumps loop, or
            the OpenSSH config cannot be read.
    """
    if shutil.which(program) is None:
        raise UserError(f"The OpenSSH client {program!r} is not installed (or not on PATH); "
                        "install openssh-client to attach a terminal to a host.")
    if policy is None:
        policy = source.policy if isinstance(source, Fleet) else HostKeyPolicy()
    argv = [program, *_options(Target.of(host), source, policy, program, depth=0), "-t",
            _destination(host.ssh, host.dial)]
    if command is not None:
        argv.append(command)
    return argv


def attach_argv(host: Host, source: Inventory | Fleet, *,
                policy: HostKeyPolicy | None = None, program: str = "ssh") -> list[str]:
    """The ``ssh`` argv that attaches a terminal to ``host`` with the panes' variables.

    ``HOST_NAME``, ``INTERNAL_IP``, ``ETCD_NAME`` and the host's ``vars`` are exported by
    the remote command, which then becomes the user's login shell: most sshd refuse
    ``SendEnv``, so KTHW's ``${ETCD_NAME}`` would otherwise be empty there.

    Raises:
        UserError: as :func:`ssh_argv`, or a variable name is not a shell identifier.
    """
    command = f'{exports(host.env())}; exec "${{SHELL:-/bin/sh}}" -l'
    return ssh_argv(host, source, command=command, policy=policy, program=program)


def _options(target: Target, source: Inventory | Fleet, policy: HostKeyPolicy,
             program: str, depth: int) -> list[str]:
    """Every option for ``target`` (without ``-t`` and the destination)."""
    ssh = target.ssh
    options: list[str] = []
    if ssh.config is not None:
        options += ["-F", str(ssh.config)]
    if ssh.port and ssh.port != 22:
        options += ["-p", str(ssh.port)]
    files = [_path(p) for p in _known_hosts(target, policy)]
    files += _config_known_hosts(program, options, target)
    if ssh.identity is not None:
        options += ["-i", _escape(str(ssh.identity)), "-o", "IdentitiesOnly=yes"]
    options += ["-o", "UserKnownHostsFile=" + " ".join(_quote(f) for f in _unique(files)),
                "-o", "StrictHostKeyChecking=yes"]
    jump = target.jump
    if jump is not None:
        if depth >= MAX_JUMPS:
            raise UserError(f"The jump hosts of {target.name} (ssh.jump) form a loop or a "
                            f"chain longer than {MAX_JUMPS}; check the ssh.jump keys.")
        hop = _jump_target(jump, target, source)
        hop_options = _options(hop, source, policy, program, depth + 1)
        proxy = " ".join(shlex.quote(a) for a in [program, *hop_options]).replace("%", "%%")
        proxy += " -W %h:%p " + shlex.quote(_destination(hop.ssh, hop.dial)).replace("%", "%%")
        options += ["-o", "ProxyCommand=" + proxy]
    return options


def _destination(ssh: SSHOptions, dial: str) -> str:
    return f"{ssh.user}@{dial}" if ssh.user else dial


def _known_hosts(target: Target, policy: HostKeyPolicy) -> list[Path]:
    """The files the Fleet trusts for ``target`` (the OpenSSH config's come separately)."""
    files: list[Path] = []
    if target.ssh.known_hosts is not None:
        files.append(Path(target.ssh.known_hosts))
    files += [*policy.known_hosts, policy.record_file]
    return [Path(os.path.expanduser(p)) for p in files]


def _config_known_hosts(program: str, options: list[str], target: Target) -> list[str]:
    """``UserKnownHostsFile`` as OpenSSH's config gives it for ``target`` (``ssh -G``)."""
    try:
        result = subprocess.run([program, "-G", *options,
                                 _destination(target.ssh, target.dial)], capture_output=True,
                                text=True, timeout=SSH_G_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"Cannot run `{program} -G` to read the OpenSSH config for "
                        f"{target.name}: {exc}.") from None
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        where = f"the OpenSSH config {target.ssh.config}" if target.ssh.config else \
            "the OpenSSH config"
        raise UserError(f"{where} cannot be used for {target.name}: {detail}.")
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "userknownhostsfile":
            return [_escape(p) for p in shlex.split(value)]
    return []


def _jump_target(name: str, target: Target, source: Inventory | Fleet) -> Target:
    if isinstance(source, Fleet):
        try:
            return source._any(name).target
        except UserError:
            pass
    else:
        if source.hypervisor is not None and source.hypervisor.name == name:
            return Target.of(source.hypervisor)
        for host in source.hosts:
            if host.name == name:
                return Target.of(host)
    raise UserError(f"{target.name} should be reached through the jump host {name!r} "
                    "(ssh.jump), but no host or hypervisor of that name is in the inventory.")


def _path(path: Path) -> str:
    return _escape(str(path))


def _escape(text: str) -> str:
    """Protect ``%`` from OpenSSH's token expansion."""
    return text.replace("%", "%%")


def _quote(path: str) -> str:
    return f'"{path}"' if any(c.isspace() for c in path) else path


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
