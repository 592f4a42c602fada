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


#: Names people type that the id alone does not give (checked by tests: every target is bundled).
ALIASES: dict[str, str] = {
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "mistral-7b-instruct": "mistralai/Mistral-7B-Instruct-v0.3",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1",
    "mixtral-8x22b": "mistralai/Mixtral-8x22B-v0.1",
    "mistral-small": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "mistral-small-3.1": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "mistral-small-3.1-24b": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "llama-4-scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "llama-3.2-vision": "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "phi-3-mini": "microsoft/Phi-3-mini-4k-instruct",
    "phi-3-medium": "microsoft/Phi-3-medium-4k-instruct",
    "tinyllama": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "tinyllama-1.1b": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "bloom-176b": "bigscience/bloom",
    "qwen1.5-moe": "Qwen/Qwen1.5-MoE-A2.7B",
    "gpt-j": "EleutherAI/gpt-j-6b",
}

_LETTER_DIGIT_HYPHEN = re.compile(r"(?<=[a-z])-(?=\d)")


def _compact(form: str) -> str:
    """'llama-3.1-8b' -> 'llama3.1-8b', 'phi-4' -> 'phi4': people write both."""
    return _LETTER_DIGIT_HYPHEN.sub("", form)


@cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    # Base checkpoints first, so "llama-2-70b" means the base model rather than the chat tune.
    ids = sorted(catalogue(), key=lambda r: (bool(_VARIANT_TOKEN.search(_normalise(r))), r))
    for repo_id in ids:
        for form in _short_forms(repo_id):
            index.setdefault(form, repo_id)
    for alias, repo_id in ALIASES.items():
        if repo_id in catalogue():
            index.setdefault(alias, repo_id)
    return index


@cache
def _compact_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for form, repo_id in _alias_index().items():
        index.setdefault(_compact(form), repo_id)
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
    compact = _compact_index()
    for form in sorted(_short_forms(name), key=len, reverse=True):
        if _compact(form) in compact:
            return compact[_compact(form)]
    return None


_SIZE = re.compile(r"^(?:\d+x)?(\d+(?:\.\d+)?)([bm])$")
_VERSION = re.compile(r"^v?\d+(?:\.\d+)?$")


def _parts(name: str) -> tuple[str, str, float | None]:
    """'Qwen/Qwen3-30B-A3B' -> ('qwen', '3', 30e9); 'llama-3.1-70b' -> ('llama', '3.1', 70e9).

    Family = the leading letters, version = the number after them, size = the first NNb / NNm token.
    """
    short = _strip_variant(_normalise(name).split("/")[-1]).removeprefix("meta-")
    m = re.match(r"^([a-z]+(?:-[a-z]+)*?)-?(v?\d+(?:\.\d+)?(?![\d.]*[bmx]))?(?:-|$)", short)
    family = m.group(1) if m else short
    version = (m.group(2) or "").lstrip("v") if m else ""
    size = None
    for token in short.split("-"):
        sm = _SIZE.match(token)
        if sm:
            size = float(sm.group(1)) * (1e9 if sm.group(2) == "b" else 1e6)
            break
    return family, version, size


def suggestions(name: str, limit: int = 3) -> list[str]:
    """Catalogue ids close to ``name``: same family first, then same version, then nearest size.

    Why not plain edit distance: 'qwen3-30b' is nearer 'qwen3-32b' by characters, but the user
    means Qwen3-30B-A3B (same family, version and size); a typo ('lama-3-8b') still falls back to
    the closest spelling.
    """
    import difflib
    import math

    family, version, size = _parts(name)
    key = _compact(_normalise(name).split("/")[-1])
    scored: list[tuple[float, str]] = []
    for repo_id in catalogue():
        c_family, c_version, c_size = _parts(repo_id)
        if c_family != family:
            continue
        score = 4.0
        if version and c_version == version:
            score += 2.0
        if size and c_size:
            score += max(0.0, 2.0 - abs(math.log(size / c_size)) * 2)
        forms = [_compact(f.split("/")[-1]) for f in _short_forms(repo_id)]
        score += max(difflib.SequenceMatcher(None, key, f).ratio() for f in forms)
        scored.append((score, repo_id))
    if scored:
        return [r for _, r in sorted(scored, key=lambda x: (-x[0], x[1]))[:limit]]
    names = {_compact(form.split("/")[-1]): rid for form, rid in _alias_index().items()}
    close = difflib.get_close_matches(key, list(names), n=limit * 3, cutoff=0.5)
    seen: list[str] = []
    for c in close:
        if names[c] not in seen:
            seen.append(names[c])
    return seen[:limit]


def aliases(repo_id: str) -> list[str]:
    return sorted(a for a, r in _alias_index().items() if r == repo_id and "/" not in a)
