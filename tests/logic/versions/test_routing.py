"""Routing: which version answers, as a pure function of the versions held, the labels and the spec."""

from __future__ import annotations

import pytest

from gateway.errors import UnknownVersion, VersionUnavailable
from gateway.logic.versions.routing import BASIS_POINTS, bucket, build
from gateway.spec import VersionsSpec


def spec(**kw: object) -> VersionsSpec:
    return VersionsSpec.model_validate(kw)


def test_auto_promotion_takes_the_newest_and_stable_pins_it() -> None:
    r = build("m", spec(), {1, 2}, {1, 2, 3}, {})
    assert r.pick(None, None, "u") == (2, None)
    pinned = build("m", spec(), {1, 2}, {1, 2}, {"stable": 1})
    assert pinned.pick(None, None, "u") == (1, None)
    # A stable label on a version not available (yet) does not stop traffic: the newest answers.
    assert build("m", spec(), {1, 2}, {1, 2, 3}, {"stable": 3}).default == 2


def test_manual_promotion_waits_for_the_stable_label() -> None:
    manual = spec(promotion="manual")
    assert build("m", manual, {1, 2}, {1, 2}, {}).default == 1
    assert build("m", manual, {1, 2}, {1, 2}, {"stable": 2}).default == 2


def test_pinned_versions_and_labels() -> None:
    r = build("m", spec(), {1, 2}, {1, 2, 3}, {"canary": 2, "old": 9})
    assert r.pick(1, None, None) == (1, None)
    assert r.pick(None, "canary", None) == (2, "canary")
    with pytest.raises(VersionUnavailable, match="version 3 of model m is not available yet"):
        r.pick(3, None, None)  # held (loading): retry later
    with pytest.raises(UnknownVersion, match="version 7 is not served"):
        r.pick(7, None, None)
    with pytest.raises(UnknownVersion, match="label 'nope' is not served"):
        r.pick(None, "nope", None)
    with pytest.raises(UnknownVersion, match="label 'old'"):
        r.pick(None, "old", None)  # names a version this service does not hold


def test_no_version_available_says_why() -> None:
    r = build("m", spec(), set(), {1}, {}, waiting="version 1: waiting for the graph")
    with pytest.raises(
        VersionUnavailable, match=r"no version available yet \(version 1: waiting for the graph\)"
    ):
        r.pick(None, None, "u")


def test_canary_share_and_stickiness() -> None:
    r = build("m", spec(canary={"percent": 10}), {1, 2}, {1, 2}, {"stable": 1, "canary": 2})
    picks = [r.pick(None, None, f"user{i}")[0] for i in range(20000)]
    assert abs(picks.count(2) / len(picks) - 0.10) < 0.015
    assert all(r.pick(None, None, f"user{i}")[0] == picks[i] for i in range(0, 20000, 97))
    assert r.pick(None, None, None) == (1, None)  # no entity: the default
    # The canary label on the default version, or on one not available: no split.
    assert build("m", spec(canary={"percent": 50}), {1, 2}, {1, 2}, {"canary": 2}).canary is None
    assert build("m", spec(canary={"percent": 50}), {1}, {1, 2}, {"canary": 2}).canary is None


def test_buckets_are_stable_and_spread() -> None:
    assert bucket("U000042") == bucket("U000042")
    values = [bucket(f"u{i}") for i in range(10000)]
    assert min(values) >= 0 and max(values) < BASIS_POINTS
    assert abs(sum(v < 5000 for v in values) / 10000 - 0.5) < 0.03


def test_spec_policies() -> None:
    assert spec().aspired([1, 2, 3]) == [3]
    assert spec(policy={"latest": 2}).aspired([1, 2, 3]) == [2, 3]
    assert spec(policy={"specific": [1, 3]}).aspired([1, 2, 3]) == [1, 3]
    assert spec(policy="all").aspired([1, 2, 3]) == [1, 2, 3]
    assert spec(policy={"latest": 2}).graph_policy().latest == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="'stable' names the default version"):
        spec(canary={"percent": 5, "label": "stable"})
