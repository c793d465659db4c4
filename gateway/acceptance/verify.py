"""``gateway verify``: does the running service answer exactly like the offline model?

Requests are built from held-out rows (``heldout.py``) and sent to the service pinned to one
version, with ``X-Gateway-Explain`` (admin token) so each answer carries the feature values
the service read. Two paths are checked, and the report says which failed:

* **model path**: the version's pickled transformer, its SavedModel (loaded with TensorFlow,
  not through the graph service) or estimator, and the post-processing of the spec in the
  models directory, applied to the request and the feature values the service read, must
  give the served answer within the tolerance. A transformer or graph of another version, or
  a different post-processing, fails here.
* **feature path** (``features="held"``): the values the service read for each row's entities
  must be those the row was built with. Another feature snapshot, or an entity the store
  lacks, fails here, naming the entity and the field. ``features="live"`` skips it once
  features were refreshed on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gateway import artifacts
from gateway.acceptance.heldout import Built, HeldOut, build_requests, plain
from gateway.errors import ArtifactError
from gateway.logic.postprocess import PostProcessor
from gateway.spec import GraphModelSpec, ModelSpec, SklearnModelSpec
from gateway.transformer.stage import dense

EXPLAIN_HEADER = "X-Gateway-Explain"
FEATURE_RTOL = 1e-9  # stored values round-trip through text: equal up to float printing
VECTOR_ATOL = 1e-6  # vectors are float32
SHOWN = 5  # offending requests / feature differences printed per check


@dataclass
class Mismatch:
    """A served answer the offline model does not reproduce."""

    request: dict[str, Any]
    diff: float
    served: list[dict[str, Any]]
    offline: list[dict[str, Any]]
    why: str = ""


@dataclass
class FeatureDiff:
    entity: str
    key: str
    field: str
    live: Any
    expected: Any
    request: dict[str, Any] | None = None  # the request that read it


@dataclass
class Report:
    model: str
    version: int
    url: str
    tolerance: float
    requests: int = 0
    rows: int = 0
    max_abs_diff: float = 0.0
    mismatches: list[Mismatch] = field(default_factory=list)
    feature_diffs: list[FeatureDiff] = field(default_factory=list)
    features_checked: bool = True
    errors: list[str] = field(default_factory=list)  # requests the service did not answer with 200

    @property
    def model_ok(self) -> bool:
        return not self.mismatches and not self.errors

    @property
    def features_ok(self) -> bool:
        return not self.feature_diffs and (self.rows > 0 or not self.features_checked)

    @property
    def ok(self) -> bool:
        return self.model_ok and self.features_ok

    def lines(self) -> list[str]:
        out = [
            f"verify {self.model} version {self.version} at {self.url}: {self.requests} requests, "
            f"{self.rows} rows, tolerance {self.tolerance:g}",
            f"model path:   {'ok' if self.model_ok else 'FAILED'}: max |served - offline| = "
            f"{self.max_abs_diff:.3g}; {len(self.mismatches)} requests above the tolerance"
            + (f"; {len(self.errors)} not answered" if self.errors else ""),
        ]
        for m in self.mismatches[:SHOWN]:
            out.append(f"  request {_json(m.request)}")
            out.append(f"    served  {_json(m.served)}")
            out.append(
                f"    offline {_json(m.offline)}  (|diff| {m.diff:.3g}{'; ' + m.why if m.why else ''})"
            )
        out += [f"  {e}" for e in self.errors[:SHOWN]]
        if not self.features_checked:
            out.append("feature path: skipped (--features live)")
        else:
            entities = sorted({(d.entity, d.key) for d in self.feature_diffs})
            out.append(
                f"feature path: {'ok' if self.features_ok else 'FAILED'}: "
                + (
                    "the live values equal the rows'"
                    if self.features_ok
                    else "nothing to compare: no request was answered"
                    if not self.rows
                    else f"{len(self.feature_diffs)} values differ, over {len(entities)} entities"
                )
            )
            shown: set[str] = set()
            for d in self.feature_diffs[: SHOWN * 2]:
                out.append(f"  {d.entity} {d.key!r} {d.field}: live {d.live!r}, rows {d.expected!r}")
                request = _json(d.request)
                if request not in shown:  # the offending request, once
                    shown.add(request)
                    out.append(f"    in request {request}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "url": self.url,
            "tolerance": self.tolerance,
            "requests": self.requests,
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "model_path": {"ok": self.model_ok, "mismatches": len(self.mismatches), "errors": self.errors},
            "feature_path": {
                "checked": self.features_checked,
                "ok": self.features_ok,
                "differences": [
                    {k: v for k, v in d.__dict__.items() if k != "request"} for d in self.feature_diffs
                ],
            },
            "ok": self.ok,
        }


def _json(value: Any) -> str:
    import orjson

    text = orjson.dumps(value).decode()
    return text if len(text) <= 400 else text[:400] + "..."


class Offline:
    """A version's model as the data scientist handed it over: pickle + SavedModel (or estimator)."""

    def __init__(self, spec: ModelSpec, vdir: Path) -> None:
        self.spec = spec
        manifest = artifacts.read_manifest(vdir)
        problems = artifacts.audit(vdir, manifest)
        if problems:
            raise ArtifactError(f"{vdir}: does not match its manifest: " + "; ".join(problems))
        self.transformer = artifacts.load_verified_pickle(vdir, spec.transformer.file, manifest)
        self.post = PostProcessor(spec.postprocess)
        if isinstance(spec, GraphModelSpec):
            import tensorflow as tf

            self.fn = tf.saved_model.load(str(vdir)).signatures[spec.graph.signature]
        else:
            assert isinstance(spec, SklearnModelSpec)
            self.estimator = artifacts.load_verified_pickle(vdir, spec.estimator.file, manifest)

    def raw(self, frame: pd.DataFrame, vectors: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        x = np.asarray(dense(self.transformer.transform(frame[self.spec.transformer.columns])))
        spec = self.spec
        if isinstance(spec, GraphModelSpec):
            import tensorflow as tf

            inputs = {
                alias: tf.constant(x.astype(np.float32) if src.view is None else vectors[src.view])
                for alias, src in spec.graph.inputs.items()
            }
            out = self.fn(**inputs)[spec.graph.output].numpy()
            return np.asarray(out, dtype=np.float64).reshape(len(frame), -1)
        from gateway.saver.estimator import estimator_scores

        assert isinstance(spec, SklearnModelSpec)
        return np.asarray(estimator_scores(self.estimator, spec.estimator, x.astype(np.float64)))

    def answer(self, body: dict[str, Any], raw: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
        ranking = self.spec.request.ranking
        if self.spec.request.form == "ranking" and ranking is not None:
            return self.post.ranking(raw, list(body[ranking.items_field]), body.get("top_k"))
        return self.post.records(raw)


def request_frame(spec: ModelSpec, body: dict[str, Any], features: dict[str, Any]) -> pd.DataFrame:
    """The transformer's input rows for one request: its fields and the feature values served."""
    ranking = spec.request.ranking
    if spec.request.form == "ranking" and ranking is not None:
        context = body.get(ranking.context_field) or {}
        n = len(body[ranking.items_field])
        rows = [{f.name: context.get(f.name, f.default) for f in spec.request.fields} for _ in range(n)]
    else:
        rows = [{f.name: rec.get(f.name, f.default) for f in spec.request.fields} for rec in body["data"]]
    for name, values in features.get("columns", {}).items():
        for i, row in enumerate(rows):
            row[name] = values[i] if len(values) == len(rows) else values[0]
    return pd.DataFrame(rows)


def compare(
    served: list[dict[str, Any]], offline: list[dict[str, Any]], score_field: str
) -> tuple[float, str]:
    """Largest score difference, and what else differs ("" when nothing)."""
    if len(served) != len(offline):
        return math.inf, f"{len(served)} entries served, {len(offline)} offline"
    worst, why = 0.0, ""
    for s, o in zip(served, offline, strict=True):
        keys, want = set(s) - {"defaulted"}, set(o)
        if keys != want:
            why = f"fields {sorted(keys)} served, {sorted(want)} offline"
        a, b = s.get(score_field), o.get(score_field)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return math.inf, f"{score_field!r} missing"
        worst = max(worst, abs(float(a) - float(b)))
        for key in ("label", "item_id"):
            if key in o and s.get(key) != o[key]:
                why = f"{key} {s.get(key)!r} served, {o[key]!r} offline"
    return worst, why


def feature_diffs(
    spec: ModelSpec, held: HeldOut, built: Built, features: dict[str, Any]
) -> list[FeatureDiff]:
    """The values the service read for each row's entities against the held-out row's."""
    frame = held.frame
    columns = features.get("columns", {})
    vectors = features.get("vectors", {})
    absent = {view: set(rows) for view, rows in features.get("defaulted", {}).items()}
    out: list[FeatureDiff] = []
    for view in spec.feature_views:
        key_col = held.keys.get(view.entity)
        if key_col is None:
            continue
        for i, row in enumerate(built.rows):
            key = str(frame.at[row, key_col])
            if i in absent.get(view.name, ()):
                out.append(
                    FeatureDiff(view.entity, key, f"{view.name} (all)", "absent from the store", "present")
                )
                continue
            if view.kind == "vector":
                if view.name in frame.columns and view.name in vectors:
                    live = np.asarray(vectors[view.name][i], dtype=np.float32)
                    want = np.asarray(frame.at[row, view.name], dtype=np.float32)
                    if live.shape != want.shape or not np.allclose(live, want, atol=VECTOR_ATOL, rtol=0):
                        gap = float(np.max(np.abs(live - want))) if live.shape == want.shape else math.inf
                        out.append(
                            FeatureDiff(view.entity, key, view.name, f"vector (max diff {gap:.3g})", "vector")
                        )
                continue
            for name in view.fields:
                if name not in frame.columns or name not in columns:
                    continue
                live, want = columns[name][i], plain(frame.at[row, name])
                if not _same(live, want):
                    out.append(FeatureDiff(view.entity, key, name, live, want))
    return out


def _same(live: Any, want: Any) -> bool:
    if isinstance(want, (int, float)) and isinstance(live, (int, float)):
        if math.isnan(want) or math.isnan(live):
            return math.isnan(want) and math.isnan(live)
        return math.isclose(float(live), float(want), rel_tol=FEATURE_RTOL, abs_tol=1e-12)
    return str(live) == str(want)


def verify(
    spec: ModelSpec,
    vdir: Path,
    version: int,
    held: HeldOut,
    url: str,
    token: str,
    *,
    n: int = 1000,
    tolerance: float = 1e-5,
    check_features: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> Report:
    """Send ``n`` held-out requests pinned to ``version``; compare with the offline model."""
    import requests

    offline = Offline(spec, vdir)
    built = build_requests(spec, held, n, seed)
    report = Report(spec.name, version, url, tolerance, features_checked=check_features)
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", EXPLAIN_HEADER: "features"})
    answered: list[tuple[Built, dict[str, Any], dict[str, Any]]] = []
    from tqdm import tqdm

    for b in tqdm(built, desc=f"verify {spec.name}", unit="req", disable=not progress, leave=False):
        body = {**b.body, "version": version}
        resp = session.post(f"{url}/get_score", json=body, timeout=30)
        report.requests += 1
        if resp.status_code != 200:
            report.errors.append(f"{resp.status_code} {resp.text[:300]} for {_json(body)}")
            continue
        answer = resp.json()
        if answer.get("model", {}).get("version") != version:
            report.errors.append(f"answered by version {answer.get('model')} for {_json(body)}")
            continue
        if "features" not in answer:
            raise RuntimeError(
                f"{url} does not explain its answers ({EXPLAIN_HEADER}): not a gateway logic service?"
            )
        answered.append((b, body, answer))
    _check_model(offline, answered, report)
    if check_features:
        for b, body, answer in answered:
            for d in feature_diffs(spec, held, b, answer["features"]):
                d.request = body
                report.feature_diffs.append(d)
    return report


def _check_model(
    offline: Offline, answered: list[tuple[Built, dict[str, Any], dict[str, Any]]], report: Report
) -> None:
    """Score every answered request offline in one pass, then compare request by request."""
    if not answered:
        return
    spec = offline.spec
    frames = [request_frame(spec, body, a["features"]) for _, body, a in answered]
    vectors = {
        view: np.concatenate(
            [np.asarray(a["features"]["vectors"][view], dtype=np.float32) for *_, a in answered]
        )
        for view in answered[0][2]["features"].get("vectors", {})
    }
    raw = offline.raw(pd.concat(frames, ignore_index=True), vectors)
    start = 0
    for (_, body, answer), frame in zip(answered, frames, strict=True):
        part = raw[start : start + len(frame)]
        start += len(frame)
        expected = offline.answer(body, part)
        diff, why = compare(answer["data"], expected, spec.postprocess.score_field)
        report.rows += len(frame)
        if math.isfinite(diff):
            report.max_abs_diff = max(report.max_abs_diff, diff)
        if diff > report.tolerance or why:
            report.mismatches.append(Mismatch(body, diff, answer["data"], expected, why))
