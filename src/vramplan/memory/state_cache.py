"""Per-sequence state of hybrid and state-space models (Mamba1/2, gated DeltaNet, KDA, short conv).

A recurrent layer keeps, for every running sequence and whatever its length:
  conv state       conv_channels_rank x (conv_kernel - 1) elements, in the conv dtype
  recurrent state  prod(recurrent_shape_rank) elements, in the ssm dtype (none for short conv)
(vLLM ``model_executor/layers/mamba/mamba_utils.py``; transformers' Mamba/hybrid caches; llama.cpp
``llama_memory_recurrent``, where both are f32). Only attention layers pay per-token KV (``kv_cache.py``).

transformers' caches keep the whole kernel window (``conv_kernel`` columns, one more than the serving engines);
pass ``full_kernel=True`` for that layout.

Under TP the channels and heads split across ranks, except that Mamba2's B/C groups are padded up to the TP
size when TP does not divide them (vLLM ``extra_groups_for_head_shards``), so an n_groups = 1 model's conv
state does not shrink perfectly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from vramplan.model.spec import ModelSpec, StateSpec
from vramplan.precision import DTYPE_BYTES, canonical_dtype


@dataclass(frozen=True)
class StateLayerShapes:
    """One recurrent layer's state on one TP rank: conv (channels, kernel - 1) and the recurrent tensor."""

    conv_shape: tuple[int, int]
    recurrent_shape: tuple[int, ...]

    @property
    def conv_elements(self) -> int:
        return self.conv_shape[0] * self.conv_shape[1]

    @property
    def recurrent_elements(self) -> int:
        n = 1 if self.recurrent_shape else 0
        for d in self.recurrent_shape:
            n *= d
        return n


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def extra_groups_for_tp(groups: int, tp: int) -> int:
    """vLLM ``extra_groups_for_head_shards``: groups added so that every rank holds whole groups."""
    return 0 if groups % tp == 0 else tp - groups


@lru_cache(maxsize=256)
def state_shapes(state: StateSpec, tp: int = 1, full_kernel: bool = False) -> StateLayerShapes:
    """Per-layer state shapes on one of ``tp`` ranks (``full_kernel``: transformers' conv window)."""
    if state.conv_groups:
        inner = state.conv_channels - state.conv_groups * state.group_channels
        groups = state.conv_groups + extra_groups_for_tp(state.conv_groups, tp)
        channels = _cdiv(inner, tp) + _cdiv(groups * state.group_channels, tp)
    else:
        channels = _cdiv(state.conv_channels, tp)
    recurrent = state.recurrent_shape
    if recurrent:
        recurrent = (_cdiv(recurrent[0], tp), *recurrent[1:])
    return StateLayerShapes((channels, state.conv_kernel - (0 if full_kernel else 1)), recurrent)


@dataclass(frozen=True)
class StateDtypes:
    """Element types of the two state tensors, and where each choice came from."""

    conv: str
    recurrent: str
    note: str

    @property
    def conv_bytes(self) -> Fraction:
        return DTYPE_BYTES[self.conv]

    @property
    def recurrent_bytes(self) -> Fraction:
        return DTYPE_BYTES[self.recurrent]


def state_dtypes(
    spec: ModelSpec,
    compute_dtype: str,
    conv_dtype: str | None = None,
    ssm_dtype: str | None = None,
) -> StateDtypes:
    """vLLM's rule (``mamba_utils.py``, ``models/config.py``): conv state in ``--mamba-cache-dtype`` ("auto" =
    the model dtype); recurrent state in ``--mamba-ssm-cache-dtype``, else the checkpoint's own
    (``mamba_ssm_cache_dtype`` / ``mamba_ssm_dtype``, float32 for KDA), else the conv dtype."""
    conv = compute_dtype if conv_dtype in (None, "auto") else canonical_dtype(str(conv_dtype))
    from_model = spec.state.ssm_dtype if spec.state is not None else None
    if ssm_dtype not in (None, "auto"):
        recurrent, why = canonical_dtype(str(ssm_dtype)), "set explicitly"
    elif from_model:
        recurrent, why = canonical_dtype(from_model), "the checkpoint's own state dtype"
    else:
        recurrent, why = conv, "the model dtype"
    return StateDtypes(conv, recurrent, f"conv state {conv}, recurrent state {recurrent} ({why})")


def state_layers(spec: ModelSpec, layers: int | None = None, first_layer: int = 0) -> int:
    """Recurrent layers among layers ``first_layer .. first_layer + layers`` (default: all)."""
    if spec.state is None:
        return 0
    end = spec.num_layers if layers is None else first_layer + layers
    return sum(1 for i in spec.state.layers if first_layer <= i < end)


def state_bytes_per_layer(
    state: StateSpec,
    conv_bytes: Fraction | int,
    recurrent_bytes: Fraction | int,
    tp: int = 1,
    full_kernel: bool = False,
) -> int:
    """Bytes of one recurrent layer's state for one sequence on one rank."""
    shapes = state_shapes(state, tp, full_kernel)
    total = shapes.conv_elements * Fraction(conv_bytes) + shapes.recurrent_elements * Fraction(
        recurrent_bytes
    )
    return _cdiv(total.numerator, total.denominator)


def state_bytes_per_sequence(
    spec: ModelSpec,
    conv_bytes: Fraction | int,
    recurrent_bytes: Fraction | int,
    tp: int = 1,
    layers: int | None = None,
    first_layer: int = 0,
    full_kernel: bool = False,
) -> int:
    """Bytes of state one running sequence holds on one rank, over the given layers (default all); 0 for
    models without recurrent layers. Independent of the context length."""
    if spec.state is None:
        return 0
    n = state_layers(spec, layers, first_layer)
    return n * state_bytes_per_layer(spec.state, conv_bytes, recurrent_bytes, tp, full_kernel)
