"""SGLang release profiles: the startup defaults that changed between releases, read from each wheel's source.

Each profile is its predecessor plus what that release changed (``_profiles``), and applies from its version
until the next one. Sources: ``pip download --no-deps sglang==X`` and ``sglang/srt/server_args.py``
(``__post_init__`` in 0.5.1-0.5.2, ``_handle_gpu_memory_settings`` from 0.5.3, moved to
``arg_groups/memory_hook.py`` by 0.5.23), ``model_executor/model_runner.py`` ``profile_max_num_token``
(``pool_configurator.py`` from 0.5.15), ``mem_cache/kv_cache_configurator.py`` in 0.5.23.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vramplan.engines.base import VersionTable

#: GPU tiers of the chunked-prefill / CUDA-graph defaults: (memory below which the tier applies, in MiB as
#: SGLang compares it, chunked_prefill_size, cuda_graph_max_bs at tp < 4, at tp >= 4).
Tier = tuple[float, int, int, int]

#: 0.5.3 ``_handle_gpu_memory_settings`` (server_args.py:542-632).
TIERS_053: tuple[Tier, ...] = (
    (20 * 1024, 2048, 8, 8),
    (35 * 1024, 2048, 16, 80),
    (60 * 1024, 4096, 32, 160),
    (90 * 1024, 8192, 256, 512),
    (160 * 1024, 8192, 256, 512),
    (float("inf"), 16384, 512, 512),
)
#: 0.5.9 raised the 35 GiB tier's graphs to 24 at tp < 4 (server_args.py:943-955).
TIERS_059: tuple[Tier, ...] = (TIERS_053[0], (35 * 1024, 2048, 24, 80), *TIERS_053[2:])
#: 0.5.23: RTX 5090-class tier gets 4096-token chunks and graphs to 48 / 160 (arg_groups/memory_hook.py:101-118).
TIERS_0523: tuple[Tier, ...] = (TIERS_053[0], (35 * 1024, 4096, 48, 160), *TIERS_053[2:])

#: 0.5.1-0.5.2 reserved memory by tier, in GiB: (below MiB, fixed, per parallel rank) and above the last one
#: a flat 32 GiB (server_args.py:366-393 of 0.5.1): T4/4090 2.8 + ps/10, H100 9.5 + ps/2, H20/H200 12 + ps/2.
RESERVED_TIERS_050: tuple[tuple[float, float, float], ...] = (
    (35 * 1024, 2.8, 0.1),
    (90 * 1024, 9.5, 0.5),
    (160 * 1024, 12.0, 0.5),
)
RESERVED_LARGEST_050_GIB = 32.0


@dataclass(frozen=True)
class SGLangProfile:
    """What one SGLang release line does at startup. Each field is a named, version-keyed assumption."""

    #: "tp_table": mem_fraction_static fixed by TP size (0.3-0.4); "gpu_tier": reserved GiB by GPU tier
    #: (0.5.0-0.5.2); "reserved": the reserved-memory formula (0.5.3+).
    mem_fraction_rule: str
    tp_table: tuple[tuple[int, float], ...] = ()
    #: max_running_requests cap in the default rule (older releases 5120, current 4096).
    max_running_cap: int = 4096
    #: Older releases sized the req_to_token pool max_num_reqs + 1 and logged that as max_running_requests.
    req_pool_extra: int = 0
    #: Chunk / graph defaults by tier (None: the pre-0.5.3 rules in ``default_chunk_and_graph_bs``).
    tiers: tuple[Tier, ...] | None = None
    #: Reserved MiB for speculative decoding in the mem_fraction rule: (EAGLE/NEXTN, STANDALONE).
    spec_reserve_mib: tuple[int, int] = (2048, 6144)
    #: Prefill CUDA graphs (breakable) on by default on CUDA, reserving len(sizes) x 8 MiB (1.5 GiB for MLA).
    prefill_graphs_default: bool = False
    #: Disaggregated decode sizes its activation reserve on running requests x draft tokens (0.5.15+).
    decode_role_activation: bool = False
    #: DeepSeek DSA indexer keys counted in the pool's per-token cell (PR #11309, 0.5.4+).
    dsa_indexer_in_cell: bool = True
    #: DSA fp8 entries counted as their packed 656 B instead of (kv_lora_rank + rope) x 1 B (0.5.23).
    dsa_packed_in_cell: bool = False
    #: DSA models forced onto DP attention (dp = tp); 0.5.3 also forced mem_fraction_static 0.8.
    dsa_forces_dp_attention: bool = False
    dsa_mem_fraction: float | None = None
    #: EAGLE/MTP draft KV counted in the target's cell: cell x (1 + draft layers / layers) (0.5.15+);
    #: before, the draft worker's pool came out of the memory outside mem_fraction_static.
    draft_kv_in_cell: bool = False
    #: Mamba state slots one running request holds (radix cache on): 1 before 0.5.4, then 3.
    mamba_slots_per_request: int = 3
    #: The mamba pool allocates (and solves for) one padding slot (0.5.23).
    mamba_pad_slot: bool = False
    #: Speculative states of hybrids: "per_slot" (0.5.4: every slot x (1 + D)) or "joint" (0.5.15+).
    mamba_spec_rule: str = "per_slot"
    #: Default max_running_requests is also capped at half the token pool (0.5.23 resolve_max_num_reqs).
    running_capped_by_half_pool: bool = False
    #: Decode CUDA-graph max batch size clipped to --max-running-requests when defaulted (0.5.23).
    graph_bs_capped_by_running: bool = False
    #: Host KV pool of --enable-hierarchical-cache is this multiple of the device pool by default.
    hicache_ratio: float = 2.0


_OLD_TP = ((16, 0.79), (8, 0.83), (4, 0.85), (2, 0.87), (1, 0.88))
_TP = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))


def _profiles() -> dict[str, SGLangProfile]:
    """Known SGLang release lines, each written as its predecessor plus what that release changed."""
    rows: dict[str, SGLangProfile] = {}
    # Boundaries before 0.5 are approximate: the docs notebook (~0.4.1) logs 2049 running requests, a
    # ~0.4.9 log 2048.
    rows["0.3.0"] = SGLangProfile(
        mem_fraction_rule="tp_table",
        tp_table=_OLD_TP,
        max_running_cap=5120,
        req_pool_extra=1,
        dsa_indexer_in_cell=False,
        mamba_slots_per_request=1,
    )
    rows["0.4.0"] = replace(rows["0.3.0"], tp_table=_TP, max_running_cap=4096)
    rows["0.4.5"] = replace(rows["0.4.0"], req_pool_extra=0)
    # 0.5.1 / 0.5.2 wheels: reserved GiB by GPU tier, +2 GiB speculative, +4 GiB DP attention.
    rows["0.5.0"] = replace(rows["0.4.5"], mem_fraction_rule="gpu_tier")
    # 0.5.3: the reserved-memory formula and six GPU tiers; DeepSeek NSA forces DP attention, page 64
    # and mem_fraction_static 0.8 (server_args.py:805-830), fp8 KV on Blackwell.
    rows["0.5.3"] = replace(
        rows["0.5.0"],
        mem_fraction_rule="reserved",
        tiers=TIERS_053,
        dsa_forces_dp_attention=True,
        dsa_mem_fraction=0.8,
    )
    # 0.5.4: the NSA indexer joins the cell (PR #11309, model_runner.py:1400-1416); the mamba pool takes
    # mamba_full_memory_ratio of the rest; 3 state slots per running request (model_runner.py:209);
    # NSA no longer forces 0.8.
    rows["0.5.4"] = replace(
        rows["0.5.3"], dsa_indexer_in_cell=True, dsa_mem_fraction=None, mamba_slots_per_request=3
    )
    # 0.5.9: graphs to 24 on the < 35 GiB tier; DSA may run pure TP (server_args.py:1244-1249).
    rows["0.5.9"] = replace(rows["0.5.4"], tiers=TIERS_059, dsa_forces_dp_attention=False)
    # 0.5.15: prefill CUDA graphs (BCG) default on CUDA and reserved (server_args.py:3660-3670), no
    # speculative reserve, decode-role activation rule (:3627-3633); EAGLE draft KV inside the cell
    # (pool_configurator.py:139-155).
    rows["0.5.15"] = replace(
        rows["0.5.9"],
        prefill_graphs_default=True,
        spec_reserve_mib=(0, 0),
        decode_role_activation=True,
        draft_kv_in_cell=True,
        mamba_spec_rule="joint",
    )
    # 0.5.23: 5090 tier (memory_hook.py:101-118), DSA fp8 cell 656 B (kv_cache_configurator.py:3412-3475),
    # max_running capped at half the pool (:3121-3132), graph max bs <= max_running_requests (:183-190).
    rows["0.5.23"] = replace(
        rows["0.5.15"],
        tiers=TIERS_0523,
        dsa_packed_in_cell=True,
        running_capped_by_half_pool=True,
        graph_bs_capped_by_running=True,
        mamba_pad_slot=True,
    )
    return rows


#: Known SGLang release lines. A profile applies from its version until the next one.
VERSIONS: VersionTable[SGLangProfile] = VersionTable("sglang", _profiles())

#: Older releases: small GPUs (< 25 GiB) got chunked prefill 2048 and graphs to bs 8, else 8192 / 160.
OLD_SMALL_GPU_GIB = 25


def default_chunk_and_graph_bs(
    profile: SGLangProfile, gpu_mem_gib: float, tp: int
) -> tuple[int, int]:
    """(chunked_prefill_size, cuda_graph_max_bs) defaults by GPU memory tier."""
    gpu_mem_mib = gpu_mem_gib * 1024
    if profile.tiers is not None:
        for bound, chunk, bs_small, bs_large in profile.tiers:
            if gpu_mem_mib < bound:
                return chunk, bs_small if tp < 4 else bs_large
        raise AssertionError("unreachable: last tier is unbounded")
    if profile.mem_fraction_rule == "gpu_tier":
        # 0.5.1 server_args.py:402-428: chunks 2048 / 8192 / 16384; graphs 8 (80 at tp >= 4) below 35 GiB,
        # otherwise the CUDA-graph runner's default 160.
        if gpu_mem_mib < 35 * 1024:
            return 2048, 8 if tp < 4 else 80
        return (8192 if gpu_mem_mib < 160 * 1024 else 16384), 160
    return (2048, 8) if gpu_mem_gib < OLD_SMALL_GPU_GIB else (8192, 160)


def prefill_graph_sizes(max_tokens: int) -> list[int]:
    """Prefill CUDA-graph token buckets (arg_groups/cuda_graph_hook.py:480-497 of 0.5.23)."""
    sizes = (
        list(range(4, 33, 4))
        + list(range(48, 257, 16))
        + list(range(288, 513, 32))
        + list(range(576, 1025, 64))
        + list(range(1280, 4097, 256))
        + list(range(4608, max_tokens + 1, 512))
    )
    return [s for s in sizes if s <= max_tokens]


@dataclass(frozen=True)
class ReserveInputs:
    """What the mem_fraction_static rule reads besides the GPU: SGLang's resolved server args."""

    tp: int
    pp: int
    chunked_prefill_size: int
    cuda_graph_max_bs: int
    dp_attention: int = 0
    speculative: str | None = None
    mla: bool = False
    disaggregation_mode: str = "null"
    max_running_requests: int | None = None
    draft_tokens: int | None = None
    decode_graphs: bool = True


def reserved_mib(profile: SGLangProfile, gpu_mem_mib: float, r: ReserveInputs) -> float:
    """MiB kept outside mem_fraction_static by the 0.5.x rules (see each profile's source lines)."""
    if profile.mem_fraction_rule == "gpu_tier":
        ps = r.tp * r.pp
        reserved = RESERVED_LARGEST_050_GIB * 1024
        for bound, fixed, per_rank in RESERVED_TIERS_050:
            if gpu_mem_mib < bound:
                reserved = (fixed + per_rank * ps) * 1024
                break
        if r.speculative:
            reserved += 2 * 1024
        if r.dp_attention > 1:
            reserved += 4 * 1024
        return reserved
    # 0.5.3 server_args.py:634-669, 0.5.15 :3623-3690, 0.5.23 memory_hook.py:305-400
    if profile.decode_role_activation and r.disaggregation_mode == "decode":
        running = r.max_running_requests or r.cuda_graph_max_bs or 1
        activation = max(running * (r.draft_tokens or 1), 2048)
    else:
        activation = max(r.chunked_prefill_size, 2048)
    reserved = 512 + 1.5 * activation
    if r.decode_graphs and r.disaggregation_mode != "prefill":
        reserved += 2 * r.cuda_graph_max_bs
    reserved += 1024 * r.tp * r.pp / 8
    if r.dp_attention > 1 and r.disaggregation_mode != "prefill":
        reserved += 3 * r.cuda_graph_max_bs * r.dp_attention
        if r.cuda_graph_max_bs > 300:
            reserved += 1.5 * r.cuda_graph_max_bs * r.dp_attention
    if profile.prefill_graphs_default and r.disaggregation_mode != "decode":
        if r.mla:
            reserved += 1.5 * 1024
        else:
            reserved += 8 * len(prefill_graph_sizes(r.chunked_prefill_size))
    if gpu_mem_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    eagle_mib, standalone_mib = profile.spec_reserve_mib
    if r.speculative and r.speculative != "NGRAM":
        reserved += standalone_mib if r.speculative == "STANDALONE" else eagle_mib
    return reserved


def default_mem_fraction_static(
    profile: SGLangProfile,
    gpu_mem_mib: float,
    tp: int,
    pp: int,
    chunked_prefill_size: int,
    cuda_graph_max_bs: int,
    dp_attention: int = 0,
    **more: object,
) -> float:
    """Default ``mem_fraction_static``: ``round((gpu - reserved) / gpu, 3)`` (or the TP table before 0.5)."""
    if profile.mem_fraction_rule == "tp_table":
        for min_tp, value in profile.tp_table:
            if tp >= min_tp:
                return value
        return profile.tp_table[-1][1]
    inputs = ReserveInputs(tp, pp, chunked_prefill_size, cuda_graph_max_bs, dp_attention, **more)  # type: ignore[arg-type]
    reserved = reserved_mib(profile, gpu_mem_mib, inputs)
    return round((gpu_mem_mib - reserved) / gpu_mem_mib, 3)
