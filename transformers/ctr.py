"""Fit code for ``ctr``: click probability of items shown to a user (a ranking model).

A synthetic world driven by latent factors, so the network has something real
to learn. Every user has a hidden taste vector and every item a hidden style
vector; the chance of a click grows with their agreement, plus item popularity,
user activity and the request context (hour of day, device). Nothing latent is
served directly:

* user profile (Redis hash): age, activity, tenure and the user's click history
  spread over item categories, which reflects the hidden taste through noise;
* item attributes (Redis hash): category, price, popularity, age;
* item embedding (Redis string, 32 packed float32): a noisy linear image of the
  item's style vector, standing in for embeddings pre-trained elsewhere;
* context (request): hour and device.

The network is a light two-part model: a user tower over the transformed
features matched (dot product) against a projection of the pre-trained item
embedding, plus a small dense part over everything for biases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from gateway.saver.recipe import LABEL, Dataset
from gateway.transformer.classes import CyclicalEncoder

LATENT = 8
EMBEDDING_DIM = 32
N_CATEGORIES = 12
N_USERS = 20000
N_ITEMS = 2000
N_IMPRESSIONS = 120000
DEVICES = ["mobile", "desktop", "tablet"]
DEVICE_EFFECT = {"mobile": 0.0, "desktop": 0.25, "tablet": -0.2}

SHARES = [f"cat_share_{c}" for c in range(N_CATEGORIES)]
USER_NUMERIC = ["age", "sessions_30d", "tenure_days", *SHARES]
ITEM_NUMERIC = ["popularity", "item_age_days"]
SKEWED = ["price"]
CATEGORICAL = ["segment", "category", "device"]
CYCLICAL = ["hour"]

TRAINING: dict[str, Any] = {"epochs": 6, "batch_size": 512, "learning_rate": 0.004}


def user_id(i: int) -> str:
    return f"U{i:06d}"


def item_id(i: int) -> str:
    return f"I{i:05d}"


class World:
    """The hidden structure: shared by users, items and clicks of one seed."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 0])
        # How taste maps onto the category space (users' history, items' categories).
        self.category_map = rng.normal(0.0, 1.0, (N_CATEGORIES, LATENT)) / np.sqrt(LATENT) * 2.0
        # How the embedding was "pre-trained": a random linear image of the style vector.
        self.embedding_map = rng.normal(0.0, 1.0, (EMBEDDING_DIM, LATENT)) / np.sqrt(LATENT)


def _softmax(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def make_users(world: World, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """User profiles (what Redis holds) and their hidden tastes."""
    rng = np.random.default_rng([seed, 1])
    taste = rng.normal(0.0, 1.0, (n, LATENT))
    history = _softmax(taste @ world.category_map.T + rng.normal(0.0, 0.35, (n, N_CATEGORIES)))
    frame = pd.DataFrame(
        {
            "id": [user_id(i) for i in range(n)],
            "age": rng.integers(18, 75, n).astype(float),
            "sessions_30d": rng.gamma(2.0, 6.0, n).round(0),
            "tenure_days": rng.exponential(400.0, n).round(0),
            "segment": [f"seg_{c}" for c in history.argmax(axis=1)],
        }
    )
    for c, name in enumerate(SHARES):
        frame[name] = history[:, c].round(4)
    return frame, taste


def make_items(world: World, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """Item attributes and pre-trained embeddings (what Redis holds), plus hidden styles and biases."""
    rng = np.random.default_rng([seed, 2])
    style = rng.normal(0.0, 1.0, (n, LATENT))
    bias = rng.normal(0.0, 0.6, n)
    category = (style @ world.category_map.T + rng.normal(0.0, 0.5, (n, N_CATEGORIES))).argmax(axis=1)
    emb = style @ world.embedding_map.T + rng.normal(0.0, 0.25, (n, EMBEDDING_DIM))
    frame = pd.DataFrame(
        {
            "id": [item_id(i) for i in range(n)],
            "category": [f"cat_{c}" for c in category],
            "price": rng.lognormal(np.log(30.0), 0.8, n).round(2),
            "popularity": (bias + rng.normal(0.0, 0.25, n)).round(4),
            "item_age_days": rng.exponential(120.0, n).round(0),
        }
    )
    frame["item_embedding"] = list(emb.astype(np.float32))
    hidden = np.column_stack([style, bias])
    return frame, hidden


def click_logit(
    taste: np.ndarray[Any, Any],
    hidden_items: np.ndarray[Any, Any],
    users: pd.DataFrame,
    items: pd.DataFrame,
    hour: np.ndarray[Any, Any],
    device: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """The ground-truth law, for rows already aligned (one user and one item per row)."""
    style, bias = hidden_items[:, :LATENT], hidden_items[:, LATENT]
    affinity = np.sum(taste * style, axis=1) / np.sqrt(LATENT)
    activity = np.log1p(users["sessions_30d"].to_numpy()) - 2.0
    evening = np.cos(2.0 * np.pi * (hour - 20.0) / 24.0)
    dev = np.asarray([DEVICE_EFFECT[d] for d in device])
    price = np.log(items["price"].to_numpy()) - np.log(30.0)
    return np.asarray(-1.6 + 1.6 * affinity + bias + 0.3 * activity + 0.35 * evening + dev - 0.3 * price)


def make_dataset(seed: int) -> Dataset:
    world = World(seed)
    users, taste = make_users(world, N_USERS, seed)
    items, hidden = make_items(world, N_ITEMS, seed)
    rng = np.random.default_rng([seed, 3])
    popular = _softmax((hidden[:, LATENT] * 0.8)[None, :])[0]
    u = rng.integers(0, N_USERS, N_IMPRESSIONS)
    i = rng.choice(N_ITEMS, N_IMPRESSIONS, p=popular)
    hour = rng.choice(24, N_IMPRESSIONS, p=_hour_weights())
    device = rng.choice(DEVICES, N_IMPRESSIONS, p=[0.6, 0.3, 0.1])
    u_rows = users.iloc[u].reset_index(drop=True)
    i_rows = items.iloc[i].reset_index(drop=True)
    logit = click_logit(taste[u], hidden[i], u_rows, i_rows, hour, device)
    frame = pd.concat(
        [
            u_rows.rename(columns={"id": "uid"}),
            i_rows.drop(columns=["item_embedding"]).rename(columns={"id": "item_id"}),
        ],
        axis=1,
    )
    frame["hour"] = hour
    frame["device"] = device
    frame[LABEL] = (rng.random(N_IMPRESSIONS) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    vectors = {"item_embedding": np.stack(i_rows["item_embedding"].to_numpy()).astype(np.float32)}
    items["ctr_score"] = item_click_rates(i, frame[LABEL].to_numpy(), len(items))
    return Dataset(frame=frame, vectors=vectors, entities={"user": users, "item": items})


def item_click_rates(
    shown: np.ndarray[Any, Any], clicked: np.ndarray[Any, Any], n: int
) -> np.ndarray[Any, Any]:
    """Each item's observed click rate, shrunk towards the overall rate where it was seldom shown:
    the precomputed score the ranking falls back to when the graph cannot answer."""
    prior, weight = float(clicked.mean()), 20.0
    clicks = np.bincount(shown, weights=clicked, minlength=n)
    views = np.bincount(shown, minlength=n)
    return np.round((clicks + prior * weight) / (views + weight), 5)


def _hour_weights() -> np.ndarray[Any, Any]:
    w = 1.0 + 0.8 * np.cos(2.0 * np.pi * (np.arange(24) - 20.0) / 24.0)
    return np.asarray(w / w.sum())


def fit_transformer(frame: pd.DataFrame) -> ColumnTransformer:
    skewed = Pipeline([("log1p", FunctionTransformer(np.log1p)), ("scale", StandardScaler())])
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), USER_NUMERIC + ITEM_NUMERIC),
            ("skewed", skewed, SKEWED),
            ("cyc", CyclicalEncoder(24.0), CYCLICAL),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ],
        remainder="drop",
    )
    return ct.fit(frame)


def build_network(input_dims: dict[str, int]) -> Any:
    import keras

    features = keras.Input(shape=(input_dims["features"],), name="features")
    embedding = keras.Input(shape=(input_dims["item_embedding"],), name="item_embedding")
    user = keras.layers.Dense(32, activation="relu")(features)
    user = keras.layers.Dense(16)(user)
    item = keras.layers.Dense(16)(embedding)
    match = keras.layers.Dot(axes=1)([user, item])
    dense = keras.layers.Concatenate()([features, embedding])
    dense = keras.layers.Dense(32, activation="relu")(dense)
    logit = keras.layers.Dense(1)(keras.layers.Concatenate()([dense, match]))
    out = keras.layers.Activation("sigmoid", name="probability")(logit)
    return keras.Model([features, embedding], out, name="ctr")
