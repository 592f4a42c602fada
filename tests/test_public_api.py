"""Every name in vramplan.__all__ is really there, and the CLI, Python and JSON agree."""

from __future__ import annotations

import importlib
import json

import pytest

import vramplan


@pytest.mark.parametrize("name", vramplan.__all__)
def test_exported_name_resolves(name: str) -> None:
    if (
        name in ("plan", "estimate_training")
        and importlib.util.find_spec(vramplan._EXPORTS[name]) is None
    ):
        pytest.skip(f"{name} not built")
    assert getattr(vramplan, name) is not None


def test_cli_and_library_give_identical_numbers() -> None:
    from typer.testing import CliRunner

    from vramplan.cli import app

    args = [
        "estimate",
        "qwen3-8b",
        "--context",
        "16384",
        "--users",
        "12",
        "--gpu",
        "A100-80GB",
        "--kv-cache-dtype",
        "fp8",
        "--json",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    lib = vramplan.estimate(
        "qwen3-8b", context=16384, users=12, gpu="A100-80GB", kv_cache_dtype="fp8"
    ).to_dict()
    assert cli == json.loads(json.dumps(lib))


def test_breakdown_json_contract_keys() -> None:
    d = vramplan.estimate("llama-3.1-8b", gpu="H100").to_dict()
    for key in (
        "model",
        "params",
        "weights_bytes",
        "kv_cache_bytes",
        "activations_bytes",
        "overhead_bytes",
        "total_bytes",
        "per_gpu",
        "kv_bytes_per_token",
        "gpus",
        "fits",
        "assumptions",
    ):
        assert key in d
    assert (
        d["total_bytes"]
        == d["weights_bytes"] + d["kv_cache_bytes"] + d["activations_bytes"] + d["overhead_bytes"]
    )
    assert all(
        isinstance(d[k], int) for k in ("params", "weights_bytes", "kv_cache_bytes", "total_bytes")
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["estimate", "no-such-model-xyz"], "unknown model"),
        (["estimate", "llama-3.1-8b", "--dtype", "fp7"], "unknown dtype"),
        (["estimate", "llama-3.1-8b", "--context", "-5"], "context must be positive"),
        (["estimate", "llama-3.1-8b", "--gpu", "H900"], "unknown GPU"),
        (["estimate", "llama-3.1-8b", "--gpu-memory", "lots"], "cannot read memory size"),
        (["estimate", "llama-3.1-8b", "--tensor-parallel-size", "3"], "does not divide"),
        (["estimate", "--params", "70e9"], None),
    ],
)
def test_cli_errors_are_one_line(
    argv: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from vramplan.cli import main

    if message is None:
        main(argv)  # succeeds: returns normally
        assert "168.0 GB" in capsys.readouterr().out
        return
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_files(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from vramplan.cli import main

    truncated = tmp_path / "truncated" / "config.json"
    truncated.parent.mkdir()
    truncated.write_text('{"model_type": "llama", "hidden_size": 40')
    unknown = tmp_path / "unknown" / "config.json"
    unknown.parent.mkdir()
    unknown.write_text('{"model_type": "no_such_family", "hidden_size": 64, "vocab_size": 10}')
    for path, needle in ((truncated.parent, "not valid JSON"), (unknown, "not supported")):
        with pytest.raises(SystemExit) as exc:
            main(["estimate", str(path)])
        assert exc.value.code == 1
        assert needle in capsys.readouterr().err


def test_estimate_plot_writes_png_and_svg(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    from vramplan.cli import main

    for name in ("mem.png", "mem.svg"):
        main(["estimate", "llama-3.1-8b", "--gpu", "L4", "--plot", str(tmp_path / name), "--json"])
        assert (tmp_path / name).stat().st_size > 1000


def test_estimate_is_the_function_however_submodules_are_imported() -> None:
    import importlib

    importlib.import_module("vramplan.estimator")
    import vramplan.memory.breakdown

    assert callable(vramplan.estimate) and vramplan.estimate.__module__ == "vramplan.estimator"
