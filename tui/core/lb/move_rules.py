"""The ipfw side of a VIP move: rule sets as values, and the commands that install them.

The VIP's rules live in an active set (default 10) and a disabled spare set (default 11,
the rollback of the last change; see :mod:`tui.core.lb.ipfw`).  A move goes through three
states of those two sets, each reached with the same atomic pattern (build in the
disabled spare set, then ``ipfw set swap``):

1. *build*: the spare set gets the old VIP's rules (as the active set has them) plus the
   new VIP's rules, numbered after them; nothing changes for traffic;
2. *switch*: ``ipfw set swap ACTIVE SPARE``: both VIPs are served, the old rules alone
   wait in the spare set;
3. *remove the old VIP*: the spare set gets the new VIP's rules alone, numbered as
   ``hardway vip rules`` wants them, and is swapped in.

A rollback puts back the two sets exactly as they were before a step
(:func:`restore_commands`), whatever the spare set holds by then.  Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tui.core.errors import UserError
from tui.core.lb.ipfw import Backend, IpfwCommand, VipLayout, wanted_rules
from tui.core.lb.rules import Action, IpfwRule, parse_line

RESERVED_GAP = 100
"""The new VIP's rules start at the next multiple of this after the old ones."""


@dataclass(frozen=True)
class SetState:
    """The VIP's two sets on the hypervisor: the rules of each and whether they are enabled.

    Attributes:
        active: rules of the active set, in number order.
        spare: rules of the spare set, in number order.
        active_enabled: the active set takes traffic.
        spare_enabled: the spare set takes traffic (it should not).
    """

    active: tuple[IpfwRule, ...]
    spare: tuple[IpfwRule, ...]
    active_enabled: bool = True
    spare_enabled: bool = False

    def lines(self) -> dict[str, list[str]]:
        """JSON-ready: ``{"active": [...], "spare": [...]}`` as ``ipfw -S list`` lines."""
        return {"active": [r.line(show_sets=True) for r in self.active],
                "spare": [r.line(show_sets=True) for r in self.spare]}

    def to_json(self) -> dict[str, object]:
        """What the move's journal keeps of this state."""
        return {**self.lines(), "active_enabled": self.active_enabled,
                "spare_enabled": self.spare_enabled}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SetState:
        """The state :meth:`to_json` wrote.

        Raises:
            ValueError: a line is not an ipfw rule.
        """
        def rules(key: str) -> tuple[IpfwRule, ...]:
            value = data.get(key, [])
            if not isinstance(value, list):
                raise ValueError(f"{key} is not a list of rules")
            return tuple(replace(parse_line(str(line)), disabled=False) for line in value)

        return cls(rules("active"), rules("spare"), bool(data.get("active_enabled", True)),
                   bool(data.get("spare_enabled", False)))

    def same_as(self, other: SetState) -> bool:
        """The same rules in each set (numbers, matches, actions) and the same enabling."""
        return (_same(self.active, other.active) and _same(self.spare, other.spare)
                and self.active_enabled == other.active_enabled
                and self.spare_enabled == other.spare_enabled)


def _same(a: Sequence[IpfwRule], b: Sequence[IpfwRule]) -> bool:
    key = lambda r: (r.number, r.line())  # noqa: E731
    return len(a) == len(b) and all(x.same_as(y) for x, y in zip(sorted(a, key=key),
                                                              sorted(b, key=key), strict=True))


def read_sets(rules: Sequence[IpfwRule], layout: VipLayout) -> SetState:
    """The two sets of ``layout`` in a parsed ``ipfw -S list``."""
    active = tuple(replace(r, disabled=False) for r in rules if r.set == layout.active_set)
    spare = tuple(replace(r, disabled=False) for r in rules if r.set == layout.spare_set)
    active_disabled = any(r.disabled for r in rules if r.set == layout.active_set)
    spare_disabled = any(r.disabled for r in rules if r.set == layout.spare_set)
    return SetState(active, spare, active_enabled=not active_disabled,
                    spare_enabled=bool(spare) and not spare_disabled)


def unmodelled(state: SetState) -> list[IpfwRule]:
    """Rules of either set hardway cannot write again (a rollback could not restore them)."""
    return [r for r in (*state.active, *state.spare) if r.action is Action.OTHER]


def in_set(rules: Sequence[IpfwRule], rule_set: int) -> list[IpfwRule]:
    """``rules`` moved to ``rule_set``."""
    return [replace(r, set=rule_set, disabled=False) for r in rules]


def transition_rules(state: SetState, old: VipLayout, new: VipLayout,
                     backends: Sequence[Backend]) -> list[IpfwRule]:
    """The old VIP's rules (as the active set has them) plus the new VIP's, in the spare set.

    The new rules are numbered from the next multiple of :data:`RESERVED_GAP` after the
    highest rule of the active set, so both lists stay in the order they were written.

    Raises:
        UserError: the numbers would run past ipfw's last rule.
    """
    top = max((r.number for r in state.active), default=old.first_rule - 1)
    first = (top // RESERVED_GAP + 1) * RESERVED_GAP
    layout = replace(new, first_rule=first, active_set=old.active_set,
                     spare_set=old.spare_set)
    added = wanted_rules(layout, backends, rule_set=old.spare_set)
    return in_set(state.active, old.spare_set) + added


def final_rules(new: VipLayout, backends: Sequence[Backend]) -> list[IpfwRule]:
    """The new VIP's rules alone, numbered as ``hardway vip rules`` wants them, in the spare
    set (they become the active set when swapped in)."""
    return wanted_rules(new, backends, rule_set=new.spare_set)


def _add(rules: Sequence[IpfwRule], ipfw: str, why: str) -> list[IpfwCommand]:
    return [IpfwCommand((ipfw, "-q", *rule.add_args()), f"{why}: rule {rule.number}")
            for rule in rules]


def build_commands(layout: VipLayout, rules: Sequence[IpfwRule], *, ipfw: str = "ipfw",
                   why: str = "build") -> list[IpfwCommand]:
    """Fill the (disabled) spare set with ``rules``; traffic does not see them."""
    spare = str(layout.spare_set)
    return [IpfwCommand((ipfw, "set", "disable", spare), "keep the spare set out of traffic"),
            IpfwCommand((ipfw, "-q", "delete", "set", spare), "empty the spare set"),
            *_add(in_set(rules, layout.spare_set), ipfw, why)]


def swap_command(layout: VipLayout, *, ipfw: str = "ipfw") -> IpfwCommand:
    """``ipfw set swap ACTIVE SPARE``: the switch, atomic."""
    return IpfwCommand((ipfw, "set", "swap", str(layout.active_set), str(layout.spare_set)),
                       "switch atomically; the rules before stay in the spare set")


def restore_commands(layout: VipLayout, state: SetState, *,
                     ipfw: str = "ipfw") -> list[IpfwCommand]:
    """Make both sets exactly ``state`` again (the rollback of any step of the move).

    The active set is rebuilt in the spare set and swapped in (atomic for traffic), then
    the spare set gets its own rules back and the enabling of both sets is restored.
    """
    active, spare = str(layout.active_set), str(layout.spare_set)
    commands = build_commands(layout, state.active, ipfw=ipfw, why="restore the active set")
    commands.append(IpfwCommand((ipfw, "set", "enable", active), "the VIP's set takes traffic"))
    commands.append(swap_command(layout, ipfw=ipfw))
    commands.append(IpfwCommand((ipfw, "-q", "delete", "set", spare),
                                "empty the spare set"))
    commands += _add(in_set(state.spare, layout.spare_set), ipfw, "restore the spare set")
    if not state.active_enabled:
        commands.append(IpfwCommand((ipfw, "set", "disable", active),
                                    "the active set was disabled before"))
    if state.spare_enabled:
        commands.append(IpfwCommand((ipfw, "set", "enable", spare),
                                    "the spare set was enabled before"))
    return commands


def expect_after_build(state: SetState, rules: Sequence[IpfwRule]) -> SetState:
    """The sets once :func:`build_commands` put ``rules`` in the spare set."""
    return SetState(state.active, tuple(rules), state.active_enabled, False)


def expect_after_swap(state: SetState, layout: VipLayout) -> SetState:
    """The sets once ``ipfw set swap`` exchanged them (enabling stays with the numbers)."""
    return SetState(tuple(in_set(state.spare, layout.active_set)),
                    tuple(in_set(state.active, layout.spare_set)),
                    state.active_enabled, state.spare_enabled)


def check_layout(state: SetState, layout: VipLayout) -> None:
    """Refuse sets a rollback could not restore.

    Raises:
        UserError: a rule of either set is outside what hardway can write again.
    """
    odd = unmodelled(state)
    if odd:
        raise UserError(f"The hypervisor's ipfw sets {layout.active_set} and "
                        f"{layout.spare_set} hold rules hardway cannot write again, so a "
                        f"rollback could not restore them: "
                        f"{'; '.join(r.line(show_sets=True) for r in odd)}. Move them to "
                        "another set first, or pass --set/--spare-set.")


__all__ = ["RESERVED_GAP", "SetState", "build_commands", "check_layout", "expect_after_build",
           "expect_after_swap", "final_rules", "in_set", "read_sets", "restore_commands",
           "swap_command", "transition_rules", "unmodelled"]
