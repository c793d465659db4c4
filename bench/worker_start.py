"""A logic worker's start: memory and time with the compiled files vs the pickles.

Each sample is a fresh Python process that does what a gunicorn worker does before its
first request: import ``gateway.logic.web.app`` and build the app for a model (risk unless
``--model`` says otherwise), which loads the version's transformer. Two versions of the same published directory are
measured, alternating, so machine noise hits both alike:

* ``artifact``  the version as published: ``transformer.compiled.npz`` is loaded with
                numpy alone (no unpickling, no scikit-learn, pandas or scipy);
* ``pickle``    the same version as published before compiled files existed (the files
                and their manifest records removed): ``transformer.pkl`` is unpickled, which
                imports scikit-learn and pandas, and compiled at load; for ``backend:
                sklearn`` (``--model risk_lr``) the estimator pickle is unpickled too, instead
                of its ``estimator.compiled.npz``.

Redis and the graph are not contacted (clients connect lazily), so the numbers are the
worker's own. Printed per path: median seconds for the import, the app build and the
whole process (spawn to exit), and the median resident set size after the build (VmRSS)
and its peak (VmHWM), with the ratio artifact / pickle. The targets: RSS <= 150 MB and
ready in <= 2 s.

    python -m bench.worker_start [--runs 7] [--model ctr | --version-dir models/risk/1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench import REPO

HEAVY = ("sklearn", "pandas", "scipy")

# The worker: timings from inside, memory from /proc, and which heavy libraries got imported.
CHILD = """
import json, sys, time
t0 = time.perf_counter()
import gateway.logic.web.app
t1 = time.perf_counter()
from pathlib import Path
from gateway.settings import Settings
settings = Settings(model=sys.argv[4], models_root=Path(sys.argv[1]), version=int(sys.argv[2]),
                    redis_url="redis://127.0.0.1:9/0", graph_targets=["127.0.0.1:9"], access_log=False)
app = gateway.logic.web.app.create_app(settings)
t2 = time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mb = lambda key: int(status[key].split()[0]) / 1024
from gateway.logic.web.state import app_state
versions = app_state(app).scorer.versions
print(json.dumps({"import_s": t1 - t0, "build_s": t2 - t1, "rss_mb": mb("VmRSS"), "hwm_mb": mb("VmHWM"),
                  "source": [mv.transform.source + ("" if mv.estimator is None else "+" + type(mv.estimator).__name__)
                             for mv in (slot.mv for slot in versions.status()) if mv is not None],
                  "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[3].split(",")))}))
"""


def latest_version(model: str) -> Path:
    base = REPO / "models" / model
    versions = sorted((int(p.name), p) for p in base.glob("*") if p.name.isdigit())
    if not versions:
        raise SystemExit(f"{base}: no published version (run `make models`)")
    return versions[-1][1]


def pickle_only_copy(vdir: Path, scratch: Path) -> Path:
    """``vdir`` as a version published before compiled files: no file, no manifest record."""
    dst_model = scratch / vdir.parent.name
    dst = dst_model / vdir.name
    shutil.copytree(vdir, dst)
    shutil.copy(vdir.parent / "model.yaml", dst_model / "model.yaml")
    manifest = json.loads((dst / "manifest.json").read_text())
    record = manifest.pop("compiled_transformer", None)
    if record is None:
        raise SystemExit(f"{vdir}: has no compiled transformer; rebuild it (make models)")
    (dst / record["file"]).unlink()
    del manifest["files"][record["file"]]
    compiled = (manifest.get("estimator") or {}).pop("compiled", None)  # backend sklearn
    if compiled and compiled.get("file"):
        (dst / compiled["file"]).unlink()
        del manifest["files"][compiled["file"]]
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    spec = yaml.safe_load((vdir.parent / "model.yaml").read_text())
    if spec.get("extends"):  # the spec it builds on, beside it
        (scratch / spec["extends"]).mkdir(exist_ok=True)
        shutil.copy(
            vdir.parent.parent / spec["extends"] / "model.yaml", scratch / spec["extends"] / "model.yaml"
        )
    return scratch


def sample(root: Path, vdir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), vdir.name, ",".join(HEAVY), vdir.parent.name],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"worker failed:\n{out.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_s"] = wall
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("import_s", "build_s", "process_s", "rss_mb", "hwm_mb")
    out: dict[str, Any] = {k: statistics.median(r[k] for r in rows) for k in keys}
    out["source"] = rows[0]["source"]
    out["heavy"] = rows[0]["heavy"]
    return out


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per path")
    parser.add_argument("--model", default="risk", help="model whose latest version is measured")
    parser.add_argument("--version-dir", type=Path, default=None, help="a published version instead")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()

    vdir = (args.version_dir or latest_version(args.model)).resolve()
    with tempfile.TemporaryDirectory(prefix="worker-start-") as tmp:
        roots = {"artifact": vdir.parent.parent, "pickle": pickle_only_copy(vdir, Path(tmp))}
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in roots}
        for _ in range(args.runs):
            for name, root in roots.items():
                rows[name].append(sample(root, vdir))
    result = {name: summary(r) for name, r in rows.items()}
    print(f"{vdir.parent.name} version {vdir}; {args.runs} fresh processes per path (medians)")
    head = ("path", "import s", "build s", "process s", "RSS MB", "peak MB", "source", "heavy modules")
    print("{:<9} {:>9} {:>8} {:>10} {:>7} {:>8}  {:<9} {}".format(*head))
    for name, r in result.items():
        print(
            f"{name:<9} {r['import_s']:>9.3f} {r['build_s']:>8.3f} {r['process_s']:>10.3f} "
            f"{r['rss_mb']:>7.1f} {r['hwm_mb']:>8.1f}  {','.join(r['source']):<9} {','.join(r['heavy']) or '-'}"
        )
    a, p = result["artifact"], result["pickle"]
    print(
        f"artifact / pickle: RSS {a['rss_mb'] / p['rss_mb']:.2f}, "
        f"import + build {(a['import_s'] + a['build_s']) / (p['import_s'] + p['build_s']):.2f}, "
        f"process {a['process_s'] / p['process_s']:.2f}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
