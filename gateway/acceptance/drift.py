"""``gateway drift``: the drift report of a running service, from its ``/metrics``.

The service counts served rows into the version's drift bins (``gateway.logic.drift``), summed
over its workers by the scrape. The report puts those counts beside the baseline counts the
version's manifest records: PSI per feature and for the score, its band, and a plot of the
live shares against the baseline shares per bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.logic.drift import SCORE, Bins, band, psi, version_bins


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    rows: int
    live: list[float]
    bins: Bins

    @property
    def band(self) -> str:
        return band(self.psi)


def scrape(metrics_text: str, model: str, version: int) -> dict[str, dict[int, float]]:
    """The summed drift-bin counts of one model version: feature -> bin -> rows."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[int, float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "gateway_drift_bin":
            continue
        for s in family.samples:
            lab = s.labels
            if (
                not s.name.endswith("_total")
                or lab.get("model") != model
                or lab.get("version") != str(version)
            ):
                continue
            per = out.setdefault(lab["feature"], {})
            per[int(lab["bin"])] = per.get(int(lab["bin"]), 0.0) + s.value
    return out


def report(counts: dict[str, dict[int, float]], manifest: dict[str, Any]) -> list[FeatureDrift]:
    """Every feature with baseline bins, the score first, then by PSI (highest first)."""
    bins = version_bins(manifest)
    out = []
    for name, b in bins.items():
        per = counts.get(name, {})
        live = [per.get(i, 0.0) for i in range(b.size)]
        out.append(FeatureDrift(name, psi(live, b.baseline), int(sum(live)), live, b))
    return sorted(out, key=lambda d: (d.feature != SCORE, -(0 if math.isnan(d.psi) else d.psi)))


def lines(model: str, version: int, drifts: list[FeatureDrift]) -> list[str]:
    width = max([len(d.feature) for d in drifts] + [7])
    out = [
        f"drift of {model} version {version} (PSI against the held-out baseline; "
        "< 0.1 stable, 0.1-0.25 moderate, > 0.25 significant)",
        f"{'feature':<{width}}  {'rows':>8}  {'PSI':>8}  band",
    ]
    for d in drifts:
        value = "-" if math.isnan(d.psi) else f"{d.psi:.4f}"
        out.append(f"{d.feature:<{width}}  {d.rows:>8}  {value:>8}  {d.band}")
    return out


def plot(model: str, version: int, drifts: list[FeatureDrift], path: Path) -> None:
    """Live against baseline shares per bin, one panel per feature (the score first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = 3
    rows = max(1, math.ceil(len(drifts) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, d in zip(axes.flat, drifts, strict=False):
        base = np.asarray(d.bins.baseline, dtype=float)
        live = np.asarray(d.live, dtype=float)
        x = np.arange(d.bins.size)
        ax.bar(x - 0.2, base / max(base.sum(), 1), 0.4, label="baseline", color="#9aa5b1")
        ax.bar(x + 0.2, live / max(live.sum(), 1), 0.4, label="live", color="#d9534f")
        value = "no data" if math.isnan(d.psi) else f"PSI {d.psi:.3f} ({d.band})"
        ax.set_title(f"{d.feature}: {value}", fontsize=9)
        ax.set_xticks(x, d.bins.labels(), rotation=60, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(drifts) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{model} version {version}: live vs baseline share per bin")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
