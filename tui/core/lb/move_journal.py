"""The journal of a VIP move: what each step is about to change, written before it does.

``PKI/vip-move/journal.json`` (0600, written atomically) holds the move (old and new
VIP, the ipfw layout) and one entry per step and host, added *before* the change is made
(state ``changing``) and marked ``changed`` once it is.  Each entry carries what its undo
needs (the ipfw sets before, the DNS RRset before, the alias files before...).  Files too
large or too secret for the JSON (the previous ``kubernetes.pem`` and its key, the
inventory's text) are kept beside it, keys 0600.

``hardway vip move --rollback`` reads it and undoes the entries in reverse order; a
journal whose move neither finished nor was rolled back stops the next move.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui.core.errors import UserError
from tui.core.pki.ca import write_atomic

JOURNAL_DIR = "vip-move"
JOURNAL_FILE = "journal.json"
VERSION = 1


class MoveStatus(StrEnum):
    """Where a journaled move is."""

    RUNNING = "running"
    FAILED = "failed"
    DONE = "done"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"

    @property
    def open(self) -> bool:
        """The cluster may be half moved: a new move must not start."""
        return self in (MoveStatus.RUNNING, MoveStatus.FAILED, MoveStatus.ROLLING_BACK,
                        MoveStatus.ROLLBACK_FAILED)


class EntryState(StrEnum):
    """How far one journaled change got."""

    CHANGING = "changing"
    CHANGED = "changed"
    UNDONE = "undone"


@dataclass
class JournalEntry:
    """One change of one step on one host, with what undoes it.

    Attributes:
        step: the step kind (``aliases``, ``rules``...).
        host: where (a controller, the hypervisor, the DNS server, ``local``).
        state: changing (written before the change), changed, undone.
        undo: what the undo needs (JSON values).
    """

    step: str
    host: str
    state: EntryState
    undo: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"step": self.step, "host": self.host, "state": self.state.value,
                "undo": self.undo}


class MoveJournal:
    """The journal of one move in ``directory`` (``PKI/vip-move``).

    Args:
        directory: where the journal and its files live.
        data: the journal's content (from :meth:`load` or :meth:`begin`).
    """

    def __init__(self, directory: Path, data: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.data = data
        self.entries = [JournalEntry(str(e["step"]), str(e["host"]), EntryState(e["state"]),
                                     dict(e.get("undo") or {}))
                        for e in data.get("entries", [])]

    @property
    def path(self) -> Path:
        """The journal file."""
        return self.directory / JOURNAL_FILE

    @classmethod
    def at(cls, pki_dir: Path) -> Path:
        """The journal directory for ``pki_dir``."""
        return Path(pki_dir) / JOURNAL_DIR

    @classmethod
    def load(cls, directory: Path) -> MoveJournal | None:
        """The journal in ``directory`` (None: there is none).

        Raises:
            UserError: it exists but cannot be read.
        """
        path = Path(directory) / JOURNAL_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UserError(f"Cannot read the VIP move journal {path}: "
                            f"{exc.strerror or exc}.") from None
        try:
            data = json.loads(text)
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            journal = cls(Path(directory), data)
            MoveStatus(data["status"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"The VIP move journal {path} is damaged ({exc}); move it away "
                            "and check the cluster by hand (`hardway vip rules`, "
                            "`hardway dns check`, `hardway certs check`).") from None
        return journal

    @classmethod
    def begin(cls, directory: Path, *, inventory: Path, old_vip: str, new_vip: str,
              layout: dict[str, Any]) -> MoveJournal:
        """Start the journal of a new move (replacing a finished one) and write it."""
        directory = Path(directory)
        for stale in directory.glob("*") if directory.is_dir() else ():
            if stale.is_file():
                stale.unlink()
        journal = cls(directory, {
            "version": VERSION, "inventory": str(inventory), "old_vip": old_vip,
            "new_vip": new_vip, "layout": layout, "status": MoveStatus.RUNNING.value,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "entries": []})
        journal.save()
        return journal

    # -- fields -----------------------------------------------------------------------

    @property
    def status(self) -> MoveStatus:
        """Where the move is."""
        return MoveStatus(self.data["status"])

    @status.setter
    def status(self, value: MoveStatus) -> None:
        self.data["status"] = value.value
        self.save()

    @property
    def old_vip(self) -> str:
        """The VIP before the move."""
        return str(self.data["old_vip"])

    @property
    def new_vip(self) -> str:
        """The VIP the move goes to."""
        return str(self.data["new_vip"])

    @property
    def inventory(self) -> Path:
        """The inventory file the move edits."""
        return Path(self.data["inventory"])

    @property
    def layout(self) -> dict[str, Any]:
        """The ipfw layout and command used (active/spare set, first rule, ipfw)."""
        return dict(self.data.get("layout") or {})

    # -- entries ----------------------------------------------------------------------

    def record(self, step: str, host: str, undo: dict[str, Any]) -> JournalEntry:
        """Add a ``changing`` entry and write the journal: call it *before* the change."""
        entry = JournalEntry(step, host, EntryState.CHANGING, undo)
        self.entries.append(entry)
        self.save()
        return entry

    def mark(self, entry: JournalEntry, state: EntryState) -> None:
        """Set ``entry``'s state and write the journal."""
        entry.state = state
        self.save()

    def pending(self) -> Iterator[JournalEntry]:
        """Entries still to undo, last change first."""
        for entry in reversed(self.entries):
            if entry.state is not EntryState.UNDONE:
                yield entry

    def find(self, step: str, host: str) -> JournalEntry | None:
        """The (last) entry of ``step`` on ``host``."""
        for entry in reversed(self.entries):
            if entry.step == step and entry.host == host:
                return entry
        return None

    # -- files ------------------------------------------------------------------------

    def keep(self, name: str, data: bytes, *, secret: bool = False) -> None:
        """Keep ``data`` as ``name`` beside the journal (0600 when ``secret``)."""
        write_atomic(self.directory / name, data, 0o600 if secret else 0o644)

    def kept(self, name: str) -> bytes:
        """A file :meth:`keep` wrote.

        Raises:
            UserError: it is gone.
        """
        try:
            return (self.directory / name).read_bytes()
        except OSError as exc:
            raise UserError(f"The VIP move kept {self.directory / name}, and it cannot be "
                            f"read now ({exc.strerror or exc}); the rollback cannot put it "
                            "back.") from None

    def save(self) -> None:
        """Write the journal atomically (0600)."""
        self.data["entries"] = [e.to_json() for e in self.entries]
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, (json.dumps(self.data, indent=2) + "\n").encode(), 0o600)


__all__ = ["JOURNAL_DIR", "JOURNAL_FILE", "EntryState", "JournalEntry", "MoveJournal",
           "MoveStatus"]
