"""Continuous-batching scheduler: one loop iteration per engine step, FCFS, preemption.

Speed: a decoding sequence's length is implied by a global decode counter (``L = L0 + D - D0``), so a
step costs O(1) plus the events due at it: a sequence needing a new block (once per block, found in a
dict keyed by decode step), a request finishing, an arrival. Every quantity the metrics need is an
aggregate kept up to date at those events.

Policies follow vLLM V0 (``engine-memory.md`` 1.11, paper 4.5): swapped groups resume before waiting
ones, and nothing new is admitted while any are swapped; the newest running request is preempted
first, all of its sequences together (gang scheduling); ``auto`` preemption recomputes single-sequence
requests and swaps multi-sequence ones. Without chunked prefill an iteration is prefill-only when it
admits requests (V0); with it, decodes go first and prompt chunks fill the token budget (V1).

``engine_mode="v1"`` switches to vLLM V1 (``engine-memory.md`` 1.10-1.11): recompute-only preemption,
chunked prefill on unless set, and parallel sampling fanned out into n child requests that share only
the full prompt blocks through the prefix cache (the partial last block is duplicated per child; with
prefix caching off nothing is shared). Allocators with ``fans_out`` (TGI) always fan out. Beam search
keeps the V0 fork model in both modes.

With prefix caching on, a request's own full blocks are keyed by content: its prompt blocks at
admission, its generated blocks when it is preempted by recompute; re-admission re-hits whatever was
not evicted and prefills only the rest (the last token is always recomputed). Prefill work per step is
the tokens actually computed; the step time gets their causal-attention size (``prefill_sq``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vramplan.errors import InputError
from vramplan.simulate.allocators import Allocator, SwapHandle
from vramplan.simulate.steptime import PerfStepTimer, StepTimer
from vramplan.simulate.workload import Trace

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class SchedulerConfig:
    """Engine scheduling knobs (vLLM names).

    watermark: share of the pool an admission must leave free when memory grows on demand (paged,
        radix), so running sequences can grow a while before someone is preempted (vLLM V0: 1 %).
    stop_after_s / warmup_s: end the replay at that simulated time instead of draining the queue /
        leave the first seconds (empty pool filling up) out of the time averages; both serve short runs.
    beam_fork_prob: per decode step, the chance that a beam is dropped and replaced by a copy of another
        beam (its best continuations lost to another beam's). It sets how far back beams share a common
        prefix; 0.1 makes beams coalesce ~10-30 tokens back, typical of beam search on chat/instruction
        outputs. It is a model assumption, not a measurement (see benchmarks/results/simulate.md).
    """

    max_num_batched_tokens: int = 2048
    max_num_seqs: int = 256
    chunked_prefill: bool | None = None  # None: the engine mode's default (V0 off, V1 on)
    preemption: str = "auto"
    swap_space_bytes: float = 4 * 2**30
    beam_fork_prob: float = 0.1
    watermark: float = 0.01
    stop_after_s: float | None = None
    warmup_s: float = 0.0
    sample_points: int = 200
    seed: int = 0
    engine_mode: str = "v0"

    @property
    def chunked(self) -> bool:
        return (
            self.chunked_prefill if self.chunked_prefill is not None else self.engine_mode == "v1"
        )

    def validate(self) -> None:
        if self.max_num_batched_tokens < 1 or self.max_num_seqs < 1:
            raise InputError("max_num_batched_tokens and max_num_seqs must be >= 1.")
        if self.preemption not in ("recompute", "swap", "auto"):
            raise InputError(
                f"unknown preemption mode {self.preemption!r}; use recompute, swap or auto."
            )
        if self.swap_space_bytes < 0:
            raise InputError(f"swap_space_bytes must be >= 0, got {self.swap_space_bytes}.")
        if not 0.0 <= self.watermark < 1.0:
            raise InputError(f"watermark must be in [0, 1), got {self.watermark}.")
        if not 0.0 <= self.beam_fork_prob <= 1.0:
            raise InputError(f"beam_fork_prob must be in [0, 1], got {self.beam_fork_prob}.")
        if self.sample_points < 1:
            raise InputError("sample_points must be >= 1.")
        if self.engine_mode not in ("v0", "v1"):
            raise InputError(f"unknown engine mode {self.engine_mode!r}; use v0 or v1.")
        if self.engine_mode == "v1" and self.preemption == "swap":
            raise InputError(
                "vLLM V1 preempts by recompute only; use preemption recompute or auto with engine mode v1."
            )


class _Group:
    """One request: its sequences (n samples or beams) share one length and are scheduled together."""

    __slots__ = (
        "D0",
        "L0",
        "arrival",
        "beam",
        "epoch",
        "final",
        "first_token",
        "generated",
        "keys",
        "n",
        "output",
        "pi",
        "pieces",
        "prefill_left",
        "prefix",
        "prompt",
        "rid",
        "saved_len",
        "state",
    )

    def __init__(
        self,
        rid: int,
        arrival: float,
        prompt: int,
        output: int,
        n: int,
        beam: bool,
        prefix: tuple[int, int] | None,
    ) -> None:
        self.rid = rid
        self.arrival = arrival
        self.prompt = prompt
        self.output = output
        self.final = prompt + output
        self.n = n
        self.beam = beam
        self.keys = [rid * 64 + j for j in range(n)]
        self.generated = 0
        self.L0 = 0
        self.D0 = 0
        self.epoch = 0
        self.state = "waiting"
        self.prefill_left = 0
        self.pieces: list[
            list[int]
        ] = []  # per computed sequence: [tokens cached before, tokens to compute]
        self.pi = 0
        self.first_token: float | None = None
        self.prefix = prefix
        self.saved_len = 0


@dataclass
class RawRun:
    """Integrals and per-request records collected by one simulation."""

    capacity: int
    busy_s: float = 0.0
    end_s: float = 0.0
    token: float = 0.0
    reserved: float = 0.0
    internal: float = 0.0
    external: float = 0.0
    free: float = 0.0
    batch: float = 0.0
    logical: float = 0.0
    shared: float = 0.0
    iterations: int = 0
    arrivals: int = 0
    completed: int = 0
    rejected: int = 0
    preemptions: int = 0
    swapped_bytes: float = 0.0
    generated_tokens: int = 0
    prefill_tokens: int = 0
    prefix_hit_tokens: int = 0
    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)


class Simulator:
    """Replays a trace through one allocator; ``run()`` returns the raw integrals."""

    def __init__(
        self,
        trace: Trace,
        alloc: Allocator,
        timer: StepTimer | PerfStepTimer,
        cfg: SchedulerConfig,
        kv_bytes_per_token: float,
        max_len: int,
        progress: ProgressFn | None = None,
    ) -> None:
        cfg.validate()
        if trace.n * trace.beam_width > 64:
            raise InputError("n x beam_width above 64 sequences per request is not supported.")
        self.trace = trace
        self.alloc = alloc
        self.timer = timer
        self.cfg = cfg
        self.kvb = kv_bytes_per_token
        self.max_len = max_len
        self.progress = progress
        self.rng = np.random.default_rng(cfg.seed)
        self.waiting: deque[_Group] = deque()
        self.swapped: deque[tuple[_Group, SwapHandle]] = deque()
        self.running: dict[int, _Group] = {}
        self.prefilling: list[_Group] = []
        self.beams: dict[int, _Group] = {}
        self.need_at: dict[int, list[tuple[_Group, int]]] = {}
        self.finish_at: dict[int, list[tuple[_Group, int]]] = {}
        self.v1 = cfg.engine_mode == "v1"
        self.fan_out = self.v1 or alloc.fans_out
        self.chunked = cfg.chunked
        self.D = 0
        self.n_dec = 0
        self.dec_ctx = 0  # tokens held by decoding sequences (what a decode step attends to)
        self.seqs = 0
        self.logical = 0
        self.cpu_used = 0.0
        self.swap_s = 0.0
        self.now = 0.0
        self.out = RawRun(capacity=alloc.capacity)

    # -- events -----------------------------------------------------------------------------------
    def _arrive(self, i: int) -> None:
        t = self.trace
        prompt, output = int(t.prompt_len[i]), int(t.output_len[i])
        n = max(t.n, t.beam_width)
        pid = int(t.prefix_id[i])
        g = _Group(
            i,
            float(t.arrival_s[i]),
            prompt,
            output,
            n,
            t.beam_width > 1,
            (pid, int(t.prefix_len[i])) if pid >= 0 else None,
        )
        self.out.arrivals += 1
        too_long_prefill = not self.chunked and prompt + output > self.cfg.max_num_batched_tokens
        if (
            g.final > self.max_len
            or n > self.cfg.max_num_seqs
            or too_long_prefill
            or not self.alloc.fits_ever(g.final, prompt, n)
        ):
            self.out.rejected += (
                1  # could never run: longer than the context, the budget or the pool
            )
            return
        self.waiting.append(g)

    def _length(self, g: _Group) -> int:
        return g.L0 + self.D - g.D0

    def _register(self, g: _Group, d: int, length: int) -> None:
        cap = self.alloc.capacity_of(g.keys[0])
        if cap < g.final:
            self.need_at.setdefault(d + cap - length + 1, []).append((g, g.epoch))

    def _allocate(self, g: _Group) -> bool:
        """Prompt (+ tokens already generated, for a recomputed request) and the next token's slot.

        Sets ``g.pieces``: per sequence computed in prefill, the tokens found cached and those to compute.
        """
        a = self.alloc
        ptok = g.prompt + g.generated
        if a.grows_on_demand and self.cfg.watermark > 0:
            left = a.free_slots + a.cached_slots - g.n * (ptok + 1)
            if left < self.cfg.watermark * a.capacity:
                return False
        req = ("r", g.rid)
        done: list[int] = []
        pieces: list[list[int]] = []
        ok = True
        if self.fan_out and not g.beam:  # n independent requests (V1 / TGI)
            for k in g.keys:
                if not a.admit(k, ptok, g.final, g.prompt, g.prefix, (req, ("s", k), g.n > 1)):
                    ok = False
                    break
                done.append(k)
                pieces.append([a.last_hit_tokens, ptok - a.last_hit_tokens])
        else:
            first = g.keys[0]
            if not a.admit(first, ptok, g.final, g.prompt, g.prefix, (req, ("s", first), False)):
                return False
            done.append(first)
            pieces.append([a.last_hit_tokens, ptok - a.last_hit_tokens])
            for k in g.keys[1:]:
                if not a.fork(first, k, ptok):
                    ok = False
                    break
                done.append(k)
        if ok:
            for k in done:
                if not a.extend(k, ptok + 1):
                    ok = False
                    break
        if not ok:
            for k in done:
                a.free(k)
            return False
        g.pieces = pieces
        g.pi = 0
        g.prefill_left = sum(c for _, c in pieces)
        self.out.prefill_tokens += g.prefill_left
        self.out.prefix_hit_tokens += sum(o for o, _ in pieces)
        return True

    def _consume(self, g: _Group, budget: int) -> tuple[int, float]:
        """Take up to ``budget`` prompt tokens of ``g``: (tokens, their sum of c x (2 x offset + c))."""
        took, sq = 0, 0.0
        pieces = g.pieces
        while budget > 0 and g.pi < len(pieces):
            o, c = pieces[g.pi]
            t = min(c, budget)
            sq += t * (2 * o + t)
            took += t
            budget -= t
            if t == c:
                g.pi += 1
            else:
                pieces[g.pi] = [o + t, c - t]
        g.prefill_left -= took
        return took, sq

    def _preempt(self, g: _Group) -> None:
        out = self.out
        out.preemptions += 1
        del self.running[g.rid]
        self.seqs -= g.n
        g.epoch += 1
        if g.state == "decode":
            length = self._length(g)
            self.n_dec -= g.n
            self.dec_ctx -= g.n * length
            self.beams.pop(g.rid, None)
        else:  # still in (chunked) prefill
            length = g.prompt + g.generated + 1
            if g in self.prefilling:
                self.prefilling.remove(g)
        self.logical -= g.n * length
        mode = "recompute" if self.v1 else self.cfg.preemption
        swap = g.state == "decode" and (mode == "swap" or (mode == "auto" and g.n > 1))
        if swap:
            handle = self.alloc.swap_out(g.keys)
            nbytes = handle.slots * self.kvb
            if self.cpu_used + nbytes <= self.cfg.swap_space_bytes:
                self.cpu_used += nbytes
                out.swapped_bytes += nbytes
                self.swap_s += self.timer.swap(nbytes)
                g.saved_len = length
                g.state = "swapped"
                self.swapped.append((g, handle))
                return
            # no CPU room: fall back to recomputation (the GPU blocks are already released)
        else:
            if g.state == "decode" and not g.beam:
                # keep the computed full blocks findable (prefix caching), to be re-hit on re-admission
                for k in g.keys if self.fan_out else g.keys[:1]:
                    self.alloc.cache_blocks(k, length - 1)
            for k in g.keys:
                self.alloc.free(k)
        if g.state == "decode":
            g.generated = length - g.prompt
        g.state = "waiting"
        self.waiting.appendleft(g)

    def _grow(self, g: _Group, d1: int) -> None:
        """Give every sequence of ``g`` the slot for its next token, preempting newest-first.

        All sequences grow together or none does: growing them one by one and preempting ``g`` itself
        half-way left its sequences with different capacities, and ``_register`` (which reads the first
        sequence's) then let the others write past their capacity after a swap-in.
        """
        length = g.L0 + d1 - g.D0
        while not self.alloc.extend_group(g.keys, length):
            victim = self.running[next(reversed(self.running))]
            self._preempt(victim)
            if victim is g:
                return
        self._register(g, d1, length)

    def _reselect_beams(self) -> None:
        q = self.cfg.beam_fork_prob
        if q <= 0:
            return
        for g in list(self.beams.values()):
            k = g.n
            draws = self.rng.random(k)
            if not (draws < q).any():
                continue
            length = self._length(g)
            for j in np.nonzero(draws < q)[0]:
                src = int(self.rng.integers(k - 1))
                src += int(src >= j)
                self.alloc.refork(g.keys[j], g.keys[src], length)

    def _finish(self, g: _Group) -> None:
        out = self.out
        for k in g.keys:
            self.alloc.free(k)
        self.logical -= g.n * g.final
        if g.state == "decode":
            self.n_dec -= g.n
            self.dec_ctx -= g.n * g.final
            self.beams.pop(g.rid, None)
        del self.running[g.rid]
        self.seqs -= g.n
        g.state = "done"
        out.completed += 1
        out.generated_tokens += g.n * g.output
        first = g.first_token if g.first_token is not None else self.now
        out.ttft.append(first - g.arrival)
        out.latency.append(self.now - g.arrival)
        if g.output > 1:
            out.tpot.append((self.now - first) / (g.output - 1))

    # -- main loop --------------------------------------------------------------------------------
    def run(self) -> RawRun:
        cfg, alloc, out, timer = self.cfg, self.alloc, self.out, self.timer
        arr = self.trace.arrival_s
        total = len(self.trace)
        ai = 0
        span = float(arr[-1]) if total else 0.0
        sample_dt = max(span, 1.0) / cfg.sample_points
        next_sample = 0.0
        series: dict[str, list[float]] = {
            k: [] for k in ("time_s", "token", "reserved", "internal", "external", "free", "batch")
        }
        out.series = series
        chunked = self.chunked
        max_tok = cfg.max_num_batched_tokens
        while True:
            while ai < total and arr[ai] <= self.now:
                self._arrive(ai)
                ai += 1
            if not self.running and not self.waiting and not self.swapped:
                if ai >= total:
                    break
                self.now = max(self.now, float(arr[ai]))
                continue
            if cfg.stop_after_s is not None and self.now >= cfg.stop_after_s:
                break
            blocked = False
            # 1. swapped groups come back first
            while self.swapped:
                g, handle = self.swapped[0]
                if self.seqs + g.n > cfg.max_num_seqs:
                    break
                if not alloc.swap_in(g.keys, handle):
                    blocked = True
                    break
                self.swapped.popleft()
                nbytes = handle.slots * self.kvb
                self.cpu_used -= nbytes
                self.swap_s += timer.swap(nbytes)
                g.state = "decode"
                g.L0, g.D0 = g.saved_len, self.D
                self.running[g.rid] = g
                self.seqs += g.n
                self.n_dec += g.n
                self.dec_ctx += g.n * g.saved_len
                self.logical += g.n * g.saved_len
                if g.beam:
                    self.beams[g.rid] = g
                self._register(g, self.D, g.saved_len)
                self.finish_at.setdefault(self.D + g.final - g.saved_len, []).append((g, g.epoch))
            # 2. admissions, FCFS, only when nothing is swapped out
            admitted: list[_Group] = []
            admitted_tokens = 0
            if not self.swapped:
                budget = max_tok - self.n_dec if chunked else max_tok
                while self.waiting:
                    g = self.waiting[0]
                    ptok = g.prompt + g.generated
                    if self.seqs + g.n > cfg.max_num_seqs:
                        break
                    if chunked:
                        if budget - admitted_tokens <= 0:
                            break
                    elif admitted and admitted_tokens + ptok > max_tok:
                        break
                    if not self._allocate(g):
                        blocked = True
                        break
                    self.waiting.popleft()
                    self.running[g.rid] = g
                    self.seqs += g.n
                    self.logical += g.n * (ptok + 1)
                    g.state = "prefill"
                    admitted.append(g)
                    admitted_tokens += g.prefill_left
                    self.prefilling.append(g)
            # 3. the batch of this iteration
            prefill_tokens = 0
            prefill_sq = 0.0
            done_prefill: list[_Group] = []
            if chunked:
                budget = max_tok - self.n_dec
                for g in self.prefilling:
                    if budget <= 0:
                        break
                    take, sq = self._consume(g, budget)
                    budget -= take
                    prefill_tokens += take
                    prefill_sq += sq
                    if g.prefill_left == 0:
                        done_prefill.append(g)
                decode = self.n_dec > 0
            else:
                decode = not admitted and self.n_dec > 0
                if admitted:
                    for g in admitted:
                        take, sq = self._consume(g, 1 << 62)
                        prefill_tokens += take
                        prefill_sq += sq
                    done_prefill = admitted
            for g in done_prefill:
                self.prefilling.remove(g)
            d1 = self.D + 1
            ctx = 0
            if decode:
                for g, ep in self.need_at.pop(d1, ()):
                    if ep == g.epoch and g.state == "decode":
                        self._grow(g, d1)
                if self.beams:
                    self._reselect_beams()
                ctx = self.dec_ctx
                self.logical += self.n_dec
                self.dec_ctx += self.n_dec
                self.D = d1
            decoded = self.n_dec if decode else 0
            if decoded == 0 and prefill_tokens == 0 and not done_prefill:
                if not self.running and blocked and self.waiting and not self.swapped:
                    self.waiting.popleft()  # cannot fit even an empty pool (e.g. buddy layout)
                    out.rejected += 1
                elif not self.running and ai < total and not blocked:
                    self.now = max(self.now, float(arr[ai]))
                continue
            dt = timer.step(prefill_tokens, decoded, ctx, prefill_sq) + self.swap_s
            self.swap_s = 0.0
            # 4. memory accounting over this iteration
            if self.now < cfg.warmup_s:
                self.now += dt
                out.iterations += 1
                self._after_step(done_prefill, decode, total)
                continue
            shared = alloc.shared_slots
            token = self.logical - shared
            internal = alloc.internal_slots
            reserved = alloc.owned_slots - token - internal
            free = alloc.free_slots
            free += alloc.cached_slots  # reclaimable prefix-cache blocks are free for admission
            ext = alloc.slack_slots + (free if blocked else 0)
            freed = 0 if blocked else free
            out.token += token * dt
            out.reserved += reserved * dt
            out.internal += internal * dt
            out.external += ext * dt
            out.free += freed * dt
            out.batch += len(self.running) * dt
            out.logical += alloc.logical_slots * dt
            out.shared += shared * dt
            out.busy_s += dt
            out.iterations += 1
            self.now += dt
            if self.now >= next_sample:
                next_sample = self.now + sample_dt
                for key, val in (
                    ("time_s", self.now),
                    ("token", token),
                    ("reserved", reserved),
                    ("internal", internal),
                    ("external", ext),
                    ("free", freed),
                    ("batch", len(self.running)),
                ):
                    series[key].append(float(val))
            self._after_step(done_prefill, decode, total)
        out.end_s = self.now
        if self.progress is not None:
            self.progress(out.completed + out.rejected, total)
        return out

    def _after_step(self, done_prefill: list[_Group], decode: bool, total: int) -> None:
        """Results of the iteration: first tokens, finished requests."""
        out = self.out
        for g in done_prefill:
            if g.state != "prefill":  # preempted by a decode in this same iteration
                continue
            if g.first_token is None:
                g.first_token = self.now
            g.generated += 1
            if g.generated >= g.output:
                self._finish(g)
                continue
            g.state = "decode"
            g.L0, g.D0 = g.prompt + g.generated, self.D
            self.n_dec += g.n
            self.dec_ctx += g.n * g.L0
            if g.beam:
                self.beams[g.rid] = g
            self._register(g, self.D, g.L0)
            self.finish_at.setdefault(self.D + g.final - g.L0, []).append((g, g.epoch))
        if decode:
            for g, ep in self.finish_at.pop(self.D, ()):
                if ep == g.epoch and g.state == "decode":
                    self._finish(g)
        if self.progress is not None and out.iterations % 4096 == 0:
            self.progress(out.completed + out.rejected, total)
