"""The README's "Bring your own model" walk-through, as files: what the tests run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

MARK = re.compile(r"<!-- walkthrough: (?P<name>\S+) -->\n```\w*\n(?P<body>.*?)\n```", re.S)


def readme_blocks() -> dict[str, str]:
    """``fit_churn.py``, ``models/churn/model.yaml`` and ``commands``, as the README shows them."""
    blocks = {m["name"]: m["body"] + "\n" for m in MARK.finditer((REPO / "README.md").read_text())}
    assert set(blocks) == {"fit_churn.py", "models/churn/model.yaml", "commands"}, sorted(blocks)
    return blocks


def fit_churn(workdir: Path) -> Path:
    """Run the README's training script in ``workdir``; the hand-over directory it writes."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "fit_churn.py").write_text(readme_blocks()["fit_churn.py"])
    done = subprocess.run(
        [sys.executable, "fit_churn.py"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "handover"


def churn_root(root: Path, **changes: object) -> Path:
    """A models root holding the README's churn spec (top-level keys replaced by ``changes``)."""
    import yaml

    spec = yaml.safe_load(readme_blocks()["models/churn/model.yaml"])
    spec.update(changes)
    name = str(spec["name"])
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "model.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root
