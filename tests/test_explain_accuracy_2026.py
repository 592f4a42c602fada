"""The 2026 section of the accuracy benchmark: every case of real_logs_2026.json gets a row or a reason.

Accuracy itself is not asserted here (the engines' hybrid work changes it); the table must load, call
the public engine predictors, compare the figures each case has, and say why a case is not reproduced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vramplan.engines.vllm import resolve_model_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import accuracy_2026  # noqa: E402

CASES = json.loads(accuracy_2026.CASES_2026.read_text())


@pytest.fixture(scope="module")
def table() -> list[dict]:
    return accuracy_2026.rows()


def test_every_case_has_a_row_or_a_reason(table: list[dict]) -> None:
    assert [r["id"] for r in table] == [c["id"] for c in CASES]
    for r in table:
        if r["reason"] is not None:
            assert r["reason"].strip(), r["id"]
        else:
            assert r["figures"] or r["failure"][1], r["id"]


def test_rows_compare_the_figures_each_case_logged(table: list[dict]) -> None:
    by_id = {c["id"]: c for c in CASES}
    fields = [f for f, _title in accuracy_2026.FIGURES_2026]
    for r in table:
        if r["reason"] is not None:
            continue
        case = by_id[r["id"]]
        assert set(r["figures"]) == {f for f in fields if case.get(f) is not None}, r["id"]
        for field, (_predicted, logged, _err) in r["figures"].items():
            assert logged == case[field], (r["id"], field)


def test_weaker_evidence_is_noted(table: list[dict]) -> None:
    by_id = {r["id"]: r for r in table}
    for case in CASES:
        notes = "; ".join(by_id[case["id"]]["notes"])
        if case.get("provenance_unresolved"):
            assert "provenance unresolved" in notes, case["id"]
        if case.get("settings_note"):
            assert case["settings_note"] in notes, case["id"]
    assert "partial excerpt" in "; ".join(by_id["vllm-26646-qwen3next-int4-autoround-tp2"]["notes"])


@pytest.mark.parametrize("fragment, stand_in", accuracy_2026.STAND_INS)
def test_stand_ins_resolve(fragment: str, stand_in: accuracy_2026.StandIn) -> None:
    resolve_model_name(stand_in.model)


def test_case_without_a_config_is_not_guessed(table: list[dict]) -> None:
    row = next(r for r in table if r["id"] == "vllm-54426-qwen38-flashnext-gb10-bf16kv")
    assert row["reason"].startswith("no published config")


def test_rendered_section() -> None:
    lines = accuracy_2026.render(accuracy_2026.rows())
    assert lines[0].startswith("## 2026 cases")
    assert any(line.startswith("### 2026 cases not reproduced") for line in lines)
