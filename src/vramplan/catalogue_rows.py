"""The rows of the model and GPU catalogues, as `vramplan models/gpus --json` and GET /api/models, /api/gpus show them.

One function per catalogue, called by the CLI commands and the service routes alike, so the two can
never drift (tests/service checks the outputs are identical).
"""

from __future__ import annotations

from typing import Any


def model_rows() -> list[dict[str, Any]]:
    """One row per bundled catalogue model: id, type, parameter counts, shape, aliases."""
    from vramplan.model import catalog
    from vramplan.model.hf_config import spec_from_config
    from vramplan.model.params import count_params

    rows = []
    for repo_id, cfg in catalog.catalogue().items():
        spec = spec_from_config(cfg, name=repo_id)
        counts = count_params(spec)
        rows.append(
            {
                "id": repo_id,
                "model_type": spec.model_type,
                "params": counts.total,
                "active_params": counts.active_per_token,
                "layers": spec.num_layers,
                "kv_heads": spec.num_kv_heads,
                "max_context": spec.max_position_embeddings,
                "aliases": catalog.aliases(repo_id),
            }
        )
    return rows


def gpu_rows() -> list[dict[str, Any]]:
    """One row per catalogue GPU: memory as CUDA reports it, bandwidth, bf16 FLOP/s, reference price."""
    from vramplan.hardware import list_gpus

    return [
        {
            "name": g.name,
            "aliases": list(g.aliases),
            "memory_bytes": g.memory_bytes,
            "memory_gib": round(g.memory_bytes / 2**30, 2),
            "memory_bandwidth_bytes_per_s": g.memory_bandwidth_bytes_per_s,
            "bf16_flops": g.flops.bf16,
            "price_per_hour_usd": g.price_per_hour_usd,
        }
        for g in list_gpus()
    ]
