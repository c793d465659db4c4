"""README's "Bring your own model", run as written: trained here, exported, served, equal to offline.

The three blocks the README marks (the training script, the spec, the commands) are taken from
the README itself. They run in a scratch checkout whose ports are free ones (the README's 8003,
8520 and 8521, and Redis's, replaced), with the local stack's Redis already up, as "with the
local stack running (make up)" says. The curl line is sent with requests; its answer must be
the offline model's (the pickle and the SavedModel, in this process) within 1e-5.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yaml

from gateway.procs import free_port
from tests.support import REPO
from tests.walkthrough import readme_blocks

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.tensorflow]

README_PORTS = ("8003", "8520", "8521")


def run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line)
    if words[0] == "python":
        words[0] = sys.executable
    elif words[0] == "gateway":
        words = [sys.executable, "-m", "gateway.cli", *words[1:]]
    return subprocess.run(
        words,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def offline_score(handover: Path, record: dict[str, object]) -> float:
    import tensorflow as tf

    spec = yaml.safe_load(readme_blocks()["models/churn/model.yaml"])
    account = pd.read_parquet(handover / "customer.parquet").set_index("id").loc[str(record["customer_id"])]
    row = {**record, **account.to_dict()}
    frame = pd.DataFrame([row])[spec["transformer"]["columns"]]
    with open(handover / "transformer.pkl", "rb") as f:
        x = np.asarray(pickle.load(f).transform(frame), dtype=np.float32)
    serve = tf.saved_model.load(str(handover / "saved_model")).signatures["serving_default"]
    return float(serve(features=tf.constant(x))["output_0"].numpy().reshape(-1)[0])


def test_the_readme_walkthrough_serves_the_offline_answer(tmp_path: Path) -> None:
    blocks = readme_blocks()
    ports = {old: str(free_port()) for old in README_PORTS}
    checkout = tmp_path / "checkout"
    settings = yaml.safe_load((REPO / "deploy" / "settings.yaml").read_text())
    settings["redis"]["port"] = free_port()
    (checkout / "deploy").mkdir(parents=True)
    (checkout / "deploy" / "settings.yaml").write_text(yaml.safe_dump(settings))
    (checkout / "models").mkdir()
    # "With the local stack running": its Redis, before churn joins it.
    assert run("gateway render", checkout).returncode == 0
    up = run("gateway stack up", checkout)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        (checkout / "fit_churn.py").write_text(blocks["fit_churn.py"])
        spec = blocks["models/churn/model.yaml"]
        for old, new in ports.items():
            spec = spec.replace(old, new)
        (checkout / "models" / "churn").mkdir()
        (checkout / "models" / "churn" / "model.yaml").write_text(spec)
        answer = None
        for line in blocks["commands"].splitlines():
            if line.startswith("curl "):
                body = json.loads(re.search(r"-d '([^']*)'", line)[1])  # type: ignore[index]
                url = line.rsplit(" ", 1)[1]
                for old, new in ports.items():
                    url = url.replace(old, new)
                answer = requests.post(url, json=body, timeout=10)
                continue
            done = run(line, checkout)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            if line.startswith("gateway "):  # its output is ours: no traceback, no TensorFlow noise
                assert "Traceback" not in done.stderr and "0000 00:00" not in done.stderr, done.stderr
        assert answer is not None and answer.status_code == 200, answer and answer.text
        out = answer.json()
        assert out["code"] == 200 and not out.get("degraded"), out
        assert out["model"] == {"name": "churn", "version": 1}
        record = body["data"][0]
        online = out["data"][0]["churn_probability"]
        assert abs(online - offline_score(checkout / "handover", record)) <= 1e-5
    finally:
        down = run("gateway stack down", checkout)
    assert down.returncode == 0, down.stderr
