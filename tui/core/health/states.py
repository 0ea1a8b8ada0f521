"""HAProxy's rise/fall state machine, one per probe, with its transition log.

A probe is ``UNKNOWN`` until its first result, which sets it ``UP`` (passed) or ``DOWN``
(failed).  After that an ``UP`` probe goes ``DOWN`` after ``fall`` consecutive failures
and a ``DOWN`` probe goes ``UP`` after ``rise`` consecutive passes (HAProxy's defaults:
rise 2, fall 3).  A ``warn`` result passes (the service answered).  While a probe is on
its way the counter says how far: ``2/3 DOWN`` is an ``UP`` probe with two of the three
failures that take it down; ``1/2 UP`` a ``DOWN`` probe with one of the two passes that
bring it up.  Every change of state is recorded as a :class:`Transition` (time and
reason); the log keeps the last ``log_size`` of them.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from tui.core.health.model import Outcome

__all__ = ["RiseFall", "State", "Transition"]


class State(enum.Enum):
    """Where a probe stands after rise/fall."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class Transition:
    """One change of state.

    Attributes:
        at: wall-clock time of the result that caused it.
        before, after: the states.
        reason: the detail of that result (why it went down or what it answered).
    """

    at: float
    before: State
    after: State
    reason: str


class RiseFall:
    """The state of one probe.

    Args:
        rise: consecutive passes that bring a DOWN probe UP (>= 1).
        fall: consecutive failures that take an UP probe DOWN (>= 1).
        log_size: transitions kept (the oldest are dropped).
    """

    def __init__(self, rise: int = 2, fall: int = 3, log_size: int = 50) -> None:
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be at least 1")
        self.rise = rise
        self.fall = fall
        self.state = State.UNKNOWN
        self.passes = 0
        """Consecutive passes counted towards rise while DOWN."""
        self.failures = 0
        """Consecutive failures counted towards fall while UP."""
        self.transitions: deque[Transition] = deque(maxlen=log_size)

    def feed(self, outcome: Outcome) -> Transition | None:
        """Account for one result; returns the transition it caused, if any."""
        passed = outcome.status.passed
        before = self.state
        if before is State.UNKNOWN:
            after = State.UP if passed else State.DOWN
        elif before is State.UP:
            self.failures = 0 if passed else self.failures + 1
            after = State.DOWN if self.failures >= self.fall else State.UP
        else:
            self.passes = self.passes + 1 if passed else 0
            after = State.UP if self.passes >= self.rise else State.DOWN
        if after is before:
            return None
        self.state = after
        self.passes = self.failures = 0
        transition = Transition(outcome.at, before, after, outcome.detail)
        self.transitions.append(transition)
        return transition

    @property
    def counter(self) -> str:
        """``2/3 DOWN`` / ``1/2 UP`` while on the way to a transition, else ``""``."""
        if self.state is State.UP and self.failures:
            return f"{self.failures}/{self.fall} DOWN"
        if self.state is State.DOWN and self.passes:
            return f"{self.passes}/{self.rise} UP"
        return ""
