"""plot_breakdown: a stacked bar of one estimate's memory per GPU, for `vramplan estimate --plot`.

Needs the ``plot`` extra (matplotlib); uses the Agg backend so it works without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vramplan.errors import InputError
from vramplan.wording import plural

_COLOURS = {
    "weights": "#4e79a7",
    "kv_cache": "#f28e2b",
    "activations": "#59a14f",
    "overhead": "#bab0ac",
}


def plot_breakdown(breakdown: dict[str, Any], path: str | Path) -> Path:
    """Write a stacked bar (weights, KV cache, activations, overhead per GPU, GiB) to ``path`` (.png/.svg/.pdf).

    ``breakdown`` is ``Breakdown.to_dict()`` (the `estimate --json` object); the GPU's memory, when
    known, is drawn as a dashed line so fit or no-fit is visible at a glance.
    """
    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise InputError(f"--plot {str(path)!r} must end in .png, .svg or .pdf")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from vramplan.extras import missing_extra

        raise missing_extra(exc, "plotting", "plot") from None
    gib = 2**30
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    bottom = 0.0
    for comp in breakdown["components"]:
        value = comp["per_gpu_bytes"] / gib
        ax.bar(
            ["per GPU"],
            [value],
            bottom=[bottom],
            color=_COLOURS.get(comp["name"]),
            label=f"{comp['name'].replace('_', ' ')}: {value:,.2f} GiB",
            width=0.5,
        )
        bottom += value
    if breakdown.get("gpu_memory_bytes"):
        cap = breakdown["gpu_memory_bytes"] / gib
        ax.axhline(
            cap,
            color="#e15759" if not breakdown.get("fits") else "#333333",
            linestyle="--",
            label=f"{breakdown.get('gpu')}: {cap:,.2f} GiB",
        )
    ax.set_ylabel("GiB per GPU")
    gpus = breakdown.get("gpus", 1)
    ax.set_title(
        f"{breakdown['model']} · {breakdown['precision']} · {plural(breakdown['users'], 'user')} x "
        f"{plural(breakdown['context'], 'token')} · {plural(gpus, 'GPU')}",
        fontsize=9,
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.savefig(out)
    plt.close(fig)
    return out
