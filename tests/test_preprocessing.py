"""Transformer building blocks that pickles reference from the installed package."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd

from gateway.artifacts import safe_unpickle
from gateway.transformer.classes import CyclicalEncoder


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
