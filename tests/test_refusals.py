"""What cannot be is refused: one line, a non-zero exit, no traceback; estimate says fits: false."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vramplan.cli import main
from vramplan.errors import InputError
from vramplan.estimator import estimate
from vramplan.model.load import load_model
from vramplan.model.positions import max_context
from vramplan.units import display_unit, parse_size

REFUSED = [
    (["estimate", "llama-3.1-8b", "--context", "200000"], "maximum of 131,072 tokens"),
    (["estimate", "llama-3.1-8b", "--gpu-memory", "24"], "has no unit"),
    (["estimate", "llama-3.1-8b", "--unit", "MB"], "unknown --unit 'MB'"),
    (["estimate", "llama-3.1-8b", "-q", "mxfp4"], "MoE expert weights only"),
    (["train", "llama-3.1-8b", "--gpu", "A6000", "--unit", "gib2"], "unknown --unit"),
]


@pytest.mark.parametrize(("argv", "says"), REFUSED)
def test_cli_refuses_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert says in err, err


def test_long_context_override_is_stated() -> None:
    b = estimate("llama-3.1-8b", context=200_000, allow_long_context=True)
    assert b.context == 200_000
    assert any("--allow-long-context" in a for a in b.assumptions)


def test_rope_scaling_extends_the_limit_as_vllm_derives_it() -> None:
    # Qwen2.5's documented YaRN setting: 32,768 original positions x 4 = 131,072 (vLLM's derived max_model_len).
    spec = replace(load_model("qwen2.5-7b").spec, max_position_embeddings=32_768)
    assert max_context(spec).tokens == 32_768
    yarn = replace(
        spec,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32_768},
    )
    assert max_context(yarn).tokens == 131_072
    assert "yarn" in max_context(yarn).derivation
    estimate(yarn, context=131_072)  # accepted
    with pytest.raises(InputError, match="131,072"):
        estimate(yarn, context=131_073)
    linear = replace(spec, rope_scaling={"rope_type": "linear", "factor": 2.0})
    assert max_context(linear).tokens == 65_536
    # llama3 scaling: max_position_embeddings already is the extended length (vLLM leaves it).
    llama = load_model("llama-3.1-8b").spec
    assert llama.rope_scaling and llama.rope_scaling.get("rope_type") == "llama3"
    assert max_context(llama).tokens == 131_072
    gemma = load_model("gemma-3-4b-it").spec  # linear x8 in its config, already in its 131,072
    assert gemma.rope_scaling and max_context(gemma).tokens == gemma.max_position_embeddings


def test_sizes_need_units_but_python_ints_are_bytes() -> None:
    with pytest.raises(InputError, match="no unit"):
        parse_size("24")
    assert parse_size(24 * 2**30) == 24 * 2**30
    assert parse_size("24GiB") == 24 * 2**30
    assert parse_size("512B") == 512
    assert display_unit("gb") == "GB"
    with pytest.raises(InputError, match="unknown --unit"):
        display_unit("MiB")


def test_mxfp4_on_moe_is_accepted() -> None:
    b = estimate("gpt-oss-20b", quantization="mxfp4")
    assert b.precision == "mxfp4"
