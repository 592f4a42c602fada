"""The tensor inventory every explicit family builder fills (``families_*.py``): one call per tensor kind.

Kept apart from the builders so that the hybrid families, which ``hf_config`` imports at load time, and the 2026
families, which import ``hf_config``, share it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from vramplan.model.layout import Role, Split, Stage, TensorGroup


class Inventory:
    """Collects tensors; identical tensors (same name, shape and placement) are merged into one group."""

    def __init__(self) -> None:
        self._counts: dict[tuple[Any, ...], int] = {}

    def add(
        self,
        name: str,
        shape: tuple[int, ...],
        count: int,
        role: Role,
        split: Split = "replicated",
        stage: Stage = "layer",
        component: str = "norms",
        kv_heads: int = 0,
    ) -> None:
        if count <= 0 or any(d <= 0 for d in shape):
            return
        key = (name, tuple(shape), role, split, stage, component, kv_heads)
        self._counts[key] = self._counts.get(key, 0) + count

    def linear(
        self,
        name: str,
        out: int,
        inp: int,
        count: int,
        split: Split,
        component: str,
        bias: bool = False,
        role: Role = "linear",
        kv_heads: int = 0,
    ) -> None:
        self.add(f"{name}.weight", (out, inp), count, role, split, "layer", component, kv_heads)
        if bias:
            bias_split: Split = "replicated" if split == "row" else split
            self.add(
                f"{name}.bias", (out,), count, "bias", bias_split, "layer", component, kv_heads
            )

    def norm(
        self,
        name: str,
        width: int,
        count: int,
        bias: bool = False,
        stage: Stage = "layer",
        component: str | None = None,
        split: Split = "replicated",
    ) -> None:
        """A norm's weight (and bias); its component is "attention" inside self_attn, else "norms", unless given."""
        if component is None:
            component = "attention" if ".self_attn." in name else "norms"
        self.add(f"{name}.weight", (width,), count, "norm", split, stage, component)
        if bias:
            self.add(f"{name}.bias", (width,), count, "norm", split, stage, component)

    def vector(
        self, name: str, width: int, count: int, component: str, stage: Stage = "layer"
    ) -> None:
        self.add(name, (width,), count, "bias", "replicated", stage, component)

    def extra(self, name: str, numel: int, component: str = "vision") -> None:
        self.add(name, (numel,), 1, "extra", "replicated", "first", component)

    def groups(self) -> tuple[TensorGroup, ...]:
        return tuple(
            TensorGroup(name, shape, count, role, split, stage, component, kv_heads)
            for (
                name,
                shape,
                role,
                split,
                stage,
                component,
                kv_heads,
            ), count in self._counts.items()
        )


def embeddings(
    inv: Inventory, vocab: int, hidden: int, tied: bool, lm_head_bias: bool = False
) -> None:
    """Token embeddings, and the lm_head (with its bias) unless tied."""
    inv.add("embed_tokens.weight", (vocab, hidden), 1, "embedding", "vocab", "first", "embeddings")
    if not tied:
        inv.add("lm_head.weight", (vocab, hidden), 1, "lm_head", "vocab", "last", "lm_head")
    if lm_head_bias:
        inv.add("lm_head.bias", (vocab,), 1, "bias", "vocab", "last", "lm_head")


def final_norm(inv: Inventory, hidden: int, bias: bool = False) -> None:
    """The norm after the last layer (the last pipeline stage holds it)."""
    inv.norm("norm", hidden, 1, bias, stage="last")
