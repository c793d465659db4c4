"""Post-processing: activations, calibration, thresholds, labels and ranking order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from gateway.logic.postprocess import PostProcessor
from gateway.spec import PostprocessSpec


def post(**kw: Any) -> PostProcessor:
    return PostProcessor(PostprocessSpec.model_validate(kw))


RAW = np.array([[-2.0], [0.0], [3.0]], dtype=np.float32)


def test_identity_flattens_one_column() -> None:
    assert post().records(RAW) == [{"score": -2.0}, {"score": 0.0}, {"score": 3.0}]


def test_sigmoid() -> None:
    got = [r["score"] for r in post(activation="sigmoid").records(RAW)]
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-np.array([-2.0, 0.0, 3.0]))), rtol=1e-12)


def test_softmax_maps_classes_to_labels() -> None:
    logits = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 0.0]])
    out = post(activation="softmax", labels=["low", "mid", "high"]).records(logits)
    assert [r["label"] for r in out] == ["mid", "low"]
    assert out[0]["score"] == pytest.approx(max(out[0]["scores"].values()))
    assert sum(out[1]["scores"].values()) == pytest.approx(1.0)


def test_platt_and_isotonic_calibration() -> None:
    platt = post(calibration={"method": "platt", "a": 2.0, "b": -1.0}).records(np.array([0.5, 1.0]))
    assert [r["score"] for r in platt] == pytest.approx([0.5, 1 / (1 + np.exp(-1.0))])
    iso = post(calibration={"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, 0.2, 1.0]})
    assert [r["score"] for r in iso.records(np.array([0.25, 0.75, 2.0]))] == pytest.approx([0.1, 0.6, 1.0])


def test_threshold_with_and_without_labels() -> None:
    scores = np.array([0.2, 0.5, 0.9])
    assert [r["label"] for r in post(threshold=0.5).records(scores)] == [0, 1, 1]
    named = post(threshold=0.5, labels=["approve", "review"]).records(scores)
    assert [r["label"] for r in named] == ["approve", "review", "review"]


def test_ranking_sorts_and_cuts() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    items = ["a", "b", "c", "d"]
    assert [r["item_id"] for r in post().ranking(scores, items, None)] == items  # unsorted unless asked
    assert [r["item_id"] for r in post(top_k=True).ranking(scores, items, None)] == ["b", "d", "c", "a"]
    assert [r["item_id"] for r in post().ranking(scores, items, 2)] == ["b", "d"]


@pytest.mark.parametrize(
    "bad",
    [
        {"calibration": {"method": "isotonic", "x": [0.0], "y": [0.0]}},
        {"calibration": {"method": "isotonic", "x": [0.0, 0.0], "y": [0.0, 1.0]}},
        {"threshold": 0.5, "labels": ["a", "b", "c"]},
        {"activation": "softmax", "calibration": {"method": "platt"}},
        {"activation": "tanh"},
    ],
)
def test_inconsistent_specs_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PostprocessSpec.model_validate(bad)
