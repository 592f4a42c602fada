"""Weight bytes per GPU under tensor and pipeline parallelism, for any precision.

TP follows vLLM/Megatron: column-parallel layers split their output rows, row-parallel layers their
input columns, K/V projections keep at least one KV head per rank (replicated when TP > KV heads),
vocabulary tables are padded to a multiple of 64 rows and split, norms/routers are replicated.
PP gives each stage a contiguous run of layers; embeddings sit on the first stage, lm_head on the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from vramplan.model.params import TensorGroup, inventory
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision

VOCAB_PADDING = 64  # vLLM DEFAULT_VOCAB_PADDING_SIZE


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def rank_shape(
    group: TensorGroup, spec: ModelSpec, tp: int, vocab_padding: int = VOCAB_PADDING
) -> tuple[int, ...]:
    """Shape of one rank's shard of ``group`` under TP size ``tp``."""
    shape = list(group.shape)
    if tp == 1 and group.split != "vocab":
        return tuple(shape)
    if group.split == "column":
        shape[0] = _ceil(shape[0], tp)
    elif group.split == "row":
        shape[-1] = _ceil(shape[-1], tp)
    elif group.split == "kv_column":
        kv_heads = group.kv_heads or spec.num_kv_heads
        shape[0] = shape[0] // kv_heads * max(1, kv_heads // tp)
    elif group.split == "vocab":
        padded = _ceil(shape[0], vocab_padding) * vocab_padding if vocab_padding > 1 else shape[0]
        shape[0] = _ceil(padded, tp)
    return tuple(shape)


def pp_layer_split(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage, as vLLM's get_pp_indices assigns them (extras to the later stages)."""
    base = [num_layers // pp] * pp
    for i in range(num_layers % pp):
        base[-(i + 2) if pp > 1 and i + 2 <= pp else -1] += 1
    return base


@dataclass(frozen=True)
class WeightBytes:
    """Weight bytes: unsharded checkpoint-equivalent, per stage (one rank each), worst GPU, all GPUs."""

    unsharded: int
    per_stage: tuple[int, ...]
    by_component_per_gpu: dict[str, int]

    @property
    def per_gpu(self) -> int:
        return max(self.per_stage)

    def total(self, tp: int) -> int:
        return sum(self.per_stage) * tp


@lru_cache(maxsize=1024)
def weight_bytes(
    spec: ModelSpec,
    precision: Precision,
    tp: int = 1,
    pp: int = 1,
    vocab_padding: int = VOCAB_PADDING,
) -> WeightBytes:
    """Exact bytes of every weight tensor on each GPU."""
    n = spec.num_layers
    unsharded = sum(
        precision.group_bytes(g.role, g.name, g.shape, g.count, n, g.stage == "layer")
        for g in inventory(spec)
    )
    first = last = layer_total = 0
    layer_components: dict[str, int] = {}
    edge_components: dict[str, int] = {}
    for g in inventory(spec):
        shape = rank_shape(g, spec, tp, vocab_padding)
        nbytes = precision.group_bytes(g.role, g.name, shape, g.count, n, g.stage == "layer")
        if g.stage == "layer":
            layer_total += nbytes
            layer_components[g.component] = layer_components.get(g.component, 0) + nbytes
        elif g.stage == "first":
            first += nbytes
            edge_components[g.component] = edge_components.get(g.component, 0) + nbytes
        else:
            last += nbytes
            edge_components[g.component] = edge_components.get(g.component, 0) + nbytes
    splits = pp_layer_split(spec.num_layers, pp)
    per_stage = []
    for i, n_layers in enumerate(splits):
        stage = layer_total * n_layers // spec.num_layers
        if i == 0:
            stage += first
        if i == pp - 1:
            stage += last
        per_stage.append(stage)
    worst = max(range(pp), key=lambda i: per_stage[i])
    share = splits[worst] / spec.num_layers
    by_component = {k: int(v * share) for k, v in layer_components.items()}
    if pp == 1:
        for k, v in edge_components.items():
            by_component[k] = by_component.get(k, 0) + v
    return WeightBytes(
        unsharded=unsharded, per_stage=tuple(per_stage), by_component_per_gpu=by_component
    )


#: llama.cpp's model-size classes that change its recipe (llama-model.cpp: 80 layers -> LLM_TYPE_70B).
_SEVENTY_B_LAYERS = {"llama": 80, "qwen2": 80}


@lru_cache(maxsize=256)
def gguf_recipe(spec: ModelSpec, file_type: str) -> Precision:
    """``-q Q4_K_M``: the per-tensor types llama.cpp's quantizer gives this model (ggml.recipe_type)."""
    from vramplan.ggml import ModelFacts, category, recipe_layout

    rows: dict[str, int] = {}
    for g in inventory(spec):
        kind = category(g.name, g.role, spec.model_type)
        if kind is not None and len(g.shape) >= 2:
            rows.setdefault(kind, int(g.shape[-1]))
    facts = ModelFacts(
        arch=spec.model_type,
        n_layer=spec.num_layers,
        n_gqa=spec.num_heads // max(spec.num_kv_heads, 1),
        n_expert=spec.moe.num_experts if spec.moe else 0,
        is_70b=_SEVENTY_B_LAYERS.get(spec.model_type) == spec.num_layers,
        tied=spec.tie_word_embeddings,
    )
    layout = recipe_layout(file_type, facts, rows)
    return Precision(
        "float16",
        None,
        (
            f"{layout.label}: per-tensor types of llama.cpp's quantization recipe "
            "(llama_tensor_get_type: attn_v/ffn_down promoted on some layers, output Q6_K, norms F32)",
        ),
        layout,
    )
