"""Fit code for ``risk``: probability that a loan application defaults.

Synthetic but structured credit data: a customer profile lives in Redis (age,
income, region, credit history, open accounts, recent delinquencies) and each
application arrives in the request (amount, term, purpose, employment years).
The default probability follows a known logistic law, so a model that learns it
beats chance by a clear margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from gateway.saver.recipe import LABEL, Dataset

N_CUSTOMERS = 5000
N_APPLICATIONS = 30000
REGIONS = ["north", "south", "east", "west", "central"]
PURPOSES = ["car", "home", "education", "business", "personal"]
TERMS = [12, 24, 36, 48, 60]

NUMERIC = [
    "age",
    "credit_history_years",
    "num_open_accounts",
    "delinquencies_2y",
    "term_months",
    "employment_years",
]
SKEWED = ["income", "loan_amount"]
CATEGORICAL = ["purpose", "region"]

TRAINING: dict[str, Any] = {"epochs": 8, "batch_size": 256, "learning_rate": 0.003}


def customer_id(i: int) -> str:
    return f"C{i:06d}"


def make_customers(rng: np.random.Generator) -> pd.DataFrame:
    age = rng.integers(21, 71, N_CUSTOMERS)
    history = np.minimum(age - 18, rng.gamma(2.0, 4.0, N_CUSTOMERS)).round(1)
    return pd.DataFrame(
        {
            "id": [customer_id(i) for i in range(N_CUSTOMERS)],
            "age": age.astype(float),
            "income": rng.lognormal(np.log(52000), 0.45, N_CUSTOMERS).round(0),
            "region": rng.choice(REGIONS, N_CUSTOMERS, p=[0.25, 0.2, 0.2, 0.2, 0.15]),
            "credit_history_years": history,
            "num_open_accounts": rng.poisson(4, N_CUSTOMERS).astype(float),
            "delinquencies_2y": rng.poisson(0.35, N_CUSTOMERS).astype(float),
        }
    )


def default_probability(df: pd.DataFrame) -> np.ndarray[Any, Any]:
    """The ground-truth law the network has to learn."""
    debt_ratio = df["loan_amount"] / df["income"]
    purpose_risk = df["purpose"].map(
        {"car": 0.0, "home": -0.4, "education": 0.2, "business": 0.6, "personal": 0.4}
    )
    region_risk = df["region"].map({"north": -0.1, "south": 0.25, "east": 0.0, "west": -0.2, "central": 0.1})
    z = (
        -2.3
        + 2.2 * debt_ratio
        + 0.55 * df["delinquencies_2y"]
        - 0.05 * df["credit_history_years"]
        + 0.012 * (df["term_months"] - 36)
        - 0.06 * df["employment_years"]
        + 0.015 * (df["age"] - 45) ** 2 / 10
        + 0.08 * df["num_open_accounts"]
        + purpose_risk
        + region_risk
    )
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def make_dataset(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    customers = make_customers(rng)
    idx = rng.integers(0, N_CUSTOMERS, N_APPLICATIONS)
    apps = customers.iloc[idx].reset_index(drop=True).rename(columns={"id": "customer_id"})
    apps["loan_amount"] = rng.lognormal(np.log(15000), 0.7, N_APPLICATIONS).round(0)
    apps["term_months"] = rng.choice(TERMS, N_APPLICATIONS).astype(float)
    apps["purpose"] = rng.choice(PURPOSES, N_APPLICATIONS)
    apps["employment_years"] = np.minimum(apps["age"] - 18, rng.exponential(6.0, N_APPLICATIONS)).round(1)
    apps[LABEL] = (rng.random(N_APPLICATIONS) < default_probability(apps)).astype(np.float32)
    return Dataset(frame=apps, entities={"customer": customers})


def fit_transformer(frame: pd.DataFrame) -> ColumnTransformer:
    skewed = Pipeline([("log1p", FunctionTransformer(np.log1p)), ("scale", StandardScaler())])
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("skewed", skewed, SKEWED),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ],
        remainder="drop",
    )
    return ct.fit(frame)


def build_network(input_dims: dict[str, int]) -> Any:
    import keras

    inp = keras.Input(shape=(input_dims["features"],), name="features")
    h = keras.layers.Dense(32, activation="relu")(inp)
    h = keras.layers.Dense(16, activation="relu")(h)
    out = keras.layers.Dense(1, activation="sigmoid", name="probability")(h)
    return keras.Model(inp, out, name="risk")


def build_estimator() -> Any:
    """The in-process alternative (``risk_lr``): a logistic regression on the same features."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000)
