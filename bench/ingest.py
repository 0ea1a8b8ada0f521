"""Console ingest benchmark: hardway's panes vs tmux in the same run, keystroke latency.

Three lab controllers (a :class:`~tui.lab.lab.LabRunner`; by default in a child process,
so this process does only what a client does with real hosts; ``--lab thread`` runs it
in-process as ``hardway demo`` does) each print ``seq 1 1000000`` on a PTY:

* **hardway**: the real app (``create_app``) runs headless at 200x50.  The line is put
  in the broadcast bar and Enter pressed.  A round ends when every host's
  ``CommandFinished`` arrived and a composed frame shows ``1000000`` in every pane.
  Headless Textual skips turning frames into escape sequences; the benchmark does that
  too (``render_segments``), so only the write to a real tty is missing.
* **keystrokes**: during each flood a thread presses ``x`` every 20 ms into
  controller-0's focused pane, the way a terminal driver's input thread hands keys to
  the app (``call_soon_threadsafe``).  Latency runs from the press to the key reaching
  the host's shell, to its echo fed to the pane's Terminal, and to the first frame
  composed after that.  A second phase floods two hosts and types into the third, idle
  at its prompt (what a user typing next to a flood feels).
* **tmux** (own server on a private socket, 200x50, history-limit 10,000, three
  panes, killed at the end): ``seq`` run locally in each pane (the reference figure),
  ``ssh -tt -F LAB/ssh_config HOST seq ...`` per pane, and ``seq`` typed into a
  persistent ``ssh -tt`` session per pane (what hardway's shells are).  A round ends
  when ``tmux wait-for`` got every pane's signal and ``capture-pane`` shows ``1000000``.

Prints lines/s (median of ``--repeat`` rounds) with the ratio to each tmux variant,
where the app's thread spent the last round, keystroke latency p50/p99/max, and memory
(lines and bytes each pane keeps against the 10,000-line scrollback cap, process RSS
after each round, console broadcast records).  ``--profile FILE`` adds a cProfile of
the last round.  Run: ``.venv/bin/python bench/ingest.py`` (see ``--help``).  Not part
of the test suite; see bench/README.md for the figures and how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOSTS = ["controller-0", "controller-1", "controller-2"]
SIZE = (200, 50)
KEY_INTERVAL = 0.020
KEY = "x"
TARGET_RATE = 1_000_000
TARGET_P99_MS = 50.0
SCROLLBACK = 10_000
BAR = "broadcast-bar"
"""``typing_host`` meaning: keys go to the console's broadcast bar (echoed locally)."""
LAB_PIDS: list[int] = []
"""The lab's processes (this one with ``--lab thread``)."""
RELAY_PID = [0]
"""The app's shell relay process (where the console's SSH work happens)."""


# -- small helpers ---------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM of a process in KiB (from /proc)."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by the app's thread (``app``), the lab (its thread, or its
    processes) and the rest of this process."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {"app": 0.0, "lab": 0.0, "other": 0.0}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tid = int(task.name)
        kind = "app" if tid == main else "lab" if names.get(tid) == "hardway-lab" else "other"
        used[kind] += (int(fields[11]) + int(fields[12])) / tick
    if LAB_PIDS and os.getpid() not in LAB_PIDS:
        used["lab"] = sum(process_cpu(pid) for pid in LAB_PIDS)
    used["relay"] = process_cpu(RELAY_PID[0]) if RELAY_PID[0] else 0.0
    return used


def retained_bytes(root: object) -> int:
    """Bytes of every object reachable from ``root`` (types, modules, code excluded)."""
    import types

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
            types.CodeType, types.MethodType)
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def last_line_in(lines: Iterable[str], wanted: str) -> bool:
    """True when one of ``lines`` is ``wanted`` once echoed keys are removed."""
    return any(line.replace(KEY, "").rstrip() == wanted for line in lines)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f}"


# -- hardway side ----------------------------------------------------------------------

@dataclass
class Latency:
    """Keystroke latencies of one phase (seconds from the key press).

    Attributes:
        to_shell: until the console wrote the key to the host's shell (the app's input path).
        to_terminal: until the echo was fed to the pane's Terminal.
        to_frame: until the first frame composed after that.
        loop_lag: how late a 10 ms timer on the app's loop fired, sampled during the flood.
    """

    to_shell: list[float] = field(default_factory=list)
    to_terminal: list[float] = field(default_factory=list)
    to_frame: list[float] = field(default_factory=list)
    loop_lag: list[float] = field(default_factory=list)
    sent: int = 0

    def extend(self, other: Latency) -> None:
        self.to_shell += other.to_shell
        self.to_terminal += other.to_terminal
        self.to_frame += other.to_frame
        self.loop_lag += other.loop_lag
        self.sent += other.sent


@dataclass
class HardwayRound:
    """One flood of every pane."""

    seconds: float
    finished: dict[str, float]
    latency: Latency
    cpu: dict[str, float]


class Probe:
    """Follows the shells, the key path and the frames of the running app."""

    def __init__(self, screen: Any, lines: int) -> None:
        from tui.core.fleet.shell import CommandFinished, ShellOutput

        self._finished_type, self._output_type = CommandFinished, ShellOutput
        self.screen = screen
        self.wanted = str(lines)
        self.command = ""
        self.hosts: list[str] = []
        self.finished: dict[str, float] = {}
        self.on_screen: dict[str, float] = {}
        self.typing_host: str | None = None
        self.bar = screen.query_one("#broadcast-input")
        self.bar_shown = 0
        self.latency = Latency()
        self.pressed: deque[float] = deque()  # appended by the key-press thread
        self._to_shell: deque[float] = deque()
        self._framing: list[tuple[float, int]] = []
        self.done = asyncio.Event()
        self.last_output: dict[str, float] = {}
        self.frames = 0
        self.frame_time = 0.0
        self._unsubscribe = [screen.console.shell(name).subscribe(self._event_for(name))
                             for name in HOSTS]
        console = screen.console
        type_to = console.type_to

        def typed(name: str, data: str) -> bool:  # the console's per-pane input path
            if name == self.typing_host and data == KEY and self.pressed:
                self._to_shell.append(self.pressed.popleft())
                self.latency.to_shell.append(time.perf_counter() - self._to_shell[-1])
            return bool(type_to(name, data))

        console.type_to = typed

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        del self.screen.console.type_to

    def arm(self, command: str, hosts: list[str], typing_host: str | None) -> None:
        """Expect ``command`` to finish on ``hosts``; keys go to ``typing_host``."""
        self.command, self.hosts, self.typing_host = command, hosts, typing_host
        self.bar_shown = 0
        self.finished, self.on_screen = {}, {}
        self.latency = Latency()
        self.pressed.clear()
        self._to_shell.clear()
        self._framing.clear()
        self.done.clear()

    async def quiet(self, name: str, seconds: float = 0.3) -> None:
        """Wait until ``name``'s shell printed nothing for ``seconds``."""
        while time.perf_counter() - self.last_output.get(name, 0.0) < seconds:
            await asyncio.sleep(0.05)

    @property
    def typing(self) -> bool:
        """Keys are wanted: a pane to type into whose command (if any) is still running."""
        host = self.typing_host
        return host is not None and host not in self.finished and not self.done.is_set()

    def _event_for(self, name: str) -> Callable[[object], None]:
        def on_event(event: object) -> None:
            # Runs after the screen's own listener has fed the pane's Terminal.
            if isinstance(event, self._output_type):
                self.last_output[name] = time.perf_counter()
                if name == self.typing_host and name not in self.finished and self._to_shell:
                    echoes = event.data.count(KEY)
                    now = time.perf_counter()
                    version = self.screen._pane(name).terminal.version
                    for _ in range(min(echoes, len(self._to_shell))):
                        at = self._to_shell.popleft()
                        self.latency.to_terminal.append(now - at)
                        self._framing.append((at, version))
            elif (isinstance(event, self._finished_type) and name in self.hosts
                  and event.command == self.command):
                self.finished[name] = time.perf_counter()
                terminal = self.screen._pane(name).terminal
                tail = range(max(0, terminal.lines_total - 4), terminal.lines_total)
                if not last_line_in((terminal.line_text(i) for i in tail), self.wanted):
                    print(f"  warning: {name} finished but its pane lacks {self.wanted}")
                if all(h in self.finished for h in self.hosts):
                    self.done.set()
        return on_event

    def frame(self) -> None:
        """A frame was composed: settle the keystrokes whose echo it includes, and note
        the panes that show their last line."""
        now = time.perf_counter()
        if self.typing_host == BAR:
            # a key typed into the bar is on screen in the first frame after the bar's
            # value has it
            shown = self.bar.value.count(KEY)
            while self.bar_shown < shown and self.pressed:
                self.latency.to_frame.append(now - self.pressed.popleft())
                self.bar_shown += 1
        elif self._framing and self.typing_host is not None:
            painted = self.screen._pane(self.typing_host).view._painted
            keep = []
            for at, version in self._framing:
                if painted >= version:
                    self.latency.to_frame.append(now - at)
                else:
                    keep.append((at, version))
            self._framing = keep
        for name in self.hosts:
            if name in self.finished and name not in self.on_screen:
                view = self.screen._pane(name).view
                if view._painted == view.terminal.version and last_line_in(
                        view.visible_text(), self.wanted):
                    self.on_screen[name] = now


class EchoProbe(threading.Thread):
    """The lab's own floor: OpenSSH's ``ssh -tt`` into the idle host on a PTY of its own,
    typing KEY every KEY_INTERVAL while :attr:`on` is set and timing each echo.  Run
    during the same floods as the app's keystrokes, it shows how much of their latency is
    the lab server's (one Python process serving all three hosts) rather than the app's."""

    def __init__(self, ssh_config: Path, host: str) -> None:
        super().__init__(name="bench-echo", daemon=True)
        import pty

        self.rtts: list[float] = []
        self.on = threading.Event()
        self.stop = threading.Event()
        self.error = ""
        self._pid, self._fd = pty.fork()
        if self._pid == 0:  # the child: OpenSSH's client on the PTY
            os.execvp("ssh", ["ssh", "-q", "-tt", "-F", str(ssh_config), host])

    def _read_until(self, wanted: bytes, seconds: float) -> bool:
        import select

        got, deadline = b"", time.perf_counter() + seconds
        while wanted not in got:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return False
            try:
                got += os.read(self._fd, 65536)
            except OSError:
                return False
        return True

    def run(self) -> None:
        if not self._read_until(b"# ", 15):
            self.error = "no prompt from ssh"
            return
        while not self.stop.is_set():
            if not self.on.wait(0.05):
                continue
            start = time.perf_counter()
            os.write(self._fd, KEY.encode())
            if self._read_until(KEY.encode(), 2):
                self.rtts.append(time.perf_counter() - start)
            time.sleep(KEY_INTERVAL)
        with contextlib.suppress(OSError):
            os.write(self._fd, b"\x15exit\r")

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._pid, 0)


def hook_frames(app: Any, probe_of: Callable[[], Probe | None]) -> None:
    """Make the headless app encode every frame into escape sequences (as it does on a
    real terminal) and tell the probe."""
    from textual._compositor import CompositorUpdate

    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        original(screen, renderable)
        if isinstance(renderable, CompositorUpdate) and app._running:
            start = time.perf_counter()
            renderable.render_segments(app.console)
            probe = probe_of()
            if probe is not None:
                probe.frames += 1
                probe.frame_time += time.perf_counter() - start
                probe.frame()

    app._display = display


class KeyPresser(threading.Thread):
    """Presses KEY every KEY_INTERVAL while the probe wants keys, from its own thread, the
    way a terminal driver's input thread hands keys to the app's loop."""

    def __init__(self, app: Any, probe: Probe) -> None:
        super().__init__(name="bench-keys", daemon=True)
        from textual import events

        self._key = events.Key
        self._app, self._probe = app, probe
        self._loop = asyncio.get_running_loop()
        self.stop = threading.Event()

    def run(self) -> None:
        driver = self._app._driver
        while not self.stop.wait(KEY_INTERVAL):
            if self._probe.typing:
                self._probe.pressed.append(time.perf_counter())
                self._probe.latency.sent += 1
                self._loop.call_soon_threadsafe(driver.send_message, self._key(KEY, KEY))


async def sample_loop_lag(probe: Probe) -> None:
    """Record how late a 10 ms sleep wakes up, until the probe's round is done."""
    while not probe.done.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.010)
        probe.latency.loop_lag.append(time.perf_counter() - start - 0.010)


class Breakdown:
    """CPU time of the app's thread spent inside chosen functions (inclusive: a stage
    contains the stages it calls), installed by wrapping them for the benchmark."""

    STAGES = (
        ("SSH receive (asyncssh, and all below)", "asyncssh.connection", "SSHConnection",
         "data_received"),
        ("  shell: OSC 133 parse, capture, events", "tui.core.fleet.shell", "Shell",
         "_received"),
        ("    pane Terminal ingest", "tui.widgets.host_pane", "HostPane", "feed"),
        ("    console model (transcripts, records)", "tui.core.console.console", "Console",
         "_on_shell_event"),
        ("      command finished (output to text)", "tui.core.console.console", "Console",
         "_on_finished"),
        ("frames: screen update (render, compose)", "textual.screen", "Screen",
         "_on_timer_update"),
        ("  of which full layout refreshes", "textual.screen", "Screen", "_refresh_layout"),
        ("pane repaint timers (TerminalView.sync)", "tui.widgets.terminal_view",
         "TerminalView", "sync"),
        ("pane title updates (HostPane.watch_status)", "tui.widgets.host_pane", "HostPane",
         "watch_status"),
    )

    def __init__(self) -> None:
        import importlib

        self.seconds = dict.fromkeys((label for label, *_ in self.STAGES), 0.0)
        self.calls = dict.fromkeys(self.seconds, 0)
        self.on = False
        self._restore: list[tuple[type, str, Any]] = []
        main = threading.main_thread()
        for label, module, cls_name, attr in self.STAGES:
            cls = getattr(importlib.import_module(module), cls_name)
            original = cls.__dict__[attr]
            self._restore.append((cls, attr, original))

            @functools.wraps(original)  # Textual reads a watcher's signature
            def timed(*args: Any, _f: Any = original, _l: str = label, **kw: Any) -> Any:
                if not self.on or threading.current_thread() is not main:
                    return _f(*args, **kw)
                start = time.thread_time()
                try:
                    return _f(*args, **kw)
                finally:
                    self.seconds[_l] += time.thread_time() - start
                    self.calls[_l] += 1

            setattr(cls, attr, timed)

    def reset(self) -> None:
        for label in self.seconds:
            self.seconds[label], self.calls[label] = 0.0, 0

    def remove(self) -> None:
        for cls, attr, original in self._restore:
            setattr(cls, attr, original)


class SlowCallbacks:
    """Callbacks on the app's loop that ran longer than a threshold during the floods
    (``--slow-callbacks MS``): what blocks the loop, and so delays keys and frames."""

    def __init__(self, threshold_ms: float) -> None:
        import asyncio.events as aevents

        self.threshold = threshold_ms / 1e3
        self.on = False
        self.seen: dict[str, list[float]] = {}
        self.cpu: dict[str, float] = {}
        self._cls = aevents.Handle
        self._original = original = aevents.Handle._run
        main = threading.main_thread()

        def run(handle: Any) -> None:
            if not self.on or threading.current_thread() is not main:
                original(handle)
                return
            start, cpu = time.perf_counter(), time.thread_time()
            original(handle)
            took = time.perf_counter() - start
            if took >= self.threshold:
                self.seen.setdefault(self.label(handle), []).append(took)
                self.cpu[self.label(handle)] = self.cpu.get(self.label(handle), 0.0) + (
                    time.thread_time() - cpu)

        aevents.Handle._run = run  # type: ignore[method-assign]

    @staticmethod
    def label(handle: Any) -> str:
        callback = handle._callback
        owner = getattr(callback, "__self__", None)
        coro = getattr(owner, "get_coro", None)
        if coro is not None:  # a task step: the chain of coroutines where it resumed
            names, link = [], coro()
            while link is not None and hasattr(link, "cr_code"):
                name = link.cr_code.co_qualname
                owner = link.cr_frame.f_locals.get("self") if link.cr_frame else None
                if name == "Timer._run" and owner is not None:
                    name += f"({owner.name}: {getattr(owner._callback, '__qualname__', '')})"
                names.append(name)
                link = link.cr_await
            return "task " + " > ".join(names)
        return getattr(callback, "__qualname__", repr(callback))

    def report(self) -> None:
        rows = sorted(self.seen.items(), key=lambda kv: -sum(kv[1]))
        print(f"loop callbacks over {self.threshold * 1e3:.0f} ms during the floods "
              "(count, total ms wall, total ms CPU, max ms wall):")
        for label, took in rows[:15]:
            print(f"  {len(took):5d} {sum(took) * 1e3:8.0f} {self.cpu[label] * 1e3:8.0f} "
                  f"{max(took) * 1e3:7.1f}  {label}")

    def remove(self) -> None:
        self._cls._run = self._original  # type: ignore[method-assign]


def describe_stuck(screen: Any, probe: Probe) -> None:
    """Say where each pane stands (and dump its text) when a flood does not finish."""
    for name in HOSTS:
        terminal = screen._pane(name).terminal
        shell = screen.console.shell(name)
        dump = Path(tempfile.gettempdir()) / f"hardway-ingest-{name}.txt"
        dump.write_text(terminal.text())
        tail = [terminal.line_text(i) for i in range(max(0, terminal.lines_total - 3),
                                                     terminal.lines_total)]
        state = "no shell" if shell is None else "busy" if shell.busy else "idle"
        print(f"  {name}: {state}, finished {name in probe.finished}, last lines {tail}; "
              f"pane text in {dump}")
    records = screen.console.broadcasts
    print("  last broadcast:", records[-1].describe() if records else "none")


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/ingest.py: gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def hardway_rounds(inventory_path: Path, scratch: Path, lines: int, repeat: int,
                         profile: Path | None, ssh_config: Path,
                         slow_ms: float = 0.0) -> dict[str, Any]:
    """Run the app headless and flood its panes ``repeat`` times; return the figures."""
    from textual import events
    from textual.widgets import Input

    from screens.console import ConsoleScreen
    from tui.app import create_app
    from tui.core.inventory.load import load_inventory
    from tui.core.workbench import Workbench

    inventory = load_inventory(inventory_path)
    breakdown = Breakdown()
    slow = SlowCallbacks(slow_ms) if slow_ms else None
    app = create_app(Workbench(inventory, host_keys="ask", audit_path=scratch / "audit.jsonl"))
    command = f"seq 1 {lines}"
    current: list[Probe | None] = [None]
    results: dict[str, Any] = {"rounds": [], "rss": []}
    async with app.run_test(size=SIZE) as pilot:
        hook_frames(app, lambda: current[0])
        screen = app.screen
        assert isinstance(screen, ConsoleScreen) and app._driver is not None
        driver = app._driver
        await wait_until(lambda: getattr(screen, "_model", None) is not None, 30, "the console")
        await wait_until(lambda: all(
            str(getattr(screen.console.shell(n), "state", "")) == "open"
            and n in screen._outputs for n in HOSTS), 60, "three open shells")
        await pilot.pause(0.3)
        relay = screen.workbench.relay
        RELAY_PID[0] = relay._process.pid if relay is not None and relay._process else 0
        probe = current[0] = Probe(screen, lines)
        presser = KeyPresser(app, probe)
        presser.start()
        bar = screen.query_one("#broadcast-input", Input)

        async def flood(hosts: list[str], typing_host: str) -> HardwayRound:
            console = screen.console
            await wait_until(lambda: not any(getattr(console.shell(h), "busy", True)
                                             for h in HOSTS), 10, "idle shells before the flood")
            console.broadcast_set.select(hosts)
            bar.focus()
            await pilot.pause(0.05)
            bar.value = command
            cpu = thread_cpu()
            probe.arm(command, hosts, None)
            before = console.broadcasts[-1].id if console.broadcasts else 0
            start = time.perf_counter()
            driver.send_message(events.Key("enter", "\r"))
            lag = asyncio.ensure_future(sample_loop_lag(probe))
            if slow is not None:
                slow.on = True
            # Keys go to the pane only once Enter has reached the bar and broadcast the line.
            await wait_until(lambda: bool(console.broadcasts)
                             and console.broadcasts[-1].id > before, 30, "the broadcast")
            sent = console.broadcasts[-1]
            if sent.line != command or list(sent.runs) != hosts:
                raise SystemExit("bench/ingest.py: the broadcast did not start as a command on "
                                 f"{hosts}: {sent.describe()}")
            if typing_host != BAR:
                screen._pane(typing_host).view.focus()
            probe.typing_host = typing_host
            try:
                await wait_until(probe.done.is_set, 60 + lines / 10_000, f"{command} to finish")
            except SystemExit:
                describe_stuck(screen, probe)
                raise
            await lag
            if slow is not None:
                slow.on = False
            await wait_until(lambda: all(h in probe.on_screen for h in hosts), 10,
                             "the last line on screen")
            end = max(probe.on_screen.values())
            result = HardwayRound(end - start, {h: t - start for h, t in probe.finished.items()},
                                  probe.latency,
                                  {k: v - cpu[k] for k, v in thread_cpu().items()})
            if typing_host == BAR:
                bar.value = ""
                return result
            # The keys typed ahead reach bash's prompt after the flood: once they have all
            # been echoed, erase the line (^U) so the next broadcast runs as typed.
            await probe.quiet(typing_host)
            screen.console.type_to(typing_host, "\x15")
            await probe.quiet(typing_host)
            return result

        results["rss_before"] = proc_status().get("VmRSS", 0)
        profiler = cProfile.Profile() if profile else None
        try:
            for index in range(repeat):
                gc.collect()
                probe.frames, probe.frame_time = 0, 0.0
                breakdown.reset()
                breakdown.on = True
                if profiler and index == repeat - 1:
                    profiler.enable()
                outcome = await flood(HOSTS, HOSTS[0])
                if profiler and index == repeat - 1:
                    profiler.disable()
                breakdown.on = False
                results["rounds"].append(outcome)
                results["rss"].append(proc_status().get("VmRSS", 0))
                print(f"  hardway round {index + 1}: {3 * lines / outcome.seconds / 1e6:5.2f} M "
                      f"lines/s ({outcome.seconds:.2f} s; finished "
                      + ", ".join(f"{h[-1]}: {t:.2f}" for h, t in outcome.finished.items())
                      + f"; {probe.frames} frames; CPU s: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in outcome.cpu.items()) + ")",
                      flush=True)
            results["frames"] = probe.frames
            results["breakdown"] = (dict(breakdown.seconds), dict(breakdown.calls))
            results["frame_ms"] = probe.frame_time / max(1, probe.frames) * 1e3
            quiet = Latency()
            echo = EchoProbe(ssh_config, HOSTS[2])
            echo.start()
            await asyncio.sleep(1.0)  # its login, before the floods
            try:
                for _ in range(repeat):
                    echo.on.set()
                    quiet.extend((await flood(HOSTS[:2], HOSTS[2])).latency)
                    echo.on.clear()
            finally:
                echo.close()
            results["quiet"] = quiet
            results["floor"] = echo.rtts
            typed = Latency()
            for _ in range(repeat):
                typed.extend((await flood(HOSTS, BAR)).latency)
            results["bar"] = typed
            if echo.error:
                print(f"  warning: the OpenSSH echo probe failed: {echo.error}")
        finally:
            presser.stop.set()
            probe.close()
        terminals = {n: screen._pane(n).terminal for n in HOSTS}
        results["terminal_lines"] = {n: t.lines_total for n, t in terminals.items()}
        results["terminal_bytes"] = {n: retained_bytes(t) for n, t in terminals.items()}
        records = screen.console.broadcasts
        results["records"] = (len(records), sum(len(run.output) for record in records
                                                for run in record.runs.values()))
        results["hwm"] = proc_status().get("VmHWM", 0)
        screen.console.broadcast_set.select(HOSTS)
        if profiler and profile:
            profiler.dump_stats(str(profile))
            results["profile"] = profile
        await app.action_quit()
    breakdown.remove()
    if slow is not None:
        slow.remove()
        results["slow"] = slow
    return results


# -- tmux side -------------------------------------------------------------------------

class Tmux:
    """Our own tmux server on a private socket (killed at the end, and only it)."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "tmux.sock"
        self.conf = directory / "tmux.conf"
        self.conf.write_text("set -g history-limit 10000\nset -g status off\n")
        self.panes: list[str] = []

    def __call__(self, *args: str, timeout: float = 60.0) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise SystemExit(f"bench/ingest.py: tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        shell = "env PS1='$ ' bash --norc --noprofile -i"
        self("-f", str(self.conf), "new-session", "-d", "-s", "bench", "-x", str(SIZE[0]),
             "-y", str(SIZE[1]), shell)
        self("split-window", "-h", "-t", "bench", shell)
        self("split-window", "-h", "-t", "bench", shell)
        self("select-layout", "-t", "bench", "even-horizontal")
        self.panes = self("list-panes", "-t", "bench", "-F", "#{pane_id}").split()
        assert len(self.panes) == 3, self.panes

    def server_pid(self) -> int:
        return int(self("display-message", "-p", "#{pid}").strip())

    def stop(self) -> None:
        if self.socket.exists():
            subprocess.run(["tmux", "-S", str(self.socket), "kill-server"],
                           capture_output=True, check=False)

    def send(self, commands: list[str]) -> None:
        """Type one line into each pane (one tmux invocation)."""
        args: list[str] = []
        for pane, line in zip(self.panes, commands, strict=True):
            args += ["send-keys", "-t", pane, line, "Enter", ";"]
        self(*args[:-1])

    def shows(self, pane: str, wanted: str) -> bool:
        return last_line_in(self("capture-pane", "-p", "-t", pane).splitlines(), wanted)

    def wait_for(self, channel: str, timeout: float = 120.0) -> None:
        self("wait-for", channel, timeout=timeout)


def tmux_round(tmux: Tmux, commands: list[str], lines: int, tag: str) -> float:
    """Run ``commands`` (one per pane, each followed by a wait-for signal); seconds."""
    wanted = str(lines)
    sock = tmux.socket
    start = time.perf_counter()
    tmux.send([f"{c}; tmux -S {sock} wait-for -S {tag}-{i}" for i, c in enumerate(commands)])
    for i in range(len(commands)):
        tmux.wait_for(f"{tag}-{i}")
    for pane in tmux.panes:
        while not tmux.shows(pane, wanted):
            time.sleep(0.005)
    return time.perf_counter() - start


def tmux_side(scratch: Path, ssh_config: Path, lines: int, repeat: int) -> dict[str, Any]:
    """Median seconds per variant, and the tmux server's peak RSS."""
    tmux = Tmux(scratch)
    results: dict[str, Any] = {}
    seq = f"seq 1 {lines}"
    ssh = f"ssh -q -tt -F {ssh_config}"
    try:
        tmux.start()
        pid = tmux.server_pid()
        variants = [
            ("tmux, local seq", [seq] * 3),
            ("tmux, ssh -tt per command", [f"{ssh} {h} {seq}" for h in HOSTS]),
        ]
        for label, commands in variants:
            tmux("clear-history", "-t", tmux.panes[0])
            times = [tmux_round(tmux, commands, lines, f"r{i}{len(results)}")
                     for i in range(repeat)]
            results[label] = times
            print(f"  {label}: " + ", ".join(f"{3 * lines / t / 1e6:.2f}" for t in times)
                  + " M lines/s", flush=True)
        # Persistent sessions: log in once per pane, then run seq in the remote shell.
        tmux.send([f"{ssh} {h}" for h in HOSTS])
        tmux.send([f"tmux -S {tmux.socket} wait-for -S in-{i}" for i in range(3)])
        for i in range(3):
            tmux.wait_for(f"in-{i}", timeout=30)
        label = "tmux, persistent ssh session"
        times = [tmux_round(tmux, [seq] * 3, lines, f"p{i}") for i in range(repeat)]
        results[label] = times
        print(f"  {label}: " + ", ".join(f"{3 * lines / t / 1e6:.2f}" for t in times)
              + " M lines/s", flush=True)
        tmux.send(["exit"] * 3)
        results["hwm"] = proc_status(pid).get("VmHWM", 0)
    finally:
        tmux.stop()
    return results


# -- report ----------------------------------------------------------------------------

def verdict(ok: bool, target: str) -> str:
    return "target met" if ok else f"TARGET MISSED ({target})"


def app_part(latency: Latency) -> list[float]:
    """Per echoed key, the time the app itself took: press to the shell's write, plus the
    echo's arrival in the Terminal to the frame that shows it (the rest is the relay,
    the network and the host: the round trip the OpenSSH floor measures)."""
    return [shell + (frame - terminal) for shell, terminal, frame
            in zip(latency.to_shell, latency.to_terminal, latency.to_frame, strict=False)]


def report(lines: int, hw: dict[str, Any], tm: dict[str, Any] | None) -> None:
    rounds: list[HardwayRound] = hw["rounds"]
    median = statistics.median(r.seconds for r in rounds)
    rate = 3 * lines / median
    print()
    print(f"ingest: 3 panes x seq 1 {lines:,} over SSH from lab hosts, 200x50, "
          f"median of {len(rounds)}")
    print(f"  {'tool':<32} {'seconds':>8} {'M lines/s':>10}")
    print(f"  {'hardway (console panes)':<32} {median:8.3f} {rate / 1e6:10.2f}   "
          + verdict(rate >= TARGET_RATE, ">= 1.0 M lines/s"))
    if tm:
        for label, times in tm.items():
            if label == "hwm":
                continue
            t = statistics.median(times)
            print(f"  {label:<32} {t:8.3f} {3 * lines / t / 1e6:10.2f}   "
                  f"rate hardway/this {t / median:5.2f}")
    print(f"  frames composed during the last round: {hw['frames']} "
          f"(encoding each into escape sequences: {hw['frame_ms']:.2f} ms)")
    seconds, calls = hw["breakdown"]
    last = rounds[-1]
    print(f"where the app's thread spent the last round ({last.seconds:.2f} s wall, "
          f"{last.cpu['app']:.2f} s CPU), inclusive CPU seconds:")
    for label, value in seconds.items():
        print(f"  {label:<46} {value:6.2f} s  {calls[label]:6d} calls")
    latency = Latency()
    for r in rounds:
        latency.extend(r.latency)
    quiet: Latency = hw["quiet"]
    print("keystroke latency during the flood (key press -> ...), ms:")
    print(f"  {'':<52} {'n':>5} {'p50':>7} {'p99':>7} {'max':>7}")
    rows = [("typed into a flooding pane: key reached its shell", latency.to_shell, "", 0),
            ("  echo in the pane's Terminal", latency.to_terminal, "", latency.sent),
            # no target: the echo comes after everything the host printed before it
            ("  next frame composed after it (after the flood)", latency.to_frame, "",
             latency.sent),
            ("typed into an idle pane (2 flood): key reached shell", quiet.to_shell, "", 0),
            ("  echo in the pane's Terminal", quiet.to_terminal, "", quiet.sent),
            ("  next frame composed after it (on screen)", quiet.to_frame, "target",
             quiet.sent),
            ("  the lab's floor: OpenSSH ssh -tt echo, same host", hw["floor"], "", 0),
            ("  the app's own part (to shell + Terminal to frame)", app_part(quiet), "target",
             0),
            ("typed into the broadcast bar (3 flood): next frame", hw["bar"].to_frame,
             "target", hw["bar"].sent),
            ("app loop lag (10 ms timer), all floods", latency.loop_lag + quiet.loop_lag, "", 0)]
    for label, values, target, sent in rows:
        p99 = percentile(values, 99)
        note = verdict(p99 * 1e3 <= TARGET_P99_MS, "p99 <= 50 ms") if target else ""
        if sent and len(values) != sent:
            note += f" ({len(values)} of {sent} keys echoed before the end)"
        print(f"  {label:<52} {len(values):5d} {ms(percentile(values, 50))} {ms(p99)} "
              f"{ms(max(values) if values else float('nan'))}  {note}")
    print("memory:")
    cap = SCROLLBACK
    for name in HOSTS:
        kept = hw["terminal_lines"][name]
        size = hw["terminal_bytes"][name]
        print(f"  {name} pane: {kept:,} lines kept (cap {cap:,} + screen), "
              f"{size / 2**20:5.2f} MiB retained   "
              + verdict(kept <= cap + SIZE[1], "lines <= scrollback cap + screen"))
    rss = hw["rss"]
    who = "app and lab" if os.getpid() in LAB_PIDS else "app"
    print(f"  process RSS ({who}): {hw['rss_before'] / 1024:.0f} MiB before, "
          + ", ".join(f"{r / 1024:.0f}" for r in rss) + f" MiB after each round "
          f"(+{(rss[-1] - hw['rss_before']) / 1024:.0f} MiB); peak {hw['hwm'] / 1024:.0f} MiB")
    from tui.core.console.console import KEEP_OUTPUT, MAX_BROADCASTS

    kept, chars = hw["records"]
    bound = MAX_BROADCASTS * len(HOSTS) * KEEP_OUTPUT
    print(f"  console broadcast records: {kept} kept, holding {chars / 2**20:.1f} MiB of "
          f"command output; bounded at {MAX_BROADCASTS} records x {len(HOSTS)} hosts x "
          f"{KEEP_OUTPUT:,} characters = {bound / 2**20:,.0f} MiB")
    if tm and tm.get("hwm"):
        print(f"  tmux server peak RSS: {tm['hwm'] / 1024:.0f} MiB")
    if hw.get("slow"):
        hw["slow"].report()
    if hw.get("profile"):
        print(f"\nprofile of the last hardway round ({hw['profile']}), top by own time:")
        stats = pstats.Stats(str(hw["profile"]))
        stats.sort_stats("tottime").print_stats(18)


@contextlib.contextmanager
def running_lab(mode: str, directory: Path, network: str,
                niceness: int = 0) -> Iterator[tuple[Path, Path, list[int]]]:
    """A 3-controller lab in this process (``thread``, as ``hardway demo``), in one child
    process (``process``), or in a child process per host (``hosts``, the default: as
    hosts on machines of their own, an idle host's echo does not wait behind the
    flooding hosts' SSH work).  Yields (inventory path, ssh_config path, lab pids)."""
    from tui.lab.lab import LabRunner

    if mode == "thread":
        with LabRunner(directory, controllers=3, network=network,
                       services=False) as runner:
            yield runner.lab.inventory_path, runner.lab.ssh_config_path, [os.getpid()]
        return
    groups = [HOSTS] if mode == "process" else [[name] for name in HOSTS]
    children: list[subprocess.Popen[str]] = []
    try:
        for index, group in enumerate(groups):
            home = directory if index == 0 else directory.parent / f"{directory.name}-{index}"
            if index:  # the same host and client keys as the first lab directory's
                home.mkdir(mode=0o700)
                shutil.copytree(directory / "hostkeys", home / "hostkeys")
                shutil.copy2(directory / "id_ed25519", home / "id_ed25519")
            child = subprocess.Popen(
                [sys.executable, __file__, "--serve-lab", str(home), "--network", network,
                 "--lab-nice", str(niceness), "--serve-hosts", ",".join(group)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            children.append(child)
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"bench/ingest.py: the lab did not start ({line.strip()!r})")
        yield directory / "inventory.toml", directory / "ssh_config", [c.pid for c in children]
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.close()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.terminate()
                child.wait(timeout=10)


def serve_lab(directory: Path, network: str, niceness: int, hosts: list[str]) -> None:
    """Child process: serve lab ``hosts`` until stdin closes."""
    from tui.lab.lab import LabRunner

    if niceness:
        os.nice(niceness)
    with LabRunner(directory, controllers=3, network=network, services=False, serve=hosts):
        print("ready", flush=True)
        sys.stdin.read()


def pin(pid: int, cpus: set[int]) -> None:
    """Run every thread of process ``pid`` on ``cpus`` (threads and children it starts
    later inherit that)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--network", default="127.0.97",
                        help="loopback /24 of the lab (default 127.0.97)")
    parser.add_argument("--lab", choices=("hosts", "process", "thread"), default="hosts",
                        help="run each lab host in a child process of its own (default: as "
                             "with real hosts, the app's process does only a client's work "
                             "and an idle host does not wait behind flooding ones), all "
                             "three in one child process, or in a thread of the app's "
                             "process, as `hardway demo` does")
    parser.add_argument("--no-tmux", action="store_true", help="hardway side only")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the last hardway round into this file and print the top")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--pin", action="store_true",
                        help="run the lab on CPU 1 and everything else (the app, its relay, "
                             "tmux and its ssh clients) on CPU 0: the hosts then never take "
                             "the client's core, as hosts on machines of their own would not")
    parser.add_argument("--lab-nice", type=int, default=0, metavar="N",
                        help="run the lab process at niceness N (e.g. 19): the lab's hosts "
                             "then take only CPU the client leaves, closer to hosts on "
                             "machines of their own (applies to tmux's runs too)")
    parser.add_argument("--slow-callbacks", type=float, default=0.0, metavar="MS",
                        help="list the app loop's callbacks that ran longer than MS "
                             "milliseconds during the floods (what delays keys and frames)")
    parser.add_argument("--serve-lab", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-hosts", default=",".join(HOSTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lab:
        serve_lab(args.serve_lab, args.network, args.lab_nice, args.serve_hosts.split(","))
        return
    if args.pin and (os.cpu_count() or 1) < 2:
        raise SystemExit("bench/ingest.py: --pin needs at least 2 CPUs")
    if not args.no_tmux and shutil.which("tmux") is None:
        raise SystemExit("bench/ingest.py: tmux is not installed (or pass --no-tmux)")

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: our tmux server and lab stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="hardway-ingest-"))
    # The app's history and host-key records go to the scratch directory, not ~/.local.
    os.environ["XDG_STATE_HOME"] = str(scratch / "state")
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")
    try:
        lab = running_lab(args.lab, scratch / "lab", args.network, args.lab_nice)
        with lab as (inventory, config, pids):
            where = ("in this process" if args.lab == "thread" else
                     f"child process {pids[0]}" if args.lab == "process" else
                     "a child process each: " + ", ".join(map(str, pids)))
            if args.lab_nice and args.lab != "thread":
                where += f", niceness {args.lab_nice}"
            print(f"lab: 3 controllers on {args.network}.10-12:2222 ({where}), "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
            LAB_PIDS[:] = pids
            if args.pin:
                for pid in pids:
                    pin(pid, {1})
                pin(os.getpid(), {0})
                print("  pinned: the lab on CPU 1; this process, the relay and tmux on CPU 0",
                      flush=True)
            hw = asyncio.run(hardway_rounds(inventory, scratch, args.lines, args.repeat,
                                            args.profile, config, args.slow_callbacks))
            tm = None if args.no_tmux else tmux_side(scratch, config, args.lines, args.repeat)
        report(args.lines, hw, tm)
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
