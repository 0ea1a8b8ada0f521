"""Turn a user's command into the exact text sent to one host.

Three steps, each a pure function so they are easy to test and to preview:

1. :func:`substitute` replaces ``{name}``, ``{ip}`` and ``{VAR}`` (the host's vars and
   exported variables) with that host's values.  ``${...}``, brace expansion ``{a,b}``, awk's
   ``{print $1}`` and unknown words are left alone; ``{{name}}`` gives a literal ``{name}``.
2. :func:`exports` prefixes ``export HOST_NAME=... INTERNAL_IP=... ETCD_NAME=... <vars>``
   (shlex-quoted), so nothing depends on sshd's AcceptEnv.
3. :func:`remote_command` wraps the result so a timeout or cancel kills the remote process
   *and its children*: the command runs in a background subshell (stdin preserved through
   fd 3) while the login shell waits; on TERM/HUP/INT the shell signals its whole process
   group (sshd and the lab make it a session leader), waits up to 2 s, then sends KILL.
   ``sudo=True`` runs the command through ``sudo -n sh -c ...``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from tui.core.errors import UserError
from tui.core.inventory.model import Host

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

SUDO_PASSWORD_MARKERS = ("sudo: a password is required", "sudo: a terminal is required")
"""stderr lines of ``sudo -n`` when the account would have to type a password."""

KILL_GRACE_TENTHS = 20
"""How long (in 0.1 s steps) the remote shell waits after TERM before it sends KILL."""
ORPHAN_CHECK_SECONDS = 1
"""How often the remote watchdog checks that the SSH session (the shell's parent) is alive."""


def values_for(host: Host) -> dict[str, str]:
    """The substitution table for ``host``: name, ip, its vars and exported variables."""
    table = host.env()
    table["name"] = host.name
    table["ip"] = str(host.address)
    return table


def substitute(command: str, values: Mapping[str, str]) -> str:
    """Replace ``{word}`` with ``values[word]`` where ``word`` is known.

    Args:
        command: the command as the user typed it.
        values: e.g. :func:`values_for` of a host (case as written).

    Returns:
        The command with known placeholders replaced (values are inserted verbatim, like
        clush's ``%h``); ``{{word}}`` becomes the literal ``{word}``.
    """

    def replace(match: re.Match[str]) -> str:
        escaped, word = match.group(1), match.group(2)
        if escaped is not None:
            return "{" + escaped + "}"
        return values.get(word, match.group(0))

    return _PLACEHOLDER.sub(replace, command)


def exports(env: Mapping[str, str]) -> str:
    """``export A='x' B='y'`` for ``env`` (empty string when ``env`` is empty).

    Raises:
        UserError: a variable name is not a valid shell identifier.
    """
    if not env:
        return ""
    parts = []
    for key, value in env.items():
        if not _ENV_NAME.match(key):
            raise UserError(
                f"The host variable {key!r} cannot be exported to the remote shell: variable "
                "names must be letters, digits and underscores, not starting with a digit.")
        parts.append(f"{key}={shlex.quote(value)}")
    return "export " + " ".join(parts)


def with_exports(command: str, env: Mapping[str, str]) -> str:
    """The command preceded by the export line (one newline between them)."""
    line = exports(env)
    return f"{line}\n{command}" if line else command


def sudo_command(script: str) -> str:
    """Run ``script`` as root with non-interactive sudo (fails fast if a password is needed)."""
    return f"sudo -n sh -c {shlex.quote(script)}"


def killable(command: str) -> str:
    """Wrap ``command`` so TERM/HUP/INT to the remote shell kill its whole process group,
    and so does the end of the SSH session.

    The trap is set first (a subshell resets caught signals to their defaults), then the
    command runs in a background subshell with the original stdin (fd 3); the login shell
    waits for it and passes its exit status through.  On a signal the shell ignores further
    signals, sends TERM to its process group (or, if it does not lead one, to the child),
    waits up to ``KILL_GRACE_TENTHS``/10 s for the child and then sends KILL.

    A watchdog (its output on /dev/null, so it never holds the channel open) checks every
    ``ORPHAN_CHECK_SECONDS`` whether the shell's parent changed: sshd does not signal a
    command without a PTY when the client vanishes (kill -9, a dropped network), it exits
    and the shell is re-parented.  The watchdog then sends HUP to the shell, whose trap
    kills the group.  A ``ps`` that cannot tell (missing, unsupported options) never
    triggers it.  The watchdog (and its ``sleep``) is ended with the command.
    """
    on_signal = (
        "trap '' TERM HUP INT; exec 2>/dev/null; "
        "kill -TERM -$$ 2>/dev/null || kill -TERM $hw_pid 2>/dev/null; hw_n=0; "
        f"while kill -0 $hw_pid 2>/dev/null && [ $hw_n -lt {KILL_GRACE_TENTHS} ]; "
        "do sleep 0.1; hw_n=$((hw_n+1)); done; "
        "kill -KILL -$$ 2>/dev/null || kill -KILL $hw_pid 2>/dev/null; exit 143"
    )
    watchdog = (
        "hw_parent=$PPID; hw_watch=\n"
        "if [ -n \"$hw_parent\" ]; then (\n"
        "  hw_s=; trap 'kill $hw_s 2>/dev/null; exit 0' TERM; trap - HUP INT\n"
        f"  while sleep {ORPHAN_CHECK_SECONDS} & hw_s=$!; wait $hw_s; do\n"
        "    hw_now=$(ps -o ppid= -p $$ 2>/dev/null | tr -d ' ')\n"
        "    [ -z \"$hw_now\" ] && ! kill -0 $$ 2>/dev/null && break\n"
        "    if [ -n \"$hw_now\" ] && [ \"$hw_now\" != \"$hw_parent\" ]; then\n"
        "      kill -HUP $$; break\n"
        "    fi\n"
        "  done\n"
        ") </dev/null >/dev/null 2>&1 & hw_watch=$!; fi\n"
    )
    return (
        "exec 3<&0\n"
        f"trap {shlex.quote(on_signal)} TERM HUP INT\n"
        "(\n"
        f"{command}\n"
        ") <&3 3<&- &\n"
        "hw_pid=$!\n"
        f"{watchdog}"
        "wait $hw_pid\n"
        "hw_status=$?\n"
        "[ -n \"$hw_watch\" ] && kill $hw_watch 2>/dev/null\n"
        "exit $hw_status\n"
    )


def remote_command(command: str, env: Mapping[str, str], *, sudo: bool = False,
                   pty: bool = False) -> str:
    """The full text sent to the host for one command.

    Args:
        command: the user's command after :func:`substitute`.
        env: variables to export (``Host.env()``).
        sudo: run through ``sudo -n sh -c``; the exports go inside sudo (sudo resets env).
        pty: the command runs under a PTY: ^C and the PTY hangup kill it, so no wrapper.
    """
    script = with_exports(command, env)
    if sudo:
        script = sudo_command(script)
    if pty:
        return script
    return killable(script)


def needs_sudo_password(stderr: str) -> bool:
    """True when ``stderr`` shows that ``sudo -n`` refused because a password is needed."""
    return any(marker in stderr for marker in SUDO_PASSWORD_MARKERS)
