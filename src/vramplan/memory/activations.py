"""Peak temporary memory of one forward pass over ``tokens`` tokens (a prefill chunk or a decode batch).

We model the largest set of tensors alive at once inside one decoder layer, plus the logits at the end.
This is an inference-time model (no activations are kept for backward): each layer's buffers are
freed before the next layer runs. Coefficients are named assumptions, not hidden constants.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.model.spec import ModelSpec


@dataclass(frozen=True)
class ActivationAssumptions:
    """Named, overridable assumptions of the activation model."""

    #: Bytes per activation element (bf16/fp16 compute).
    activation_bytes: int = 2
    #: Bytes per logit element; engines upcast logits to fp32 before sampling.
    logit_bytes: int = 4
    #: Live copies of the logits during sampling (logits, probabilities, sorted values for top-p/top-k).
    #: Calibrated on vLLM 0.19 profile runs (1.89 GiB for Llama-3.1-8B at 1,024 sequences: ~3.8 x fp32 logits).
    sampler_logit_copies: float = 3.8
    #: Hidden-size buffers alive next to the MLP/attention temporaries (residual, normed input, output).
    hidden_buffers: int = 3


def forward_peak_bytes(
    spec: ModelSpec, tokens: int, tp: int = 1, a: ActivationAssumptions = ActivationAssumptions()
) -> int:
    """Peak bytes of the per-layer temporaries for ``tokens`` tokens on one TP rank."""
    e = a.activation_bytes
    h = spec.hidden_size
    hidden = a.hidden_buffers * tokens * h * e
    # attention: fused QKV output plus the attention output (FlashAttention keeps no score matrix)
    q_width = spec.num_heads * spec.head_dim // tp
    kv_width = 2 * max(1, spec.num_kv_heads // tp) * spec.head_dim
    attention = tokens * (q_width + kv_width + spec.num_heads * spec.v_head_dim // tp) * e
    # MLP: fused gate_up output (2I) and the activated product (I), or fc1 output for plain MLPs
    inter = spec.intermediate_size // tp
    mlp = tokens * (3 * inter if spec.mlp_kind == "gated" else 2 * inter) * e
    if spec.moe is not None:
        m = spec.moe
        # fused-MoE caches: gate_up per routed copy (2I), activated (I), down output (h), plus routing
        routed = tokens * m.experts_per_token
        moe = routed * (3 * m.expert_intermediate_size // tp + h) * e + tokens * m.num_experts * 4
        shared = tokens * 3 * (m.shared_intermediate_size // tp) * e
        mlp = max(mlp if m.dense_layers else 0, moe + shared)
    return hidden + max(attention, mlp)


def fused_moe_workspace_bytes(
    spec: ModelSpec,
    tokens: int,
    tp: int = 1,
    a: ActivationAssumptions = ActivationAssumptions(),
    chunk_tokens: int = 32768,
) -> int:
    """Bytes of the two workspaces of vLLM's Triton fused-MoE modular kernel for ``tokens`` tokens (one rank).

    ``TritonExperts.workspace_shapes`` (vllm/model_executor/layers/fused_moe/fused_moe.py) with
    ``N = 2 * I_rank`` (gate_up width) and ``K = hidden``::

        workspace13 = (M, top_k, max(N // 2, K))     # intermediate cache 2 (activated), then the output
        workspace2  = (M, top_k, max(N, K))          # intermediate caches 1 (gate_up) and 3 (down)

    with ``M = min(tokens, VLLM_FUSED_MOE_CHUNK_SIZE)``. In the non-chunked case the fused output
    ``(M, K)`` is a view of workspace13 (``FusedMoEModularKernel``: "Reuse workspace13 for the output"),
    so it adds nothing. 0 for dense models.
    """
    if spec.moe is None:
        return 0
    m = spec.moe
    rows = min(tokens, chunk_tokens) * m.experts_per_token
    inter = -(-m.expert_intermediate_size // tp)
    h = spec.hidden_size
    return rows * (max(inter, h) + max(2 * inter, h)) * a.activation_bytes


def logits_bytes(
    spec: ModelSpec, sequences: int, a: ActivationAssumptions = ActivationAssumptions()
) -> int:
    """Sampling temporaries: fp32 logits over the vocabulary for the last token of each sequence."""
    return int(sequences * spec.vocab_size * a.logit_bytes * a.sampler_logit_copies)


def activation_peak_bytes(
    spec: ModelSpec,
    tokens: int,
    sequences: int,
    tp: int = 1,
    a: ActivationAssumptions = ActivationAssumptions(),
) -> int:
    """The larger of the layer temporaries and the sampler; they are not alive at the same time."""
    return max(
        forward_peak_bytes(spec, tokens, tp, a), logits_bytes(spec, min(sequences, tokens), a)
    )
