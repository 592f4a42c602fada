"""The bundled model catalogue: published config.json files, found by id, variant or short alias."""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any


def _normalise(name: str) -> str:
    return re.sub(r"\s+", "-", name.strip().lower()).replace("_", "-")


_VARIANT_TOKEN = re.compile(r"-(instruct|chat|it)(?=-|$)")


def _strip_variant(name: str) -> str:
    """'mixtral-8x7b-instruct-v0.1' -> 'mixtral-8x7b-v0.1'; 'llama-2-70b-chat-hf' -> 'llama-2-70b'."""
    stripped = _VARIANT_TOKEN.sub("", name)
    for suffix in ("-hf", "-base"):
        stripped = stripped.removesuffix(suffix)
    return stripped


def _short_forms(repo_id: str) -> set[str]:
    """'meta-llama/Llama-3.1-8B-Instruct' -> {'meta-llama/llama-3.1-8b-instruct', 'llama-3.1-8b', ...}."""
    full = _normalise(repo_id)
    org, _, name = full.rpartition("/")
    stripped = _strip_variant(name)
    forms = {full, name, stripped}
    if org:
        forms.add(f"{org}/{stripped}")
    if stripped.startswith("meta-llama-"):
        forms.add(stripped.removeprefix("meta-"))
    return forms


@cache
def catalogue() -> dict[str, dict[str, Any]]:
    """repo id -> raw config.json, for every bundled file."""
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files("vramplan.model") / "catalog"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            repo_id = entry.name[: -len(".json")].replace("__", "/", 1)
            out[repo_id] = json.loads(entry.read_text(encoding="utf-8"))
    return out


@cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    # Base checkpoints first, so "llama-2-70b" means the base model rather than the chat tune.
    ids = sorted(catalogue(), key=lambda r: (bool(_VARIANT_TOKEN.search(_normalise(r))), r))
    for repo_id in ids:
        for form in _short_forms(repo_id):
            index.setdefault(form, repo_id)
    return index


#: Checkpoints whose config has the same architecture and shapes as a catalogue entry, with the evidence.
SAME_SHAPES = {
    # Mistral-Small-3.2 reuses 3.1's text decoder and Pixtral tower: vLLM logs 44.76 GiB of weights for both
    # (dev set: llmd-mistral-small-3.2-24b vs llmdplanner-mistralai-mistral-small).
    "mistralai/mistral-small-3.2-24b-instruct-2506": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
}


@lru_cache(maxsize=4096)
def find(name: str) -> str | None:
    """The catalogue id a name refers to, or None: exact id, a variant of one, or a short alias."""
    index = _alias_index()
    key = _normalise(name)
    if key in SAME_SHAPES or key.split("/")[-1] in {k.split("/")[-1] for k in SAME_SHAPES}:
        return next(
            v for k, v in SAME_SHAPES.items() if k == key or k.split("/")[-1] == key.split("/")[-1]
        )
    if key in index:
        return index[key]
    for form in sorted(_short_forms(name), key=len, reverse=True):
        if form in index:
            return index[form]
    return None


def suggestions(name: str, limit: int = 3) -> list[str]:
    import difflib

    key = _normalise(name).split("/")[-1]
    names = {form.split("/")[-1]: rid for form, rid in _alias_index().items()}
    close = difflib.get_close_matches(key, list(names), n=limit * 3, cutoff=0.5)
    seen: list[str] = []
    for c in close:
        if names[c] not in seen:
            seen.append(names[c])
    return seen[:limit]


def aliases(repo_id: str) -> list[str]:
    return sorted(a for a, r in _alias_index().items() if r == repo_id and "/" not in a)
