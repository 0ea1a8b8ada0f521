"""The VIP's ipfw rules: probabilities, listing format, parsing, diff, swap commands."""

from __future__ import annotations

import pytest

from tui.core.errors import UserError
from tui.core.lb.ipfw import (
    Backend,
    Change,
    VipLayout,
    diff_rules,
    rollback_commands,
    round_robin_probabilities,
    swap_commands,
    wanted_rules,
)
from tui.core.lb.rules import Action, IpfwError, compile_add, parse_line, parse_list

BACKENDS = [Backend("controller-0", "10.10.0.10"), Backend("controller-1", "10.10.0.11"),
            Backend("controller-2", "10.10.0.12")]
LAYOUT = VipLayout(vip="10.50.0.10")


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 10])
def test_probabilities_give_every_backend_the_same_share(count: int) -> None:
    probs = round_robin_probabilities(count)
    assert probs[-1] is None
    remaining = 1.0
    shares = []
    for p in probs:
        take = remaining * (1.0 if p is None else p)
        shares.append(take)
        remaining -= take
    assert shares == pytest.approx([1.0 / count] * count)


def test_three_backends_are_the_seed_rules() -> None:
    lines = [r.line() for r in wanted_rules(LAYOUT, BACKENDS)]
    assert lines == [
        "01000 prob 0.333333 fwd 10.10.0.10,6443 tcp from any to 10.50.0.10 dst-port 6443 "
        "keep-state :default",
        "01010 prob 0.500000 fwd 10.10.0.11,6443 tcp from any to 10.50.0.10 dst-port 6443 "
        "keep-state :default",
        "01020 fwd 10.10.0.12,6443 tcp from any to 10.50.0.10 dst-port 6443 "
        "keep-state :default",
    ]


def test_listing_parses_back_into_the_same_rules() -> None:
    rules = wanted_rules(LAYOUT, BACKENDS)
    text = "\n".join(r.line(show_sets=True) for r in rules)
    text += "\n65535 set 31 deny ip from any to any\n"
    parsed = parse_list(text)
    assert all(a.same_as(b) for a, b in zip(rules, parsed, strict=False))
    assert parsed[-1].number == 65535 and parsed[-1].action is Action.DENY


def test_disabled_and_unknown_lines() -> None:
    rule = parse_line("# DISABLED 01000 set 11 fwd 10.10.0.10,6443 tcp from any to "
                      "10.50.0.10 dst-port 6443 keep-state :default")
    assert rule.disabled and rule.set == 11 and rule.fwd_port == 6443
    other = parse_line("00100 set 0 allow ip from any to any via lo0")
    assert other.action is Action.OTHER and other.text == "allow ip from any to any via lo0"
    with pytest.raises(ValueError):
        parse_line("no rule here")


def test_diff_finds_missing_different_extra_and_disabled() -> None:
    wanted = wanted_rules(LAYOUT, BACKENDS)
    assert diff_rules(wanted, wanted, LAYOUT).in_sync
    old = wanted_rules(LAYOUT, BACKENDS[:2])  # 2 backends: prob 0.5 on the first
    old.append(parse_line("01030 set 10 deny ip from any to any"))
    diff = diff_rules(wanted, old, LAYOUT)
    kinds = {(d.number, d.change) for d in diff.deltas}
    assert kinds == {(1000, Change.DIFFERENT), (1010, Change.DIFFERENT),
                     (1020, Change.MISSING), (1030, Change.EXTRA)}
    assert any(line.startswith("+ 01020 set 10 fwd 10.10.0.12,6443") for line in diff.lines())
    disabled = [parse_line("# DISABLED " + r.line(show_sets=True)) for r in wanted]
    assert not diff_rules(wanted, disabled, LAYOUT).in_sync


def test_swap_commands_build_in_the_spare_set_then_swap() -> None:
    cmds = [c.shell for c in swap_commands(LAYOUT, BACKENDS)]
    assert cmds[:3] == ["ipfw set disable 11", "ipfw -q delete set 11", "ipfw set enable 10"]
    assert cmds[3] == ("ipfw -q add 1000 set 11 prob 0.333333 fwd 10.10.0.10,6443 tcp from "
                       "any to 10.50.0.10 dst-port 6443 keep-state")
    assert cmds[-1] == "ipfw set swap 10 11"
    assert [c.shell for c in rollback_commands(LAYOUT)][-1] == "ipfw set swap 10 11"


def test_add_arguments_compile_back_to_the_rule() -> None:
    for rule in wanted_rules(LAYOUT, BACKENDS):
        assert compile_add(rule.add_args()[1:]).same_as(rule)


@pytest.mark.parametrize(("args", "message", "code"), [
    (["100", "set", "32", "allow", "ip", "from", "any", "to", "any"], "illegal set 32", 65),
    (["prob", "1.5", "allow", "ip", "from", "any", "to", "any"], "illegal match prob. 1.5", 65),
    (["100"], "missing action", 64),
    (["100", "allow", "tcp", "any", "to", "any"], "missing ``from''", 64),
    (["100", "allow", "tcp", "from", "any", "any"], "missing ``to''", 64),
    (["100", "fwd", "10.0.0.1,x", "tcp", "from", "any", "to", "any"],
     "illegal forwarding port ``x''", 65),
    (["100", "bogus", "ip", "from", "any", "to", "any"], "invalid action bogus\n", 65),
])
def test_errors_read_like_ipfw(args: list[str], message: str, code: int) -> None:
    with pytest.raises(IpfwError) as info:
        compile_add(args)
    assert info.value.message == message and info.value.exit_code == code


def test_layout_rejects_set_31_and_equal_sets() -> None:
    with pytest.raises(UserError, match="set 31"):
        VipLayout(vip="10.50.0.10", active_set=31)
    with pytest.raises(UserError, match="must differ"):
        VipLayout(vip="10.50.0.10", active_set=3, spare_set=3)
    with pytest.raises(UserError, match="no backends"):
        wanted_rules(LAYOUT, [])
