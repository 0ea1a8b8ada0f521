"""Shell-integration markers (OSC 133): the hooks that print them, and a parser for them.

:func:`integration_line` is the setup line typed into a shell (see
:mod:`tui.core.fleet.shell`).  A shell with hardway's integration prints
``ESC ] 133 ; A BEL`` where its prompt starts, ``ESC ] 133 ; C BEL`` where a command's
output starts (bash, zsh) and ``ESC ] 133 ; D ; STATUS BEL`` when a command has finished;
the terminator may also be ``ESC \\`` (ST).  :class:`MarkerParser` splits decoded text
into plain text and :class:`Marker` objects.  It keeps an incomplete marker (or an ``ESC``
that may start one) across calls, so markers split between two reads are found; every
other escape sequence (colours, titles, cursor movement) passes through untouched.

Text without ``ESC`` takes a fast path: it is returned as is, in one piece.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tui.core.fleet.command import exports

INTRO = "\x1b]133;"
BEL = "\x07"
ST = "\x1b\\"
MAX_MARKER = 512
"""A marker longer than this (no terminator in sight) is not ours: it passes through."""


@dataclass(frozen=True)
class Marker:
    """One OSC 133 marker.

    Attributes:
        kind: ``A`` (prompt start), ``B`` (prompt end), ``C`` (output start), ``D`` (command
            finished) or ``hardway`` (hardway's own: ``hardway;ready;bash``).
        args: the fields after the kind, e.g. ``("1",)`` for ``D;1``.
    """

    kind: str
    args: tuple[str, ...] = ()

    @property
    def status(self) -> int | None:
        """The exit status of a ``D`` marker (None when missing or not a number)."""
        if self.args and self.args[0].isdigit():
            return int(self.args[0])
        return None

    def option(self, key: str) -> str | None:
        """The value of a ``key=value`` field (``D;0;hw=1`` has ``hw`` = ``1``), or None."""
        prefix = key + "="
        for arg in self.args:
            if arg.startswith(prefix):
                return arg[len(prefix):]
        return None


Piece = str | Marker


def _parse(payload: str) -> Marker:
    kind, *args = payload.split(";")
    return Marker(kind, tuple(args))


def _partial_intro_start(text: str) -> int:
    """Index where a possible beginning of :data:`INTRO` ends ``text``, or -1."""
    start = text.rfind("\x1b", max(0, len(text) - len(INTRO) + 1))
    if start != -1 and INTRO.startswith(text[start:]):
        return start
    return -1


class MarkerParser:
    """Incremental splitter of decoded terminal text into text and markers.

    Usage::

        parser = MarkerParser()
        for piece in parser.feed(chunk):        # str pieces and Marker objects, in order
            ...
        rest = parser.flush()                   # an unfinished marker, as plain text
    """

    def __init__(self) -> None:
        self._pending = ""

    @property
    def pending(self) -> str:
        """Text held back because it may be the start of a marker."""
        return self._pending

    def feed(self, text: str) -> list[Piece]:
        """Split ``text`` (following earlier calls) into text pieces and markers."""
        if self._pending:
            text = self._pending + text
            self._pending = ""
        elif "\x1b" not in text:
            return [text] if text else []
        pieces: list[Piece] = []
        position = 0
        while True:
            start = text.find(INTRO, position)
            if start == -1:
                break
            body = start + len(INTRO)
            bel = text.find(BEL, body)
            st = text.find(ST, body)
            end = bel if st == -1 or (bel != -1 and bel < st) else st
            if end == -1:
                if len(text) - start <= MAX_MARKER:
                    if start > position:
                        pieces.append(text[position:start])
                    self._pending = text[start:]
                    return pieces
                break  # not a marker after all: everything passes through
            if end - body > MAX_MARKER:  # too long to be a marker: pass its start through
                pieces.append(text[position:body])
                position = body
                continue
            if start > position:
                pieces.append(text[position:start])
            pieces.append(_parse(text[body:end]))
            position = end + (1 if end == bel else len(ST))
        tail = text[position:]
        cut = _partial_intro_start(tail)
        if cut != -1:
            self._pending = tail[cut:]
            tail = tail[:cut]
        if tail:
            pieces.append(tail)
        return pieces

    def flush(self) -> str:
        """Return (and forget) held-back text, e.g. when the stream ends."""
        rest, self._pending = self._pending, ""
        return rest


def strip_markers(text: str) -> str:
    """``text`` without any complete OSC 133 marker (for tests and one-off use)."""
    parser = MarkerParser()
    pieces = parser.feed(text)
    return "".join(p for p in pieces if isinstance(p, str)) + parser.flush()


# -- the shell side: hooks that print the markers ---------------------------------------

_BASH = (
    "__hw_osc133_prompt() { local s=$?; "
    "printf '\\033]133;D;%s;hw=%s\\007\\033]133;A\\007' \"$s\" \"${__hw_id-}\"; "
    "case \"${PS1-}\" in *'133;B'*) ;; *) PS1=\"${PS1-}\"'\\[\\e]133;B;hw=${__hw_id-}\\a\\]';; "
    "esac; return $s; }; "
    'case "${PROMPT_COMMAND-}" in *__hw_osc133_prompt*) ;; '
    '*) PROMPT_COMMAND="__hw_osc133_prompt${PROMPT_COMMAND:+;$PROMPT_COMMAND}";; esac; '
    "case \"${PS0-}\" in *'133;C'*) ;; *) PS0=\"${PS0-}\"'\\e]133;C;hw=${__hw_id-}\\a';; esac; "
    "case \"$(history 1 2>/dev/null)\" in *__hw_osc133_prompt*) history -d -1 2>/dev/null;; "
    "esac; hw_k=bash"
)
_ZSH = (
    "eval '__hw_precmd() { local s=$?; "
    "printf \"\\033]133;D;%s;hw=%s\\007\\033]133;A\\007\" $s \"${__hw_id-}\"; return $s }; "
    "__hw_preexec() { printf \"\\033]133;C;hw=%s\\007\" \"${__hw_id-}\" }; "
    "precmd_functions=(__hw_precmd ${precmd_functions:#__hw_precmd}); "
    "preexec_functions=(${preexec_functions:#__hw_preexec} __hw_preexec)'; hw_k=zsh"
)
_POSIX = (
    "case \"${PS1-}\" in *'133;A'*) ;; *) "
    "PS1=\"$(printf '\\033]133;D;')\\$?;hw=\\${__hw_id-}"
    "$(printf '\\007\\033]133;A\\007')${PS1-}$(printf '\\033]133;B;hw=')\\${__hw_id-}"
    "$(printf '\\007')\";; esac; "
    "case \"${PS2-}\" in *'hardway;ps2'*) ;; *) "
    "PS2=\"${PS2-> }$(printf '\\033]133;hardway;ps2;hw=')\\${__hw_id-}$(printf '\\007')\";; "
    "esac; hw_k=sh"
)
ZSH_PROMPT_SP = re.compile(r"(?:\x1b\[[0-9;]*m)*[^\s\x1b](?:\x1b\[[0-9;]*m)* +\r +\r\Z")
"""zsh's PROMPT_SP: the PROMPT_EOL_MARK (``%`` in standout), spaces to the margin, CR."""
_READY = "printf '\\033]133;hardway;ready;%s;%s\\007' \"$hw_k\" \"$__hw_id\"; unset hw_k"


def integration_line(env: Mapping[str, str], ident: str = "0") -> str:
    """The setup line typed into a shell: exports, then the prompt hooks.

    It starts with a space (shells that ignore such lines keep it out of the history) and
    parses in every POSIX shell; the bash and zsh parts only run in those shells.  Every
    marker the hooks print carries ``hw=IDENT``, so markers of an outer or inner shell (or
    of another tool's integration) are told apart.

    Raises:
        UserError: a variable name is not a valid shell identifier.
    """
    line = exports(env)
    return (f" {line + '; ' if line else ''}__hw_id={ident}; "
            f'if [ -n "${{BASH_VERSION-}}" ]; then {_BASH}; '
            f'elif [ -n "${{ZSH_VERSION-}}" ]; then {_ZSH}; '
            f"else {_POSIX}; fi; {_READY}\n")
