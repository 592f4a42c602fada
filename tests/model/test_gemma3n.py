"""Gemma 3n against transformers: parameter counts on the meta device (published E2B / E4B configs and synthetic
variants) and the KV cache of a tiny random model run on CPU.

The multimodal class builds its vision tower with timm (``TimmWrapperModel``), which the test extra does not
install: without timm the tower is replaced by an empty module and its size is taken from
``TIMM_VISION_PARAMS``, which the timm-only test recounts where timm is installed.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vramplan.errors import ConfigError, UnsupportedModelError
from vramplan.memory.kv_cache import kv_bytes_per_token, kv_cache_bytes, kv_layer_groups
from vramplan.model.families_gemma3n import TIMM_VISION_PARAMS
from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
PUBLISHED = {
    name: json.loads((CATALOG / f"google__gemma-3n-{name}.json").read_text())
    for name in ("E2B", "E4B")
}


def _hf_config(raw: dict[str, Any]) -> Any:
    raw = dict(raw)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        raw[key] = None
    return transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)


def meta_count(raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    """transformers' count of the ``architectures`` class on the meta device; without timm (``monkeypatch``
    given) the timm vision tower is built as an empty module and its known size added."""
    config = _hf_config(raw)
    cls = getattr(transformers, raw["architectures"][0])
    extra = 0
    if monkeypatch is not None and cls.__name__ == "Gemma3nForConditionalGeneration":
        from transformers.models.gemma3n import modeling_gemma3n

        real = modeling_gemma3n.AutoModel.from_config

        def from_config(sub: Any, **kwargs: Any) -> Any:
            if sub.model_type == "gemma3n_vision":
                return torch.nn.Module()
            return real(sub, **kwargs)

        monkeypatch.setattr(modeling_gemma3n.AutoModel, "from_config", from_config)
        extra = TIMM_VISION_PARAMS[config.vision_config.architecture]
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls._from_config(config)
    return sum(p.numel() for p in model.parameters()) + extra


def _text_only(raw: dict[str, Any]) -> dict[str, Any]:
    return dict(raw["text_config"], architectures=["Gemma3nForCausalLM"])


# transformers 5.24 meta-device counts (Gemma3nForConditionalGeneration; Gemma3nForCausalLM of text_config).
EXPECTED = {"E2B": (5_418_464_192, 4_435_182_688), "E4B": (7_818_517_072, 6_835_235_568)}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_configs_match_transformers(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = PUBLISHED[name]
    spec = spec_from_config(raw)
    assert count_params(spec).total == meta_count(raw, monkeypatch) == EXPECTED[name][0]
    text = _text_only(raw)
    assert count_params(spec_from_config(text)).total == meta_count(text) == EXPECTED[name][1]


def test_with_timm_the_whole_class_and_the_tower_size_match() -> None:
    timm = pytest.importorskip("timm")
    for name, raw in PUBLISHED.items():
        assert count_params(spec_from_config(raw)).total == meta_count(raw) == EXPECTED[name][0]
    for arch, params in TIMM_VISION_PARAMS.items():
        with torch.device("meta"):
            tower = timm.create_model(arch, pretrained=False)
        assert sum(p.numel() for p in tower.parameters()) == params


def test_checkpoint_size_matches_the_published_figure() -> None:
    # The checkpoints also hold k/v projections and k norms for the KV-shared layers, which transformers drops on
    # load (_keys_to_ignore_on_load_unexpected); with them the totals are the Hub's "5.44B" / "7.85B" params
    # (figures recalled from the model pages, which could not be fetched here).
    for name, published in (("E2B", 5.44), ("E4B", 7.85)):
        text = PUBLISHED[name]["text_config"]
        shared = text["num_kv_shared_layers"]
        kv_width = text["num_key_value_heads"] * text["head_dim"]
        dropped = shared * (2 * kv_width * text["hidden_size"] + text["head_dim"])
        assert round(
            (count_params(spec_from_config(PUBLISHED[name])).total + dropped) / 1e9, 2
        ) == (published)


def test_per_layer_embeddings_are_their_own_component() -> None:
    c = count_params(spec_from_config(PUBLISHED["E2B"]))
    table = 262_144 * 30 * 256
    # table + its projection (30*256 x 2048) + norm (256) + per layer gate, projection (256 x 2048 each), norm
    assert c.by_component["per_layer_embeddings"] == (
        table + 30 * 256 * 2048 + 256 + 30 * (2 * 256 * 2048 + 2048)
    )
    assert c.embedding == 262_400 * 2048 + table
    assert c.by_component["vision"] == 294_126_912 + 128 * 2048 + 2 * 2048 + 2048 * 2048


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_kv_counts_only_the_layers_that_own_a_cache(name: str) -> None:
    spec = spec_from_config(PUBLISHED[name])
    groups = {g.kind: g for g in kv_layer_groups(spec, Fraction(2))}
    # 30 (E2B) or 35 (E4B) layers; the last 10 / 15 reuse: 20 own a cache, 16 sliding (512) + 4 full
    assert (groups["sliding"].layers, groups["full"].layers) == (16, 4)
    assert groups["sliding"].window == 512
    assert kv_bytes_per_token(spec, Fraction(2)) == 20 * 2 * 2 * 256 * 2
    # TP 2 splits the two KV heads; TP 4 cannot split them further (vLLM replicates)
    assert kv_bytes_per_token(spec, Fraction(2), tp=2) == 20 * 2 * 256 * 2
    assert kv_bytes_per_token(spec, Fraction(2), tp=4) == 20 * 2 * 256 * 2


def _tiny(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = dict(
        model_type="gemma3n_text",
        architectures=["Gemma3nForCausalLM"],
        vocab_size=96,
        vocab_size_per_layer_input=80,
        hidden_size=64,
        hidden_size_per_layer_input=8,
        intermediate_size=[96, 128, 96, 64, 128, 96],
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=5,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"] * 2,
        num_kv_shared_layers=3,
        laurel_rank=4,
        altup_num_inputs=3,
        activation_sparsity_pattern=[0.95, 0.0, 0.0, 0.0, 0.0, 0.0],
    )
    raw.update(overrides)
    return raw


def _multimodal(text: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = dict(
        model_type="gemma3n",
        architectures=["Gemma3nForConditionalGeneration"],
        text_config={k: v for k, v in text.items() if k != "architectures"},
        audio_config=dict(
            hidden_size=48,
            conf_num_attention_heads=4,
            conf_num_hidden_layers=2,
            conf_conv_kernel_size=3,
            input_feat_size=40,
            sscp_conv_channel_size=[8, 4],
            sscp_conv_kernel_size=[[3, 5], [3, 3]],
            sscp_conv_stride_size=[[2, 2], [1, 3]],
            vocab_size=16,
        ),
        vision_config=dict(hidden_size=2048, vocab_size=24),
    )
    raw.update(overrides)
    return raw


SYNTHETIC: dict[str, dict[str, Any]] = {
    "text_per_layer_widths": _tiny(),
    "text_no_sharing_untied_bias": _tiny(
        num_kv_shared_layers=0, tie_word_embeddings=False, attention_bias=True
    ),
    "text_one_width_altup_2": _tiny(intermediate_size=80, altup_num_inputs=2, laurel_rank=2),
    "text_defaults_pattern": {
        k: v for k, v in _tiny(num_kv_shared_layers=5).items() if k != "layer_types"
    }
    | dict(num_hidden_layers=10, intermediate_size=64, activation_sparsity_pattern=None),
    "multimodal_small_towers": _multimodal(_tiny()),
    "multimodal_untied": _multimodal(_tiny(num_kv_shared_layers=0), tie_word_embeddings=False),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_variants_match_transformers(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = SYNTHETIC[name]
    assert count_params(spec_from_config(raw)).total == meta_count(raw, monkeypatch)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layers=st.integers(2, 8),
    every=st.integers(1, 4),
    shared_frac=st.integers(0, 3),
    heads=st.sampled_from([2, 4]),
    kv=st.sampled_from([1, 2]),
    widths=st.lists(st.integers(8, 40), min_size=8, max_size=8),
    altup=st.integers(1, 4),
    ple=st.integers(1, 6),
    tied=st.booleans(),
)
def test_text_counts_match_transformers_for_any_shape(
    layers: int,
    every: int,
    shared_frac: int,
    heads: int,
    kv: int,
    widths: list[int],
    altup: int,
    ple: int,
    tied: bool,
) -> None:
    types = [
        "full_attention" if (i + 1) % every == 0 else "sliding_attention" for i in range(layers)
    ]
    shared = layers * shared_frac // 4
    first = layers - shared
    if shared and set(types[:first]) != set(types):
        shared = 0  # transformers refuses sharing a layer type no earlier layer produces
    raw = _tiny(
        num_hidden_layers=layers,
        layer_types=types,
        num_kv_shared_layers=shared,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        hidden_size=8 * heads,
        head_dim=8,
        intermediate_size=widths[:layers],
        altup_num_inputs=altup,
        hidden_size_per_layer_input=ple,
        tie_word_embeddings=tied,
        activation_sparsity_pattern=[0.0] * layers,
    )
    spec = spec_from_config(raw)
    assert count_params(spec).total == meta_count(raw)
    # exactly the first num_hidden_layers - num_kv_shared_layers layers keep a cache
    assert [bool(c) for c in spec.kv_layout] == [i < layers - shared for i in range(layers)]


def _real_cache_bytes(raw: dict[str, Any], batch: int, tokens: int) -> tuple[int, list[int]]:
    """Run a random tiny model on CPU with use_cache; (bytes of its K/V tensors, layers that hold any)."""
    config = _hf_config(raw)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Gemma3nForCausalLM._from_config(config, dtype=torch.float32).eval()
        ids = torch.randint(3, 80, (batch, tokens))
        with torch.no_grad():
            cache = model(input_ids=ids, use_cache=True).past_key_values
    total, layers = 0, []
    for i, layer in enumerate(cache.layers):
        held = [getattr(layer, a, None) for a in ("keys", "values")]
        held = [t for t in held if t is not None and t.numel()]
        if held:
            layers.append(i)
        total += sum(t.numel() * t.element_size() for t in held)
    return total, layers


@pytest.mark.parametrize("tokens", [3, 11])  # inside and beyond the 5-token window
def test_kv_bytes_equal_the_real_cache_tensors(tokens: int) -> None:
    raw = _tiny()
    spec = spec_from_config(raw)
    batch = 2
    real, layers = _real_cache_bytes(raw, batch, tokens)
    assert layers == [0, 1, 2]  # layers 3-5 reuse layers 1 (sliding) and 2 (full)
    assert real == kv_cache_bytes(spec, Fraction(4), tokens, batch)


@pytest.mark.parametrize(
    "change,error",
    [
        (dict(num_kv_shared_layers=6), ConfigError),
        (dict(intermediate_size=[64, 64]), ConfigError),
        (dict(activation_sparsity_pattern=[0.0]), ConfigError),
        (dict(layer_types=["chunked_attention"] * 6), UnsupportedModelError),
        (
            dict(
                num_kv_shared_layers=4,
                layer_types=["full_attention"] * 2 + ["sliding_attention"] * 4,
            ),
            ConfigError,
        ),
    ],
)
def test_bad_configs_are_refused_in_one_line(change: dict[str, Any], error: type) -> None:
    with pytest.raises(error) as info:
        spec_from_config(_tiny(**change))
    assert "\n" not in str(info.value)


def test_unknown_vision_tower_is_refused() -> None:
    raw = _multimodal(
        _tiny(), vision_config=dict(architecture="mobilenetv5_base", hidden_size=2048)
    )
    with pytest.raises(UnsupportedModelError, match="mobilenetv5_base"):
        spec_from_config(raw)
