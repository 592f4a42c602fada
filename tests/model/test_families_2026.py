"""2025-2026 families: our parameter count equals transformers' meta-device count of the ``architectures``
class, for every shared config of these types and for synthetic sizes (layer patterns, biases, MoE layouts)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
#: The shared 2026 configs of the families built here, bundled in the catalogue (catalog/SOURCES.md).
BUNDLED = {
    "CohereForAI__aya-23-8B": 8_028_033_024,
    "LGAI-EXAONE__EXAONE-4.0-32B": 32_003_216_384,
    "MiniMaxAI__MiniMax-M2.7": 228_689_748_992,
    "Qwen__Qwen2.5-VL-7B-Instruct": 8_292_166_656,
    "allenai__Olmo-3.1-32B-Instruct": 32_233_522_176,
    "bigcode__starcoder2-7b": 7_173_923_840,
    "deepseek-ai__DeepSeek-V3.2": 671_877_929_216,
    "deepseek-ai__DeepSeek-V4-Flash": 284_332_230_231,
    "zai-org__GLM-5": 743_911_199_232,
    "mistralai__Devstral-Small-2-24B-Instruct-2512": 24_011_361_280,
    "google__gemma-4-26B-A4B": 25_805_933_872,
}


def meta_count(raw: dict) -> int:
    """transformers' own parameter count of the config's class, built on the meta device (no weights)."""
    raw = dict(raw)
    raw.pop("quantization_config", None)
    raw.pop("auto_map", None)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        raw[key] = None
    model_type = raw.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **raw)
    arch = (raw.get("architectures") or [None])[0]
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if arch and hasattr(transformers, arch):
            model = getattr(transformers, arch)._from_config(config)
        else:
            try:
                model = transformers.AutoModelForCausalLM.from_config(config)
            except ValueError:  # multimodal classes register under image-text-to-text only
                model = transformers.AutoModelForImageTextToText.from_config(config)
    return sum(p.numel() for p in model.parameters())


def check(raw: dict) -> None:
    expected = meta_count(raw)
    ours = count_params(spec_from_config(raw)).total
    assert ours == expected, f"transformers {expected:,}, ours {ours:,} (diff {ours - expected:+,})"


SMALL = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=5,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
)
MOE = dict(num_local_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)

SYNTHETIC: dict[str, dict] = {
    "granite": dict(SMALL, model_type="granite"),
    "granite_bias_tied": dict(
        SMALL, model_type="granite", attention_bias=True, mlp_bias=True, tie_word_embeddings=True
    ),
    "granitemoe": dict(SMALL, **MOE, model_type="granitemoe"),
    "granitemoeshared": dict(
        SMALL, **MOE, model_type="granitemoeshared", shared_intermediate_size=48
    ),
    "cohere": dict(SMALL, model_type="cohere"),
    "cohere_qk_norm": dict(SMALL, model_type="cohere", use_qk_norm=True, tie_word_embeddings=False),
    "cohere2": dict(SMALL, model_type="cohere2", sliding_window=64),
    "olmo2": dict(SMALL, model_type="olmo2"),
    "olmo3": dict(SMALL, model_type="olmo3", sliding_window=32),
    "starcoder2": dict(SMALL, model_type="starcoder2"),
    "starcoder2_nobias": dict(
        SMALL, model_type="starcoder2", use_bias=False, tie_word_embeddings=False
    ),
    "glm4": dict(SMALL, model_type="glm4"),
    "glm4_moe": dict(
        SMALL,
        model_type="glm4_moe",
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        first_k_dense_replace=2,
    ),
    "glm4_moe_qk": dict(
        SMALL,
        model_type="glm4_moe",
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        use_qk_norm=True,
        attention_bias=True,
        n_shared_experts=2,
    ),
    "exaone4": dict(SMALL, model_type="exaone4", sliding_window=32),
    "exaone4_full": dict(
        SMALL,
        model_type="exaone4",
        sliding_window=None,
        sliding_window_pattern=0,
        layer_types=["full_attention"] * 5,
    ),
    "smollm3": dict(SMALL, model_type="smollm3"),
    "seed_oss": dict(SMALL, model_type="seed_oss"),
    "seed_oss_outbias": dict(SMALL, model_type="seed_oss", attention_out_bias=True),
    "ernie4_5": dict(SMALL, model_type="ernie4_5"),
    "ernie4_5_bias": dict(SMALL, model_type="ernie4_5", use_bias=True, tie_word_embeddings=False),
    "ernie4_5_moe": dict(
        SMALL,
        model_type="ernie4_5_moe",
        moe_num_experts=4,
        moe_k=2,
        moe_intermediate_size=32,
        moe_layer_interval=2,
    ),
    "hunyuan_v1_dense": dict(SMALL, model_type="hunyuan_v1_dense", rope_theta=10000.0),
    "hunyuan_v1_moe": dict(
        SMALL, model_type="hunyuan_v1_moe", num_experts=4, moe_topk=2, rope_theta=10000.0
    ),
    "phimoe": dict(SMALL, model_type="phimoe", num_local_experts=4, num_experts_per_tok=2),
    "phimoe_bias": dict(
        SMALL,
        model_type="phimoe",
        num_local_experts=4,
        num_experts_per_tok=2,
        attention_bias=True,
        lm_head_bias=True,
    ),
    "minimax_m2": dict(SMALL, model_type="minimax_m2", num_local_experts=4, num_experts_per_tok=2),
    "mimo_v2_flash": dict(
        SMALL,
        model_type="mimo_v2_flash",
        n_routed_experts=4,
        num_experts_per_tok=2,
        v_head_dim=8,
        sliding_window=16,
    ),
}


@pytest.mark.parametrize("stem", sorted(BUNDLED))
def test_bundled_2026_config_matches_transformers(stem: str) -> None:
    raw = json.loads((CATALOG / f"{stem}.json").read_text())
    ours = count_params(spec_from_config(raw)).total
    assert ours == BUNDLED[stem] == meta_count(raw)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_config_matches_transformers(name: str) -> None:
    check(SYNTHETIC[name])


DSA = dict(
    SMALL,
    q_lora_rank=24,
    kv_lora_rank=16,
    qk_nope_head_dim=8,
    qk_rope_head_dim=8,
    v_head_dim=12,
    index_head_dim=16,
    index_n_heads=2,
    n_routed_experts=4,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    first_k_dense_replace=2,
)
SYNTHETIC.update(
    {
        "deepseek_v32": dict(DSA, model_type="deepseek_v32"),
        "glm_moe_dsa": dict(DSA, model_type="glm_moe_dsa"),
        "glm_moe_dsa_shared_indexer": dict(
            DSA,
            model_type="glm_moe_dsa",
            indexer_types=["full", "shared", "full", "shared", "shared"],
        ),
        "deepseek_v4": dict(
            {k: v for k, v in SMALL.items() if k != "intermediate_size"},
            model_type="deepseek_v4",
            num_key_value_heads=1,
            head_dim=32,
            qk_rope_head_dim=8,
            q_lora_rank=24,
            o_lora_rank=16,
            o_groups=2,
            index_head_dim=16,
            index_n_heads=2,
            n_routed_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            hc_mult=2,
            sliding_window=16,
            compress_ratios=[0, 4, 128, 4, 128, 0],
            num_hash_layers=2,
        ),
    }
)


@pytest.mark.parametrize(
    "name", ["deepseek_v32", "glm_moe_dsa", "glm_moe_dsa_shared_indexer", "deepseek_v4"]
)
def test_sparse_synthetic_matches_transformers(name: str) -> None:
    check(SYNTHETIC[name])


VL_TEXT = dict(SMALL, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
VL_VISION = dict(
    depth=2,
    hidden_size=32,
    intermediate_size=48,
    num_heads=2,
    out_hidden_size=64,
    deepstack_visual_indexes=[0, 1],
    num_position_embeddings=16,
)
SYNTHETIC.update(
    {
        "qwen2_5_vl_flat": dict(
            SMALL,
            model_type="qwen2_5_vl",
            architectures=["Qwen2_5_VLForConditionalGeneration"],
            vision_config=dict(
                depth=2, hidden_size=32, intermediate_size=48, num_heads=2, out_hidden_size=64
            ),
        ),
        "qwen2_5_vl_tied": dict(
            model_type="qwen2_5_vl",
            architectures=["Qwen2_5_VLForConditionalGeneration"],
            tie_word_embeddings=True,
            text_config=dict(SMALL),
            vision_config=dict(
                depth=1,
                hidden_size=32,
                intermediate_size=40,
                num_heads=2,
                out_hidden_size=64,
                spatial_merge_size=1,
            ),
        ),
        "qwen3_vl": dict(
            model_type="qwen3_vl",
            architectures=["Qwen3VLForConditionalGeneration"],
            text_config=dict(VL_TEXT),
            vision_config=dict(VL_VISION),
        ),
        "qwen3_vl_moe": dict(
            model_type="qwen3_vl_moe",
            architectures=["Qwen3VLMoeForConditionalGeneration"],
            text_config=dict(VL_TEXT),
            vision_config=dict(VL_VISION, deepstack_visual_indexes=[1]),
        ),
    }
)


@pytest.mark.parametrize("name", ["qwen2_5_vl_flat", "qwen2_5_vl_tied", "qwen3_vl", "qwen3_vl_moe"])
def test_vl_synthetic_matches_transformers(name: str) -> None:
    check(SYNTHETIC[name])


G4_TEXT = dict(
    SMALL,
    num_hidden_layers=6,
    global_head_dim=32,
    sliding_window=8,
    layer_types=["sliding_attention", "full_attention"] * 3,
    hidden_size_per_layer_input=0,
)
SYNTHETIC.update(
    {
        "gemma4_text_ple_shared": dict(
            G4_TEXT,
            model_type="gemma4_text",
            architectures=["Gemma4ForCausalLM"],
            hidden_size_per_layer_input=8,
            vocab_size_per_layer_input=100,
            num_kv_shared_layers=2,
            use_double_wide_mlp=True,
        ),
        "gemma4_moe_k_eq_v": dict(
            model_type="gemma4",
            architectures=["Gemma4ForConditionalGeneration"],
            text_config=dict(
                G4_TEXT,
                attention_k_eq_v=True,
                num_global_key_value_heads=1,
                enable_moe_block=True,
                num_experts=4,
                top_k_experts=2,
                moe_intermediate_size=24,
            ),
            vision_config=dict(
                hidden_size=32,
                intermediate_size=40,
                num_hidden_layers=1,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=8,
                patch_size=4,
                position_embedding_size=10,
            ),
        ),
        "gemma4_default_ple": dict(
            model_type="gemma4",
            architectures=["Gemma4ForConditionalGeneration"],
            text_config={k: v for k, v in G4_TEXT.items() if k != "hidden_size_per_layer_input"},
        ),
    }
)


@pytest.mark.parametrize(
    "name", ["gemma4_text_ple_shared", "gemma4_moe_k_eq_v", "gemma4_default_ple"]
)
def test_gemma4_synthetic_matches_transformers(name: str) -> None:
    check(SYNTHETIC[name])


def _lfm2_vl_raw(**overrides) -> dict:
    raw = json.loads(
        (
            Path(__file__).resolve().parents[1]
            / "data"
            / "model_configs_2026"
            / "LiquidAI__LFM2.5-VL-1.6B.json"
        ).read_text()
    )
    raw = dict(raw, **overrides)
    raw["vision_config"] = dict(raw["vision_config"], num_hidden_layers=2)
    return raw


@pytest.mark.parametrize(
    "overrides",
    [{}, {"projector_use_layernorm": True, "projector_bias": False, "downsample_factor": 1}],
    ids=["published", "layernorm-nobias"],
)
def test_lfm2_vl_vision_and_projector_equal_the_meta_delta(overrides: dict) -> None:
    """The SigLIP2 tower + projector counted here = meta count of Lfm2VlForConditionalGeneration minus the meta
    count of the same LFM2 text model alone (independent of the lfm2 text builder)."""
    from vramplan.model.families_vl import lfm2_vl_vision_params

    raw = _lfm2_vl_raw(**overrides)
    text = dict(raw["text_config"], tie_word_embeddings=True, architectures=["Lfm2ForCausalLM"])
    delta = meta_count(raw) - meta_count(text)
    ours = sum(n for _, n in lfm2_vl_vision_params(raw, raw["text_config"]["hidden_size"]))
    assert ours == delta


def test_lfm2_vl_whole_model_when_the_lfm2_builder_is_present() -> None:
    from vramplan.model.hf_config import _BUILDERS

    if "lfm2" not in _BUILDERS:
        pytest.skip("the lfm2 text builder (hybrid families) is not in this build")
    raw = _lfm2_vl_raw()
    assert count_params(spec_from_config(raw)).total == meta_count(raw)
