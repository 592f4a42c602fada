"""What the serving features a `vllm serve` line turns on add to each GPU: LoRA slots, speculative decoding,
expert parallelism. The formulas live in ``memory/serving_features.py`` (each citing vLLM 0.34's source);
this module reads the settings the way vLLM's flags mean them and says what it assumed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Any

from vramplan.errors import InputError
from vramplan.memory.kv_cache import KVLayerGroup
from vramplan.memory.serving_features import (
    draft_model_memory,
    expert_weight_bytes_per_gpu,
    lora_gpu_bytes,
    mtp_memory,
    speculative_kind,
)
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision

#: vLLM's LoRA defaults (config/lora.py: max_loras 1, max_lora_rank 16, lora_dtype "auto" = model dtype).
DEFAULT_MAX_LORAS = 1
DEFAULT_MAX_LORA_RANK = 16
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "half": 2, "float32": 4, "float": 4}


@dataclass(frozen=True)
class FeatureMemory:
    """Per-GPU bytes the features add, the KV layers they add, and the notes that say so."""

    weight_bytes: int = 0
    kv_groups: tuple[KVLayerGroup, ...] = ()
    notes: tuple[str, ...] = ()


def speculative_config(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """``--speculative-config`` as a dict (vLLM takes a JSON string); None when not given."""
    raw = settings.get("speculative_config")
    if raw in (None, "", {}):
        return None
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(str(raw))
    except (ValueError, RecursionError):
        raise InputError(
            f"--speculative-config is not JSON: {str(raw)[:80]!r} "
            """(e.g. '{"method": "mtp", "num_speculative_tokens": 1}')"""
        ) from None
    if not isinstance(value, dict):
        raise InputError("--speculative-config must be a JSON object with a 'method'")
    return value


def _lora_bytes(
    spec: ModelSpec, precision: Precision, settings: Mapping[str, Any], tp: int
) -> tuple[int, str | None]:
    if not settings.get("enable_lora"):
        return 0, None
    loras = int(settings.get("max_loras") or DEFAULT_MAX_LORAS)
    rank = int(settings.get("max_lora_rank") or DEFAULT_MAX_LORA_RANK)
    dtype = str(settings.get("lora_dtype") or "auto")
    element = _DTYPE_BYTES.get(precision.compute_dtype if dtype == "auto" else dtype)
    if element is None:
        raise InputError(
            f"--lora-dtype {dtype!r} is not a float type: use auto, float16 or bfloat16"
        )
    sharded = bool(settings.get("fully_sharded_loras"))
    n = lora_gpu_bytes(spec, loras, rank, element, tp, fully_sharded_loras=sharded)
    return n, (
        f"LoRA slots: {loras} adapter(s) x rank {rank} in {element}-byte elements preallocated for every "
        f"wrappable module = {n / 2**30:.2f} GiB per GPU, before any adapter loads"
    )


def _speculative(
    spec: ModelSpec,
    precision: Precision,
    kv_element: Fraction,
    settings: Mapping[str, Any],
    tp: int,
) -> FeatureMemory:
    config = speculative_config(settings)
    if config is None:
        return FeatureMemory()
    method = str(config.get("method") or ("draft_model" if config.get("model") else ""))
    if not method:
        raise InputError(
            "--speculative-config needs a 'method' (ngram, eagle, eagle3, mtp, draft_model)"
        )
    kind = speculative_kind(method)
    if kind == "ngram":
        return FeatureMemory(
            notes=(f"speculative {method}: proposals from the prompt, no GPU memory",)
        )
    if kind == "mtp":
        if not spec.mtp_layers:
            raise InputError(
                f"speculative method {method!r} needs the checkpoint's MTP layers, and {spec.name}'s config "
                "names none (num_nextn_predict_layers / mtp_num_hidden_layers)"
            )
        mem = mtp_memory(spec, precision, kv_element, spec.mtp_layers, tp, method="mtp")
        per_layer = Fraction(mem.kv_bytes_per_token, spec.mtp_layers)
        group = (
            KVLayerGroup("mla", spec.mtp_layers, per_layer)
            if spec.mla is not None
            else KVLayerGroup("full", spec.mtp_layers, per_layer)
        )
        return FeatureMemory(
            mem.weight_bytes,
            (group,),
            (
                f"speculative {method}: {spec.mtp_layers} MTP layer(s) of the checkpoint, "
                f"{mem.weight_bytes / 2**30:.2f} GiB of weights and {mem.kv_bytes_per_token:,} B of KV "
                "per token per GPU",
            ),
        )
    if kind == "draft_model":
        from vramplan.model import catalog
        from vramplan.model.load import load_model

        name = str(config.get("model") or "")
        repo = catalog.find(name) if name else None
        if repo is None:
            raise InputError(
                f"draft model {name!r} is not in the catalogue: name one from `vramplan models`"
            )
        draft = load_model(repo, allow_hub=False).spec
        draft_tp = config.get("draft_tensor_parallel_size")
        mem = draft_model_memory(
            draft, precision, kv_element, tp, int(draft_tp) if draft_tp else None
        )
        per_layer = Fraction(mem.kv_bytes_per_token, max(draft.num_layers, 1))
        return FeatureMemory(
            mem.weight_bytes,
            (KVLayerGroup("full", draft.num_layers, per_layer),),
            (
                f"speculative draft model {draft.name}: {mem.weight_bytes / 2**30:.2f} GiB of weights and "
                f"{mem.kv_bytes_per_token:,} B of KV per token per GPU",
            ),
        )
    return FeatureMemory(
        notes=(
            f"speculative {method}: the EAGLE head's weights and KV are not counted (its config is not "
            "known here); expect one decoder layer of the target more",
        )
    )


def _expert_parallel(
    spec: ModelSpec, precision: Precision, settings: Mapping[str, Any], tp: int
) -> tuple[int, str | None]:
    """Change of routed-expert bytes per GPU when experts are placed by EP rank instead of TP-split."""
    if not settings.get("enable_expert_parallel") or spec.moe is None:
        return 0, None
    dp = int(settings.get("data_parallel_size") or 1)
    split = expert_weight_bytes_per_gpu(spec, precision, tp, dp, enable_expert_parallel=False)
    placed = expert_weight_bytes_per_gpu(spec, precision, tp, dp, enable_expert_parallel=True)
    ep = tp * dp
    per_rank = ceil(spec.moe.num_experts / ep)
    return placed - split, (
        f"expert parallelism over {ep} ranks (TP {tp} x DP {dp}): up to {per_rank} whole experts per GPU "
        f"({placed / 2**30:.2f} GiB) instead of every expert split {tp} ways ({split / 2**30:.2f} GiB)"
    )


def feature_memory(
    spec: ModelSpec,
    precision: Precision,
    kv_element: Fraction,
    settings: Mapping[str, Any],
    tp: int,
) -> FeatureMemory:
    """Everything the LoRA, speculative-decoding and expert-parallel flags add on one GPU."""
    lora, lora_note = _lora_bytes(spec, precision, settings, tp)
    ep, ep_note = _expert_parallel(spec, precision, settings, tp)
    spec_mem = _speculative(spec, precision, kv_element, settings, tp)
    notes = tuple(n for n in (lora_note, ep_note) if n) + spec_mem.notes
    return FeatureMemory(lora + ep + spec_mem.weight_bytes, spec_mem.kv_groups, notes)
