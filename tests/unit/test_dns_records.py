"""The records the inventory implies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tui.core.dns.records import (
    Record,
    RecordType,
    in_zone,
    relative,
    reverse_name,
    wanted_records,
)
from tui.core.errors import UserError
from tui.core.inventory.load import load_inventory

SEED = Path(__file__).resolve().parents[2] / "config" / "something.local.toml"


def test_seed_inventory_records() -> None:
    inventory = load_inventory(SEED)
    records = wanted_records(inventory)
    pairs = {(r.name, r.value) for r in records}
    assert ("controller-0.something.local.", "10.10.0.10") in pairs
    assert ("worker-2.something.local.", "10.10.0.22") in pairs
    assert ("kubernetes.something.local.", "10.50.0.1") in pairs
    assert ("nucklehead.something.local.", "192.168.1.2") in pairs
    assert len(records) == 3 + 3 + 1 + 1
    assert all(r.rdtype is RecordType.A and r.ttl == 300 for r in records)
    api = next(r for r in records if r.name.startswith("kubernetes."))
    assert "api.vip" in api.reason


def test_ptr_records_and_ttl() -> None:
    records = wanted_records(load_inventory(SEED), ptr=True, ttl=60)
    ptr = [r for r in records if r.rdtype is RecordType.PTR]
    assert Record("10.0.10.10.in-addr.arpa.", RecordType.PTR,
                  "controller-0.something.local.", 60) in ptr
    assert {r.ttl for r in records} == {60}


def test_api_name_outside_the_zone_is_not_managed() -> None:
    inventory = load_inventory(SEED)
    moved = dataclasses.replace(inventory, api=dataclasses.replace(
        inventory.api, hostname="api.example.org"))
    assert not any(r.name.startswith("api.") for r in wanted_records(moved))


def test_no_dns_table_is_a_user_error() -> None:
    inventory = dataclasses.replace(load_inventory(SEED), dns=None)
    with pytest.raises(UserError, match=r"has no \[dns\] table"):
        wanted_records(inventory)


def test_name_helpers() -> None:
    assert in_zone("A.Something.Local", "something.local.")
    assert not in_zone("something.localx.", "something.local")
    assert relative("kubernetes.something.local.", "something.local") == "kubernetes"
    assert relative("something.local.", "something.local") == "@"
    assert reverse_name("10.10.0.10") == "10.0.10.10.in-addr.arpa."
