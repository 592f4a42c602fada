"""A hash computed once per frozen dataclass instance, for the objects that key the hot-path caches.

Why: specs, precisions and resolved models are the keys of every ``lru_cache`` an estimate goes
through; a dataclass recomputes its hash from all fields (Fractions and nested dataclasses
included) on each lookup, which cost more than the arithmetic behind the cache. The cached value
never travels: string hashes differ between interpreters, so pickles drop it.

Use in the class body of a ``@dataclass(frozen=True)`` (an explicit ``__hash__`` there keeps the
dataclass from generating its own)::

    __hash__ = cached_hash
    __getstate__ = state_without_hash
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_SLOT = "_cached_hash"


def cached_hash(self: Any) -> int:
    """The hash of the fields that take part in equality, computed on first use."""
    try:
        return self.__dict__[_SLOT]
    except KeyError:
        value = hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare))
        object.__setattr__(self, _SLOT, value)
        return value


def state_without_hash(self: Any) -> dict[str, Any]:
    """Pickle state without the cached hash (another process hashes strings differently)."""
    return {k: v for k, v in self.__dict__.items() if k != _SLOT}
