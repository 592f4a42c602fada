"""One resolver for served model names: catalogue config + the quantization the name implies."""

from __future__ import annotations

import pytest

from vramplan.errors import UnknownModelError
from vramplan.model.names import resolve_served_name, split_quant_suffix


@pytest.mark.parametrize(
    ("name", "base", "quant"),
    [
        ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", "RedHatAI/Llama-3.3-70B-Instruct", "w8a8"),
        ("Qwen/Qwen3-235B-A22B-FP8", "Qwen/Qwen3-235B-A22B", "fp8_block"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct", "awq"),
        ("Qwen2.5-7B-Instruct-GPTQ-Int8", "Qwen2.5-7B-Instruct", "gptq_int8"),
        (
            "neuralmagic/Meta-Llama-3.1-8B-Instruct-quantized.w4a16",
            "neuralmagic/Meta-Llama-3.1-8B-Instruct",
            "w4a16",
        ),
        ("qwen3-8b_fp8", "qwen3-8b", "fp8_block"),
        ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B", None),
        ("my-fp8", "my", "fp8_block"),
        ("fp8", "fp8", None),  # a bare suffix is a name, not a base plus a format
    ],
)
def test_split_quant_suffix(name: str, base: str, quant: str | None) -> None:
    assert split_quant_suffix(name) == (base, quant)


def test_resolves_quantized_repo_to_base_config() -> None:
    served = resolve_served_name("Qwen/Qwen3-30B-A3B-FP8 (local dir /models/q)")
    assert served.loaded.spec.name == "Qwen/Qwen3-30B-A3B"
    assert served.quantization == "fp8_block"
    assert served.note and "fp8_block" in served.note
    plain = resolve_served_name("meta-llama/Llama-3.1-8B-Instruct")
    assert plain.quantization is None


def test_the_engines_share_it() -> None:
    from vramplan.engines.sglang import resolve_model
    from vramplan.engines.vllm import resolve_model_name

    spec, quant, _ = resolve_model_name("Qwen/Qwen3-8B-AWQ")
    loaded, quant2, _ = resolve_model("Qwen/Qwen3-8B-AWQ")
    assert (spec, quant) == (loaded.spec, quant2) == (loaded.spec, "awq")


def test_unknown_name_is_refused() -> None:
    with pytest.raises(UnknownModelError):
        resolve_served_name("nobody/NoSuchModel-7B-FP8")
