"""Real programs (bash, vim, less, top) in a local PTY, their output fed to a Terminal.

The programs see TERM=xterm-256color and the Terminal's size, and get the Terminal's
replies (cursor position reports) back, as a console pane's remote shell would.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tui.core.term import Terminal

COLUMNS, ROWS = 40, 10


class Pty:
    """A program on a pseudo-terminal whose output feeds a Terminal."""

    def __init__(self, argv: list[str], cwd: Path, columns: int = COLUMNS,
                 rows: int = ROWS) -> None:
        self.term = Terminal(columns, rows, scrollback=1000)
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
               "HOME": str(cwd), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PS1": "$ ",
               "INPUTRC": "/dev/null"}
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                        cwd=cwd, env=env, start_new_session=True)
        os.close(slave)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.seen: list[tuple[bool, str]] = []

    def pump(self, timeout: float = 0.05) -> bool:
        """Feed whatever output arrives within ``timeout``; False at end of output."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.term.feed(self.decoder.decode(data))
        replies = self.term.take_replies()
        if replies:
            os.write(self.master, replies.encode())
        self.seen.append((self.term.alt_screen, self.term.text()))
        return True

    def wait_for(self, condition: Callable[[Terminal], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.term):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; screen was:\n{self.term.text()}")
            if not self.pump():
                if condition(self.term):
                    return
                raise AssertionError(f"program ended; screen was:\n{self.term.text()}")

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=5)
        os.close(self.master)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Pty]]:
    started: list[Pty] = []

    def start(*argv: str, **kwargs: int) -> Pty:
        if shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed")
        pty = Pty(list(argv), tmp_path, **kwargs)
        started.append(pty)
        return pty

    yield start
    for pty in started:
        pty.close()


def prompt_ready(term: Terminal) -> bool:
    return term.text().endswith("$ ")


def test_bash_output_progress_bar_and_backspace(run: Callable[..., Pty]) -> None:
    shell = run("bash", "--norc", "--noprofile", "-i")
    shell.wait_for(prompt_ready)
    shell.send("printf '10%%\\r50%%\\r100%%\\n'; echo $((6*7))\r")
    shell.wait_for(lambda t: t.text().endswith("42\n$ "))
    lines = shell.term.text().splitlines()
    assert lines[-3:] == ["100%", "42", "$ "]
    shell.send("echo abcX\x7f\r")
    shell.wait_for(lambda t: t.text().endswith("abc\n$ "))
    assert shell.term.text().splitlines()[-3:] == ["$ echo abc", "abc", "$ "]


def test_bash_long_command_line_wraps_like_xterm(run: Callable[..., Pty]) -> None:
    """readline relies on xterm's autowrap at the right margin while echoing and editing."""
    shell = run("bash", "--norc", "--noprofile", "-i")
    shell.wait_for(prompt_ready)
    word = "0123456789" * 7  # 70 characters: the command line spans two 40-column rows
    shell.send(f"echo {word}")
    shell.wait_for(lambda t: t.text().replace("\n", "").endswith(word))
    shell.send("\x7f" * 3 + "xyz")  # erase and retype at the end of the wrapped line
    shell.wait_for(lambda t: t.text().endswith("xyz"))
    shell.send("\r")
    shell.wait_for(lambda t: t.text().endswith("xyz\n$ "))
    command = f"$ echo {word[:-3]}xyz"
    output = f"{word[:-3]}xyz"
    assert shell.term.text().splitlines() == [
        command[:40], command[40:], output[:40], output[40:], "$ "]


def test_vim_draws_on_the_alt_screen_and_restores_the_shell(run: Callable[..., Pty],
                                                            tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("first line\nsecond line\n")
    shell = run("bash", "--norc", "--noprofile", "-i")
    shell.wait_for(prompt_ready)
    shell.send("echo before\r")
    shell.wait_for(lambda t: t.text().endswith("before\n$ "))
    before = shell.term.text()
    shell.send("vim -u NONE -i NONE -N notes.txt\r")
    shell.wait_for(lambda t: t.alt_screen and t.line_text(1) == "second line"
                   and "notes.txt" in t.line_text(ROWS - 1))
    screen = [shell.term.line_text(i) for i in range(ROWS)]
    assert screen[0] == "first line"
    assert screen[2:ROWS - 1] == ["~"] * (ROWS - 3)
    assert shell.term.cursor == (0, 0)
    shell.send("Aadded\x1b")
    shell.wait_for(lambda t: t.line_text(0) == "first lineadded")
    shell.send(":q!\r")
    shell.wait_for(lambda t: not t.alt_screen and prompt_ready(t))
    assert shell.term.text() == before + "vim -u NONE -i NONE -N notes.txt\n$ "


def test_less_pages_and_quits_cleanly(run: Callable[..., Pty], tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("".join(f"entry {i}\n" for i in range(100)))
    pager = run("less", "log.txt")
    pager.wait_for(lambda t: t.line_text(0) == "entry 0" and t.line_text(8) == "entry 8")
    assert pager.term.alt_screen
    pager.send(" ")  # next page
    pager.wait_for(lambda t: t.line_text(0) == "entry 9")
    pager.send("q")
    pager.wait_for(lambda t: not t.alt_screen)


def test_top_renders_its_table(run: Callable[..., Pty]) -> None:
    top = run("top", "-d", "0.2", "-n", "2", columns=100, rows=20)
    top.wait_for(lambda t: any(
        "PID" in t.line_text(i) and "COMMAND" in t.line_text(i) for i in range(t.rows)))
    header = top.term.line_text(0)
    assert header.startswith("top - ")
