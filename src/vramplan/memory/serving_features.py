"""Memory of the serving features a 2026 vLLM deployment turns on (vLLM 0.34.0 source), pure math, no I/O.

- Multi-LoRA: the stacked A/B buffers vLLM preallocates for every LoRA-capable module, and the host LoRA cache.
- Speculative decoding: n-gram (nothing), a draft model, EAGLE / EAGLE-3 heads, MTP layers: weights and KV/token.
- Expert parallelism: experts placed per EP rank, hence routed-expert bytes per GPU.
- ``--cpu-offload-gb`` (GPU weights shrink) and KV offload tiers (host memory, GPU unchanged).

Paths below are relative to the vLLM 0.34.0 package (``vllm/``). Everything is integer bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from vramplan.errors import InputError
from vramplan.memory.kv_cache import kv_bytes_per_token, kv_heads_per_rank
from vramplan.memory.weights import VOCAB_PADDING, rank_shape, weight_bytes
from vramplan.model.params import TensorGroup, inventory
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision

GIB_BYTES = 1 << 30
#: config/lora.py:26 ``MaxLoRARanks``.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: lora/layers/logits_processor.py:91: LoRA refuses larger vocabularies.
VLLM_LORA_MAX_VOCAB = 258048
#: llama_eagle3.py:211-215: EAGLE-3 fuses three auxiliary hidden states unless the config names its layers.
EAGLE3_DEFAULT_AUX_HIDDEN_STATES = 3
#: ``draft_id_to_target_id`` is a torch.long buffer (llama_eagle3.py:340-343).
INT64_BYTES = 8

_MOE_COMPONENTS = frozenset({"experts", "router", "shared_experts"})


def _div(a: int, b: int, what: str) -> int:
    """vLLM's ``divide``: exact division, or the configuration is refused."""
    if a % b:
        raise InputError(
            f"{what} ({a}) is not divisible by the tensor-parallel size {b}; pick a TP size that divides it"
        )
    return a // b


# ----------------------------------------------------------------------------------------------- LoRA
def _check_lora(max_loras: int, max_lora_rank: int, tp: int) -> None:
    if max_loras < 1:
        raise InputError(f"--max-loras must be at least 1 (got {max_loras})")
    if max_lora_rank not in VLLM_LORA_RANKS:
        raise InputError(
            f"--max-lora-rank {max_lora_rank} is not one vLLM accepts; use one of {', '.join(map(str, VLLM_LORA_RANKS))}"
        )
    if tp < 1:
        raise InputError(f"tensor-parallel size must be at least 1 (got {tp})")


def _linear_lora_numel(
    kind: Literal["column", "row", "replicated"],
    slice_outputs: Sequence[int],
    input_size: int,
    rank: int,
    tp: int,
    fully_sharded: bool,
) -> int:
    """Elements of one LoRA-wrapped linear's A and B stacks, for ONE adapter slot.

    lora/layers/column_parallel_linear.py:218-245 (merged column / QKV: one A and one B per slice),
    lora/layers/base_linear.py:111-154 (column, row, replicated). A is (rank_A, input), B is (output, rank).
    Column layers shard A's rank when fully sharded; row layers shard B's output.
    """
    numel = 0
    for out in slice_outputs:
        rank_a = _div(rank, tp, "max_lora_rank") if kind == "column" and fully_sharded else rank
        out_b = (
            _div(out, tp, "row-parallel LoRA output") if kind == "row" and fully_sharded else out
        )
        numel += rank_a * input_size + out_b * rank
    return numel


def lora_gpu_bytes(
    spec: ModelSpec,
    max_loras: int,
    max_lora_rank: int,
    lora_element_bytes: int,
    tp: int = 1,
    fully_sharded_loras: bool = False,
    embedding_modules: bool = True,
    experts_per_rank: int | None = None,
    moe_shared_loras: bool = False,
) -> int:
    """GPU bytes of the LoRA slots vLLM preallocates on one TP rank (``--enable-lora``).

    Every LinearBase/MoE module gets a wrapper (lora/utils.py:248-262, lora/model_manager.py:476-560) whose
    ``create_lora_weights`` allocates ``max_loras`` zero slots at ``max_lora_rank`` in ``lora_dtype``
    (config/lora.py:150-153: "auto" is the model dtype) whether or not an adapter targets it:
      qkv_proj  MergedQKV, 3 slices, B rows q/k/v per rank   column_parallel_linear.py:466-510
      o_proj / down_proj  row: A (R, in/tp), B (out, R)      row_parallel_linear.py:22-30, base_linear.py:123-129
      gate_up_proj  merged column, 2 slices of I/tp          column_parallel_linear.py:184-245
      router gate  replicated: A (R, h), B (E, R)            base_linear.py:111-113
      experts  w13 A/B and w2 A/B per local expert           lora/layers/fused_moe.py:175-235
      embed_tokens  A (vocab, R), B (h, R)                   lora/layers/vocab_parallel_embedding.py:25-48
      lm_head  A (R, h), B (vocab, R)                        lora/layers/logits_processor.py:84-112
    ``embedding_modules`` is whether the model class declares them (Llama, Qwen3 do: models/llama.py:479).
    ``experts_per_rank`` is the local expert count under expert parallelism (default: all experts, TP-split).
    ``moe_shared_loras`` (0.34 ``--enable-moe-shared-loras``, config/lora.py:79) stores the w13 A and w2 B stacks
    once instead of per expert (fused_moe.py:164-173); 0.25-0.33 always allocate them per expert. The other
    LoRA buffer shapes are the same in 0.25 through 0.34.
    Punica's per-token metadata buffers are not counted here (they scale with batched tokens, not adapters).
    """
    _check_lora(max_loras, max_lora_rank, tp)
    if spec.mla is not None:
        raise InputError(
            f"{spec.name}: LoRA buffers for multi-head latent attention (MLA) models are not modelled yet; "
            "plan without --enable-lora or use a non-MLA model"
        )
    r, h = max_lora_rank, spec.hidden_size
    heads_rank = _div(spec.num_heads, tp, "num_attention_heads")
    kv_rank = kv_heads_per_rank(spec, tp)
    n = spec.num_layers
    per_slot = 0
    # attention: qkv (3 slices) + o_proj
    qkv = (heads_rank * spec.head_dim, kv_rank * spec.head_dim, kv_rank * spec.v_head_dim)
    per_slot += n * _linear_lora_numel("column", qkv, h, r, tp, fully_sharded_loras)
    o_in = heads_rank * spec.v_head_dim
    per_slot += n * _linear_lora_numel("row", (h,), o_in, r, tp, fully_sharded_loras)

    def mlp(width: int, count: int) -> int:
        width_rank = _div(width, tp, "MLP intermediate size")
        slices = (width_rank, width_rank) if spec.mlp_kind == "gated" else (width_rank,)
        up = _linear_lora_numel("column", slices, h, r, tp, fully_sharded_loras)
        down = _linear_lora_numel("row", (h,), width_rank, r, tp, fully_sharded_loras)
        return count * (up + down)

    n_moe = sum(1 for i in range(n) if spec.moe_layer(i))
    per_slot += mlp(spec.intermediate_size, n - n_moe)
    if spec.moe is not None:
        moe = spec.moe
        per_slot += n_moe * _linear_lora_numel("replicated", (moe.num_experts,), h, r, tp, False)
        if moe.shared_intermediate_size:
            per_slot += mlp(moe.shared_intermediate_size, n_moe)
        # fused_moe.py:175-235; under EP each rank holds whole experts (moe tp = 1).
        local_experts = moe.num_experts if experts_per_rank is None else experts_per_rank
        moe_tp = tp if experts_per_rank is None else 1
        inter = _div(moe.expert_intermediate_size, moe_tp, "expert intermediate size")
        w13_slices = 2 if spec.mlp_kind == "gated" else 1
        rank_a = _div(r, tp, "max_lora_rank") if fully_sharded_loras else r
        h_b = _div(h, tp, "hidden size") if fully_sharded_loras else h
        a13_experts = 1 if moe_shared_loras else local_experts
        b2_experts = 1 if moe_shared_loras else local_experts
        per_slot += n_moe * (
            a13_experts * w13_slices * rank_a * h  # w13_lora_a
            + local_experts * w13_slices * inter * r  # w13_lora_b
            + local_experts * r * inter  # w2_lora_a
            + b2_experts * h_b * r  # w2_lora_b
        )
    if embedding_modules:
        if spec.vocab_size > VLLM_LORA_MAX_VOCAB:
            raise InputError(
                f"vLLM refuses LoRA for a vocabulary of {spec.vocab_size} tokens (limit {VLLM_LORA_MAX_VOCAB})"
            )
        per_slot += spec.vocab_size * r + h * r  # embed_tokens
        per_slot += r * h + spec.vocab_size * r  # lm_head (LogitsProcessorWithLoRA)
    return max_loras * per_slot * lora_element_bytes


#: Module names PEFT adapters target on a Llama-style decoder.
LoRATarget = Literal["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ALL_LINEAR_TARGETS: tuple[LoRATarget, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)


def lora_module_shapes(spec: ModelSpec) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear a PEFT adapter can target in a dense decoder layer (unsharded)."""
    h, inter = spec.hidden_size, spec.intermediate_size
    return {
        "q_proj": (h, spec.num_heads * spec.head_dim),
        "k_proj": (h, spec.num_kv_heads * spec.head_dim),
        "v_proj": (h, spec.num_kv_heads * spec.v_head_dim),
        "o_proj": (spec.num_heads * spec.v_head_dim, h),
        "gate_proj": (h, inter),
        "up_proj": (h, inter),
        "down_proj": (inter, h),
    }


def lora_adapter_bytes(
    spec: ModelSpec,
    rank: int,
    lora_element_bytes: int,
    target_modules: Sequence[LoRATarget] = ALL_LINEAR_TARGETS,
) -> int:
    """Bytes of one PEFT adapter as vLLM holds it on the host: full (unsharded) A (r, in) and B (out, r) per module.

    lora/lora_model.py:160-176 casts each lora_a / lora_b to ``lora_dtype`` on the CPU (pinned).
    Dense-MLP decoders only (PEFT targets of MoE experts differ per family).
    """
    if rank < 1:
        raise InputError(f"LoRA rank must be at least 1 (got {rank})")
    if spec.moe is not None or spec.mla is not None:
        raise InputError(
            f"{spec.name}: host adapter size is modelled for dense, non-MLA decoders only"
        )
    shapes = lora_module_shapes(spec)
    unknown = [t for t in target_modules if t not in shapes]
    if unknown:
        raise InputError(
            f"unknown LoRA target module(s) {unknown}; use names among {', '.join(shapes)}"
        )
    numel = sum(rank * (shapes[t][0] + shapes[t][1]) for t in set(target_modules))
    return spec.num_layers * numel * lora_element_bytes


def lora_cpu_cache_bytes(
    adapter_bytes: int, max_loras: int, max_cpu_loras: int | None = None, tp: int = 1
) -> int:
    """Host bytes of vLLM's CPU LoRA cache when it is full, across the TP worker processes.

    config/lora.py:114-119: ``max_cpu_loras`` defaults to ``max_loras`` and may not be smaller;
    lora/model_manager.py:343-345 makes it the LRU capacity. Each worker process keeps its own copy of
    every cached adapter (lora/worker_manager.py:250-312), so the host total is ``tp`` times one worker's.
    """
    cap = max_loras if max_cpu_loras is None else max_cpu_loras
    if cap < max_loras:
        raise InputError(f"--max-cpu-loras ({cap}) must be >= --max-loras ({max_loras})")
    return tp * cap * adapter_bytes


# ----------------------------------------------------------------------------------- speculative decoding
@dataclass(frozen=True)
class SpeculativeMemory:
    """What a speculative method adds on one GPU: weight bytes, and KV bytes per token of context."""

    weight_bytes: int
    kv_bytes_per_token: int


NO_SPECULATIVE_MEMORY = SpeculativeMemory(0, 0)


def ngram_memory() -> SpeculativeMemory:
    """``method: ngram`` matches prompt n-grams on the CPU: no weights, no KV (v1/worker/gpu/spec_decode/ngram)."""
    return NO_SPECULATIVE_MEMORY


def draft_model_memory(
    draft: ModelSpec,
    precision: Precision,
    kv_element_bytes: Fraction,
    tp: int = 1,
    draft_tp: int | None = None,
) -> SpeculativeMemory:
    """A separate draft model: its own weights and its own KV for every token, on each GPU.

    ``draft_tensor_parallel_size`` defaults to the target's TP and may only be 1 or that
    (config/speculative.py:1530-1551).
    """
    shard = tp if draft_tp is None else draft_tp
    if shard not in (1, tp):
        raise InputError(
            f"draft_tensor_parallel_size {shard} must be 1 or the target's tensor-parallel size {tp}"
        )
    return SpeculativeMemory(
        weight_bytes=weight_bytes(draft, precision, shard).per_gpu,
        kv_bytes_per_token=kv_bytes_per_token(draft, kv_element_bytes, shard),
    )


def _one_layer_bytes(spec: ModelSpec, precision: Precision, tp: int, moe_layer: bool) -> int:
    """Bytes of one decoder layer (MoE or dense, per ``moe_layer``) of ``spec`` on one TP rank."""
    n = spec.num_layers
    n_moe = sum(1 for i in range(n) if spec.moe_layer(i))
    total = 0
    for g in inventory(spec):
        if g.stage != "layer":
            continue
        if g.component in _MOE_COMPONENTS:
            if not moe_layer:
                continue
            span = n_moe
        elif g.component == "mlp":
            if moe_layer:
                continue
            span = n - n_moe
        else:
            span = n
        total += precision.tensor_bytes(g.role, g.name, rank_shape(g, spec, tp)) * (g.count // span)
    return total


def _vocab_rows(vocab: int, tp: int) -> int:
    """Rows of a ParallelLMHead / VocabParallelEmbedding on one rank (padded to 64, split)."""
    padded = -(-vocab // VOCAB_PADDING) * VOCAB_PADDING
    return -(-padded // tp)


def _dtype_bytes(precision: Precision, shape: tuple[int, ...]) -> int:
    """An unquantized tensor in the model dtype (``nn.Linear`` / ``params_dtype=model dtype``)."""
    return Precision(precision.compute_dtype).tensor_bytes("norm", "", shape)


def eagle_head_memory(
    head: ModelSpec,
    precision: Precision,
    kv_element_bytes: Fraction,
    tp: int = 1,
    eagle3: bool = False,
    target_hidden_size: int | None = None,
    target_vocab_size: int | None = None,
    num_aux_hidden_states: int = EAGLE3_DEFAULT_AUX_HIDDEN_STATES,
    draft_vocab_size: int | None = None,
    own_lm_head: bool | None = None,
    own_embed_tokens: bool = False,
) -> SpeculativeMemory:
    """An EAGLE (``eagle``) or EAGLE-3 (``eagle3``) head described by its own config ``head``.

    EAGLE-1 (models/llama_eagle.py:65-120): ``num_hidden_layers`` Llama layers, fc Linear(2h, h) replicated,
    lm_head shared with the target. EAGLE-3 (models/llama_eagle3.py:67-345): layer 0's qkv_proj reads 2h
    (embeds + hidden), plus a ``hidden_norm``; fc Linear(target_h x aux, h) replicated; final norm; its own
    lm_head over ``draft_vocab_size`` and a ``draft_id_to_target_id`` int64 table when that differs from the
    target's vocabulary. A head keeps its own lm_head / embed_tokens only when its checkpoint has one
    (models/utils.py:1334-1355 sets ``has_own_*``) that differs from the target's; otherwise the target's is
    installed (v1/worker/gpu/spec_decode/eagle/utils.py:24-116). ``own_lm_head=None`` means: EAGLE-3 keeps its
    own (its draft-vocabulary head never equals the target's), EAGLE-1 shares.
    KV: every head layer caches full attention like the target (one KV entry per token per layer).
    """
    h = head.hidden_size
    layers = head.num_layers * _one_layer_bytes(head, precision, tp, moe_layer=head.is_moe)
    norm_bytes = _dtype_bytes(precision, (h,))
    total = layers
    if eagle3:
        heads_rank = _div(head.num_heads, tp, "num_attention_heads")
        kv_rank = kv_heads_per_rank(head, tp)
        extra_rows = heads_rank * head.head_dim + kv_rank * (head.head_dim + head.v_head_dim)
        total += precision.tensor_bytes("linear", "layers.attn.qkv_proj.weight", (extra_rows, h))
        total += norm_bytes  # hidden_norm of layer 0
        fc_in = (target_hidden_size or h) * num_aux_hidden_states
        total += precision.tensor_bytes("linear", "fc.weight", (h, fc_in))
        total += norm_bytes  # final norm
        vocab = draft_vocab_size or head.vocab_size
        if own_lm_head is None or own_lm_head:
            total += precision.tensor_bytes(
                "lm_head", "lm_head.weight", (_vocab_rows(vocab, tp), h)
            )
        if target_vocab_size is not None and vocab != target_vocab_size:
            total += vocab * INT64_BYTES
    else:
        total += precision.tensor_bytes("linear", "fc.weight", (h, 2 * h))
        if own_lm_head:
            total += precision.tensor_bytes(
                "lm_head", "lm_head.weight", (_vocab_rows(head.vocab_size, tp), h)
            )
    if own_embed_tokens:
        total += precision.tensor_bytes(
            "embedding", "embed_tokens.weight", (_vocab_rows(head.vocab_size, tp), h)
        )
    return SpeculativeMemory(total, kv_bytes_per_token(head, kv_element_bytes, tp))


def _full_attention_kv_per_layer(spec: ModelSpec, kv_element_bytes: Fraction, tp: int) -> Fraction:
    if spec.mla is not None:
        return (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim) * kv_element_bytes
    return kv_heads_per_rank(spec, tp) * (spec.head_dim + spec.v_head_dim) * kv_element_bytes


MTPMethod = Literal["deepseek_mtp", "glm4_moe_mtp", "qwen3_next_mtp", "mtp"]


def mtp_memory(
    spec: ModelSpec,
    precision: Precision,
    kv_element_bytes: Fraction,
    num_mtp_layers: int,
    tp: int = 1,
    method: MTPMethod = "mtp",
    own_lm_head: bool = False,
) -> SpeculativeMemory:
    """Multi-token-prediction layers the checkpoint ships (``num_nextn_predict_layers`` /
    ``mtp_num_hidden_layers``, config/speculative.py:833-1048).

    DeepSeek (models/deepseek_mtp.py:73-170): each MTP layer is one more decoder layer of the target (MoE when
    the target's deeper layers are), enorm + hnorm, ``eh_proj`` nn.Linear(2h, h) in the model dtype (never
    quantized, never TP-split) and a shared-head norm; embed_tokens and the head lm_head equal the target's and
    are shared (eagle/utils.py:45-116) unless ``own_lm_head``. Qwen3-Next (models/qwen3_next_mtp.py:87-121):
    the layers + ONE column-parallel fc(2h, h) + pre_fc_norm_hidden / pre_fc_norm_embedding / norm. Each MTP layer is
    a full-attention layer with its own KV per token (MLA latent for DeepSeek).
    """
    if num_mtp_layers < 0:
        raise InputError(f"MTP layer count must be >= 0 (got {num_mtp_layers})")
    if num_mtp_layers == 0:
        return NO_SPECULATIVE_MEMORY
    h = spec.hidden_size
    layer = _one_layer_bytes(spec, precision, tp, moe_layer=spec.is_moe)
    norm = _dtype_bytes(precision, (h,))
    head = (
        precision.tensor_bytes("lm_head", "lm_head.weight", (_vocab_rows(spec.vocab_size, tp), h))
        if own_lm_head
        else 0
    )
    # config/speculative.py turns a generic "mtp" into the target family's MTP model.
    if method == "qwen3_next_mtp" or (method == "mtp" and spec.model_type == "qwen3_next"):
        # qwen3_next_mtp.py:87-121: one ColumnParallelLinear fc(2h -> h/tp) and three norms for the whole stack.
        fc = precision.tensor_bytes("linear", "fc.weight", (_div(h, tp, "hidden size"), 2 * h))
        weights = num_mtp_layers * layer + fc + 3 * norm + head
    else:
        # deepseek_mtp.py:73-110: per layer enorm, hnorm, eh_proj nn.Linear(2h, h), shared_head norm (+ head).
        weights = num_mtp_layers * (layer + _dtype_bytes(precision, (h, 2 * h)) + 3 * norm + head)
    kv = _full_attention_kv_per_layer(spec, kv_element_bytes, tp) * num_mtp_layers
    return SpeculativeMemory(weights, -(-kv.numerator // kv.denominator))


# ------------------------------------------------------------------------------------- expert parallelism
def expert_parallel_size(tp: int, dp: int = 1, pcp: int = 1) -> int:
    """EP group size: TP x DP (x prefill-context parallel); model_executor/layers/fused_moe/config.py:1235-1283.

    With --enable-expert-parallel each device owns whole experts and the MoE layer's own TP becomes 1.
    """
    if min(tp, dp, pcp) < 1:
        raise InputError(f"parallel sizes must be >= 1 (got tp={tp}, dp={dp}, pcp={pcp})")
    return tp * dp * pcp


def experts_on_rank(
    num_experts: int, ep_size: int, ep_rank: int, redundant_experts: int = 0
) -> int:
    """Local experts of EP rank ``ep_rank``: fused_moe/expert_map_manager.py:62-69.

    base = E // ep, and the first ``E % ep`` ranks take one more (the code; its docstring says the last rank).
    With EPLB the physical count is logical + ``redundant_experts`` (``num_redundant_experts``).
    """
    if not 0 <= ep_rank < ep_size:
        raise InputError(f"EP rank {ep_rank} is outside 0..{ep_size - 1}")
    total = num_experts + redundant_experts
    if ep_size == 1:
        return total
    base, remainder = divmod(total, ep_size)
    return base + 1 if ep_rank < remainder else base


def _is_routed_expert(g: TensorGroup) -> bool:
    return g.component == "experts"


def expert_weight_bytes_per_gpu(
    spec: ModelSpec,
    precision: Precision,
    tp: int,
    dp: int = 1,
    enable_expert_parallel: bool = True,
    redundant_experts: int = 0,
) -> int:
    """Routed-expert weight bytes on the busiest GPU (rank 0 holds the remainder expert when E % EP != 0).

    Without EP vLLM TP-splits every expert (fused_moe/config.py:1248-1262 keeps ep_size 1); with EP each rank
    holds ``experts_on_rank`` whole experts. Attention and dense parts are unaffected (see weights.py).
    """
    if spec.moe is None:
        raise InputError(f"{spec.name} has no experts; --enable-expert-parallel does not apply")
    n_moe = sum(1 for i in range(spec.num_layers) if spec.moe_layer(i))
    ep = expert_parallel_size(tp, dp) if enable_expert_parallel else 1
    shard_tp = 1 if ep > 1 else tp
    local = experts_on_rank(spec.moe.num_experts, ep, 0, redundant_experts)
    per_expert_layer = 0
    for g in inventory(spec):
        if _is_routed_expert(g):
            shape = rank_shape(g, spec, shard_tp)
            per_expert_layer += precision.tensor_bytes(g.role, g.name, shape) * (
                g.count // (n_moe * spec.moe.num_experts)
            )
    return n_moe * local * per_expert_layer


# ------------------------------------------------------------------------------------------------ offload
def gib_to_bytes(gib: float, flag: str) -> int:
    """A GiB flag as vLLM turns it into bytes: ``int(x * 1024**3)`` (model_executor/offloader/base.py:174)."""
    if not 0 <= gib < 1 << 30:  # also refuses NaN and infinity
        raise InputError(f"{flag} must be >= 0 GiB and finite (got {gib})")
    return int(gib * GIB_BYTES)


def gpu_weight_bytes_after_cpu_offload(weight_bytes_per_gpu: int, cpu_offload_gb: float) -> int:
    """GPU weight bytes left by ``--cpu-offload-gb`` (GiB per GPU, config/offload.py:23-30), never below 0.

    UVA offload moves whole parameters until the budget is reached (model_executor/offloader/uva.py:84-92), so
    the true figure can be lower by up to one parameter; ``uva_offloaded_bytes`` gives it for a known order.
    """
    return max(0, weight_bytes_per_gpu - gib_to_bytes(cpu_offload_gb, "--cpu-offload-gb"))


def uva_offloaded_bytes(param_bytes_in_load_order: Sequence[int], cpu_offload_gb: float) -> int:
    """Bytes UVA offload really moves: parameters in load order, stopping once the running total reaches
    the budget; the parameter that crosses it goes whole (model_executor/offloader/uva.py:84-92)."""
    budget = gib_to_bytes(cpu_offload_gb, "--cpu-offload-gb")
    moved = 0
    for nbytes in param_bytes_in_load_order:
        if moved >= budget:
            break
        moved += nbytes
    return moved


KVOffloadBackend = Literal["native", "lmcache"]


def kv_offload_host_bytes(
    kv_offloading_size_gib: float,
    backend: KVOffloadBackend = "native",
    lmcache_local_cpu_gib: float | None = None,
) -> int:
    """Host bytes of a KV offload tier; GPU memory is unchanged.

    ``--kv-offloading-size`` is the total across TP ranks (config/cache.py:407-411); the native connector gets
    ``cpu_bytes_to_use = size * (1 << 30)`` (config/vllm.py:1088-1096). With ``lmcache`` vLLM does not pass
    the size on (config/vllm.py:1097-1103): the LMCache server's own CPU size decides, so give it.
    """
    if backend == "native":
        return gib_to_bytes(kv_offloading_size_gib, "--kv-offloading-size")
    if lmcache_local_cpu_gib is None:
        raise InputError(
            "with --kv-offloading-backend lmcache the host size is the LMCache server's own setting; "
            "give its local CPU size in GiB"
        )
    return gib_to_bytes(lmcache_local_cpu_gib, "LMCache local CPU size")


# --------------------------------------------------------------------------- expert-parallel all-to-all
#: ``VLLM_DEEPEP_BUFFER_SIZE_MB`` default (envs.py:303, 2145-2147): DeepEP's NVLink buffer, and the RDMA one
#: of the high-throughput kernels across nodes.
DEEPEP_BUFFER_SIZE_MB = 1024
#: DeepEP ``Buffer`` also cudaMallocs a 32 MiB workspace (deep_ep csrc/deep_ep.cpp:58-60, "Create 32 MiB
#: workspace"); the task FIFO and peer-pointer tables next to the NVLink buffer are under 1 KiB and not counted.
DEEPEP_WORKSPACE_BYTES = 32 << 20
#: NUM_BUFFER_ALIGNMENT_BYTES of DeepEP (deep_ep.cpp:27-28 asserts both buffers are multiples of it).
DEEPEP_ALIGNMENT_BYTES = 128
#: 0.34 config/parallel.py:575-581: "naive" and "pplx" were removed and fall back to this one.
ALL2ALL_FALLBACK = "allgather_reducescatter"
ALL2ALL_BACKENDS = frozenset(
    {"naive", "pplx", "allgather_reducescatter", "deepep_high_throughput", "deepep_low_latency"}
)
#: config/scheduler.py:41: max_num_batched_tokens when DeepEP low-latency runs batched DP MoE and the user
#: gave none (engine/arg_utils.py:3200-3206).
BATCHED_DP_MOE_TOKENS = 256


def deepep_low_latency_rdma_bytes(
    max_tokens_per_rank: int, hidden_size: int, num_ranks: int, num_experts: int
) -> int:
    """``deep_ep.Buffer.get_low_latency_rdma_size_hint`` (DeepEP csrc/config.hpp ``LowLatencyLayout``).

    Two (odd/even) send, receive and signalling buffers, BF16 messages with per-128-channel scales::

        dispatch_msg = 16 + max(2h, h + 4 * h/128)       combine_msg = 4 * h/128 + 2h
        send   = max(T * dispatch_msg, E * T * combine_msg)
        recv   = E * T * max(dispatch_msg, combine_msg)
        signal = align128(4 * E)
        total  = 2 * (send + recv + signal), rounded up past the next 128-byte boundary

    The PyPI sdist of DeepEP (1.0.0) ships deep_ep.cpp but not config.hpp; the layout above is DeepEP's
    current one (a stated source, not read from a wheel). ``num_ranks`` does not enter the size.
    E.g. DeepSeek-V3 (h 7168, 256 experts) at 256 tokens: 3,816,818,816 B (3.55 GiB) per GPU.
    """
    if min(max_tokens_per_rank, hidden_size, num_ranks, num_experts) < 1:
        raise InputError("DeepEP buffer sizes need tokens, hidden size, ranks and experts >= 1")
    scales = hidden_size // 128
    dispatch_msg = 16 + max(hidden_size * 2, hidden_size + scales * 4)
    combine_msg = scales * 4 + hidden_size * 2
    t, e = max_tokens_per_rank, num_experts
    send = max(t * dispatch_msg, e * t * combine_msg)
    recv = max(e * t * dispatch_msg, e * t * combine_msg)
    signal = -(-(e * 4) // 128) * 128
    total = 2 * (send + recv + signal)
    return (total + DEEPEP_ALIGNMENT_BYTES) // DEEPEP_ALIGNMENT_BYTES * DEEPEP_ALIGNMENT_BYTES


def all2all_buffer_bytes(
    backend: str,
    *,
    hidden_size: int,
    num_experts: int,
    ep_size: int,
    max_tokens_per_dp_rank: int,
    internode: bool = False,
    buffer_mb: int = DEEPEP_BUFFER_SIZE_MB,
) -> int:
    """GPU bytes one rank's expert-parallel all-to-all backend holds for the whole run (one buffer per rank,
    shared by all MoE layers through ``handle_cache``, distributed/device_communicators/all2all.py).

    They are allocated when the MoE layers build their prepare/finalize objects after weight loading
    (model_executor/layers/fused_moe/all2all_utils.py:236-275), by cudaMalloc / NVSHMEM outside PyTorch's
    allocator, so vLLM's profile sees them as non-torch memory before the KV cache is sized.

    - ``allgather_reducescatter`` (default; ``naive`` and ``pplx`` fall back to it): no persistent buffer;
      the gathered tokens are activations of the forward.
    - ``deepep_high_throughput`` (all2all.py:262-287): ``buffer_mb`` MiB NVLink buffer, the same again as
      RDMA buffer across nodes (0 within one node), plus DeepEP's 32 MiB workspace.
    - ``deepep_low_latency`` (all2all.py:330-364): ``buffer_mb`` MiB NVLink buffer plus the RDMA buffer of
      :func:`deepep_low_latency_rdma_bytes` for ``max_tokens_per_dp_rank`` tokens, plus the workspace.
    """
    key = backend.strip().lower()
    if key not in ALL2ALL_BACKENDS:
        raise InputError(
            f"--all2all-backend {backend!r} is not modelled; use one of {', '.join(sorted(ALL2ALL_BACKENDS))}"
        )
    if buffer_mb < 0:
        raise InputError(f"VLLM_DEEPEP_BUFFER_SIZE_MB must be >= 0 (got {buffer_mb})")
    nvl = buffer_mb * (1 << 20)
    if key == "deepep_high_throughput":
        return nvl + (nvl if internode else 0) + DEEPEP_WORKSPACE_BYTES
    if key == "deepep_low_latency":
        rdma = deepep_low_latency_rdma_bytes(
            max_tokens_per_dp_rank, hidden_size, ep_size, num_experts
        )
        return nvl + rdma + DEEPEP_WORKSPACE_BYTES
    return 0


# ------------------------------------------------------------------------------------ KV connectors
#: LMCache's defaults (lmcache/v1/config.py:90-96, LMCache 0.5.6): ``chunk_size`` 256 tokens,
#: ``max_local_cpu_size`` 5.0 GB (GiB: ``int(size * 1024**3)``, lmcache/v1/cache_engine.py:2106-2109).
LMCACHE_CHUNK_TOKENS = 256
LMCACHE_LOCAL_CPU_GIB = 5.0


def lmcache_gpu_buffer_bytes(
    kv_bytes_per_token: int, chunk_tokens: int = LMCACHE_CHUNK_TOKENS, enable_pd: bool = False
) -> int:
    """LMCache's GPU staging buffer on one rank: ``[2 (1 for MLA), layers, chunk_size, kv_heads x head_dim]``
    in the KV dtype (lmcache/v1/gpu_connector/gpu_connectors.py:191-202, 427-429), i.e. ``chunk_size`` tokens
    of this rank's KV; none when LMCache runs disaggregated (``enable_pd``, gpu_connector/utils.py:60-68)."""
    if chunk_tokens < 1:
        raise InputError(f"LMCache chunk_size must be >= 1 token (got {chunk_tokens})")
    return 0 if enable_pd else chunk_tokens * kv_bytes_per_token


def lmcache_host_bytes(max_local_cpu_gib: float = LMCACHE_LOCAL_CPU_GIB) -> int:
    """Pinned host bytes of LMCache's local CPU tier for ONE worker (every TP rank runs its own engine):
    ``int(max_local_cpu_size * 1024**3)`` (lmcache/v1/cache_engine.py:2106-2109)."""
    return gib_to_bytes(max_local_cpu_gib, "LMCACHE_MAX_LOCAL_CPU_SIZE")


#: P2pNcclConnector (vLLM 0.10-0.24; read in 0.11.0): ``kv_buffer_size`` default 1e9 bytes
#: (config/kv_transfer.py:34) and ``mem_pool_size_gb`` default 32 (kv_connector/v1/p2p/p2p_nccl_engine.py:27).
P2P_NCCL_KV_BUFFER_BYTES = 10**9
P2P_NCCL_POOL_GIB = 32


def p2p_nccl_host_pool_bytes(mem_pool_size_gib: float = P2P_NCCL_POOL_GIB) -> int:
    """Pinned host pool every P2pNccl engine allocates at start (producer and consumer alike):
    ``TensorMemoryPool(max_block_size=int(gb * 1024**3))`` rounded up to a power of two
    (p2p/tensor_memory_pool.py:66-95, p2p_nccl_engine.py:120-124, vLLM 0.11.0)."""
    size = gib_to_bytes(mem_pool_size_gib, "mem_pool_size_gb")
    if size < 512:
        raise InputError(f"mem_pool_size_gb {mem_pool_size_gib} is below the pool's 512-byte block")
    return 1 << (size - 1).bit_length()


# ------------------------------------------------------------------------------ --speculative-config methods
#: config/speculative.py:53-99. The MTP family reuses the target's decoder layer (``mtp_memory``).
NGRAM_METHODS = frozenset({"ngram", "ngram_gpu", "suffix"})
EAGLE_METHODS = frozenset({"eagle", "eagle3"})
DRAFT_MODEL_METHODS = frozenset({"draft_model"})
#: Only the layouts checked against their model files (enorm/hnorm/eh_proj/shared_head, or Qwen3-Next's fc).
MTP_METHODS = frozenset({"mtp", "deepseek_mtp", "glm4_moe_mtp", "qwen3_next_mtp"})
SpeculativeKind = Literal["ngram", "eagle", "draft_model", "mtp"]


def speculative_kind(method: str) -> SpeculativeKind:
    """Which memory model a ``--speculative-config`` ``method`` needs; a clear error for the rest."""
    key = method.strip().lower()
    if key in NGRAM_METHODS:
        return "ngram"
    if key in EAGLE_METHODS:
        return "eagle"
    if key in DRAFT_MODEL_METHODS:
        return "draft_model"
    if key in MTP_METHODS:
        return "mtp"
    known = sorted(NGRAM_METHODS | EAGLE_METHODS | DRAFT_MODEL_METHODS | MTP_METHODS)
    raise InputError(
        f"speculative method {method!r} is not modelled; use one of {', '.join(known)}"
    )
