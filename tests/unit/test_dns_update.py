"""Changes, the conditional update message and the explanations."""

from __future__ import annotations

import dns.rdataclass
import pytest

from tui.core.dns.drift import Drift, DriftKind, RRset, compare
from tui.core.dns.update import (
    ChangeAction,
    UpdateStatus,
    build_update,
    changes_for,
    explain,
    render_update,
)

Z = "cluster.test."


def rr(name: str, *values: str, ttl: int = 300) -> RRset:
    return RRset(f"{name}.{Z}", "A", ttl, tuple(sorted(values)))


def drifts() -> tuple[Drift, ...]:
    wanted = {(f"{n}.{Z}", "A"): rr(n, v) for n, v in
              (("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3"))}
    served = {(f"a.{Z}", "A"): rr("a", "10.0.0.9"), (f"c.{Z}", "A"): rr("c", "10.0.0.3", ttl=60)}
    extra = [rr("x", "10.0.0.7"), RRset(Z, "NS", 300, (f"ns.{Z}",)), rr("ns", "127.0.0.1")]
    return compare(wanted, served, zone_rrsets=extra, ignore=[f"ns.{Z}"])


def test_compare_kinds() -> None:
    kinds = [(d.name.split(".")[0], d.kind) for d in drifts()]
    assert kinds == [("a", DriftKind.WRONG_VALUE), ("b", DriftKind.MISSING),
                     ("c", DriftKind.WRONG_TTL), ("x", DriftKind.EXTRA)]


def test_changes_and_prerequisites() -> None:
    changes = changes_for(drifts())
    assert [c.action for c in changes] == [ChangeAction.REPLACE, ChangeAction.ADD,
                                           ChangeAction.REPLACE]
    with_extras = changes_for(drifts(), delete_extras=True)
    assert with_extras[-1].action is ChangeAction.DELETE
    message = build_update(Z, with_extras)
    prereqs = {(r.name.to_text(), r.deleting or r.rdclass, tuple(r)) for r in
               message.prerequisite}
    assert (f"b.{Z}", dns.rdataclass.NONE, ()) in prereqs       # must not exist
    values = {p[0]: [x.to_text() for x in p[2]] for p in prereqs}
    assert values[f"a.{Z}"] == ["10.0.0.9"]                      # exactly as read
    text = render_update(message)
    assert text.splitlines()[0] == f"zone {Z}" and text.splitlines()[-1] == "send"
    assert f"prereq nxrrset b.{Z} A" in text
    assert f"prereq yxrrset x.{Z} IN A 10.0.0.7" in text
    assert f"update delete x.{Z} A" in text
    assert f"update add c.{Z} 300 A 10.0.0.3" in text


@pytest.mark.parametrize("status", list(UpdateStatus))
def test_every_status_has_a_sentence(status: UpdateStatus) -> None:
    text = explain(status, zone=Z, server="10.10.0.2:53", key="hardway-key", offset=-420)
    assert text.endswith((".", ")"))
    assert len(text) > 40


def test_badtime_names_the_offset_and_refusals_say_nothing_changed() -> None:
    text = explain(UpdateStatus.BADTIME, zone=Z, server="s", key="k", offset=-420)
    assert "420 s behind this machine's" in text and "300 s" in text
    for status in (UpdateStatus.BADSIG, UpdateStatus.BADKEY, UpdateStatus.YXRRSET,
                   UpdateStatus.NXRRSET):
        assert "Nothing was changed" in explain(status, zone=Z, server="s", key="k")
    assert "update-policy" in explain(UpdateStatus.REFUSED, zone=Z, server="s", key="k")
    assert "zonefile" in explain(UpdateStatus.NOTIMP, zone=Z, server="s", key="k")
