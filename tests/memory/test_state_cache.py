"""Per-sequence recurrent state: the formula against real cache tensors, the design doc's worked examples,
vLLM's TP group padding, and the estimate's users / context limits with state counted."""

from __future__ import annotations

import json
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vramplan.estimator import estimate
from vramplan.memory.kv_cache import kv_cache_bytes
from vramplan.memory.state_cache import (
    extra_groups_for_tp,
    state_bytes_per_sequence,
    state_dtypes,
    state_shapes,
)
from vramplan.model.catalog import catalogue
from vramplan.model.hf_config import spec_from_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from test_hybrid_families import SYNTHETIC

MiB = 1 << 20

# One tiny config per family and state kind (Mamba1, Mamba2, gated DeltaNet, KDA, short conv).
REAL_TENSOR_CASES = (
    "nemotron_h_all_block_kinds",
    "qwen3_next_sparse_step_and_mlp_only",
    "qwen3_5_text_layer_types",
    "granitemoehybrid_moe",
    "jamba",
    "falcon_h1_defaults",
    "mamba",
    "mamba2",
    "lfm2_multiplier",
    "kimi_linear_q_lora",
    "minimax_lightning",
)


def _cache_tensors(config: dict, batch: int, tokens: int, dtype):  # type: ignore[no-untyped-def]
    """Run a randomly initialised model of ``config`` on CPU; return its cache's tensors per layer."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    raw = dict(config)
    hf = transformers.AutoConfig.for_model(raw.pop("model_type"), **raw)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(transformers, hf.architectures[0])._from_config(hf, dtype=dtype).eval()
        ids = torch.randint(3, 900, (batch, tokens))
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
    cache = getattr(out, "past_key_values", None) or getattr(out, "cache_params", None)
    state: dict[int, list] = {}
    kv: dict[int, list] = {}
    for i, t in enumerate(getattr(cache, "linear_cache", None) or []):  # MiniMax lightning layers
        if isinstance(t, torch.Tensor) and t.numel():
            state.setdefault(i, []).append(t)
    for i, layer in enumerate(cache.layers):
        for attr in ("conv_states", "recurrent_states"):
            for t in (getattr(layer, attr, None) or {}).values():
                if t is not None:  # short conv has no recurrent tensor
                    state.setdefault(i, []).append(t)
        for attr in ("keys", "values"):
            t = getattr(layer, attr, None)
            if t is not None and t.numel():
                kv.setdefault(i, []).append(t)
    return state, kv


@pytest.mark.parametrize("name", REAL_TENSOR_CASES)
def test_state_and_kv_bytes_equal_real_cache_tensors(name: str) -> None:
    torch = pytest.importorskip("torch")
    spec = spec_from_config(SYNTHETIC[name])
    batch, tokens = 2, 7
    state, kv = _cache_tensors(SYNTHETIC[name], batch, tokens, torch.float32)
    assert spec.state is not None
    assert tuple(sorted(state)) == spec.state.layers
    assert tuple(sorted(kv)) == tuple(
        i for i, t in enumerate(spec.layer_types) if t != "no_attention"
    )
    state_real = sum(t.numel() * t.element_size() for ts in state.values() for t in ts)
    # transformers keeps the whole conv window (kernel columns); the engines keep kernel - 1
    assert state_real == batch * state_bytes_per_sequence(spec, 4, 4, full_kernel=True)
    kv_real = sum(t.numel() * t.element_size() for ts in kv.values() for t in ts)
    assert kv_real == kv_cache_bytes(spec, Fraction(4), tokens, batch)


def test_mixed_dtypes_bf16_model() -> None:
    """A bf16 Mamba2 keeps a bf16 conv state but (transformers' reference scan) an fp32 recurrent state: the
    formula with the two element sizes gives the real bytes."""
    torch = pytest.importorskip("torch")
    spec = spec_from_config(SYNTHETIC["mamba2"])
    batch = 3
    state, _ = _cache_tensors(SYNTHETIC["mamba2"], batch, 5, torch.bfloat16)
    conv = [ts[0] for ts in state.values()]
    recurrent = [ts[1] for ts in state.values()]
    assert {t.dtype for t in conv} == {torch.bfloat16}
    (rec_size,) = {t.element_size() for t in recurrent}
    real = sum(t.numel() * t.element_size() for ts in state.values() for t in ts)
    assert real == batch * state_bytes_per_sequence(spec, 2, rec_size, full_kernel=True)


def _bundled(repo_id: str):  # type: ignore[no-untyped-def]
    return spec_from_config(catalogue()[repo_id])


def test_design_doc_worked_examples() -> None:
    """hybrid-memory.md 1.1: Qwen3.5-27B 146.8 MiB, Qwen3.5/3.6-35B-A3B 61.4 MiB per request (TP 1, vLLM)."""
    q27 = _bundled("Qwen/Qwen3.5-27B")
    dt = state_dtypes(q27, "bfloat16")
    assert (dt.conv, dt.recurrent) == ("bfloat16", "float32")  # text_config.mamba_ssm_dtype
    assert state_shapes(q27.state).conv_shape == (10240, 3)
    assert state_shapes(q27.state).recurrent_shape == (48, 128, 128)
    per_seq = state_bytes_per_sequence(q27, dt.conv_bytes, dt.recurrent_bytes)
    assert per_seq == 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)
    assert round(per_seq / MiB, 1) == 146.8
    q35 = _bundled("Qwen/Qwen3.5-35B-A3B")
    dt = state_dtypes(q35, "bfloat16")
    per_seq = state_bytes_per_sequence(q35, dt.conv_bytes, dt.recurrent_bytes)
    assert per_seq == 30 * (8192 * 3 * 2 + 32 * 128 * 128 * 4)
    assert round(per_seq / MiB, 1) == 61.4


def test_nemotron_nano_9b_v2_style_example() -> None:
    """hybrid-memory.md 1.1: 128 heads x 80, d_state 128, 8 groups: conv 12288 x 3, 27 layers, ~137 MiB fp32."""
    pattern = "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"
    spec = spec_from_config(
        dict(
            model_type="nemotron_h",
            hybrid_override_pattern=pattern,
            hidden_size=4480,
            vocab_size=131072,
            mamba_num_heads=128,
            mamba_head_dim=80,
            ssm_state_size=128,
            n_groups=8,
            num_attention_heads=40,
            num_key_value_heads=8,
            intermediate_size=15680,
        )
    )
    assert spec.state is not None and spec.state.num_layers == pattern.count("M") == 27
    assert state_shapes(spec.state).conv_shape == (12288, 3)
    fp32 = state_bytes_per_sequence(spec, 2, 4)
    assert fp32 == 27 * (12288 * 3 * 2 + 128 * 80 * 128 * 4)
    assert round(fp32 / MiB) == 137
    bf16 = state_bytes_per_sequence(spec, 2, 2)
    assert bf16 == 27 * (12288 * 3 * 2 + 128 * 80 * 128 * 2)
    assert round(bf16 / MiB, 1) == 69.4  # the doc's "~70 MiB"


def test_tp_pads_mamba2_groups_like_vllm() -> None:
    """n_groups = 1 at TP 4: three groups are added so each rank holds one whole group (2 x d_state channels)."""
    spec = spec_from_config(SYNTHETIC["granitemoehybrid_dense"])  # mamba_n_groups defaults to 1
    st_ = spec.state
    assert st_ is not None and st_.conv_groups == 1
    inner = st_.conv_channels - st_.group_channels
    assert extra_groups_for_tp(1, 4) == 3 and extra_groups_for_tp(8, 4) == 0
    assert state_shapes(st_, 4).conv_shape[0] == inner // 4 + st_.group_channels
    assert state_shapes(st_, 1).conv_shape[0] == st_.conv_channels
    heads = st_.recurrent_shape[0]
    assert state_shapes(st_, 2).recurrent_shape[0] == heads // 2


def test_dtype_rules() -> None:
    nemotron = _bundled("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    assert state_dtypes(nemotron, "bfloat16").recurrent == "float32"  # mamba_ssm_cache_dtype
    assert state_dtypes(nemotron, "bfloat16", ssm_dtype="bf16").recurrent == "bfloat16"
    jamba = spec_from_config(SYNTHETIC["jamba"])
    assert state_dtypes(jamba, "float16").recurrent == "float16"  # auto: the model dtype
    kimi = spec_from_config(SYNTHETIC["kimi_linear_q_lora"])
    assert state_dtypes(kimi, "bfloat16").recurrent == "float32"  # KDA keeps fp32 state
    lfm2 = spec_from_config(SYNTHETIC["lfm2_multiplier"])
    assert state_shapes(lfm2.state).recurrent_elements == 0  # short conv: conv state only


def test_only_attention_layers_pay_kv() -> None:
    q27 = _bundled("Qwen/Qwen3.5-27B")
    assert q27.attention_layers == 16
    # 16 layers x 4 KV heads x (256 + 256) x 2 bytes
    assert kv_cache_bytes(q27, Fraction(2), 1, 1) == 16 * 4 * 512 * 2
    mamba = spec_from_config(SYNTHETIC["mamba"])
    assert kv_cache_bytes(mamba, Fraction(2), 100_000, 4) == 0


def test_breakdown_has_state_component_and_json_field() -> None:
    q27 = _bundled("Qwen/Qwen3.5-27B")
    b = estimate(q27, context=8192, users=5)
    state = b.component("state_cache")
    assert state.per_gpu_bytes == 5 * b.state_bytes_per_sequence
    d = b.to_dict()
    assert d["state_cache_bytes"] == state.total_bytes
    assert d["state_bytes_per_sequence"] == 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)
    dense = estimate(spec_from_config(catalogue()["Qwen/Qwen3-8B"]), context=8192, users=5)
    assert dense.component("state_cache").per_gpu_bytes == 0
    assert dense.to_dict()["state_bytes_per_sequence"] == 0


HYBRIDS = [
    "Qwen/Qwen3.5-27B",
    "Qwen/Qwen3-Next-80B-A3B-Thinking",
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "nvidia/Nemotron-H-56B-Base-8K",
]


@given(
    repo=st.sampled_from(HYBRIDS),
    context=st.integers(1, 65_536),
    users=st.integers(1, 64),
    tp=st.sampled_from([1, 2, 4, 8]),
)
def test_max_users_and_context_count_state(repo: str, context: int, users: int, tp: int) -> None:
    """With the memory left after weights, activations and overhead: max users x (KV + state) fits and one
    more user does not; KV at max context for these users plus their state fits, one more token does not."""
    spec = _bundled(repo)
    b = estimate(
        spec,
        context=context,
        users=users,
        gpu="H100",
        tensor_parallel_size=tp,
        allow_long_context=True,  # the arithmetic at any context; refusals are tested elsewhere
    )
    kv_gpu, state_gpu = (b.component(n).per_gpu_bytes for n in ("kv_cache", "state_cache"))
    free = b.gpu_memory_bytes - (b.per_gpu_bytes - kv_gpu - state_gpu)
    dt = state_dtypes(spec, "bfloat16")
    state_seq = state_bytes_per_sequence(spec, dt.conv_bytes, dt.recurrent_bytes, tp)
    assert state_gpu == users * state_seq > 0
    per_seq = kv_cache_bytes(spec, Fraction(2), context, 1, tp) + state_seq
    assert b.max_users == max(0, free // per_seq)
    if b.max_context and b.max_context < spec.max_position_embeddings:
        left = free - users * state_seq
        assert kv_cache_bytes(spec, Fraction(2), b.max_context, users, tp) <= left
        assert kv_cache_bytes(spec, Fraction(2), b.max_context + 1, users, tp) > left


def test_bundled_hybrid_configs_are_the_shared_ones() -> None:
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "model-configs"
    if not shared.is_dir():
        pytest.skip("../shared not present")
    for repo in HYBRIDS:
        path = shared / (repo.replace("/", "__") + ".json")
        assert json.loads(path.read_text()) == catalogue()[repo]


def test_llama_cpp_recurrent_buffers_of_the_shared_log() -> None:
    """llama.cpp keeps one f32 conv (R) and one f32 recurrent (S) row per sequence per recurrent layer
    (``llama_memory_recurrent``, kernel - 1 conv columns): the shared PR #23792 log of a Qwen3.5-27B-class model
    with 3 sequences prints R 16.88 MiB, S 432.00 MiB, 448.88 MiB in all, 149.62 MiB on each of 3 devices."""
    data = Path(__file__).parent / "data" / "vllm_hybrid_cases.json"
    case = next(
        c
        for c in json.loads(data.read_text())["cases"]
        if c["id"] == "llamacpp-pr23792-qwen35-27b-class-tensorsplit"
    )
    spec = _bundled("Qwen/Qwen3.5-27B")
    seqs = case["rs_seqs"]
    conv_only = seqs * state_bytes_per_sequence(spec, 4, 0)
    recurrent_only = seqs * state_bytes_per_sequence(spec, 0, 4)
    assert round(conv_only / MiB, 2) == case["rs_r_f32_mib"]
    assert round(recurrent_only / MiB, 2) == case["rs_s_f32_mib"]
    total = seqs * state_bytes_per_sequence(spec, 4, 4)
    assert round(total / MiB, 2) == case["rs_total_mib"]
    assert round(total / case["tensor_parallel_size"] / MiB, 2) == case["rs_buffer_meta_mib"]


@pytest.mark.parametrize("repo", HYBRIDS + ["Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-397B-A17B"])
def test_cli_estimate_answers_for_bundled_hybrids(repo: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vramplan.cli import app

    path = tmp_path / "config.json"
    path.write_text(json.dumps(catalogue()[repo]))
    r = CliRunner().invoke(
        app, ["estimate", str(path), "--context", "8192", "--users", "4", "--json"]
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (
        d["state_bytes_per_sequence"] > 0
        and d["state_cache_bytes"] == 4 * d["state_bytes_per_sequence"]
    )
    text = CliRunner().invoke(app, ["estimate", str(path)])
    assert "state cache" in text.output and "state per sequence" in text.output


def test_cli_refuses_kimi_k3_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from vramplan.cli import main

    excerpt = Path(__file__).resolve().parents[1] / "model" / "data" / "kimi_k3_excerpt.json"
    with pytest.raises(SystemExit) as exc:
        main(["estimate", str(excerpt)])
    assert exc.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "never runs remote code" in lines[0], lines


@given(
    name=st.sampled_from(REAL_TENSOR_CASES),
    tp=st.sampled_from([1, 2, 4, 8]),
    conv=st.sampled_from([1, 2, 4]),
    rec=st.sampled_from([2, 4]),
)
def test_state_invariants(name: str, tp: int, conv: int, rec: int) -> None:
    """Per-rank state never grows with TP, the ranks together hold at least the unsplit state (group padding
    and rounding only add), every layer holds the same, and the engines' layout is one conv column smaller
    than transformers'."""
    spec = spec_from_config(SYNTHETIC[name])
    one = state_bytes_per_sequence(spec, conv, rec, 1)
    ranked = state_bytes_per_sequence(spec, conv, rec, tp)
    assert ranked <= one <= ranked * tp
    assert spec.state is not None
    layer = one // spec.state.num_layers
    assert one == layer * spec.state.num_layers
    full = state_bytes_per_sequence(spec, conv, rec, 1, full_kernel=True)
    assert full - one == spec.state.num_layers * spec.state.conv_channels * conv
