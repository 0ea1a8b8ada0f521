"""Turn terminal output (escape sequences, ``\\r``, ``\\b``) into plain text lines.

:class:`PlainText` is incremental: feed it chunks as they arrive (bytes or str) and it
returns the finished lines.  UTF-8 characters and escape sequences split across chunks
are reassembled; CSI (colours, cursor moves, erase), OSC (window titles, hyperlinks),
DCS/APC/PM/SOS strings and two-byte escapes are removed; other control characters are
dropped except tab.  A carriage return moves back to the start of the line and
backspace one column left, so ``10%\\r20%\\r100%`` ends as ``100%`` and ``\\r\\n`` as a
plain line end.
"""

from __future__ import annotations

import codecs
import re

MAX_PENDING_SEQUENCE = 4096
"""An unfinished escape sequence longer than this is dropped, not buffered."""

_SEQUENCE = re.compile(
    r"(?P<seq>\x1b\[[0-?]*[ -/]*[@-~]"          # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"        # OSC ... BEL or ST
    r"|\x1b[P^_X][^\x1b]*\x1b\\)"                # DCS / PM / APC / SOS ... ST
    r"|(?P<partial>\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[P^_X][^\x1b]*\x1b?|[ -/]*)\Z)"
    r"|(?P<short>\x1b[ -/]*[0-~])"               # ESC ( B, ESC =, ESC 7 ...
    r"|(?P<lone>\x1b)"
)
_CONTROL = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]")
_ERASE_LINE = re.compile(r"\x1b\[([012]?)K\Z")
_ERASE_TO_END = "\ue000"
"""Internal marker for ``ESC [ K``: erase from the cursor to the end of the line."""
_ERASE_ALL = "\ue001"
"""Internal marker for ``ESC [ 2 K``: erase the whole line (the cursor stays)."""
_LINE_CONTROL = re.compile(f"[\r\b{_ERASE_TO_END}{_ERASE_ALL}]")
"""What moves the cursor within a line; text without it is appended as it is."""


def strip_ansi(text: str) -> str:
    """``text`` without escape sequences and control characters other than tab and line
    controls (``\\n``, ``\\r``, ``\\b`` are kept; see :func:`plain` to apply them)."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def plain(text: str) -> str:
    """A whole block of terminal output as plain text lines (``\\n`` separated)."""
    converter = PlainText()
    lines = converter.feed(text)
    rest = converter.flush()
    if rest is not None:
        lines.append(rest)
    return "\n".join(lines)


class PlainText:
    """Incremental terminal-output-to-lines converter (see the module docstring)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._line: list[str] = []
        self._column = 0

    @property
    def partial(self) -> str:
        """The current unfinished line (e.g. a prompt), as it would look now."""
        return "".join(self._line)

    def feed(self, data: bytes | str) -> list[str]:
        """Add a chunk of output; returns the lines it completed (without ``\\n``)."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        text = self._strip(self._pending + text)
        segments = text.split("\n")
        if self._column == len(self._line) and not _LINE_CONTROL.search(text):
            # Fast path (plain output such as `seq`): whole lines, no per-line work.
            if len(segments) == 1:
                self._line.extend(text)
                self._column = len(self._line)
                return []
            done = ["".join(self._line) + segments[0], *segments[1:-1]]
            self._line = list(segments[-1])
            self._column = len(self._line)
            return done
        lines: list[str] = []
        for index, segment in enumerate(segments):
            self._write(segment)
            if index < len(segments) - 1:
                lines.append(self._take())
        return lines

    def flush(self) -> str | None:
        """End of stream: the unfinished line, or None when there is none."""
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._write(_CONTROL.sub("", tail))
        self._pending = ""
        if not self._line:
            return None
        return self._take()

    def _strip(self, text: str) -> str:
        """Remove complete sequences; keep an unfinished one at the end for later."""
        self._pending = ""
        if "\x1b" not in text:
            return _CONTROL.sub("", text)
        pieces: list[str] = []
        position = 0
        for match in _SEQUENCE.finditer(text):
            pieces.append(text[position:match.start()])
            position = match.end()
            if match.lastgroup == "partial" and len(match.group()) <= MAX_PENDING_SEQUENCE:
                self._pending = match.group()
            elif match.lastgroup == "seq" and match.group().endswith("K"):
                erase = _ERASE_LINE.match(match.group())
                if erase is not None and erase.group(1) != "1":
                    pieces.append(_ERASE_ALL if erase.group(1) == "2" else _ERASE_TO_END)
        pieces.append(text[position:])
        return _CONTROL.sub("", "".join(pieces))

    def _write(self, segment: str) -> None:
        """Apply one line's worth of text (no ``\\n``) at the cursor column."""
        if self._column == len(self._line) and not _LINE_CONTROL.search(segment):
            self._line.extend(segment)
            self._column = len(self._line)
            return
        for char in segment:
            if char == "\r":
                self._column = 0
            elif char == "\b":
                self._column = max(0, self._column - 1)
            elif char == _ERASE_TO_END:
                del self._line[self._column:]
            elif char == _ERASE_ALL:
                self._line = [" "] * self._column
            elif self._column < len(self._line):
                self._line[self._column] = char
                self._column += 1
            else:
                self._line.append(char)
                self._column += 1

    def _take(self) -> str:
        line = "".join(self._line)
        self._line = []
        self._column = 0
        return line
