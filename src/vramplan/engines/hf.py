"""transformers ``generate()`` memory: weights + the cache transformers builds + the prefill peak.

Why its own model: ``generate()`` has no paging, no memory fraction and no sharing. The cache layout is
transformers' own (``cache_utils.py``), which differs from the serving engines' view in the core's
``kv_cache_bytes``:

* DynamicCache grows by concatenation: after ``N`` new tokens from a (left-padded) prompt of ``P``
  tokens each full layer holds ``P + N - 1`` positions (the last sampled token is never fed back);
  sliding layers (``DynamicSlidingWindowLayer``) keep ``window - 1``; each append briefly holds the old
  copy of one layer too.
* StaticCache pre-allocates ``max_batch_size x max_cache_len`` (sliding layers ``min(window, len)``);
  ``generate()`` picks ``max_cache_len = P + N - 1`` (measured on 5.24).
* DeepSeek-V2/V3 (MLA): transformers 5.x caches the latent — "keys" ``[b, 1, S, kv_lora_rank]`` and
  "values" ``[b, 1, S, qk_rope_head_dim]`` (measured on 5.24) — the same bytes as vLLM's latent cache;
  transformers 4.x cached expanded per-head K ``[b, H, S, nope + rope]`` and V ``[b, H, S, v_head_dim]``,
  ``H x (nope + rope + v) / (kv_lora_rank + rope)`` times more (about 70x for DeepSeek-V3).
* Beams multiply the batch.
* Hybrid / state-space models (Mamba1/2, gated DeltaNet, KDA, short conv, lightning attention): only the
  attention layers hold K/V; every recurrent layer keeps per batch row a conv state of the whole kernel
  window in the model dtype and a recurrent state in float32 (lightning: the model dtype), fixed in size
  (``LinearAttentionLayer`` in ``cache_utils.py``; measured on 5.24).
Activation peak of the prefill depends on the attention implementation (design note 3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from vramplan.engines.base import GIB, EnginePrediction, KVPool, VersionTable
from vramplan.engines.sglang import pick_gpu
from vramplan.errors import InputError
from vramplan.hardware import GPU
from vramplan.memory.overhead import CUDA_CONTEXT_BYTES
from vramplan.memory.state_cache import state_bytes_per_sequence
from vramplan.model.spec import ModelSpec
from vramplan.scenario import Fix
from vramplan.wording import plural

CacheKind = Literal["dynamic", "static"]
AttnImpl = Literal["eager", "sdpa", "flash_attention_2"]

#: CUDA context + torch allocator state per process (memory.overhead.CUDA_CONTEXT_BYTES).
CUDA_CONTEXT_GIB = CUDA_CONTEXT_BYTES["hf"] / GIB
#: Eager attention holds the scores in the compute dtype, an fp32 softmax, and its cast back.
EAGER_FP32_SOFTMAX_BYTES = 4
#: Hidden-size buffers alive beside the MLP temporaries (residual, normed input, output).
HIDDEN_BUFFERS = 3
#: Logits are upcast to fp32 before sampling.
LOGIT_BYTES = 4
MIB = 1024**2

if TYPE_CHECKING:
    from vramplan.scenario import Scenario


@dataclass(frozen=True)
class HFProfile:
    """Version-dependent behaviour of ``generate()``."""

    #: True when the prefill computes logits for the last position only (``logits_to_keep``).
    last_logits_only: bool
    #: True when MLA models cache the latent (5.x) instead of expanded per-head K/V (4.x).
    mla_latent_cache: bool
    #: True when sliding layers keep only window - 1 positions in DynamicCache.
    sliding_dynamic_layers: bool


#: 4.45 added ``num_logits_to_keep`` in generate; 4.50 split DynamicCache per layer type [verify];
#: 5.0 MLA latent cache (measured on 5.24).
VERSIONS: VersionTable[HFProfile] = VersionTable(
    "transformers",
    {
        "4.40.0": HFProfile(
            last_logits_only=False, mla_latent_cache=False, sliding_dynamic_layers=False
        ),
        "4.45.0": HFProfile(
            last_logits_only=True, mla_latent_cache=False, sliding_dynamic_layers=False
        ),
        "4.50.0": HFProfile(
            last_logits_only=True, mla_latent_cache=False, sliding_dynamic_layers=True
        ),
        "5.0.0": HFProfile(
            last_logits_only=True, mla_latent_cache=True, sliding_dynamic_layers=True
        ),
    },
)


def layer_widths(spec: ModelSpec, profile: HFProfile) -> list[tuple[str, int, int]]:
    """Per layer (kind, heads, K+V width per head) as transformers stores it."""
    kinds = spec.layer_types or ("full_attention",) * spec.num_layers
    if spec.mla is not None:
        m = spec.mla
        if profile.mla_latent_cache:
            return [
                ("full_attention", 1, m.kv_lora_rank + m.qk_rope_head_dim)
            ] * spec.attention_layers
        return [
            (
                "full_attention",
                spec.num_heads,
                m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim,
            )
        ] * spec.attention_layers
    width = spec.head_dim + spec.v_head_dim
    # hybrids: only the attention layers hold KV; KV-shared layers (Gemma 3n) reuse an earlier cache
    return [(k, spec.num_kv_heads, width) for i, k in enumerate(kinds) if spec.layer_keeps_kv(i)]


def cache_bytes(
    spec: ModelSpec,
    element: Fraction | int,
    batch: int,
    positions: int,
    cache: CacheKind,
    profile: HFProfile,
    max_cache_len: int | None = None,
) -> int:
    """Bytes of all layers' cache tensors for ``batch`` rows.

    Dynamic: ``positions`` = tokens held now (``P + N - 1`` after generate). Static: every layer is
    ``max_cache_len`` long (sliding layers ``min(window, max_cache_len)``).
    """
    window = spec.sliding_window
    total = Fraction(0)
    for kind, heads, width in layer_widths(spec, profile):
        if cache == "static":
            held = max_cache_len if max_cache_len is not None else positions
            if kind == "sliding_attention" and window:
                held = min(window, held)
        else:
            held = positions
            if kind == "sliding_attention" and window and profile.sliding_dynamic_layers:
                held = min(positions, window - 1)
        total += batch * heads * held * width * Fraction(element)
    return int(total)


def prefill_activation_bytes(
    spec: ModelSpec, batch: int, prompt: int, attn: AttnImpl, compute_bytes: int, profile: HFProfile
) -> int:
    """Peak temporaries of the prefill forward: max(attention, MLP) in one layer, then the logits.

    Eager materialises ``batch x heads x S^2`` scores in the compute dtype, an fp32 softmax and the cast
    back; SDPA (memory-efficient/flash kernels) and FlashAttention-2 do not.
    """
    tokens = batch * prompt
    hidden = HIDDEN_BUFFERS * tokens * spec.hidden_size * compute_bytes
    attn_bytes = (
        tokens
        * (spec.num_heads * spec.head_dim * 2 + 2 * spec.num_kv_heads * spec.head_dim)
        * compute_bytes
    )
    if attn == "eager":
        attn_bytes += (
            batch
            * spec.num_heads
            * prompt
            * prompt
            * (2 * compute_bytes + EAGER_FP32_SOFTMAX_BYTES)
        )
    inter = (
        spec.moe.expert_intermediate_size * spec.moe.experts_per_token
        if spec.moe
        else spec.intermediate_size
    )
    mlp = tokens * 3 * inter * compute_bytes
    layer = hidden + max(attn_bytes, mlp)
    logit_rows = batch if profile.last_logits_only else tokens
    logits = logit_rows * spec.vocab_size * (LOGIT_BYTES + compute_bytes)
    return max(layer, logits + tokens * spec.hidden_size * compute_bytes)


def hf_state_dtypes(spec: ModelSpec, compute_dtype: str) -> tuple[str, str]:
    """(conv, recurrent) state dtypes of transformers' linear-attention cache layers: the conv window in the
    model dtype; the recurrent state in float32 as the reference PyTorch scans return it (Mamba1/2, gated
    DeltaNet, KDA), except MiniMax's lightning attention, which keeps it in the model dtype (measured on
    5.24 with a bf16 model; ``tests/engines/test_hf.py``)."""
    if spec.state is not None and spec.state.kind == "linear_attention":
        return compute_dtype, compute_dtype
    return compute_dtype, "float32"


def hf_state_bytes_per_sequence(spec: ModelSpec, compute_bytes: int) -> int:
    """State bytes one batch row holds in transformers' cache: ``conv_kernel`` conv columns (the whole window,
    one more than the serving engines keep) plus the recurrent state; 0 without recurrent layers."""
    if spec.state is None:
        return 0
    recurrent_bytes = compute_bytes if spec.state.kind == "linear_attention" else 4
    return state_bytes_per_sequence(spec, compute_bytes, recurrent_bytes, full_kernel=True)


def predict_hf(
    model: str | ModelSpec,
    *,
    batch_size: int = 1,
    max_new_tokens: int = 128,
    prompt_len: int = 512,
    cache: CacheKind = "dynamic",
    num_beams: int = 1,
    attn_implementation: AttnImpl = "sdpa",
    dtype: str | None = None,
    gpu: str | GPU | None = None,
    gpu_memory: str | int | None = None,
    engine_version: str | None = None,
) -> EnginePrediction:
    """Peak GPU memory of ``model.generate(batch, max_new_tokens=N)`` with the given cache and attention."""
    for name, v in (
        ("--batch-size", batch_size),
        ("--max-new-tokens", max_new_tokens),
        ("--prompt-len", prompt_len),
        ("--num-beams", num_beams),
    ):
        if int(v) < 1:
            raise InputError(f"{name} must be at least 1, got {v}")
    if cache not in ("dynamic", "static"):
        raise InputError(f"--cache {cache!r}: use dynamic or static")
    if attn_implementation not in ("eager", "sdpa", "flash_attention_2"):
        raise InputError(
            f"--attn-implementation {attn_implementation!r}: use eager, sdpa or flash_attention_2"
        )
    match = VERSIONS.nearest_version(engine_version)
    profile = match.value
    assumptions = [n for n in (match.note,) if n]
    if isinstance(model, ModelSpec):
        spec = model
    else:
        from vramplan.engines.sglang import resolve_model

        loaded, _, notes = resolve_model(model)
        spec = loaded.spec
        assumptions += notes
    from vramplan.estimator import resolve
    from vramplan.memory.weights import weight_bytes

    r = resolve(spec, dtype, None, None)
    e = r.kv_element
    compute = int(e)
    state_per_row = hf_state_bytes_per_sequence(spec, compute)
    w = weight_bytes(spec, r.precision, 1, 1).per_gpu
    context_bytes = int(CUDA_CONTEXT_GIB * GIB)

    def parts(batch: int, prompt: int, new: int, attn: AttnImpl) -> dict[str, int]:
        """Cache, transient, state and activation bytes of one generate() call, and its peak."""
        rows = batch * num_beams
        positions = prompt + new - 1  # StaticCache length generate() picks too (measured on 5.24)
        kv = cache_bytes(spec, e, rows, positions, cache, profile, positions)
        transient = 0
        if cache == "dynamic":
            # torch.cat holds the old copy of one layer while writing the new one
            transient = cache_bytes(spec, e, rows, positions, cache, profile) // max(
                1, spec.attention_layers
            )
        act = prefill_activation_bytes(spec, batch, prompt, attn, compute, profile)
        if num_beams > 1:
            act = max(act, rows * spec.vocab_size * (LOGIT_BYTES + compute) * 2)  # beam scores
        state = rows * state_per_row
        peak = w + kv + transient + state + act + context_bytes
        return {"kv": kv, "transient": transient, "state": state, "act": act, "peak": peak}

    now = parts(batch_size, prompt_len, max_new_tokens, attn_implementation)
    kv, transient, act, peak = now["kv"], now["transient"], now["act"], now["peak"]
    rows = batch_size * num_beams
    max_len = prompt_len + max_new_tokens - 1
    errors: list[str] = []
    fixes: list[Fix] = []
    extra: dict[str, Any] = {
        "cache": cache,
        "cache_positions": max_len,
        "cache_bytes": kv,
        "cache_transient_bytes": transient,
        "state_cache_bytes": now["state"],
        "peak_gib": peak / GIB,
        "mla_cache_layout": None
        if spec.mla is None
        else ("latent" if profile.mla_latent_cache else "expanded per-head K/V"),
    }
    starts = True
    if gpu is not None or gpu_memory is not None:
        hw = pick_gpu(gpu, gpu_memory)
        extra["gpu_memory_gib"] = hw.memory_bytes / GIB

        def fits(batch: int, prompt: int, new: int, attn: AttnImpl) -> bool:
            return parts(batch, prompt, new, attn)["peak"] <= hw.memory_bytes

        if peak > hw.memory_bytes:
            starts = False
            errors.append(
                f"CUDA out of memory: generate() peaks at {peak / GIB:.2f} GiB on a {hw.memory_bytes / GIB:.2f} GiB GPU"
            )
            if attn_implementation == "eager" and fits(
                batch_size, prompt_len, max_new_tokens, "sdpa"
            ):
                fixes.append(Fix("attn_implementation", "sdpa", "no S^2 score matrix"))
            if batch_size > 1 and fits(1, prompt_len, max_new_tokens, attn_implementation):
                lo, hi = 1, batch_size - 1
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (
                        (mid, hi)
                        if fits(mid, prompt_len, max_new_tokens, attn_implementation)
                        else (lo, mid - 1)
                    )
                fixes.append(Fix("batch_size", lo, "the largest batch whose generate() fits"))
    assumptions.append(
        f"{cache} cache, {attn_implementation} attention, batch {batch_size} x {plural(num_beams, 'beam')}, "
        f"prompt {plural(prompt_len, 'token')} (left-padded to the longest), {plural(max_new_tokens, 'new token')}"
    )
    if spec.state is not None:
        conv, rec = hf_state_dtypes(spec, r.precision.compute_dtype)
        assumptions.append(
            f"{spec.state.num_layers} recurrent layers keep per row a conv state of the whole kernel "
            f"window ({conv}) and a recurrent state ({rec}, as transformers' PyTorch kernels return it): "
            f"{state_per_row / MIB:.2f} MiB whatever the length"
        )
    return EnginePrediction(
        "transformers",
        match.version,
        weights_gib=w / GIB,
        activation_peak_gib=act / GIB,
        available_kv_cache_gib=(kv + transient) / GIB,
        kv_cache_tokens=max_len * rows,
        max_concurrency=float(rows),
        kv_bytes_per_token=cache_bytes(spec, e, 1, 1, "dynamic", profile),
        state_bytes_per_sequence=state_per_row,
        starts=starts,
        errors=tuple(errors),
        fixes=tuple(fixes),
        assumptions=tuple(assumptions),
        settings={
            "model": spec.name,
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "prompt_len": prompt_len,
            "cache": cache,
            "num_beams": num_beams,
            "attn_implementation": attn_implementation,
            "dtype": r.precision.compute_dtype,
        },
        extra=extra,
    )


def predict_from_settings(
    settings: dict[str, Any], gpu: str | GPU | None = None, **kw: Any
) -> EnginePrediction:
    """Same signature as the serving engines' (transformers prints no startup log to parse)."""
    keys = (
        "batch_size",
        "max_new_tokens",
        "prompt_len",
        "cache",
        "num_beams",
        "attn_implementation",
        "dtype",
    )
    model = settings.get("model")
    if not model:
        raise InputError("settings need 'model' (catalogue name or config folder)")
    return predict_hf(
        model, gpu=gpu, **{k: settings[k] for k in keys if settings.get(k) is not None}, **kw
    )


__all__ = [
    "VERSIONS",
    "cache_bytes",
    "predict_from_settings",
    "predict_hf",
    "prefill_activation_bytes",
]


# ------------------------------------------------------------------------------------------ engine
class HFEngine:
    """transformers ``generate`` as an :class:`~vramplan.engines.base.Engine`.

    A batch of ``max_num_seqs`` (else the workload's users) sequences of ``max_model_len`` (else the
    workload's context) tokens, of which the default 128 (``predict_hf``'s) are generated.
    """

    name = "hf"

    def settings(self, scenario: Scenario) -> dict[str, Any]:
        e, w = scenario.engine, scenario.workload
        max_len = e.max_model_len or w.context
        new = min(128, max(max_len // 2, 1))
        return {
            "batch_size": e.max_num_seqs or w.users,
            "max_new_tokens": new,
            "prompt_len": max(max_len - new, 1),
            "dtype": scenario.precision.dtype,
        }

    def predict(self, scenario: Scenario) -> EnginePrediction:
        return predict_hf(
            scenario.model,
            gpu=scenario.hardware.gpu,
            gpu_memory=scenario.hardware.gpu_memory,
            engine_version=scenario.engine.engine_version,
            **self.settings(scenario),
        )

    def kv_pool(self, scenario: Scenario) -> KVPool:
        from dataclasses import replace

        from vramplan.engines.base import pool_from_prediction
        from vramplan.engines.sglang import pick_gpu

        pred = self.predict(scenario)
        hw = pick_gpu(scenario.hardware.gpu, scenario.hardware.gpu_memory)
        s = self.settings(scenario)
        return replace(
            pool_from_prediction(pred, hw.memory_bytes, {"max_num_seqs": "batch_size"}),
            gpu=hw.name,
            max_model_len=s["prompt_len"] + s["max_new_tokens"],
            max_num_batched_tokens=s["batch_size"] * s["prompt_len"],
        )

    def launch(self, scenario: Scenario, model_id: str) -> list[str]:
        s = self.settings(scenario)
        return [
            "python",
            "-c",
            f"from transformers import pipeline; pipeline('text-generation', model={model_id!r})"
            f"(['...'] * {s['batch_size']}, max_new_tokens={s['max_new_tokens']})",
        ]


ENGINE_MODEL = HFEngine()
