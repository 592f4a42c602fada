"""LoRA / QLoRA adapters: which matrices get adapters and how many trainable parameters that adds.

LoRA (Hu et al. 2021, arXiv 2106.09685, §4.1): a frozen W (d_out × d_in) gets B·A with A (r × d_in),
B (d_out × r), so each adapted matrix trains r·(d_in + d_out) parameters. QLoRA (Dettmers et al. 2023,
arXiv 2305.14314, §3) stores the frozen linear weights in NF4 with double quantization and adapts every
linear layer (r = 64 in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.errors import InputError
from vramplan.model.params import TensorGroup, inventory
from vramplan.model.spec import ModelSpec

#: short target names → projection names in the parameter inventory (peft's target_modules style).
TARGET_ALIASES = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "o_proj",
    "gate": "gate_proj",
    "up": "up_proj",
    "down": "down_proj",
    "fc1": "fc1",
    "fc2": "down_proj",
}
DEFAULT_TARGETS = ("q", "k", "v", "o")


def parse_targets(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """'q,k,v,o' or 'all-linear' → a tuple of target names ('all-linear' stays as is)."""
    items = [
        t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()
    ]
    if not items:
        raise InputError(
            "no LoRA targets given: use e.g. --lora-targets q,k,v,o or --lora-targets all-linear"
        )
    if "all-linear" in items or "all_linear" in items:
        return ("all-linear",)
    return tuple(items)


@dataclass(frozen=True)
class AdaptedMatrix:
    """One adapted frozen matrix group (``count`` identical matrices of ``d_out × d_in``)."""

    group: TensorGroup
    d_out: int
    d_in: int

    def adapter_params(self, rank: int) -> int:
        return rank * (self.d_in + self.d_out) * self.group.count


def adapted_matrices(
    spec: ModelSpec, targets: tuple[str, ...], rank: int
) -> tuple[AdaptedMatrix, ...]:
    """The inventory's linear weights that get adapters; errors name what matched nothing or a rank too large."""
    if rank < 1:
        raise InputError(f"LoRA rank must be a positive integer, got {rank}")
    linear = [
        g
        for g in inventory(spec)
        if g.role in ("linear", "expert") and g.stage == "layer" and len(g.shape) == 2
    ]
    if targets == ("all-linear",):
        chosen = linear  # peft's all-linear: every Linear in the decoder layers, never lm_head
    else:
        chosen = []
        for t in targets:
            proj = TARGET_ALIASES.get(t, t)
            hits = [
                g
                for g in linear
                if g.name.rsplit(".", 2)[-2] == proj or g.name.endswith(f".{proj}.weight")
            ]
            if not hits:
                names = sorted({g.name.rsplit(".", 2)[-2] for g in linear})
                raise InputError(
                    f"LoRA target {t!r} matches no linear layer of {spec.name}: "
                    f"use q,k,v,o,gate,up,down, all-linear, or one of {', '.join(names)}"
                )
            chosen.extend(h for h in hits if h not in chosen)
    out = tuple(AdaptedMatrix(g, g.shape[0], g.shape[1]) for g in chosen)
    smallest = min(out, key=lambda m: min(m.d_in, m.d_out))
    limit = min(smallest.d_in, smallest.d_out)
    if rank > limit:
        raise InputError(
            f"LoRA rank {rank} is larger than the adapted matrix {smallest.group.name} "
            f"({smallest.d_out} x {smallest.d_in}; hidden size {spec.hidden_size}): a rank above min(d_in, d_out) = {limit} "
            f"adds parameters without adding capacity. Use --lora-rank {limit} or less (typical: 8-64)"
        )
    return out


def adapter_params(spec: ModelSpec, targets: tuple[str, ...], rank: int) -> int:
    """Σ r·(d_in + d_out) over the adapted matrices (Hu et al. 2021)."""
    return sum(m.adapter_params(rank) for m in adapted_matrices(spec, targets, rank))
