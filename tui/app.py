"""HardwayApp: the Textual application over one :class:`~tui.core.workbench.Workbench`.

``create_app(workbench)`` is the single factory both ``hardway`` and the test-suite use.
Screens receive the workbench in their constructor; they are registered as modes with
Textual's public ``add_mode`` and imported the first time they are opened, so start-up
pays only for the console.  Failed actions and workers end in one place,
:func:`tui.boundary.report_failure`.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.actions import ActionParseResult
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.dom import DOMNode
from textual.reactive import Reactive
from textual.screen import Screen

from tui.boundary import report_failure, running
from tui.core.console.events import ConsoleChanged
from tui.core.fleet.events import StateChanged
from tui.core.paths import shown as shown_path
from tui.core.startup_gc import first_frame_shown
from tui.core.workbench import InventoryChanged, Workbench, WorkbenchEvent
from tui.palette import HardwayCommands
from tui.theme import HARDWAY_THEME
from tui.widgets.internals import DirectKeysApp, queue_empty, styles_are_current
from tui.widgets.quit_modal import QuitModal

if TYPE_CHECKING:
    from tui.core.fleet.hostkeys import Decision, HostKeyPrompt
    from tui.widgets.key_help import HelpSection

SCREENS: dict[str, str] = {
    "console": "screens.console:ConsoleScreen",
    "hosts": "screens.hosts:HostsScreen",
    "certs": "screens.certs:CertsScreen",
    "etcd": "screens.etcd:EtcdScreen",
    "health": "screens.health:HealthScreen",
    "dns_vip": "screens.dns_vip:DnsVipScreen",
}
"""Mode -> ``module:class`` of its screen (built with the workbench on first open)."""

PREFIX = "ctrl+g"
"""The one key the app takes from a focused pane (like tmux's prefix); what follows it
picks a screen or an app action. Every other key goes to the host."""

SCREEN_KEYS: dict[str, str] = {"c": "console", "o": "hosts", "k": "certs", "e": "etcd",
                               "v": "dns_vip", "h": "health"}
"""After the prefix: key -> mode (modes not in :data:`SCREENS` are skipped)."""

PREFIX_ACTIONS: dict[str, str] = {"p": "command_palette", "?": "show_keys", "q": "quit"}
"""After the prefix: key -> app action (``g`` sends a literal ctrl+g to the pane)."""


MODE_NAMES: dict[str, str] = {"console": "console", "hosts": "hosts table",
                              "certs": "certificates", "etcd": "etcd bootstrap",
                              "dns_vip": "DNS and the API VIP", "health": "health grid"}
"""Mode -> what the key help calls its screen."""


HELP_SKIPS = frozenset({"prefix", "show_keys", "focus_next", "focus_previous"})
"""Actions the key help does not list as this screen's keys (it names them elsewhere)."""


def prefix_help() -> str:
    """One line naming what may follow the prefix."""
    screens = [f"{key} {mode.replace('_', '/')}" for key, mode in SCREEN_KEYS.items()
               if mode in SCREENS]
    return (f"{PREFIX} then: " + " · ".join(screens)
            + " · p palette · ? keys · q quit · g a literal ctrl+g · Esc nothing")


def _screen_factory(spec: str, app: HardwayApp) -> Callable[[], Screen[Any]]:
    module_name, _, class_name = spec.partition(":")

    def build() -> Screen[Any]:
        screen_class = getattr(importlib.import_module(module_name), class_name)
        screen: Screen[Any] = screen_class(app.workbench)
        styles_are_current(screen, app)  # no re-parse of every stylesheet on first open
        return screen

    return build


class HardwayApp(DirectKeysApp):
    """The hardway workbench."""

    CSS_PATH = "hardway.tcss"
    TITLE = "hardway"
    DEFAULT_MODE = "console"
    """The console is the first screen, built while the app composes: switching to it from
    ``on_mount`` cost two full re-parses of every stylesheet before the first frame."""
    theme: Reactive[str] = Reactive(HARDWAY_THEME.name)
    """The ``hardway`` theme from the start (registered in ``__init__``): setting it in
    ``on_mount`` re-parsed every stylesheet once more, before the first frame."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True,
                tooltip="Close every session and leave"),
        Binding("question_mark", "show_keys", "Keys", id="keys", show=False,
                tooltip="This help (ctrl+g ? from a pane or the bar)"),
        Binding(PREFIX, "prefix", "Screens…", id="prefix", priority=True,
                tooltip="Then c console, o hosts, k certificates, h health, p palette, ? keys, "
                        "q quit (every other key in a pane goes to the host)"),
    ]
    COMMAND_PALETTE_BINDING = "f12"
    """ctrl+p is readline's previous-history in a pane; the palette is ctrl+g p or F12."""
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = (
        App.COMMANDS | {HardwayCommands})

    def __init__(self, workbench: Workbench, *, connect: bool = True,
                 lab_note: str | None = None, confirm_quit: bool = True,
                 notes: Sequence[str] = ()) -> None:
        """Build the app around a workbench.

        Args:
            workbench: the engine (inventory, fleet, console, use cases).
            connect: open the connections when the app starts (tests may defer it).
            confirm_quit: ask once before quitting with live sessions.
            notes: warnings shown once the app is up (a VIP the inventory misplaces).
        """
        super().__init__()
        self.register_theme(HARDWAY_THEME)
        # Textual built the stylesheet's variables before the theme was registered (from
        # its fallback theme); the console's first frame must not need a re-parse to fix them
        self.stylesheet.set_variables(self.get_css_variables())
        self.notes = tuple(notes)
        self.lab_note = lab_note
        self.confirm_quit = confirm_quit
        """Why the demo's lab hosts are not isolated (None: they are, or no lab)."""
        self.workbench = workbench
        self.connect_on_start = connect
        self._prefixed = False
        self.last_key = 0.0
        """Monotonic time of the newest key press (the console collects garbage when
        neither keys nor output arrive)."""
        self._first_frame_shown = False
        self._after_first_frame: list[Callable[[], object]] = []
        for mode, spec in SCREENS.items():
            self.add_mode(mode, _screen_factory(spec, self))
        self._unsubscribe = workbench.subscribe(self._on_workbench_event)
        workbench.ask_host_keys_with(self.ask_host_key)

    @property
    def inventory(self) -> Any:
        """The workbench's inventory."""
        return self.workbench.inventory

    def on_mount(self) -> None:
        """Title and summary (the console, the default mode, connects every host)."""
        self.title = f"hardway — {self.workbench.inventory.name}"
        self._update_summary()
        if self.lab_note:
            self.notify(self.lab_note, title="the lab", severity="warning", timeout=10)
        for note in self.notes:
            self.notify(note, title="inventory", severity="warning", timeout=15)

    def after_first_frame(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once the first frame is on the terminal (soon, if it is):
        work the first frame does not need (loading SSH) waits for it."""
        if self._first_frame_shown:
            self.call_later(callback)
        else:
            self._after_first_frame.append(callback)

    def on_ready(self) -> None:
        """Textual's Ready: the first frame has been displayed.  Collections are
        automatic again (held since start-up) and the work that waited for it runs."""
        self._first_frame_shown = True
        first_frame_shown()
        waiting, self._after_first_frame = self._after_first_frame, []
        for callback in waiting:
            self.call_later(callback)

    def _on_workbench_event(self, event: WorkbenchEvent) -> None:
        """Workbench listener (on the app's loop): refresh the connection summary."""
        if isinstance(event, StateChanged | ConsoleChanged):
            self._update_summary()
        elif isinstance(event, InventoryChanged) and event.what:
            self.notify(f"{shown_path(event.inventory.path)} now says {event.what}",
                        title="inventory reloaded", timeout=8)

    def busy_changed(self) -> None:
        """An action started or ended (:func:`tui.boundary.start_action`)."""
        self._update_summary()

    def _update_summary(self) -> None:
        """Header sub-title: "3/3 connected" (failures, actions running)."""
        ready, failed, total = self.workbench.counts()
        text = f"{ready}/{total} connected"
        if failed:
            text += f", {failed} failed"
        shells = self.workbench.shell_counts()
        if shells is not None and shells != (ready, total) and shells[0] != total:
            text += f" · {shells[0]}/{shells[1]} shells open"
        for label in running(self).values():
            text += f" · {label}…"
        if self.lab_note:
            text += " · lab hosts NOT isolated"
        self.sub_title = text

    def action_switch_screen_mode(self, mode: str) -> None:
        """Go to ``mode``, or back to the console when already there."""
        self.switch_mode("console" if self.current_mode == mode else mode)

    async def ask_host_key(self, prompt: HostKeyPrompt) -> Decision:
        """HostKeyPolicy.confirm: show the modal and wait for the user's choice."""
        from tui.widgets.host_key_modal import HostKeyModal

        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.push_screen(HostKeyModal(prompt),
                         callback=lambda choice: answer.set_result(choice or "refuse"))
        decision = await answer
        if decision == "once":
            return "once"
        return "record" if decision == "record" else "refuse"

    # -- the failure boundary -------------------------------------------------------------

    async def run_action(self, action: str | ActionParseResult,
                         default_namespace: DOMNode | None = None,
                         namespaces: Mapping[str, DOMNode] | None = None) -> bool:
        """Textual's run_action; an action that fails is reported, never fatal."""
        try:
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as error:
            name = action if isinstance(action, str) else str(action[1])
            report_failure(self, error, action=name)
            return True

    def worker_failed(self, error: BaseException) -> bool:
        """A worker started without the boundary failed: report it, keep running."""
        report_failure(self, error)
        return True

    # -- keys -----------------------------------------------------------------------------

    def intercept_key(self, event: events.Key) -> bool:
        """The key after the prefix picks a screen or action; keys typed into a console
        pane or the broadcast bar are handled at once (see :func:`typed_now`)."""
        self.last_key = time.monotonic()
        if event.key == PREFIX:  # at once: the next key may already be on its way
            self.action_prefix()
            return True
        if self._prefixed:
            self._prefixed = False
            self.call_later(self._after_prefix, event.key, event.character)
            return True
        search_key = getattr(self.screen, "search_key", None)
        if search_key is not None and search_key(
                event.character if event.is_printable and event.character else event.key):
            return True
        return typed_now(self, event)

    def action_prefix(self) -> None:
        """The prefix: the next key is the app's (a second ctrl+g cancels)."""
        self._prefixed = not self._prefixed
        if self._prefixed:
            self.notify(prefix_help(), title="ctrl+g", timeout=3)

    async def _after_prefix(self, key: str, character: str | None) -> None:
        """Run what the key after the prefix names."""
        self.clear_notifications()  # the prefix's hint
        name = character if character and character.isprintable() else key
        mode = SCREEN_KEYS.get(name)
        if mode is not None and mode in SCREENS:
            self.switch_mode(mode)
        elif name in PREFIX_ACTIONS:
            await self.run_action(PREFIX_ACTIONS[name])
        elif name == "g":
            focused = self.focused
            send = getattr(focused, "send_text", None)
            if send is not None:
                send("\x07")
        elif key != "escape":
            self.notify(f"{name!r} after {PREFIX} does nothing: {prefix_help()}",
                        severity="warning", timeout=5)

    def action_show_keys(self) -> None:
        """The key help screen: this screen's keys, what follows the prefix, and the
        screen's own notes (the bar's syntax on the console)."""
        from tui.widgets.key_help import KeyHelpModal

        if isinstance(self.screen, KeyHelpModal):
            return
        self.clear_notifications()
        self.push_screen(KeyHelpModal(MODE_NAMES.get(self.current_mode, self.current_mode),
                                      self.key_help_sections()))

    def key_help_sections(self) -> list[HelpSection]:
        """The help's blocks for the current screen."""
        from tui.widgets.key_help import HelpSection

        rows: dict[str, tuple[str, str]] = {}
        for _key, active in self.screen.active_bindings.items():
            binding = active.binding
            if (active.node not in (self, self.screen) or not binding.description
                    or binding.action.rsplit(".", 1)[-1] in HELP_SKIPS):
                continue  # widgets' editing keys are the usual ones; Tab is the screen's
            keys = self.get_key_display(binding)
            keys = keys.upper() if keys[:1] == "f" and keys[1:].isdigit() else keys
            meaning = binding.tooltip or binding.description
            previous = rows.get(binding.action)
            if previous is None:
                rows[binding.action] = (keys, meaning)
            elif keys not in previous[0].split(" / "):
                rows[binding.action] = (f"{previous[0]} / {keys}", previous[1])
        prefix = [(f"{PREFIX} {key}", MODE_NAMES.get(mode, mode))
                  for key, mode in SCREEN_KEYS.items() if mode in SCREENS]
        prefix += [(f"{PREFIX} p", "command palette (also F12)"),
                   (f"{PREFIX} ?", "this help (? alone where no pane or bar takes it)"),
                   (f"{PREFIX} q", "quit (asks once while sessions are live)"),
                   (f"{PREFIX} g", "a literal ctrl+g to the focused pane"),
                   (f"{PREFIX} Esc", "nothing (a second ctrl+g cancels too)")]
        sections = [HelpSection("This screen", tuple(rows.values())),
                    HelpSection(f"After {PREFIX} (the one key a pane does not get)",
                                tuple(prefix))]
        sections += list(getattr(self.screen, "HELP_NOTES", ()))
        return sections

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette's generic commands: hardway's quit and keys, then Textual's theme
        and screenshot under "More:" (maximize is F6's zoom here)."""
        yield SystemCommand("Quit", "close every session and leave (asks once)",
                            self.action_quit)
        yield SystemCommand("Keys", "the keys of this screen and after ctrl+g",
                            self.action_show_keys)
        yield SystemCommand("More: theme", "change the colour theme",
                            self.action_change_theme)
        yield SystemCommand("More: screenshot", "save an SVG of the screen",
                            lambda: self.set_timer(0.1, self.deliver_screenshot))

    async def action_quit(self) -> None:
        """Quit, asking once first when SSH sessions are live (ctrl+q again, q or Enter
        quits; Esc stays)."""
        live = self.workbench.live_hosts()
        if not self.confirm_quit or not live or isinstance(self.screen, QuitModal):
            await self.quit_now()
            return

        async def answered(quit_: bool | None) -> None:
            if quit_:
                await self.quit_now()
        self.push_screen(QuitModal(live), answered)

    async def quit_now(self) -> None:
        """Close every SSH session, then exit."""
        self._unsubscribe()
        await self.workbench.close()
        self.exit(0)


def typed_now(app: App[Any], event: events.Key) -> bool:
    """Hand ``event`` to the focused widget straight from the input driver.

    Textual delivers a key through two message queues (the app's, then the focused
    widget's); while hosts stream output each hop waits behind a loop turn of output and
    frames, which added tens of milliseconds per key.  A focused widget with a
    ``take_key(event) -> bool`` method (a console pane's :class:`TerminalView`, the
    broadcast bar) gets a key that no binding claims at once, when nothing is queued
    ahead of it; anything else (bindings, modals, keys still queued, keys the widget
    declines) takes the normal route, so the order of keys and the bindings are unchanged.
    """
    widget = app.focused
    take = getattr(widget, "take_key", None)
    if (widget is None or take is None or event.is_forwarded
            or not queue_empty(app) or not queue_empty(widget)
            or app.screen.maximized is not None or widget.screen is not app.screen):
        return False
    bindings = app.screen.active_bindings
    if any(key in bindings for key in event.aliases):
        return False
    app.app_focus = True
    return bool(take(event))


def create_app(workbench: Workbench, *, connect: bool = True,
               lab_note: str | None = None, confirm_quit: bool = True,
               notes: Sequence[str] = ()) -> HardwayApp:
    """The one factory for the app, used by ``hardway`` and by the tests.

    Args:
        workbench: the engine; in ``ask`` host-key mode unknown keys become a modal
            question (``--accept-new`` records them without asking).
        connect: open the SSH connections on start.
        confirm_quit: ask before quitting with live sessions (``--no-confirm``: never).
    """
    return HardwayApp(workbench, connect=connect, lab_note=lab_note,
                      confirm_quit=confirm_quit, notes=notes)
