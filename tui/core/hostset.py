"""Host sets: ClusterShell-style patterns such as ``controller-[0-2],worker-1``.

``expand`` turns a pattern into names, ``fold`` turns names back into the shortest
pattern (natural order), and ``select`` resolves the ``-w``/``-x`` options of a
command against an inventory's hosts and groups (``@controllers``, ``@workers``,
``@all``).

Pattern grammar (a subset of ClusterShell node sets):

* patterns are separated by commas at the top level: ``a,b[1-2]``;
* a bracket holds comma-separated numbers and ranges: ``n[0,2-3]``;
* a leading zero pads: ``n[01-10]`` is ``n01 ... n10``;
* a range may have a step: ``n[0-10/5]`` is ``n0 n5 n10``;
* several brackets multiply: ``r[1-2]n[1-2]`` is ``r1n1 r1n2 r2n1 r2n2``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import product
from typing import Protocol

from tui.core.errors import UserError

MAX_NAMES = 65536
"""Largest number of names one pattern may expand to (guards against typos)."""

EXAMPLE = "controller-[0-2],worker-1"

_RANGE = re.compile(r"^(\d+)(?:-(\d+)(?:/(\d+))?)?$")
_LAST_NUMBER = re.compile(r"^(.*?)(\d+)(\D*)$")
_CHUNKS = re.compile(r"(\d+)")


class HasGroups(Protocol):
    """Anything with named host groups, such as an :class:`Inventory`."""

    def groups(self) -> dict[str, list[str]]:
        """Group name (without ``@``) -> host names, including ``all``."""
        ...


def natural_key(name: str) -> tuple[tuple[int, int | str, str], ...]:
    """Sort key that orders ``n2`` before ``n10``."""
    key: list[tuple[int, int | str, str]] = []
    for chunk in _CHUNKS.split(name):
        if not chunk:
            continue
        if chunk.isdigit():
            key.append((0, int(chunk), chunk))
        else:
            key.append((1, chunk, chunk))
    return tuple(key)


def split_patterns(text: str) -> list[str]:
    """Split ``text`` on commas that are outside brackets; drop empty items."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _bad(pattern: str, problem: str) -> UserError:
    return UserError(
        f'host set "{pattern}" {problem}; expected names, ranges in brackets and '
        f"@groups separated by commas, such as {EXAMPLE} or @controllers."
    )


def _expand_bracket(pattern: str, body: str) -> list[str]:
    """The numbers of one bracket body such as ``0,2-3`` or ``01-10``, formatted."""
    numbers: list[str] = []
    for item in body.split(","):
        item = item.strip()
        match = _RANGE.match(item)
        if not match:
            raise _bad(pattern, f'has "{item}" inside brackets, which is not a number or range')
        low_text, high_text, step_text = match.groups()
        if high_text is None:
            numbers.append(low_text)
            continue
        width = len(low_text) if low_text.startswith("0") and len(low_text) > 1 else 0
        if high_text.startswith("0") and len(high_text) > 1 and len(high_text) != width:
            raise _bad(pattern, f'pads the range "{item}" inconsistently')
        low, high = int(low_text), int(high_text)
        step = int(step_text) if step_text else 1
        if high < low:
            raise _bad(pattern, f'has the range "{item}" running backwards')
        if step < 1:
            raise _bad(pattern, f'has the range "{item}" with a step of 0')
        if (high - low) // step + 1 > MAX_NAMES:
            raise _bad(pattern, f"expands to more than {MAX_NAMES} names")
        numbers.extend(str(value).zfill(width) for value in range(low, high + 1, step))
    return numbers


def _expand_one(pattern: str) -> list[str]:
    """Expand one top-level pattern (no top-level commas)."""
    if any(char.isspace() for char in pattern):
        raise _bad(pattern, "contains white space")
    parts: list[list[str]] = []
    position = 0
    while position < len(pattern):
        opening = pattern.find("[", position)
        closing = pattern.find("]", position)
        if opening < 0:
            if closing >= 0:
                raise _bad(pattern, 'has a "]" without a matching "["')
            parts.append([pattern[position:]])
            break
        if 0 <= closing < opening:
            raise _bad(pattern, 'has a "]" without a matching "["')
        if opening > position:
            parts.append([pattern[position:opening]])
        closing = pattern.find("]", opening)
        if closing < 0:
            raise _bad(pattern, 'has an unclosed "["')
        body = pattern[opening + 1:closing]
        if "[" in body:
            raise _bad(pattern, "nests brackets")
        parts.append(_expand_bracket(pattern, body))
        position = closing + 1
    total = 1
    for part in parts:
        total *= len(part)
    if total > MAX_NAMES:
        raise _bad(pattern, f"expands to more than {MAX_NAMES} names")
    return ["".join(combo) for combo in product(*parts)]


def expand(pattern: str) -> list[str]:
    """Expand a host-set pattern into names, in pattern order, without duplicates.

    Args:
        pattern: e.g. ``"controller-[0-2],worker-1"``.

    Returns:
        The names, e.g. ``["controller-0", "controller-1", "controller-2", "worker-1"]``.

    Raises:
        UserError: the pattern is malformed (unbalanced brackets, bad range...).
    """
    names: dict[str, None] = {}
    for item in split_patterns(pattern):
        for name in _expand_one(item):
            names.setdefault(name, None)
            if len(names) > MAX_NAMES:
                raise _bad(pattern, f"expands to more than {MAX_NAMES} names")
    return list(names)


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted distinct integers as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _fold_numbers(numbers: Iterable[str]) -> tuple[int, str]:
    """Fold digit strings into a bracket body; returns (smallest value, body)."""
    padded: dict[int, set[int]] = {}
    plain: set[str] = set()
    for text in numbers:
        if len(text) > 1 and text.startswith("0"):
            padded.setdefault(len(text), set()).add(int(text))
        else:
            plain.add(text)
    for text in list(plain):  # "10" formats the same way as the padded width-2 class
        if len(text) in padded:
            padded[len(text)].add(int(text))
            plain.discard(text)
    classes: list[tuple[int, set[int]]] = [(0, {int(text) for text in plain})]
    classes.extend(sorted(padded.items()))
    items: list[tuple[int, int, str]] = []
    for width, values in classes:
        for low, high in _runs(sorted(values)):
            text = str(low).zfill(width)
            if high != low:
                text += "-" + str(high).zfill(width)
            items.append((low, width, text))
    items.sort()
    return items[0][0], ",".join(text for _, _, text in items)


def fold(names: Iterable[str]) -> str:
    """Fold names into the shortest host-set pattern, naturally sorted.

    Names are grouped by their last number: ``["controller-0", "controller-1",
    "controller-2"]`` becomes ``"controller-[0-2]"``; ``expand(fold(x))`` has the
    same names as ``x``.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    singles: list[str] = []
    for name in dict.fromkeys(names):
        match = _LAST_NUMBER.match(name)
        if match is None or "[" in name or "]" in name:
            singles.append(name)
            continue
        prefix, number, suffix = match.groups()
        groups.setdefault((prefix, suffix), []).append(number)
    pieces: list[tuple[tuple[tuple[int, int | str, str], ...], str]] = []
    for name in singles:
        pieces.append((natural_key(name), name))
    for (prefix, suffix), numbers in groups.items():
        if len(numbers) == 1:
            name = prefix + numbers[0] + suffix
            pieces.append((natural_key(name), name))
            continue
        first, body = _fold_numbers(numbers)
        pieces.append((natural_key(f"{prefix}{first}{suffix}"), f"{prefix}[{body}]{suffix}"))
    pieces.sort()
    return ",".join(text for _, text in pieces)


def _groups_of(source: HasGroups | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if isinstance(source, Mapping):
        groups = {name: list(members) for name, members in source.items()}
    else:
        groups = source.groups()
    if "all" not in groups:
        every: dict[str, None] = {}
        for members in groups.values():
            every.update(dict.fromkeys(members))
        groups["all"] = list(every)
    return groups


def _resolve(patterns: Sequence[str], groups: dict[str, list[str]], option: str) -> set[str]:
    known = set(groups["all"])
    chosen: set[str] = set()
    for text in patterns:
        for item in split_patterns(text):
            if item.startswith("@"):
                group = item[1:]
                if group not in groups:
                    raise UserError(_unknown_group(item, option, groups))
                chosen.update(groups[group])
                continue
            names = expand(item)
            unknown = [name for name in names if name not in known]
            if unknown:
                raise UserError(_unknown_hosts(unknown, item, option, groups))
            chosen.update(names)
    return chosen


def _inventory_summary(groups: dict[str, list[str]]) -> str:
    hosts = fold(groups["all"]) or "no hosts"
    names = ", ".join("@" + name for name in groups)
    return f"the inventory has {hosts} and the groups {names}"


def _unknown_hosts(unknown: list[str], item: str, option: str, groups: dict[str, list[str]]) -> str:
    where = f' in {option} "{item}"' if option else f' in "{item}"'
    noun = "host" if len(unknown) == 1 else "hosts"
    hint = ""
    if len(unknown) == 1:
        close = difflib.get_close_matches(unknown[0], groups["all"], n=1)
        if close:
            hint = f" (did you mean {close[0]}?)"
    return (
        f"unknown {noun} {fold(unknown)}{where}{hint}; {_inventory_summary(groups)}. "
        f"Expected names, host sets such as {EXAMPLE}, or @groups."
    )


def _unknown_group(item: str, option: str, groups: dict[str, list[str]]) -> str:
    where = f" in {option}" if option else ""
    close = difflib.get_close_matches(item[1:], list(groups), n=1)
    hint = f" (did you mean @{close[0]}?)" if close else ""
    return (
        f'unknown group "{item}"{where}{hint}; {_inventory_summary(groups)}. '
        "Expected one of those groups or host names."
    )


def select(
    source: HasGroups | Mapping[str, Sequence[str]],
    include: Sequence[str] | None,
    exclude: Sequence[str] | None = None,
    *,
    include_option: str = "-w",
    exclude_option: str = "-x",
) -> list[str]:
    """Resolve host selections against an inventory's hosts and groups.

    Args:
        source: an :class:`Inventory` (anything with ``groups()``) or a mapping of
            group name -> host names; ``all`` (every host, in order) is derived when
            missing.
        include: patterns, names or ``@groups``; ``None`` or empty means every host.
        exclude: patterns, names or ``@groups`` removed from the selection.
        include_option: how the include option is called in messages.
        exclude_option: how the exclude option is called in messages.

    Returns:
        The selected names in inventory order (possibly empty).

    Raises:
        UserError: a pattern is malformed or names an unknown host or group.
    """
    groups = _groups_of(source)
    chosen = (
        _resolve(include, groups, include_option) if include else set(groups["all"])
    )
    if exclude:
        chosen -= _resolve(exclude, groups, exclude_option)
    return [name for name in groups["all"] if name in chosen]
