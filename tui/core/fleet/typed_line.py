"""TypedLine: the command line a person typed at a prompt, read back from the shell's echo.

A command typed into a pane (or by type-through) reaches the shell as keystrokes; the
shell's integration reports where its output starts (``OSC 133;C``) but not the line.
Like other terminals' shell integration, the line is read from the screen: everything the
shell printed from the end of its prompt (``OSC 133;B``, or where the first key was sent
when the shell gives no ``B``) up to the ``C`` marker goes through a scratch terminal of
the pane's width, so readline's editing, history recall and wrap redraws end as the line
the shell accepted.  Continuation prompts (``hardway;ps2``) start a new line of it.
"""

from __future__ import annotations

from tui.core.term.terminal import Terminal

MAX_ECHO = 64 * 1024
"""Characters of echo followed per prompt (a longer paste is not rebuilt)."""
ROWS = 200
"""Rows of the scratch terminal: a typed command longer than this is cut."""


class TypedLine:
    """Follows one shell's prompt and echo (see the module docstring)."""

    def __init__(self) -> None:
        self._term: Terminal | None = None
        self._starts: list[tuple[int, int]] = []
        self._fed = 0

    @property
    def following(self) -> bool:
        """A prompt was printed and its line is being followed."""
        return self._term is not None

    def prompt(self, columns: int) -> None:
        """A prompt starts (``OSC 133;A``): follow a new line on a ``columns``-wide screen."""
        self._term = Terminal(max(columns, 2), ROWS, scrollback=0)
        self._starts = []
        self._fed = 0

    def prompt_end(self) -> None:
        """The prompt is printed (``OSC 133;B``): what follows is the typed line.  A
        redraw of the prompt (readline's history recall) moves the start again."""
        start = self._cursor()
        if start is not None:
            self._starts = [start]

    def resize(self, columns: int) -> None:
        """The window changed width while the prompt is up (the pane does the same)."""
        if self._term is not None:
            self._term.resize(max(columns, 2), ROWS)

    def continuation(self) -> None:
        """A continuation prompt (``PS2``) was printed: a new line of the command starts."""
        start = self._cursor()
        if start is not None and self._starts:
            self._starts.append(start)

    def keys_sent(self) -> None:
        """Keys were sent to the shell at its prompt: without a ``B`` marker the line
        starts where the cursor is now."""
        if not self._starts:
            start = self._cursor()
            if start is not None:
                self._starts = [start]

    def feed(self, text: str) -> None:
        """Output of the shell while its prompt is up."""
        term = self._term
        if term is None:
            return
        if self._fed + len(text) > MAX_ECHO:
            self._term = None  # too long to follow: this line is not rebuilt
            return
        self._fed += len(text)
        term.feed(text)

    def accepted(self) -> str:
        """The line the shell accepted (at ``OSC 133;C``), "" when it cannot be told;
        following stops until the next prompt."""
        term, starts = self._term, self._starts
        self._term, self._starts = None, []
        if term is None or not starts:
            return ""
        ends = [row for row, _ in starts[1:]] + [term.lines_total]
        parts = [_read(term, row, column, end) for (row, column), end in zip(starts, ends,
                                                                            strict=True)]
        return "\n".join(parts).strip()

    def _cursor(self) -> tuple[int, int] | None:
        term = self._term
        if term is None:
            return None
        return term.cursor


def _read(term: Terminal, row: int, column: int, end: int) -> str:
    """Text from (``row``, ``column``) to the row before ``end``: rows the terminal
    filled to the margin continue on the next (autowrap), others end a line."""
    text = ""
    width = term.columns
    full = True
    for index in range(row, end):
        line = term.line_text(index)
        piece = line[column:] if index == row else line
        if index > row and not full:
            text += "\n"
        text += piece.rstrip(" ") if len(line) < width else piece
        full = len(line) >= width
    return text.rstrip()
