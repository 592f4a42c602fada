"""The shared simulate options (CLI and API call the same functions) and kv_budget with a ModelSpec."""

from __future__ import annotations

from pathlib import Path

import pytest

from vramplan.errors import InputError
from vramplan.model.catalog import catalogue
from vramplan.model.hf_config import spec_from_config
from vramplan.simulate.adapter import kv_budget
from vramplan.simulate.options import check_options, swap_space_bytes, workload_from

OK = {
    "rate": 2.0,
    "duration": 60.0,
    "block_size": 16,
    "max_model_len": 2048,
    "max_num_seqs": 256,
    "max_num_batched_tokens": 2048,
    "n": 1,
    "beam_width": 1,
    "system_prompt_len": 0,
    "system_prompt_share": 0.0,
    "preemption": "auto",
}


def test_kv_budget_takes_a_spec_or_a_name() -> None:
    spec = spec_from_config(catalogue()["facebook/opt-13b"], name="facebook/opt-13b")
    by_spec, by_name = kv_budget(spec, "A100-40GB"), kv_budget("opt-13b", "A100-40GB")
    assert by_spec.to_dict() == by_name.to_dict()
    assert by_spec.hardware == by_name.hardware
    assert by_spec.model_ref is spec  # perf_setup_for builds from the spec, never from a string
    with pytest.raises(InputError, match="name or a ModelSpec"):
        kv_budget(13, "A100-40GB")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("rate", float("nan"), "--rate"),
        ("duration", 1e9, "--duration"),
        ("block_size", 0, "--block-size"),
        ("max_model_len", 1, "--max-model-len"),
        ("n", 0, "--n"),
        ("system_prompt_share", 1.5, "--system-prompt-share"),
        ("preemption", "never", "--preemption"),
    ],
)
def test_check_options_names_the_flag(field: str, value: object, flag: str) -> None:
    check_options(**OK)
    with pytest.raises(InputError, match=flag):
        check_options(**{**OK, field: value})


def test_workload_files_only_when_allowed(tmp_path: Path) -> None:
    samples = tmp_path / "lens.csv"
    samples.write_text("prompt_len,output_len\n10,20\n")
    assert workload_from(str(samples), rate=1.0).samples_path == str(samples)
    with pytest.raises(InputError, match="unknown --workload") as err:
        workload_from(str(samples), allow_files=False, rate=1.0)
    assert ".csv" not in str(err.value).split(";")[1]  # the server does not advertise files
    assert workload_from("ShareGPT", allow_files=False, rate=1.0).rate == 1.0


def test_swap_space() -> None:
    assert swap_space_bytes("0GiB") == 0
    assert swap_space_bytes("4GiB") == 4 * 2**30


def test_catalogue_rows_are_what_the_cli_prints() -> None:
    import json

    from typer.testing import CliRunner

    from vramplan.catalogue_rows import gpu_rows, model_rows
    from vramplan.cli import app

    runner = CliRunner()
    for command, rows in (("models", model_rows()), ("gpus", gpu_rows())):
        out = runner.invoke(app, [command, "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output) == json.loads(json.dumps(rows))


def test_build_simulation_checks_cheap_things_first() -> None:
    from vramplan.simulate.options import build_simulation

    for kw, flag in (
        ({"step_time": "exact"}, "--step-time"),
        ({"engine_mode": "v2"}, "--engine-mode"),
        ({"rate": -1.0}, "--rate"),
    ):
        with pytest.raises(InputError, match=flag):
            build_simulation(
                model="no-such-model", gpu="A100-40GB", **kw
            )  # fails before the model lookup
    cfg, budget = build_simulation(
        model="opt-13b", gpu="A100-40GB", duration=10.0, step_time="roofline"
    )
    assert cfg.hardware == budget.hardware and cfg.perf is None and cfg.workload.duration_s == 10.0
