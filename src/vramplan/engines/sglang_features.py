"""Memory of the serving features a `sglang.launch_server` line turns on, read from SGLang 0.5.23's source.

- LoRA (``--enable-lora``): ``LoRAMemoryPool`` preallocates, for every target module of every layer, an A
  buffer ``(max_loras_per_batch, rank x stacked, in)`` and a B buffer ``(max_loras_per_batch, out, rank)`` in
  the model dtype, input split by TP for row-parallel modules (o_proj, down_proj) and output for column ones
  (lora/mem_pool.py:408-596; stacked = 3 for qkv_proj, 2 for gate_up_proj, lora/utils.py:330-348; dims from
  lora/utils.py:172-220). The manager is built before the KV pool is sized (model_runner.py:831-841), so
  the buffers come out of the KV budget.
- Speculative decoding: draft weights (the checkpoint's NextN/MTP layers, an EAGLE head or a STANDALONE model)
  and draft KV. From 0.5.15 both are inside the budget: weights loaded before profiling
  (model_runner_kv_cache_mixin.py:108-136), KV as cell x (1 + draft layers / layers)
  (pool_configurator.py:139-155); before, the draft worker took both from the memory outside
  mem_fraction_static. NGRAM needs no GPU memory.
- HiCache (``--enable-hierarchical-cache``): a host pool of ``hicache_size`` GB (1e9) worth of tokens, else
  ``hicache_ratio`` (2.0) x the device tokens, plus one page (mem_cache/pool_host/base.py:211-229); per-token
  bytes as on the device (pool_host/mha.py:290-296). GPU memory is unchanged.
- DP attention (``--enable-dp-attention``): attention runs with TP = tp / dp, so its weights and KV heads are
  split dp times less, and the embedding is replicated (models/deepseek_v2.py:2595 ``enable_tp=not
  is_dp_attention_enabled()``); lm_head stays TP-split unless --enable-dp-lm-head.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vramplan.errors import InputError
from vramplan.memory.serving_features import (
    draft_model_memory,
    eagle_head_memory,
    mtp_memory,
)
from vramplan.memory.weights import weight_bytes
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision

#: lora/utils.py:298-316: adapter names -> SGLang's stacked module names.
LORA_MODULE_NAMES: dict[str, str] = {
    "q_proj": "qkv_proj",
    "k_proj": "qkv_proj",
    "v_proj": "qkv_proj",
    "qkv_proj": "qkv_proj",
    "o_proj": "o_proj",
    "gate_proj": "gate_up_proj",
    "up_proj": "gate_up_proj",
    "gate_up_proj": "gate_up_proj",
    "down_proj": "down_proj",
}
#: "all" / "all-linear" resolve to the model's linear modules (auto_detect_lora_target_modules).
LORA_ALL_MODULES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
#: ``max_loras_per_batch`` default (arg_groups/fields/lora.py:66-69).
DEFAULT_MAX_LORAS_PER_BATCH = 8
_ROW_PARALLEL = frozenset({"o_proj", "down_proj"})
_STACKED = {"qkv_proj": 3, "gate_up_proj": 2}

#: Algorithms and what they load; NEXTN is an alias of EAGLE over the checkpoint's MTP layers.
SPEC_ALGORITHMS = ("EAGLE", "EAGLE3", "NEXTN", "MTP", "STANDALONE", "NGRAM")
#: ``_auto_choose_speculative_params`` (arg_groups/speculative_hook.py:1430-1461): (steps, topk, draft tokens)
#: when none is given: (5, 4, 8) for Llama (and Grok), (3, 1, 4) otherwise and for STANDALONE.
AUTO_SPEC_PARAMS = {"llama": (5, 4, 8)}
DEFAULT_SPEC_PARAMS = (3, 1, 4)
#: Speculative decoding resets an unset --max-running-requests to 48 (speculative_hook.py:1086-1094).
SPEC_MAX_RUNNING_REQUESTS = 48
#: --hicache-ratio default in "cache" mode (arg_groups/fields/memory.py:109-112).
HICACHE_RATIO = 2.0


def lora_target_modules(raw: Any) -> tuple[str, ...]:
    """``--lora-target-modules`` as SGLang's stacked names; "all" expands to the linear modules."""
    if raw is None or raw == "":
        return LORA_ALL_MODULES
    names = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
    out: list[str] = []
    for name in names:
        if name in ("all", "all-linear"):
            return LORA_ALL_MODULES
        key = LORA_MODULE_NAMES.get(name.rsplit(".", 1)[-1])
        if key is None:
            raise InputError(
                f"--lora-target-modules {name!r} is not modelled: use q_proj k_proj v_proj o_proj "
                "gate_proj up_proj down_proj or all"
            )
        if key not in out:
            out.append(key)
    return tuple(out)


def _module_dims(spec: ModelSpec, module: str) -> tuple[int, int]:
    """(input, output) of a module, as ``get_default_hidden_dim`` (lora/utils.py:172-220)."""
    if module == "qkv_proj":
        return spec.hidden_size, spec.head_dim * (spec.num_heads + 2 * spec.num_kv_heads)
    if module == "o_proj":
        return spec.v_head_dim * spec.num_heads, spec.hidden_size
    if module == "gate_up_proj":
        return spec.hidden_size, 2 * spec.intermediate_size
    return spec.intermediate_size, spec.hidden_size


def _local_out(spec: ModelSpec, module: str, out: int, tp: int) -> int:
    """Column-parallel B rows per rank; qkv replicates KV heads when tp > H_kv (mem_pool.py:492-525)."""
    if module == "qkv_proj" and spec.num_kv_heads < tp:
        return spec.head_dim * spec.num_heads // tp + 2 * spec.head_dim
    return out // tp


def lora_pool_bytes(
    spec: ModelSpec,
    max_loras_per_batch: int,
    max_lora_rank: int,
    element_bytes: int,
    tp: int,
    modules: Iterable[str] = LORA_ALL_MODULES,
) -> int:
    """GPU bytes of SGLang's LoRA memory pool on one TP rank (dense attention/MLP models)."""
    if max_loras_per_batch < 1 or max_lora_rank < 1:
        raise InputError("--max-loras-per-batch and --max-lora-rank must be >= 1")
    modules = tuple(modules)
    if spec.mla is not None or spec.state is not None:
        raise InputError(
            f"the LoRA pool of {spec.name} (MLA or hybrid layers) is not modelled; dense attention models only"
        )
    if spec.is_moe and ({"gate_up_proj", "down_proj"} & set(modules)):
        raise InputError(
            f"LoRA on the MoE experts of {spec.name} is not modelled: target attention modules "
            "(--lora-target-modules q_proj k_proj v_proj o_proj)"
        )
    total = 0
    for module in modules:
        d_in, d_out = _module_dims(spec, module)
        c = _STACKED.get(module, 1)
        a_in = d_in // tp if module in _ROW_PARALLEL else d_in
        b_out = d_out if module in _ROW_PARALLEL else _local_out(spec, module, d_out, tp)
        per_layer = max_loras_per_batch * max_lora_rank * (c * a_in + b_out)
        total += per_layer * spec.num_layers
    return total * element_bytes


@dataclass(frozen=True)
class Speculative:
    """What a --speculative-algorithm adds per rank: draft weights, draft KV layers and bytes per token."""

    algorithm: str
    weight_bytes: int
    draft_layers: int
    kv_bytes_per_token: int
    draft_tokens: int
    note: str


def speculative(
    settings: Mapping[str, Any],
    spec: ModelSpec,
    precision: Precision,
    kv_element: Fraction,
    attn_tp: int,
    tp: int,
) -> Speculative | None:
    """Read --speculative-* flags into the draft's memory on one rank (None when off)."""
    raw = settings.get("speculative_algorithm")
    if not raw:
        return None
    algo = str(raw).upper()
    if algo not in SPEC_ALGORITHMS:
        raise InputError(
            f"--speculative-algorithm {raw!r} is not modelled: use {', '.join(SPEC_ALGORITHMS)}"
        )
    _steps, _topk, draft_tokens = _spec_params(settings, spec, algo)
    if algo == "NGRAM":
        return Speculative(
            algo, 0, 0, 0, draft_tokens, "NGRAM drafts from the prompt: no GPU memory"
        )
    path = settings.get("speculative_draft_model_path")
    if algo in ("NEXTN", "MTP") or (algo == "EAGLE" and not path and spec.mtp_layers):
        if not spec.mtp_layers:
            raise InputError(
                f"--speculative-algorithm {algo} needs the checkpoint's NextN/MTP layers and {spec.name} has none"
            )
        mem = mtp_memory(spec, precision, kv_element, spec.mtp_layers, attn_tp)
        return Speculative(
            algo,
            mem.weight_bytes,
            spec.mtp_layers,
            mem.kv_bytes_per_token,
            draft_tokens,
            f"speculative {algo}: the checkpoint's {spec.mtp_layers} NextN layer(s), "
            f"{mem.weight_bytes / 2**30:.2f} GiB weights, {mem.kv_bytes_per_token:,} B KV per token per rank",
        )
    if not path:
        raise InputError(
            f"--speculative-algorithm {algo} needs --speculative-draft-model-path (a catalogue name or config folder)"
        )
    from vramplan.engines.sglang import resolve_model

    draft = resolve_model(str(path))[0].spec
    if algo == "STANDALONE":
        mem = draft_model_memory(draft, precision, kv_element, tp)
        kind = "draft model"
    else:
        mem = eagle_head_memory(
            draft,
            precision,
            kv_element,
            attn_tp,
            eagle3=algo == "EAGLE3",
            target_hidden_size=spec.hidden_size,
            target_vocab_size=spec.vocab_size,
        )
        kind = f"{algo} head"
        if algo == "EAGLE3":
            kind += " (lm_head over the config's vocab_size: draft_vocab_size is not read, an upper bound)"
    return Speculative(
        algo,
        mem.weight_bytes,
        draft.num_layers,
        mem.kv_bytes_per_token,
        draft_tokens,
        f"speculative {algo}: {kind} {draft.name} ({draft.num_layers} layer(s)), "
        f"{mem.weight_bytes / 2**30:.2f} GiB weights, {mem.kv_bytes_per_token:,} B KV per token per rank",
    )


def _spec_params(settings: Mapping[str, Any], spec: ModelSpec, algo: str) -> tuple[int, int, int]:
    """(steps, topk, draft tokens) as SGLang resolves them; topk 1 forces draft tokens = steps + 1."""
    given = [
        settings.get(k)
        for k in ("speculative_num_steps", "speculative_eagle_topk", "speculative_num_draft_tokens")
    ]
    auto = (
        DEFAULT_SPEC_PARAMS
        if algo == "STANDALONE"
        else AUTO_SPEC_PARAMS.get(spec.model_type, DEFAULT_SPEC_PARAMS)
    )
    if given[0] is None and given[1] is None and given[2] is None:
        return auto
    steps = int(given[0] if given[0] is not None else auto[0])
    topk = int(given[1] if given[1] is not None else 1)
    draft = steps + 1 if topk == 1 else int(given[2] if given[2] is not None else auto[2])
    if min(steps, topk, draft) < 1:
        raise InputError(
            "--speculative-num-steps, --speculative-eagle-topk and --speculative-num-draft-tokens must be >= 1"
        )
    return steps, topk, draft


def hicache_host_bytes(
    device_tokens: int,
    bytes_per_token: int,
    page_size: int,
    ratio: float | None = None,
    size_gb: float | None = None,
) -> tuple[int, int]:
    """(host tokens, host bytes) of one rank's HiCache pool (mem_cache/pool_host/base.py:211-229)."""
    if size_gb:
        if size_gb < 0:
            raise InputError(f"--hicache-size {size_gb} must be >= 0 (GB)")
        tokens = int(size_gb * 1e9 // bytes_per_token)
    else:
        r = HICACHE_RATIO if ratio is None else ratio
        if not r > 0:
            raise InputError(f"--hicache-ratio {r} must be > 0 (default 2.0)")
        tokens = int(device_tokens * r)
    pages = tokens // page_size + 1
    tokens = pages * page_size
    return tokens, tokens * bytes_per_token


def dp_attention_weight_bytes(spec: ModelSpec, precision: Precision, tp: int, attn_tp: int) -> int:
    """Extra weight bytes per rank when attention runs at TP ``attn_tp`` and the embedding is replicated."""
    if attn_tp == tp:
        return 0
    at_tp = weight_bytes(spec, precision, tp).by_component_per_gpu
    at_attn = weight_bytes(spec, precision, attn_tp).by_component_per_gpu
    extra = 0
    for component in ("attention", "embeddings"):
        wide = (
            weight_bytes(spec, precision, 1).by_component_per_gpu
            if component == "embeddings"
            else at_attn
        )
        extra += wide.get(component, 0) - at_tp.get(component, 0)
    return extra
