"""Read a `vllm serve` command line into a settings dict under vLLM's own flag names.

Why a hand parser: users paste whole `vllm serve ...` lines with dozens of flags we do not model. We
take the ones that change memory, accept both ``--flag value`` and ``--flag=value`` as vLLM's argparse
does, and list every other flag as ignored instead of failing on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vramplan.engines.base import Flag, scan_argv
from vramplan.errors import InputError
from vramplan.units import check_number_text

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")


def parse_len(value: str, flag: str) -> int:
    """'32k' / '32K' -> 32768 (vLLM's human-readable max-model-len: k = 1024, m = 1024**2), '8192' -> 8192."""
    check_number_text(str(value), flag)
    m = _SIZE.match(str(value))
    if not m:
        raise InputError(f"{flag} {value!r} is not a token count: give e.g. 8192, 32k or 1m")
    number, unit = float(m.group(1)), m.group(2).lower()
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]
    n = int(number * scale)
    if n <= 0:
        raise InputError(f"{flag} must be positive, got {value!r}")
    return n


def _int(value: str, flag: str) -> int:
    check_number_text(str(value), flag)
    try:
        n = int(str(value).replace("_", ""))
    except ValueError:
        raise InputError(f"{flag} {value!r} is not an integer") from None
    if n <= 0:
        raise InputError(f"{flag} must be a positive integer, got {value!r}")
    return n


def _float(value: str, flag: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{flag} {value!r} is not a number") from None


def _bytes(value: str, flag: str) -> int:
    from vramplan.units import parse_size

    try:
        return int(parse_size(value))
    except Exception:
        try:
            return _int(value, flag)
        except InputError:
            raise InputError(
                f"{flag} {value!r} is not a size: give bytes (e.g. 8000000000) or 8GiB"
            ) from None


def _str(value: str, flag: str) -> str:
    return str(value)


#: The `vllm serve` flags that change memory, read by the shared scanner (``engines.base.scan_argv``).
FLAGS: tuple[Flag, ...] = (
    Flag(("--model",), "model", _str),
    Flag(("--tensor-parallel-size", "-tp"), "tensor_parallel_size", _int),
    Flag(("--pipeline-parallel-size", "-pp"), "pipeline_parallel_size", _int),
    Flag(("--dtype",), "dtype", _str),
    Flag(("--quantization", "-q"), "quantization", _str),
    Flag(("--kv-cache-dtype",), "kv_cache_dtype", _str),
    Flag(("--mamba-cache-dtype",), "mamba_cache_dtype", _str),
    Flag(("--mamba-ssm-cache-dtype",), "mamba_ssm_cache_dtype", _str),
    Flag(("--max-model-len",), "max_model_len", parse_len),
    Flag(("--gpu-memory-utilization",), "gpu_memory_utilization", _float),
    Flag(("--block-size",), "block_size", _int),
    Flag(("--max-num-seqs",), "max_num_seqs", _int),
    Flag(("--max-num-batched-tokens",), "max_num_batched_tokens", parse_len),
    Flag(("--kv-cache-memory-bytes", "--kv-cache-memory"), "kv_cache_memory_bytes", _bytes),
    Flag(("--cpu-offload-gb",), "cpu_offload_gb", _float),
    Flag(("--served-model-name",), "served_model_name", _str),
    Flag(("--enforce-eager",), "enforce_eager"),
    Flag(("--enable-prefix-caching",), "enable_prefix_caching"),
    Flag(("--no-enable-prefix-caching",), "enable_prefix_caching", value_when_set=False),
    Flag(("--enable-lora",), "enable_lora"),
    Flag(("--max-loras",), "max_loras", _int),
    Flag(("--max-lora-rank",), "max_lora_rank", _int),
    Flag(("--lora-dtype",), "lora_dtype", _str),
    Flag(("--fully-sharded-loras",), "fully_sharded_loras"),
    Flag(("--speculative-config",), "speculative_config", _str),
    Flag(("--enable-expert-parallel", "-ep"), "enable_expert_parallel"),
    Flag(("--data-parallel-size", "-dp"), "data_parallel_size", _int),
    Flag(("--all2all-backend",), "all2all_backend", _str),
    Flag(("--kv-transfer-config",), "kv_transfer_config", _str),
    Flag(("--kv-offloading-size",), "kv_offloading_size", _float),
    Flag(("--kv-offloading-backend",), "kv_offloading_backend", _str),
    # read only to say it changes nothing: its buffers predate the profile's snapshot (vllm_nontorch.py)
    Flag(("--disable-custom-all-reduce",), "disable_custom_all_reduce"),
    Flag(("--enable-chunked-prefill",), "enable_chunked_prefill"),
    Flag(("--no-enable-chunked-prefill",), "enable_chunked_prefill", value_when_set=False),
)


@dataclass
class VllmArgs:
    """Settings recovered from a command line plus the flags we accepted but do not model."""

    settings: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def parse_vllm_args(argv: list[str] | tuple[str, ...]) -> VllmArgs:
    """Parse `[vllm serve] MODEL --flag value --flag=value ...`; unknown flags land in ``ignored``."""
    args = list(argv)
    if args[:2] == ["vllm", "serve"]:
        args = args[2:]
    elif args[:1] in (["serve"], ["vllm"]):
        args = args[1:]
    try:
        scanned = scan_argv(args, FLAGS, looks_boolean=_looks_boolean, ignored_with_value=True)
    except InputError as exc:
        flag = str(exc).split(" ", 1)[0]
        if str(exc).endswith("needs a value"):
            raise InputError(f"{flag} needs a value, e.g. {flag} {_example(flag)}") from None
        raise
    out = VllmArgs(dict(scanned.settings), list(scanned.ignored))
    model = scanned.settings.get("model")
    for token in scanned.positionals:
        if model is not None:
            raise InputError(
                f"unexpected argument {token!r}: vllm serve takes one model; flags start with --"
            )
        model = token
    if model is not None:
        out.settings = {"model": model, **{k: v for k, v in out.settings.items() if k != "model"}}
    return out


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


_BOOLEAN_PREFIXES = ("--enable-", "--disable-", "--no-", "--trust-remote-code", "--use-", "--skip-")


def _looks_boolean(flag: str) -> bool:
    """Unknown flags that are switches in vLLM (so the next token is the model, not their value)."""
    return flag.startswith(_BOOLEAN_PREFIXES)


def _example(flag: str) -> str:
    return {
        "--max-model-len": "32k",
        "--gpu-memory-utilization": "0.9",
        "--dtype": "bfloat16",
        "--kv-cache-dtype": "fp8",
        "--quantization": "fp8",
    }.get(flag, "2")
