"""Starting the console's relay process, early if asked.

The relay's interpreter and its imports (asyncssh) take about half a second.  The app
starts the process before it imports Textual (:func:`launch`, through
``Workbench.warm_relay``), so both start on separate cores; the process then waits for the
INIT frame that :class:`tui.core.fleet.relay.ShellRelay` sends once the console is built.
This module imports nothing heavy, so starting early costs the app nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tui.core.fleet import relaywire as wire

PACKAGE_ROOT = Path(__file__).resolve().parents[3]
"""The directory holding the ``tui`` package (put on the relay's PYTHONPATH)."""


class RelayError(Exception):
    """The relay process could not be started or went away."""


@dataclass
class RelayProcess:
    """A started relay process, waiting for its INIT frame.

    Attributes:
        process: the ``python -m tui.core.fleet.relayhost`` process (pipes on stdin/stdout).
        stderr: the file its complaints go to (never the terminal the app draws on).
    """

    process: asyncio.subprocess.Process
    stderr: IO[bytes]

    def discard(self) -> None:
        """End an unused process (closing its stdin ends it; kill makes sure)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.stderr.close()


async def launch() -> RelayProcess:
    """Start the relay process (RelayError naming the command when it cannot start)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    stderr = tempfile.TemporaryFile(prefix="hardway-relay-")  # noqa: SIM115
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.core.fleet.relayhost",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env=env, limit=wire.MAX_PAYLOAD)
    except OSError as exc:
        stderr.close()
        raise RelayError(f"cannot start the console's SSH relay ({sys.executable} -m "
                         f"tui.core.fleet.relayhost): {exc.strerror or exc}") from None
    return RelayProcess(process, stderr)


async def discard_early(early: asyncio.Future[RelayProcess]) -> None:
    """End a process started early that nobody used (or forget its failure to start)."""
    try:
        started = await early
    except (RelayError, asyncio.CancelledError):
        return
    started.discard()
    await started.process.wait()
