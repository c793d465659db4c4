"""Transformer building blocks that pickles reference from the installed package."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from gateway.artifacts import safe_unpickle
from gateway.errors import ArtifactError
from gateway.transformer.classes import CyclicalEncoder
from tests.support import REPO


def test_hours_wrap_around_midnight() -> None:
    enc = CyclicalEncoder(24.0).fit(pd.DataFrame({"hour": [0, 6, 12]}))
    out = enc.transform(pd.DataFrame({"hour": [23, 0, 1, 12]}))
    assert out.shape == (4, 2)
    # 23:00 is as close to midnight as 01:00 is; noon is opposite midnight.
    np.testing.assert_allclose(np.linalg.norm(out[0] - out[1]), np.linalg.norm(out[2] - out[1]))
    np.testing.assert_allclose(np.linalg.norm(out[3] - out[1]), 2.0)
    np.testing.assert_allclose(out[1], [0.0, 1.0])
    assert list(enc.get_feature_names_out(["hour"])) == ["hour_sin", "hour_cos"]


def test_two_columns_give_sines_then_cosines() -> None:
    out = CyclicalEncoder(7.0).fit_transform(np.array([[0.0, 3.5]]))
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0, -1.0]], atol=1e-12)


def test_survives_the_restricted_unpickler() -> None:
    enc = CyclicalEncoder(12.0).fit(np.arange(5).reshape(-1, 1))
    back = safe_unpickle(io.BytesIO(pickle.dumps(enc)))
    assert isinstance(back, CyclicalEncoder) and back.period == 12.0
    np.testing.assert_array_equal(back.transform(np.arange(3)), enc.transform(np.arange(3)))


def test_a_pickle_made_before_the_move_still_loads() -> None:
    """Versions published before the transformer classes moved name ``gateway.preprocessing``."""
    data = (REPO / "tests/testdata/transformer_before_move.pkl").read_bytes()
    expected = json.loads((REPO / "tests/testdata/transformer_before_move.json").read_text())
    assert b"gateway.preprocessing" in data and b"gateway.transformer" not in data
    back = safe_unpickle(io.BytesIO(data))
    out = back.transform(pd.DataFrame(expected["input"]))
    np.testing.assert_array_equal(out, np.array(expected["output"]))
    assert isinstance(back.named_transformers_["hour"], CyclicalEncoder)


def test_other_gateway_modules_are_not_reachable_from_a_pickle() -> None:
    """A pickle naming a gateway callable (the process launcher, here) is refused before it runs."""
    evil = b"cgateway.procs\nfree_port\n(tR."
    with pytest.raises(ArtifactError, match=r"gateway\.procs\.free_port"):
        safe_unpickle(io.BytesIO(evil))
