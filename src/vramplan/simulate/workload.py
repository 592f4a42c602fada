"""Request traces for the KV-cache simulator: arrivals, prompt/output lengths, sharing.

A trace is plain numpy arrays so a one-hour replay (thousands of requests) costs nothing to build, and
the same seed always gives the same trace.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vramplan.errors import InputError
from vramplan.scenario_fields import MAX_CONTEXT

if TYPE_CHECKING:
    from vramplan.perf import LengthMix

_Z99 = 2.3263478740408408  # standard normal 99th percentile

#: Suffixes of request-length files: CSV, JSON lines, or a JSON array (ShareGPT conversations).
LENGTH_FILE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")
#: Largest lengths file read (ShareGPT_V3_unfiltered_cleaned_split.json is about 0.64 GB).
MAX_LENGTH_FILE_BYTES = 1 << 30
#: Most rows kept from a lengths file (the simulator's request cap; a benchmark samples far fewer).
MAX_LENGTH_ROWS = 2_000_000
#: Approximate tokens of raw text: one token per 4 characters, OpenAI's rule of thumb for English with
#: BPE tokenizers. Conversation files are counted this way, so their lengths are approximate.
CHARS_PER_TOKEN = 4
#: benchmark_serving's ShareGPT filter (vllm/benchmarks/datasets/datasets.py is_valid_sequence).
SHAREGPT_MIN_TOKENS, SHAREGPT_MAX_PROMPT_TOKENS, SHAREGPT_MAX_TOTAL_TOKENS = 4, 1024, 2048


@dataclass(frozen=True)
class LengthDist:
    """A token-length distribution.

    kind: ``fixed`` (value), ``uniform`` (low..high inclusive), ``lognormal`` (mean with p50, or p50 with
    p99; when ``mean`` is given the location is refitted so the mean *after* the context cap matches it),
    ``maxent`` (low..high with a mean: the maximum-entropy law on that support, a truncated exponential;
    the honest choice where a source publishes only a mean and the sampler's bounds).
    """

    kind: str = "fixed"
    value: int = 128
    low: int = 1
    high: int = 256
    mean: float | None = None
    p50: float | None = None
    p99: float | None = None

    def validate(self, what: str) -> None:
        if self.kind == "fixed":
            if self.value < 1:
                raise InputError(f"{what}: fixed length must be >= 1, got {self.value}.")
        elif self.kind == "uniform":
            if not 1 <= self.low <= self.high:
                raise InputError(
                    f"{what}: uniform lengths need 1 <= low <= high, got {self.low}..{self.high}."
                )
        elif self.kind == "lognormal":
            self.lognormal_params()
        elif self.kind == "maxent":
            if self.mean is None or not 1 <= self.low < self.mean < self.high:
                raise InputError(
                    f"{what}: maxent lengths need 1 <= low < mean < high, got "
                    f"{self.low}..{self.high} with mean {self.mean}."
                )
        else:
            raise InputError(
                f"{what}: unknown length distribution {self.kind!r}; use fixed, uniform, lognormal "
                "or maxent."
            )

    def lognormal_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal, before any cap correction."""
        if self.p50 is None or self.p50 <= 0:
            raise InputError("lognormal lengths need p50 > 0 (give p50 with mean or with p99).")
        mu = math.log(self.p50)
        if self.mean is not None:
            if self.mean <= self.p50:
                raise InputError(
                    f"lognormal lengths need mean > p50 (right-skewed); got mean={self.mean}, "
                    f"p50={self.p50}. Use a fixed or uniform distribution for symmetric lengths."
                )
            return mu, math.sqrt(2.0 * math.log(self.mean / self.p50))
        if self.p99 is not None:
            if self.p99 <= self.p50:
                raise InputError(
                    f"lognormal lengths need p99 > p50; got p99={self.p99}, p50={self.p50}."
                )
            return mu, (math.log(self.p99) - mu) / _Z99
        raise InputError("lognormal lengths need mean or p99 besides p50.")


@dataclass(frozen=True)
class WorkloadConfig:
    """Traffic description. Exactly one of ``duration_s`` / ``num_requests`` bounds the trace.

    ``arrival``: ``poisson`` or ``gamma`` (bursty; ``cv`` > 1 is burstier than Poisson).
    ``samples_path``: CSV or JSONL with prompt_len, output_len columns/keys; when given, lengths are
    drawn from it (with replacement) instead of the two distributions.
    ``system_prompt_len`` tokens are prepended to a ``system_prompt_share`` of requests (one of
    ``num_system_prompts`` prompts each) and can be shared by prefix caching.
    ``n``: parallel samples per request; ``beam_width``: beams per request (use one or the other).
    """

    rate: float = 1.0
    duration_s: float | None = 60.0
    num_requests: int | None = None
    arrival: str = "poisson"
    cv: float = 1.0
    prompt: LengthDist = field(default_factory=lambda: LengthDist("fixed", value=128))
    output: LengthDist = field(default_factory=lambda: LengthDist("fixed", value=128))
    samples_path: str | None = None
    max_len: int = 2048
    system_prompt_len: int = 0
    system_prompt_share: float = 0.0
    num_system_prompts: int = 1
    n: int = 1
    beam_width: int = 1
    seed: int = 0

    def validate(self) -> None:
        if not self.rate > 0:
            raise InputError(f"request rate must be > 0 requests/s, got {self.rate}.")
        if (self.duration_s is None) == (self.num_requests is None):
            raise InputError("give exactly one of duration_s or num_requests to bound the trace.")
        if self.duration_s is not None and not self.duration_s > 0:
            raise InputError(f"duration_s must be > 0, got {self.duration_s}.")
        if self.num_requests is not None and self.num_requests < 1:
            raise InputError(f"num_requests must be >= 1, got {self.num_requests}.")
        if self.arrival not in ("poisson", "gamma"):
            raise InputError(f"unknown arrival process {self.arrival!r}; use poisson or gamma.")
        if not self.cv > 0:
            raise InputError(f"arrival cv must be > 0, got {self.cv}.")
        if self.max_len < 2:
            raise InputError(f"max_len must be >= 2 tokens, got {self.max_len}.")
        if self.n < 1 or self.beam_width < 1:
            raise InputError("n and beam_width must be >= 1.")
        if self.n > 1 and self.beam_width > 1:
            raise InputError(
                "use either parallel sampling (n) or beam search (beam_width), not both."
            )
        if not 0.0 <= self.system_prompt_share <= 1.0:
            raise InputError(
                f"system_prompt_share must be in [0, 1], got {self.system_prompt_share}."
            )
        if self.system_prompt_len < 0 or self.system_prompt_len >= self.max_len:
            raise InputError(
                f"system_prompt_len must be in [0, max_len), got {self.system_prompt_len}."
            )
        if self.num_system_prompts < 1:
            raise InputError("num_system_prompts must be >= 1.")
        if self.samples_path is None:
            self.prompt.validate("prompt length")
            self.output.validate("output length")


@dataclass(frozen=True)
class Trace:
    """One row per request; ``prefix_id`` is -1 when the request has no shared system prompt.

    ``prompt_len`` includes the system prompt (``prefix_len`` tokens of it).
    """

    arrival_s: np.ndarray
    prompt_len: np.ndarray
    output_len: np.ndarray
    prefix_id: np.ndarray
    prefix_len: np.ndarray
    n: int = 1
    beam_width: int = 1

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


PRESETS: dict[str, tuple[LengthDist, LengthDist]] = {
    # ShareGPT as in the PagedAttention paper (Fig. 11): means 161.31 / 337.99, heavy tails, pairs with
    # prompt + output > 2048 dropped. The medians are our choice: output p50 231 gives a coefficient of
    # variation near 0.9, the spread implied by the paper's Fig. 2 (reserved/token-state ratio ~0.65).
    "sharegpt": (
        LengthDist("lognormal", mean=161.31, p50=75.0),
        LengthDist("lognormal", mean=337.99, p50=231.0),
    ),
    # Alpaca (Fig. 11): means 19.31 / 58.45; short instructions, moderately spread outputs.
    "alpaca": (
        LengthDist("lognormal", mean=19.31, p50=15.0),
        LengthDist("lognormal", mean=58.45, p50=40.0),
    ),
}


@dataclass(frozen=True)
class Dataset:
    """A serving benchmark's request-length law: prompt and output lengths, the pair filter, the source.

    ``max_total_tokens``: pairs with prompt + output above it are dropped, as the benchmark's sampler does.
    """

    name: str
    prompt: LengthDist
    output: LengthDist
    max_total_tokens: int
    source: str


#: The datasets published serving benchmarks name (``vramplan perf --dataset``). Each law is sourced;
#: where only means are published it is the maximum-entropy law for that mean on the sampler's bounds.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "sharegpt",
            LengthDist(
                "maxent", low=SHAREGPT_MIN_TOKENS, high=SHAREGPT_MAX_PROMPT_TOKENS, mean=231.0
            ),
            LengthDist(
                "maxent",
                low=SHAREGPT_MIN_TOKENS,
                high=SHAREGPT_MAX_TOTAL_TOKENS - SHAREGPT_MIN_TOKENS,
                mean=195.0,
            ),
            SHAREGPT_MAX_TOTAL_TOKENS,
            "ShareGPT as vLLM's and SGLang's benchmark_serving sample it: first human turn as the prompt, "
            "first reply's length as the output, pairs kept when both are >= 4 tokens, the prompt <= 1024 "
            "and both <= 2048 (vllm/benchmarks/datasets/datasets.py is_valid_sequence, vLLM 0.25-0.33). "
            "Means 231 / 195 tokens: the 1,000-request run on ShareGPT_V3_unfiltered_cleaned_split in "
            "KubeAI's docs/benchmarks/llama-3.2-11b-vision.md (230,969 and 194,523 tokens, Llama-3 "
            "tokenizer); SGLang's benchmark/benchmark_vllm_060 README gives 194 output tokens a request "
            "(4281.51 / 22.03). No percentiles are published: maximum-entropy (truncated exponential) "
            "lengths on the sampler's bounds.",
        ),
        Dataset(
            "openorca",
            LengthDist("maxent", low=1, high=1024, mean=295.0),
            LengthDist("maxent", low=1, high=1024, mean=290.0),
            2048,
            "MLPerf Inference Llama-2-70B (v4.0 on): 24,576 OpenOrca GPT-4 samples, prompts and outputs "
            "at most 1,024 Llama-2 tokens (mlcommons/inference language/llama2-70b/README.md; MLCommons, "
            "'Llama 2 70B: An MLPerf Inference Benchmark for Large Language Models', 2024). Output mean "
            "290 tokens from the official v4.1 NVIDIA Offline log (24524.9 tokens/s / 84.4792 "
            "samples/s); prompt mean 295 tokens as the MLCommons task force reports it. Only means are "
            "published: maximum-entropy (truncated exponential) lengths on the 1..1024 bounds.",
        ),
        Dataset(
            "sonnet",
            LengthDist("fixed", value=550),
            LengthDist("fixed", value=150),
            700,
            "vLLM's sonnet benchmark (vllm/benchmarks/datasets/datasets.py SonnetDataset, vLLM "
            "0.25-0.29): prompts of Shakespeare sonnet lines after a fixed instruction, accepted when "
            "at most --sonnet-input-len 550 tokens (so within one poem line below it), the first "
            "--sonnet-prefix-len 200 tokens shared by every prompt; output --sonnet-output-len 150 "
            "tokens. Taken as 550 in / 150 out; the shared prefix is not credited (no prefix caching).",
        ),
    )
}
#: Requests drawn from a named dataset (fixed seed): enough that p99 moves by well under 1 %.
DATASET_DRAWS = 65_536


@dataclass(frozen=True)
class LengthSamples:
    """Request lengths of a dataset (drawn from a preset, or read from a file); one row per request."""

    name: str
    prompt_len: np.ndarray
    output_len: np.ndarray
    source: str = ""

    def stats(self) -> dict[str, dict[str, float]]:
        """Mean, p50 and p99 of the prompt and output lengths, tokens."""
        return {
            key: {
                "mean": round(float(a.mean()), 2),
                "p50": float(np.percentile(a, 50)),
                "p99": float(np.percentile(a, 99)),
            }
            for key, a in (("input_tokens", self.prompt_len), ("output_tokens", self.output_len))
        }


def dataset_names() -> tuple[str, ...]:
    return tuple(DATASETS)


@lru_cache(maxsize=16)
def _preset_samples(name: str) -> LengthSamples:
    """Draws of a preset (seed 0) with the benchmark's pair filter applied.

    The published means are of the filtered requests, so a maxent law's mean is refitted until the
    kept requests have it (as :func:`_fitted_locations` does for the lognormal).
    """
    d = DATASETS[name]
    d.prompt.validate(f"{name} prompt lengths")
    d.output.validate(f"{name} output lengths")
    laws = [d.prompt, d.output]
    for _ in range(20):
        rng = np.random.default_rng(0)
        p = _draw(laws[0], 0.0, 0.0, rng, 2 * DATASET_DRAWS)
        o = _draw(laws[1], 0.0, 0.0, rng, 2 * DATASET_DRAWS)
        keep = p + o <= d.max_total_tokens
        p, o = p[keep][:DATASET_DRAWS], o[keep][:DATASET_DRAWS]
        off = [
            (i, target.mean / float(arr.mean()))
            for i, (target, arr) in enumerate(((d.prompt, p), (d.output, o)))
            if target.kind == "maxent" and target.mean is not None
        ]
        off = [(i, r) for i, r in off if abs(r - 1.0) > 1e-3]
        if not off:
            break
        for i, ratio in off:
            law = laws[i]
            assert law.mean is not None
            laws[i] = replace(law, mean=min(max(law.mean * ratio, law.low + 1.0), law.high - 1.0))
    for a in (p, o):
        a.setflags(write=False)
    return LengthSamples(name, p, o, d.source)


def dataset_samples(
    ref: str, *, allow_files: bool = True, output_len: int | None = None
) -> LengthSamples:
    """Request lengths of a named dataset or (when ``allow_files``) a lengths file.

    ``output_len`` fixes every output length, as vLLM's --sharegpt-output-len / --sonnet-output-len do.
    The service passes ``allow_files=False``: a request must never make it read a file on the server.
    """
    key = ref.strip().lower()
    if key in DATASETS:
        got = _preset_samples(key)
    elif allow_files and Path(ref).suffix.lower() in LENGTH_FILE_SUFFIXES:
        prompt, output = _read_samples(ref)
        got = LengthSamples(Path(ref).name, prompt, output, f"file {ref}")
    else:
        files = ", or a .csv/.jsonl/.json lengths file" if allow_files else ""
        raise InputError(f"unknown --dataset {ref!r}; use {', '.join(DATASETS)}{files}.")
    if output_len is not None:
        got = replace(got, output_len=np.full_like(got.prompt_len, output_len))
    return got


def length_mix(ref: str, *, allow_files: bool = True, output_len: int | None = None) -> LengthMix:
    """The :class:`vramplan.perf.LengthMix` of a dataset (``vramplan perf --dataset``), with its name,
    source and mean/p50/p99 lengths for the output."""
    from vramplan.perf import LengthMix

    got = dataset_samples(ref, allow_files=allow_files, output_len=output_len)
    info = {"name": got.name, "requests": int(got.prompt_len.shape[0]), **got.stats()}
    if output_len is not None:
        info["output_len_fixed"] = output_len
    info["source"] = got.source
    return LengthMix.from_samples(got.prompt_len, got.output_len, info)


def preset_workload(name: str, **overrides: object) -> WorkloadConfig:
    """A WorkloadConfig with the length distributions of a named dataset preset."""
    key = name.lower()
    if key not in PRESETS:
        raise InputError(
            f"unknown workload preset {name!r}; choose one of {', '.join(sorted(PRESETS))}."
        )
    prompt, output = PRESETS[key]
    return replace(WorkloadConfig(prompt=prompt, output=output), **overrides)  # type: ignore[arg-type]


def _arrivals(cfg: WorkloadConfig, rng: np.random.Generator) -> np.ndarray:
    mean_gap = 1.0 / cfg.rate
    count = cfg.num_requests or int(cfg.rate * cfg.duration_s * 1.3 + 50 * cfg.cv + 20)  # type: ignore[operator]
    while True:
        if cfg.arrival == "poisson":
            gaps = rng.exponential(mean_gap, size=count)
        else:  # gamma with the requested coefficient of variation: shape = 1/cv^2
            shape = 1.0 / (cfg.cv * cfg.cv)
            gaps = rng.gamma(shape, mean_gap / shape, size=count)
        times = np.cumsum(gaps)
        times -= times[0]  # first request at t = 0
        if cfg.num_requests is not None:
            return times
        assert cfg.duration_s is not None  # WorkloadConfig requires one of num_requests, duration_s
        if times[-1] >= cfg.duration_s:
            return times[times < cfg.duration_s]
        count *= 2


@lru_cache(maxsize=64)
def maxent_rate(low: float, high: float, mean: float) -> float:
    """Rate λ of the exponential truncated to [low, high] whose mean is ``mean`` (λ < 0 above mid-range).

    Mean of the truncated exponential: low + 1/λ - w / (e^{λw} - 1) with w = high - low, monotone
    decreasing in λ; solved by bisection on λw in [-700, 700] (the exponent stays finite).
    """
    w = high - low
    target = (mean - low) / w  # in (0, 1)

    def share(x: float) -> float:  # (mean - low) / w at λw = x
        return 0.5 if abs(x) < 1e-9 else 1.0 / x - 1.0 / math.expm1(x)

    lo, hi = -700.0, 700.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if share(mid) > target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) / w


def _maxent_draw(dist: LengthDist, rng: np.random.Generator, size: int) -> np.ndarray:
    """Inverse-CDF draws of the truncated exponential, rounded to whole tokens inside [low, high].

    The continuous law lives on [low - 0.5, high + 0.5] so that rounding keeps the mean.
    """
    assert dist.mean is not None  # validate() requires it
    a, b = dist.low - 0.5, dist.high + 0.5
    lam = maxent_rate(a, b, float(dist.mean))
    u = rng.random(size)
    w = b - a
    if abs(lam * w) < 1e-9:
        x = a + u * w
    else:  # F^-1(u) = a - log(1 - u (1 - e^{-λw})) / λ
        x = a - np.log1p(u * math.expm1(-lam * w)) / lam
    return np.clip(np.rint(x), dist.low, dist.high).astype(np.int64)


def _draw(
    dist: LengthDist, mu: float, sigma: float, rng: np.random.Generator, size: int
) -> np.ndarray:
    if dist.kind == "fixed":
        return np.full(size, dist.value, dtype=np.int64)
    if dist.kind == "uniform":
        return rng.integers(dist.low, dist.high + 1, size=size, dtype=np.int64)
    if dist.kind == "maxent":
        return _maxent_draw(dist, rng, size)
    return np.maximum(1, np.rint(rng.lognormal(mu, sigma, size=size))).astype(np.int64)


@lru_cache(maxsize=64)
def _fitted_locations(prompt: LengthDist, output: LengthDist, cap: int) -> tuple[float, float]:
    """Shift lognormal locations so the means after dropping pairs over the cap hit the targets.

    Why: the paper's means are of the filtered dataset; fitting before the cap would undershoot them.
    A fixed quasi-sample (seed 12345) keeps the fit deterministic and cheap.
    """
    mus = [d.lognormal_params()[0] if d.kind == "lognormal" else 0.0 for d in (prompt, output)]
    sig = [d.lognormal_params()[1] if d.kind == "lognormal" else 0.0 for d in (prompt, output)]
    for _ in range(30):
        rng = np.random.default_rng(12345)
        p = _draw(prompt, mus[0], sig[0], rng, 200_000)
        o = _draw(output, mus[1], sig[1], rng, 200_000)
        keep = p + o <= cap
        done = True
        for i, (d, arr) in enumerate(((prompt, p), (output, o))):
            if d.kind == "lognormal" and d.mean is not None and keep.any():
                got = float(arr[keep].mean())
                if abs(got / d.mean - 1.0) > 1e-3:
                    done = False
                    mus[i] += math.log(d.mean / got)
        if done:
            break
    return mus[0], mus[1]


_PROMPT_KEYS = ("prompt_len", "input_len")
_FORMAT_HELP = (
    "each row needs whole-number prompt_len (or input_len) and output_len: a CSV header, JSONL keys, "
    "or a .json array of such objects or of ShareGPT conversations"
)


def _length(value: object, label: str, n: int, path: str) -> int:
    """One length: a whole number of tokens in 1..MAX_CONTEXT (InputError naming the row otherwise).

    The common cases (an int, or a short ASCII digit string) take two checks: files run to millions.
    """
    if type(value) is str and len(value) <= 12 and value.isascii():
        text = value.strip()
        value = int(text) if text.isdigit() else value
    if type(value) is not int:
        raise InputError(f"{path}: {label} {n} has length {str(value)[:20]!r}; {_FORMAT_HELP}.")
    if 0 < value <= MAX_CONTEXT:
        return value
    raise InputError(
        f"{path}: {label} {n} has length {value}, outside 1..{MAX_CONTEXT:,} tokens; "
        "fix or drop the row."
    )


def _row_lengths(row: object, label: str, n: int, path: str) -> tuple[int, int]:
    if not isinstance(row, dict):
        raise InputError(f"{path}: {label} {n} is not an object; {_FORMAT_HELP}.")
    key = "prompt_len" if "prompt_len" in row else "input_len"
    if key not in row or "output_len" not in row:
        raise InputError(f"{path}: {label} {n} lacks prompt_len or output_len; {_FORMAT_HELP}.")
    return _length(row[key], label, n, path), _length(row["output_len"], label, n, path)


def _conversation_lengths(entry: dict[str, object]) -> tuple[int, int] | None:
    """(prompt, output) tokens of a ShareGPT entry as benchmark_serving takes it, or None if it skips it.

    The first turn is the prompt, the second the output; tokens ~ characters / CHARS_PER_TOKEN.
    """
    turns = entry.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        return None
    texts = [t.get("value") if isinstance(t, dict) else None for t in turns[:2]]
    if not all(isinstance(t, str) for t in texts):
        return None
    p, o = (-(-len(t) // CHARS_PER_TOKEN) for t in texts)  # type: ignore[arg-type]
    ok = (
        min(p, o) >= SHAREGPT_MIN_TOKENS
        and p <= SHAREGPT_MAX_PROMPT_TOKENS
        and p + o <= SHAREGPT_MAX_TOTAL_TOKENS
    )
    return (p, o) if ok else None


def _read_rows(p: Path, path: str) -> list[tuple[int, int]]:
    """Rows of a lengths file in one linear pass (each line or element read once)."""
    suffix = p.suffix.lower()
    rows: list[tuple[int, int]] = []
    too_many = InputError(
        f"{path} has more than {MAX_LENGTH_ROWS:,} rows; sample it down (a benchmark uses ~1,000)."
    )
    if suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise InputError(f"{path}: a .json lengths file is an array; {_FORMAT_HELP}.")
        for n, entry in enumerate(data, 1):
            if isinstance(entry, dict) and "conversations" in entry:
                pair = _conversation_lengths(entry)
                if pair is None:
                    continue
            else:
                pair = _row_lengths(entry, "element", n, path)
            if len(rows) >= MAX_LENGTH_ROWS:
                raise too_many
            rows.append(pair)
    elif suffix in (".jsonl", ".ndjson"):
        with p.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    if len(rows) >= MAX_LENGTH_ROWS:
                        raise too_many
                    rows.append(_row_lengths(json.loads(line), "line", n, path))
    else:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                return rows  # an empty file
            key = next((k for k in _PROMPT_KEYS if k in header), None)
            if key is None or "output_len" not in header:
                raise InputError(f"{path}: line 1 lacks prompt_len or output_len; {_FORMAT_HELP}.")
            i, o = header.index(key), header.index("output_len")
            for n, row in enumerate(reader, 2):
                if len(rows) >= MAX_LENGTH_ROWS:
                    raise too_many
                if len(row) <= max(i, o):
                    if not row:
                        continue  # a blank line
                    raise InputError(f"{path}: line {n} has too few columns; {_FORMAT_HELP}.")
                rows.append((_length(row[i], "line", n, path), _length(row[o], "line", n, path)))
    return rows


def _read_samples(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(prompt, output) lengths from a CSV, JSONL or JSON file, bounded in bytes and rows."""
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"lengths file {path!r} does not exist; give a .csv/.jsonl with prompt_len,output_len "
            "or a ShareGPT .json."
        )
    size = p.stat().st_size
    if size > MAX_LENGTH_FILE_BYTES:
        raise InputError(
            f"{path} is {size / 2**20:,.0f} MiB; lengths files are read up to "
            f"{MAX_LENGTH_FILE_BYTES / 2**20:,.0f} MiB: keep only the rows you need."
        )
    try:
        rows = _read_rows(p, path)
    except InputError:
        raise
    except (ValueError, csv.Error, RecursionError) as exc:  # JSON, UTF-8 and digit-limit errors
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {path} ({reason}); {_FORMAT_HELP}.") from exc
    if not rows:
        raise InputError(f"{path} has no usable rows; {_FORMAT_HELP}.")
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


def make_trace(cfg: WorkloadConfig) -> Trace:
    """Build the request trace; same config (seed included) gives the same trace."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    arrival = _arrivals(cfg, rng)
    size = arrival.shape[0]
    sys_len = cfg.system_prompt_len
    if cfg.samples_path is not None:
        sp, so = _read_samples(cfg.samples_path)
        idx = rng.integers(0, sp.shape[0], size=size)
        prompt, output = sp[idx], so[idx]
    else:
        mu_p, mu_o = _fitted_locations(cfg.prompt, cfg.output, cfg.max_len - sys_len)
        sig_p = cfg.prompt.lognormal_params()[1] if cfg.prompt.kind == "lognormal" else 0.0
        sig_o = cfg.output.lognormal_params()[1] if cfg.output.kind == "lognormal" else 0.0
        prompt = np.empty(0, dtype=np.int64)
        output = np.empty(0, dtype=np.int64)
        for _ in range(50):  # rejection sampling of pairs over the context cap
            need = size - prompt.shape[0]
            if need <= 0:
                break
            p = _draw(cfg.prompt, mu_p, sig_p, rng, 2 * need + 16)
            o = _draw(cfg.output, mu_o, sig_o, rng, 2 * need + 16)
            keep = p + o + sys_len <= cfg.max_len
            prompt = np.concatenate([prompt, p[keep]])[:size]
            output = np.concatenate([output, o[keep]])[:size]
        if prompt.shape[0] < size:
            raise InputError(
                f"almost no (prompt, output) pairs fit max_len={cfg.max_len}; shorten the lengths "
                "or raise max_len."
            )
    has_sys = (rng.random(size) < cfg.system_prompt_share) & (sys_len > 0)
    prefix_id = np.where(has_sys, rng.integers(0, cfg.num_system_prompts, size=size), -1)
    prefix_len = np.where(has_sys, sys_len, 0).astype(np.int64)
    return Trace(
        arrival_s=arrival.astype(np.float64),
        prompt_len=(prompt + prefix_len).astype(np.int64),
        output_len=output.astype(np.int64),
        prefix_id=prefix_id.astype(np.int64),
        prefix_len=prefix_len,
        n=cfg.n,
        beam_width=cfg.beam_width,
    )
