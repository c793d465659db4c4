"""``gateway inspect``: what a model version contains, without loading TensorFlow.

Reads ``saved_model.pb`` with the generated protobuf classes (the facts
``saved_model_cli show --all`` prints: tag sets, signatures, their inputs and
outputs with dtypes, shapes and tensor names, and the ops the graph uses),
then the manifest and an audit of the directory against it: every file's
sha256, files the manifest does not list, and library versions recorded
versus running. Instant, so it fits in a shell loop or a CI step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway import artifacts
from gateway.errors import ArtifactError
from gateway.wire.protos import saved_model_pb2, types_pb2

SAVED_MODEL = "saved_model.pb"


def read_saved_model(vdir: Path) -> Any:
    path = vdir / SAVED_MODEL
    try:
        return saved_model_pb2.SavedModel.FromString(path.read_bytes())
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing; not a SavedModel directory") from e
    except Exception as e:  # protobuf DecodeError and friends
        raise ArtifactError(f"{path}: not a SavedModel protobuf: {e}") from e


def _tensor(info: Any) -> dict[str, Any]:
    shape = info.tensor_shape
    return {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "shape": None if shape.unknown_rank else [int(d.size) for d in shape.dim],
        "name": info.name,
    }


def describe_saved_model(sm: Any) -> list[dict[str, Any]]:
    """One entry per MetaGraph: tags, TF version, signatures (sorted by name) and op types."""
    out = []
    for mg in sm.meta_graphs:
        ops = {n.op for n in mg.graph_def.node}
        for fn in mg.graph_def.library.function:
            ops.update(n.op for n in fn.node_def)
        out.append(
            {
                "tags": list(mg.meta_info_def.tags),
                "tensorflow_version": mg.meta_info_def.tensorflow_version,
                "signatures": {
                    name: {
                        "method_name": sig.method_name,
                        "inputs": {a: _tensor(t) for a, t in sorted(sig.inputs.items())},
                        "outputs": {a: _tensor(t) for a, t in sorted(sig.outputs.items())},
                    }
                    for name, sig in sorted(mg.signature_def.items())
                },
                "ops": sorted(ops),
            }
        )
    return out


def serving_signatures(vdir: Path, tag: str = "serve") -> dict[str, Any]:
    """The signatures of the MetaGraph TF-Serving loads (tag ``serve``)."""
    for mg in describe_saved_model(read_saved_model(vdir)):
        if tag in mg["tags"]:
            return dict(mg["signatures"])
    raise ArtifactError(f"{vdir}: no MetaGraph tagged {tag!r}; TF-Serving could not load it")


def resolve(path: Path) -> Path:
    """A version directory as given, or the latest version under a model's base directory."""
    if (path / SAVED_MODEL).is_file() or (path / artifacts.MANIFEST).is_file():
        return path
    latest = artifacts.latest_version(path)
    if latest is None:
        raise ArtifactError(f"{path}: neither a model version directory nor a base with numeric versions")
    return artifacts.version_dir(path, latest)


def inspect_version(path: Path) -> dict[str, Any]:
    """Everything ``gateway inspect`` shows, as one JSON-ready dict."""
    vdir = resolve(path)
    info: dict[str, Any] = {"path": str(vdir), "saved_model": None}
    problems = []
    try:
        info["saved_model"] = describe_saved_model(read_saved_model(vdir))
    except ArtifactError as e:
        problems.append(str(e))
    try:
        manifest = artifacts.read_manifest(vdir)
    except ArtifactError as e:
        info["manifest"] = None
        info["audit"] = {"ok": False, "problems": [*problems, str(e)]}
        return info
    info["manifest"] = manifest
    problems += artifacts.audit(vdir, manifest)
    drift = artifacts.environment_drift(manifest)
    info["audit"] = {
        "ok": not problems and not any(lib in artifacts.PICKLE_LIBRARIES for lib in drift),
        "problems": problems,
        "environment": {
            lib: {"recorded": rec, "running": run, "match": lib not in drift}
            for lib, (rec, run) in artifacts.environment_pairs(manifest).items()
        },
    }
    return info


def render_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=True)


def render_text(info: dict[str, Any]) -> str:
    lines = [f"version directory: {info['path']}"]
    for mg in info["saved_model"] or []:
        lines.append(
            f"\nMetaGraph tags {mg['tags']} (written by TensorFlow {mg['tensorflow_version'] or '?'})"
        )
        for name, sig in mg["signatures"].items():
            if name.startswith("__"):  # TF's internal init signature
                continue
            lines.append(f"  signature {name!r}  method {sig['method_name'] or '-'}")
            for kind in ("inputs", "outputs"):
                for alias, t in sig[kind].items():
                    shape = (
                        "unknown rank" if t["shape"] is None else "(" + ", ".join(map(str, t["shape"])) + ")"
                    )
                    lines.append(f"    {kind[:-1]:<6} {alias:<20} {t['dtype']:<10} {shape:<14} {t['name']}")
        ops = mg["ops"]
        lines.append(f"  ops: {len(ops)} types ({', '.join(ops[:8])}{', ...' if len(ops) > 8 else ''})")
    if info["saved_model"] is None:
        lines.append("\nno saved_model.pb")
    lines += _render_manifest(info)
    return "\n".join(lines)


def _render_manifest(info: dict[str, Any]) -> list[str]:
    m = info.get("manifest")
    audit = info["audit"]
    if m is None:
        return ["\nmanifest: none", *[f"  ! {p}" for p in audit["problems"]]]
    out = [f"\nmanifest: model {m.get('model')!r}, created {m.get('created_at')}, source {m.get('source')}"]
    out.append(f"  signature {m.get('signature')!r}, inputs {m.get('graph_inputs')}")
    out.append(f"  output {m.get('graph_output')!r}")
    out.append(
        f"  files: {len(m['files'])} listed, " + ("all sha256 match" if not audit["problems"] else "PROBLEMS")
    )
    out += [f"  ! {p}" for p in audit["problems"]]
    env = ", ".join(
        f"{lib} {e['recorded']}" + ("" if e["match"] else f" (running {e['running']})")
        for lib, e in audit["environment"].items()
    )
    out.append(f"  environment: {env}")
    feats = m.get("features", [])
    out.append(f"  features ({len(feats)}): " + ", ".join(f"{f['name']}:{f['dtype']}" for f in feats))
    metrics = m.get("training", {}).get("metrics", {})
    if metrics:
        out.append("  metrics: " + ", ".join(f"{k} {_num(v)}" for k, v in sorted(metrics.items())))
    score = m.get("baseline", {}).get("score")
    if score:
        q = score["quantiles"]
        out.append(
            f"  baseline score: mean {_num(score['mean'])}, std {_num(score['std'])}, "
            f"p5 {_num(q['0.05'])}, p50 {_num(q['0.5'])}, p95 {_num(q['0.95'])}"
        )
    out.append("verdict: " + ("OK" if audit["ok"] else "NOT SAFE TO SERVE as is"))
    return out


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
