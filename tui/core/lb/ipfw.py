"""The API VIP on an ipfw hypervisor: wanted rules, diff against the live list, atomic swap.

The hypervisor spreads new connections to ``VIP:PORT`` over the controllers with one
``fwd`` rule per backend, in one numbered set::

    01000 prob 0.333333 fwd 10.10.0.10,6443 tcp from any to VIP dst-port 6443 keep-state :default
    01010 prob 0.500000 fwd 10.10.0.11,6443 tcp from any to VIP dst-port 6443 keep-state :default
    01020 fwd 10.10.0.12,6443 tcp from any to VIP dst-port 6443 keep-state :default

Rule *i* of *n* matches with probability 1/(n-i) of what reaches it, so every backend
gets 1/n of the new connections; the last rule is unconditional.  ``keep-state`` pins a
flow to the backend its first packet chose.

A change is applied atomically, as the ipfw(8) manual suggests: the new rules are built
in a spare set that is disabled (so half a rule set never sees traffic), then
``ipfw set swap ACTIVE SPARE`` exchanges the two sets in one kernel operation.  The
previous rules stay in the (disabled) spare set: ``ipfw set swap ACTIVE SPARE`` again is
the rollback.  Established flows keep their dynamic states until those expire.

Everything here is pure (no SSH): the CLI and the "move the VIP" plan run the commands
through the Fleet and feed ``ipfw -S list`` back into :func:`parse_list`.
"""

from __future__ import annotations

import enum
import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from tui.core.errors import UserError
from tui.core.lb.rules import (
    RESVD_SET,
    Action,
    IpfwRule,
    format_prob,
    parse_list,
    prob_fixed,
)

DEFAULT_ACTIVE_SET = 10
DEFAULT_SPARE_SET = 11
DEFAULT_FIRST_RULE = 1000
DEFAULT_RULE_STEP = 10


@dataclass(frozen=True)
class Backend:
    """One controller behind the VIP."""

    name: str
    address: str
    port: int = 6443


@dataclass(frozen=True)
class VipLayout:
    """Where the VIP's rules live on the hypervisor.

    Attributes:
        vip: the virtual IP clients dial.
        port: the VIP's port (the API port).
        active_set: the enabled set holding the rules traffic uses.
        spare_set: the disabled set used to build the next rules and keep the last ones.
        first_rule: number of the first rule; the next ones follow every ``step``.
        step: the gap between rule numbers.
    """

    vip: str
    port: int = 6443
    active_set: int = DEFAULT_ACTIVE_SET
    spare_set: int = DEFAULT_SPARE_SET
    first_rule: int = DEFAULT_FIRST_RULE
    step: int = DEFAULT_RULE_STEP

    def __post_init__(self) -> None:
        for name, value in (("active_set", self.active_set), ("spare_set", self.spare_set)):
            if not 0 <= value < RESVD_SET:
                raise UserError(f"The VIP's ipfw {name} is {value}; it must be 0..30 "
                                f"(set 31 cannot be disabled, so it cannot be swapped).")
        if self.active_set == self.spare_set:
            raise UserError(f"The VIP's ipfw active and spare sets are both "
                            f"{self.active_set}; they must differ.")
        try:
            ipaddress.IPv4Address(self.vip)
        except ValueError:
            raise UserError(f"The VIP {self.vip!r} is not an IPv4 address.") from None


def round_robin_probabilities(count: int) -> list[float | None]:
    """``prob`` for each of ``count`` rules so each backend gets 1/count (last: None).

    Rule *i* sees the share of traffic the rules before it left, (count-i)/count, and
    must take 1/count of all of it: probability 1/(count-i).
    """
    if count < 1:
        raise ValueError("a VIP needs at least one backend")
    return [1.0 / (count - i) if i < count - 1 else None for i in range(count)]


def wanted_rules(layout: VipLayout, backends: Sequence[Backend], *,
                 rule_set: int | None = None) -> list[IpfwRule]:
    """The VIP's rules, in ``rule_set`` (default: the active set).

    Raises:
        UserError: no backends, or the numbers would run past 65534.
    """
    if not backends:
        raise UserError(f"The VIP {layout.vip} has no backends (no controllers in the "
                        f"inventory).")
    last = layout.first_rule + layout.step * (len(backends) - 1)
    if layout.first_rule < 1 or last >= 65535:
        raise UserError(f"The VIP's rules would be numbered {layout.first_rule}..{last}; "
                        f"ipfw rule numbers are 1..65534.")
    target = layout.active_set if rule_set is None else rule_set
    rules = []
    for i, (backend, prob) in enumerate(zip(backends, round_robin_probabilities(len(backends)),
                                            strict=True)):
        fixed = None if prob is None else prob_fixed(float(format_prob(prob)))
        rules.append(IpfwRule(number=layout.first_rule + i * layout.step, set=target,
                              action=Action.FWD, prob_fixed=fixed,
                              fwd_address=backend.address, fwd_port=backend.port,
                              proto="tcp", src="any", dst=layout.vip, dst_port=layout.port,
                              keep_state=True))
    return rules


class Change(enum.Enum):
    """How one rule of the VIP's set differs from the wanted one."""

    MISSING = "missing"
    EXTRA = "extra"
    DIFFERENT = "different"


@dataclass(frozen=True)
class RuleDelta:
    """One difference: the wanted rule and/or the rule the hypervisor has."""

    change: Change
    number: int
    wanted: IpfwRule | None
    actual: IpfwRule | None


@dataclass(frozen=True)
class RuleDiff:
    """Wanted vs actual rules of the VIP's active set.

    Attributes:
        deltas: rule by rule differences, by number.
        active_disabled: the active set is disabled on the hypervisor (no traffic passes).
        spare_rules: rules currently kept in the spare set (the rollback).
        other_rules: rules for the VIP's address outside both sets (they may win first).
    """

    deltas: tuple[RuleDelta, ...]
    active_disabled: bool = False
    spare_rules: tuple[IpfwRule, ...] = ()
    other_rules: tuple[IpfwRule, ...] = field(default=())

    @property
    def in_sync(self) -> bool:
        """The hypervisor forwards the VIP exactly as wanted."""
        return not self.deltas and not self.active_disabled

    def lines(self) -> list[str]:
        """A unified-diff-like view: ``-`` the hypervisor's lines, ``+`` the wanted ones."""
        out = []
        for delta in self.deltas:
            if delta.actual is not None:
                out.append("- " + delta.actual.line(show_sets=True))
            if delta.wanted is not None:
                out.append("+ " + delta.wanted.line(show_sets=True))
        return out


def diff_rules(wanted: Sequence[IpfwRule], actual: Sequence[IpfwRule],
               layout: VipLayout) -> RuleDiff:
    """Compare the wanted rules with the parsed ``ipfw -S list`` of the hypervisor."""
    active = [r for r in actual if r.set == layout.active_set]
    by_number: dict[int, list[IpfwRule]] = {}
    for rule in active:
        by_number.setdefault(rule.number, []).append(rule)
    deltas: list[RuleDelta] = []
    wanted_numbers = set()
    for rule in wanted:
        wanted_numbers.add(rule.number)
        have = by_number.get(rule.number, [])
        if not have:
            deltas.append(RuleDelta(Change.MISSING, rule.number, rule, None))
        elif not any(rule.same_as(h) for h in have):
            deltas.append(RuleDelta(Change.DIFFERENT, rule.number, rule, have[0]))
        for extra in have[1:]:
            deltas.append(RuleDelta(Change.EXTRA, rule.number, None, extra))
    for rule in active:
        if rule.number not in wanted_numbers:
            deltas.append(RuleDelta(Change.EXTRA, rule.number, None, rule))
    deltas.sort(key=lambda d: (d.number, d.change.value))
    disabled = any(r.disabled for r in active)
    spare = tuple(r for r in actual if r.set == layout.spare_set)
    others = tuple(r for r in actual if r.set not in (layout.active_set, layout.spare_set)
                   and r.dst == layout.vip)
    return RuleDiff(tuple(deltas), active_disabled=disabled, spare_rules=spare,
                    other_rules=others)


def parse_hypervisor_list(text: str) -> list[IpfwRule]:
    """Rules from ``ipfw -S list`` output (see :func:`tui.core.lb.rules.parse_list`)."""
    return parse_list(text)


@dataclass(frozen=True)
class IpfwCommand:
    """One ipfw invocation of an apply, with why it is there."""

    argv: tuple[str, ...]
    purpose: str

    @property
    def shell(self) -> str:
        """The command line to run on the hypervisor."""
        return shlex.join(self.argv)


LIST_COMMAND = IpfwCommand(("ipfw", "-S", "list"), "read the rules with their sets")


def swap_commands(layout: VipLayout, backends: Sequence[Backend], *,
                  ipfw: str = "ipfw") -> list[IpfwCommand]:
    """The atomic replacement of the VIP's rules, in order.

    1. disable the spare set (it should already be; adding to an enabled set would let
       traffic see half a rule set);
    2. delete what the spare set holds (the rollback of the previous change);
    3. add the new rules into the spare set;
    4. ``set swap``: the new rules become the active set in one operation and the
       previous ones land, disabled, in the spare set (the new rollback).
    """
    spare, active = str(layout.spare_set), str(layout.active_set)
    cmds = [IpfwCommand((ipfw, "set", "disable", spare), "keep the spare set out of traffic"),
            IpfwCommand((ipfw, "-q", "delete", "set", spare),
                        "drop the rules kept from the change before last"),
            IpfwCommand((ipfw, "set", "enable", active), "make sure the VIP's set is enabled")]
    for rule in wanted_rules(layout, backends, rule_set=layout.spare_set):
        cmds.append(IpfwCommand((ipfw, "-q", *rule.add_args()),
                                f"build rule {rule.number} for {rule.fwd_address} in the "
                                f"spare set"))
    cmds.append(IpfwCommand((ipfw, "set", "swap", active, spare),
                            "switch atomically; the previous rules stay in the spare set"))
    return cmds


def rollback_commands(layout: VipLayout, *, ipfw: str = "ipfw") -> list[IpfwCommand]:
    """Swap back to the rules kept in the spare set."""
    return [IpfwCommand((ipfw, "set", "disable", str(layout.spare_set)),
                        "keep the spare set out of traffic"),
            IpfwCommand((ipfw, "set", "swap", str(layout.active_set), str(layout.spare_set)),
                        "put the previous rules back in the active set")]


def remove_commands(layout: VipLayout, *, ipfw: str = "ipfw") -> list[IpfwCommand]:
    """Remove every rule of the VIP (both sets), e.g. for the old VIP after a move."""
    return [IpfwCommand((ipfw, "-q", "delete", "set", str(layout.active_set)),
                        "remove the VIP's rules"),
            IpfwCommand((ipfw, "-q", "delete", "set", str(layout.spare_set)),
                        "remove the rules kept for rollback")]


def script(commands: Sequence[IpfwCommand]) -> str:
    """The commands as one ``sh -e`` script (stops at the first failure)."""
    return "set -e\n" + "\n".join(c.shell for c in commands) + "\n"


__all__ = [
    "LIST_COMMAND",
    "Backend",
    "Change",
    "IpfwCommand",
    "RuleDelta",
    "RuleDiff",
    "VipLayout",
    "diff_rules",
    "parse_hypervisor_list",
    "remove_commands",
    "rollback_commands",
    "round_robin_probabilities",
    "script",
    "swap_commands",
    "wanted_rules",
]
