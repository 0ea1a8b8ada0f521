"""The app's one failure boundary, and long actions as workers with visible progress.

* :func:`report_failure` is where every failed action ends: a
  :class:`~tui.core.errors.UserError` becomes an error notification (its one paragraph)
  and a line in the log file; anything else is logged with its traceback and becomes a
  notification that names the log file.  The app keeps running.
* :func:`start_action` runs a long action (connect, reconnect, issue, push, restore, and
  every plan to come) as a worker of its screen: one at a time per group (a second
  press says the first is still running instead of cancelling it halfway), its label
  shown in the header while it runs, keys live meanwhile, failures reported above.

``tui.app.HardwayApp`` routes failed actions (``run_action``) and any worker that still
fails (``worker_failed``) here too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from textual.app import App
from textual.dom import DOMNode
from textual.worker import Worker

from tui.core import logfile
from tui.core.errors import UserError
from tui.core.paths import shown

log = logging.getLogger("hardway.app")


def report_failure(app: App[Any], error: BaseException, *, action: str = "") -> None:
    """Tell the user about ``error`` and log it (see the module docstring)."""
    what = f"{action}: " if action else ""
    if isinstance(error, UserError):
        log.warning("%s%s", what, error)
        app.notify(str(error), title=action, severity="error", timeout=12)
        return
    log.error("%sunexpected failure", what, exc_info=(type(error), error,
                                                      error.__traceback__))
    where = logfile.current_path() or logfile.default_path()
    app.notify(f"{what}{type(error).__name__}: {error}. The details are in {shown(where)}.",
               title="hardway hit a bug", severity="error", timeout=20)


def running(app: App[Any]) -> dict[str, str]:
    """Group -> label of the actions running now in ``app``."""
    busy: dict[str, str] = app.__dict__.setdefault("_hardway_busy", {})
    return busy


def start_action(node: DOMNode, work: Callable[[], Awaitable[object]], *, group: str,
                 label: str) -> Worker[object] | None:
    """Run ``work()`` as ``node``'s worker, unless an action of ``group`` runs already.

    Args:
        node: the screen (or widget) the action belongs to.
        work: makes the coroutine to run (called only when the action starts).
        group: actions of one group run one at a time (``certs``, ``reconnect``...).
        label: what the header shows meanwhile (``reconnecting controller-1``).

    Returns:
        The worker, or None when an action of ``group`` was still running (the user is
        told which).
    """
    app = node.app
    busy = running(app)
    if group in busy:
        app.notify(f"{busy[group]} is still running; wait for it to finish",
                   severity="warning", timeout=4)
        return None
    busy[group] = label
    _busy_changed(app)

    async def guarded() -> object:
        try:
            return await work()
        except Exception as error:
            report_failure(app, error, action=label)
            return None
        finally:
            if busy.get(group) == label:
                del busy[group]
                _busy_changed(app)

    return node.run_worker(guarded(), name=label, group=group, exit_on_error=False)


def _busy_changed(app: App[Any]) -> None:
    hook = getattr(app, "busy_changed", None)
    if callable(hook):
        hook()
