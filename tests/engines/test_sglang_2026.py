"""SGLang 0.5.x as deployed in late 2026: profiles read from the wheels, hybrid state pool, DSA indexer, LoRA,
speculative decoding, HiCache, DP attention, disaggregation. Each expected figure is recomputed here from the
formula in SGLang's source (file:line in the module docstrings) or taken from a real log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from vramplan.engines.base import GIB
from vramplan.engines.sglang import ENGINE_MODEL, predict_sglang
from vramplan.engines.sglang_features import hicache_host_bytes, lora_pool_bytes
from vramplan.engines.sglang_hybrid import mamba_pool
from vramplan.engines.sglang_profiles import (
    VERSIONS,
    ReserveInputs,
    default_chunk_and_graph_bs,
    prefill_graph_sizes,
    reserved_mib,
)
from vramplan.errors import InputError
from vramplan.scenario import Fix

DATA = Path(__file__).resolve().parents[1] / "data"
DSV32 = "deepseek-ai/DeepSeek-V3.2"


def _run(*argv: str, gpu: str = "H100", version: str | None = None, **kw: object):
    return predict_sglang(list(argv), gpu, engine_version=version, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ profiles
def test_profiles_are_predecessor_plus_changes() -> None:
    rows = VERSIONS.entries
    assert list(rows)[-1] == "0.5.23" and VERSIONS.latest == "0.5.23"
    assert rows["0.5.0"].mem_fraction_rule == "gpu_tier"
    assert rows["0.5.3"].mem_fraction_rule == "reserved" and rows["0.5.3"].dsa_mem_fraction == 0.8
    assert not rows["0.5.3"].dsa_indexer_in_cell and rows["0.5.4"].dsa_indexer_in_cell
    assert not rows["0.5.9"].prefill_graphs_default and rows["0.5.15"].prefill_graphs_default
    assert rows["0.5.15"].spec_reserve_mib == (0, 0) and rows["0.5.9"].spec_reserve_mib == (
        2048,
        6144,
    )
    assert rows["0.5.23"].dsa_packed_in_cell and not rows["0.5.15"].dsa_packed_in_cell
    # 0.5.10 falls in the 0.5.9 line; 0.6.0 is past the newest and is named as a substitution.
    assert VERSIONS.nearest_version("0.5.10").version == "0.5.9"
    p = _run("--model-path", "Llama-3.1-8B", version="0.6.0")
    assert p.engine_version == "0.5.23"
    assert any("0.6.0" in a and "0.5.23" in a for a in p.assumptions)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.5.2", (2048, 8)), ("0.5.3", (2048, 16)), ("0.5.9", (2048, 24)), ("0.5.23", (4096, 48))],
)
def test_rtx5090_tier_by_version(version: str, expected: tuple[int, int]) -> None:
    """A 32 GB GPU (31.4 GiB): the < 35 GiB tier of each release (memory_hook.py:101-118 in 0.5.23)."""
    profile = VERSIONS.nearest_version(version).value
    assert default_chunk_and_graph_bs(profile, 31.36, 1) == expected


def test_prefill_graph_reserve_from_0515() -> None:
    """len(prefill capture sizes) x 8 MiB for non-MLA models (server_args.py:3660-3670 of 0.5.15)."""
    sizes = prefill_graph_sizes(8192)
    assert len(sizes) == 8 + 14 + 8 + 8 + 12 + 8 and sizes[-1] == 8192
    inputs = ReserveInputs(tp=1, pp=1, chunked_prefill_size=8192, cuda_graph_max_bs=256)
    base = 512 + 1.5 * 8192 + 2 * 256 + 1024 / 8
    assert reserved_mib(VERSIONS.entries["0.5.9"], 81559, inputs) == base
    assert reserved_mib(VERSIONS.entries["0.5.15"], 81559, inputs) == base + 8 * 58
    mla = ReserveInputs(tp=1, pp=1, chunked_prefill_size=8192, cuda_graph_max_bs=256, mla=True)
    assert reserved_mib(VERSIONS.entries["0.5.23"], 81559, mla) == base + 1536


# ------------------------------------------------------------------------------------------ DSA case
def _case() -> dict:
    cases = json.loads((DATA / "real_logs_2026.json").read_text())
    return next(c for c in cases if c["id"] == "sglang-pr11309-dsv32exp-8xb200-main")


def test_deepseek_v32_pr11309_case_reproduced() -> None:
    """8x B200, TP 8, SGLang main just before PR #11309 (the 0.5.3 line): 1,462,784 tokens, KV 54.52 GB.

    0.5.3 forces DP attention, page 64, fp8 KV and mem_fraction_static 0.8 for DSA, and sizes the pool at
    61 x 576 B per token while allocating 61 x 656 B plus the 61 x 132 B indexer. Tolerance 10 %: the log does
    not print the free memory before loading, and its arithmetic implies ~13 GiB less than the card's
    CUDA-reported memory (165 vs 178 GiB, other allocations we cannot see); vramplan predicts +8.4 %.
    """
    case = _case()
    p = _run("--model-path", DSV32, "--tp-size", "8", gpu="B200", version="0.5.3")
    assert p.starts and p.engine_version == "0.5.3"
    assert p.settings["enable_dp_attention"] and p.settings["page_size"] == 64
    assert p.settings["mem_fraction_static"] == case["mem_fraction_static"] == 0.8
    assert p.settings["kv_cache_dtype"] == "float8_e4m3"
    assert p.extra["cell_size_bytes"] == 61 * 576
    assert p.kv_cache_tokens == pytest.approx(case["kv_cache_tokens"], rel=0.10)
    assert p.extra["kv_size_gb"] == pytest.approx(case["kv_size_gb"], rel=0.10)
    # The logged KV size is the pool's 656 B entries for tokens + one page, whatever the token count.
    logged = case["kv_cache_tokens"]
    assert (logged + 64) * 61 * 656 / GIB == pytest.approx(case["kv_size_gb"], abs=0.01)
    tokens = p.kv_cache_tokens
    assert p.extra["kv_size_gb"] == round((tokens + 64) * 61 * 656 / GIB, 2)
    assert p.extra["indexer_size_gb"] == round((tokens + 64) * 61 * 132 / GIB, 2)
    # per-rank bytes per token, indexer included (what the pool really holds)
    assert p.kv_bytes_per_token == 61 * (656 + 132) and p.state_bytes_per_sequence == 0


def test_dsa_cell_by_version() -> None:
    """PR #11309 (0.5.4) adds the indexer to the sized cell; 0.5.23 counts the packed 656 B fp8 entry."""
    cells = {
        v: _run("--model-path", DSV32, "--tp-size", "8", gpu="B200", version=v).extra[
            "cell_size_bytes"
        ]
        for v in ("0.5.3", "0.5.4", "0.5.23")
    }
    assert cells == {"0.5.3": 61 * 576, "0.5.4": 61 * (576 + 132), "0.5.23": 61 * (656 + 132)}


# ------------------------------------------------------------------------------------------ hybrids
QWEN35 = "Qwen/Qwen3.5-27B"
#: 48 gated-DeltaNet layers x (conv 10240 x 3 bf16 + ssm 48 x 128 x 128 fp32) (hybrid-memory.md §1.1).
QWEN35_STATE = 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)


def test_mamba_pool_takes_ratio_share_of_the_rest() -> None:
    p = _run("--model-path", QWEN35, version="0.5.23")
    assert p.state_bytes_per_sequence == QWEN35_STATE
    rest = p.extra["rest_before_state_pool_bytes"]
    budget = int(rest * 0.9 / 1.9)
    slots = (budget - QWEN35_STATE) // QWEN35_STATE
    assert p.extra["max_mamba_cache_size"] == slots
    cell = p.extra["cell_size_bytes"]
    assert (
        cell == p.kv_bytes_per_token == 16 * 4 * 256 * 2 * 2
    )  # 16 attention layers, 4 KV heads, bf16
    assert p.kv_cache_tokens == (rest - (slots + 1) * QWEN35_STATE) // cell
    # the figure shown as KV cache memory is what is left for KV once the state pool is taken
    assert p.available_kv_cache_gib * GIB == pytest.approx(rest - (slots + 1) * QWEN35_STATE, abs=2)
    assert p.settings["max_running_requests"] == min(
        slots // 3, max(2048, int(p.kv_cache_tokens / 262144 * 512)), p.kv_cache_tokens // 2
    )


def test_mamba_flags() -> None:
    half = _run("--model-path", QWEN35, "--mamba-ssm-dtype", "bfloat16")
    assert half.state_bytes_per_sequence == 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 2)
    fixed = _run("--model-path", QWEN35, "--max-mamba-cache-size", "30")
    assert fixed.extra["max_mamba_cache_size"] == 30
    assert fixed.settings["max_running_requests"] == 10
    more = _run("--model-path", QWEN35, "--mamba-full-memory-ratio", "2")
    default = _run("--model-path", QWEN35)
    assert more.extra["max_mamba_cache_size"] > default.extra["max_mamba_cache_size"]
    assert more.kv_cache_tokens < default.kv_cache_tokens
    with pytest.raises(InputError, match="mamba-ssm-dtype"):
        _run("--model-path", QWEN35, "--mamba-ssm-dtype", "int8")


def test_mamba_pool_pure_rules() -> None:
    pool = mamba_pool(100 * 10**6, 10**6)
    assert pool.slots == int(100 * 10**6 * 0.9 / 1.9) // 10**6 - 1
    assert pool.kv_rest_bytes == 100 * 10**6 - (pool.slots + 1) * 10**6
    no_radix = mamba_pool(10**9, 10**6, disable_radix_cache=True, max_running_requests=64)
    assert no_radix.slots == 64 and no_radix.pool_bytes == 65 * 10**6


# ------------------------------------------------------------------------------------------ LoRA
def _llama8b_lora_bytes(loras: int, rank: int, tp: int) -> int:
    """LoRAMemoryPool shapes for Llama-3.1-8B (h 4096, 32 x 128 q heads, 8 KV heads, I 14336, 32 layers)."""
    h, q, kv, inter = 4096, 32 * 128, 8 * 128, 14336
    per_layer = (
        3 * rank * h
        + (q + 2 * kv) // tp * rank  # qkv_proj: A (3R, h), B ((q + 2kv)/tp, R)
        + rank * q // tp
        + h * rank  # o_proj (row): A (R, q/tp), B (h, R)
        + 2 * rank * h
        + 2 * inter // tp * rank  # gate_up_proj: A (2R, h), B (2I/tp, R)
        + rank * inter // tp
        + h * rank  # down_proj (row): A (R, I/tp), B (h, R)
    )
    return loras * per_layer * 32 * 2


@pytest.mark.parametrize("tp", [1, 2])
def test_lora_pool_matches_sglang_shapes(tp: int) -> None:
    from vramplan.model.names import resolve_served_name

    spec = resolve_served_name("Llama-3.1-8B").loaded.spec
    assert lora_pool_bytes(spec, 8, 16, 2, tp) == _llama8b_lora_bytes(8, 16, tp)


def test_lora_comes_out_of_the_kv_budget() -> None:
    base = _run("--model-path", "Llama-3.1-8B", "--mem-fraction-static", "0.85")
    lora = _run(
        "--model-path", "Llama-3.1-8B", "--mem-fraction-static", "0.85",
        "--enable-lora", "--max-lora-rank", "64", "--max-loras-per-batch", "4",
    )  # fmt: skip
    expected = _llama8b_lora_bytes(4, 64, 1)
    assert lora.extra["lora_pool_gib"] == round(expected / GIB, 3)
    assert (base.available_kv_cache_gib - lora.available_kv_cache_gib) * GIB == pytest.approx(
        expected, abs=2
    )
    assert lora.kv_cache_tokens < base.kv_cache_tokens
    attn_only = _run(
        "--model-path", "Llama-3.1-8B", "--enable-lora", "--max-lora-rank", "8",
        "--lora-target-modules", "q_proj", "v_proj",
    )  # fmt: skip
    assert attn_only.extra["lora_pool_gib"] == round(8 * 8 * (3 * 4096 + 6144) * 32 * 2 / GIB, 3)
    with pytest.raises(InputError, match="max-lora-rank"):
        _run("--model-path", "Llama-3.1-8B", "--enable-lora")


# ------------------------------------------------------------------------------------------ speculative
def test_nextn_draft_kv_in_the_cell_from_0515() -> None:
    """cell x (1 + draft layers / layers) (pool_configurator.py:139-155); draft weights in the budget."""
    argv = (
        "--model-path",
        "deepseek-ai/DeepSeek-V3",
        "--tp-size",
        "8",
        "--speculative-algorithm",
        "NEXTN",
    )
    new = _run(*argv, gpu="H200", version="0.5.23")
    plain = _run(*argv[:4], "--max-running-requests", "48", gpu="H200", version="0.5.23")
    assert plain.extra["cell_size_bytes"] == 61 * 576 * 2
    assert new.extra["cell_size_bytes"] == int(61 * 576 * 2 * (1 + 1 / 61))
    assert new.kv_bytes_per_token == 62 * 576 * 2
    assert new.weights_gib == plain.weights_gib  # the target's load; the draft follows it
    assert plain.available_kv_cache_gib - new.available_kv_cache_gib == pytest.approx(
        new.extra["draft_weights_gib"], abs=1e-3
    )
    # 0.5.9: the draft worker loads after the pool is sized, from outside mem_fraction_static
    old = _run(*argv, gpu="H200", version="0.5.9")
    old_plain = _run(*argv[:4], "--max-running-requests", "48", gpu="H200", version="0.5.9")
    assert old.settings["max_running_requests"] == 48  # speculative_hook.py:1086-1094
    assert old.extra["cell_size_bytes"] == 61 * 576 * 2
    assert (
        old.extra["mem_fraction_static"] < old_plain.extra["mem_fraction_static"]
    )  # +2 GiB reserve
    assert (
        old.extra["dynamic_needs_gib"]
        > old_plain.extra["dynamic_needs_gib"] + old.extra["draft_weights_gib"]
    )


def test_speculative_refusals_and_ngram() -> None:
    ngram = _run("--model-path", "Llama-3.1-8B", "--speculative-algorithm", "NGRAM")
    plain = _run("--model-path", "Llama-3.1-8B", "--max-running-requests", "48")
    assert ngram.settings["max_running_requests"] == 48
    assert (
        ngram.kv_cache_tokens == plain.kv_cache_tokens
        and ngram.kv_bytes_per_token == plain.kv_bytes_per_token
    )
    with pytest.raises(InputError, match="draft-model-path"):
        _run("--model-path", "Llama-3.1-8B", "--speculative-algorithm", "EAGLE3")
    with pytest.raises(InputError, match="NextN"):
        _run("--model-path", "Llama-3.1-8B", "--speculative-algorithm", "NEXTN")
    with pytest.raises(InputError, match="not modelled"):
        _run("--model-path", "Llama-3.1-8B", "--speculative-algorithm", "MEDUSA")


def test_standalone_draft_model() -> None:
    p = _run(
        "--model-path", "Llama-3.1-70B", "--tp-size", "4", "--speculative-algorithm", "STANDALONE",
        "--speculative-draft-model-path", "Llama-3.2-1B",
    )  # fmt: skip
    plain = _run("--model-path", "Llama-3.1-70B", "--tp-size", "4")
    # 1B draft: 16 layers x 2 KV heads per rank (8 // 4) x 64 x 2 (K, V) x 2 B
    assert p.kv_bytes_per_token - plain.kv_bytes_per_token == 16 * 2 * 64 * 2 * 2
    assert p.kv_cache_tokens < plain.kv_cache_tokens


# ------------------------------------------------------------------------------------------ HiCache
def test_hicache_host_memory_and_unchanged_gpu() -> None:
    plain = _run("--model-path", "Llama-3.1-8B")
    hi = _run("--model-path", "Llama-3.1-8B", "--enable-hierarchical-cache")
    assert hi.kv_cache_tokens == plain.kv_cache_tokens
    assert hi.available_kv_cache_gib == plain.available_kv_cache_gib
    tokens, cell = hi.kv_cache_tokens, hi.kv_bytes_per_token
    host = (int(tokens * 2.0) // 1 + 1) * cell  # ratio 2.0, page 1, one padding page
    assert hi.extra["hicache_host_per_gpu_gib"] == round(host / GIB, 2)
    sized = _run(
        "--model-path", "Llama-3.1-8B", "--tp", "2", "--enable-hierarchical-cache",
        "--hicache-size", "100",
    )  # fmt: skip
    per_gpu = (int(100e9 // sized.kv_bytes_per_token) + 1) * sized.kv_bytes_per_token
    assert sized.extra["hicache_host_total_gib"] == round(2 * per_gpu / GIB, 2)
    assert hicache_host_bytes(1000, 10, 64, ratio=1.0) == (1024, 10240)


# ------------------------------------------------------------------------------------------ DP attention
def test_dp_attention_splits_attention_tp() -> None:
    """Llama-3.1-70B TP 8, DP 2: attention at TP 4 -> 2 KV heads per rank instead of 1."""
    from vramplan.estimator import resolve
    from vramplan.memory.weights import weight_bytes
    from vramplan.model.names import resolve_served_name

    base = _run("--model-path", "Llama-3.1-70B", "--tp", "8")
    dpa = _run("--model-path", "Llama-3.1-70B", "--tp", "8", "--dp", "2", "--enable-dp-attention")
    assert base.kv_bytes_per_token == 80 * 1 * 256 * 2
    assert dpa.kv_bytes_per_token == 80 * 2 * 256 * 2
    spec = resolve_served_name("Llama-3.1-70B").loaded.spec
    prec = resolve(spec, None, None, None).precision
    at = {tp: weight_bytes(spec, prec, tp).by_component_per_gpu for tp in (1, 4, 8)}
    extra = at[4]["attention"] - at[8]["attention"] + at[1]["embeddings"] - at[8]["embeddings"]
    assert dpa.extra["dp_attention_extra_weights_gib"] == round(extra / GIB, 3)
    with pytest.raises(InputError, match="divide"):
        _run("--model-path", "Llama-3.1-70B", "--tp", "8", "--dp", "3", "--enable-dp-attention")


# ------------------------------------------------------------------------------------------ disaggregation
def test_disaggregation_roles() -> None:
    """memory_hook.py:305-400 (0.5.23): prefill drops the decode-graph reserve and capture; decode sizes its
    activation reserve on running requests (min 2048 tokens) and drops the prefill-graph reserve."""
    argv = ("--model-path", "Llama-3.1-8B", "--max-running-requests", "64")
    plain, pre, dec = (
        _run(*argv, *extra, gpu="L40S")
        for extra in ((), ("--disaggregation-mode", "prefill"), ("--disaggregation-mode", "decode"))
    )
    assert pre.cuda_graph_gib is None and plain.cuda_graph_gib is not None
    assert pre.extra["mem_fraction_static"] > plain.extra["mem_fraction_static"]
    assert dec.extra["mem_fraction_static"] > plain.extra["mem_fraction_static"]
    profile = VERSIONS.entries["0.5.23"]
    inputs = dict(
        tp=1, pp=1, chunked_prefill_size=4096, cuda_graph_max_bs=32, max_running_requests=64
    )
    decode = reserved_mib(profile, 46068, ReserveInputs(**inputs, disaggregation_mode="decode"))
    assert decode == 512 + 1.5 * 2048 + 2 * 32 + 128
    with pytest.raises(InputError, match="disaggregation-mode"):
        _run(*argv, "--disaggregation-mode", "both")


# ------------------------------------------------------------------------------------------ fixes, pool
def test_fixes_are_data_and_render_as_flags() -> None:
    p = _run(
        "--model-path",
        "Llama-3.1-70B",
        "--tp",
        "2",
        "--mem-fraction-static",
        "0.7",
        gpu="A100-80GB",
    )
    assert not p.starts and all(isinstance(f, Fix) for f in p.fixes)
    assert {f.flag for f in p.fixes} >= {"mem_fraction_static", "tp_size"}
    from vramplan.cli import app

    r = CliRunner().invoke(
        app,
        ["sglang", "--model-path", "Llama-3.1-70B", "--tp", "2", "--mem-fraction-static", "0.7",
         "--gpu", "A100-80GB"],
    )  # fmt: skip
    assert "fix: --tp-size 4" in r.output


def test_kv_pool_carries_per_token_and_state_bytes() -> None:
    from vramplan.scenario import Scenario

    scenario = Scenario.from_values(QWEN35, gpu="H100")
    pool = ENGINE_MODEL.kv_pool(scenario)
    assert pool.kv_bytes_per_token == 16 * 4 * 256 * 2 * 2
    assert pool.state_bytes_per_sequence == QWEN35_STATE


def test_hybrids_before_054_run_without_radix_cache() -> None:
    """0.5.3 (model_runner.py:357-366): radix cache off, --max-running-requests (else 512) state slots."""
    p = _run("--model-path", QWEN35, gpu="H200", version="0.5.3")
    assert p.extra["max_mamba_cache_size"] == 512
    assert p.extra["mamba_pool_gib"] == round(512 * QWEN35_STATE / GIB, 3)  # no padding slot yet
    capped = _run(
        "--model-path", QWEN35, "--max-running-requests", "64", gpu="H200", version="0.5.3"
    )
    assert capped.extra["max_mamba_cache_size"] == capped.settings["max_running_requests"] == 64
    assert capped.kv_cache_tokens > p.kv_cache_tokens


def test_explain_a_failed_sglang_start_renders_fix_data(tmp_path: Path) -> None:
    from vramplan.cli import app

    log = tmp_path / "sglang.log"
    log.write_text(
        "python3 -m sglang.launch_server --model-path Llama-3.1-70B --tp 2 --mem-fraction-static 0.7\n"
        "RuntimeError: Not enough memory. Please try to increase --mem-fraction-static. "
        "max_total_tokens profiled value is -71167\n"
    )
    r = CliRunner().invoke(app, ["explain", str(log), "--gpu", "A100-80GB"])
    assert r.exit_code == 0, r.output
    assert "--tp-size 4" in r.output and "Traceback" not in r.output


def test_eagle3_head_from_a_config_folder(tmp_path: Path) -> None:
    """A one-layer EAGLE-3 head (Llama-3.1-8B shapes): its KV, 1 x 8 heads x 256 x 2 B, joins the cell."""
    head = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 1,
        "head_dim": 128,
        "vocab_size": 128256,
        "max_position_embeddings": 2048,
        "torch_dtype": "bfloat16",
    }
    (tmp_path / "config.json").write_text(json.dumps(head))
    argv = ("--model-path", "Llama-3.1-8B", "--speculative-algorithm", "EAGLE3")
    p = _run(*argv, "--speculative-draft-model-path", str(tmp_path))
    assert p.kv_bytes_per_token == 32 * 8 * 256 * 2 + 1 * 8 * 256 * 2
    assert p.extra["cell_size_bytes"] == int(32 * 8 * 256 * 2 * (1 + 1 / 32))
    assert p.extra["draft_weights_gib"] > 0


def test_speculative_on_a_hybrid_solves_slots_and_intermediate_states() -> None:
    """0.5.23 joint solve (kv_cache_configurator.py:3346-3385): K = (budget - per_req (1 + D)) //
    (per_req (1 + D / 3)); intermediate = per_req x (min(48, K // 3) + 1) x D, D = 4 draft tokens."""
    p = _run("--model-path", QWEN35, "--speculative-algorithm", "NEXTN", gpu="H200")
    d, per_req = 4, QWEN35_STATE
    budget = int(p.extra["rest_before_state_pool_bytes"] * 0.9 / 1.9)
    slots = int((budget - per_req * (1 + d)) // (per_req * (1 + d / 3)))
    assert p.extra["max_mamba_cache_size"] == slots
    inter = per_req * (min(48, slots // 3) + 1) * d
    assert p.extra["mamba_intermediate_gib"] == round(inter / GIB, 3)
    assert p.settings["max_running_requests"] == min(48, slots // 3)
    # 0.5.4: every slot carries D more states (model_runner.py:1455-1480)
    old = _run(
        "--model-path", QWEN35, "--speculative-algorithm", "NEXTN", gpu="H200", version="0.5.4"
    )
    old_budget = int(old.extra["rest_before_state_pool_bytes"] * 0.9 / 1.9)
    assert old.extra["max_mamba_cache_size"] == old_budget // (per_req * (1 + d))


def test_speculative_parameters_follow_sglang() -> None:
    """(5, 4, 8) for Llama, (3, 1, 4) otherwise; topk 1 forces steps + 1 draft tokens."""
    from vramplan.engines.sglang_features import _spec_params
    from vramplan.model.names import resolve_served_name

    llama = resolve_served_name("Llama-3.1-8B").loaded.spec
    qwen = resolve_served_name(QWEN35).loaded.spec
    assert _spec_params({}, llama, "EAGLE3") == (5, 4, 8)
    assert _spec_params({}, qwen, "NEXTN") == (3, 1, 4)
    assert _spec_params({"speculative_num_steps": 2}, llama, "EAGLE") == (2, 1, 3)
    assert _spec_params(
        {
            "speculative_num_steps": 2,
            "speculative_eagle_topk": 4,
            "speculative_num_draft_tokens": 6,
        },
        llama,
        "EAGLE",
    ) == (2, 4, 6)


def test_running_requests_per_dp_attention_worker() -> None:
    """0.5.23: a given --max-running-requests is split over the DP-attention workers."""
    argv = ("--model-path", "Llama-3.1-70B", "--tp", "8", "--max-running-requests", "256")
    assert _run(*argv).settings["max_running_requests"] == 256
    p = _run(*argv, "--dp", "4", "--enable-dp-attention")
    assert p.settings["max_running_requests"] == 64


# ------------------------------------------------------------------------------------------ properties
@settings(max_examples=200, deadline=None)
@given(
    rest=st.integers(10**8, 10**12),
    per_req=st.integers(10**5, 10**9),
    ratio=st.floats(0.05, 10),
    draft=st.sampled_from([0, 2, 4, 8]),
    pad=st.booleans(),
)
def test_mamba_pool_invariants(
    rest: int, per_req: int, ratio: float, draft: int, pad: bool
) -> None:
    pool = mamba_pool(
        rest, per_req, ratio=ratio, draft_tokens=draft, max_running_requests=48, pad_slot=pad
    )
    assert pool.pool_bytes + pool.kv_rest_bytes == rest
    if pool.slots > 0:
        # the state pool never takes more than its share of the rest (+ the padding slot it solved for)
        assert pool.pool_bytes <= rest * ratio / (1 + ratio) + per_req * (1 + draft)
    more = mamba_pool(
        rest, per_req, ratio=ratio * 2, draft_tokens=draft, max_running_requests=48, pad_slot=pad
    )
    assert more.slots >= pool.slots


@settings(max_examples=50, deadline=None)
@given(
    loras=st.integers(1, 16),
    rank=st.sampled_from([8, 16, 64, 128]),
    tp=st.sampled_from([1, 2, 4, 8]),
)
def test_lora_pool_is_linear_in_adapters_and_rank(loras: int, rank: int, tp: int) -> None:
    from vramplan.model.names import resolve_served_name

    spec = resolve_served_name("Llama-3.1-8B").loaded.spec
    one = lora_pool_bytes(spec, 1, 1, 2, tp)
    assert lora_pool_bytes(spec, loras, rank, 2, tp) == loras * rank * one
    assert lora_pool_bytes(spec, loras, rank, 2, tp) == _llama8b_lora_bytes(loras, rank, tp)


def test_api_refuses_a_draft_model_path_on_the_server() -> None:
    pytest.importorskip("fastapi")
    from vramplan.service.routes.sglang import SglangRequest, sglang_dict

    body = SglangRequest(
        command="python -m sglang.launch_server --model-path Llama-3.1-8B "
        "--speculative-algorithm EAGLE3 --speculative-draft-model-path /etc",
        gpu="H100",
    )
    with pytest.raises(InputError, match="file path"):
        sglang_dict(body)
