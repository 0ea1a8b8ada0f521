"""Starting the console's relay process, early if asked.

The relay's interpreter and its imports (asyncssh) take about half a second.  The app
starts the process before it imports Textual (:func:`launch`, through
``Workbench.warm_relay``), so both start on separate cores.  The early process gets its
INIT frame at once, described from the inventory (:meth:`RelaySpec.for_inventory`), with
every host to connect meanwhile (``preconnect``): its SSH connections are being made
while the app paints, and the console's shells then open on them.  A process started
without a specification waits for the INIT that :class:`tui.core.fleet.relay.ShellRelay`
sends once the console is built.  This module imports nothing heavy (no asyncssh), so
starting early costs the app nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tui.core import codecache
from tui.core.fleet import relaywire as wire
from tui.core.fleet.defaults import (
    KEEPALIVE_INTERVAL,
    default_record_file,
    fleet_hosts,
    jump_hosts,
)
from tui.core.inventory.model import Host, Hypervisor, Inventory

if TYPE_CHECKING:
    from tui.core.fleet.fleet import Fleet

ENTRY = "tui.core.fleet.relayentry"
"""The relay process's module (``python -m``): the code cache, then the relay."""
PACKAGE_ROOT = Path(__file__).resolve().parents[3]
"""The directory holding the ``tui`` package (put on the relay's PYTHONPATH)."""


class RelayError(Exception):
    """The relay process could not be started or went away."""


@dataclass
class RelaySpec:
    """What the relay needs to build the app's fleet (sent pickled in INIT).

    Attributes:
        preconnect: hosts the relay connects as soon as it starts (not part of the
            fleet's description: two specifications differing only here are equal).
    """

    hosts: list[Host]
    jumps: dict[str, Host | Hypervisor]
    options: dict[str, Any]
    record_file: Path
    known_hosts: list[Path] = field(default_factory=list)
    user_files: bool = True
    preconnect: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def of(cls, fleet: Fleet) -> RelaySpec:
        """The specification of ``fleet`` (its hosts, options and host-key files)."""
        hosts, jumps, options = fleet._spec
        policy = fleet.policy
        return cls(list(hosts), dict(jumps), dict(options), policy.record_file,
                   list(policy.known_hosts), policy.user_files)

    @classmethod
    def for_inventory(cls, inventory: Inventory, *, fanout: int, connect_timeout: float,
                      user_ssh_files: bool, extra: Sequence[Host] = (),
                      preconnect: tuple[str, ...] = ()) -> RelaySpec:
        """The specification of the fleet ``Workbench.fleet`` builds for ``inventory``
        (default host-key files), without building it (no asyncssh import)."""
        return cls(fleet_hosts(inventory, extra), jump_hosts(inventory), {
            "fanout": fanout, "connect_timeout": connect_timeout,
            "use_user_config": user_ssh_files, "keepalive_interval": KEEPALIVE_INTERVAL},
            default_record_file(), [], user_ssh_files, preconnect)


@dataclass
class RelayProcess:
    """A started relay process, waiting for its INIT frame.

    Attributes:
        process: the ``python -m tui.core.fleet.relayentry`` process (pipes on stdin/stdout).
        stderr: the file its complaints go to (never the terminal the app draws on).
        spec: the specification its INIT frame carried (None: no INIT sent yet).
    """

    process: asyncio.subprocess.Process
    stderr: IO[bytes]
    spec: RelaySpec | None = None

    def init(self, spec: RelaySpec) -> None:
        """Send the INIT frame (once)."""
        assert self.spec is None and self.process.stdin is not None
        self.process.stdin.write(wire.frame(wire.INIT, 0, pickle.dumps(spec)))
        self.spec = spec

    def discard(self) -> None:
        """End an unused process (closing its stdin ends it; kill makes sure)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.stderr.close()


async def launch(spec: RelaySpec | None = None) -> RelayProcess:
    """Start the relay process (RelayError naming the command when it cannot start), and
    send it ``spec`` at once when given."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    cache = codecache.active()
    if cache is not None:  # the relay compiles its dataclasses through the app's cache
        env[codecache.ENV] = str(cache.path)
    stderr = tempfile.TemporaryFile(prefix="hardway-relay-")  # noqa: SIM115
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", ENTRY,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env=env, limit=wire.MAX_PAYLOAD)
    except OSError as exc:
        stderr.close()
        raise RelayError(f"cannot start the console's SSH relay ({sys.executable} -m "
                         f"{ENTRY}): {exc.strerror or exc}") from None
    started = RelayProcess(process, stderr)
    if spec is not None:
        started.init(spec)
    return started


async def discard_early(early: asyncio.Future[RelayProcess]) -> None:
    """End a process started early that nobody used (or forget its failure to start)."""
    try:
        started = await early
    except (RelayError, asyncio.CancelledError):
        return
    started.discard()
    await started.process.wait()
