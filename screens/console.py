"""Console screen: the tmux replacement.

One pane per host (a persistent PTY shell), tiled automatically, and a broadcast bar
that types into every host of the broadcast set.  The screen is a thin view over
:class:`tui.core.console.Console`; function keys are the console's own, everything else
typed into a pane goes to that host.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.reactive import Reactive
from textual.widget import Widget
from textual.widgets import Header, Input

from tui.boundary import report_failure, start_action
from tui.core.console.events import ConsoleChanged, HostState, ReconnectResult
from tui.core.errors import UserError
from tui.core.hostset import fold
from tui.core.paths import shown as shown_path
from tui.core.workbench import Workbench
from tui.gc_policy import QuietCollector
from tui.widgets import format
from tui.widgets.broadcast_bar import BroadcastBar, BroadcastInput
from tui.widgets.footer import KeyFooter
from tui.widgets.host_pane import HostPane, PaneStatus
from tui.widgets.internals import BatchAwareScreen
from tui.widgets.key_help import HelpSection
from tui.widgets.terminal_view import TerminalView
from tui.widgets.tiling import MIN_PANE_ROWS, tile

if TYPE_CHECKING:  # the modals load when first opened: the first frame does not need them
    from tui.core.console import Console
    from tui.core.console.complete import Completion
    from tui.core.console.record import GatherReport
    from tui.widgets.gather_view import GatherContent
    from tui.widgets.send_file_modal import SendRequest


SEARCH_SCROLL_KEYS = frozenset({"pageup", "pagedown", "shift+pageup", "shift+pagedown",
                                "shift+up", "shift+down"})
"""Keys that scroll around the hits without ending a search."""


class ConsoleScreen(BatchAwareScreen):
    """Every host's shell side by side, and one line to type into all of them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "focus_bar", "Bar", id="focus-bar", priority=True,
                tooltip="Type into the broadcast bar"),
        Binding("f2", "next_pane", "Pane", id="next-pane", priority=True,
                tooltip="Focus the next host's pane (keys then go to that host only)"),
        Binding("f3", "gather", "Gather", id="gather", priority=True,
                tooltip="Exit codes and outputs of the last broadcast, grouped and diffed"),
        Binding("f4", "type_through", "Type-through", id="type-through", priority=True,
                tooltip="Send every keystroke to every host in the set"),
        Binding("f5", "reconnect", "Reconnect", id="reconnect", priority=True,
                tooltip="Reconnect the focused host, or every disconnected host"),
        Binding("f6", "zoom", "Zoom", id="zoom", priority=True, show=False,
                tooltip="Show only the focused pane (again to tile)"),
        Binding("f7", "attach", "Attach", id="attach", priority=True,
                tooltip="Hand the real terminal to OpenSSH for the focused host "
                        "(full-screen programs); exit to return"),
        Binding("f8", "transcripts", "Record", id="transcripts", priority=True, show=False,
                tooltip="Write per-host transcripts to disk (secrets redacted)"),
        Binding("f9", "toggle_host", "In/out", id="toggle-host", priority=True,
                tooltip="Add or remove the focused host from the broadcast set"),
        Binding("f10", "search", "Search", id="search", priority=True,
                tooltip="Find text in the scrollback (focused pane, or every pane)"),
        Binding("ctrl+c", "interrupt", "Interrupt", id="interrupt", priority=True,
                tooltip="Interrupt the foreground command on every host in the set "
                        "(in a pane: that host only)"),
    ]

    HELP_NOTES: ClassVar[tuple[HelpSection, ...]] = (
        HelpSection("The broadcast bar", (
            ("a command", "runs in every host's shell of the set (→ says who)"),
            ("@all @none", "every host, or nobody"),
            ("@controllers @workers", "a group of the inventory"),
            ("controller-[0-1]", "a host set alone on the line: only those hosts"),
            ("+name -name", "add or remove hosts (several: +c-0,-c-1)"),
            ("{name} {ip} {VAR}", "replaced per host before sending"),
            ("Tab", "completes @groups, host names and {placeholders}; file names "
                    "from the first host of the set"),
            ("↑ ↓ · ctrl+r", "the bar's history · search it as you type"),
            ("paste", "several lines wait in the bar: Enter sends the block as is "
                      "(heredocs intact), Esc drops it"),
        )),
        HelpSection("In a pane (F2, or a click)", (
            ("every key", "goes to that host only (ctrl+c, ctrl+r, Tab included), "
                          "except F1-F10 and ctrl+g"),
            ("F1", "back to the bar"),
            ("shift+PgUp/PgDn", "scroll back; F10 searches, n/N next and previous"),
        )),
    )
    """What the key help adds to the bindings on this screen."""

    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("Interrupt the broadcast set (^C)", "screen.interrupt",
         "Ctrl-C to the foreground command on every host in the set"),
        ("Gather the last broadcast", "screen.gather",
         "exit codes and outputs grouped by host, minority outputs diffed"),
        ("Toggle type-through", "screen.type_through",
         "every keystroke to every host in the set"),
        ("Search the scrollback", "screen.search", "find text in the panes"),
        ("Reconnect", "screen.reconnect", "the focused host, or every host that is down"),
        ("Zoom the focused pane", "screen.zoom", "show one pane; again to tile"),
        ("Toggle transcripts", "screen.transcripts",
         "write per-host transcripts (secrets redacted)"),
        ("Attach with OpenSSH", "screen.attach", "the focused host in the real terminal"),
        ("Run a local script on the set…", "screen.send_file(False)",
         "bash -s on every host in the set, {name} {ip} {VAR} substituted on request"),
        ("Copy a local file to the set…", "screen.send_file(True)",
         "atomically to a path on every host in the set, the previous version kept"),
    )
    """The console's actions in the command palette (:mod:`tui.palette`)."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)
    """Screen.focused without its repaint of the whole screen on every focus change.

    The widgets that gain and lose focus repaint themselves (their ``:focus`` styles and
    cursors); repainting everything else as well cost a full frame of every pane, 30-40 ms
    while hosts stream output, each time F2 or a click moved the focus."""

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        self._model: Console | None = None
        self._outputs: dict[str, tuple[object, Callable[[], None]]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._collector: QuietCollector | None = None
        self._pasted: str | None = None  # a pasted block waiting for Enter or Esc
        self._hits: dict[str, tuple[list[int], int]] = {}  # search: host -> (hits, shown)
        self._confirm: str | None = None  # a line sent again over half-typed shell lines
        self._last_output = 0.0

    @property
    def console(self) -> Console:
        """The console model (the workbench's; built right after the first frame)."""
        return self.workbench.console

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, the pane grid, the broadcast bar, footer."""
        inventory = self.workbench.inventory
        scrollback = int(str(inventory.settings.get("console.scrollback", 10_000)))
        yield Header(icon="⎈")
        with Grid(id="panes"):
            for host in inventory.hosts:
                yield HostPane(host, scrollback=scrollback)
        yield BroadcastBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        """Focus the broadcast bar; right after the first frame, build the console model
        (SSH loads then) and open every shell."""
        self._retile()
        self.query_one(BroadcastBar).input.focus()
        # SSH loads (~0.15 s) only once the first frame is on the terminal (Textual's
        # Ready, HardwayApp.after_first_frame); waiting for screen refreshes is not enough
        # (tests/integration/test_app_startup.py shows it on a pseudo-terminal).
        self.app.after_first_frame(  # type: ignore[attr-defined]
            functools.partial(self.call_later, self._open_console))

    def _open_console(self) -> None:
        self._model = self.workbench.console
        for pane in self.query(HostPane):  # the shells start at their panes' size
            self._model.set_size(pane.host.name, *pane.view.pty_size)
        self._unsubscribe = self.console.subscribe(self._on_change)
        self._retile()
        self._refresh_all()
        for pane in self.query(HostPane):  # keys go straight to the host, no message hops
            pane.view.sink = functools.partial(self._type_to, pane.host.name)
        if getattr(self.app, "connect_on_start", True):
            start_action(self, self._start, group="connect", label="connecting every host")

    async def _start(self) -> None:
        await self.workbench.start_console()
        self._refresh_all()
        # Full garbage collections at quiet moments only (each is a 30-70 ms pause): no
        # output and no keys for a second.
        self._collector = QuietCollector(
            self, lambda: max(self._last_output, getattr(self.app, "last_key", 0.0)))
        self._collector.start()

    async def on_unmount(self) -> None:
        """Stop listening; close the shells and the relay; give the garbage back."""
        if self._unsubscribe:
            self._unsubscribe()
        for _, unsubscribe in self._outputs.values():
            unsubscribe()
        self._outputs.clear()
        if self._collector is not None:
            self._collector.stop()
        await self.workbench.stop_console()

    def on_resize(self) -> None:
        """Re-tile when the terminal changes size."""
        self._retile()

    def _retile(self) -> None:
        grid = self.query_one("#panes", Grid)
        panes = list(self.query(HostPane))
        size = self.size
        zoomed = self.has_class("-zoom")
        tiling = tile(1 if zoomed else len(panes), size.width, max(1, size.height - 6))
        grid.styles.grid_size_columns = tiling.columns
        grid.styles.grid_size_rows = tiling.rows
        grid.styles.grid_rows = str(MIN_PANE_ROWS) if tiling.scroll else "1fr"
        grid.set_class(tiling.compact and not zoomed, "-compact")
        grid.set_class(tiling.scroll, "-scroll")
        for index, pane in enumerate(panes):
            last = index == len(panes) - 1
            pane.styles.column_span = tiling.last_span if last and not zoomed else 1

    # -- model -> view --------------------------------------------------------------------

    def _pane(self, name: str) -> HostPane:
        return self.query_one(f"#pane-{name}", HostPane)

    def _on_change(self, change: ConsoleChanged) -> None:
        if not self.is_mounted:
            return
        if change.kind in ("host", "set", "mode") and change.host:
            self._refresh_host(change.host)
        else:
            self._refresh_all()

    def _refresh_all(self) -> None:
        if self._model is None:
            return
        for name in self.console.hosts:
            self._refresh_host(name)
        bar = self.query_one(BroadcastBar)
        members = self.console.broadcast_set.members
        bar.show_set(self.console.broadcast_set.label, len(members))
        bar.show_mode(self.console.type_through)
        self.set_class(self.console.type_through, "-type-through")

    def _refresh_host(self, name: str) -> None:
        status = self.console.status(name)
        last = status.last_exit
        self._pane(name).status = PaneStatus(
            state=status.state, reason=status.reason, in_set=status.in_set,
            exit_status=last.status if last else None,
            exit_duration=last.duration if last else None,
            running=status.running, transcript=status.transcript is not None,
            retry=status.retry)
        self._follow_output(name)
        bar = self.query_one(BroadcastBar)
        bar.show_set(self.console.broadcast_set.label, len(self.console.broadcast_set.members))

    def _follow_output(self, name: str) -> None:
        """Subscribe the pane to its host's current shell (a new one after a reconnect)."""
        shell = self.console.shell(name)
        current = self._outputs.get(name)
        if current is not None and current[0] is shell:
            return
        if current is not None:
            current[1]()
            del self._outputs[name]
        if shell is None:
            return
        pane = self._pane(name)
        from tui.core.fleet.shell import ShellOutput

        def on_event(event: object) -> None:
            if isinstance(event, ShellOutput) and pane.is_mounted:
                self._last_output = time.monotonic()
                pane.feed(event.data)

        self._outputs[name] = (shell, shell.subscribe(on_event))
        columns, rows = pane.view.pty_size
        if columns > 0 and rows > 0:
            shell.resize(columns, rows)

    # -- input ----------------------------------------------------------------------------

    @on(Input.Submitted, "#broadcast-input")
    def _submitted(self, event: Input.Submitted) -> None:
        line = event.value
        if event.input.value == line:  # BroadcastInput.submit_now emptied it already
            event.input.value = ""
        self._hits = {}  # typing returns the panes to the tail: the search is over
        if self._pasted is None and not self._half_typed_confirmed(line, event.input):
            return
        block, self._pasted = self._pasted, None
        if block is not None:
            self.query_one(BroadcastBar).show_pending(None)
        try:
            result = self.console.submit(line) if block is None else self.console.paste(block)
        except UserError as error:
            self.notify(str(error), severity="error", timeout=8)
            if block is None:  # the line stays in the bar, to send again or edit
                _put_back(event.input, line)
            else:
                self._pasted = block
                self.query_one(BroadcastBar).show_pending(self._pasted_summary(block))
            return
        for name in self.console.broadcast_set.members:  # typing returns panes to the tail
            self._pane(name).view.follow()
        # the bar already shows who received a plain broadcast; speak up only about set
        # changes and hosts that were skipped
        if result.worth_telling:
            self.notify(result.message, timeout=4)
        self._refresh_all()

    def _half_typed_confirmed(self, line: str, bar: Input) -> bool:
        """A broadcast to hosts whose shell line holds half-typed text would be appended to
        it: the first Enter names them and keeps the line; Enter again clears their lines
        (^U) and sends. Set changes and blank lines go through."""
        if not line.strip() or self.console.broadcast_set.is_set_expression(line):
            return True
        partial = self.console.half_typed()
        if not partial:
            self._confirm = None
            return True
        if self._confirm == line:
            self._confirm = None
            self.console.clear_half_typed(partial)
            return True
        self._confirm = line
        _put_back(bar, line)
        self.notify(f"{', '.join(partial)} {'has' if len(partial) == 1 else 'have'} a "
                    "half-typed line (typed into the pane); this line would be added to it. "
                    "Enter again clears it (^U) and sends; edit the line to cancel.",
                    severity="warning", timeout=8)
        return False

    @on(BroadcastInput.History)
    def _history(self, event: BroadcastInput.History) -> None:
        bar = self.query_one(BroadcastBar)
        history = self.console.history
        text = history.previous(bar.input.value) if event.direction < 0 else history.next()
        bar.input.value = text
        bar.input.cursor_position = len(text)

    @on(BroadcastInput.SearchHistory)
    def _search_history(self) -> None:
        bar = self.query_one(BroadcastBar).input

        def take(line: str | None) -> None:
            bar.focus()
            if line is not None:
                bar.value = line
                bar.cursor_position = len(line)

        from tui.widgets.history_modal import HistorySearchModal

        self.app.push_screen(HistorySearchModal(self.console.history.search, bar.value), take)

    @on(BroadcastInput.Keystroke)
    def _keystroke(self, event: BroadcastInput.Keystroke) -> None:
        self.console.keystroke(event.data)

    @on(BroadcastInput.Pasted)
    def _pasted_into_bar(self, event: BroadcastInput.Pasted) -> None:
        """Type-through: the paste goes to every host now (bracketed where its shell
        asked, as a terminal would). Line mode: several lines wait for Enter or Esc."""
        if event.type_through:
            for name in self.console.broadcast_set.members:
                self._pane(name).view.paste(event.text)
            return
        lines = event.text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
        self._pasted = lines
        self.query_one(BroadcastBar).show_pending(self._pasted_summary(lines))

    def _pasted_summary(self, block: str) -> str:
        """What the bar shows while a pasted block waits."""
        members = len(self.console.broadcast_set.members)
        count = block.count("\n") + 1
        return (f"{count} pasted lines to {members} host{'s' if members != 1 else ''}"
                " · Enter sends · Esc drops")

    @on(BroadcastInput.Complete)
    def _complete(self) -> None:
        """Tab: a set expression or placeholder at once; otherwise a file name from the
        first host of the set, listed in a worker (keys stay live meanwhile)."""
        line = self.query_one(BroadcastBar).input
        if self._model is None:
            return
        result = self.console.complete(line.value, line.cursor_position)
        if result.line != line.value or result.candidates:
            self._show_completion(result)
            return
        self.run_worker(self._complete_file(line.value, line.cursor_position),
                        group="complete", exclusive=True, exit_on_error=False)

    async def _complete_file(self, text: str, cursor: int) -> None:
        """Complete a file name from the first host's listing, unless the bar changed
        meanwhile (a Tab never overwrites what was typed after it)."""
        try:
            found = await self.workbench.complete_file(text, cursor)
        except Exception as error:  # the boundary: a failure is told, never fatal
            report_failure(self.app, error, action="completing a file name")
            return
        line = self.query_one(BroadcastBar).input
        if found is None or line.value != text or line.cursor_position != cursor:
            return
        if found.error is not None:
            self.notify(found.error, severity="warning", timeout=4)
            return
        self._show_completion(found.completion, source=found.host)

    def _show_completion(self, result: Completion, source: str | None = None) -> None:
        """Put a completion into the bar; several candidates are listed in a toast."""
        line = self.query_one(BroadcastBar).input
        line.value = result.line
        line.cursor_position = result.cursor
        if result.candidates:
            shown = " ".join(result.candidates[:12])
            more = len(result.candidates) - 12
            self.notify(shown + (f" … and {more} more" if more > 0 else ""),
                        title=f"on {source}" if source else "", timeout=4)

    @on(BroadcastInput.PasteDropped)
    def _paste_dropped(self) -> None:
        self._pasted = None
        self.query_one(BroadcastBar).show_pending(None)
        self.notify("pasted lines dropped: nothing was sent", timeout=3)

    def _type_to(self, name: str, data: str) -> None:
        if self._model is not None:
            self.console.type_to(name, data)

    @on(TerminalView.Input)
    def _pane_input(self, event: TerminalView.Input) -> None:
        pane = event.view.parent
        if isinstance(pane, HostPane):
            self.console.type_to(pane.host.name, event.data)

    @on(TerminalView.Resized)
    def _pane_resized(self, event: TerminalView.Resized) -> None:
        pane = event.view.parent
        if isinstance(pane, HostPane) and self._model is not None:
            self._model.set_size(pane.host.name, event.columns, event.rows)
            shell = self._model.shell(pane.host.name)
            if shell is not None:
                shell.resize(event.columns, event.rows)

    @on(HostPane.TitleClicked)
    def _title_clicked(self, event: HostPane.TitleClicked) -> None:
        self.console.broadcast_set.toggle(event.pane.host.name)
        self._refresh_all()

    # -- actions --------------------------------------------------------------------------

    def _focused_host(self) -> str | None:
        node = self.focused
        while node is not None and not isinstance(node, HostPane):
            node = node.parent  # type: ignore[assignment]
        return node.host.name if isinstance(node, HostPane) else None

    def _focused_or_hint(self, hint: str) -> str | None:
        """The focused pane's host, or None after saying "focus a pane first (F2)" + hint."""
        name = self._focused_host()
        if name is None:
            self.notify(f"focus a pane first (F2){hint}", severity="warning")
        return name

    def action_focus_bar(self) -> None:
        """Focus the broadcast bar."""
        self.query_one(BroadcastBar).input.focus()

    def action_next_pane(self) -> None:
        """Cycle focus through the panes."""
        panes = list(self.query(HostPane))
        if not panes:
            return
        current = self._focused_host()
        names = [p.host.name for p in panes]
        index = (names.index(current) + 1) % len(panes) if current in names else 0
        panes[index].view.focus()

    def action_gather(self) -> None:
        """Show the last broadcast gathered by output (clush -b) with diffs."""
        if not self.console.broadcasts:
            self.notify("nothing broadcast yet: type a command in the bar first",
                        severity="warning")
            return
        from tui.widgets.gather_view import GatherScreen

        shown = _gather_content(self.console.gather(normalised=True))
        raw = _gather_content(self.console.gather())
        self.app.push_screen(GatherScreen(shown.title, shown.blocks, shown.diff,
                                          rows=shown.rows, raw=raw, mode=shown.mode))

    def action_type_through(self) -> None:
        """Toggle type-through (every keystroke to every host in the set)."""
        self.console.set_type_through(not self.console.type_through)
        self._refresh_all()
        self.action_focus_bar()

    def action_reconnect(self) -> None:
        """Reconnect the focused host, or every host without a shell (in a worker: keys
        stay live while a host takes its time to answer)."""
        name = self._focused_host()
        names = [name] if name else [n for n in self.console.hosts
                                     if self.console.status(n).state is not HostState.READY]
        if not names:
            self.notify("every host is connected")
            return
        label = f"reconnecting {', '.join(names)}"
        if start_action(self, functools.partial(self._reconnect, names), group="reconnect",
                        label=label):
            self.notify(f"{label}…", timeout=3)

    async def _reconnect(self, names: list[str]) -> list[ReconnectResult]:
        results = await asyncio.gather(*(self.console.reconnect(n) for n in names))
        self._refresh_all()
        failed = [f"{r.host}: {r.reason or r.state}" for r in results if not r.ok]
        if failed:
            self.notify("; ".join(failed), severity="error", timeout=8)
        return list(results)

    def action_send_file(self, put: bool) -> None:
        """Ask for a local file, then run it (or copy it) on every host in the set."""
        members = self.console.broadcast_set

        def chosen(request: SendRequest | None) -> None:
            if request is None:
                return
            if not request.remote:
                try:
                    result = self.console.run_script(request.local,
                                                     substitute_values=request.substitute)
                except UserError as error:
                    self.notify(str(error), severity="error", timeout=8)
                    return
                if result.worth_telling:
                    self.notify(result.message, timeout=4)
                self._refresh_all()
                return
            start_action(self, functools.partial(self._put_file, request), group="send",
                         label=f"copying {request.local}")

        from tui.widgets.send_file_modal import SendFileModal

        self.app.push_screen(SendFileModal(put=put, hosts=f"{members.label} "
                                           f"({len(members.members)})"), chosen)

    async def _put_file(self, request: SendRequest) -> None:
        names = self.console.broadcast_set.members
        try:
            results = await self.workbench.put_local(request.local, request.remote, names,
                                                     substitute_values=request.substitute)
        except UserError as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        failed = [f"{r.host}: {r.error}" for r in results if r.error]
        written = [r.host for r in results if not r.error]
        if written:
            self.notify(f"{request.local} → {request.remote} on {fold(written)}"
                        + (" (unchanged where it already matched)" if any(
                            not r.changed for r in results if not r.error) else ""),
                        timeout=5)
        if failed:
            self.notify("; ".join(failed), severity="error", timeout=10)

    def action_zoom(self) -> None:
        """Show only the focused pane, or tile again."""
        name = self._focused_host()
        zoomed = self.has_class("-zoom")
        for pane in self.query(HostPane):
            pane.set_class(not zoomed and pane.host.name == name, "-zoomed")
        self.set_class(not zoomed and name is not None, "-zoom")
        self._retile()  # one cell for the zoomed pane (its shell's window size follows)
        if name is None and not zoomed:
            self.notify("focus a pane first (F2), then F6 zooms it", severity="warning")

    def action_attach(self) -> None:
        """Suspend the app and run OpenSSH to the focused host in the real terminal."""
        from tui.core.fleet.openssh import attach_argv

        name = self._focused_or_hint(": attach opens that host in OpenSSH")
        if name is None:
            return
        if shutil.which("ssh") is None:
            self.notify("OpenSSH `ssh` is not installed here", severity="error")
            return
        try:
            argv = attach_argv(self.workbench.inventory.host(name), self.workbench.fleet)
        except UserError as error:
            self.notify(str(error), severity="error", timeout=10)
            return
        with self.app.suspend():
            print(f"hardway: attached to {name} with OpenSSH; exit the shell to return.\n")
            subprocess.run(argv, check=False)

    def action_transcripts(self) -> None:
        """Start or stop per-host transcripts."""
        on = not self.console.transcripts_on
        paths = self.console.set_transcripts(on)
        self._refresh_all()
        if on and paths:
            folder = next(iter(paths.values())).parent
            self.notify(f"recording {len(paths)} transcripts (secrets redacted) in "
                        f"{shown_path(folder)}", timeout=6)
        else:
            self.notify("transcripts stopped", timeout=3)

    def action_toggle_host(self) -> None:
        """Add or remove the focused host from the broadcast set."""
        name = self._focused_or_hint(", or type +name / -name in the bar")
        if name is None:
            return
        self.console.broadcast_set.toggle(name)
        self._refresh_all()

    def action_search(self) -> None:
        """Ask for a pattern, then jump every searched pane to its last hit."""
        name = self._focused_host()
        panes = [self._pane(name)] if name else list(self.query(HostPane))
        from tui.widgets.search_modal import SearchModal

        self.app.push_screen(SearchModal(name or "every pane"),
                             callback=lambda pattern: self._search(panes, pattern or ""))

    def _search(self, panes: list[HostPane], pattern: str) -> None:
        if not pattern:
            return
        found: list[str] = []
        self._hits = {}
        for pane in panes:
            hits = pane.terminal.search(pattern, ignore_case=True)
            if hits:
                pane.view.scroll_to_line(hits[-1])
                self._hits[pane.host.name] = (hits, len(hits) - 1)
                found.append(f"{pane.host.name} {len(hits)}")
        if found:
            self.notify(f"“{pattern}”: " + ", ".join(found) + " · n / N next and previous "
                        "hit · Esc back to the tail", timeout=6)
        else:
            self.notify(f"“{pattern}” is not in the scrollback", severity="warning")

    def search_key(self, key: str) -> bool:
        """While a search's hits are shown, n / N step through them and Esc returns to
        the tail (True: the key was the search's); otherwise those keys go where they
        always go (the shell, the bar). Called by the app before any other routing."""
        if not self._hits or self.app.screen is not self:
            return False
        if key in ("n", "N"):
            self.action_search_step(1 if key == "n" else -1)
        elif key == "escape":
            self.action_search_end()
        else:
            if key not in SEARCH_SCROLL_KEYS:  # like leaving tmux's copy mode: the key
                self.action_search_end()      # goes on where it always goes
            return False
        return True

    def action_search_step(self, step: int) -> None:
        """Show every searched pane's next (1) or previous (-1) hit."""
        for name, (hits, shown) in list(self._hits.items()):
            shown = (shown + step) % len(hits)
            self._hits[name] = (hits, shown)
            self._pane(name).view.scroll_to_line(hits[shown])

    def action_search_end(self) -> None:
        """Leave the hits: every searched pane follows its newest output again."""
        for name in self._hits:
            self._pane(name).view.follow()
        self._hits = {}
        self.refresh_bindings()

    def action_interrupt(self) -> None:
        """^C: to the focused host's pane, or to every host in the set."""
        name = self._focused_host()
        if name is not None:
            self.console.type_to(name, "\x03")
            return
        hosts = self.console.interrupt()
        if hosts:
            self.notify(f"^C sent to {len(hosts)} host(s)", timeout=2)


def _gather_content(report: GatherReport) -> GatherContent:
    """What the gather view shows of ``report``."""
    from tui.widgets.gather_view import GatherContent

    rows: list[tuple[str, str, str, str, str]] = []
    for row in report.rows:
        code = "-" if row.status is None else str(row.status)
        took = "" if row.duration is None else format.format_duration(row.duration)
        rows.append((row.host, str(row.state), code, took, row.detail))
    blocks = [(b.header, "\n".join(b.lines), not b.ending) for b in report.blocks]
    blocks += [(str(group), "", False) for group in report.unfinished]
    how = "each host's name, address, vars as {name} {ip} {VAR}" if report.normalised \
        else "raw outputs"
    return GatherContent(f"{report.broadcast.line} — {report.summary}", blocks,
                         report.diff, rows, how)


def _put_back(bar: Input, line: str) -> None:
    """Show ``line`` in the bar again (to edit or send again), unless something was
    typed after its Enter: that stays, and the notification names the line."""
    if not bar.value:
        bar.value = line
        bar.cursor_position = len(line)
