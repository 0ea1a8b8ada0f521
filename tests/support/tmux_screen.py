"""tmux as the reference terminal: feed it bytes, read back what its pane shows.

``TmuxReference`` runs its own tmux server (``tmux -L <unique name> -f /dev/null``) and,
for each stream, a pane of the requested size whose program puts its terminal in raw
mode (no ``\\n`` -> ``\\r\\n`` translation) and copies the bytes to it, as a remote program
writes to its PTY.  ``capture-pane -p -e`` gives every row with its SGR attributes;
``display -p`` the cursor, the scrollback length and whether the alternate screen is on.
Only the server this object started is ever killed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PaneState:
    """What a tmux pane shows after a stream.

    Attributes:
        rows: the visible rows, each as ``capture-pane -p -e`` prints it (SGR included,
            trailing blanks trimmed by tmux).
        cursor: (row, column) on the visible screen.
        history: lines in the scrollback above the screen.
        alternate: the alternate screen is on.
    """

    rows: tuple[str, ...]
    cursor: tuple[int, int]
    history: int
    alternate: bool


def tmux_available() -> bool:
    """tmux is installed (scripts/install-test-deps.sh installs it)."""
    return shutil.which("tmux") is not None


class TmuxReference:
    """A private tmux server for reference captures (use as a context manager)."""

    def __init__(self) -> None:
        self.name = f"term-ref-{os.getpid()}-{id(self):x}"
        self._dir = Path(tempfile.mkdtemp(prefix="tmux-ref-"))
        self._count = 0

    def __enter__(self) -> TmuxReference:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tmux(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args],
                                capture_output=True, text=True, check=False, timeout=20,
                                env={**os.environ, "TMUX": ""})
        if check and result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def capture(self, data: bytes, columns: int = 20, rows: int = 5,
                history_limit: int = 2000) -> PaneState:
        """Feed ``data`` to a fresh ``columns`` x ``rows`` pane and read its state back."""
        self._count += 1
        stream = self._dir / f"stream-{self._count}"
        done = self._dir / f"done-{self._count}"
        stream.write_bytes(data)
        script = f"stty raw -echo; cat '{stream}'; : > '{done}'; exec sleep 600"
        session = f"s{self._count}"
        if self._count == 1:  # a session that keeps the server up between captures
            self._tmux("start-server", ";", "set-option", "-g", "status", "off", ";",
                       "new-session", "-d", "-s", "hold", "exec sleep 3600")
        self._tmux("set-option", "-g", "history-limit", str(history_limit))
        self._tmux("new-session", "-d", "-s", session, "-x", str(columns), "-y", str(rows),
                   script)
        deadline = time.monotonic() + 20
        while not done.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"tmux pane did not finish writing {stream}")
            time.sleep(0.01)
        state, previous = self._read(session), None
        while state != previous:  # tmux parses the pane's output asynchronously
            time.sleep(0.05)
            previous, state = state, self._read(session)
        self._tmux("kill-session", "-t", session)
        return state

    def _read(self, session: str) -> PaneState:
        shown = self._tmux("capture-pane", "-p", "-e", "-t", session)
        info = self._tmux("display-message", "-p", "-t", session,
                          "#{cursor_x} #{cursor_y} #{history_size} #{alternate_on}")
        x, y, history, alternate = info.split()
        lines = shown.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return PaneState(tuple(lines), (int(y), int(x)), int(history), alternate == "1")

    def close(self) -> None:
        """Kill this object's tmux server and remove its files (its socket included)."""
        self._tmux("kill-server", check=False)
        shutil.rmtree(self._dir, ignore_errors=True)
        sockets = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        sockets.joinpath(self.name).unlink(missing_ok=True)
