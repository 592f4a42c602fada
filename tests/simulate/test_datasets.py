"""Request-length datasets: sourced presets, the maximum-entropy law, and lengths files (good and hostile)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vramplan.errors import InputError
from vramplan.simulate import workload as wl
from vramplan.simulate.workload import (
    DATASETS,
    LengthDist,
    dataset_samples,
    length_mix,
    maxent_rate,
)


# ------------------------------------------------------------------------------------------ presets
@pytest.mark.parametrize(
    ("name", "prompt_mean", "output_mean"),
    [
        # benchmark_serving ShareGPT run published by KubeAI: 230,969 / 194,523 tokens over 1,000 requests
        ("sharegpt", 230_969 / 1000, 194_523 / 1000),
        # MLPerf v4.1 NVIDIA Offline log: 24524.9 tokens/s / 84.4792 samples/s; prompt mean per MLCommons
        ("openorca", 295.0, 24524.9 / 84.4792),
        # vLLM SonnetDataset defaults: --sonnet-input-len 550, --sonnet-output-len 150
        ("sonnet", 550.0, 150.0),
    ],
)
def test_preset_means_match_their_sources(
    name: str, prompt_mean: float, output_mean: float
) -> None:
    got = dataset_samples(name)
    assert got.prompt_len.mean() == pytest.approx(prompt_mean, rel=0.01)
    assert got.output_len.mean() == pytest.approx(output_mean, rel=0.015)
    assert got.source and len(got.prompt_len) == wl.DATASET_DRAWS
    stats = got.stats()
    for key in ("input_tokens", "output_tokens"):
        assert stats[key]["p50"] <= stats[key]["p99"]


def test_presets_respect_their_samplers_bounds() -> None:
    share = dataset_samples("sharegpt")
    # vllm/benchmarks/datasets/datasets.py is_valid_sequence: >= 4 each, prompt <= 1024, pair <= 2048
    assert share.prompt_len.min() >= 4 and share.output_len.min() >= 4
    assert share.prompt_len.max() <= 1024
    assert (share.prompt_len + share.output_len).max() <= 2048
    orca = dataset_samples("openorca")
    assert orca.prompt_len.max() <= 1024 and orca.output_len.max() <= 1024
    # heavy right tails: the median is below the mean, p99 far above it
    for got in (share, orca):
        for a in (got.prompt_len, got.output_len):
            assert np.percentile(a, 50) < a.mean() < np.percentile(a, 99) / 2


def test_presets_are_deterministic_and_read_only() -> None:
    a, b = dataset_samples("sharegpt"), dataset_samples("sharegpt")
    assert np.array_equal(a.prompt_len, b.prompt_len)
    with pytest.raises(ValueError):
        a.prompt_len[0] = 1


def test_every_preset_is_sourced() -> None:
    for d in DATASETS.values():
        assert len(d.source) > 80, d.name


@settings(max_examples=40, deadline=None)
@given(
    low=st.integers(1, 500),
    width=st.integers(3, 4000),
    share=st.floats(0.02, 0.98),
)
def test_maxent_rate_gives_the_mean_by_numerical_integration(
    low: int, width: int, share: float
) -> None:
    """The truncated exponential's mean at the solved rate, checked by integrating x e^{-λx}."""
    high = low + width
    mean = low + share * width
    lam = maxent_rate(low, high, mean)
    x = np.linspace(low, high, 200_001)
    w = np.exp(-lam * (x - low) - max(0.0, -lam * width))  # scaled to stay finite
    assert np.trapezoid(x * w, x) / np.trapezoid(w, x) == pytest.approx(mean, rel=1e-4, abs=1e-3)


def test_maxent_validation() -> None:
    with pytest.raises(InputError, match="maxent"):
        LengthDist("maxent", low=10, high=20, mean=30).validate("prompt")
    with pytest.raises(InputError, match="maxent"):
        LengthDist("maxent", low=10, high=20).validate("prompt")


def test_unknown_dataset_and_files_refused_when_not_allowed(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="sharegpt, openorca, sonnet"):
        dataset_samples("lmsys")
    f = tmp_path / "l.csv"
    f.write_text("prompt_len,output_len\n10,20\n")
    with pytest.raises(InputError, match="unknown --dataset") as exc:
        dataset_samples(str(f), allow_files=False)
    assert "file" not in str(exc.value).split(";")[1]


def test_output_len_fixes_every_output() -> None:
    got = dataset_samples("sharegpt", output_len=300)
    assert set(got.output_len.tolist()) == {300}
    assert length_mix("sonnet", output_len=64).dataset["output_len_fixed"] == 64  # type: ignore[index]


# ------------------------------------------------------------------------------------ lengths files
def _write(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return str(p)


def test_csv_jsonl_and_json_lengths(tmp_path: Path) -> None:
    files = [
        _write(tmp_path, "a.csv", "prompt_len,output_len\n10,20\n30,40\n"),
        _write(tmp_path, "b.csv", "input_len,output_len,extra\n10,20,x\n30,40,y\n"),
        _write(
            tmp_path,
            "c.jsonl",
            '{"prompt_len": 10, "output_len": 20}\n\n{"input_len": 30, "output_len": 40}\n',
        ),
        _write(tmp_path, "d.json", json.dumps([{"prompt_len": 10, "output_len": 20}] * 3)),
    ]
    for f in files:
        got = dataset_samples(f)
        assert set(zip(got.prompt_len.tolist(), got.output_len.tolist())) <= {(10, 20), (30, 40)}
        assert got.name == Path(f).name


def test_sharegpt_conversations_count_about_four_characters_a_token(tmp_path: Path) -> None:
    def conv(prompt: str, reply: str) -> dict[str, object]:
        return {
            "id": "x",
            "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}],
        }

    data = [
        conv("a" * 400, "b" * 81),  # 100 and ceil(81 / 4) = 21 tokens
        conv("a" * 8, "b" * 8),  # 2 tokens each: benchmark_serving drops pairs under 4 tokens
        conv("a" * 4 * 1025, "b" * 40),  # a 1,025-token prompt: over the 1,024 limit, dropped
        conv("a" * 4 * 1000, "b" * 4 * 1049),  # 2,049 tokens in all: over 2,048, dropped
        {"id": "one turn", "conversations": [{"from": "human", "value": "hi"}]},  # skipped
        conv("c" * 40, "d" * 4 * 1008),  # 10 + 1,008 = 1,018 tokens: kept
    ]
    got = dataset_samples(_write(tmp_path, "sg.json", json.dumps(data)))
    assert list(zip(got.prompt_len.tolist(), got.output_len.tolist())) == [(100, 21), (10, 1008)]
    assert wl.CHARS_PER_TOKEN == 4


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("neg.csv", "prompt_len,output_len\n-5,20\n", "line 2"),
        ("zero.csv", "prompt_len,output_len\n10,0\n", "outside 1"),
        ("float.csv", "prompt_len,output_len\n10.5,20\n", "line 2"),
        ("huge.csv", "prompt_len,output_len\n" + "9" * 5000 + ",2\n", "line 2"),
        ("big.jsonl", '{"prompt_len": 1e400, "output_len": 2}\n', "line 1"),
        ("digits.jsonl", '{"prompt_len": ' + "9" * 5000 + ', "output_len": 2}\n', "cannot read"),
        ("over.jsonl", '{"prompt_len": 99999999999, "output_len": 2}\n', "outside 1"),
        ("bool.jsonl", '{"prompt_len": true, "output_len": 2}\n', "line 1"),
        ("nan.jsonl", '{"prompt_len": NaN, "output_len": 2}\n', "line 1"),
        ("list.jsonl", "[1, 2]\n", "not an object"),
        ("keys.jsonl", '{"a": 1}\n', "lacks prompt_len"),
        ("bad.jsonl", "{not json\n", "cannot read"),
        ("deep.json", "[" * 200_000 + "]" * 200_000, "cannot read"),
        ("obj.json", '{"prompt_len": 1}', "is an array"),
        ("empty.csv", "", "no usable rows"),
        ("header.csv", "a,b\n1,2\n", "lacks prompt_len"),
        ("field.csv", "prompt_len,output_len\n" + "1" * 200_000 + ",2\n", "cannot read"),
        ("noconv.json", json.dumps([{"conversations": "x"}]), "no usable rows"),
    ],
)
def test_hostile_files_give_one_clear_line(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    with pytest.raises(InputError, match=match) as exc:
        dataset_samples(_write(tmp_path, name, text))
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 400


def test_binary_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        dataset_samples(_write(tmp_path, "bin.csv", b"prompt_len,output_len\n\xff\xfe,\x00\n"))


def test_size_and_row_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _write(tmp_path, "rows.csv", "prompt_len,output_len\n" + "10,20\n" * 50)
    monkeypatch.setattr(wl, "MAX_LENGTH_ROWS", 10)
    with pytest.raises(InputError, match="more than 10 rows"):
        dataset_samples(f)
    monkeypatch.setattr(wl, "MAX_LENGTH_FILE_BYTES", 100)
    with pytest.raises(InputError, match="MiB"):
        dataset_samples(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        dataset_samples(str(tmp_path / "nope.csv"))


def test_simulate_reads_the_same_files(tmp_path: Path) -> None:
    """`simulate --workload FILE` and `perf --dataset FILE` share one reader (ShareGPT JSON too)."""
    from vramplan.simulate.workload import WorkloadConfig, make_trace

    conv = {"conversations": [{"value": "a" * 400}, {"value": "b" * 80}]}
    f = _write(tmp_path, "sg.json", json.dumps([conv]))
    t = make_trace(WorkloadConfig(num_requests=5, duration_s=None, samples_path=f))
    assert set(t.prompt_len.tolist()) == {100} and set(t.output_len.tolist()) == {20}
    assert math.isfinite(float(t.arrival_s[-1]))


def test_every_edge_names_the_same_presets() -> None:
    """The field's help (CLI and API schema) and the web page's choices list exactly DATASETS."""
    import re

    from vramplan.scenario_fields import FIELDS

    help_text = FIELDS["dataset"].help
    assert all(name in help_text for name in DATASETS)
    page = (Path(wl.__file__).parents[1] / "service" / "static" / "index.html").read_text(
        encoding="utf-8"
    )
    select = re.search(r'<select id="perf-dataset">(.*?)</select>', page, re.S)
    assert select is not None
    assert re.findall(r'<option value="(\w+)">', select.group(1)) == list(DATASETS)
