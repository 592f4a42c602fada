"""What the serving features a `vllm serve` line turns on add to each GPU (and to the host): LoRA slots,
speculative decoding (draft model, EAGLE / EAGLE-3 heads, MTP), expert parallelism and its all-to-all buffers,
data parallelism, KV offload tiers (native CPU offloading, LMCache) and disaggregated prefill/decode
connectors. The formulas live in ``memory/serving_features.py`` (each citing vLLM 0.34's source); this module
reads the settings the way vLLM's flags mean them and says what it assumed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import ceil
from typing import Any

from vramplan.errors import InputError
from vramplan.memory.kv_cache import KVLayerGroup, kv_bytes_per_token
from vramplan.memory.serving_features import (
    ALL2ALL_FALLBACK,
    BATCHED_DP_MOE_TOKENS,
    EAGLE3_DEFAULT_AUX_HIDDEN_STATES,
    LMCACHE_CHUNK_TOKENS,
    LMCACHE_LOCAL_CPU_GIB,
    P2P_NCCL_KV_BUFFER_BYTES,
    P2P_NCCL_POOL_GIB,
    all2all_buffer_bytes,
    draft_model_memory,
    eagle_head_memory,
    expert_parallel_size,
    expert_weight_bytes_per_gpu,
    gib_to_bytes,
    lmcache_gpu_buffer_bytes,
    lmcache_host_bytes,
    lora_gpu_bytes,
    mtp_memory,
    p2p_nccl_host_pool_bytes,
    speculative_kind,
)
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision

#: vLLM's LoRA defaults (config/lora.py: max_loras 1, max_lora_rank 16, lora_dtype "auto" = model dtype).
DEFAULT_MAX_LORAS = 1
DEFAULT_MAX_LORA_RANK = 16
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "half": 2, "float32": 4, "float": 4}


#: GPUs per node DeepEP's NVLink domain spans (NUM_MAX_NVL_PEERS = 8, deep_ep.cpp:36-37); an EP group larger
#: than this is taken to cross nodes.
GPUS_PER_NODE = 8


@dataclass(frozen=True)
class FeatureMemory:
    """Per-GPU bytes the features add, the KV layers they add, and the notes that say so.

    ``reserved_bytes`` are GPU buffers allocated outside PyTorch before the KV cache is sized (all-to-all,
    connector staging); vLLM's profile counts them as non-torch memory. ``host_bytes`` are host (CPU) bytes per
    GPU/rank by purpose. ``host_mirrors_kv`` names a tier whose host buffer is as large as the KV pool itself.
    """

    weight_bytes: int = 0
    kv_groups: tuple[KVLayerGroup, ...] = ()
    notes: tuple[str, ...] = ()
    reserved_bytes: int = 0
    host_bytes: tuple[tuple[str, int], ...] = ()
    host_mirrors_kv: str | None = None
    #: max_num_batched_tokens vLLM uses by default when the features change it (batched DP MoE).
    batched_tokens_default: int | None = None


def speculative_config(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """``--speculative-config`` as a dict (vLLM takes a JSON string); None when not given."""
    return _json_setting(
        settings,
        "speculative_config",
        "--speculative-config",
        '{"method": "mtp", "num_speculative_tokens": 1}',
    )


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
    return _eagle(spec, precision, kv_element, config, method, tp)


def _head_config(name: str, method: str) -> tuple[ModelSpec, dict[str, Any]]:
    """The EAGLE head's spec and raw config.json: from the catalogue, or from a local config path."""
    from vramplan.model import catalog
    from vramplan.model.hf_config import load_config_file, spec_from_config
    from vramplan.model.load import local_files_allowed, looks_like_path

    how = (
        f'speculative {method} needs the head\'s config: give "model" as a catalogue name or the path of the '
        "head's config.json (or its folder)"
    )
    if not name:
        raise InputError(how)
    repo = catalog.find(name)
    if repo is not None:
        cfg = dict(catalog.catalogue()[repo])
        return spec_from_config(cfg, name=repo, source=f"catalogue:{repo}"), cfg
    if looks_like_path(name) and local_files_allowed():
        from pathlib import Path

        cfg = dict(load_config_file(Path(name).expanduser()))
        return spec_from_config(cfg, name=name, source=f"path:{name}"), cfg
    raise InputError(f"EAGLE head {name[:100]!r} is not in the catalogue; {how}")


def _eagle(
    spec: ModelSpec,
    precision: Precision,
    kv_element: Fraction,
    config: Mapping[str, Any],
    method: str,
    tp: int,
) -> FeatureMemory:
    """EAGLE / EAGLE-3 head: its layers, fc, norms and (EAGLE-3) own draft-vocabulary lm_head, in the
    target's dtype (the head is not quantized), and its layers' KV in the target's KV groups."""
    head, cfg = _head_config(str(config.get("model") or ""), method)
    eagle3 = method.strip().lower() == "eagle3"
    eagle_cfg = cfg.get("eagle_config") if isinstance(cfg.get("eagle_config"), Mapping) else {}
    aux_ids = eagle_cfg.get("eagle_aux_hidden_state_layer_ids") if eagle_cfg else None
    aux = len(aux_ids) if aux_ids else EAGLE3_DEFAULT_AUX_HIDDEN_STATES
    draft_vocab = int(cfg.get("draft_vocab_size") or head.vocab_size)
    mem = eagle_head_memory(
        head,
        Precision(precision.compute_dtype),
        kv_element,
        tp,
        eagle3=eagle3,
        target_hidden_size=int(cfg.get("target_hidden_size") or spec.hidden_size),
        target_vocab_size=spec.vocab_size,
        num_aux_hidden_states=aux,
        draft_vocab_size=draft_vocab,
    )
    per_layer = Fraction(mem.kv_bytes_per_token, max(head.num_layers, 1))
    shared = (
        "embed_tokens shared with the target"
        if eagle3
        else "embed_tokens and lm_head shared with the target"
    )
    vocab = (
        f", own lm_head over {draft_vocab:,} draft tokens"
        + (" + draft-to-target id table" if draft_vocab != spec.vocab_size else "")
        if eagle3
        else ""
    )
    return FeatureMemory(
        mem.weight_bytes,
        (KVLayerGroup("full", head.num_layers, per_layer),),
        (
            f"speculative {method} head {head.name}: {head.num_layers} layer(s) of hidden {head.hidden_size}"
            f"{vocab}, {mem.weight_bytes / 2**30:.2f} GiB of weights in {precision.compute_dtype} "
            f"({shared}: assumed, as when the checkpoint ships none) and {mem.kv_bytes_per_token:,} B of KV "
            "per token per GPU",
        ),
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


def _json_setting(
    settings: Mapping[str, Any], key: str, flag: str, example: str
) -> dict[str, Any] | None:
    """A JSON-object flag (vLLM takes a JSON string); None when not given."""
    raw = settings.get(key)
    if raw in (None, "", {}):
        return None
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(str(raw))
    except (ValueError, RecursionError):
        raise InputError(f"{flag} is not JSON: {str(raw)[:80]!r} (e.g. '{example}')") from None
    if not isinstance(value, dict):
        raise InputError(f"{flag} must be a JSON object, e.g. '{example}'")
    return value


#: From 0.25 the MoE layers size their all-to-all for max_num_batched_tokens (fused_moe/layer.py:345) and
#: "naive" / "pplx" fall back; 0.11 used VLLM_MOE_DP_CHUNK_SIZE (256, envs.py:136) and still had both.
ALL2ALL_BATCHED_TOKENS_FROM = (0, 25)
MOE_DP_CHUNK_TOKENS = 256


def all2all_backend(settings: Mapping[str, Any], version: tuple[int, ...] | None = None) -> str:
    """``--all2all-backend`` (``VLLM_ALL2ALL_BACKEND`` before 0.25) as vLLM resolves it
    (0.34 config/parallel.py:229, 575-581)."""
    backend = str(settings.get("all2all_backend") or ALL2ALL_FALLBACK).strip().lower()
    old = version is not None and version < ALL2ALL_BATCHED_TOKENS_FROM
    if backend == "pplx" and old:
        raise InputError(
            "the pplx all-to-all's NVSHMEM buffers are not modelled: use deepep_high_throughput, "
            "deepep_low_latency or allgather_reducescatter"
        )
    return ALL2ALL_FALLBACK if backend in ("naive", "pplx") else backend


def uses_batched_dp_moe(
    spec: ModelSpec, settings: Mapping[str, Any], version: tuple[int, ...] | None = None
) -> bool:
    """``ParallelConfig.use_batched_dp_moe`` (0.34 config/parallel.py:887-897): DeepEP low-latency with EP
    and DP > 1 on a MoE model; vLLM then defaults max_num_batched_tokens to 256 (0.25 on)."""
    return (
        (version is None or version >= ALL2ALL_BATCHED_TOKENS_FROM)
        and spec.moe is not None
        and bool(settings.get("enable_expert_parallel"))
        and int(settings.get("data_parallel_size") or 1) > 1
        and all2all_backend(settings) == "deepep_low_latency"
    )


def _all2all(
    spec: ModelSpec, settings: Mapping[str, Any], tp: int, version: tuple[int, ...] | None = None
) -> tuple[int, str | None, int | None]:
    """GPU bytes of the EP all-to-all buffers on one rank, a note, and the batched-tokens default they imply."""
    dp = int(settings.get("data_parallel_size") or 1)
    backend = all2all_backend(settings, version)
    given = settings.get("all2all_backend")
    if spec.moe is None or not settings.get("enable_expert_parallel"):
        if given:
            return (
                0,
                f"--all2all-backend {given}: no expert parallelism here, no all-to-all buffer",
                None,
            )
        return 0, None, None
    ep = expert_parallel_size(tp, dp)
    # FusedMoEParallelConfig.use_all2all_kernels (fused_moe/config.py:1066-1069): EP with DP > 1.
    if dp == 1:
        return (
            0,
            f"expert parallelism without data parallelism: no all-to-all ({backend} unused)",
            None,
        )
    default_tokens = BATCHED_DP_MOE_TOKENS if uses_batched_dp_moe(spec, settings, version) else None
    if version is not None and version < ALL2ALL_BATCHED_TOKENS_FROM:
        tokens = (
            MOE_DP_CHUNK_TOKENS  # FusedMoEConfig.max_num_tokens = VLLM_MOE_DP_CHUNK_SIZE (0.11)
        )
    else:
        tokens = int(settings.get("max_num_batched_tokens") or default_tokens or 0)
    internode = ep > GPUS_PER_NODE
    n = all2all_buffer_bytes(
        backend,
        hidden_size=spec.hidden_size,
        num_experts=spec.moe.num_experts,
        ep_size=ep,
        max_tokens_per_dp_rank=max(tokens, 1),
        internode=internode,
    )
    if n == 0:
        return (
            0,
            f"all-to-all {backend}: no persistent buffer (gathers are forward activations)",
            None,
        )
    where = f"EP {ep} across nodes" if internode else f"EP {ep} within a node"
    per = f" for {tokens:,} tokens per DP rank" if backend == "deepep_low_latency" else ""
    return (
        n,
        f"all-to-all {backend} ({where}{per}): {n / 2**30:.2f} GiB of DeepEP buffers per GPU, allocated "
        "outside PyTorch before the KV cache is sized (VLLM_DEEPEP_BUFFER_SIZE_MB 1024 assumed)",
        default_tokens,
    )


def _data_parallel(spec: ModelSpec, settings: Mapping[str, Any], tp: int) -> str | None:
    """What each data-parallel rank holds (its own engine core: full attention and dense weights TP-split,
    its own KV pool; routed experts split over DP x TP only under expert parallelism)."""
    dp = int(settings.get("data_parallel_size") or 1)
    if dp < 1:
        raise InputError(f"--data-parallel-size must be >= 1 (got {dp})")
    if dp == 1:
        return None
    ep = bool(settings.get("enable_expert_parallel")) and spec.moe is not None
    experts = (
        f"routed experts split over {dp * tp} EP ranks (DP {dp} x TP {tp})"
        if ep
        else (
            "every expert on every DP rank (no --enable-expert-parallel)"
            if spec.moe is not None
            else "the whole model on every DP rank"
        )
    )
    return (
        f"data parallel {dp}: each of {dp * tp} GPUs holds the attention and dense weights (TP {tp}), "
        f"{experts}, and its DP rank's own KV pool; figures are per GPU, KV tokens per DP rank"
    )


_CONNECTOR_EXAMPLE = '{"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}'
#: Connectors whose memory is modelled (0.34 distributed/kv_transfer/kv_connector/factory.py).
KV_CONNECTORS = (
    "LMCacheConnectorV1",
    "LMCacheMPConnector",
    "NixlConnector",
    "OffloadingConnector",
    "P2pNcclConnector",
)


def _lmcache_settings(
    extra: Mapping[str, Any], settings: Mapping[str, Any]
) -> tuple[float, int, bool]:
    """LMCache's local CPU size (GiB), chunk tokens and PD mode, as LMCache reads them: ``lmcache.<key>`` in
    kv_connector_extra_config (lmcache/integration/vllm/vllm_v1_adapter.py:494-508) over its LMCACHE_<KEY>
    environment variables (given here as settings or extra-config keys), then LMCache's defaults."""

    def pick(key: str, default: Any) -> Any:
        env = f"LMCACHE_{key.upper()}"
        for value in (extra.get(f"lmcache.{key}"), extra.get(env), settings.get(env)):
            if value not in (None, ""):
                return value
        return default

    try:
        size = float(pick("max_local_cpu_size", LMCACHE_LOCAL_CPU_GIB))
        chunk = int(pick("chunk_size", LMCACHE_CHUNK_TOKENS))
    except (TypeError, ValueError):
        raise InputError(
            "LMCache max_local_cpu_size must be a number of GiB and chunk_size a token count"
        ) from None
    pd = str(pick("enable_pd", "false")).lower() in ("1", "true", "yes")
    return size, chunk, pd


def _kv_transfer(
    spec: ModelSpec,
    kv_element: Fraction,
    settings: Mapping[str, Any],
    tp: int,
    version: tuple[int, ...] | None = None,
) -> FeatureMemory:
    """KV offload tiers and disaggregated prefill/decode connectors: host bytes, and the GPU staging they add."""
    host: list[tuple[str, int]] = []
    notes: list[str] = []
    reserved = 0
    mirrors: str | None = None
    size_gib = settings.get("kv_offloading_size")
    config = _json_setting(
        settings, "kv_transfer_config", "--kv-transfer-config", _CONNECTOR_EXAMPLE
    )
    if size_gib not in (None, ""):
        if config is not None:
            raise InputError(
                "--kv-offloading-size builds its own --kv-transfer-config: give one or the other"
            )
        backend = str(settings.get("kv_offloading_backend") or "native").strip().lower()
        if backend == "native":
            # config/vllm.py:1088-1096: cpu_bytes_to_use = size * 2**30, the total over TP ranks.
            total = gib_to_bytes(float(size_gib), "--kv-offloading-size")
            host.append(("kv_offload", total // max(tp, 1)))
            notes.append(
                f"--kv-offloading-size {size_gib} GiB (native CPU offloading): {total / 2**30:.2f} GiB of host "
                f"memory in all, {total / tp / 2**30:.2f} GiB per TP rank; GPU KV pool unchanged"
            )
        elif backend == "lmcache":
            config = {"kv_connector": "LMCacheMPConnector", "kv_role": "kv_both"}
        else:
            raise InputError(
                f"--kv-offloading-backend {backend!r} is not one vLLM has: use native or lmcache"
            )
    if config is None:
        return FeatureMemory(notes=tuple(notes), host_bytes=tuple(host))
    connector = str(config.get("kv_connector") or "")
    role = str(config.get("kv_role") or "kv_both")
    extra = config.get("kv_connector_extra_config") or {}
    if not isinstance(extra, Mapping):
        raise InputError("kv_connector_extra_config must be a JSON object")
    per_token = kv_bytes_per_token(spec, kv_element, tp)
    if connector in ("LMCacheConnectorV1", "LMCacheMPConnector"):
        size, chunk, pd = _lmcache_settings(extra, settings)
        if connector == "LMCacheConnectorV1":
            host.append(("lmcache_local_cpu", lmcache_host_bytes(size)))
            reserved = lmcache_gpu_buffer_bytes(per_token, chunk, enable_pd=pd)
            notes.append(
                f"LMCache ({role}): {size:g} GiB local CPU tier per GPU (LMCACHE_MAX_LOCAL_CPU_SIZE) and a "
                f"{chunk}-token GPU staging buffer of {reserved / 2**20:.1f} MiB"
                + (" (none in PD mode)" if pd else "")
                + "; the KV pool is otherwise unchanged"
            )
        else:
            notes.append(
                f"LMCache multi-process ({role}): host memory is the LMCache server's own setting, outside "
                "this process; GPU KV pool unchanged"
            )
    elif connector == "OffloadingConnector":
        raw = extra.get("cpu_bytes_to_use")
        if raw is None:
            raise InputError(
                "OffloadingConnector needs kv_connector_extra_config.cpu_bytes_to_use (or use --kv-offloading-size)"
            )
        try:
            total = gib_to_bytes(float(raw) / 2**30, "cpu_bytes_to_use")
        except (TypeError, ValueError):
            raise InputError("cpu_bytes_to_use must be a number of bytes") from None
        host.append(("kv_offload", total // max(tp, 1)))
        notes.append(
            f"CPU offloading: {total / 2**30:.2f} GiB of host memory in all; GPU pool unchanged"
        )
    elif connector == "NixlConnector":
        device = str(config.get("kv_buffer_device") or "cuda").lower()
        if device == "cpu":
            mirrors = "nixl_host_buffer"
            notes.append(
                f"NIXL ({role}) with kv_buffer_device cpu: a host staging buffer the size of the KV pool "
                "(nixl/base_worker.py:1357-1399); GPU pool unchanged"
            )
        else:
            notes.append(
                f"NIXL ({role}): transfers straight from the registered KV cache, no extra GPU or host buffer; "
                "each role sizes its own pool from its own GPUs"
            )
    elif connector == "P2pNcclConnector":
        if version is not None and not (0, 10) <= version < (0, 25):
            raise InputError(
                "P2pNcclConnector exists in vLLM 0.10-0.24 only (0.25+ removed it): use NixlConnector "
                "or --engine-version 0.24 or older"
            )
        try:
            pool_gib = float(extra.get("mem_pool_size_gb", P2P_NCCL_POOL_GIB))
            buffer = gib_to_bytes(
                float(config.get("kv_buffer_size", P2P_NCCL_KV_BUFFER_BYTES)) / 2**30,
                "kv_buffer_size",
            )
        except (TypeError, ValueError):
            raise InputError("mem_pool_size_gb and kv_buffer_size must be numbers") from None
        host.append(("p2p_nccl_pool", p2p_nccl_host_pool_bytes(pool_gib)))
        notes.append(
            f"P2pNccl ({role}): a pinned host pool of {host[-1][1] / 2**30:.0f} GiB per GPU at start; received "
            f"KV is held on the GPU outside the pool up to kv_buffer_size ({buffer / 2**30:.2f} GiB) after the "
            "pool is sized (not reserved: leave that headroom), the overflow in the host pool"
        )
    else:
        raise InputError(
            f"kv_connector {connector!r} is not modelled; use one of {', '.join(KV_CONNECTORS)}"
        )
    if role not in ("kv_producer", "kv_consumer", "kv_both"):
        raise InputError(f"kv_role {role!r} must be kv_producer, kv_consumer or kv_both")
    return FeatureMemory(
        notes=tuple(notes), reserved_bytes=reserved, host_bytes=tuple(host), host_mirrors_kv=mirrors
    )


def feature_memory(
    spec: ModelSpec,
    precision: Precision,
    kv_element: Fraction,
    settings: Mapping[str, Any],
    tp: int,
    version: tuple[int, ...] | None = None,
) -> FeatureMemory:
    """Everything the LoRA, speculative-decoding, parallelism and KV-transfer flags add on one GPU
    (``version``: the vLLM profile used, for connectors that exist in some releases only)."""
    lora, lora_note = _lora_bytes(spec, precision, settings, tp)
    ep, ep_note = _expert_parallel(spec, precision, settings, tp)
    a2a, a2a_note, tokens_default = _all2all(spec, settings, tp, version)
    dp_note = _data_parallel(spec, settings, tp)
    spec_mem = _speculative(spec, precision, kv_element, settings, tp)
    kv = _kv_transfer(spec, kv_element, settings, tp, version)
    notes = (
        tuple(n for n in (lora_note, ep_note, a2a_note, dp_note) if n) + spec_mem.notes + kv.notes
    )
    return FeatureMemory(
        lora + ep + spec_mem.weight_bytes,
        spec_mem.kv_groups,
        notes,
        reserved_bytes=a2a + kv.reserved_bytes,
        host_bytes=kv.host_bytes,
        host_mirrors_kv=kv.host_mirrors_kv,
        batched_tokens_default=tokens_default,
    )
