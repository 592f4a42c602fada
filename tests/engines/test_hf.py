"""transformers generate(): our cache-bytes model vs the real cache tensors of tiny CPU models."""

from __future__ import annotations

import pytest

from vramplan.engines.hf import VERSIONS, cache_bytes, predict_hf, prefill_activation_bytes
from vramplan.errors import InputError
from vramplan.model.hf_config import spec_from_config
from vramplan.scenario import Fix

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

BASE = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    max_position_embeddings=256,
    torch_dtype="float32",
)
CONFIGS = {
    "llama-gqa": dict(BASE, model_type="llama", num_hidden_layers=2, num_key_value_heads=2),
    "llama-mqa": dict(BASE, model_type="llama", num_hidden_layers=2, num_key_value_heads=1),
    "mistral-sliding": dict(
        BASE, model_type="mistral", num_hidden_layers=2, num_key_value_heads=2, sliding_window=8
    ),
    "gemma2-hybrid": dict(
        BASE,
        model_type="gemma2",
        num_hidden_layers=4,
        num_key_value_heads=2,
        head_dim=16,
        sliding_window=8,
    ),
    "deepseek-v2-mla": dict(
        BASE,
        model_type="deepseek_v2",
        num_hidden_layers=2,
        num_key_value_heads=4,
        moe_intermediate_size=32,
        kv_lora_rank=16,
        q_lora_rank=0,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=1,
        first_k_dense_replace=1,
        n_group=1,
        topk_group=1,
    ),
}


def _real_cache_bytes(
    cfg: dict, batch: int, prompt: int, new: int, beams: int = 1
) -> tuple[int, object]:
    torch.manual_seed(0)
    hf_cfg = transformers.AutoConfig.for_model(
        **{k: v for k, v in cfg.items() if k != "torch_dtype"}
    )
    model = transformers.AutoModelForCausalLM.from_config(hf_cfg).eval()
    ids = torch.randint(1, cfg["vocab_size"], (batch, prompt))
    out = model.generate(
        ids,
        max_new_tokens=new,
        min_new_tokens=new,
        do_sample=False,
        num_beams=beams,
        use_cache=True,
        return_dict_in_generate=True,
        pad_token_id=0,
    )
    cache = out.past_key_values
    total = sum(
        t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)
    )
    return total, cache


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(("batch", "prompt", "new"), [(2, 5, 12), (3, 9, 4)])
def test_dynamic_cache_bytes_equal_real_tensors(
    name: str, batch: int, prompt: int, new: int
) -> None:
    cfg = CONFIGS[name]
    real, _ = _real_cache_bytes(cfg, batch, prompt, new)
    spec = spec_from_config(cfg, name=name)
    profile = VERSIONS.nearest_version(transformers.__version__).value
    predicted = cache_bytes(spec, 4, batch, prompt + new - 1, "dynamic", profile)
    assert predicted == real


def test_beams_multiply_the_batch() -> None:
    cfg = CONFIGS["llama-gqa"]
    real, _ = _real_cache_bytes(cfg, 2, 5, 6, beams=3)
    spec = spec_from_config(cfg, name="b")
    profile = VERSIONS.nearest_version(transformers.__version__).value
    assert cache_bytes(spec, 4, 6, 5 + 6 - 1, "dynamic", profile) == real


def test_mla_layout_is_latent_in_5x_and_expanded_in_4x() -> None:
    """transformers 5.x caches the latent (keys = kv_lora_rank, values = rope part), like vLLM's latent
    cache; 4.x cached expanded per-head K/V. Both layouts are modelled by version."""
    cfg = CONFIGS["deepseek-v2-mla"]
    _, cache = _real_cache_bytes(cfg, 1, 4, 3)
    if int(transformers.__version__.split(".")[0]) >= 5:
        assert tuple(cache.layers[0].keys.shape) == (1, 1, 6, 16)
        assert tuple(cache.layers[0].values.shape) == (1, 1, 6, 4)
    spec = spec_from_config(cfg, name="m")
    latent = cache_bytes(spec, 2, 1, 10, "dynamic", VERSIONS.nearest_version("5.0").value)
    expanded = cache_bytes(spec, 2, 1, 10, "dynamic", VERSIONS.nearest_version("4.50").value)
    assert latent == 2 * 10 * (16 + 4) * 2
    assert expanded == 2 * 10 * 4 * (8 + 4 + 8) * 2


def test_static_cache_preallocates_and_caps_sliding_layers() -> None:
    spec = spec_from_config(CONFIGS["gemma2-hybrid"], name="g")
    prof = VERSIONS.nearest_version("5.0").value
    got = cache_bytes(spec, 2, 4, 3, "static", prof, max_cache_len=100)
    # batch 4 x 2 KV heads x (16 + 16) x 2 B, two full layers of 100 and two sliding layers of 8
    assert got == 4 * 2 * 32 * 2 * (2 * 100 + 2 * 8)


def test_static_cache_real_tensors() -> None:
    cfg = CONFIGS["llama-gqa"]
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "torch_dtype"})
    ).eval()
    ids = torch.randint(1, 128, (2, 5))
    out = model.generate(
        ids,
        max_new_tokens=4,
        min_new_tokens=4,
        do_sample=False,
        cache_implementation="static",
        return_dict_in_generate=True,
        pad_token_id=0,
    )
    real = sum(
        t.numel() * t.element_size()
        for layer in out.past_key_values.layers
        for t in (layer.keys, layer.values)
    )
    spec = spec_from_config(cfg, name="s")
    prof = VERSIONS.nearest_version(transformers.__version__).value
    assert (
        cache_bytes(spec, 4, 2, 8, "static", prof, max_cache_len=5 + 4 - 1) == real
    )  # generate() sizes it P + N - 1 (measured)


def test_eager_attention_costs_scores_sdpa_does_not() -> None:
    p_eager = predict_hf(
        "Llama-3.1-8B",
        batch_size=4,
        prompt_len=4096,
        max_new_tokens=16,
        attn_implementation="eager",
    )
    p_sdpa = predict_hf(
        "Llama-3.1-8B", batch_size=4, prompt_len=4096, max_new_tokens=16, attn_implementation="sdpa"
    )
    scores = 4 * 32 * 4096 * 4096 * (2 + 2 + 4)
    assert p_eager.activation_peak_gib * 2**30 >= scores
    assert p_sdpa.activation_peak_gib < p_eager.activation_peak_gib / 4


def test_old_versions_keep_full_prompt_logits() -> None:
    from vramplan.model.load import load_model

    spec = load_model("Llama-3.1-8B").spec
    old = prefill_activation_bytes(spec, 2, 1000, "sdpa", 2, VERSIONS.nearest_version("4.40").value)
    new = prefill_activation_bytes(spec, 2, 1000, "sdpa", 2, VERSIONS.nearest_version("4.50").value)
    assert old >= 2 * 1000 * spec.vocab_size * 6 > new


def test_does_not_fit_gives_fixes() -> None:
    p = predict_hf(
        "Llama-3.1-70B",
        batch_size=8,
        prompt_len=8192,
        max_new_tokens=512,
        attn_implementation="eager",
        gpu="RTX-4090",
    )
    assert (
        not p.starts and p.errors and not p.fixes
    )  # 141 GB of weights: no setting of generate() fits


def test_fixes_are_data_and_each_one_fits() -> None:
    """Llama-3.1-8B, eager attention over 8 x 8,192 tokens: the S^2 scores do not fit an H100; SDPA does,
    and so does the largest batch the fix names (one more row does not)."""
    args = dict(batch_size=8, prompt_len=8192, max_new_tokens=512, gpu="H100")
    p = predict_hf("Llama-3.1-8B", attn_implementation="eager", **args)  # type: ignore[arg-type]
    assert not p.starts
    fixes = {f.flag: f.value for f in p.fixes if isinstance(f, Fix)}
    assert fixes["attn_implementation"] == "sdpa"
    assert predict_hf("Llama-3.1-8B", attn_implementation="sdpa", **args).starts  # type: ignore[arg-type]
    batch = fixes["batch_size"]
    one_more = dict(args, batch_size=batch + 1)
    fitted = dict(args, batch_size=batch)
    assert predict_hf("Llama-3.1-8B", attn_implementation="eager", **fitted).starts  # type: ignore[arg-type]
    assert not predict_hf("Llama-3.1-8B", attn_implementation="eager", **one_more).starts  # type: ignore[arg-type]


# ------------------------------------------------------------------ hybrid / state-space models
HYBRIDS = (
    "qwen3_5_text_layer_types",
    "qwen3_next_sparse_step_and_mlp_only",
    "nemotron_h_all_block_kinds",
    "granitemoehybrid_moe",
    "falcon_h1_defaults",
    "mamba2",
    "lfm2_multiplier",
    "kimi_linear_q_lora",
    "minimax_lightning",
)


def _hybrid_generate(cfg: dict, batch: int, prompt: int, new: int, dtype: object) -> dict[str, int]:
    """Run generate() on a random tiny model in ``dtype``; bytes of its cache's K/V and state tensors."""
    import warnings

    raw = dict(cfg)
    hf_cfg = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, hf_cfg.architectures[0])._from_config(hf_cfg, dtype=dtype)
        ids = torch.randint(3, 900, (batch, prompt))
        out = model.eval().generate(
            ids,
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            use_cache=True,
            return_dict_in_generate=True,
            pad_token_id=0,
        )
    cache = out.past_key_values
    sizes = {"kv": 0, "state": 0}

    def add(kind: str, t: object) -> None:
        if isinstance(t, torch.Tensor) and t.numel():
            sizes[kind] += t.numel() * t.element_size()

    for t in getattr(cache, "linear_cache", None) or []:  # MiniMax lightning layers
        add("state", t)
    for layer in cache.layers:
        for attr in ("conv_states", "recurrent_states"):
            for t in (getattr(layer, attr, None) or {}).values():
                add("state", t)
        for attr in ("keys", "values"):
            add("kv", getattr(layer, attr, None))
    return sizes


@pytest.mark.parametrize("name", HYBRIDS)
def test_hybrid_cache_equals_real_tensors_after_generate(name: str) -> None:
    """A bf16 model after generate(): K/V only in attention layers (P + N - 1 positions), and per row the
    whole conv window in bf16 plus the recurrent state in fp32 (lightning: bf16), however long."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
    from test_hybrid_families import SYNTHETIC

    cfg = SYNTHETIC[name]
    batch, prompt, new = 2, 5, 3
    real = _hybrid_generate(cfg, batch, prompt, new, torch.bfloat16)
    spec = spec_from_config(cfg, name=name)
    p = predict_hf(
        spec,
        batch_size=batch,
        prompt_len=prompt,
        max_new_tokens=new,
        dtype="bfloat16",
        engine_version=transformers.__version__,
    )
    assert p.extra["state_cache_bytes"] == real["state"] > 0
    assert p.state_bytes_per_sequence * batch == real["state"]
    assert p.extra["cache_bytes"] == real["kv"]
    if real["kv"]:
        assert p.kv_bytes_per_token * batch * (prompt + new - 1) == real["kv"]
    longer = predict_hf(
        spec, batch_size=batch, prompt_len=prompt * 4, max_new_tokens=new, dtype="bfloat16"
    )
    assert (
        longer.extra["state_cache_bytes"] == p.extra["state_cache_bytes"]
    )  # fixed, whatever the length


def test_dense_model_has_no_state() -> None:
    p = predict_hf("Llama-3.1-8B", batch_size=2)
    assert p.state_bytes_per_sequence == 0 and p.extra["state_cache_bytes"] == 0
    assert p.kv_bytes_per_token == 32 * 2 * 8 * 128 * 2  # bf16 K+V over 32 layers


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="batch-size"):
        predict_hf("Llama-3.1-8B", batch_size=0)
    with pytest.raises(InputError, match="cache"):
        predict_hf("Llama-3.1-8B", cache="paged")  # type: ignore[arg-type]


def test_kv_pool_carries_the_per_token_and_per_sequence_bytes() -> None:
    from vramplan.engines.hf import ENGINE_MODEL
    from vramplan.scenario import Scenario

    sc = Scenario.from_values("Qwen/Qwen3.5-27B", gpu="H200", users=2, context=4096)
    pool = ENGINE_MODEL.kv_pool(sc)
    pred = ENGINE_MODEL.predict(sc)
    assert pool.kv_bytes_per_token == pred.kv_bytes_per_token > 0
    assert pool.state_bytes_per_sequence == pred.state_bytes_per_sequence > 0
    assert pred.extra["state_cache_bytes"] == 2 * pred.state_bytes_per_sequence
