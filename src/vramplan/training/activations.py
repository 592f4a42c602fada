"""Activation memory of training, from Korthikanti et al. 2022 (arXiv 2205.05198, section 4, Table 2).

The paper counts the bytes each transformer layer keeps for the backward pass (2-byte activations,
1-byte dropout masks, MLP width 4h, unfused attention). ``korthikanti_layer_bytes`` is Table 2 as
printed. ``layer_bytes`` is our generalisation (the paper's own term-by-term accounting, section 4.1,
re-derived for other widths), chosen so that for a GPT-style layer it returns exactly Table 2:

per token, before dividing by tensor parallelism ``t``
  attention  2h (QKV input) + 2·q + 2·k + 2·v (Q, K, V) + 2·o (projection input) + m·h (dropout mask)
             + per query head 5s (softmax 2, dropout mask 1, dropout output 2), or 2s without dropout
  MLP plain  2h (fc1 input) + 2f (activation input) + 2f (activation output) + m·h      → 19h at f = 4h
  MLP gated  2h + 2f (gate) + 2f (up) + 2f (act(gate)) + 2f (product = down input) + m·h   (SwiGLU)
  norms      2h per norm (input), two per layer                                          → 4h
with ``q = a·d``, ``k = v = a_kv·d`` (GQA), ``o = a·d_v``, ``m = 1`` with dropout else 0. At q = k = v = o = h,
f = 4h, m = 1 this is 34h + 5as per token: Table 2's ``sbh(34 + 5as/h)``. The Megatron-LM
theoretical-memory code's ``18 + 4·ffn/h`` (SP + selective) is the plain-MLP case of the same sum.

Under TP the parts computed on head- or f-sharded tensors divide by t (the paper's ``24/t`` and
``5as/(ht)``); the layer-norm inputs, the QKV/MLP inputs and the dropout masks (``10sbh``) are
replicated unless sequence parallelism shards them too (``34/t``). Selective recompute and fused
(Flash) attention drop the ``s × s`` score terms; full recompute keeps only the layer input ``2sbh``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from vramplan.errors import InputError
from vramplan.model.spec import ModelSpec

Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")


def check_recompute(name: str) -> str:
    key = name.strip().lower()
    if key not in RECOMPUTE:
        raise InputError(
            f"unknown recompute policy {name!r}: use none, selective (attention core only) or full "
            "(gradient checkpointing of every layer)"
        )
    return key


def korthikanti_layer_bytes(
    s: int,
    b: int,
    h: int,
    a: int,
    t: int = 1,
    *,
    sequence_parallel: bool = False,
    recompute: str = "none",
) -> Fraction:
    """Table 2 of Korthikanti et al. 2022, bytes of activations per transformer layer, as printed."""
    sbh = Fraction(s * b * h)
    if recompute == "full":
        return 2 * sbh  # "Full activation recomputation: sbh(2)"
    score = Fraction(0) if recompute == "selective" else Fraction(5 * a * s, h * t)
    if t == 1 and not sequence_parallel:
        return sbh * (34 + score)  # "No parallelism: sbh(34 + 5as/h)"
    if sequence_parallel:
        return sbh * (Fraction(34, t) + score)  # "Tensor + sequence parallel: sbh(34/t + 5as/(ht))"
    return sbh * (10 + Fraction(24, t) + score)  # "Tensor parallel: sbh(10 + 24/t + 5as/(ht))"


@dataclass(frozen=True)
class LayerShape:
    """The widths that decide a layer's stored activations."""

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    ffn: int
    gated: bool
    norms: int = 2

    @classmethod
    def gpt(cls, h: int, a: int) -> LayerShape:
        """The paper's layer: MHA with a·d = h, a 4h GeLU MLP, two LayerNorms."""
        return cls(
            hidden=h,
            heads=a,
            kv_heads=a,
            head_dim=h // a,
            v_head_dim=h // a,
            ffn=4 * h,
            gated=False,
        )

    @classmethod
    def of(cls, spec: ModelSpec) -> LayerShape:
        """Widths of a real model; MoE layers use the routed width times experts per token plus shared experts."""
        ffn = spec.intermediate_size
        if spec.moe is not None:
            ffn = (
                spec.moe.expert_intermediate_size * spec.moe.experts_per_token
                + spec.moe.shared_intermediate_size
            )
            ffn = max(ffn, spec.intermediate_size if spec.moe.dense_layers else 0)
        head_dim = spec.head_dim
        if spec.mla is not None:
            head_dim = spec.mla.qk_nope_head_dim + spec.mla.qk_rope_head_dim
        return cls(
            hidden=spec.hidden_size,
            heads=spec.num_heads,
            kv_heads=spec.num_heads if spec.mla is not None else spec.num_kv_heads,
            head_dim=head_dim,
            v_head_dim=spec.v_head_dim,
            ffn=ffn,
            gated=spec.mlp_kind == "gated",
            norms=spec.norms_per_layer,
        )


def layer_bytes(
    shape: LayerShape,
    s: int,
    b: int,
    t: int = 1,
    *,
    sequence_parallel: bool = False,
    recompute: str = "none",
    flash_attention: bool = False,
    dropout: bool = True,
) -> Fraction:
    """Generalised Table 2 (see the module docstring) for one layer on one TP rank."""
    sb = s * b
    h = shape.hidden
    if recompute == "full":
        return Fraction(2 * sb * h)  # only the layer input is checkpointed
    m = 1 if dropout else 0
    kv_per_rank = (
        Fraction(max(1, shape.kv_heads // t) * shape.head_dim)
        if t > 1
        else Fraction(shape.kv_heads * shape.head_dim)
    )
    kv_v_per_rank = kv_per_rank / shape.head_dim * shape.v_head_dim
    q = Fraction(shape.heads * shape.head_dim, t)
    o = Fraction(shape.heads * shape.v_head_dim, t)
    f = Fraction(shape.ffn, t)
    # head/ffn-sharded terms (the paper's 24/t at GPT widths)
    sharded = (
        2 * q + 2 * kv_per_rank + 2 * kv_v_per_rank + 2 * o + (8 * f if shape.gated else 4 * f)
    )
    # replicated terms (the paper's 10 at GPT widths): QKV input, MLP input, norm inputs, two dropout masks
    replicated = Fraction(2 * h + 2 * h + 2 * h * shape.norms + 2 * m * h)
    if sequence_parallel:
        replicated /= t
    score = Fraction(0)
    if recompute != "selective" and not flash_attention:
        score = Fraction((5 if dropout else 2) * shape.heads * s, t)
    return sb * (sharded + replicated + score)


@dataclass(frozen=True)
class ActivationBytes:
    """Activation bytes on one GPU (one pipeline stage), with the parts named."""

    layers: int
    #: transient bytes while one layer is recomputed in backward (score tensors, or a whole layer)
    recompute_working_set: int
    #: embedding dropout masks + final norm + output-layer input + logits and loss copies
    head_and_tail: int
    in_flight_microbatches: int

    @property
    def total(self) -> int:
        return self.layers + self.recompute_working_set + self.head_and_tail


def stage_activation_bytes(
    shape: LayerShape,
    vocab: int,
    s: int,
    b: int,
    *,
    layers_on_stage: int,
    stage: int,
    pp: int,
    t: int = 1,
    sequence_parallel: bool = False,
    recompute: str = "none",
    flash_attention: bool = False,
    dropout: bool = True,
    num_microbatches: int | None = None,
    interleaved: int = 1,
    logit_bytes: int = 4,
    extra_per_token_per_layer: int = 0,
) -> ActivationBytes:
    """Activations held by pipeline stage ``stage`` under 1F1B (Korthikanti et al. §4.2.3, Eq. 5).

    Stage i of p holds min(p − i, m) micro-batches in flight, so the first stage holds p micro-batches
    of L/p layers: L layers' worth. The interleaved schedule multiplies the first stage by
    1 + (p − 1)/(p·m). The first stage also keeps the embedding dropout mask (sbh·p/t with SP); the last
    keeps the final-norm input 2sbh/t, the output-layer input 2sbh/t and the logits ``logit_bytes``·sbv/t
    (the paper's 4sbv/t fp32 logits; more with cross-entropy copies).
    """
    m = num_microbatches if num_microbatches is not None else pp
    in_flight = max(1, min(pp - stage, m))
    per_layer = layer_bytes(
        shape,
        s,
        b,
        t,
        sequence_parallel=sequence_parallel,
        recompute=recompute,
        flash_attention=flash_attention,
        dropout=dropout,
    )
    per_layer += s * b * extra_per_token_per_layer
    layers = per_layer * layers_on_stage * in_flight
    if stage == 0 and interleaved > 1 and pp > 1:
        layers *= 1 + Fraction(pp - 1, pp * m)
    # Working set while one layer is recomputed in backward (not in Table 2, which counts stored bytes):
    # selective re-creates one layer's s x s score tensors; full re-creates one whole layer, whose input
    # (2sbh) is already among the checkpoints.
    working = Fraction(0)
    full_layer = layer_bytes(
        shape,
        s,
        b,
        t,
        sequence_parallel=sequence_parallel,
        recompute="none",
        flash_attention=flash_attention,
        dropout=dropout,
    )
    if layers_on_stage > 0 and recompute == "selective":
        working = full_layer - layer_bytes(
            shape,
            s,
            b,
            t,
            sequence_parallel=sequence_parallel,
            recompute="selective",
            flash_attention=flash_attention,
            dropout=dropout,
        )
    elif layers_on_stage > 0 and recompute == "full":
        working = max(
            Fraction(0), full_layer + s * b * extra_per_token_per_layer - 2 * s * b * shape.hidden
        )
    sp_div = t if sequence_parallel else 1
    extra = Fraction(0)
    if stage == 0 and dropout:
        extra += Fraction(
            s * b * shape.hidden * in_flight, sp_div
        )  # embedding dropout mask, 1 byte
    if stage == pp - 1:
        extra += Fraction(2 * s * b * shape.hidden, sp_div)  # final norm input
        extra += Fraction(2 * s * b * shape.hidden, sp_div)  # output layer input
        extra += Fraction(logit_bytes * s * b * vocab, t)  # logits (vocab-parallel over t)

    def ceil(x: Fraction) -> int:
        return -(-x.numerator // x.denominator)

    return ActivationBytes(
        layers=ceil(layers),
        recompute_working_set=ceil(working),
        head_and_tail=ceil(extra),
        in_flight_microbatches=in_flight,
    )


def korthikanti_total_first_stage(
    s: int, b: int, h: int, a: int, L: int, v: int, t: int, p: int, *, selective: bool = False
) -> Fraction:
    """Eq. 5 / Eq. 6 with the extra terms: (sbhL/t)(34 + 5as/h) + sbhp/t (+ δ_{p=1}(4sbh/t + 4sbv/t))."""
    per = Fraction(34) + (0 if selective else Fraction(5 * a * s, h))
    total = Fraction(s * b * h * L, t) * per + Fraction(s * b * h * p, t)
    if p == 1:
        total += Fraction(4 * s * b * h, t) + Fraction(4 * s * b * v, t)
    return total
