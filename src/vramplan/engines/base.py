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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from vramplan.errors import InputError

if TYPE_CHECKING:
    from vramplan.scenario import Fix, Scenario

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
    #: KV bytes one token takes on one GPU/rank, all its layers (indexer and MLA layouts included).
    kv_bytes_per_token: int | None = None
    #: Fixed per-request state (conv + recurrent) on one GPU/rank; 0 for pure-attention models.
    state_bytes_per_sequence: int | None = None
    starts: bool = True
    errors: tuple[str, ...] = ()
    #: Changes that make it start: ``Fix`` data (each edge renders them as its flags or JSON fields).
    fixes: tuple[Fix, ...] = ()
    assumptions: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; tuples become lists, floats are rounded to 4 decimals for stable output."""
        out = asdict(self)
        out["fixes"] = [f.to_dict() for f in self.fixes]
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


# ------------------------------------------------------------------------------------- KV pool


@dataclass(frozen=True)
class KVPool:
    """The KV cache an engine allocates for one deployment, per GPU of the worst pipeline stage.

    Every command that needs "how many tokens fit" (vllm, sglang, tgi, llamacpp, hf, perf, simulate,
    plan, the API) reads it from here, so they cannot disagree. Bytes and tokens are integers;
    ``kv_cache_tokens`` is the figure the engine logs. The settings fields are the engine's values
    with its defaults applied (for its version and GPU), which ``perf`` and ``simulate`` then use.
    """

    engine: str
    engine_version: str
    gpu: str
    gpu_memory_bytes: int
    kv_cache_bytes: int
    kv_cache_tokens: int
    block_size: int
    #: Requests of ``max_model_len`` tokens the pool holds at once (the engine's "maximum concurrency").
    max_concurrency: float
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int
    gpu_memory_utilization: float
    #: Memory the engine takes before the KV cache (per GPU, worst stage).
    weights_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    starts: bool
    errors: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    #: Per GPU/rank: KV bytes per token (all layers) and fixed state bytes per running request.
    kv_bytes_per_token: int = 0
    state_bytes_per_sequence: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = list(self.errors)
        out["assumptions"] = list(self.assumptions)
        return out


#: Scenario field -> the settings key an engine's prediction reports it under (vLLM's names by default).
VLLM_KEYS: dict[str, str] = {
    "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "max_model_len": "max_model_len",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "block_size": "block_size",
}


def pool_from_prediction(
    pred: EnginePrediction, gpu_memory_bytes: int, keys: Mapping[str, str] = VLLM_KEYS
) -> KVPool:
    """The :class:`KVPool` of an engine prediction (engines that log GiB get bytes rounded down)."""
    s = {name: pred.settings.get(key) for name, key in keys.items()}
    s["gpu"] = pred.settings.get("gpu")

    def b(gib: float | None) -> int:
        return int((gib or 0.0) * GIB)

    kv_bytes = pred.extra.get("kv_cache_bytes")
    return KVPool(
        engine=pred.engine,
        engine_version=pred.engine_version,
        gpu=str(s.get("gpu", "")),
        gpu_memory_bytes=int(gpu_memory_bytes),
        kv_cache_bytes=max(
            0, int(kv_bytes) if kv_bytes is not None else b(pred.available_kv_cache_gib)
        ),
        kv_cache_tokens=max(0, int(pred.kv_cache_tokens or 0)),
        block_size=int(s.get("block_size") or pred.extra.get("block_size") or 1),
        max_concurrency=float(pred.max_concurrency or 0.0),
        max_num_seqs=int(s.get("max_num_seqs") or 1),
        max_num_batched_tokens=int(s.get("max_num_batched_tokens") or 1),
        max_model_len=int(s.get("max_model_len") or 1),
        gpu_memory_utilization=float(s.get("gpu_memory_utilization") or 1.0),
        weights_bytes=b(pred.weights_gib),
        activation_bytes=b(pred.activation_peak_gib),
        non_torch_bytes=b(pred.non_torch_gib),
        cuda_graph_bytes=b(pred.cuda_graph_gib),
        starts=pred.starts,
        errors=pred.errors,
        assumptions=pred.assumptions,
        kv_bytes_per_token=int(pred.kv_bytes_per_token or 0),
        state_bytes_per_sequence=int(pred.state_bytes_per_sequence or 0),
    )


class Engine(Protocol):
    """What every engine model offers: its figures for a scenario, and the KV pool they imply.

    ``settings`` maps a :class:`~vramplan.scenario.Scenario` to the engine's own flag names (None
    fields left out, so the engine's version defaults apply); ``launch`` is the engine's command line
    for it, with the model's real Hub id.
    """

    name: str

    def settings(self, scenario: Scenario) -> dict[str, Any]: ...

    def predict(self, scenario: Scenario) -> EnginePrediction: ...

    def kv_pool(self, scenario: Scenario) -> KVPool: ...

    def launch(self, scenario: Scenario, model_id: str) -> list[str]: ...


#: Engine name -> "module:attribute" of its Engine object (imported on first use: the CLI stays fast).
ENGINE_MODULES: dict[str, str] = {
    "vllm": "vramplan.engines.vllm:ENGINE_MODEL",
    "sglang": "vramplan.engines.sglang:ENGINE_MODEL",
    "tgi": "vramplan.engines.tgi:ENGINE_MODEL",
    "llamacpp": "vramplan.engines.llamacpp:ENGINE_MODEL",
    "hf": "vramplan.engines.hf:ENGINE_MODEL",
}
#: Names of the engines -> (engine, the version a name implies: perf's "vllm-0.5" is vLLM 0.5,
#: "sglang-0.3" SGLang 0.3).
ENGINE_NAMES: dict[str, tuple[str, str | None]] = {
    "vllm": ("vllm", None),
    "vllm-0.5": ("vllm", "0.5"),
    "vllm-legacy": ("vllm", "0.5"),
    "sglang": ("sglang", None),
    "sglang-0.3": ("sglang", "0.3"),
    "tgi": ("tgi", None),
    "text-generation-inference": ("tgi", None),
    "llamacpp": ("llamacpp", None),
    "llama.cpp": ("llamacpp", None),
    "llama-cpp": ("llamacpp", None),
    "hf": ("hf", None),
    "transformers": ("hf", None),
}


def engine_model(name: str) -> tuple[Engine, str | None] | None:
    """(Engine, version it implies) for an engine name, or None when there is no startup model for it
    (trtllm: perf and plan then use the core's memory budget and say so)."""
    import importlib

    key = ENGINE_NAMES.get(name.strip().lower())
    if key is None:
        return None
    module, attr = ENGINE_MODULES[key[0]].split(":")
    return getattr(importlib.import_module(module), attr), key[1]


# ---------------------------------------------------------------------------------- argv scanner


@dataclass(frozen=True)
class Flag:
    """One engine flag: its names, the settings key it fills, and how its value is read.

    ``convert(value, flag)`` reads the value; None marks a switch, which sets ``value_when_set``
    (``--flag=false`` style values are read as booleans). ``optional_values`` makes the value optional:
    the next word is taken only when it is one of them (llama.cpp's ``-fa [on|off|auto]``).
    """

    names: tuple[str, ...]
    key: str
    convert: Callable[[str, str], Any] | None = None
    value_when_set: Any = True
    optional_values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScannedArgs:
    settings: dict[str, Any]
    positionals: list[str]
    ignored: list[str]


def _never(flag: str) -> bool:
    return False


def scan_argv(
    argv: Sequence[str],
    flags: Sequence[Flag],
    *,
    underscores: bool = False,
    looks_boolean: Callable[[str], bool] = _never,
    ignored_with_value: bool = False,
) -> ScannedArgs:
    """Read ``--flag value``, ``--flag=value`` and switches the way argparse does, for every engine.

    Known flags fill ``settings`` (converted; a conversion error names the flag). An unknown flag is
    listed in ``ignored`` and takes the next word along as its value unless that word is a flag or
    ``looks_boolean(flag)``; with ``ignored_with_value`` the entry reads ``"--flag value"``. Numbers
    (``-1``) are words, not flags. ``underscores`` accepts ``--tp_size`` for ``--tp-size``. Other
    words are ``positionals``.
    """
    by_name = {n: f for f in flags for n in f.names}
    settings: dict[str, Any] = {}
    positionals: list[str] = []
    ignored: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or _is_number(token) or token == "-":
            positionals.append(token)
            i += 1
            continue
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if underscores and name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        f = by_name.get(name)
        nxt = args[i + 1] if i + 1 < len(args) else None
        if f is None:
            takes = (
                not eq
                and nxt is not None
                and (not nxt.startswith("-") or _is_number(nxt))
                and not looks_boolean(name)
            )
            if takes and ignored_with_value:
                ignored.append(f"{token} {nxt}")
            else:
                ignored.append(token)
            i += 2 if takes else 1
            continue
        if f.convert is None:
            value: Any = f.value_when_set
            if eq and inline in f.optional_values:
                value = inline
            elif eq:
                value = inline.strip().lower() in ("1", "true", "yes", "on")
                if f.value_when_set is False:
                    value = not value
            elif f.optional_values and nxt is not None and nxt in f.optional_values:
                value = nxt
                i += 1
            settings[f.key] = value
            i += 1
            continue
        if eq:
            raw = inline
            i += 1
        else:
            if nxt is None:
                raise InputError(f"{name} needs a value")
            raw = nxt
            i += 2
        settings[f.key] = f.convert(raw, name)
    return ScannedArgs(settings, positionals, ignored)


def take_flags(
    argv: Sequence[str], value_flags: Sequence[str], switches: Sequence[str] = ()
) -> tuple[dict[str, Any], list[str]]:
    """Remove our own options (``--gpu X``, ``--gpu=X``, ``--json``) from an engine argv.

    Returns ({flag: value}, the rest of the argv in order), e.g. for `vramplan vllm ... --gpu H100`.
    """
    found: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    args = list(argv)
    while i < len(args):
        a = args[i]
        name, eq, inline = a.partition("=")
        if a in switches:
            found[a] = True
        elif name in value_flags:
            if eq:
                found[name] = inline
            elif i + 1 >= len(args):
                raise InputError(f"{name} needs a value")
            else:
                found[name] = args[i + 1]
                i += 1
        else:
            rest.append(a)
        i += 1
    return found, rest


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
