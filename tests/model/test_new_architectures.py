"""llama4, mistral3 (Pixtral) and mllama (Llama 3.2 Vision): counts, independent checks and KV layout.

Check (a), our count equals transformers' on the meta device for the real catalogue files, is the parametrized
``test_params_vs_transformers.py``. Here: (b) independent figures (published parameter counts, the dev set's
logged vLLM weights and KV capacity), the KV bytes per token of each new kind, and small synthetic configs of
each architecture built by transformers on CPU (layouts the released files do not exercise: interleaved dense
layers, attention biases, explicit MoE/NoPE layer lists, projector biases, several feature layers, other tile
sets). See the "Added from published values" section of ``catalog/SOURCES.md``.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path

import pytest

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.estimator import estimate
from vramplan.memory.kv_cache import kv_bytes_per_token, kv_cache_bytes, kv_layer_groups
from vramplan.model import catalog
from vramplan.model.hf_config import mllama_cross_attention, spec_from_config
from vramplan.model.params import count_params

ROOT = Path(__file__).resolve().parents[2]
LOGS = {c["id"]: c for c in json.loads((ROOT / "tests" / "data" / "real_logs.json").read_text())}
GiB = 1 << 30
BF16 = Fraction(2)

SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
MISTRAL = "mistralai/Mistral-Small-3.1-24B-Instruct-2503"
VISION = "meta-llama/Llama-3.2-11B-Vision-Instruct"
SCOUT_LOG = "llmdplanner-meta-llama-llama-4-scout-tp4pp1dp1--8192"
MISTRAL_LOG = "llmdplanner-mistralai-mistral-small--tp1pp1dp1--8192"


def _spec(repo_id: str):
    return spec_from_config(catalog.catalogue()[repo_id], name=repo_id)


def _vision(spec) -> int:
    return sum(n for name, n in spec.extra_params if not name.startswith("language_model."))


# --- (b) independent figures ---------------------------------------------------------------------------------


def test_new_files_are_in_the_transformers_check() -> None:
    stems = {p.stem for p in (ROOT / "src" / "vramplan" / "model" / "catalog").glob("*.json")}
    for repo_id in (SCOUT, MISTRAL, VISION):
        assert repo_id.replace("/", "__", 1) in stems


def test_scout_matches_published_counts() -> None:
    # Meta's model card: 109B total parameters, 17B active (the text decoder: 1 routed expert of 16 + shared).
    spec = _spec(SCOUT)
    c = count_params(spec)
    assert c.total == 108_641_793_536
    assert round(c.total / 1e9) == 109
    assert round((c.active_per_token - _vision(spec)) / 1e9) == 17
    moe = spec.moe
    assert (
        moe is not None
        and moe.dense_layers == ()
        and moe.shared_intermediate_size == moe.expert_intermediate_size == 8192
    )
    assert spec.intermediate_size == 16_384  # intermediate_size_mlp (no dense layer in Scout)


def test_scout_weights_match_logged_vllm_load_tp4() -> None:
    """vLLM 0.19, TP4, 'Model loading took 53.12 GiB' per GPU.

    Our weights per rank (text decoder; vision encoder and adapter sharded four ways, as vLLM builds them from
    Column/RowParallelLinear; patch/position embeddings, norms and projector replicated) plus vLLM's RoPE cos/sin
    cache, one bf16 buffer of max_position_embeddings x head_dim (10,485,760 x 128 x 2 B = 2.5 GiB, because
    Scout's config allows a 10M context; engines/vllm.py adds it as rotary_cache_bytes) reproduce the log.
    """
    spec = _spec(SCOUT)
    weights = estimate(SCOUT, dtype="bfloat16", tensor_parallel_size=4).component("weights")
    rope_cache = spec.max_position_embeddings * spec.head_dim * 2
    assert (weights.per_gpu_bytes + rope_cache) / GiB == pytest.approx(
        LOGS[SCOUT_LOG]["weights_gib"], abs=0.01
    )
    # With the vision tower replicated instead the sum would be 1.2 GiB over the log.
    assert weights.inputs["by_component_per_gpu"]["vision"] < 0.3 * _vision(spec) * 2
    # unsharded checkpoint: about 202 GiB of bf16
    assert weights.inputs["unsharded_bytes"] / GiB == pytest.approx(202.36, abs=0.01)


def test_scout_kv_capacity_matches_logged_vllm() -> None:
    # 16.75 GiB of KV cache held 365,968 tokens per GPU: 48 layers x 2 KV heads per rank x (128 + 128) x 2 B.
    spec = _spec(SCOUT)
    per_token = kv_bytes_per_token(spec, BF16, tp=4)
    assert per_token == 48 * 2 * 256 * 2
    log = LOGS[SCOUT_LOG]
    assert log["available_kv_cache_gib"] * GiB / per_token == pytest.approx(
        log["kv_cache_tokens"], rel=0.001
    )


def test_mistral_small_matches_published_and_logged_figures() -> None:
    c = count_params(_spec(MISTRAL))
    assert c.total == 24_011_361_280 and round(c.total / 1e9) == 24  # "24B" (model card)
    ours = estimate(MISTRAL, dtype="bfloat16").component("weights").inputs["unsharded_bytes"] / GiB
    log = LOGS[MISTRAL_LOG]
    assert ours == pytest.approx(log["weights_gib"], rel=0.002)  # 44.72 vs 44.76 GiB
    # 28.19 GiB of KV cache held 184,752 tokens: 40 full layers x 8 KV heads x 256 x 2 B = 163,840 B/token.
    per_token = kv_bytes_per_token(_spec(MISTRAL), BF16)
    assert per_token == 163_840
    assert log["available_kv_cache_gib"] * GiB / per_token == pytest.approx(
        log["kv_cache_tokens"], rel=0.001
    )


def test_mistral_small_32_log_has_the_same_weights() -> None:
    # Mistral-Small-3.2-2506 is a fine-tune of 3.1 with the same shapes: the dev set logs the same 44.76 GiB.
    same = [
        c
        for c in LOGS.values()
        if c["model"] == "mistralai/Mistral-Small-3.2-24B-Instruct-2506" and c.get("weights_gib")
    ]
    assert same and {c["weights_gib"] for c in same} == {LOGS[MISTRAL_LOG]["weights_gib"]}


def test_mistral_small_is_untied() -> None:
    # The checkpoint stores lm_head.weight (44.76 GiB in vLLM needs it); transformers 5 ties when the file says
    # nothing (Mistral3Config.tie_word_embeddings defaults to True), hence the explicit key in the catalogue file.
    raw = dict(catalog.catalogue()[MISTRAL])
    assert raw["tie_word_embeddings"] is False
    del raw["tie_word_embeddings"]
    assert not spec_from_config(
        raw
    ).tie_word_embeddings  # the text config (MistralConfig: False) decides


def test_llama32_vision_matches_published_count() -> None:
    # Meta's model card gives 10.6B for Llama 3.2 11B Vision; we count 10.67B (the card truncates).
    spec = _spec(VISION)
    c = count_params(spec)
    assert c.total == 10_670_220_835
    assert 10.6 <= c.total / 1e9 < 10.7
    assert c.by_component["cross_attention"] == 8 * (2 * 128 + 2)
    assert c.embedding == (128_256 + 8) * 4096 and c.by_component["lm_head"] == 128_256 * 4096


# --- KV bytes per token of each new kind ---------------------------------------------------------------------


def test_scout_chunked_layers_are_sliding_with_the_chunk_as_window() -> None:
    spec = _spec(SCOUT)
    # NoPE layers (every 4th: 3, 7, ...) attend globally; RoPE layers attend within 8192-token chunks.
    assert [i for i, t in enumerate(spec.layer_types) if t == "full_attention"] == list(
        range(3, 48, 4)
    )
    assert spec.sliding_window == 8192
    groups = {g.kind: g for g in kv_layer_groups(spec, BF16)}
    assert (groups["full"].layers, groups["sliding"].layers) == (12, 36)
    assert (
        groups["full"].bytes_per_token_per_layer
        == groups["sliding"].bytes_per_token_per_layer
        == 8 * 256 * 2
    )
    # A chunked layer needs at most C - 1 past tokens (the last token of a chunk sees the C - 1 before it):
    assert groups["sliding"].tokens_held(100_000) == 8191
    assert groups["sliding"].tokens_held(5000) == 5000
    assert kv_bytes_per_token(spec, BF16) == 48 * 4096
    assert kv_cache_bytes(spec, BF16, 100_000, 1) == 12 * 100_000 * 4096 + 36 * 8191 * 4096


def test_llama4_without_chunk_size_is_all_full_attention() -> None:
    raw = json.loads(json.dumps(catalog.catalogue()[SCOUT]))
    raw["text_config"]["attention_chunk_size"] = None
    spec = spec_from_config(raw)
    assert set(spec.layer_types) == {"full_attention"} and spec.sliding_window is None


def test_mistral_small_kv_is_full_attention() -> None:
    spec = _spec(MISTRAL)
    assert set(spec.layer_types) == {"full_attention"} and spec.sliding_window is None
    assert kv_bytes_per_token(spec, BF16, tp=2) == 40 * 4 * 256 * 2


def test_llama32_vision_kv() -> None:
    # Stated approximation: all 40 layers counted as full attention (vLLM pages them together); the 8
    # cross-attention layers really hold image KV: 4 tiles x (40 x 40 patches + 1) = 6404 tokens per image.
    spec = _spec(VISION)
    assert set(spec.layer_types) == {"full_attention"} and spec.num_layers == 40
    assert kv_bytes_per_token(spec, BF16) == 40 * 8 * 256 * 2
    layers, tokens = mllama_cross_attention(catalog.catalogue()[VISION])
    assert layers == (3, 8, 13, 18, 23, 28, 33, 38) and tokens == 6404
    per_image = len(layers) * tokens * spec.num_kv_heads * (spec.head_dim + spec.v_head_dim) * 2
    assert per_image == 209_846_272


def test_new_types_refuse_what_they_cannot_count() -> None:
    raw = json.loads(json.dumps(catalog.catalogue()[MISTRAL]))
    raw["vision_config"]["model_type"] = "siglip_vision_model"
    with pytest.raises(UnsupportedModelError):
        spec_from_config(raw)
    raw = json.loads(json.dumps(catalog.catalogue()[MISTRAL]))
    raw["text_config"]["model_type"] = (
        "qwen2"  # ministral3 is Mistral's layout (Devstral 2) and is counted
    )
    with pytest.raises(UnsupportedModelError):
        spec_from_config(raw)
    raw = json.loads(json.dumps(catalog.catalogue()[SCOUT]))
    raw["text_config"]["no_rope_layers"] = [1, 0]
    with pytest.raises(ConfigError):
        spec_from_config(raw)
    for bad in (0, -3, "1408", True, [1408]):
        raw = json.loads(json.dumps(catalog.catalogue()[VISION]))
        raw["vision_config"]["hidden_size"] = bad
        with pytest.raises(ConfigError):
            spec_from_config(raw)


# --- small synthetic configs, built by transformers on CPU ---------------------------------------------------

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _transformers_count(raw: dict) -> int:
    raw = json.loads(json.dumps(raw))
    model_type = raw.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, raw["architectures"][0])._from_config(config)
    return sum(p.numel() for p in model.parameters())


_L4_VISION = dict(
    hidden_size=64,
    image_size=56,
    patch_size=14,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    vision_output_dim=48,
    projector_input_dim=40,
    projector_output_dim=40,
    pixel_shuffle_ratio=0.5,
    num_channels=3,
    model_type="llama4_vision_model",
)
_L4_TEXT = dict(
    model_type="llama4_text",
    vocab_size=300,
    hidden_size=64,
    intermediate_size=48,
    intermediate_size_mlp=80,
    num_hidden_layers=6,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=24,
    num_local_experts=3,
    num_experts_per_tok=1,
    attention_chunk_size=32,
    max_position_embeddings=256,
)

SYNTHETIC = {
    "llama4-interleaved-bias": dict(
        architectures=["Llama4ForConditionalGeneration"],
        model_type="llama4",
        tie_word_embeddings=False,
        text_config=dict(
            _L4_TEXT, interleave_moe_layer_step=2, attention_bias=True, use_qk_norm=True
        ),
        vision_config=_L4_VISION,
    ),
    "llama4-explicit-layers": dict(
        architectures=["Llama4ForConditionalGeneration"],
        model_type="llama4",
        tie_word_embeddings=False,
        text_config=dict(
            _L4_TEXT, moe_layers=[0, 4, 5], no_rope_layers=[1, 1, 0, 1, 0, 1], use_qk_norm=False
        ),
        vision_config=dict(_L4_VISION, image_size=70, num_attention_heads=8),
    ),
    "llama4-text-only": dict(
        _L4_TEXT, architectures=["Llama4ForCausalLM"], interleave_moe_layer_step=3
    ),
    "mistral3-bias-two-feature-layers": dict(
        architectures=["Mistral3ForConditionalGeneration"],
        model_type="mistral3",
        tie_word_embeddings=False,
        multimodal_projector_bias=True,
        spatial_merge_size=3,
        vision_feature_layer=[-1, -2],
        text_config=dict(
            model_type="mistral",
            vocab_size=300,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=32,
            sliding_window=None,
        ),
        vision_config=dict(
            model_type="pixtral",
            hidden_size=48,
            intermediate_size=80,
            num_hidden_layers=2,
            num_attention_heads=4,
            head_dim=12,
            image_size=64,
            patch_size=8,
        ),
    ),
    "mistral3-tied": dict(
        architectures=["Mistral3ForConditionalGeneration"],
        model_type="mistral3",
        tie_word_embeddings=True,
        text_config=dict(
            model_type="mistral",
            vocab_size=300,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            sliding_window=16,
        ),
        vision_config=dict(
            model_type="pixtral",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            head_dim=16,
            image_size=32,
            patch_size=4,
        ),
    ),
    "mllama-small": dict(
        architectures=["MllamaForConditionalGeneration"],
        model_type="mllama",
        text_config=dict(
            model_type="mllama_text_model",
            vocab_size=300,
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=5,
            num_attention_heads=4,
            num_key_value_heads=2,
            cross_attention_layers=[1, 3],
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        ),
        vision_config=dict(
            model_type="mllama_vision_model",
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_global_layers=2,
            attention_heads=4,
            image_size=28,
            patch_size=14,
            max_num_tiles=2,
            supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]],
            vision_output_dim=96,
            intermediate_layers_indices=[0, 2],
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_config_matches_transformers(name: str) -> None:
    raw = SYNTHETIC[name]
    assert count_params(spec_from_config(raw)).total == _transformers_count(raw)


def test_synthetic_llama4_layout() -> None:
    spec = spec_from_config(SYNTHETIC["llama4-explicit-layers"])
    assert spec.moe is not None and spec.moe.dense_layers == (1, 2, 3)
    assert spec.layer_types == (
        "sliding_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
    )
    assert spec.sliding_window == 32
    spec = spec_from_config(SYNTHETIC["llama4-interleaved-bias"])
    assert spec.moe is not None and spec.moe.dense_layers == (
        0,
        2,
        4,
    )  # MoE at step - 1, 2 * step - 1, ...
    assert spec.qkv_bias and spec.o_bias
