"""Tab completion in the broadcast bar (pure): set expressions and per-host placeholders.

The word before the cursor is completed:

* ``@co`` -> ``@controllers`` (groups, ``@none``), ``@+con`` / ``@-con`` -> host names;
* ``+con`` / ``-con`` -> host names; a bare word that starts a host name, as the first
  word of the line (a bare host set such as ``controller-[0-1]``);
* ``{na`` -> ``{name}`` (``name``, ``ip`` and the first host's variables);
* anything else that is not the first word, or holds a ``/``: a file name on the first
  host of the set (:func:`file_query` says what to list, :func:`complete_file` completes
  from the listing; the listing itself is the caller's, over SFTP).

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

_PATH_WORD = re.compile(r"(?:\\.|[^\s'\"=<>|;&()`])*\Z")
"""A file name before the cursor: shell words end at blanks, quotes, ``=`` (as in
``--cacert=/etc/etcd/ca.pem``), redirections and separators; ``\\ `` stays inside."""

_SHELL_SPECIAL = re.compile(r"([\s'\"\\$`!&;|<>()*?\[\]{}#~])")
"""Characters a completed file name escapes with a backslash."""

MAX_FILE_CANDIDATES = 500
"""Listings larger than this are cut (a Tab in /usr/lib stays quick)."""


@dataclass(frozen=True)
class FileCompletion:
    """Tab on a file name: the bar after it, the host that was listed, and why the
    listing failed (None when it did not)."""

    completion: Completion
    host: str
    error: str | None = None


@dataclass(frozen=True)
class FileQuery:
    """A file name to complete on a host.

    Attributes:
        directory: what to list on the host (absolute, or relative to the login
            directory; ``"."`` for the login directory itself).
        prefix: the start of the name, as the host spells it (backslashes removed).
        start: index in the line where the name's typed text begins.
        hidden: list dot files too (the prefix starts with ``.``).
    """

    directory: str
    prefix: str
    start: int
    hidden: bool


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


def file_query(line: str, cursor: int) -> FileQuery | None:
    """The file name before ``cursor`` to complete on a host, or None where Tab completes
    something else (a set expression, a placeholder) or nothing (the command word)."""
    head = line[:cursor]
    set_word = _WORD.search(head)
    assert set_word is not None
    text = set_word.group(0)
    before = head[:set_word.start()]
    if text.startswith(("@", "{")) or "{" in text or "$" in text:
        return None
    first_word = not before.strip() or before.rstrip().endswith(",")
    word = _PATH_WORD.search(head)
    assert word is not None
    typed = word.group(0)
    if first_word and "/" not in typed:
        return None  # the command itself (or a host set): not a file name
    name = re.sub(r"\\(.)", r"\1", typed)
    slash = name.rfind("/")
    directory, prefix = (name[:slash + 1], name[slash + 1:]) if slash >= 0 else ("", name)
    typed_prefix = typed[len(typed) - _escaped_length(prefix, typed):]
    if directory in ("", "~/", "./"):
        listed = "."
    elif directory.startswith("~/"):
        listed = directory[2:]
    else:
        listed = directory
    return FileQuery(listed, prefix, cursor - len(typed_prefix), prefix.startswith("."))


def _escaped_length(prefix: str, typed: str) -> int:
    """How many characters at the end of ``typed`` spell ``prefix`` (with escapes)."""
    count, index = 0, len(typed)
    remaining = len(prefix)
    while remaining and index:
        index -= 1
        count += 1
        if index and typed[index - 1] == "\\":
            index -= 1
            count += 1
        remaining -= 1
    return count


def complete_file(line: str, cursor: int, query: FileQuery,
                  entries: Sequence[tuple[str, bool]]) -> Completion:
    """Complete ``query`` from a directory listing of ``(name, is_directory)``: one match
    is written out (``/`` after a directory, a blank after a file), several complete to
    their common prefix and come back as candidates."""
    matches = sorted((name + "/" if is_dir else name) for name, is_dir in entries
                     if name.startswith(query.prefix) and name not in (".", "..")
                     and (query.hidden or not name.startswith(".")))
    if not matches:
        return Completion(line, cursor)
    common = matches[0] if len(matches) == 1 else os.path.commonprefix(matches)  # noqa: RUF071
    tail = line[cursor:]
    new = line[:query.start] + _SHELL_SPECIAL.sub(r"\\\1", common)
    if len(matches) == 1 and not common.endswith("/") and tail[:1] != " ":
        new += " "
    return Completion(new + tail, len(new), tuple(matches) if len(matches) > 1 else ())
