"""Our parameter count for every catalogue model equals transformers' own count on the meta device."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest

from vramplan.model.hf_config import spec_from_config
from vramplan.model.params import count_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CATALOG = Path(__file__).resolve().parents[2] / "src" / "vramplan" / "model" / "catalog"
CONFIGS = sorted(p for p in CATALOG.glob("*.json") if p.name != "index.json")


def _hf_config(raw: dict):
    """Turn a raw config.json into a transformers config without remote code."""
    raw = dict(raw)
    if raw.get("model_type") in ("RefinedWeb", "RefinedWebModel"):
        # The 2023 RW format: same architecture as transformers' FalconConfig, older key names.
        new_arch = raw["model_type"] == "RefinedWeb"
        raw = {
            "model_type": "falcon",
            "vocab_size": raw["vocab_size"],
            "hidden_size": raw["hidden_size"],
            "num_hidden_layers": raw["n_layer"],
            "num_attention_heads": raw["n_head"],
            "num_kv_heads": raw.get("n_head_kv", raw["n_head"]),
            "new_decoder_architecture": new_arch,
            "multi_query": raw.get("multi_query", True),
            "parallel_attn": raw.get("parallel_attn", True),
            "bias": raw.get("bias", False),
            "alibi": raw.get("alibi", False),
        }
    raw.pop("quantization_config", None)
    raw.pop("auto_map", None)
    model_type = raw.pop("model_type")
    if model_type not in transformers.models.auto.configuration_auto.CONFIG_MAPPING_NAMES:
        # e.g. Kimi-K2 (kimi_k2, DeepseekV3ForCausalLM): the class its architecture names, as vLLM loads it.
        from vramplan.model.resolve import ARCHITECTURE_TYPES

        model_type = ARCHITECTURE_TYPES[raw["architectures"][0]]
    return transformers.AutoConfig.for_model(model_type, **raw)


def _meta_model(config):
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = (getattr(config, "architectures", None) or [None])[0]
        if arch and hasattr(transformers, arch):
            return getattr(transformers, arch)._from_config(config)
        return transformers.AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_param_count_matches_transformers(path: Path) -> None:
    raw = json.loads(path.read_text())
    if raw.get("model_type") == "gemma3n" and importlib.util.find_spec("timm") is None:
        pytest.skip(
            "the Gemma 3n vision tower needs timm; tests/model/test_gemma3n.py checks the rest"
        )
    model = _meta_model(_hf_config(raw))
    expected = sum(p.numel() for p in model.parameters())
    ours = count_params(spec_from_config(raw)).total
    assert ours == expected, (
        f"{path.stem}: transformers counts {expected:,}, we count {ours:,} (diff {ours - expected:+,})"
    )
