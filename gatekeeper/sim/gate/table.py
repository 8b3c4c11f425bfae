"""The per-strategy table ``gatekeeper simulate`` and the benchmark print."""

from __future__ import annotations

from gatekeeper.sim.gate.run import Summary

COLUMNS = ("strategy", "merged", "rejected", "good rejected", "bad merged", "makespan h",
           "merges/h", "turnaround min mean / P50 / P95", "node-min/merge", "builds", "wasted")


def row(s: Summary) -> tuple[str, ...]:
    return (
        s.strategy,
        f"{s.merged:.1f}",
        f"{s.rejected:.1f}",
        f"{s.good_rejected:.1f} ({s.good_rejected_pct:.1f} %)",
        str(s.bad_merged),
        f"{s.makespan_h:.1f}",
        f"{s.merges_per_hour:.2f}",
        f"{s.turnaround_mean:.0f} / {s.turnaround_p50:.0f} / {s.turnaround_p95:.0f}",
        f"{s.node_minutes_per_merge:.0f}",
        f"{s.builds:.0f}",
        f"{s.wasted:.0f}",
    )


def markdown(title: str, summaries: list[Summary]) -> str:
    """A Markdown table (what doc/gating.md shows)."""
    lines = [f"**{title}**", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(row(s)) + " |" for s in summaries]
    return "\n".join(lines)
