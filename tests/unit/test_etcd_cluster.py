"""Comparing what etcd reports with the inventory, and clock readings, without a network."""

from __future__ import annotations

from pathlib import Path

from tests.support.etcd_cluster import write_inventory
from tui.core.etcd.client import Health, Member, MemberStatus
from tui.core.etcd.clock import ClockReading, skew_diagnoses
from tui.core.etcd.cluster import ClusterView, problems
from tui.core.etcd.diagnose import Problem
from tui.core.inventory.load import load_inventory

NET = "127.0.222"


def status(name_index: int, *, cluster: int = 7, leader: int = 1) -> MemberStatus:
    return MemberStatus(f"{NET}.{10 + name_index}:2379", member_id=name_index + 1,
                        cluster_id=cluster, version="3.4.23", db_size=20480,
                        db_size_in_use=16384, leader=leader, raft_term=2, raft_index=9,
                        raft_applied_index=9, revision=1)


def member(i: int, *, port: int = 2380) -> Member:
    return Member(i + 1, f"controller-{i}", (f"https://{NET}.{10 + i}:{port}",),
                  (f"https://{NET}.{10 + i}:2379",))


def view(statuses: dict[str, MemberStatus], members: tuple[Member, ...],
         healthy: bool = True) -> ClusterView:
    names = [f"controller-{i}" for i in range(3)]
    health = {n: Health(n, healthy or n != "controller-2", "x", 0.01) for n in names}
    return ClusterView(health, statuses, {}, members, "controller-0", 7,
                       {m.name: m for m in members if m.name})


def test_a_cluster_as_the_inventory_says_has_no_problem(tmp_path: Path) -> None:
    inventory = load_inventory(write_inventory(tmp_path, NET))
    seen = view({f"controller-{i}": status(i) for i in range(3)},
                tuple(member(i) for i in range(3)))
    assert problems(seen, inventory) == []
    assert seen.leader == "controller-0" and seen.cluster_id == 7 and seen.healthy


def test_every_difference_is_named(tmp_path: Path) -> None:
    inventory = load_inventory(write_inventory(tmp_path, NET))
    members = (member(0), member(1, port=2390),
               Member(99, "", (f"https://{NET}.99:2380",), ()))
    seen = view({"controller-0": status(0), "controller-1": status(1, cluster=8, leader=0)},
                members, healthy=False)
    text = " | ".join(p.message for p in problems(seen, inventory))
    assert "controller-2 is not in the member list" in text
    assert f"controller-1's peer URLs are https://{NET}.11:2390" in text
    assert "unstarted member 63" in text
    assert "different cluster IDs" in text
    assert "do not agree on one leader" in text


def test_clock_skew_beyond_the_round_trip() -> None:
    readings = {"a": ClockReading("a", 0.01, 0.02), "b": ClockReading("b", -0.02, 0.02),
                "c": ClockReading("c", 3.5, 0.05)}
    (found,) = skew_diagnoses(readings)
    assert found.problem == Problem.CLOCK_SKEW and found.host == "c"
    assert "3.5 s ahead" in found.summary
    readings["c"] = ClockReading("c", 1.2, 0.5)  # within what the round trip explains
    assert skew_diagnoses(readings) == []
