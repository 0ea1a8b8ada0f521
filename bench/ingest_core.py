"""Micro-benchmark: Terminal ingest and TerminalView rendering (no SSH, no lab).

Three panes each receive ``seq 1 1000000`` as a PTY delivers it (CR LF line ends)
in 64 KiB chunks cut at arbitrary points.  Prints aggregate lines/s for the core
Terminal, for TerminalView.feed inside a headless Textual app, peak memory, and the
time to render the visible region afterwards.  Run: ``.venv/bin/python bench/ingest_core.py``
(``--lines N`` for a shorter run).  Rates in brackets divide by the process's CPU time:
on a shared machine they move less than the wall-clock ones.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.core.term import Terminal

PANES = 3
CHUNK = 65536
COLUMNS, ROWS = 80, 50


def chunks(text: str) -> list[str]:
    return [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]


def seq(lines: int, ending: str = "\r\n") -> str:
    return ending.join(map(str, range(1, lines + 1))) + ending


def ingest(pieces: list[str], lines: int, label: str, scrollback: int = 10_000,
           newline_mode: bool = False) -> list[Terminal]:
    """Feed every pane all pieces; print aggregate lines/s."""
    gc.collect()
    terminals = [Terminal(COLUMNS, ROWS, scrollback, newline_mode=newline_mode)
                 for _ in range(PANES)]
    start, cpu = time.perf_counter(), time.process_time()
    for term in terminals:
        for piece in pieces:
            term.feed(piece)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = PANES * lines / elapsed
    print(f"{label:<38} {PANES} x {lines:>9,} lines in {elapsed:6.3f} s"
          f" = {rate / 1e6:6.2f} M lines/s (CPU time: {PANES * lines / cpu / 1e6:5.2f})")
    return terminals


def coloured_log(lines: int, ending: str = "\r\n") -> str:
    """Log lines as journalctl or etcd print them: four SGR changes per line."""
    return "".join(f"\x1b[2m08:15:{i % 60:02d}\x1b[0m \x1b[1;32mINFO\x1b[0m"
                   f" etcd[{i % 977}]: applied index {i}{ending}" for i in range(1, lines + 1))


def full_screen(rounds: int = 30) -> None:
    """Full-screen redraws: the recorded vim, less, man, htop and top streams of the
    differential test, fed to a fresh 80x24 Terminal each round (alternate screen)."""
    folder = Path(__file__).resolve().parents[1] / "tests" / "data" / "term"
    streams = [folder.joinpath(f"{name}.bin").read_bytes().decode("utf-8", "replace")
               for name in ("vim", "less", "man", "htop", "top")]
    size = sum(map(len, streams))
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        for stream in streams:
            Terminal(80, 24, 2000).feed(stream)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{'full-screen programs (5 recordings)':<38} {rounds} x {size:,} chars in"
          f" {elapsed:6.3f} s = {rounds * size / elapsed / 1e6:6.2f} M chars/s"
          f" (CPU time: {rounds * size / cpu / 1e6:5.2f})")


def peak_memory(pieces: list[str], label: str = "memory (tracemalloc, 3 panes)") -> None:
    """Peak traced allocation while three panes ingest (the input text excluded)."""
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    terminals = [Terminal(COLUMNS, ROWS, 10_000) for _ in range(PANES)]
    for term in terminals:
        for piece in pieces:
            term.feed(piece)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<38} retained {(current - base) / 2**20:6.1f} MiB,"
          f" peak {(peak - base) / 2**20:6.1f} MiB (scrollback cap 10,000 lines per pane)")


async def render_in_app(pieces: list[str], lines: int) -> None:
    """Feed through TerminalView.feed in a headless app, then time visible-region renders."""
    from textual.app import App, ComposeResult
    from textual.containers import Horizontal

    from tui.widgets.terminal_view import TerminalView

    class Panes(App[None]):
        def compose(self) -> ComposeResult:
            with Horizontal():
                for _ in range(PANES):
                    yield TerminalView()

    app = Panes()
    async with app.run_test(size=(3 * (COLUMNS + 1), ROWS)) as pilot:
        views = list(app.query(TerminalView))
        await pilot.pause()
        start = time.perf_counter()
        for view in views:
            for piece in pieces:
                view.feed(piece)
        fed = time.perf_counter() - start
        await pilot.pause(0.1)
        total = time.perf_counter() - start - 0.1
        print(f"{'TerminalView.feed (headless app)':<38} {PANES} x {lines:>9,} lines in"
              f" {fed:6.3f} s"
              f" = {PANES * lines / fed / 1e6:6.2f} M lines/s"
              f" ({PANES * lines / total / 1e6:.2f} M/s incl. first repaint)")
        region = views[0].size.region
        height = region.height
        for label, clear in (("cold cache", True), ("warm cache", False)):
            rounds = 20
            start = time.perf_counter()
            for _ in range(rounds):
                for view in views:
                    if clear:
                        view._strips.clear()
                    view._styles_cache.clear()
                    view.render_lines(region)
            per_frame = (time.perf_counter() - start) / rounds
            print(f"render visible region, {label:<15} {PANES} panes x {height} rows:"
                  f" {per_frame * 1e3:7.3f} ms per frame")
        tail = views[0].visible_text()[-2:]
        print(f"last rows of pane 0: {tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    lines = args.lines

    pty_text = chunks(seq(lines))
    terminals = ingest(pty_text, lines, "seq, CR LF (PTY), 64 KiB chunks")
    assert terminals[0].line_text(terminals[0].lines_total - 2) == str(lines)
    # Without a PTY nothing turns LF into CR LF: such a stream needs line mode (LNM).
    ingest(chunks(seq(lines, "\n")), lines, "seq, LF + LNM (exec stream), 64 KiB",
           newline_mode=True)
    coloured = chunks("".join(f"\x1b[32m{i}\x1b[0m ok\r\n" for i in range(1, lines // 5 + 1)))
    ingest(coloured, lines // 5, "coloured lines (SGR per line)")
    log = chunks(coloured_log(lines))
    terminals = ingest(log, lines, "coloured log, 4 SGR changes per line")
    assert terminals[0].line_text(terminals[0].lines_total - 2).endswith(f"index {lines}")
    bars = chunks("".join(f"\r{i % 101:3d}% [{'#' * (i % 101 // 5):<20}]"
                          for i in range(lines // 5)))
    ingest(bars, lines // 5, "CR progress-bar updates")
    full_screen()
    peak_memory(pty_text)
    peak_memory(log, "memory, coloured log (3 panes)")
    asyncio.run(render_in_app(pty_text, lines))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'process peak RSS (ru_maxrss)':<38} {rss:6.1f} MiB (includes the input text)")


if __name__ == "__main__":
    main()
