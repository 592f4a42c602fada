"""Names people type: aliases resolve, and unknown names get family-aware suggestions."""

from __future__ import annotations

import pytest

from vramplan.model import catalog


@pytest.mark.parametrize(
    ("name", "repo_id"),
    [
        ("mistral-7b", "mistralai/Mistral-7B-v0.1"),
        ("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1"),
        ("Mixtral-8x22B", "mistralai/Mixtral-8x22B-v0.1"),
        ("llama3-8b", "meta-llama/Meta-Llama-3-8B"),
        ("llama3.1-70b", "meta-llama/Llama-3.1-70B"),
        ("gemma3-27b", "google/gemma-3-27b-it"),
        ("phi4", "microsoft/phi-4"),
        ("tinyllama", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
        ("llama-3.1-8b", "meta-llama/Llama-3.1-8B"),  # the existing forms keep working
        ("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B"),
    ],
)
def test_aliases(name: str, repo_id: str) -> None:
    assert catalog.find(name) == repo_id


def test_every_alias_target_is_bundled_and_listed() -> None:
    for alias, repo_id in catalog.ALIASES.items():
        assert repo_id in catalog.catalogue(), alias
        assert alias in catalog.aliases(repo_id)


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("qwen3-30b", "Qwen/Qwen3-30B-A3B"),  # same family, version and size beats 'qwen3-32b'
        ("qwen3-235b", "Qwen/Qwen3-235B-A22B"),
        ("llama-3.1-7b", "meta-llama/Llama-3.1-8B"),
        ("lama-3-8b", "meta-llama/Meta-Llama-3-8B"),  # a typo falls back to spelling
        ("falcon-40", "tiiuae/falcon-40b"),
    ],
)
def test_suggestions_rank_the_intended_model_first(name: str, first: str) -> None:
    assert catalog.find(name) is None
    got = catalog.suggestions(name)
    assert got and got[0] == first, got


def test_suggestions_stay_in_the_family() -> None:
    assert all(r.startswith("Qwen/") for r in catalog.suggestions("qwen-72b"))
    assert all("mixtral" in r.lower() for r in catalog.suggestions("mixtral-8x9b"))


def test_unknown_model_message_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    from vramplan.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["estimate", "qwen3-30b"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Qwen/Qwen3-30B-A3B" in err
