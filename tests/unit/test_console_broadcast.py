"""BroadcastSet: set expressions, toggles, availability, messages and listeners."""

from __future__ import annotations

import pytest

from tui.core.console.broadcast import BroadcastSet
from tui.core.errors import UserError

CONTROLLERS = ["controller-0", "controller-1", "controller-2"]
WORKERS = ["worker-0", "worker-1"]
HOSTS = CONTROLLERS + WORKERS
GROUPS = {"controllers": CONTROLLERS, "workers": WORKERS, "all": HOSTS}


def make(available: list[str] | None = None) -> BroadcastSet:
    return BroadcastSet(HOSTS, GROUPS, available=HOSTS if available is None else available)


def test_default_is_every_connected_host_in_inventory_order() -> None:
    bset = make(available=["worker-1", "controller-2", "controller-0"])
    assert bset.selected == HOSTS
    assert bset.members == ["controller-0", "controller-2", "worker-1"]
    assert bset.waiting == ["controller-1", "worker-0"]
    assert bset.label == "controller-[0,2],worker-1"
    assert bset.describe() == (
        "broadcast to controller-[0,2],worker-1 (3); controller-1,worker-0 are not connected")
    bset.mark_available("controller-1", True)
    assert bset.members == ["controller-0", "controller-1", "controller-2", "worker-1"]
    assert bset.describe() == (
        "broadcast to controller-[0-2],worker-1 (4); worker-0 is not connected")


@pytest.mark.parametrize(("expression", "members", "message"), [
    ("@controllers", CONTROLLERS, "broadcast to controller-[0-2] (3)"),
    ("@workers", WORKERS, "broadcast to worker-[0-1] (2)"),
    ("@all", HOSTS, "broadcast to controller-[0-2],worker-[0-1] (5)"),
    ("@none", [], "broadcast to no hosts (0)"),
    ("controller-[0-1]", ["controller-0", "controller-1"], "broadcast to controller-[0-1] (2)"),
    ("@controller-[0-1]", ["controller-0", "controller-1"], "broadcast to controller-[0-1] (2)"),
    ("@controllers,-controller-1", ["controller-0", "controller-2"],
     "broadcast to controller-[0,2] (2)"),
    ("@controller-0,worker-1", ["controller-0", "worker-1"],
     "broadcast to controller-0,worker-1 (2)"),
    ("@workers,+controller-2", ["controller-2", *WORKERS],
     "broadcast to controller-2,worker-[0-1] (3)"),
    (" @none , +@workers ", WORKERS, "broadcast to worker-[0-1] (2)"),
])
def test_apply_expressions(expression: str, members: list[str], message: str) -> None:
    bset = make()
    assert bset.apply(expression) == message
    assert bset.members == members


def test_signed_items_change_the_current_selection() -> None:
    bset = make()
    bset.apply("@controllers")
    assert bset.apply("@-controller-2") == "broadcast to controller-[0-1] (2)"
    assert bset.apply("@+worker-0") == "broadcast to controller-[0-1],worker-0 (3)"
    assert bset.apply("-@controllers") == "broadcast to worker-0 (1)"
    assert bset.apply("+controller-[1-2],-worker-0") == "broadcast to controller-[1-2] (2)"


def test_toggle_and_membership() -> None:
    bset = make()
    assert bset.toggle("controller-1") is False
    assert "controller-1" not in bset
    assert bset.members == ["controller-0", "controller-2", *WORKERS]
    assert bset.toggle("controller-1") is True
    assert bset.members == HOSTS
    assert len(bset) == 5


def test_toggle_unknown_host_names_it_and_suggests() -> None:
    bset = make()
    with pytest.raises(UserError) as caught:
        bset.toggle("controler-1")
    assert str(caught.value) == (
        "unknown host controler-1 (did you mean controller-1?); the inventory has "
        "controller-[0-2],worker-[0-1] and the groups @controllers, @workers, @all, @none. "
        "The broadcast set takes @all, @none, @controllers, @workers, host sets such as "
        "controller-[0-1], and +name or -name to add or remove hosts, separated by commas.")
    assert bset.selected == HOSTS


def test_unknown_group_or_hosts_leave_the_selection_unchanged() -> None:
    bset = make()
    bset.apply("@workers")
    with pytest.raises(UserError) as caught:
        bset.apply("@controlers")
    assert str(caught.value).startswith(
        '"@controlers" is neither a group nor a host of the inventory '
        "(did you mean @controllers?); the inventory has controller-[0-2],worker-[0-1]")
    with pytest.raises(UserError) as caught:
        bset.apply("@controllers,controller-[3-4]")
    assert str(caught.value).startswith(
        'unknown hosts controller-[3-4] in "@controllers,controller-[3-4]"; '
        "the inventory has controller-[0-2],worker-[0-1] and the groups")
    assert bset.members == WORKERS


def test_malformed_and_empty_expressions() -> None:
    bset = make()
    with pytest.raises(UserError) as caught:
        bset.apply("@controller-[0-")
    assert str(caught.value).startswith(
        'in the broadcast set expression "@controller-[0-": host set "controller-[0-" '
        "has an unclosed")
    for empty in ("@", "  ", ","):
        with pytest.raises(UserError, match="is empty; expected @all, @none"):
            bset.apply(empty)
    with pytest.raises(UserError, match='has the item "-" with nothing after its sign'):
        bset.apply("@controllers,-")


def test_listeners_fire_once_per_real_change() -> None:
    bset = make()
    seen: list[list[str]] = []
    unsubscribe = bset.subscribe(lambda s: seen.append(s.members))
    bset.apply("@all")  # no change
    bset.apply("@controllers")
    bset.mark_available("controller-0", False)
    bset.mark_available("controller-0", False)  # no change
    unsubscribe()
    bset.apply("@all")
    assert seen == [CONTROLLERS, ["controller-1", "controller-2"]]


def test_a_failing_listener_does_not_stop_others() -> None:
    bset = make()
    seen: list[int] = []

    def broken(_: BroadcastSet) -> None:
        raise RuntimeError("boom")

    bset.subscribe(broken)
    bset.subscribe(lambda s: seen.append(len(s)))
    bset.toggle("worker-0")
    assert seen == [4]
