"""Where the tests find the repository and TF-Serving's own test data (processes: ``gateway.procs``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.procs import Proc, free_port, http_ok, logic_command, wait_for

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


def start_logic(
    model: str,
    root: Path,
    redis_url: str,
    log: Path,
    graph_port: int | None = None,
    ready_s: float = 120,
    **env: str,
) -> tuple[Proc, str]:
    """A logic service under gunicorn on a free port, once ``/ready`` answers 200 (at once when
    ``ready_s`` is 0); (process, base URL).

    ``env`` adds or overrides ``GATEWAY_*`` variables (two workers, no access log by default).
    """
    port = free_port()
    full = {
        "GATEWAY_MODEL": model,
        "GATEWAY_MODELS_ROOT": str(root),
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_BIND": f"127.0.0.1:{port}",
        "GATEWAY_WORKERS": "2",
        "GATEWAY_ACCESS_LOG": "false",
        **({"GATEWAY_GRAPH_TARGETS": json.dumps([f"127.0.0.1:{graph_port}"])} if graph_port else {}),
        **env,
    }
    proc = Proc(logic_command(), log, env=full, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    if ready_s > 0:
        wait_for(http_ok(f"{url}/ready"), ready_s, f"logic service {model}", proc)
    return proc, url
