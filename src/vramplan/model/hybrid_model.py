"""What every hybrid builder (``families_hybrid``) describes a model with: config fields read with one-line
errors, the model under construction (its tensors, then its ModelSpec), attention and Mamba2 sizes, and the
per-layer kind lists that say which layers keep KV and which keep state.

Kept apart from the builders so that each family there reads as its own differences only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from vramplan.errors import ConfigError
from vramplan.model.families_inventory import Inventory, embeddings, final_norm
from vramplan.model.layer_tensors import CorrectionBias, attention, dense_mlp, moe_mlp
from vramplan.model.spec import (
    MAX_LAYERS,
    MAX_WIDTH,
    AttentionKind,
    MLASpec,
    ModelSpec,
    MoESpec,
    StateSpec,
)

Config = Mapping[str, Any]

#: Where the hybrids' expert routers live (the 2025-2026 families call theirs ``layers.mlp.gate``).
ROUTER = "layers.mlp.router"


def int_field(cfg: Config, key: str, default: Any = None, *, positive: bool = True) -> int:
    """An integer field (or its default); one clear line when it is missing or malformed."""
    value = cfg.get(key)
    if value is None:
        value = default
    if value is None:
        raise ConfigError(
            f"config.json has no {key}: it does not describe a model we can size (is it truncated?)"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
        raise ConfigError(
            f"config.json field {key} must be a {'positive' if positive else 'non-negative'} integer, got {value!r}"
        )
    if value > (MAX_LAYERS if key == "num_hidden_layers" else MAX_WIDTH):
        raise ConfigError(
            f"config.json field {key} = {value:,} is beyond any real model: is the file corrupt?"
        )
    return value


def config_dtype(cfg: Config, *fallbacks: Config, default: str = "bfloat16") -> str:
    """The checkpoint dtype (``torch_dtype``, or transformers 5's ``dtype``) of the first config naming one."""
    for c in (cfg, *fallbacks):
        value = c.get("torch_dtype") or c.get("dtype")
        if value:
            return str(value).replace("torch.", "")
    return default


class HybridModel(Inventory):
    """A hybrid model being described: the shared inventory plus the hybrid families' own mixers, and at the
    end its ModelSpec (``spec``); ``h`` is the hidden size.

    Starts with the token embeddings (and the lm_head unless tied), which every hybrid lists first."""

    def __init__(
        self, cfg: Config, model_type: str, name: str, *, hidden: int, vocab: int, tie: bool
    ) -> None:
        super().__init__()
        self.cfg, self.model_type, self.name = cfg, model_type, name
        self.h, self.vocab, self.tie = hidden, vocab, tie
        embeddings(self, vocab, hidden, tie)

    def spec(
        self,
        *,
        heads: Heads,
        intermediate: int,
        max_positions: int,
        attention: list[bool],
        state: StateSpec,
        moe: MoESpec | None = None,
        mla: MLASpec | None = None,
        dtype: str | None = None,
        quant_from: Config | None = None,
        extra: tuple[tuple[str, int], ...] = (),
        norms_per_layer: int = 2,
        ends_with_norm: bool = True,
    ) -> ModelSpec:
        """The ModelSpec of a hybrid: one layer per ``attention`` entry (True keeps KV), dtype and quantization
        from ``cfg`` unless given (Qwen3.5 reads them from text_config too). It closes the inventory with the
        RMSNorms every layer ends with and the model's final norm (LFM2 has none: its embedding norm comes last)."""
        n = len(attention)
        self.norm("layers.norm", self.h, norms_per_layer * n, component="norms")
        if ends_with_norm:
            final_norm(self, self.h)
        layer_types: tuple[AttentionKind, ...] = tuple(
            "full_attention" if a else "no_attention" for a in attention
        )
        quant = self.cfg if quant_from is None else quant_from
        # Vision towers stay in ``extra_params``: params.inventory appends them to the explicit tensors.
        return ModelSpec(
            name=self.name,
            model_type=self.model_type,
            vocab_size=self.vocab,
            hidden_size=self.h,
            num_layers=n,
            num_heads=heads.query,
            num_kv_heads=heads.kv,
            head_dim=heads.dim,
            intermediate_size=intermediate,
            max_position_embeddings=max_positions,
            tie_word_embeddings=self.tie,
            moe=moe,
            mla=mla,
            layer_types=layer_types,
            torch_dtype=config_dtype(self.cfg) if dtype is None else dtype,
            quantization_config=quant.get("quantization_config") or quant.get("compression_config"),
            extra_params=extra,
            state=state,
            tensors=self.groups(),
        )

    def gqa(
        self,
        n: int,
        heads: Heads,
        *,
        bias: bool = False,
        o_bias: bool = False,
        q_gate: bool = False,
        qk_norm: bool = False,
        o_name: str = "o_proj",
        norm_names: tuple[str, str] = ("q_norm", "k_norm"),
    ) -> None:
        """Grouped-query attention under ``layers.attn``; ``qk_norm`` puts an RMSNorm over head_dim on q and k."""
        norm = heads.dim if qk_norm else 0
        attention(
            self,
            n,
            self.h,
            *heads,
            qkv_bias=bias,
            o_bias=o_bias,
            q_norm=norm,
            k_norm=norm,
            model_kv_heads=heads.kv,
            q_gate=q_gate,
            prefix="layers.attn",
            o_name=o_name,
            norm_names=norm_names,
        )

    def mla(self, n: int, heads: int, m: MLASpec, *, bias: bool = False) -> None:
        """DeepSeek-style multi-head latent attention (Kimi-Linear's full-attention layers)."""
        h = self.h
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            self.linear(
                "layers.attn.q_a_proj", m.q_lora_rank, h, n, "replicated", "attention", bias
            )
            self.norm("layers.attn.q_a_layernorm", m.q_lora_rank, n, component="attention")
            self.linear("layers.attn.q_b_proj", heads * qk, m.q_lora_rank, n, "column", "attention")
        else:
            self.linear("layers.attn.q_proj", heads * qk, h, n, "column", "attention")
        self.linear(
            "layers.attn.kv_a_proj_with_mqa",
            m.kv_lora_rank + m.qk_rope_head_dim,
            h,
            n,
            "replicated",
            "attention",
            bias,
        )
        self.norm("layers.attn.kv_a_layernorm", m.kv_lora_rank, n, component="attention")
        self.linear(
            "layers.attn.kv_b_proj",
            heads * (m.qk_nope_head_dim + m.v_head_dim),
            m.kv_lora_rank,
            n,
            "column",
            "attention",
        )
        self.linear("layers.attn.o_proj", h, heads * m.v_head_dim, n, "row", "attention", bias)

    def mlp(
        self,
        prefix: str,
        width: int,
        n: int,
        *,
        gated: bool = True,
        bias: bool = False,
        component: str = "mlp",
    ) -> None:
        """Gated (gate/up/down) or plain (up/down) MLP of ``n`` layers."""
        dense_mlp(self, n, self.h, width, gated, bias, prefix, component, ungated_name="up_proj")

    def experts(
        self,
        n: int,
        experts: int,
        width: int,
        top_k: int,
        shared: int = 0,
        *,
        correction_bias: CorrectionBias = "",
        shared_gate: bool = False,
        shared_prefix: str = "layers.mlp.shared_experts",
        dense_layers: tuple[int, ...] = (),
    ) -> MoESpec:
        """A router (``layers.mlp.router``) over gated experts and optional shared expert(s) in ``n`` MoE layers;
        returns the MoESpec saying the same, so each fact is given once."""
        moe_mlp(
            self,
            n,
            self.h,
            experts,
            width,
            shared,
            correction_bias=correction_bias,
            shared_gate=shared_gate,
            router_name=ROUTER,
            shared_prefix=shared_prefix,
        )
        return MoESpec(
            num_experts=experts,
            experts_per_token=top_k,
            expert_intermediate_size=width,
            shared_intermediate_size=shared,
            shared_expert_gate=shared_gate,
            router_correction_bias=bool(correction_bias),
            dense_layers=dense_layers,
        )

    def conv(
        self, prefix: str, channels: int, kernel: int, n: int, bias: bool, component: str
    ) -> None:
        """Depthwise causal Conv1d(channels, channels, kernel, groups=channels): weight (C, 1, K)."""
        self.add(
            f"{prefix}.conv1d.weight",
            (channels, 1, kernel),
            n,
            "linear",
            "column",
            component=component,
        )
        if bias:
            self.add(f"{prefix}.conv1d.bias", (channels,), n, "bias", "column", component=component)

    def mamba2(
        self,
        n: int,
        dims: Mamba2Sizes,
        *,
        conv_bias: bool,
        proj_bias: bool,
        out_bias: bool | None = None,
        gated_norm: bool = True,
    ) -> None:
        """Mamba2 mixer: in_proj -> (z, x, B, C, dt), depthwise conv over x/B/C, per-head A, D, dt_bias, a
        grouped gated RMSNorm over the inner width (absent in Falcon-H1 unless ``mamba_rms_norm``), out_proj."""
        c = "mamba"
        self.linear(
            "layers.mamba.in_proj",
            dims.inner + dims.conv_channels + dims.heads,
            self.h,
            n,
            "column",
            c,
            proj_bias,
        )
        self.conv("layers.mamba", dims.conv_channels, dims.d_conv, n, conv_bias, c)
        for p in ("dt_bias", "A_log", "D"):
            self.add(f"layers.mamba.{p}", (dims.heads,), n, "norm", "column", component=c)
        if gated_norm:
            self.norm("layers.mamba.norm", dims.inner, n, component=c, split="column")
        self.linear(
            "layers.mamba.out_proj",
            self.h,
            dims.inner,
            n,
            "row",
            c,
            proj_bias if out_bias is None else out_bias,
        )


class Heads(NamedTuple):
    """Query heads, KV heads and head size; in a model without attention, what TP must divide."""

    query: int
    kv: int
    dim: int


def read_heads(
    cfg: Config,
    hidden: int,
    heads: int,
    kv_heads: int | None,
    head_dim: int | None = None,
    *,
    reads_head_dim: bool = True,
) -> Heads:
    """``num_attention_heads``, ``num_key_value_heads`` (default: as many as query heads) and ``head_dim``
    (default hidden / heads), with the family's defaults; ``reads_head_dim`` is False where the model class
    ignores the key and always divides the hidden size."""
    query = int_field(cfg, "num_attention_heads", heads)
    kv = int_field(cfg, "num_key_value_heads", query if kv_heads is None else kv_heads)
    dim = hidden // query if head_dim is None else head_dim
    return Heads(query, kv, int_field(cfg, "head_dim", dim) if reads_head_dim else dim)


@dataclass(frozen=True)
class Mamba2Sizes:
    """A Mamba2 mixer's sizes; ``inner`` is heads x head_dim except in Mamba2ForCausalLM (expand x hidden)."""

    heads: int
    head_dim: int
    groups: int
    d_state: int
    d_conv: int
    inner: int

    @property
    def conv_channels(self) -> int:
        """The conv runs over x, B and C."""
        return self.inner + 2 * self.groups * self.d_state

    def state(self, layers: tuple[int, ...], ssm_dtype: str | None = None) -> StateSpec:
        """What each of ``layers`` keeps per sequence: the conv window and (heads, head_dim, d_state)."""
        return StateSpec(
            kind="mamba2",
            layers=layers,
            conv_channels=self.conv_channels,
            conv_kernel=self.d_conv,
            recurrent_shape=(self.heads, self.head_dim, self.d_state),
            conv_groups=self.groups,
            group_channels=2 * self.d_state,
            ssm_dtype=ssm_dtype,
        )


def check_kinds(kinds: list[str], allowed: Mapping[str, str], field: str) -> list[str]:
    """Map a config's per-layer type names to ours; refuse unknown names with the list of known ones."""
    out = []
    for k in kinds:
        if k not in allowed:
            raise ConfigError(
                f"config.json {field} has an unknown layer type {k!r}: expected one of {', '.join(sorted(allowed))}"
            )
        out.append(allowed[k])
    return out


def layer_kinds(types: Any, n_layers: int, allowed: Mapping[str, str]) -> list[str]:
    """``layer_types`` mapped to our kinds: one known name per layer, else one line saying what is off."""
    if len(types) != n_layers:
        raise ConfigError(
            f"layer_types has {len(types)} entries but num_hidden_layers is {n_layers}"
        )
    return check_kinds(list(types), allowed, "layer_types")


def state_layers(attention: list[bool]) -> tuple[int, ...]:
    """The layers that keep per-sequence state instead of KV: every layer without attention."""
    return tuple(i for i, a in enumerate(attention) if not a)
