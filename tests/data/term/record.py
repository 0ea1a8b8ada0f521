"""Record the real-program streams of the terminal differential test (run by hand).

Each program runs under ``script -q -c`` on an 80x24 PTY with TERM=xterm-256color and
C.UTF-8, gets its keystrokes on stdin with pauses in between, and the bytes it wrote
(``script``'s header and trailer lines removed) go to ``<name>.bin`` beside this file.
Run: ``python tests/data/term/record.py [name ...]`` (needs vim, less, man, top, htop,
whiptail, dialog: ``scripts/install-test-deps.sh``).  The recordings are kept in the
repository, so tests never depend on what a program prints today.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS, ROWS = 80, 24

APT_PROGRESS = r"""
import sys, time
w = sys.stdout.write
rows = 24
w("Reading package lists... Done\r\nBuilding dependency tree... Done\r\n")
w("The following NEW packages will be installed:\r\n  etcd-server etcd-client\r\n")
w("\n\0337\033[0;%dr\0338\033[1A" % (rows - 1))   # apt: keep the last row for the bar
for i, step in enumerate(["Selecting previously unselected package etcd-server.",
                          "Preparing to unpack .../etcd-server_3.4.23-4_amd64.deb ...",
                          "Unpacking etcd-server (3.4.23-4) ...",
                          "Setting up etcd-server (3.4.23-4) ...",
                          "Processing triggers for man-db (2.11.2-2) ..."]):
    w(step + "\r\n")
    pct = (i + 1) * 20
    bar = "#" * (pct * 60 // 100)
    w("\0337\033[%d;0f\033[42m\033[30mProgress: [%3d%%]\033[49m\033[39m [%-60s] \0338"
      % (rows, pct, bar))
    sys.stdout.flush()
    time.sleep(0.05)
w("\0337\033[0;%dr\0338\033[1A\033[J" % rows)     # apt: give the row back, clear the bar
w("\r\n")
sys.stdout.flush()
"""

# name: (command, [(pause seconds, keys), ...])
PROGRAMS: dict[str, tuple[str, list[tuple[float, str]]]] = {
    "vim": ("vim -u NONE -N -i NONE -c 'syntax on' -c 'set number' sample.py",
            [(0.8, "jjjwwx"), (0.3, "o# added line\x1b"), (0.3, "\x06"), (0.3, "gg"),
             (0.3, ":%s/def/DEF/g\r"), (0.4, ":q!\r")]),
    "less": ("less -R notes.txt", [(0.6, " "), (0.3, "/line 4\r"), (0.3, "k"), (0.3, "q")]),
    "man": ("MANPAGER='less -R' MANWIDTH=80 man 1 ls", [(1.5, "  "), (0.4, "q")]),
    "top": ("top -d 0.5 -n 2 -w 80", [(2.0, "")]),
    "htop": ("htop -d 5", [(1.2, ""), (0.5, "q")]),
    "whiptail": ("whiptail --title 'hardway' --checklist 'Hosts to bootstrap' 14 50 4 "
                 "ctl-0 '10.240.0.10' ON ctl-1 '10.240.0.11' OFF ctl-2 '10.240.0.12' ON",
                 [(0.6, "\x1b[B"), (0.3, " "), (0.3, "\t"), (0.3, "\r")]),
    "dialog": ("dialog --backtitle 'KTHW' --title 'etcd' --yesno 'Restart etcd on ctl-0?' "
               "8 40", [(0.8, "\t"), (0.3, "\r")]),
    "dialog_gauge": ("(for p in 10 40 70 100; do echo $p; sleep 0.1; done) | "
                     "dialog --gauge 'Copying certificates' 7 50 0", [(1.0, "")]),
    "bash": ("bash --norc --noprofile -i",
             [(0.4, "echo hello wrold"), (0.2, "\x1b[D\x1b[D\x1b[D\x1b[D"),
              (0.2, "\x7f\x7f\x7f"), (0.2, "orl"), (0.2, "\x01# "), (0.2, "\x05 again\r"),
              (0.3, "\x1b[A"), (0.2, "\x17\x17"), (0.2, "\x0b"), (0.2, "\x15ls /no/such\r"),
              (0.3, "printf '%s\\n' one two three | cat -n\r"), (0.3, "exit\r")]),
    "apt_progress": ("python3 apt_progress.py", [(1.0, "")]),
    "tmux_nested": ("tmux -L hardway-record-$$ -f /dev/null new-session "
                    "\"seq 1 30; printf '\\033[1;31mred\\033[0m done\\n'; sleep 1\"",
                    [(2.5, "")]),
    "git_log": ("git init -q repo && cd repo && for i in 1 2 3; do echo $i > f$i; "
                "git add f$i; git -c user.name=ctl -c user.email=ctl@example.org commit -qm "
                "\"etcd step $i\"; done; git -c color.ui=always log --graph --stat -p | "
                "less -R", [(1.5, " "), (0.4, "q")]),
}

SAMPLE_PY = '''"""A sample module for the vim recording."""

import os


def greet(name: str) -> str:
    """Say hello."""
    return f"hello {name}"


class Host:
    def __init__(self, name: str, address: str) -> None:
        self.name = name
        self.address = address

    def env(self) -> dict[str, str]:
        return {"HOST_NAME": self.name, "INTERNAL_IP": self.address}


if __name__ == "__main__":
    print(greet(os.environ.get("USER", "world")))
''' * 2


def record(name: str) -> bytes:
    """Run one program under ``script`` and return what it wrote."""
    command, keys = PROGRAMS[name]
    with tempfile.TemporaryDirectory() as work:
        Path(work, "sample.py").write_text(SAMPLE_PY)
        Path(work, "notes.txt").write_text("".join(f"line {i}: the quick brown fox\n"
                                                   for i in range(1, 120)))
        Path(work, "apt_progress.py").write_text(APT_PROGRESS)
        out = Path(work, "typescript")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "TERM": "xterm-256color",
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": work, "PS1": "$ ",
               "INPUTRC": "/dev/null", "DIALOGRC": "/dev/null", "NEWT_COLORS": ""}
        inner = f"stty cols {COLUMNS} rows {ROWS}; {command}"
        process = subprocess.Popen(["script", "-q", "-c", inner, str(out)], cwd=work,
                                   env=env, stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert process.stdin is not None
        for pause, text in keys:
            time.sleep(pause)
            if text:
                process.stdin.write(text.encode())
                process.stdin.flush()
        time.sleep(0.5)
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        data = out.read_bytes()
    data = data.split(b"\n", 1)[1]  # "Script started on ..."
    trailer = data.rfind(b"\nScript done on ")
    return data[:trailer + 1] if trailer >= 0 else data


def main() -> None:
    os.environ.pop("TMUX", None)
    names = sys.argv[1:] or list(PROGRAMS)
    for name in names:
        data = record(name)
        HERE.joinpath(f"{name}.bin").write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
