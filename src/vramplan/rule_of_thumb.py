"""The write-ups' rule of thumb, kept so users can compare it with the detailed estimate.

    M = (P x 4 bytes) / (32 / Q) x 1.2        (seeds/000: weights at Q bits plus a flat 20 %)

Known errors in the popular write-ups, which vramplan does not repeat:
  * seeds/001 multiplies by 32/Q instead of dividing: a 16-bit 70B model comes out at 560 GB
    (672 GB with the 1.2) instead of 140 GB (168 GB).
  * seeds/002 adds 26 + 16 + 9.2 GB and reports 101.2 GB; the sum is 51.2 GB.
  * seeds/002's KV formula, 2 x layers x hidden x bytes per token, uses the full hidden size for K
    and V. Right for LLaMA-13B (MHA), 8x too high for Llama-2-70B (8 KV heads of 64), and wrong for
    MLA models, whose cache holds one latent per token.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.errors import InputError


@dataclass(frozen=True)
class RuleOfThumb:
    params: int
    bits: float
    weights_bytes: int
    total_bytes: int

    @property
    def overhead_bytes(self) -> int:
        return self.total_bytes - self.weights_bytes


OVERHEAD_FACTOR = 1.2


def rule_of_thumb(params: int, bits: float) -> RuleOfThumb:
    """M = P x 4 / (32/Q) x 1.2 bytes, exactly as the write-ups state it."""
    if params <= 0:
        raise InputError(f"parameter count must be positive, got {params}")
    if not 0 < bits <= 64:
        raise InputError(f"bits per parameter must be in (0, 64], got {bits}")
    weights = params * 4 / (32 / bits)
    return RuleOfThumb(params, bits, round(weights), round(weights * OVERHEAD_FACTOR))


def naive_kv_bytes_per_token(num_layers: int, hidden_size: int, bytes_per_element: int = 2) -> int:
    """seeds/002's KV formula: 2 (K and V) x layers x hidden x bytes. Ignores GQA, MQA and MLA."""
    return 2 * num_layers * hidden_size * bytes_per_element


def wrong_multiplying_rule(params: int, bits: float) -> int:
    """seeds/001's error (x 32/Q instead of / (32/Q)), without the 1.2; for the docs and a test only."""
    return round(params * 4 * (32 / bits))
