"""PNG/SVG chart of KV memory by category and batch size over time (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from vramplan.errors import InputError
from vramplan.simulate.metrics import SimulationResult

_CATEGORIES = (
    ("token", "token states"),
    ("reserved", "reserved"),
    ("internal", "internal frag."),
    ("external", "external frag."),
    ("free", "free"),
)


def plot_timeseries(result: SimulationResult, path: str | Path) -> Path:
    """Write a stacked area chart (share of the KV pool) with the batch size on a second axis."""
    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"plot path {str(out)!r} must end in .png or .svg.")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        from vramplan.extras import missing_extra

        raise missing_extra(exc, "plotting", "plot") from None
    ts = result.timeseries
    if not ts.get("time_s"):
        raise InputError("the simulation recorded no samples to plot (did any request run?).")
    cap = float(result.capacity_slots)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.stackplot(
        ts["time_s"],
        *[[v / cap for v in ts[k]] for k, _ in _CATEGORIES],
        labels=[label for _, label in _CATEGORIES],
        alpha=0.85,
    )
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("share of KV pool")
    ax.set_ylim(0, 1)
    ax2 = ax.twinx()
    ax2.plot(ts["time_s"], ts["batch"], color="black", linewidth=1.0, label="batch size")
    ax2.set_ylabel("running requests")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"KV cache use over time ({result.allocator})")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
