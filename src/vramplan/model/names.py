"""Served model names -> a catalogue config plus the quantization the name implies.

Real deployments serve quantized repos (``RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic``,
``Qwen/Qwen3-235B-A22B-FP8``, ``...-AWQ``) whose layer shapes are those of the base model the catalogue
holds; only the weight format differs. One table of name suffixes says which format each implies, and
one resolver is shared by the vLLM, SGLang, TGI and transformers models and the log explainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramplan.errors import UnknownModelError
from vramplan.model.load import LoadedModel, load_model

#: Name suffix (after "-" or "_", any case) -> vramplan quantization. Longest first.
#: RedHatAI ``-FP8-dynamic``/``-FP8-dyn`` are compressed-tensors channel-wise FP8 (w8a8); ``w4a16`` is
#: group 128; Qwen/DeepSeek ``-FP8`` are 128x128 block FP8; ``-Int4`` releases are AWQ.
QUANT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("fp8-dynamic", "w8a8"),
    ("quantized.w4a16", "w4a16"),
    ("quantized.w8a8", "w8a8"),
    ("gptq-int4", "gptq"),
    ("gptq-int8", "gptq_int8"),
    ("fp8-dyn", "w8a8"),
    ("w4a16", "w4a16"),
    ("w8a8", "w8a8"),
    ("gptq", "gptq"),
    ("int4", "awq"),
    ("fp8", "fp8_block"),
    ("awq", "awq"),
)
#: Release-date tags that name the same architecture as the undated catalogue entry.
_DATED = ("-2507", "-2506", "-2503", "-2501")


@dataclass(frozen=True)
class ServedName:
    """What a served name resolves to."""

    loaded: LoadedModel
    quantization: str | None
    note: str | None


def split_quant_suffix(name: str) -> tuple[str, str | None]:
    """``"Qwen3-8B-FP8"`` -> ``("Qwen3-8B", "fp8_block")``; names without a known suffix are unchanged."""
    low = name.lower()
    for suffix, scheme in QUANT_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix) and name[-len(suffix) - 1] in "-_":
            return name[: -len(suffix) - 1], scheme
    return name, None


def resolve_served_name(name: str) -> ServedName:
    """Map a served model name (catalogue name, Hub id, local path) to a config and a quantization.

    Local-path prefixes and ``(local dir ...)`` annotations are stripped; the Hub is never asked.
    Raises UnknownModelError (with suggestions) when nothing matches.
    """
    from vramplan.model import catalog

    raw = name.split(" (")[0].strip()
    candidates = [raw]
    if "/" in raw:
        candidates.append(raw.rstrip("/").split("/")[-1])
    quant: str | None = None
    for cand in list(candidates):
        base, scheme = split_quant_suffix(cand)
        if scheme is not None:
            candidates.append(base)
            if "/" in base:
                candidates.append(base.split("/")[-1])
            quant = quant or scheme
    for cand in list(candidates):
        for dated in _DATED:
            if dated in cand:
                candidates.append(cand.replace("-Instruct" + dated, "").replace(dated, ""))
    for cand in candidates:
        if catalog.find(cand) is not None or cand.startswith(("/", ".")):
            try:
                loaded = load_model(cand, allow_hub=False)
            except UnknownModelError:
                continue
            note = None
            if cand != raw:
                note = f"model {raw} read as catalogue {loaded.spec.name}" + (
                    f" with {quant} weights" if quant else ""
                )
            return ServedName(loaded, quant, note)
    return ServedName(load_model(raw, allow_hub=False), None, None)


__all__ = ["QUANT_SUFFIXES", "ServedName", "resolve_served_name", "split_quant_suffix"]
