"""What every engine predictor returns, and how engine versions pick their defaults.

Each engine module (``vramplan.engines.vllm``, ``sglang``, ``tgi``, ``llamacpp``, ``hf``) turns a set of
engine settings into an :class:`EnginePrediction`: the per-GPU figures that engine prints at startup
(weights, non-torch memory, activation peak, CUDA graphs, KV cache, token count, concurrency) and
whether it starts at all. One shape for every engine lets ``vramplan explain`` and the accuracy
benchmark compare logged and predicted figures field by field without knowing the engine.

Engines change their defaults and their accounting between releases. :class:`VersionTable` holds a
sorted table of known versions per engine; :func:`nearest_version` maps an arbitrary version string
to the known version whose behaviour applies (the newest known one not newer than it) and says when
it had to substitute, so the prediction can list that as an assumption instead of hiding it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from vramplan.errors import InputError

GIB = 1024**3

T = TypeVar("T")


@dataclass(frozen=True)
class EnginePrediction:
    """Per-GPU startup figures an engine will log, plus whether it starts and how to make it start.

    Figures are GiB (floats) on the worst GPU (the pipeline stage with the fewest KV blocks), the same
    unit and scope the engines log. A figure the engine does not have (e.g. CUDA graphs in TGI) is
    ``None``. ``settings`` is the resolved settings dict with every default applied, under the
    engine's own flag names, so a reader can see what was assumed.
    """

    engine: str
    engine_version: str
    weights_gib: float | None = None
    non_torch_gib: float | None = None
    activation_peak_gib: float | None = None
    cuda_graph_gib: float | None = None
    available_kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    gpu_blocks: int | None = None
    starts: bool = True
    errors: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; tuples become lists, floats are rounded to 4 decimals for stable output."""
        out = asdict(self)
        for key, value in list(out.items()):
            if isinstance(value, tuple):
                out[key] = list(value)
            elif isinstance(value, float):
                out[key] = round(value, 4)
        return out


def parse_version(text: str) -> tuple[int, ...]:
    """``"0.6.3.post1"`` -> ``(0, 6, 3)``; ``"v0.19"`` -> ``(0, 19)``. Raises InputError if no number."""
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    if not m:
        raise InputError(
            f"engine version {text!r} is not a version number: give it like 0.19 or 0.6.3"
        )
    return tuple(int(p) for p in m.group(1).split("."))


def format_version(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


@dataclass(frozen=True)
class VersionMatch(Generic[T]):
    """The known version chosen for a requested one; ``substituted`` is True when they differ."""

    requested: str
    version: str
    value: T
    substituted: bool

    @property
    def note(self) -> str | None:
        """An assumption line when the requested version is not in the table, else None."""
        if not self.substituted:
            return None
        return (
            f"engine version {self.requested} is outside the known versions; "
            f"using the behaviour of {self.version}"
        )


@dataclass(frozen=True)
class VersionTable(Generic[T]):
    """Known versions of one engine, each with the profile (defaults, accounting) that applies from it on.

    ``entries`` maps a version string to a profile object; a profile applies from its version until
    the next listed one. ``latest`` is used when no version is given.
    """

    engine: str
    entries: dict[str, T]

    def _sorted(self) -> list[tuple[tuple[int, ...], str, T]]:
        return sorted((parse_version(k), k, v) for k, v in self.entries.items())

    @property
    def latest(self) -> str:
        return self._sorted()[-1][1]

    def nearest_version(self, requested: str | None) -> VersionMatch[T]:
        """The newest known version not newer than ``requested`` (the oldest if it predates them all)."""
        rows = self._sorted()
        if requested is None or str(requested).strip() in ("", "latest"):
            _, key, value = rows[-1]
            return VersionMatch(requested="latest", version=key, value=value, substituted=False)
        want = parse_version(requested)
        chosen = rows[0]
        for row in rows:
            if _cmp_prefix(row[0], want) <= 0:
                chosen = row
        # A profile applies from its version until the next listed one, so a request between two known
        # versions is covered. Only a request older than the oldest or newer than the newest release
        # line (0.19 covers 0.19.x) is a substitution worth a note.
        same_line = want[: len(chosen[0])] == chosen[0]
        too_old = _cmp_prefix(want, rows[0][0]) < 0
        too_new = chosen is rows[-1] and not same_line
        return VersionMatch(
            requested=str(requested),
            version=chosen[1],
            value=chosen[2],
            substituted=too_old or too_new,
        )


def _cmp_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Compare versions padding the shorter with zeros: (0, 6) == (0, 6, 0) < (0, 6, 3)."""
    n = max(len(a), len(b))
    pa, pb = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (pa > pb) - (pa < pb)


def nearest_version(table: VersionTable[T], requested: str | None) -> VersionMatch[T]:
    """Module-level form of :meth:`VersionTable.nearest_version`."""
    return table.nearest_version(requested)


def settings_for_engine(
    settings: Mapping[str, Any], keep: set[str], gpu: Any, gpu_memory: Any
) -> tuple[dict[str, Any], Any, Any]:
    """Log-parsed settings reduced to an engine's own flags, and the GPU memory the log printed.

    Shared by each engine's ``predict_from_settings`` (``vramplan explain``).
    """
    s = {k: v for k, v in settings.items() if v is not None}
    if gpu is None and gpu_memory is None and s.get("gpu_total_gib"):
        gpu_memory = f"{s['gpu_total_gib']}GiB"
    return {k: v for k, v in s.items() if k in keep}, gpu, gpu_memory
