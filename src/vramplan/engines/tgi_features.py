"""Memory of TGI's serving features: ``--speculate`` (n-gram or Medusa heads) and ``--lora-adapters``.

What TGI documents and does (``server/text_generation_server/models/__init__.py`` ``get_model``,
``layers/medusa.py``, ``adapters/lora.py``; launcher ``--speculate``, ``--lora-adapters``):

* ``--speculate N`` on a plain model is n-gram speculation: no weights, but every request reserves ``N``
  more KV slots (``block_allocator.rs``: ``input + max_new_tokens + speculate - 1``).
* A Medusa repo (its ``config.json`` names ``medusa_num_heads``, ``medusa_num_layers`` and
  ``base_model_name_or_path``) loads the base model plus ``medusa_num_heads`` heads, each
  ``medusa_num_layers`` residual blocks (``Linear(h, h)`` with bias) and its own ``Linear(h, vocab)``
  output, in the model dtype, column-sharded over the shards; ``--speculate`` defaults to the head count
  and may not exceed it.
* ``--lora-adapters a,b=PATH`` loads every adapter onto the GPU at startup, in the model dtype: A ``(r, in)``
  and B ``(out, r)`` for each targeted module of every layer (PEFT ``adapter_config.json``: ``r``,
  ``target_modules``). Counted whole on each shard (an upper bound: how TGI splits them over shards is
  not modelled). A Hub id cannot be read offline and is named as not counted.

Reading a local config is the only I/O here, and it is refused inside ``names_only()`` (the service).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vramplan.errors import InputError
from vramplan.memory.serving_features import ALL_LINEAR_TARGETS, lora_module_shapes
from vramplan.model.spec import ModelSpec

#: Modules a PEFT adapter may target on a Llama-style decoder -> (input, output) width at TP 1.
LORA_TARGETS = ALL_LINEAR_TARGETS


@dataclass(frozen=True)
class MedusaConfig:
    """A Medusa repo's own config: heads, residual blocks per head, and the base model it extends."""

    num_heads: int
    num_layers: int
    base_model: str


def _read_config(ref: str, name: str = "config.json") -> dict[str, Any] | None:
    """A local JSON config (a file, or ``name`` in a folder); None for names and inside ``names_only()``."""
    from vramplan.model.load import local_files_allowed

    if not local_files_allowed():
        return None
    path = Path(ref).expanduser()
    if path.is_dir():
        path = path / name
    if not path.is_file() or path.suffix != ".json":
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON config ({exc})") from None
    return data if isinstance(data, dict) else None


def medusa_config(ref: str) -> MedusaConfig | None:
    """The Medusa fields of ``--model-id`` when it is a local Medusa config, else None."""
    cfg = _read_config(ref)
    if not cfg or "medusa_num_heads" not in cfg:
        return None
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise InputError(
            f"{ref}: a Medusa config needs base_model_name_or_path (TGI loads that model under the heads)"
        )
    return MedusaConfig(
        int(cfg["medusa_num_heads"]), int(cfg.get("medusa_num_layers", 1)), str(base)
    )


def medusa_head_bytes(spec: ModelSpec, medusa: MedusaConfig, element_bytes: int, tp: int) -> int:
    """Bytes of the Medusa heads on one shard: per head ``layers x (h x h + h)`` + ``vocab x h``, split over
    ``tp`` (TGI's MedusaHeadV2 column-shards them; V1 is the tp = 1 case)."""
    h = spec.hidden_size
    per_head = medusa.num_layers * (h * h + h) + spec.vocab_size * h
    return -(-medusa.num_heads * per_head * element_bytes // tp)


@dataclass(frozen=True)
class LoraAdapter:
    """One ``--lora-adapters`` entry: its id, and rank/targets when its adapter_config.json was read."""

    name: str
    source: str
    rank: int | None = None
    targets: tuple[str, ...] = ()


def parse_lora_adapters(value: str) -> list[LoraAdapter]:
    """``"a,b=PATH"`` -> adapters; ``name=path`` entries read ``PATH/adapter_config.json`` when local."""
    out: list[LoraAdapter] = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        name, _, path = entry.partition("=")
        source = path or name
        cfg = _read_config(source, "adapter_config.json")
        if cfg is None:
            out.append(LoraAdapter(name, source))
            continue
        rank = cfg.get("r")
        targets = cfg.get("target_modules") or ()
        if isinstance(targets, str):  # PEFT's "all-linear"
            targets = LORA_TARGETS if targets == "all-linear" else (targets,)
        if not isinstance(rank, int) or rank < 1:
            raise InputError(
                f"{source}: adapter_config.json needs a positive integer r (the LoRA rank)"
            )
        out.append(LoraAdapter(name, source, rank, tuple(str(t) for t in targets)))
    if not out:
        raise InputError(
            "--lora-adapters needs adapter ids, e.g. --lora-adapters a=/path/to/adapter"
        )
    return out


def lora_bytes(spec: ModelSpec, adapter: LoraAdapter, element_bytes: Fraction | int) -> int:
    """Bytes of one read adapter: ``r x (in + out)`` per targeted module per layer, in the model dtype."""
    if adapter.rank is None:
        return 0
    shapes = lora_module_shapes(spec)
    unknown = sorted(set(adapter.targets) - set(shapes))
    if unknown:
        raise InputError(
            f"{adapter.source}: LoRA target module(s) {', '.join(unknown)} are not modelled; "
            f"known: {', '.join(LORA_TARGETS)}"
        )
    if spec.moe is not None or spec.mla is not None:
        raise InputError(
            f"{spec.name}: TGI LoRA adapter memory is modelled for dense, non-MLA decoders only"
        )
    numel = sum(adapter.rank * sum(shapes[t]) for t in set(adapter.targets))
    return int(spec.num_layers * numel * Fraction(element_bytes))
