"""Hybrid / state-space families: our parameter count equals transformers' meta-device count, for the
published configs (bundled catalogue, also checked by test_params_vs_transformers.py) and for small synthetic
variants that exercise each config field the builders read (layer patterns, MoE placement, biases, ties)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
HYBRID_TYPES = ("qwen3_next", "qwen3_5", "qwen3_5_moe", "nemotron_h")
PUBLISHED = sorted(
    p for p in CATALOG.glob("*.json") if json.loads(p.read_text()).get("model_type") in HYBRID_TYPES
)


def meta_count(raw: dict[str, Any]) -> int:
    """Parameters of the ``architectures`` class (else AutoModelForCausalLM) built on the meta device."""
    raw = dict(raw)
    raw.pop("quantization_config", None)
    raw.pop("auto_map", None)
    config = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = (getattr(config, "architectures", None) or [None])[0]
        if arch and hasattr(transformers, arch):
            model = getattr(transformers, arch)._from_config(config)
        else:
            model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def test_every_published_hybrid_config_is_bundled() -> None:
    assert {json.loads(p.read_text())["model_type"] for p in PUBLISHED} == set(HYBRID_TYPES)
    assert len(PUBLISHED) == 8


@pytest.mark.parametrize("path", PUBLISHED, ids=[p.stem for p in PUBLISHED])
def test_published_configs_match_transformers(path: Path) -> None:
    raw = json.loads(path.read_text())
    spec = spec_from_config(raw)
    assert count_params(spec).total == meta_count(raw)
    assert spec.state is not None
    assert spec.attention_layers + spec.state.num_layers <= spec.num_layers


_TINY = dict(vocab_size=1000, hidden_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
#: The attention most variants use: 4 query heads sharing 2 KV heads.
_GQA = dict(num_attention_heads=4, num_key_value_heads=2)
#: Qwen gated-DeltaNet shapes: fewer key than value heads, so the conv and state widths differ.
_GDN = dict(linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16)
#: A Qwen3.5-MoE text decoder (with ``_TINY``): a routed MoE with a wider shared expert in every layer.
_QWEN3_5_MOE_TEXT = dict(
    num_hidden_layers=4,
    **_GQA,
    head_dim=16,
    moe_intermediate_size=24,
    shared_expert_intermediate_size=40,
    num_experts=6,
    num_experts_per_tok=2,
    **_GDN,
    linear_value_head_dim=16,
)
#: A small Qwen3.5 vision tower (Qwen3_5VisionConfig fields).
_QWEN3_5_VISION = dict(
    hidden_size=32, intermediate_size=48, num_heads=2, patch_size=4, out_hidden_size=64
)
#: What both Kimi-Linear variants share: MLA sizes and a 2-of-N MoE after the dense layers.
_KIMI_LINEAR = dict(
    num_attention_heads=4,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_experts_per_token=2,
    kv_lora_rank=32,
    qk_nope_head_dim=16,
    qk_rope_head_dim=8,
)


def _config(
    model_type: str, architecture: str, *parts: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A config.json of ``architecture``: the shared ``parts`` in order, then the variant's own fields."""
    config: dict[str, Any] = dict(model_type=model_type, architectures=[architecture])
    for part in (*parts, fields):
        config.update(part)
    return config


SYNTHETIC: dict[str, dict[str, Any]] = {
    "qwen3_next_sparse_step_and_mlp_only": _config(
        "qwen3_next",
        "Qwen3NextForCausalLM",
        _TINY,
        _GQA,
        _GDN,
        num_hidden_layers=6,
        head_dim=16,
        intermediate_size=96,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=48,
        num_experts=4,
        num_experts_per_tok=2,
        decoder_sparse_step=2,
        mlp_only_layers=[3],
        full_attention_interval=3,
        linear_value_head_dim=8,
        linear_conv_kernel_dim=3,
    ),
    "qwen3_5_text_layer_types": _config(
        "qwen3_5_text",
        "Qwen3_5ForCausalLM",
        _TINY,
        num_hidden_layers=3,
        layer_types=["full_attention", "linear_attention", "linear_attention"],
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=32,
        intermediate_size=80,
        linear_num_key_heads=2,
        linear_num_value_heads=6,
        linear_key_head_dim=8,
        linear_value_head_dim=16,
        tie_word_embeddings=True,
    ),
    "qwen3_5_moe_text": _config(
        "qwen3_5_moe_text", "Qwen3_5MoeForCausalLM", _TINY, _QWEN3_5_MOE_TEXT
    ),
    "qwen3_5_vision": _config(
        "qwen3_5",
        "Qwen3_5ForConditionalGeneration",
        text_config=dict(
            _TINY,
            num_hidden_layers=4,
            **_GQA,
            head_dim=16,
            intermediate_size=96,
            **_GDN,
            linear_value_head_dim=8,
        ),
        vision_config=dict(
            _QWEN3_5_VISION,
            depth=2,
            temporal_patch_size=2,
            spatial_merge_size=2,
            num_position_embeddings=64,
        ),
    ),
    "qwen3_5_moe_vision_tied": _config(
        "qwen3_5_moe",
        "Qwen3_5MoeForConditionalGeneration",
        tie_word_embeddings=True,
        text_config=dict(_TINY, **_QWEN3_5_MOE_TEXT),
        vision_config=dict(_QWEN3_5_VISION, depth=1, num_position_embeddings=16),
    ),
    "nemotron_h_all_block_kinds": _config(
        "nemotron_h",
        "NemotronHForCausalLM",
        _TINY,
        _GQA,
        hybrid_override_pattern="M*-EM",
        head_dim=16,
        mamba_num_heads=8,
        mamba_head_dim=16,
        ssm_state_size=16,
        n_groups=2,
        conv_kernel=3,
        intermediate_size=96,
        moe_intermediate_size=32,
        moe_shared_expert_intermediate_size=48,
        n_routed_experts=4,
        num_experts_per_tok=2,
        mlp_bias=True,
        use_bias=True,
    ),
    "nemotron_h_latent_moe_block_types": _config(
        "nemotron_h",
        "NemotronHForCausalLM",
        _TINY,
        layers_block_type=["mamba", "moe", "attention", "moe"],
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=8,
        mamba_num_heads=4,
        mamba_head_dim=8,
        ssm_state_size=8,
        n_groups=1,
        intermediate_size=96,
        moe_intermediate_size=32,
        moe_shared_expert_intermediate_size=16,
        moe_latent_size=24,
        n_routed_experts=5,
        num_experts_per_tok=2,
        use_conv_bias=False,
    ),
    "granitemoehybrid_moe": _config(
        "granitemoehybrid",
        "GraniteMoeHybridForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=3,
        layer_types=["mamba", "attention", "mamba"],
        intermediate_size=96,
        shared_intermediate_size=48,
        num_local_experts=4,
        num_experts_per_tok=2,
        mamba_n_heads=8,
        mamba_d_head=16,
        mamba_d_state=8,
        mamba_n_groups=2,
        attention_bias=True,
    ),
    "granitemoehybrid_dense": _config(
        "granitemoehybrid",
        "GraniteMoeHybridForCausalLM",
        _TINY,
        num_hidden_layers=2,
        layer_types=["attention", "mamba"],
        num_attention_heads=4,
        num_key_value_heads=4,
        shared_intermediate_size=80,
        num_local_experts=0,
        mamba_n_heads=4,
        mamba_d_state=8,
        tie_word_embeddings=True,
    ),
    "jamba": _config(
        "jamba",
        "JambaForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=6,
        attn_layer_period=3,
        attn_layer_offset=1,
        expert_layer_period=2,
        expert_layer_offset=0,
        intermediate_size=96,
        num_experts=4,
        num_experts_per_tok=2,
        mamba_d_state=8,
        mamba_d_conv=3,
        mamba_expand=2,
        mamba_proj_bias=True,
    ),
    "falcon_h1_rms_norm_biases": _config(
        "falcon_h1",
        "FalconH1ForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=2,
        head_dim=24,
        intermediate_size=96,
        mamba_d_ssm=128,
        mamba_n_heads=8,
        mamba_d_head=16,
        mamba_n_groups=2,
        mamba_d_state=8,
        mamba_rms_norm=True,
        projectors_bias=True,
        mamba_proj_bias=True,
        attention_bias=True,
        mlp_bias=True,
    ),
    "falcon_h1_defaults": _config(
        "falcon_h1",
        "FalconH1ForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=2,
        intermediate_size=96,
        mamba_d_ssm=None,
        mamba_n_heads=8,
        mamba_d_state=8,
    ),
    "mamba": _config(
        "mamba", "MambaForCausalLM", _TINY, num_hidden_layers=2, state_size=8, expand=3
    ),
    "mamba2": _config(
        "mamba2",
        "Mamba2ForCausalLM",
        _TINY,
        num_hidden_layers=2,
        num_heads=8,
        head_dim=16,
        state_size=8,
        n_groups=2,
    ),
    "lfm2_multiplier": _config(
        "lfm2",
        "Lfm2ForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=4,
        full_attn_idxs=[1, 3],
        intermediate_size=300,
        block_ffn_dim_multiplier=1.5,
        block_multiple_of=32,
        conv_L_cache=4,
        conv_bias=True,
    ),
    "lfm2_untied_no_adjust": _config(
        "lfm2",
        "Lfm2ForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=2,
        layer_types=["conv", "full_attention"],
        intermediate_size=96,
        block_auto_adjust_ff_dim=False,
        tie_word_embeddings=False,
    ),
    "kimi_linear_q_lora": _config(
        "kimi_linear",
        "KimiLinearForCausalLM",
        _TINY,
        _KIMI_LINEAR,
        num_hidden_layers=4,
        num_key_value_heads=4,
        num_experts=6,
        num_shared_experts=2,
        first_k_dense_replace=2,
        q_lora_rank=24,
        v_head_dim=12,
        linear_attn_config=dict(
            kda_layers=[1, 2, 4],
            full_attn_layers=[3],
            num_heads=2,
            head_dim=16,
            short_conv_kernel_size=3,
        ),
    ),
    "minimax_lightning": _config(
        "minimax",
        "MiniMaxForCausalLM",
        _TINY,
        _GQA,
        num_hidden_layers=4,
        head_dim=16,
        intermediate_size=48,
        num_local_experts=3,
        num_experts_per_tok=2,
        layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention"],
    ),
    "kimi_linear_defaults_pattern": _config(
        "kimi_linear",
        "KimiLinearForCausalLM",
        _TINY,
        _KIMI_LINEAR,
        num_hidden_layers=5,
        num_experts=4,
        v_head_dim=16,
        linear_attn_config=dict(num_heads=2, head_dim=8),
    ),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_variants_match_transformers(name: str) -> None:
    raw = SYNTHETIC[name]
    assert count_params(spec_from_config(raw)).total == meta_count(raw)


def test_layer_kinds_follow_the_config() -> None:
    spec = spec_from_config(SYNTHETIC["nemotron_h_all_block_kinds"])
    assert spec.layer_types == (
        "no_attention",
        "full_attention",
        "no_attention",
        "no_attention",
        "no_attention",
    )
    assert spec.state is not None and spec.state.layers == (0, 4) and spec.state.kind == "mamba2"
    falcon = spec_from_config(SYNTHETIC["falcon_h1_defaults"])  # attention and Mamba in every layer
    assert (
        falcon.attention_layers == 2 and falcon.state is not None and falcon.state.layers == (0, 1)
    )
    mamba = spec_from_config(SYNTHETIC["mamba"])
    assert mamba.attention_layers == 0


def test_bad_configs_get_one_line() -> None:
    bad = dict(SYNTHETIC["nemotron_h_all_block_kinds"], hybrid_override_pattern="M*X")
    with pytest.raises(ConfigError, match="unknown layer type 'X'"):
        spec_from_config(bad)
    bad = dict(SYNTHETIC["qwen3_5_text_layer_types"], layer_types=["full_attention"])
    with pytest.raises(ConfigError, match="layer_types has 1 entries"):
        spec_from_config(bad)
    bad = dict(SYNTHETIC["kimi_linear_q_lora"])
    bad["linear_attn_config"] = dict(bad["linear_attn_config"], kda_layers=[1, 2, 9])
    with pytest.raises(ConfigError, match="numbered 1..4"):
        spec_from_config(bad)
    with pytest.raises(ConfigError, match="mamba_n_heads"):
        spec_from_config(dict(SYNTHETIC["falcon_h1_defaults"], mamba_d_head=7))


def test_remote_code_only_kimi_k3_is_refused_in_one_line() -> None:
    raw = json.loads((Path(__file__).parent / "data" / "kimi_k3_excerpt.json").read_text())
    with pytest.raises(UnsupportedModelError, match="never runs remote code") as info:
        spec_from_config(raw)
    assert "\n" not in str(info.value)
