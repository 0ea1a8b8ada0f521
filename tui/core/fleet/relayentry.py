"""``python -m tui.core.fleet.relayentry``: the shell relay process's entry point.

The app's dataclass code cache (:mod:`tui.core.codecache`), when the app uses one
(:data:`~tui.core.codecache.ENV` names its file), is enabled here before the relay
imports asyncssh and the fleet, so the relay's start, which every console shell waits
for, skips the same compilations; then :func:`tui.core.fleet.relayhost.main` runs.
"""

from __future__ import annotations

import os

from tui.core import codecache


def main() -> None:
    """Enable the app's code cache (if any), then run the relay until its input ends."""
    path = os.environ.get(codecache.ENV)
    if path:
        from pathlib import Path

        codecache.enable(Path(path))
    try:
        from tui.core.fleet.relayhost import main as relay

        relay()
    finally:
        codecache.save()


if __name__ == "__main__":
    main()
