"""Hypothesis strategies: random but valid config.json dicts in the style of each supported family."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Realistic widths (multiples of 256) so block/group quantization never pads a toy tensor to a
# whole block, which real checkpoints never do either.
_HEAD_DIMS = st.sampled_from([64, 128, 256])
_WIDTH = st.integers(min_value=1, max_value=64).map(lambda k: 256 * k)


@st.composite
def attention(draw: st.DrawFn, max_heads: int = 64) -> dict[str, Any]:
    kv = draw(st.sampled_from([1, 2, 4, 8, 16]))
    groups = draw(st.sampled_from([1, 2, 4, 8]))
    heads = min(kv * groups, max_heads)
    heads -= heads % kv
    head_dim = draw(_HEAD_DIMS)
    explicit = draw(st.booleans())
    hidden = heads * head_dim if not explicit else draw(_WIDTH)
    cfg: dict[str, Any] = {
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
    }
    if explicit or hidden % heads:
        cfg["head_dim"] = head_dim
    return cfg


def _common(draw: st.DrawFn) -> dict[str, Any]:
    cfg = draw(attention())
    cfg.update(
        num_hidden_layers=draw(st.integers(min_value=1, max_value=96)),
        vocab_size=draw(st.integers(min_value=256, max_value=262_144)),
        intermediate_size=draw(_WIDTH),
        max_position_embeddings=draw(st.sampled_from([2048, 4096, 8192, 32768, 131072])),
        torch_dtype=draw(st.sampled_from(["bfloat16", "float16", "float32"])),
        tie_word_embeddings=draw(st.booleans()),
    )
    return cfg


@st.composite
def llama_like(draw: st.DrawFn) -> dict[str, Any]:
    cfg = _common(draw)
    cfg["model_type"] = draw(
        st.sampled_from(["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma"])
    )
    if cfg["model_type"] == "mistral" and draw(st.booleans()):
        cfg["sliding_window"] = draw(st.sampled_from([1024, 4096]))
    return cfg


@st.composite
def gemma_like(draw: st.DrawFn) -> dict[str, Any]:
    cfg = _common(draw)
    cfg["model_type"] = draw(st.sampled_from(["gemma2", "gemma3_text"]))
    cfg["sliding_window"] = draw(st.sampled_from([512, 1024, 4096]))
    return cfg


@st.composite
def mixtral_like(draw: st.DrawFn) -> dict[str, Any]:
    cfg = _common(draw)
    experts = draw(st.integers(min_value=2, max_value=64))
    cfg.update(
        model_type="mixtral",
        num_local_experts=experts,
        num_experts_per_tok=draw(st.integers(min_value=1, max_value=experts)),
    )
    return cfg


@st.composite
def qwen_moe_like(draw: st.DrawFn) -> dict[str, Any]:
    cfg = _common(draw)
    experts = draw(st.integers(min_value=2, max_value=128))
    cfg.update(
        model_type=draw(st.sampled_from(["qwen3_moe", "qwen2_moe"])),
        num_experts=experts,
        num_experts_per_tok=draw(st.integers(min_value=1, max_value=min(experts, 8))),
        moe_intermediate_size=draw(_WIDTH),
        decoder_sparse_step=draw(st.integers(1, 2)),
    )
    if cfg["model_type"] == "qwen2_moe":
        cfg["shared_expert_intermediate_size"] = draw(_WIDTH)
    return cfg


@st.composite
def deepseek_like(draw: st.DrawFn) -> dict[str, Any]:
    cfg = _common(draw)
    cfg.pop("head_dim", None)
    heads = draw(st.sampled_from([8, 16, 32, 128]))
    cfg.update(
        model_type=draw(st.sampled_from(["deepseek_v2", "deepseek_v3"])),
        num_attention_heads=heads,
        num_key_value_heads=heads,
        hidden_size=heads * 128,
        kv_lora_rank=draw(st.sampled_from([256, 512])),
        q_lora_rank=draw(st.sampled_from([0, 768, 1536])),
        qk_nope_head_dim=draw(st.sampled_from([64, 128])),
        qk_rope_head_dim=draw(st.sampled_from([32, 64])),
        v_head_dim=draw(st.sampled_from([64, 128])),
    )
    if draw(st.booleans()):
        experts = draw(st.integers(min_value=2, max_value=256))
        cfg.update(
            n_routed_experts=experts,
            num_experts_per_tok=draw(st.integers(1, min(8, experts))),
            moe_intermediate_size=draw(_WIDTH),
            n_shared_experts=draw(st.integers(0, 2)),
            first_k_dense_replace=draw(st.integers(0, 3)),
        )
    return cfg


valid_configs = st.one_of(
    llama_like(), gemma_like(), mixtral_like(), qwen_moe_like(), deepseek_like()
)


def spec_of(cfg: dict[str, Any]):
    from vramplan.model.hf_config import spec_from_config

    return spec_from_config(cfg, name="random")


def tp_choices(spec) -> list[int]:
    """TP sizes the estimator accepts for this spec."""
    out = []
    for tp in (1, 2, 4, 8):
        if spec.num_heads % tp:
            continue
        if spec.num_kv_heads > tp and spec.num_kv_heads % tp and spec.mla is None:
            continue
        out.append(tp)
    return out
