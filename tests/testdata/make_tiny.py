"""Write version 1 of the tiny test model (tests/testdata/models/tiny/1): transformer, compiled file, manifest.

    python -m tests.testdata.make_tiny [ROOT]

The version is checked in, so the fast tests need no training; this program is how it
was made (and ``tests/test_tiers.py`` checks that it still makes the same files).
"""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gateway.saver import light, publish
from gateway.spec import load_spec
from gateway.transformer.verify import write_compiled

HERE = Path(__file__).resolve().parent
ROWS = pd.DataFrame(
    {
        "amount": [500.0, 1200.0, 3000.0, 7500.0, 250.0, 9000.0],
        "term": [12, 24, 36, 48, 6, 60],
        "purpose": ["car", "home", "other", "car", "home", "other"],
    }
)
WIDTH = 5  # 2 scaled numbers + 3 purposes
WEIGHTS = np.array([0.8, -0.5, 0.3, -0.2, 0.1])  # the in-process graph of tests/tiny.py (version 1)


def fitted() -> ColumnTransformer:
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), ["amount", "term"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["purpose"]),
        ]
    )
    return ct.fit(ROWS)


def make(root: Path) -> Path:
    spec = load_spec(root / "tiny" / "model.yaml")
    ct = fitted()
    staging = publish.staging_dir(root / "tiny")
    (staging / spec.transformer.file).write_bytes(pickle.dumps(ct, protocol=5))
    compiled = write_compiled(staging, spec, ct, ROWS)
    x = np.asarray(ct.transform(ROWS), dtype=np.float64)
    light_model = light.write(staging, x, x @ WEIGHTS, None)  # distils the tests' in-process "graph"
    publish.write_manifest(
        staging,
        {
            "model": "tiny",
            "backend": "tensorflow",
            "source": "test",
            "signature": "serving_default",
            "graph_inputs": {"x": [None, WIDTH]},
            "graph_output": "score",
            "transformer": {"file": spec.transformer.file, "columns": list(spec.transformer.columns)},
            "compiled_transformer": compiled,
            "light_model": light_model,
        },
    )
    shutil.rmtree(root / "tiny" / "1", ignore_errors=True)
    return publish.publish(staging, root / "tiny", 1)[1]


if __name__ == "__main__":
    print(make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "models"))
