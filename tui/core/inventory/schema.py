"""A small typed walker over a parsed TOML document that explains every mistake.

:class:`Table` wraps one TOML table and its key path (``controllers[1].ssh``).  Each
accessor checks the value's kind and shape and returns a typed value; every failure
is raised through the ``fail`` callback as one sentence naming the key path, the
bad value and what is expected.  :meth:`Table.finish` rejects keys nobody asked
for, with a "did you mean" suggestion.  :func:`locate_line` finds the line of a key
path in the source text so messages can point at it.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from tui.core.errors import UserError

Fail = Callable[[str, str], UserError]
"""``fail(sentence, key_path)`` -> the exception to raise."""

_MISSING: Any = object()
_SECRETISH = re.compile(r"secret|passw|token|private", re.IGNORECASE)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_DOTTED = re.compile(r"^[0-9.]+$")


def kind_of(value: object) -> str:
    """The TOML kind of ``value`` with an article: "a string", "an array"..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "an empty string" if value == "" else "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return "a value"


def show(key: str, value: object, limit: int = 60) -> str:
    """``value`` written as in TOML, shortened; hidden when the key looks secret."""
    leaf = key.rsplit(".", 1)[-1]
    if _SECRETISH.search(leaf) and not leaf.endswith("_file"):
        return "(hidden)"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {show(k, v)}" for k, v in value.items()) + " }"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(key, item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Table:
    """One TOML table being validated; accessors record which keys are known.

    Args:
        data: the parsed table.
        prefix: its key path ("" for the document root).
        fail: builds the exception for a sentence and a key path.
        base_dir: directory that relative file names resolve against.
    """

    def __init__(self, data: dict[str, Any], prefix: str, fail: Fail, base_dir: Path) -> None:
        self.data = data
        self.prefix = prefix
        self._fail = fail
        self._base_dir = base_dir
        self._known: dict[str, None] = {}

    # -- messages -----------------------------------------------------------------

    def key(self, name: str) -> str:
        """The full key path of ``name`` in this table."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str, value: Any = _MISSING) -> UserError:
        """An error about key ``name``: "KEY = VALUE problem." (value from the table)."""
        key = self.key(name)
        if value is _MISSING:
            value = self.data.get(name, _MISSING)
        subject = key if value is _MISSING else f"{key} = {show(key, value)}"
        return self._fail(f"{subject} {problem}.", key)

    def _wrong_kind(self, name: str, value: Any, expected: str) -> UserError:
        return self.error(name, f"is {kind_of(value)}; expected {expected}", value)

    def _missing(self, name: str, expected: str) -> UserError:
        key = self.key(name)
        unknown = [k for k in self.data if k != name and k not in self._known]
        close = difflib.get_close_matches(name, unknown, n=1, cutoff=0.75)
        typo = f" ({self.key(close[0])} is set: did you mean {name}?)" if close else ""
        return self._fail(f"{key} is missing{typo}; expected {expected}.", key)

    # -- raw access -----------------------------------------------------------------

    def _get(self, name: str) -> Any:
        self._known[name] = None
        return self.data.get(name, _MISSING)

    def refuse(self, name: str, explanation: str) -> None:
        """Reject key ``name`` outright, without echoing its value (e.g. inline secrets)."""
        if name in self.data:
            key = self.key(name)
            raise self._fail(f"{key} is not allowed: {explanation}.", key)

    def finish(self) -> None:
        """Reject keys that no accessor asked for, suggesting the closest known key."""
        for name in self.data:
            if name in self._known:
                continue
            known = list(self._known)
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            where = f"[{self.prefix}]" if self.prefix else "the top level"
            raise self._fail(
                f"{self.key(name)} is not a known key{hint}; expected one of the keys of "
                f"{where}: {', '.join(known)} (config/README.md documents each).",
                self.key(name),
            )

    # -- typed accessors ------------------------------------------------------------

    def table(self, name: str, *, required: bool = False, example: str = "") -> Table | None:
        """The sub-table ``name`` (None when absent and not required)."""
        value = self._get(name)
        expected = f"a [{self.key(name)}] table" + (f" with {example}" if example else "")
        if value is _MISSING:
            if required:
                raise self._missing(name, expected)
            return None
        if not isinstance(value, dict):
            raise self._wrong_kind(name, value, expected)
        return Table(value, self.key(name), self._fail, self._base_dir)

    def tables(self, name: str, *, required: bool = False, example: str = "") -> list[Table]:
        """The array of tables ``[[name]]`` (at least one entry when required)."""
        value = self._get(name)
        expected = f"at least one {example}" if example else f"at least one [[{name}]] table"
        if value is _MISSING or value == []:
            if required:
                raise self._missing(name, expected)
            return []
        if isinstance(value, dict):
            raise self.error(name, f"is a single table; expected an array of tables, each "
                             f"written [[{self.key(name)}]]", value)
        if not isinstance(value, list):
            raise self._wrong_kind(name, value, f"an array of tables written [[{name}]]")
        result: list[Table] = []
        for index, item in enumerate(value):
            key = f"{self.key(name)}[{index}]"
            if not isinstance(item, dict):
                raise self._fail(f"{key} = {show(key, item)} is {kind_of(item)}; expected a "
                                 f"table written [[{self.key(name)}]].", key)
            result.append(Table(item, key, self._fail, self._base_dir))
        return result

    def string(self, name: str, *, required: bool = False, allow_empty: bool = False,
               example: str = "") -> str | None:
        """A string value (None when absent and not required)."""
        value = self._get(name)
        expected = "a string" + (f" such as {example}" if example else "")
        if value is _MISSING:
            if required:
                raise self._missing(name, expected)
            return None
        if not isinstance(value, str):
            raise self._wrong_kind(name, value, expected)
        if not value.strip() and not allow_empty:
            raise self.error(name, f"is empty; expected {expected}", value)
        if value != value.strip():
            raise self.error(name, f"has leading or trailing spaces; expected {expected}",
                             value)
        return value

    def ipv4(self, name: str, *, required: bool = False,
             example: str = "10.10.0.11") -> ipaddress.IPv4Address | None:
        """An IPv4 address written as a dotted-quad string."""
        expected = f"a dotted quad such as {example}"
        text = self.string(name, required=required, example=f'"{example}"')
        if text is None:
            return None
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            pass
        if "/" in text:
            raise self.error(name, f"is a network, not an address; expected {expected}")
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise self.error(name, f"is not an IPv4 address; expected {expected}") from None
        raise self.error(name, f"is an IPv6 address; hardway supports IPv4 only, expected "
                         f"{expected}")

    def network(self, name: str, *, required: bool = False,
                example: str = "10.10.0.0/24") -> ipaddress.IPv4Network | None:
        """An IPv4 network in CIDR notation, without host bits."""
        expected = f"an IPv4 network in CIDR notation such as {example}"
        text = self.string(name, required=required, example=f'"{example}"')
        if text is None:
            return None
        if "/" not in text:
            raise self.error(name, f"has no prefix length; expected {expected}")
        try:
            return ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                fixed = ipaddress.IPv4Network(text, strict=False)
                raise self.error(name, f"has host bits set; expected the network address "
                                 f"{fixed}") from None
            raise self.error(name, f"is not an IPv4 network; expected {expected}") from None

    def hostname(self, name: str, *, required: bool = False, example: str = "") -> str | None:
        """An IPv4 address or a DNS host name, kept as text."""
        expected = "an IPv4 address or a DNS name" + (f" such as {example}" if example else "")
        text = self.string(name, required=required, example=example)
        if text is None:
            return None
        if _DOTTED.match(text):
            try:
                ipaddress.IPv4Address(text)
            except ValueError:
                raise self.error(name, f"is not an IPv4 address; expected {expected}") from None
        elif not _HOSTNAME.match(text):
            raise self.error(name, f"is not a host name; expected {expected}")
        return text

    def integer(self, name: str, *, default: int | None, minimum: int, maximum: int,
                example: str = "") -> int | None:
        """An integer within [minimum, maximum] (``default`` when absent)."""
        value = self._get(name)
        expected = f"an integer from {minimum} to {maximum}" + (
            f" such as {example}" if example else "")
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            hint = " (write it without quotes)" if isinstance(value, str) else ""
            raise self._wrong_kind(name, value, expected + hint)
        if not minimum <= value <= maximum:
            raise self.error(name, f"is out of range; expected {expected}", value)
        return value

    def port(self, name: str, *, default: int | None) -> int | None:
        """A TCP/UDP port number (``default`` when absent)."""
        return self.integer(name, default=default, minimum=1, maximum=65535,
                            example=str(default or 22))

    def choice(self, name: str, choices: Sequence[str], *, default: str) -> str:
        """One of ``choices`` (``default`` when absent)."""
        allowed = ", ".join(f'"{c}"' for c in choices)
        value = self.string(name, example=f'"{default}"')
        if value is None:
            return default
        if value not in choices:
            close = difflib.get_close_matches(value, list(choices), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise self.error(name, f"is not supported{hint}; expected one of {allowed}")
        return value

    def path(self, name: str, *, example: str = "") -> Path | None:
        """A local file name; ``~`` expands, relative names resolve against the base dir."""
        text = self.string(name, example=example)
        if text is None:
            return None
        expanded = Path(os.path.expanduser(text))
        if not expanded.is_absolute():
            expanded = self._base_dir / expanded
        return Path(os.path.abspath(expanded))

    def string_map(self, name: str, *, key_pattern: re.Pattern[str],
                   key_expected: str) -> dict[str, str]:
        """A table of string values whose keys match ``key_pattern``."""
        value = self._get(name)
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            raise self._wrong_kind(name, value, 'a table of strings such as { POD_CIDR = '
                                   '"10.100.0.0/24" }')
        for item, item_value in value.items():
            key = f"{self.key(name)}.{item}"
            if not key_pattern.match(item):
                raise self._fail(f"{key} has a name that cannot be used; expected "
                                 f"{key_expected}.", key)
            if not isinstance(item_value, str):
                raise self._fail(f"{key} = {show(key, item_value)} is {kind_of(item_value)}; "
                                 f"expected a string (quote it: \"{item_value}\").", key)
        return dict(value)


# -- locating a key path in the source text ---------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\".\s]+?)\s*=")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_dotted(text: str) -> list[str]:
    return [part.strip().strip('"').strip("'") for part in text.split(".")]


def _key_parts(key: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _PATH_PART.findall(key)]


def locate_line(text: str, key: str) -> int | None:
    """Best-effort 1-based line of ``key`` (e.g. ``controllers[1].address``) in ``text``.

    Finds the assignment, else the inline table containing it, else the nearest
    table header on the path; None when nothing matches.
    """
    target = _key_parts(key)
    if not target:
        return None
    counters: dict[tuple[str | int, ...], int] = {}
    current: list[str | int] = []
    best: tuple[int, int] | None = None  # (matched length, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names: list[str | int] = list(_split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = counters.get(tuple(names), -1) + 1
                counters[tuple(names)] = index
                names.append(index)
            current = names
            candidate = current
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            candidate = current + list(_split_dotted(assign.group(1)))
            rest = target[len(candidate):]
            if (target[: len(candidate)] == candidate and rest and isinstance(rest[0], str)
                    and re.search(rf"[{{,]\s*{re.escape(rest[0])}\s*=", line)):
                return number
        size = len(candidate)
        if candidate == target[:size] and (best is None or size > best[0]):
            best = (size, number)
            if size == len(target):
                return number
    return best[1] if best else None
