"""HAProxy's rise/fall state machine of the health probes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.health.model import Outcome, Status
from tui.core.health.states import RiseFall, State


def result(passed: bool, at: float = 0.0, detail: str = "") -> Outcome:
    status = Status.OK if passed else Status.FAIL
    return Outcome(status, detail or ("ok" if passed else "refused"), at=at)


def test_the_first_result_decides_the_start() -> None:
    up, down = RiseFall(), RiseFall()
    assert up.state is State.UNKNOWN and up.counter == ""
    t = up.feed(result(True, 1.0))
    assert up.state is State.UP and t is not None and t.before is State.UNKNOWN
    down.feed(result(False))
    assert down.state is State.DOWN


def test_fall_failures_take_it_down_with_counters_and_the_reason() -> None:
    machine = RiseFall(rise=2, fall=3)
    machine.feed(result(True))
    assert machine.feed(result(False, 2.0)) is None
    assert (machine.state, machine.counter) == (State.UP, "1/3 DOWN")
    assert machine.feed(result(False, 3.0)) is None
    assert machine.counter == "2/3 DOWN"
    transition = machine.feed(result(False, 4.0, "nothing listens on 10.0.0.1:2379"))
    assert machine.state is State.DOWN and machine.counter == ""
    assert transition is not None
    assert (transition.at, transition.before, transition.after) == (4.0, State.UP, State.DOWN)
    assert transition.reason == "nothing listens on 10.0.0.1:2379"
    assert list(machine.transitions)[-1] == transition


def test_a_pass_resets_the_way_down() -> None:
    machine = RiseFall(rise=2, fall=3)
    machine.feed(result(True))
    machine.feed(result(False))
    machine.feed(result(False))
    machine.feed(result(True))
    assert (machine.state, machine.counter) == (State.UP, "")
    machine.feed(result(False))
    machine.feed(result(False))
    assert machine.state is State.UP  # two failures again, not five


def test_rise_passes_bring_it_up_and_a_failure_resets_them() -> None:
    machine = RiseFall(rise=2, fall=3)
    machine.feed(result(False))
    machine.feed(result(True))
    assert (machine.state, machine.counter) == (State.DOWN, "1/2 UP")
    machine.feed(result(False))
    assert machine.counter == ""
    machine.feed(result(True))
    transition = machine.feed(result(True, 9.0, "etcd healthy"))
    assert machine.state is State.UP
    assert transition is not None and transition.after is State.UP and transition.at == 9.0


def test_a_warning_passes() -> None:
    machine = RiseFall(rise=2, fall=1)
    machine.feed(result(True))
    machine.feed(Outcome(Status.WARN, "expires in 12 days"))
    assert machine.state is State.UP


def test_configurable_counts_and_bounded_log() -> None:
    machine = RiseFall(rise=1, fall=1, log_size=4)
    for i in range(20):
        machine.feed(result(i % 2 == 0, float(i)))
    assert len(machine.transitions) == 4
    assert machine.transitions[-1].at == 19.0
    with pytest.raises(ValueError):
        RiseFall(rise=0)


def reference(results: list[bool], rise: int, fall: int) -> list[State]:
    """A direct reading of HAProxy's rule: the state after each result."""
    states, state, run = [], State.UNKNOWN, 0
    for passed in results:
        if state is State.UNKNOWN:
            state, run = (State.UP if passed else State.DOWN), 0
        elif state is State.UP:
            run = 0 if passed else run + 1
            if run >= fall:
                state, run = State.DOWN, 0
        else:
            run = run + 1 if passed else 0
            if run >= rise:
                state, run = State.UP, 0
        states.append(state)
    return states


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 5), st.integers(1, 5))
def test_matches_the_rule_for_any_sequence(results: list[bool], rise: int, fall: int) -> None:
    machine = RiseFall(rise, fall)
    seen = []
    for passed in results:
        machine.feed(result(passed))
        seen.append(machine.state)
    assert seen == reference(results, rise, fall)
    assert len(machine.transitions) == sum(
        1 for before, after in zip([State.UNKNOWN, *seen], seen, strict=False)
        if before is not after)
