"""Run a command's coroutine so SIGTERM and SIGHUP stop it the way Ctrl-C does.

``hardway run`` (and any command that drives remote work) is often stopped by something
other than a key: ``kill``, a closed terminal (SIGHUP), a CI timeout (SIGTERM).  Python
turns only SIGINT into KeyboardInterrupt, so without this the process died at once and
the remote commands kept running.  :func:`run_interruptible` cancels the main task on
SIGTERM or SIGHUP, so the same cleanup as for Ctrl-C runs (each host's command is
interrupted and its remote process group killed), then raises :class:`Interrupted`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from tui.core.errors import UserError

T = TypeVar("T")
HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(UserError):
    """The command was stopped by a signal; exit status 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; the command was stopped on every host "
                         "that was running it.", exit_code=128 + signum)
        self.signum = signum


def run_interruptible(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with SIGTERM and SIGHUP handled like Ctrl-C.

    Raises:
        Interrupted: SIGTERM or SIGHUP arrived; ``main`` was cancelled and finished its
            cleanup first.
        KeyboardInterrupt: Ctrl-C (SIGINT), as with ``asyncio.run``.
    """
    received: list[int] = []

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            if not received:
                received.append(signum)
                task.cancel()

        installed = []
        for signum in HANDLED:
            try:
                loop.add_signal_handler(signum, stop, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no signals here
        try:
            return await main
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    return asyncio.run(guarded())
