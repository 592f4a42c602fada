"""Quantization read from the checkpoint's own config: NVFP4 (ModelOpt hf_quant_config.json and
compressed-tensors), MXFP4, FP8 block with FP4 experts, the modules each export leaves in 16 bit, AutoRound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vramplan.memory.weights import weight_bytes
from vramplan.model.hf_config import load_config_file, spec_from_config
from vramplan.model.params import inventory
from vramplan.precision import nvfp4_bytes, resolve_precision, scheme_by_name, scheme_from_config

DATA = Path(__file__).resolve().parents[1] / "data" / "model_configs_2026"
CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"


def _raw(name: str) -> dict:
    path = CATALOG / name if (CATALOG / name).is_file() else DATA / name
    return json.loads(path.read_text())


def _modelopt(name: str) -> dict:
    return {"quant_method": "modelopt", **_raw(name)["quantization"]}


def test_nvfp4_block_layout() -> None:
    # uint8 [N, K/2] + fp8 e4m3 [N, K/16] + fp32 weight_scale_2 + fp32 input_scale = 4.5 bits + 8 B.
    assert nvfp4_bytes()(4096, 4096) == 4096 * 2048 + 4096 * 256 + 8
    assert scheme_by_name("nvfp4").bits == 4.5


def test_deepseek_v32_nvfp4_leaves_mla_and_indexer_in_bf16() -> None:
    spec = spec_from_config(
        dict(
            _raw("deepseek-ai__DeepSeek-V3.2.json"),
            quantization_config=_modelopt("nvidia__DeepSeek-V3.2-NVFP4.hf_quant_config.json"),
        )
    )
    precision = resolve_precision(spec.torch_dtype, spec.quantization_config)
    scheme = precision.scheme
    assert scheme is not None and scheme.name == "nvfp4"
    expected = 0
    for g in inventory(spec):
        excluded = any(
            part in g.name
            for part in ("indexer", "kv_a_proj_with_mqa", "kv_b_proj", "q_a_proj", "q_b_proj")
        )
        if g.role in ("linear", "expert") and not excluded:
            n, k = g.shape
            expected += g.count * (n * k * 9 // 16 + 8)  # 4.5 bits per weight + two fp32 scales
        elif g.role == "buffer":
            expected += g.count * g.numel * 4
        else:
            expected += g.count * g.numel * 2
        if "o_proj" in g.name:
            assert scheme.quantizes(
                g.role, g.name
            )  # MLA output projection is quantized in this export
    assert weight_bytes(spec, precision).unsharded == expected


def test_deepseek_v4_nvfp4_experts_only() -> None:
    raw = dict(
        _raw("deepseek-ai__DeepSeek-V4-Flash.json"),
        quantization_config=_modelopt("nvidia__DeepSeek-V4-Flash-NVFP4.hf_quant_config.json"),
    )
    spec = spec_from_config(raw)
    scheme = resolve_precision(spec.torch_dtype, spec.quantization_config).scheme
    assert scheme is not None and scheme.roles == frozenset({"expert"})
    assert not scheme.quantizes("linear", "layers.mlp.shared_experts.gate_proj.weight")
    assert scheme.quantizes("expert", "layers.mlp.experts.gate_proj.weight")


def test_deepseek_v4_native_fp4_experts() -> None:
    spec = spec_from_config(_raw("deepseek-ai__DeepSeek-V4-Flash.json"))
    precision = resolve_precision(spec.torch_dtype, spec.quantization_config)
    expert = next(g for g in inventory(spec) if g.role == "expert" and "down_proj" in g.name)
    n, k = expert.shape
    assert precision.tensor_bytes(expert.role, expert.name, expert.shape) == n * (k // 32) * 17
    shared = next(g for g in inventory(spec) if "shared_experts.down_proj" in g.name)
    n, k = shared.shape
    assert precision.tensor_bytes(shared.role, shared.name, shared.shape) == n * k + 4 * (
        n // 128
    ) * (k // 128)


def test_qwen35_nvfp4_config_json_form() -> None:
    qc = _raw("nvidia__Qwen3.5-397B-A17B-NVFP4.json")["quantization_config"]
    scheme = scheme_from_config(qc)
    assert scheme.name == "nvfp4"
    for kept in ("linear_attn", "shared_expert", "visual", "lm_head"):
        assert kept in scheme.ignore
    assert not any(
        fragment.isdigit() for fragment in scheme.ignore
    )  # 'mtp.layers.0*' names no tensor kind


def test_compressed_tensors_mxfp4_and_regex_ignores() -> None:
    raw = _raw("moonshotai__Kimi-K3.json")
    qc = raw.get("quantization_config") or raw["text_config"]["quantization_config"]
    scheme = scheme_from_config(qc)
    assert scheme.name == "mxfp4" and scheme.linear_bytes(7168, 2048) == 7168 * 64 * 17
    assert not scheme.quantizes("linear", "layers.self_attn.q_proj.weight")
    assert not scheme.quantizes("linear", "layers.mlp.gate_proj.weight")  # dense MLP via the regex
    assert scheme.quantizes("expert", "layers.mlp.experts.gate_proj.weight")


def test_compressed_tensors_nvfp4() -> None:
    qc = {
        "quant_method": "compressed-tensors",
        "format": "nvfp4-pack-quantized",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 4,
                    "type": "float",
                    "strategy": "tensor_group",
                    "group_size": 16,
                },
            }
        },
        "ignore": ["lm_head", "re:.*mlp.gate$"],
    }
    scheme = scheme_from_config(qc)
    assert scheme.name == "nvfp4" and scheme.linear_bytes(32, 64) == nvfp4_bytes()(32, 64)


def test_auto_round_mixed_overrides() -> None:
    qc = {
        "quant_method": "auto-round",
        "bits": 4,
        "group_size": 128,
        "sym": True,
        "packing_format": "auto_round:auto_gptq",
        "extra_config": {
            "model.layers.0.mlp.shared_expert.down_proj": {"bits": 8, "group_size": 128},
            "model.layers.1.mlp.shared_expert.down_proj": {"bits": 8, "group_size": 128},
            "model.layers.0.mlp.gate": {"bits": 16},
        },
    }
    scheme = scheme_from_config(qc)
    assert scheme.name == "autoround-int4-g128"
    assert not scheme.quantizes("linear", "layers.mlp.gate.weight")
    assert scheme.quantizes(
        "linear", "layers.mlp.gate_proj.weight"
    )  # 'mlp.gate.' is a whole module name
    four = scheme.stored_bytes("layers.mlp.experts.down_proj.weight", 2048, 512)
    eight = scheme.stored_bytes("layers.mlp.shared_expert.down_proj.weight", 2048, 512)
    # GPTQ: qweight int32 [K/pack, N], qzeros [K/g, N/pack], fp16 scales [K/g, N], g_idx int32 [K].
    assert four == 4 * (512 // 8) * 2048 + 4 * 4 * (2048 // 8) + 2 * 4 * 2048 + 4 * 512
    assert eight == 4 * (512 // 4) * 2048 + 4 * 4 * (2048 // 4) + 2 * 4 * 2048 + 4 * 512


def test_hf_quant_config_beside_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        (CATALOG / "deepseek-ai__DeepSeek-V3.2.json")
        .read_text()
        .replace('"quantization_config"', '"_orig_quantization_config"')
    )
    (tmp_path / "hf_quant_config.json").write_text(
        (DATA / "nvidia__DeepSeek-V3.2-NVFP4.hf_quant_config.json").read_text()
    )
    cfg = load_config_file(tmp_path)
    assert cfg["quantization_config"]["quant_method"] == "modelopt"
    spec = spec_from_config(cfg)
    assert resolve_precision(spec.torch_dtype, spec.quantization_config).label == "nvfp4"


def test_unsupported_modelopt_algo_is_one_clear_line() -> None:
    from vramplan.errors import UnknownDtypeError

    with pytest.raises(UnknownDtypeError, match="W4A8_AWQ"):
        scheme_from_config({"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"})
