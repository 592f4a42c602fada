"""Scenario: everything an estimate depends on, validated once, with errors that name the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vramplan.errors import InputError

Method = Literal["detailed", "rule-of-thumb"]
MAX_CONTEXT = 1 << 24  # 16M tokens: beyond any released model
MAX_USERS = 1 << 20


@dataclass(frozen=True)
class Workload:
    """What the server must hold at once."""

    #: Tokens per sequence (prompt + generated) that must fit in the KV cache.
    context: int = 4096
    #: Sequences resident at the same time (concurrent users x parallel samples).
    users: int = 1
    #: Tokens one forward pass processes at most (chunked prefill budget); None = min(context x users, 8192).
    batch_tokens: int | None = None

    def __post_init__(self) -> None:
        _positive_int("context", self.context, MAX_CONTEXT, "--context 8192")
        _positive_int("users", self.users, MAX_USERS, "--users 16")
        if self.batch_tokens is not None:
            _positive_int("batch tokens", self.batch_tokens, MAX_CONTEXT, "--batch-tokens 8192")

    @property
    def forward_tokens(self) -> int:
        return self.batch_tokens or min(self.context * self.users, 8192)


@dataclass(frozen=True)
class Parallelism:
    """Tensor- and pipeline-parallel sizes; None means 'choose the fewest GPUs that fit'."""

    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("tensor-parallel-size", self.tensor_parallel_size),
            ("pipeline-parallel-size", self.pipeline_parallel_size),
        ):
            if value is not None:
                _positive_int(name, value, 1024, f"--{name} 2")


def _positive_int(what: str, value: object, upper: int, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r} (e.g. {example})")
    if value <= 0:
        raise InputError(f"{what} must be positive, got {value} (e.g. {example})")
    if value > upper:
        raise InputError(f"{what} {value:,} is absurdly large (limit {upper:,})")
