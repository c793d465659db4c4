"""Writes two transformers pickled by scikit-learn 1.5.2, as a data scientist's older environment would.

``sklearn-1.5.2-scaler.pkl``: a StandardScaler over the numeric columns (it still loads under
newer scikit-learn, with a warning); ``sklearn-1.5.2-columns.pkl``: a ColumnTransformer (newer
scikit-learn cannot load it at all: a private class it references is gone).

Run under that version (not this project's), from this directory:

    python -m venv /tmp/sk152 && /tmp/sk152/bin/pip install scikit-learn==1.5.2 pandas
    /tmp/sk152/bin/python make_old_sklearn.py

The columns are the spec's of the hand-over tests (``tests/handover.py``): a transformer a data
scientist fitted in an older environment than the one exporting it.
"""

import pickle

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

assert sklearn.__version__ == "1.5.2", sklearn.__version__
rng = np.random.default_rng(7)
frame = pd.DataFrame(
    {
        "tenure_months": rng.integers(1, 72, 200).astype(float),
        "monthly_charges": rng.uniform(20, 120, 200),
        "support_calls": rng.poisson(1.5, 200).astype(float),
        "plan": rng.choice(["basic", "plus", "premium"], 200),
        "region": rng.choice(["north", "south", "east", "west"], 200),
    }
)
transformer = ColumnTransformer(
    [
        ("num", StandardScaler(), ["tenure_months", "monthly_charges", "support_calls"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan", "region"]),
    ]
).fit(frame)
with open("sklearn-1.5.2-columns.pkl", "wb") as f:
    pickle.dump(transformer, f)
numeric = ["tenure_months", "monthly_charges", "support_calls"]
with open("sklearn-1.5.2-scaler.pkl", "wb") as f:
    pickle.dump(StandardScaler().fit(frame[numeric]), f)
print("wrote sklearn-1.5.2-columns.pkl and sklearn-1.5.2-scaler.pkl")
