"""The generic meta-device path: any transformers decoder without a native builder is counted exactly on the
meta device, labelled as such, with its attention layout from the standard config fields; refused clearly
where those fields are not enough; remote-code-only models refused in one line."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.memory.kv_cache import kv_bytes_per_token
from vramplan.model import generic
from vramplan.model.hf_config import _BUILDERS, spec_from_config
from vramplan.model.params import count_params

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.model.test_families_2026 import meta_count

SHARED = Path(__file__).resolve().parents[1] / "data" / "model_configs_2026"
CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
TINY = dict(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=80,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)
#: Decoder architectures transformers builds that have no native builder here (a sample across layouts).
SAMPLE = {
    "olmo": dict(TINY),
    "stablelm": dict(TINY),
    "gpt_neox": dict({k: v for k, v in TINY.items() if k != "num_key_value_heads"}),
    "nemotron": dict(TINY),
    "helium": dict(TINY, head_dim=16),
    "glm": dict(TINY, head_dim=16),
    "arcee": dict(TINY),
    "qwen2_vl": dict(
        TINY,
        architectures=["Qwen2VLForConditionalGeneration"],
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2),
    ),
}


@pytest.mark.parametrize("model_type", sorted(SAMPLE))
def test_generic_count_equals_transformers(model_type: str) -> None:
    raw = dict(SAMPLE[model_type], model_type=model_type)
    assert model_type not in _BUILDERS
    spec = spec_from_config(raw)
    assert count_params(spec).total == meta_count(raw)
    assert any("generic (meta-device count)" in note for note in spec.notes)
    # KV layout from the standard fields: 2 x layers x kv heads x head_dim x bytes.
    kv = raw.get("num_key_value_heads", raw["num_attention_heads"])
    head_dim = raw.get("head_dim", raw["hidden_size"] // raw["num_attention_heads"])
    assert kv_bytes_per_token(spec, Fraction(2)) == 2 * raw["num_hidden_layers"] * kv * head_dim * 2


def test_generic_count_is_cached_by_config_hash() -> None:
    raw = dict(SAMPLE["olmo"], model_type="olmo")
    spec_from_config(raw)
    before = generic._meta_inventory.cache_info().hits
    spec_from_config(dict(raw))
    assert generic._meta_inventory.cache_info().hits == before + 1


def test_generic_sliding_layers_from_layer_types() -> None:
    raw = dict(TINY, model_type="olmo3", sliding_window=16)
    spec = generic.generic_builder(raw, "olmo3", "t")
    assert spec.layer_types == ("sliding_attention", "sliding_attention", "sliding_attention")
    assert spec.sliding_window == 16


def test_generic_refuses_state_layers() -> None:
    raw = dict(
        TINY,
        model_type="qwen3_next",
        num_hidden_layers=4,
        layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=16,
    )
    with pytest.raises(UnsupportedModelError, match="linear_attention"):
        generic.generic_builder(raw, "qwen3_next", "t")


def test_generic_refuses_without_attention_fields() -> None:
    raw = dict(model_type="mamba", vocab_size=96, hidden_size=64, num_hidden_layers=2)
    with pytest.raises(ConfigError, match="num_attention_heads"):
        generic.generic_builder(raw, "mamba", "t")


def test_remote_code_only_is_one_line() -> None:
    raw = json.loads((SHARED / "moonshotai__Kimi-K3.json").read_text())
    with pytest.raises(UnsupportedModelError) as info:
        spec_from_config(raw)
    message = str(info.value)
    assert "\n" not in message and "never runs remote code" in message


def test_kimi_k2_resolves_by_architecture() -> None:
    raw = json.loads((CATALOG / "moonshotai__Kimi-K2-Instruct.json").read_text())
    spec = spec_from_config(raw)
    assert spec.mla is not None and any("DeepseekV3ForCausalLM" in n for n in spec.notes)
    as_v3 = dict(raw, model_type="deepseek_v3")
    assert count_params(spec).total == meta_count(as_v3) == 1_026_408_209_408


def test_kimi_k25_generic_keeps_mla_and_int4() -> None:
    raw = json.loads((SHARED / "moonshotai__Kimi-K2.5.json").read_text())
    spec = spec_from_config(raw)
    assert spec.mla is not None
    # 61 layers x (512 + 64) latent x 2 bytes
    assert kv_bytes_per_token(spec, Fraction(2)) == 61 * 576 * 2
    assert spec.quantization_config is not None


def test_generic_gemma3n_kv_shared_layers_cache_nothing() -> None:
    raw = dict(
        model_type="gemma3n_text",
        architectures=["Gemma3nForCausalLM"],
        vocab_size=96,
        vocab_size_per_layer_input=96,
        hidden_size=64,
        hidden_size_per_layer_input=8,
        intermediate_size=[80] * 4,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"] * 2,
        num_kv_shared_layers=2,
        laurel_rank=4,
        altup_num_inputs=2,
        activation_sparsity_pattern=[0.0] * 4,
    )
    # gemma3n has a native builder now; the generic path must still get KV sharing right on its own
    spec = generic.generic_builder(raw, raw["model_type"], "gemma3n-tiny")
    assert count_params(spec).total == meta_count(raw) == count_params(spec_from_config(raw)).total
    # layers 2 and 3 reuse layers 0 and 1: only two layers keep K and V.
    assert kv_bytes_per_token(spec, Fraction(2)) == 2 * 2 * 16 * 2 * 2
