"""The throughput-over-time chart of a benchmark invocation (matplotlib, the optional ``bench`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(results: list[Any], path: Path, title: str = "") -> Path | None:
    """Write a PNG with one line per run (jobs/s over seconds since the first completion)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(10, 5), dpi=110)
    colors = {"engine": "tab:blue", "noop": "tab:green", "sql": "tab:gray", "pgqueuer": "tab:red"}
    for r in results:
        xs = [t for t, _ in r.series]
        ys = [v for _, v in r.series]
        label = f"{r.mode} #{r.run}: {r.jobs_per_second:,.0f} jobs/s"
        ax.plot(xs, ys, label=label, color=colors.get(r.mode), alpha=0.55 + 0.45 / r.run, linewidth=1.4)
    ax.set_xlabel("seconds since the first completion")
    ax.set_ylabel("jobs completed per second")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
