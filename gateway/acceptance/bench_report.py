"""A ``gateway bench`` report as people read it: a table, a plot (PNG), the JSON itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = (
    f"{'target':<12} {'clients':>7} {'rate':>8} {'requests':>9} {'errors':>7} {'req/s':>8} "
    f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'degraded':>9}"
)


def _ms(value: float | None) -> str:
    return f"{value:>8.2f}" if value is not None else f"{'-':>8}"


def table(report: dict[str, Any]) -> str:
    """Settings in order, the targets of each one under each other; then the ratios."""
    lines = [HEADER]
    targets = report["targets"]
    for i in range(len(targets[0]["settings"])):
        for t in targets:
            s = t["settings"][i]
            lat = s["latency_ms"]
            rate = f"{s['rate']:>8g}" if s["rate"] else f"{'closed':>8}"
            lines.append(
                f"{t['name'][:12]:<12} {s['clients']:>7} {rate} {s['requests']:>9} {s['errors']:>7} "
                f"{s['throughput_rps']:>8.1f} {_ms(lat['p50'])} {_ms(lat['p90'])} {_ms(lat['p99'])} "
                f"{_ms(lat['max'])} {s['degraded_share']:>9.1%}"
            )
            if s.get("achieved_rate_rps") is not None:
                lines[-1] += f"  (arrivals {s['achieved_rate_rps']:.1f}/s)"
    for c in report.get("comparison", []):
        where = f"{c['clients']} client{'s' if c['clients'] != 1 else ''}"
        where += f" @ {c['rate']:g}/s" if c["rate"] else ""
        lines.append(
            f"{targets[0]['name']} / {targets[1]['name']}, {where}: throughput {_x(c['throughput_ratio'])}, "
            f"p50 {_x(c['p50_ratio'])}, p99 {_x(c['p99_ratio'])}"
        )
    return "\n".join(lines)


def _x(ratio: float | None) -> str:
    return f"{ratio:.2f}x" if ratio is not None else "-"


def write(report: dict[str, Any], path: Path) -> Path:
    """The JSON at ``path``, the plot beside it (same name, ``.png``); returns the plot's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    png = path.with_suffix(".png")
    plot(report, png)
    return png


def plot(report: dict[str, Any], png: Path) -> None:
    """Latency percentiles against clients (closed loop) or rate (open loop), and the latency histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    _percentiles(left, report)
    _histogram(right, report)
    fig.suptitle(
        f"gateway bench: {report['mode']} loop, {report['duration_s']:g} s per setting, "
        f"{report['machine']['cpus']} cpus"
    )
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _percentiles(ax: Any, report: dict[str, Any]) -> None:
    open_loop = report["mode"] == "open"
    for n, t in enumerate(report["targets"]):
        groups: dict[Any, list[dict[str, Any]]] = {}
        for s in t["settings"]:  # open loop: one line per number of clients, over the rates
            groups.setdefault(s["clients"] if open_loop else None, []).append(s)
        for group, rows in groups.items():
            xs = [r["rate"] if open_loop else r["clients"] for r in rows]
            name = t["name"] + (f", {group} clients" if group is not None and len(groups) > 1 else "")
            for q, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
                ys = [r["latency_ms"][q] if r["latency_ms"][q] is not None else float("nan") for r in rows]
                ax.plot(xs, ys, style, marker="o", color=f"C{n}", label=f"{name} {q}")
    xs = sorted({s["rate"] if open_loop else s["clients"] for t in report["targets"] for s in t["settings"]})
    if len(xs) > 1 and xs[-1] / xs[0] >= 8:  # 1, 8, 32 clients: evenly apart on a log axis
        ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel("arrival rate (req/s)" if open_loop else "clients (closed loop)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def _histogram(ax: Any, report: dict[str, Any]) -> None:
    edges = report["histogram_edges_ms"]
    styles = ("-", "--", ":", "-.")
    for n, t in enumerate(report["targets"]):
        for k, s in enumerate(t["settings"]):
            counts = s["histogram"]
            total = sum(counts) or 1
            where = f"{s['clients']}c" + (f" @{s['rate']:g}/s" if s["rate"] else "")
            ax.stairs(
                [c / total for c in counts],
                edges,
                color=f"C{n}",
                linestyle=styles[k % len(styles)],
                label=f"{t['name']} {where}",
            )
    used = [i for t in report["targets"] for s in t["settings"] for i, c in enumerate(s["histogram"]) if c]
    if used:
        ax.set_xlim(edges[max(min(used) - 1, 0)], edges[min(max(used) + 2, len(edges) - 1)])
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("share of answers")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
