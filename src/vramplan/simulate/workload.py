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

import numpy as np

from vramplan.errors import InputError

_Z99 = 2.3263478740408408  # standard normal 99th percentile


@dataclass(frozen=True)
class LengthDist:
    """A token-length distribution.

    kind: ``fixed`` (value), ``uniform`` (low..high inclusive), ``lognormal`` (mean with p50, or p50 with
    p99; when ``mean`` is given the location is refitted so the mean *after* the context cap matches it).
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
        else:
            raise InputError(
                f"{what}: unknown length distribution {self.kind!r}; use fixed, uniform or lognormal."
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


def _draw(
    dist: LengthDist, mu: float, sigma: float, rng: np.random.Generator, size: int
) -> np.ndarray:
    if dist.kind == "fixed":
        return np.full(size, dist.value, dtype=np.int64)
    if dist.kind == "uniform":
        return rng.integers(dist.low, dist.high + 1, size=size, dtype=np.int64)
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


def _read_samples(path: str) -> tuple[np.ndarray, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"length samples file {path!r} does not exist; give a CSV or JSONL path.")
    rows: list[tuple[int, int]] = []
    try:
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            for line in p.read_text().splitlines():
                if line.strip():
                    obj = json.loads(line)
                    rows.append((int(obj["prompt_len"]), int(obj["output_len"])))
        else:
            with p.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    rows.append((int(row["prompt_len"]), int(row["output_len"])))
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"cannot read length samples from {path!r} ({exc}); each row needs integer "
            "prompt_len and output_len (CSV header or JSONL keys)."
        ) from exc
    rows = [r for r in rows if r[0] >= 1 and r[1] >= 1]
    if not rows:
        raise InputError(
            f"length samples file {path!r} has no rows with prompt_len, output_len >= 1."
        )
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
