"""Benchmark: bulk-loading ctr features (100k users + 10k items with 32-dim embeddings) into Redis.

Starts its own redis-server on a free port (or uses ``--redis-url``), writes the
tables as Parquet the way ``gateway train`` writes demo tables, then per entity:

* ``gateway features load``: read + validate the file, write a new snapshot
  with pipelined writes, switch the alias (the code path operators run);
* the peer, in the same run: the same already-encoded values written with a
  bare redis-py pipeline into plain keys (no validation, no snapshot, no alias),
  i.e. what Redis and the client library cost by themselves.

Reports wall time, ``INFO memory`` ``used_memory`` growth and bytes per key,
and the ratio of the two paths (this machine is noisy: read the ratio). Run:
``python bench/feature_load.py [--users 100000 --items 10000 --repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench import REPO
from gateway.featurestore.commands import load_file
from gateway.featurestore.table import encode, read_table
from gateway.procs import start_redis
from gateway.saver.recipe import load_recipe
from gateway.spec import ModelSpec, load_spec


def write_tables(workdir: Path, users: int, items: int, seed: int) -> dict[str, Path]:
    recipe = load_recipe("ctr", REPO / "transformers")
    world = recipe.World(seed)
    paths = {"user": workdir / "user.parquet", "item": workdir / "item.parquet"}
    recipe.make_users(world, users, seed)[0].to_parquet(paths["user"], index=False)
    recipe.make_items(world, items, seed)[0].to_parquet(paths["item"], index=False)
    return paths


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def run_gateway(client: redis.Redis, spec: ModelSpec, entity: str, path: Path) -> dict[str, Any]:
    client.flushall()
    before = used_memory(client)
    t0 = time.perf_counter()
    summary = load_file(client, spec, path, quiet=True)
    seconds = time.perf_counter() - t0
    grown = used_memory(client) - before
    return {"seconds": seconds, "memory": grown, "keys": summary.keys, "rows": summary.rows}


def run_peer(
    client: redis.Redis, spec: ModelSpec, entity: str, path: Path, chunk: int = 2000
) -> dict[str, Any]:
    """Bare pipelined writes of the same values (encoding done before the clock starts)."""
    client.flushall()
    data = encode(spec, entity, read_table(path))
    views = [v for v in spec.feature_views if v.entity == entity]
    before = used_memory(client)
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    n = 0
    for start in range(0, data.rows, chunk):
        for v in views:
            for i in range(start, min(start + chunk, data.rows)):
                key = f"peer:{v.name}:{data.ids[i]}"
                if v.kind == "vector":
                    pipe.set(key, data.vectors[v.name][i])
                else:
                    pipe.hset(key, mapping=dict(zip(v.fields, data.hashes[v.name][i], strict=True)))
                n += 1
        pipe.execute()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "memory": used_memory(client) - before, "keys": n, "rows": data.rows}


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--redis-url", default=None, help="use this server (it is FLUSHALLed!) instead of starting one"
    )
    args = ap.parse_args()
    spec = load_spec(REPO / "models" / "ctr" / "model.yaml")
    workdir = Path(tempfile.mkdtemp(prefix="bench-feature-load-"))
    proc = None
    try:
        if args.redis_url is None:
            proc, port = start_redis(workdir)
            url = f"redis://127.0.0.1:{port}/0"
        else:
            url = args.redis_url
        client = redis.Redis.from_url(url, socket_timeout=60)
        paths = write_tables(workdir, args.users, args.items, args.seed)
        results: dict[str, Any] = {"redis": client.info("server")["redis_version"], "entities": {}}
        for entity, path in paths.items():
            ours = [run_gateway(client, spec, entity, path) for _ in range(args.repeat)]
            peer = [run_peer(client, spec, entity, path) for _ in range(args.repeat)]
            results["entities"][entity] = {"gateway": ours, "peer": peer}
            report(entity, ours, peer)
        total_s = sum(median(r["gateway"], "seconds") for r in results["entities"].values())
        total_mb = sum(median(r["gateway"], "memory") for r in results["entities"].values()) / 2**20
        print(f"\ntotal (median runs): {total_s:.2f} s, Redis used_memory +{total_mb:.1f} MiB")
        out = REPO / "bench" / "results" / "feature_load.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"raw numbers: {out}")
    finally:
        if proc is not None:
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def report(entity: str, ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> None:
    rows, keys = ours[0]["rows"], ours[0]["keys"]
    g_s, p_s = median(ours, "seconds"), median(peer, "seconds")
    g_m, p_m = median(ours, "memory"), median(peer, "memory")
    print(f"{entity}: {rows} rows, {keys} keys (median of {len(ours)})")
    for label, s, m in (("gateway features load", g_s, g_m), ("bare pipeline (peer)", p_s, p_m)):
        print(f"  {label:<22} {s:6.2f} s {rows / s:9.0f} rows/s  +{m / 2**20:7.1f} MiB {m / keys:6.0f} B/key")
    print(f"  ratio gateway/peer:    time x{g_s / p_s:.2f}, memory x{g_m / p_m:.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
