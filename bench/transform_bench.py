"""Microseconds per transform call: compiled numpy path vs pandas + scikit-learn, same run.

The risk model's transformer (fitted by its recipe, or loaded from a published version
with ``--version-dir`` as a worker loads it) is applied to request columns built the way the service builds
them (floats, an int request field, strings), at 1, 10 and 100 rows. Rounds of the two
paths alternate so machine noise hits both alike; the table shows the median and the
best round per call, and the ratio of medians.

    PYTHONPATH=. python bench/transform_bench.py [--rounds 15] [--version-dir models/risk/1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import REPO
from gateway import artifacts
from gateway.saver.recipe import load_recipe
from gateway.spec import load_spec
from gateway.transformer.stage import Transform, load_transform

SIZES = (1, 10, 100)


def build(version_dir: Path | None) -> tuple[Transform, Any]:
    spec = load_spec(REPO / "models" / "risk" / "model.yaml").transformer
    frame = load_recipe("risk", REPO / "transformers").make_dataset(seed=3).frame
    if version_dir is None:
        fitted = load_recipe("risk", REPO / "transformers").fit_transformer(frame[spec.columns])
        return Transform(fitted, spec), frame
    # As a worker loads it: from the compiled file when the version has one (the reference
    # path then unpickles the transformer on first use).
    return load_transform(version_dir, artifacts.read_manifest(version_dir), spec, []), frame


def request_columns(frame: Any, columns: list[str], n: int, offset: int) -> dict[str, list[Any]]:
    part = frame.iloc[offset : offset + n]
    out = {c: part[c].tolist() for c in columns}
    out["term_months"] = [int(v) for v in out["term_months"]]
    return out


def per_call(fn: Callable[[], Any], min_time: float) -> float:
    """Seconds per call, over as many calls as fill ``min_time``."""
    loops, start = 0, time.perf_counter()
    while True:
        fn()
        loops += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / loops


def measure(
    transform: Transform, columns: dict[str, list[Any]], n: int, rounds: int, min_time: float
) -> dict[str, Any]:
    compiled, reference = [], []
    for _ in range(rounds):
        compiled.append(per_call(lambda: transform(columns, n), min_time) * 1e6)
        reference.append(per_call(lambda: transform.reference(columns, n), min_time) * 1e6)
    row = {
        "rows": n,
        "compiled_us": statistics.median(compiled),
        "compiled_best_us": min(compiled),
        "reference_us": statistics.median(reference),
        "reference_best_us": min(reference),
    }
    row["speedup"] = row["reference_us"] / row["compiled_us"]
    return row


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rounds", type=int, default=15, help="alternating rounds per size")
    parser.add_argument("--min-time", type=float, default=0.05, help="seconds per round and path")
    parser.add_argument("--version-dir", type=Path, default=None, help="published risk version to load")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    transform, frame = build(args.version_dir)
    print(
        f"compiled: {transform.compiled} (from {transform.source}); fallbacks: {transform.report or 'none'}"
    )
    rows = []
    for n in SIZES:
        columns = request_columns(frame, transform.columns, n, offset=1000)
        if not np.array_equal(transform(columns, n), transform.reference(columns, n)):
            raise SystemExit(f"compiled and reference results differ at {n} rows")
        rows.append(measure(transform, columns, n, args.rounds, args.min_time))
    if transform.deferred:
        raise SystemExit(f"{transform.deferred} calls left the compiled path; the numbers would be mixed")

    head = ("rows", "compiled us", "(best)", "pandas+sklearn us", "(best)", "speed-up")
    print("{:>5} {:>12} {:>8} {:>18} {:>8} {:>9}".format(*head))
    for r in rows:
        print(
            f"{r['rows']:>5} {r['compiled_us']:>12.1f} {r['compiled_best_us']:>8.1f} "
            f"{r['reference_us']:>18.1f} {r['reference_best_us']:>8.1f} {r['speedup']:>8.1f}x"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
