"""Catalogue files written from published config values: each one checked against an independent figure.

Check (a), our parameter count equals transformers' own count on the meta device, is the parametrized
``test_params_vs_transformers.py`` (it picks every catalogue file up; ``test_additions_are_in_the_transformers_check``
makes sure these are among them). Check (b) is here: the weight bytes agree with the vLLM log of the dev set
(``tests/data/real_logs.json``, "Model loading took X GiB", within 1 %) or with the parameter count published by
the model's authors. See the "Added from published values" section of ``catalog/SOURCES.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.errors import UnsupportedModelError
from vramplan.estimator import estimate
from vramplan.model import catalog
from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "src" / "vramplan" / "model" / "catalog"
LOGS = {c["id"]: c for c in json.loads((ROOT / "tests" / "data" / "real_logs.json").read_text())}
GiB = 1 << 30

ADDED = (
    "google/gemma-7b",
    "google/gemma-2-27b",
    "google/gemma-3-12b-it",
    "microsoft/phi-2",
    "codellama/CodeLlama-7b-hf",
    "Qwen/Qwen1.5-MoE-A2.7B",
    "Qwen/Qwen2-72B-Instruct",
)

# (catalogue id, dev-set case whose logged vLLM weights we compare with, dtype of that run)
VLLM_WEIGHTS = [
    ("google/gemma-7b", "llmdplanner-google-gemma-7b-tp1pp1dp1--8192", "bfloat16"),  # 15.91 GiB
    (
        "google/gemma-2-27b",
        "llmdplanner-google-gemma-2-27b-it-tp1pp1dp1--8192",
        "bfloat16",
    ),  # 50.72 GiB (-it run)
    ("microsoft/phi-2", "llmdplanner-microsoft-phi-2-tp1pp1dp1--2048", "float16"),  # 5.19 GiB
    (
        "codellama/CodeLlama-7b-hf",
        "llmdplanner-codellama-codellama-7b-h-tp1pp1dp1--8192",
        "bfloat16",
    ),  # 12.56 GiB
    (
        "Qwen/Qwen1.5-MoE-A2.7B",
        "llmdplanner-qwen-qwen1-5-moe-a2-7b-tp1pp1dp1--8192",
        "bfloat16",
    ),  # 26.67 GiB
]


def _spec(repo_id: str):
    return spec_from_config(catalog.catalogue()[repo_id], name=repo_id)


def test_additions_are_in_the_transformers_check() -> None:
    # test_params_vs_transformers.py parametrizes over every catalog/*.json except index.json.
    stems = {p.stem for p in CATALOG.glob("*.json") if p.name != "index.json"}
    for repo_id in ADDED:
        assert repo_id.replace("/", "__", 1) in stems
        assert repo_id in catalog.catalogue()


@pytest.mark.parametrize("model,case_id,dtype", VLLM_WEIGHTS, ids=[c[0] for c in VLLM_WEIGHTS])
def test_weights_match_logged_vllm_load(model: str, case_id: str, dtype: str) -> None:
    logged = LOGS[case_id]["weights_gib"]
    ours = estimate(model, dtype=dtype).component("weights").inputs["unsharded_bytes"] / GiB
    assert ours == pytest.approx(logged, rel=0.01), (
        f"{model}: vLLM loaded {logged} GiB, we count {ours:.3f} GiB"
    )


def test_qwen2_72b_matches_published_parameter_count() -> None:
    # Qwen2 release post (qwenlm.github.io/blog/qwen2, model table): 72.71B params, 70.21B non-embedding.
    c = count_params(_spec("Qwen/Qwen2-72B-Instruct"))
    assert round(c.total / 1e9, 2) == 72.71
    # The post's non-embedding figure leaves out both the input embedding and the untied lm_head.
    assert round((c.total - c.embedding - c.by_component["lm_head"]) / 1e9, 2) == 70.21


def test_qwen15_moe_matches_model_card() -> None:
    # Model card: 14.3B parameters in total, 2.7B activated at runtime.
    c = count_params(_spec("Qwen/Qwen1.5-MoE-A2.7B"))
    assert round(c.total / 1e9, 1) == 14.3
    assert round(c.active_per_token / 1e9, 1) == 2.7


# Gemma 3 technical report (arXiv 2503.19786), Table 1: vision encoder and non-embedding parameters, in millions.
# The 4B and 27B rows check the method on the files copied from tenstorrent; the 12B row checks the new file.
GEMMA3_REPORT = [
    ("google/gemma-3-4b-it", 417, 3_209),
    ("google/gemma-3-12b-it", 417, 10_759),
    ("google/gemma-3-27b-it", 417, 25_600),
]


@pytest.mark.parametrize(
    "model,vision_m,non_embedding_m", GEMMA3_REPORT, ids=[c[0] for c in GEMMA3_REPORT]
)
def test_gemma3_matches_technical_report(model: str, vision_m: int, non_embedding_m: int) -> None:
    spec = _spec(model)
    c = count_params(spec)
    extra = dict(spec.extra_params)
    projector = extra.pop("multi_modal_projector")
    vision = sum(extra.values())
    text_non_embedding = c.total - c.embedding - vision - projector
    assert round(vision / 1e6) == vision_m
    assert round(text_non_embedding / 1e6) == non_embedding_m


def test_gemma3_12b_vllm_gap_is_the_known_vision_gap() -> None:
    # vLLM loads ~0.35-0.6 GiB more than the checkpoint for every Gemma 3 size with the SigLIP tower
    # (4b: -6.6 %, documented in benchmarks/accuracy.py); 12b shows the same absolute gap, not a config error.
    gaps = {}
    for model, case_id in (
        ("google/gemma-3-4b-it", "llmdplanner-google-gemma-3-4b-it-tp1pp1dp1--8192"),
        ("google/gemma-3-12b-it", "llmdplanner-google-gemma-3-12b-it-tp1pp1dp1--8192"),
    ):
        ours = (
            estimate(model, dtype="bfloat16").component("weights").inputs["unsharded_bytes"] / GiB
        )
        gaps[model] = LOGS[case_id]["weights_gib"] - ours
    assert 0.3 < gaps["google/gemma-3-12b-it"] < 0.7
    assert abs(gaps["google/gemma-3-12b-it"] - gaps["google/gemma-3-4b-it"]) < 0.1


@pytest.mark.parametrize(
    "name,repo_id",
    [
        ("google/gemma-2-27b-it", "google/gemma-2-27b"),
        ("google/gemma-3-12b-it", "google/gemma-3-12b-it"),
        ("Qwen/Qwen2-72B", "Qwen/Qwen2-72B-Instruct"),
        ("codellama/CodeLlama-7b-hf", "codellama/CodeLlama-7b-hf"),
        ("microsoft/phi-2", "microsoft/phi-2"),
        ("gemma-7b", "google/gemma-7b"),
        ("Qwen/Qwen1.5-MoE-A2.7B", "Qwen/Qwen1.5-MoE-A2.7B"),
    ],
)
def test_dev_set_names_resolve(name: str, repo_id: str) -> None:
    assert catalog.find(name) == repo_id


def test_phi_layout() -> None:
    spec = _spec("microsoft/phi-2")
    assert (spec.norms_per_layer, spec.norm_kind, spec.mlp_kind) == (1, "layer", "plain")
    assert spec.qkv_bias and spec.o_bias and spec.mlp_bias and spec.lm_head_bias
    assert not spec.tie_word_embeddings
    assert (spec.head_dim, spec.num_kv_heads) == (80, 32)


def test_phi_with_qk_layernorm_is_refused() -> None:
    cfg = dict(catalog.catalogue()["microsoft/phi-2"], qk_layernorm=True)
    with pytest.raises(UnsupportedModelError):
        spec_from_config(cfg)


def test_qwen15_moe_shared_expert() -> None:
    moe = _spec("Qwen/Qwen1.5-MoE-A2.7B").moe
    assert moe is not None
    assert (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size) == (60, 4, 1408)
    assert (
        moe.shared_intermediate_size == 5632 and moe.shared_expert_gate and moe.dense_layers == ()
    )
