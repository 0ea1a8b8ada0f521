"""The fleet's errors that need no SSH library.

asyncssh takes about 0.2 s to import; the console's shells (relayed from another process)
and the app's first screens never need it, so the modules they use name these instead.
"""

from __future__ import annotations

import sys


class HostUnavailable(Exception):
    """The host cannot be used right now; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ChannelRefused(ConnectionError):
    """A shell's channel could not be opened (the text says why)."""


def ssh_errors() -> tuple[type[BaseException], ...]:
    """What an SSH operation raises: ``asyncssh.Error`` and OSError once asyncssh is
    loaded, OSError alone before (no asyncssh error can happen then)."""
    asyncssh = sys.modules.get("asyncssh")
    return (asyncssh.Error, OSError) if asyncssh is not None else (OSError,)
