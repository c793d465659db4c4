"""Where the tests find the repository and TF-Serving's own test data (processes: ``gateway.procs``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHOR_DIR = Path("shared") / "anchors" / "tf_serving_testdata"


def find_anchors() -> Path | None:
    """TF-Serving's own test models and configs (the fidelity reference), if this checkout has them.

    ``TF_SERVING_TESTDATA`` names the directory; otherwise ``shared/anchors/tf_serving_testdata``
    is looked for beside the repository and in its parents. They are not part of the repository.
    """
    given = os.environ.get("TF_SERVING_TESTDATA")
    candidates = [Path(given)] if given else [p / ANCHOR_DIR for p in REPO.parents]
    return next((c for c in candidates if (c / "PROVENANCE.txt").is_file()), None)


ANCHORS_FOUND = find_anchors()
ANCHORS = ANCHORS_FOUND or REPO.parent / ANCHOR_DIR
NO_ANCHORS = (
    "TF-Serving's test data not found (set TF_SERVING_TESTDATA, or place shared/anchors/"
    "tf_serving_testdata beside the repository)"
)
