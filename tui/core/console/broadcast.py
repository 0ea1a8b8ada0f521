"""The broadcast set: which hosts receive what is typed in the console's broadcast bar.

The set keeps two things apart:

* the *selection*: the hosts the user chose (every host by default), and
* the *available* hosts: those with an open shell right now (the console says which).

:attr:`BroadcastSet.members` is their intersection, in inventory order: the hosts that
actually receive input.  A selected host that is not available (disconnected, shell
closed) is :attr:`BroadcastSet.waiting`; it receives input again as soon as it is back,
so the default "every host" means "every connected host".

:meth:`BroadcastSet.apply` takes what the user types after ``@`` in the bar; see its
docstring for the grammar.  Nothing here does I/O.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from tui.core.errors import UserError
from tui.core.hostset import expand, fold, split_patterns

log = logging.getLogger(__name__)

_SET_WORD = re.compile(r"[A-Za-z0-9._\-\[\],@+]+")
"""A word made only of what host sets are written with (names, ranges, commas, signs)."""

NONE_GROUP = "none"
"""``@none``: the empty set."""

SYNTAX = (
    "@all, @none, @controllers, @workers, host sets such as controller-[0-1], and "
    "+name or -name to add or remove hosts, separated by commas"
)
"""How the grammar is explained in error messages."""

Listener = Callable[["BroadcastSet"], None]


class BroadcastSet:
    """The hosts that receive broadcast input, with change listeners.

    Args:
        hosts: every host name, in inventory order.
        groups: group name (without ``@``) -> host names, e.g. ``Inventory.groups()``;
            ``all`` is added when missing.
        available: hosts with an open shell now (default: none yet).
    """

    def __init__(self, hosts: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None,
                 *, available: Iterable[str] = ()) -> None:
        self._order = list(dict.fromkeys(hosts))
        self._groups = {name: list(members) for name, members in (groups or {}).items()}
        self._groups.setdefault("all", list(self._order))
        self._selected: set[str] = set(self._order)
        self._available: set[str] = set(available) & set(self._order)
        self._listeners: list[Listener] = []

    # -- reading --------------------------------------------------------------------------

    @property
    def group_names(self) -> list[str]:
        """Every group usable as ``@group`` (``none`` included)."""
        return [*self._groups, NONE_GROUP]

    @property
    def hosts(self) -> list[str]:
        """Every host, in inventory order."""
        return list(self._order)

    @property
    def selected(self) -> list[str]:
        """The hosts the user chose, in inventory order (connected or not)."""
        return [name for name in self._order if name in self._selected]

    @property
    def members(self) -> list[str]:
        """The hosts that receive input now: selected and available, in inventory order."""
        return [name for name in self._order
                if name in self._selected and name in self._available]

    @property
    def waiting(self) -> list[str]:
        """Selected hosts that are not available (they rejoin when their shell opens)."""
        return [name for name in self._order
                if name in self._selected and name not in self._available]

    @property
    def label(self) -> str:
        """The members as a folded host set (``controller-[0-1]``), ``no hosts`` if empty."""
        return fold(self.members) or "no hosts"

    def __contains__(self, name: object) -> bool:
        """True when ``name`` is selected (whether or not it is available now)."""
        return name in self._selected

    def __len__(self) -> int:
        """The number of members."""
        return len(self.members)

    def describe(self) -> str:
        """One line for the bar, e.g. ``broadcast to controller-[0-1] (2)``.

        Selected hosts without a shell are named after a semicolon:
        ``broadcast to controller-[0-1] (2); controller-2 is not connected``.
        """
        text = f"broadcast to {self.label} ({len(self.members)})"
        waiting = self.waiting
        if waiting:
            verb = "is" if len(waiting) == 1 else "are"
            text += f"; {fold(waiting)} {verb} not connected"
        return text

    # -- changing -------------------------------------------------------------------------

    def toggle(self, name: str) -> bool:
        """Add ``name`` to the selection or remove it; returns True when now selected.

        Raises:
            UserError: ``name`` is not a host of the inventory.
        """
        self._check_known([name], name)
        selection = set(self._selected)
        selection ^= {name}
        self._change(selection=selection)
        return name in self._selected

    def select(self, names: Iterable[str]) -> None:
        """Replace the selection with ``names``.

        Raises:
            UserError: a name is not a host of the inventory.
        """
        chosen = list(names)
        self._check_known(chosen, ",".join(chosen))
        self._change(selection=set(chosen))

    def apply(self, expression: str) -> str:
        """Change the selection from what the user typed in the broadcast bar.

        The expression is a comma-separated list of items; a leading ``@`` marking the
        whole line as a set expression is allowed (``@controller-[0-1]``).  Items:

        * ``@all``, ``@none``, ``@controllers``, ``@workers`` (any inventory group);
        * host names and host sets: ``controller-1``, ``controller-[0-1]``;
        * ``+item`` adds to the selection, ``-item`` removes from it (also written
          ``@+item`` / ``@-item``);
        * an unsigned first item replaces the selection; later unsigned items add to it.

        Examples: ``@workers``; ``@controllers,-controller-1``; ``@-controller-2``.

        Returns:
            :meth:`describe` of the new set, e.g. ``broadcast to controller-[0-1] (2)``.

        Raises:
            UserError: the expression is empty or malformed, or names an unknown host or
                group; the selection is then unchanged.
        """
        text = expression.strip()
        items = split_patterns(text)
        if not items or items == ["@"]:
            raise UserError(
                f'the broadcast set expression "{expression}" is empty; expected {SYNTAX}.')
        selection = set(self._selected)
        for index, item in enumerate(items):
            sign, target = _split_sign(item)
            names = self._resolve(target, item, expression)
            if sign == "-":
                selection -= set(names)
            elif sign == "+" or index > 0:
                selection |= set(names)
            else:
                selection = set(names)
        self._change(selection=selection)
        return self.describe()

    def is_set_expression(self, line: str) -> bool:
        """Whether a bar line changes the set instead of being broadcast.

        The bar's hint promises ``@...``, ``+name``, ``-name`` and bare host sets such as
        ``controller-[0-1]``; every one of them must be taken as a set change, never sent
        to the shells (``-controller-1`` broadcast as a command ran on every host):

        * a line starting with ``@``, ``+`` or ``-`` (no shell command starts with a sign);
        * one word naming an inventory host or group member (``controller-1``);
        * one word that looks like a host set (brackets or commas, host-name characters
          only), whether or not it matches: :meth:`apply` then says what is wrong rather
          than the line reaching every shell.
        """
        text = line.strip()
        if not text:
            return False
        if text[0] in "@+-":
            return True
        if any(char.isspace() for char in text):
            return False
        if text in self._groups["all"]:
            return True
        return (("[" in text or "," in text)
                and _SET_WORD.fullmatch(text) is not None)

    def set_available(self, names: Iterable[str]) -> None:
        """Tell the set which hosts have an open shell now (unknown names are ignored)."""
        self._change(available=set(names) & set(self._order))

    def mark_available(self, name: str, available: bool) -> None:
        """Mark one host as having an open shell (True) or not (False)."""
        current = set(self._available)
        if available:
            current.add(name)
        else:
            current.discard(name)
        self.set_available(current)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(self)`` after every change; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    # -- internals ------------------------------------------------------------------------

    def _change(self, *, selection: set[str] | None = None,
                available: set[str] | None = None) -> None:
        before = (frozenset(self._selected), frozenset(self._available))
        if selection is not None:
            self._selected = selection
        if available is not None:
            self._available = available
        if before == (frozenset(self._selected), frozenset(self._available)):
            return
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("broadcast set listener failed")

    def _resolve(self, target: str, item: str, expression: str) -> list[str]:
        """The names one item stands for (group or host set)."""
        if not target:
            raise UserError(
                f'the broadcast set expression "{expression}" has the item "{item}" with '
                f"nothing after its sign; expected {SYNTAX}.")
        if target.startswith("@"):
            word = target[1:]
            if word == NONE_GROUP:
                return []
            if word in self._groups:
                return list(self._groups[word])
            pattern = word
        else:
            pattern = target
        try:
            names = expand(pattern)
        except UserError as error:
            raise UserError(f'in the broadcast set expression "{expression}": {error}') from None
        unknown = [name for name in names if name not in self._groups["all"]]
        if unknown:
            raise UserError(self._unknown_message(unknown, target, expression))
        return names

    def _check_known(self, names: Sequence[str], expression: str) -> None:
        unknown = [name for name in names if name not in self._groups["all"]]
        if unknown:
            raise UserError(self._unknown_message(unknown, ",".join(unknown), expression))

    def _unknown_message(self, unknown: list[str], target: str, expression: str) -> str:
        if target.startswith("@") and len(unknown) == 1:
            candidates = ["@" + group for group in [*self._groups, NONE_GROUP]]
            candidates += self._groups["all"]
            what = f'"{target}" is neither a group nor a host of the inventory'
            close = difflib.get_close_matches(target, candidates, n=1)
        else:
            noun = "host" if len(unknown) == 1 else "hosts"
            what = f"unknown {noun} {fold(unknown)}"
            close = (difflib.get_close_matches(unknown[0], self._groups["all"], n=1)
                     if len(unknown) == 1 else [])
        hint = f" (did you mean {close[0]}?)" if close else ""
        where = "" if expression.strip() == target else f' in "{expression.strip()}"'
        hosts = fold(self._groups["all"]) or "no hosts"
        groups = ", ".join("@" + group for group in [*self._groups, NONE_GROUP])
        return (f"{what}{where}{hint}; the inventory has {hosts} and the groups {groups}. "
                f"The broadcast set takes {SYNTAX}.")


def _split_sign(item: str) -> tuple[str, str]:
    """``+x`` / ``@+x`` -> ("+", "x"); ``-@g`` -> ("-", "@g"); ``x`` -> ("", "x")."""
    if item[:1] in ("+", "-"):
        return item[0], item[1:].strip()
    if item.startswith("@") and item[1:2] in ("+", "-"):
        return item[1], item[2:].strip()
    return "", item
