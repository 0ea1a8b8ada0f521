"""Start-up: first frame and every host connected, against tmux with three ssh panes.

hardway: a fresh Python process per round (``python bench/startup.py --child INVENTORY``)
runs the real command line, ``hardway -i INVENTORY`` (``tui.cli.main``: argument parsing,
the inventory's checks, the log file, the workbench, the app), on a 200x50 pseudo-terminal
with a 3-controller lab; it reports, in seconds since the parent started the process,

* **first frame**: the first pane title ("controller-0") arriving on the terminal;
* **all connected**: every host's console shell open (the shells live in the relay
  process: its start is included).  The app is then ended by SIGTERM, as a closed
  terminal ends it.

tmux: ``tmux new-session`` with three panes, each running ``ssh -F LAB/ssh_config HOST``;
**first frame** is when ``new-session`` has returned with the three panes split, **all
connected** when every pane shows its host's prompt.

The framework's floor: a minimal Textual app with the console's parts (header, three
titled panels, an input, a footer) on the same terminal, first frame only: how much of
hardway's first frame is Textual's own import and first paint.

Each figure is the median of ``--rounds`` fresh processes (default 5).  The lab runs in
this process, on its own thread (as ``hardway demo`` does).  Targets (design brief): first
frame under 0.4 s, every lab host connected under 0.8 s.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ("controller-0", "controller-1", "controller-2")
FIRST_FRAME_TARGET = 0.4
CONNECTED_TARGET = 0.8
HEADER_MARK = b"controller-0"
"""The first pane title: its arrival on the terminal is the first frame."""


def child(inventory: Path, started: float, stamps_path: Path,
          profile: Path | None = None) -> None:
    """One fresh ``hardway -i INVENTORY`` (the real command line, ``tui.cli.main``) on
    this process's terminal: write {"connected": s} (since ``started``) to
    ``stamps_path`` once every console shell is open, then end the app as a closed
    terminal does (SIGTERM); with ``profile``, a cProfile of the whole run to that file."""
    from tui.core import codecache
    from tui.core.startup_gc import hold_until_first_frame

    codecache.enable()  # what tui.cli.main does first (its dataclass method cache) ...
    hold_until_first_frame()  # ... and for the app
    stamps: dict[str, float] = {}
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    # the one hook: the workbench `hardway` builds, seen when it warms its relay (the
    # module is imported here rather than by the app: the same import, a little earlier)
    from tui.core.workbench import Workbench

    warm = Workbench.warm_relay

    async def watch(workbench: Workbench) -> None:
        while True:
            console = workbench._console
            if console is not None and all(console.shell(h) is not None for h in HOSTS):
                stamps["connected"] = time.time() - started
                os.kill(os.getpid(), signal.SIGTERM)
                return
            await asyncio.sleep(0.005)

    def warm_and_watch(workbench: Workbench) -> None:
        warm(workbench)
        watching.append(asyncio.ensure_future(watch(workbench)))

    watching: list[asyncio.Future[None]] = []
    Workbench.warm_relay = warm_and_watch  # type: ignore[method-assign]
    from tui.cli import main as hardway

    sys.argv = ["hardway", "-i", str(inventory), "--no-confirm"]
    code = hardway()  # as the console script calls it
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    if code != 128 + signal.SIGTERM:
        raise SystemExit(f"bench/startup.py: hardway ended with {code}, not by the SIGTERM "
                         "sent once every shell was open")
    stamps_path.write_text(json.dumps(stamps))


def watch_terminal(argv: list[str], env: dict[str, str], started: float,
                   mark: bytes = HEADER_MARK) -> tuple[float | None, bytes, int]:
    """Run ``argv`` on a fresh 200x50 pseudo-terminal and read all it draws until it
    exits: (seconds from ``started`` to ``mark`` appearing or None, what it drew up to
    then, its exit code)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                               start_new_session=True)
    os.close(slave)
    first: float | None = None
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                raise SystemExit(f"bench/startup.py: {argv[-1][:40]!r} drew nothing for 30 s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program's side closed
                break
            if not data:
                break
            if first is None:
                seen += data
                if mark in seen:
                    first = time.time() - started
    finally:
        os.close(master)
        code = process.wait(timeout=60)
    return first, seen, code


def hardway_round(inventory: Path, scratch: Path,
                  profile: Path | None = None) -> dict[str, float]:
    """Start one fresh app process on a 200x50 pseudo-terminal and read its figures
    (``profile``: the child writes a cProfile there)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLORTERM="truecolor",
               XDG_STATE_HOME=str(scratch / "state"),  # its log, history, known hosts
               XDG_CACHE_HOME=str(scratch / "cache"))  # its dataclass code cache
    stamps_path = scratch / f"stamps-{time.monotonic_ns()}.json"
    started = time.time()
    first_frame, seen, code = watch_terminal(
        [sys.executable, str(Path(__file__)), "--child", str(inventory), "--started",
         repr(started), "--stamps", str(stamps_path),
         *(["--profile", str(profile)] if profile is not None else [])], env, started)
    if code != 0 or first_frame is None or not stamps_path.exists():
        raise SystemExit(f"bench/startup.py: the app failed (exit {code}):\n"
                         f"{seen[-2000:].decode(errors='replace')}")
    figures: dict[str, float] = json.loads(stamps_path.read_text())
    figures["first_frame"] = first_frame
    return figures


FLOOR_APP = """
from textual.app import App
from textual.containers import Grid
from textual.widgets import Footer, Header, Input, Static

class Floor(App):
    CSS = "Grid { grid-size: 3 1; } Static { border: round $accent; height: 1fr; }"
    BINDINGS = [("f1", "app.bell", "One"), ("f2", "app.bell", "Two"), ("ctrl+q", "quit", "Quit")]

    def compose(self):
        yield Header()
        with Grid():
            for n in range(3):
                panel = Static()
                panel.border_title = f"controller-{n}"
                yield panel
        yield Input()
        yield Footer()

    def on_ready(self):
        self.set_timer(0.2, self.exit)

Floor().run()
"""
"""The framework's floor: a minimal Textual app with the console's parts (a header, three
titled panels, an input, a footer), nothing of hardway's."""


def floor_round() -> float:
    """First frame (the first panel title on the terminal) of :data:`FLOOR_APP`."""
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    started = time.time()
    first, _seen, _code = watch_terminal([sys.executable, "-c", FLOOR_APP], env, started)
    if first is None:
        raise SystemExit("bench/startup.py: the minimal Textual app drew no panel title")
    return first


def tmux_round(scratch: Path, ssh_config: Path) -> dict[str, float]:
    """tmux new-session with three ssh panes: split time and all prompts shown."""
    socket = scratch / f"tmux-{time.monotonic_ns()}.sock"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-S", str(socket), *args], capture_output=True,
                              text=True, check=True, timeout=30).stdout

    ssh = [f"ssh -q -F {ssh_config} {h}" for h in HOSTS]
    started = time.time()
    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "start", "-x", "200", "-y", "50",
             ssh[0], ";", "split-window", "-h", ssh[1], ";", "split-window", "-h", ssh[2])
        first = time.time() - started
        panes = tmux("list-panes", "-t", "start", "-F", "#{pane_id}").split()
        while True:
            shown = [tmux("capture-pane", "-p", "-t", p) for p in panes]
            if all("#" in text or "$" in text for text in shown):
                break
            if time.time() - started > 30:
                raise SystemExit("bench/startup.py: tmux panes never showed a prompt")
            time.sleep(0.005)
        return {"first_frame": first, "connected": time.time() - started}
    finally:
        subprocess.run(["tmux", "-S", str(socket), "kill-server"], capture_output=True,
                       check=False)


def main() -> None:
    """Parse the options; run the rounds; print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--network", default="127.0.96", help="the lab's loopback /24")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="write a cProfile of one extra app round to FILE (not counted)")
    parser.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure tmux with three ssh panes (default: yes)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--stamps", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.started, args.stamps, args.profile)
        return
    from tui.lab.lab import LabRunner

    # An installed hardway has its bytecode written (pip does it); this checkout may not
    # (PYTHONDONTWRITEBYTECODE), and compiling ~60 modules per start would be measured.
    for package in ("tui", "screens"):
        compileall.compile_dir(ROOT / package, quiet=1)

    with tempfile.TemporaryDirectory(prefix="hardway-startup-") as tmp:
        scratch = Path(tmp)
        with LabRunner(scratch / "lab", controllers=3, network=args.network) as runner:
            lab = runner.lab
            print(f"lab: 3 controllers on {args.network}.10-12, {os.cpu_count()} CPUs, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
            cold = hardway_round(lab.inventory_path, scratch)  # writes the code cache
            print(f"  hardway's first run on a machine (no code cache yet): first frame "
                  f"{cold['first_frame']:.3f} s, all connected {cold['connected']:.3f} s "
                  "(not counted)", flush=True)
            hardway = [hardway_round(lab.inventory_path, scratch) for _ in range(args.rounds)]
            for i, r in enumerate(hardway):
                print(f"  hardway round {i + 1}: first frame {r['first_frame']:.3f} s, "
                      f"all connected {r['connected']:.3f} s", flush=True)
            if args.profile is not None:
                hardway_round(lab.inventory_path, scratch, args.profile)
                print(f"  profile of one more round: {args.profile}", flush=True)
            floor = [floor_round() for _ in range(args.rounds)]
            peer: list[dict[str, float]] = []
            if args.peer and shutil.which("tmux") and shutil.which("ssh"):
                peer = [tmux_round(scratch, lab.ssh_config_path) for _ in range(args.rounds)]
    print(f"\nstart-up: 3-controller lab, median of {args.rounds} fresh processes")
    print(f"  {'tool':<34}{'first frame':>12}{'all connected':>15}")
    h_first = statistics.median(r["first_frame"] for r in hardway)
    h_conn = statistics.median(r["connected"] for r in hardway)
    verdict_first = "target met" if h_first < FIRST_FRAME_TARGET else "TARGET MISSED"
    verdict_conn = "target met" if h_conn < CONNECTED_TARGET else "TARGET MISSED"
    print(f"  {'hardway (app on a 200x50 pty)':<34}{h_first:>10.3f} s{h_conn:>13.3f} s   "
          f"first frame {verdict_first} (< {FIRST_FRAME_TARGET} s), "
          f"connected {verdict_conn} (< {CONNECTED_TARGET} s)")
    f_first = statistics.median(floor)
    print(f"  {'minimal Textual app (the floor)':<34}{f_first:>10.3f} s{'-':>15}   "
          f"hardway's first frame is the floor + {h_first - f_first:.3f} s "
          f"(ratio {h_first / f_first:.2f})")
    if peer:
        t_first = statistics.median(r["first_frame"] for r in peer)
        t_conn = statistics.median(r["connected"] for r in peer)
        print(f"  {'tmux new-session, 3 ssh panes':<34}{t_first:>10.3f} s{t_conn:>13.3f} s   "
              f"ratio hardway/tmux: first frame {h_first / t_first:.2f}, "
              f"connected {h_conn / t_conn:.2f}")


if __name__ == "__main__":
    main()
