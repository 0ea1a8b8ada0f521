"""Zone-file edits in place and the serial rules."""

from __future__ import annotations

import datetime as dt

import pytest

from tui.core.dns.drift import RRset
from tui.core.dns.update import Change, ChangeAction
from tui.core.dns.zonetext import edit_zone_text, next_serial, parse_zone
from tui.core.errors import UserError

Z = "cluster.test."
TEXT = """; kept by hand
$ORIGIN cluster.test.
$TTL 300
@   IN SOA ns hostmaster (
        {serial} ; serial
        3600 900 604800 300 )
    IN NS ns
ns           IN A 10.10.0.2
controller-0 IN A 10.10.0.10
             IN TXT "keep me"
controller-1 IN A 10.10.0.99 ; moved by hand
stray        IN A 10.10.0.77
"""


def change(action: ChangeAction, name: str, new: str | None, old: str | None) -> Change:
    full = f"{name}.{Z}"
    return Change(action, full, "A", RRset(full, "A", 300, (new,)) if new else None,
                  RRset(full, "A", 300, (old,)) if old else None)


@pytest.mark.parametrize(("old", "today", "new"), [
    (2026010101, dt.date(2026, 12, 3), 2026120300),
    (2026120305, dt.date(2026, 12, 3), 2026120306),
    (2027010100, dt.date(2026, 12, 3), 2027010101),   # a future date still grows
    (41, dt.date(2026, 12, 3), 42),
    (2**32 - 1, dt.date(2026, 12, 3), 0),
    (1234567890, dt.date(2026, 12, 3), 1234567891),   # 10 digits but not a date
])
def test_next_serial(old: int, today: dt.date, new: int) -> None:
    assert next_serial(old, today) == new


def test_edit_keeps_layout_and_inherited_owners() -> None:
    text = TEXT.format(serial=7)
    changes = [change(ChangeAction.REPLACE, "controller-0", "10.10.0.11", "10.10.0.10"),
               change(ChangeAction.REPLACE, "controller-1", "10.10.0.11", "10.10.0.99"),
               change(ChangeAction.ADD, "controller-2", "10.10.0.12", None),
               change(ChangeAction.DELETE, "stray", None, "10.10.0.77")]
    new, old_serial, new_serial = edit_zone_text(text, Z, changes, today=dt.date(2026, 1, 1))
    assert (old_serial, new_serial) == (7, 8)
    assert new.startswith("; kept by hand\n$ORIGIN cluster.test.\n")
    assert '\ncontroller-0.cluster.test.             IN TXT "keep me"\n' in new
    assert "stray" not in new and "10.10.0.99" not in new
    zone = parse_zone(new, Z)
    assert zone.get_rdataset(f"controller-0.{Z}", "TXT") is not None
    assert [r.to_text() for r in zone.get_rdataset(f"controller-2.{Z}", "A")] == ["10.10.0.12"]
    assert zone.get_rdataset(Z, "SOA")[0].serial == 8


def test_a_file_edited_since_the_plan_is_refused() -> None:
    stale = [change(ChangeAction.REPLACE, "controller-1", "10.10.0.11", "10.10.0.50")]
    with pytest.raises(UserError, match="edited meanwhile"):
        edit_zone_text(TEXT.format(serial=7), Z, stale)


def test_unparsable_file_and_missing_serial() -> None:
    with pytest.raises(UserError, match="does not parse"):
        edit_zone_text("$ORIGIN cluster.test.\nfoo IN A not-an-address\n", Z, [])
