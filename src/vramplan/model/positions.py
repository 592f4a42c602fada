"""The longest context a model accepts, derived as vLLM derives ``max_model_len``.

vLLM ``ModelConfig._get_and_verify_max_len`` (vllm/config): start from ``max_position_embeddings``; a
``rope_scaling`` of any type but ``su``/``longrope``/``llama3`` (whose ``max_position_embeddings`` is
already the extended length) multiplies it by ``factor``, YaRN from ``original_max_position_embeddings``.
A longer ``--max-model-len`` is refused unless ``VLLM_ALLOW_LONG_MAX_MODEL_LEN=1``; vramplan's
``--allow-long-context`` is that switch.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.errors import InputError
from vramplan.model.spec import ModelSpec

#: Rope types whose max_position_embeddings already is the extended length (vLLM leaves them alone).
_NOT_SCALED = ("su", "longrope", "llama3", "default", "mrope")


@dataclass(frozen=True)
class ContextLimit:
    """The derived maximum and how it was derived (named in refusals)."""

    tokens: int
    derivation: str


def max_context(spec: ModelSpec) -> ContextLimit:
    """max_position_embeddings, scaled by the config's rope scaling where vLLM scales it.

    Memoised on the spec instance itself: ``rope_scaling`` takes no part in a spec's hash or
    equality, so a cache keyed by the spec could hand one model's limit to another.
    """
    memo = spec.__dict__.get(_MEMO)
    if memo is None:
        memo = spec.__dict__[_MEMO] = _derive_max_context(spec)
    return memo


_MEMO = "_max_context"


def _derive_max_context(spec: ModelSpec) -> ContextLimit:
    base = spec.max_position_embeddings
    scaling = spec.rope_scaling if isinstance(spec.rope_scaling, dict) else {}
    kind = str(scaling.get("rope_type") or scaling.get("type") or "default")
    factor = scaling.get("factor")
    # Gemma 3's max_position_embeddings already is the scaled length (vLLM skips its linear factor).
    gemma3 = spec.model_type.startswith("gemma3")
    if gemma3 or kind in _NOT_SCALED or not isinstance(factor, (int, float)) or factor <= 0:
        return ContextLimit(base, f"max_position_embeddings {base:,}")
    start = base
    if kind == "yarn" and isinstance(scaling.get("original_max_position_embeddings"), int):
        start = scaling["original_max_position_embeddings"]
    tokens = int(start * factor)
    origin = "original_max_position_embeddings" if start != base else "max_position_embeddings"
    return ContextLimit(tokens, f"{origin} {start:,} x {kind} rope scaling factor {factor:g}")


def check_context(spec: ModelSpec, context: int, allow_long_context: bool = False) -> str | None:
    """Refuse a context beyond the model's limit; with the override, return the assumption to state."""
    limit = max_context(spec)
    if context <= limit.tokens:
        return None
    if not allow_long_context:
        raise InputError(
            f"context {context:,} is beyond {spec.name}'s maximum of {limit.tokens:,} tokens "
            f"({limit.derivation}): use --context {limit.tokens} or less, or --allow-long-context "
            "(like VLLM_ALLOW_LONG_MAX_MODEL_LEN=1) to size it anyway"
        )
    return (
        f"context {context:,} is beyond {spec.name}'s maximum of {limit.tokens:,} tokens "
        f"({limit.derivation}); sized anyway (--allow-long-context), outputs may be wrong"
    )
