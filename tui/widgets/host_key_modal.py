"""HostKeyModal: the explicit choice about an SSH host key hardway has never seen."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.core.fleet.hostkeys import HostKeyPrompt


class HostKeyModal(ModalScreen[str]):
    """Ask whether to trust an unknown host key: once, record it, or refuse.

    Dismisses with ``"once"``, ``"record"`` or ``"refuse"`` (the HostKeyPolicy decisions).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('refuse')", "Refuse", id="refuse-key"),
    ]

    DEFAULT_CSS = """
    HostKeyModal { align: center middle; }
    HostKeyModal > Vertical {
        width: 84; height: auto; border: thick $warning; background: $surface;
        padding: 1 2;
    }
    HostKeyModal #key-buttons { height: auto; margin-top: 1; }
    HostKeyModal Button { margin-right: 2; }
    """

    def __init__(self, prompt: HostKeyPrompt) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        """Host, key type, fingerprint, three buttons."""
        p = self.prompt
        endpoint = p.addr if p.port == 22 else f"[{p.addr}]:{p.port}"
        text = (
            f"[b]Unknown host key for {escape(p.host)}[/b] ({escape(endpoint)})\n\n"
            f"  key type     {escape(p.key_type)}\n"
            f"  fingerprint  [b]{escape(p.fingerprint)}[/b]\n\n"
            "hardway has never seen this key. Compare the fingerprint with the one the host\n"
            "prints (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console)\n"
            "before you trust it."
        )
        with Vertical():
            yield Static(text, id="key-text")
            with Horizontal(id="key-buttons"):
                yield Button("Accept once", id="once", variant="default")
                yield Button("Accept and record", id="record", variant="warning")
                yield Button("Refuse", id="refuse", variant="error")

    def on_mount(self) -> None:
        """Refuse is the safe default."""
        self.query_one("#refuse", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer with the button's decision."""
        self.dismiss(event.button.id or "refuse")

    def action_choose(self, decision: str) -> None:
        """Keyboard answer."""
        self.dismiss(decision)
