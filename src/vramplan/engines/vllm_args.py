"""Read a `vllm serve` command line into a settings dict under vLLM's own flag names.

Why a hand parser: users paste whole `vllm serve ...` lines with dozens of flags we do not model. We
take the ones that change memory, accept both ``--flag value`` and ``--flag=value`` as vLLM's argparse
does, and list every other flag as ignored instead of failing on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


# flag -> (settings key, converter); a converter of None marks a boolean switch.
_VALUED: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "--model": ("model", _str),
    "--tensor-parallel-size": ("tensor_parallel_size", _int),
    "-tp": ("tensor_parallel_size", _int),
    "--pipeline-parallel-size": ("pipeline_parallel_size", _int),
    "-pp": ("pipeline_parallel_size", _int),
    "--dtype": ("dtype", _str),
    "--quantization": ("quantization", _str),
    "-q": ("quantization", _str),
    "--kv-cache-dtype": ("kv_cache_dtype", _str),
    "--max-model-len": ("max_model_len", parse_len),
    "--gpu-memory-utilization": ("gpu_memory_utilization", _float),
    "--block-size": ("block_size", _int),
    "--max-num-seqs": ("max_num_seqs", _int),
    "--max-num-batched-tokens": ("max_num_batched_tokens", parse_len),
    "--kv-cache-memory-bytes": ("kv_cache_memory_bytes", _bytes),
    "--kv-cache-memory": ("kv_cache_memory_bytes", _bytes),
    "--cpu-offload-gb": ("cpu_offload_gb", _float),
    "--served-model-name": ("served_model_name", _str),
}
_SWITCHES: dict[str, tuple[str, bool]] = {
    "--enforce-eager": ("enforce_eager", True),
    "--enable-prefix-caching": ("enable_prefix_caching", True),
    "--no-enable-prefix-caching": ("enable_prefix_caching", False),
    "--enable-chunked-prefill": ("enable_chunked_prefill", True),
    "--no-enable-chunked-prefill": ("enable_chunked_prefill", False),
}


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
    out = VllmArgs()
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or _is_number(token):
            if "model" in out.settings:
                raise InputError(
                    f"unexpected argument {token!r}: vllm serve takes one model; flags start with --"
                )
            out.settings["model"] = token
            i += 1
            continue
        flag, eq, inline = token.partition("=")
        if flag in _SWITCHES:
            key, value = _SWITCHES[flag]
            if eq:
                value = inline.strip().lower() in ("1", "true", "yes", "on")
            out.settings[key] = value
            i += 1
            continue
        if flag in _VALUED:
            key, convert = _VALUED[flag]
            if eq:
                raw = inline
                i += 1
            else:
                if i + 1 >= len(args):
                    raise InputError(f"{flag} needs a value, e.g. {flag} {_example(flag)}")
                raw = args[i + 1]
                i += 2
            out.settings[key] = convert(raw, flag)
            continue
        # Unknown flag: take its value along when the next token is not a flag, so it is not read as the model.
        if (
            not eq
            and i + 1 < len(args)
            and (not args[i + 1].startswith("-") or _is_number(args[i + 1]))
            and not _looks_boolean(flag)
        ):
            out.ignored.append(f"{flag} {args[i + 1]}")
            i += 2
        else:
            out.ignored.append(token)
            i += 1
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
