"""Tab completion in the broadcast bar (pure): set expressions and per-host placeholders.

The word before the cursor is completed:

* ``@co`` -> ``@controllers`` (groups, ``@none``), ``@+con`` / ``@-con`` -> host names;
* ``+con`` / ``-con`` -> host names; a bare word that starts a host name, as the first
  word of the line (a bare host set such as ``controller-[0-1]``);
* ``{na`` -> ``{name}`` (``name``, ``ip`` and the first host's variables).

Several candidates complete to their common prefix and are returned for the bar to
show; no candidate changes nothing (Tab never leaves the bar).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[^\s,]*\Z")
"""The word before the cursor: set expressions separate items with commas."""


@dataclass(frozen=True)
class Completion:
    """The line after Tab, its cursor, and the candidates when there were several."""

    line: str
    cursor: int
    candidates: tuple[str, ...] = ()


def complete(line: str, cursor: int, *, hosts: Sequence[str], groups: Sequence[str],
             placeholders: Sequence[str]) -> Completion:
    """Complete the word before ``cursor`` in ``line``.

    Args:
        line: the bar's text.
        cursor: the cursor's index in ``line``.
        hosts: every host name, in inventory order.
        groups: group names without ``@`` (``none`` included by the caller).
        placeholders: words usable as ``{word}`` (``name``, ``ip``, variables).
    """
    head, tail = line[:cursor], line[cursor:]
    word = _WORD.search(head)
    assert word is not None  # the pattern matches the empty string
    text = word.group(0)
    start = word.start()
    first_word = not head[:start].strip() or head[:start].rstrip().endswith(",")
    options = _options(text, first_word, hosts=hosts, groups=groups,
                       placeholders=placeholders)
    matches = [o for o in options if o.startswith(text) and o != text]
    if not matches:
        return Completion(line, cursor)
    common = os.path.commonprefix(matches)  # noqa: RUF071  (characters are what we want)
    if len(matches) == 1:
        common = matches[0]
        if not common.endswith("}") and tail[:1] not in (" ", ","):
            common += " " if not first_word or not common.startswith(("@", "+", "-")) \
                else ""
    if common.endswith("}") and tail.startswith("}"):  # the brace is already there
        common, tail = common[:-1], tail[1:]
        new = head[:start] + common + "}"
    else:
        new = head[:start] + common
    return Completion(new + tail, len(new), tuple(matches) if len(matches) > 1 else ())


def _options(text: str, first_word: bool, *, hosts: Sequence[str], groups: Sequence[str],
             placeholders: Sequence[str]) -> list[str]:
    """What ``text`` may become."""
    brace = text.rfind("{")
    if brace >= 0 and "}" not in text[brace:]:
        prefix = text[:brace]
        return [f"{prefix}{{{word}}}" for word in placeholders]
    if text.startswith(("@+", "@-")):
        return [text[:2] + host for host in hosts]
    if text.startswith("@"):
        return ["@" + group for group in groups]
    if text.startswith(("+", "-")) and first_word:
        return [text[0] + host for host in hosts]
    if first_word and text:
        return list(hosts)
    return []
