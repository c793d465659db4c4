"""The Redis key layout, pinned to exact strings, and its cluster-slot guarantees."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from gateway.featurestore import keys


def test_keys_are_exact_strings() -> None:
    assert keys.alias_key("ctr", "user") == "gw:ctr:user:live"
    assert keys.seq_key("ctr", "user") == "gw:ctr:user:seq"
    assert keys.snapshots_key("ctr", "item") == "gw:ctr:item:snapshots"
    assert keys.meta_key("ctr", "user", 3) == "gw:ctr:user:3:meta"
    assert keys.snapshot_prefix("ctr", "user", 3) == "gw:ctr:user:3:"
    assert keys.hash_tag("user", "U000042") == "{user:U000042}"
    assert (
        keys.data_key("ctr", "user", 3, "user_profile", "U000042")
        == "gw:ctr:user:3:user_profile:{user:U000042}"
    )
    assert (
        keys.data_key("ctr", "item", 12, "item_embedding", "I7") == "gw:ctr:item:12:item_embedding:{item:I7}"
    )


def test_ids_are_used_verbatim_inside_the_tag() -> None:
    assert keys.data_key("m", "user", 1, "v", "a:b c") == "gw:m:user:1:v:{user:a:b c}"


def test_one_entity_lands_on_one_slot_across_views_and_snapshots() -> None:
    slots = {
        key_slot(keys.data_key("ctr", "item", snap, view, "I00042").encode())
        for snap in (1, 2, 99)
        for view in ("item_attrs", "item_embedding")
    }
    assert slots == {key_slot(b"item:I00042")}


def test_different_entities_spread_over_slots() -> None:
    slots = {
        key_slot(keys.data_key("ctr", "user", 1, "user_profile", f"U{i:06d}").encode()) for i in range(200)
    }
    assert len(slots) > 150


def test_snapshot_prefix_does_not_match_a_longer_snapshot_id() -> None:
    assert not keys.data_key("m", "e", 30, "v", "x").startswith(keys.snapshot_prefix("m", "e", 3))
    assert keys.meta_key("m", "e", 3).startswith(keys.snapshot_prefix("m", "e", 3))


@pytest.mark.parametrize("bad", ["User", "a:b", "", "x{y}", "a" * 65])
def test_names_are_restricted(bad: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        keys.check_name("entity", bad)


def test_data_keys_match_data_key_one_by_one() -> None:
    ids = ["U1", "i{weird}", "", "42"]
    assert keys.data_keys("ctr", "user", 7, "profile", ids) == [
        keys.data_key("ctr", "user", 7, "profile", i) for i in ids
    ]
