"""SendFileModal: a local file for the broadcast set, run as a script or put at a path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label


@dataclass(frozen=True)
class SendRequest:
    """What the user asked for.

    Attributes:
        local: the local file.
        remote: where to put it on each host ("" when it is run as a script).
        substitute: replace ``{name}``, ``{ip}``, ``{VAR}`` per host in the content.
    """

    local: str
    remote: str
    substitute: bool


class SendFileModal(ModalScreen[SendRequest | None]):
    """Ask which local file, where (for a copy), and whether to substitute per host."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="cancel-send"),
    ]

    DEFAULT_CSS = """
    SendFileModal { align: center top; }
    SendFileModal > Vertical {
        width: 90%; max-width: 100; height: auto; margin-top: 2; padding: 0 1;
        border: round $primary; background: $surface;
    }
    SendFileModal .send-label { color: $text-muted; margin-top: 1; }
    SendFileModal #send-buttons { height: auto; align-horizontal: right; }
    SendFileModal #send-buttons Button { margin-left: 2; }
    """

    def __init__(self, *, put: bool, hosts: str) -> None:
        """Args:
            put: copy the file to a path (False: run it as a script).
            hosts: who receives it, e.g. ``controller-[0-2] (3)``.
        """
        super().__init__()
        self.put = put
        self.hosts = hosts

    def compose(self) -> ComposeResult:
        """Local path, remote path (copy only), substitution, buttons."""
        verb = "Copy a local file to" if self.put else "Run a local script on"
        with Vertical():
            yield Label(f"[b]{verb} {self.hosts}[/b]")
            yield Label("local file", classes="send-label")
            yield Input(placeholder="local file, e.g. ~/kthw/etcd.sh", id="send-local")
            if self.put:
                yield Label("path on each host ({name} {ip} {VAR} allowed)",
                            classes="send-label", markup=False)
                yield Input(placeholder="absolute path on each host, e.g. "
                                        "/etc/etcd/{name}.conf", id="send-remote")
            yield Checkbox("replace {name} {ip} {VAR} per host in the content",
                           id="send-substitute")
            with Horizontal(id="send-buttons"):
                yield Button("Cancel", id="send-cancel")
                yield Button("Copy" if self.put else "Run", variant="primary", id="send-go")

    @on(Button.Pressed, "#send-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#send-go")
    @on(Input.Submitted)
    def _go(self) -> None:
        local = self.query_one("#send-local", Input).value.strip()
        remote = self.query_one("#send-remote", Input).value.strip() if self.put else ""
        if not local or (self.put and not remote):
            self.app.bell()
            return
        self.dismiss(SendRequest(local, remote,
                                 self.query_one("#send-substitute", Checkbox).value))
