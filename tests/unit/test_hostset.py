"""Host sets: expand/fold like ClusterShell node sets, and -w/-x selection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.errors import UserError
from tui.core.hostset import expand, fold, natural_key, select

try:
    from ClusterShell.NodeSet import NodeSet
except ImportError:  # ClusterShell is only the reference implementation here
    NodeSet = None

GROUPS = {
    "controllers": ["controller-0", "controller-1", "controller-2"],
    "workers": ["worker-0", "worker-1", "worker-2"],
}


@pytest.mark.parametrize(("pattern", "names"), [
    ("controller-[0-2],worker-1",
     ["controller-0", "controller-1", "controller-2", "worker-1"]),
    ("n[01-03]", ["n01", "n02", "n03"]),
    ("n[08-10]", ["n08", "n09", "n10"]),
    ("n[0,2-3]", ["n0", "n2", "n3"]),
    ("n[0-10/5]", ["n0", "n5", "n10"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("a, b ,a", ["a", "b"]),
    ("rack[1]-x", ["rack1-x"]),
    ("", []),
])
def test_expand(pattern: str, names: list[str]) -> None:
    assert expand(pattern) == names


@pytest.mark.parametrize(("names", "folded"), [
    (["controller-0", "controller-1", "controller-2"], "controller-[0-2]"),
    (["worker-1", "controller-2", "controller-0"], "controller-[0,2],worker-1"),
    (["n10", "n2", "n1"], "n[1-2,10]"),
    ([f"n{i:02d}" for i in range(1, 11)], "n[01-10]"),
    (["x", "n1"], "n1,x"),
    (["r1n1", "r1n2", "r2n1"], "r1n[1-2],r2n1"),
    ([], ""),
])
def test_fold(names: list[str], folded: str) -> None:
    assert fold(names) == folded


def test_fold_matches_clustershell_sets() -> None:
    if NodeSet is None:
        pytest.skip("ClusterShell is not installed (add it to the [test] extra)")
    names = ["controller-0", "controller-1", "controller-2", "worker-0", "worker-2", "n01",
             "n02", "n10", "n5"]
    assert set(expand(fold(names))) == set(NodeSet.fromlist(names))
    assert set(expand(str(NodeSet.fromlist(names)))) == set(names)


def test_natural_key_orders_numbers() -> None:
    assert sorted(["n10", "n9", "m1"], key=natural_key) == ["m1", "n9", "n10"]


@pytest.mark.parametrize(("pattern", "problem"), [
    ("controller-[0-2", 'has an unclosed "["'),
    ("controller-0]", 'has a "]" without a matching "["'),
    ("n[2-1]", 'has the range "2-1" running backwards'),
    ("n[a-b]", 'has "a-b" inside brackets'),
    ("n[[1]]", "nests brackets"),
    ("n[0-9999999]", "expands to more than"),
    ("n[01-002]", "pads the range"),
    ("a b", "contains white space"),
])
def test_malformed_patterns(pattern: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        expand(pattern)
    assert f'host set "{pattern}" {problem}' in str(caught.value)
    assert "controller-[0-2],worker-1" in str(caught.value)


def test_select_everything_by_default_in_inventory_order() -> None:
    assert select(GROUPS, None) == GROUPS["controllers"] + GROUPS["workers"]
    assert select(GROUPS, []) == GROUPS["controllers"] + GROUPS["workers"]


@pytest.mark.parametrize(("include", "exclude", "selected"), [
    (["@controllers"], None, ["controller-0", "controller-1", "controller-2"]),
    (["worker-[0-1]", "controller-2"], None, ["controller-2", "worker-0", "worker-1"]),
    (["@all"], ["@workers", "controller-1"], ["controller-0", "controller-2"]),
    (None, ["controller-[0-2]"], ["worker-0", "worker-1", "worker-2"]),
    (["@workers,controller-0"], None, ["controller-0", "worker-0", "worker-1", "worker-2"]),
])
def test_select(include: list[str] | None, exclude: list[str] | None,
                selected: list[str]) -> None:
    assert select(GROUPS, include, exclude) == selected


def test_select_unknown_host_names_it_and_lists_valid_ones() -> None:
    with pytest.raises(UserError) as caught:
        select(GROUPS, ["controller-[0-4]"])
    message = str(caught.value)
    assert 'unknown hosts controller-[3-4] in -w "controller-[0-4]"' in message
    assert "controller-[0-2],worker-[0-2]" in message
    assert "@controllers, @workers, @all" in message


def test_select_unknown_exclude_and_typo_suggestion() -> None:
    with pytest.raises(UserError, match=r'unknown host contoller-1 in -x "contoller-1" '
                                         r"\(did you mean controller-1\?\)"):
        select(GROUPS, None, ["contoller-1"])


def test_select_unknown_group() -> None:
    with pytest.raises(UserError, match=r'unknown group "@controller" in -w '
                                        r"\(did you mean @controllers\?\)"):
        select(GROUPS, ["@controller"])


def test_select_accepts_an_inventory_like_object() -> None:
    class Source:
        def groups(self) -> dict[str, list[str]]:
            return {"controllers": ["c-0"], "workers": ["w-0"], "all": ["c-0", "w-0"]}

    assert select(Source(), ["@workers"]) == ["w-0"]


# -- properties -------------------------------------------------------------------------

_prefixes = st.sampled_from(["n", "node-", "controller-", "rack1-n", "w", "x-"])
_suffixes = st.sampled_from(["", "-a", ".lab"])
_numbers = st.tuples(st.integers(0, 300), st.sampled_from([0, 0, 2, 3])).map(
    lambda pair: str(pair[0]).zfill(pair[1]))
_names = st.one_of(
    st.builds(lambda p, n, s: p + n + s, _prefixes, _numbers, _suffixes),
    st.sampled_from(["alpha", "beta", "hypervisor"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_names, max_size=40))
def test_fold_then_expand_gives_the_same_names(names: list[str]) -> None:
    folded = fold(names)
    assert set(expand(folded)) == set(names)
    assert len(expand(folded)) == len(set(names))
    assert fold(expand(folded)) == folded


_ranges = st.tuples(st.integers(0, 60), st.integers(0, 20), st.sampled_from([0, 2, 3])).map(
    lambda t: f"{str(t[0]).zfill(t[2])}-{str(t[0] + t[1]).zfill(t[2])}" if t[2] == 0
    or len(str(t[0] + t[1])) <= t[2] else str(t[0]))
_patterns = st.builds(lambda p, body, s: f"{p}[{','.join(body)}]{s}", _prefixes,
                      st.lists(_ranges, min_size=1, max_size=4), _suffixes)


@settings(max_examples=300, deadline=None)
@given(st.lists(_patterns, min_size=1, max_size=3))
def test_expand_then_fold_covers_the_same_set(patterns: list[str]) -> None:
    pattern = ",".join(patterns)
    names = expand(pattern)
    assert set(expand(fold(names))) == set(names)
    if NodeSet is not None:  # the same meaning as ClusterShell's
        assert set(names) == set(NodeSet(pattern))
