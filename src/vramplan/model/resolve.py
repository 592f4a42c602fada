"""What to do with a config whose ``model_type`` has no native builder.

In order: (1) its ``architectures`` class is one vLLM serves natively with a layout we build (a Kimi-K2 config
says ``model_type: kimi_k2`` but ``DeepseekV3ForCausalLM``), so the matching builder counts it and the answer says
so; (2) transformers (with torch) knows the ``model_type``: the generic meta-device path counts it exactly;
(3) otherwise the model exists only as remote code (``auto_map``), which vramplan never runs: one line says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vramplan.errors import UnsupportedModelError

Config = Mapping[str, Any]
Builder = Callable[[Config, str, str], Any]

#: Class names vLLM serves natively (vllm/model_executor/models/registry.py) -> the model_type whose builder
#: lays the model out the same way. InternLM2 keeps Llama's shapes with q/k/v fused into one ``wqkv`` and one
#: ``bias`` flag for wqkv and wo (vLLM ``internlm2.py``).
ARCHITECTURE_TYPES: dict[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "DeepseekV2ForCausalLM": "deepseek_v2",
    "DeepseekV3ForCausalLM": "deepseek_v3",
    "DeepseekV32ForCausalLM": "deepseek_v32",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3_text",
    "Phi3ForCausalLM": "phi3",
    "GptOssForCausalLM": "gpt_oss",
    "Glm4MoeForCausalLM": "glm4_moe",
    "GraniteForCausalLM": "granite",
    "GraniteMoeForCausalLM": "granitemoe",
    "CohereForCausalLM": "cohere",
    "Cohere2ForCausalLM": "cohere2",
    "Olmo2ForCausalLM": "olmo2",
    "Olmo3ForCausalLM": "olmo3",
    "Starcoder2ForCausalLM": "starcoder2",
    "Exaone4ForCausalLM": "exaone4",
    "MiniMaxM2ForCausalLM": "minimax_m2",
    "InternLM2ForCausalLM": "internlm2",
}


def _internlm2(cfg: Config) -> dict[str, Any]:
    """InternLM2 config keys -> Llama's (``bias`` covers wqkv and wo; InternLM2Config default True)."""
    out = dict(cfg)
    out["attention_bias"] = bool(cfg.get("bias", True))
    return out


def resolve_unknown(cfg: Config, builders: Mapping[str, Builder]) -> tuple[Builder, str, str]:
    """(builder, model_type to build as, note for the assumptions) for a model_type with no builder."""
    model_type = str(cfg.get("model_type"))
    archs = cfg.get("architectures") or []
    arch = str(archs[0]) if isinstance(archs, list) and archs else ""
    target = ARCHITECTURE_TYPES.get(arch, "")
    if target == "internlm2":
        llama = builders["llama"]
        return (
            lambda c, _t, name: llama(_internlm2(c), "llama", name),
            "llama",
            f"model_type {model_type!r} resolved by its architecture {arch} (vLLM serves it natively; "
            "Llama layout with fused wqkv, same parameter count)",
        )
    if target in builders:
        return (
            builders[target],
            target,
            f"model_type {model_type!r} is not a transformers type; resolved by its architecture {arch} "
            f"(built as {target}, as vLLM does)",
        )
    from vramplan.model import generic

    # A cheap look for transformers' models/<type> folder first: importing transformers costs seconds, so
    # types it cannot know (remote code, typos, hostile strings) are answered without it.
    folder = generic.has_model_folder(model_type)
    if cfg.get("auto_map") and not folder:
        raise UnsupportedModelError(_remote_code(arch, model_type))
    if folder and generic.available() and generic.known_model_type(model_type):
        return generic.generic_builder, model_type, generic.LABEL
    if cfg.get("auto_map"):
        raise UnsupportedModelError(_remote_code(arch, model_type))
    if generic.available():
        raise UnsupportedModelError(
            f"architecture {model_type!r} is not supported: no native builder, and transformers does not "
            "know this model_type; for a rough figure use --params N --method rule-of-thumb"
        )
    raise UnsupportedModelError(
        f"architecture {model_type!r} is not supported: vramplan counts parameters exactly and will not guess. "
        "Install torch and transformers for the generic meta-device count, or use --params N --method "
        "rule-of-thumb for a rough figure."
    )


def _remote_code(arch: str, model_type: str) -> str:
    return (
        f"architecture {arch or model_type!r} (model_type {model_type!r}) is not supported: it exists only as remote code "
        "(trust_remote_code); vramplan never runs remote code, so it cannot count it exactly: pass "
        "--params N --method rule-of-thumb for a rough figure"
    )
