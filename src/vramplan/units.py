"""Byte units: integers inside, one parser and one formatter at the edges.

GiB = 2**30 bytes, GB = 10**9 bytes. vramplan never prints a number without its unit.
"""

from __future__ import annotations

import math
import re

from vramplan.errors import InputError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12

_UNITS = {
    "": 1,
    "b": 1,
    "k": KB,
    "kb": KB,
    "kib": KiB,
    "m": MB,
    "mb": MB,
    "mib": MiB,
    "g": GB,
    "gb": GB,
    "gib": GiB,
    "t": TB,
    "tb": TB,
    "tib": TiB,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int | float) -> int:
    """Parse "80GB", "79.19 GiB", "24gib", "512MiB" or a plain byte count into integer bytes."""
    if isinstance(text, bool):
        raise InputError(f"memory size must be a number with a unit, got {text!r}")
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        match = _SIZE.match(text)
        if not match:
            raise InputError(
                f"cannot read memory size {text!r}: write a number and a unit, e.g. 24GiB, 80GB, 512MiB"
            )
        value, unit = float(match.group(1)), match.group(2).lower()
    if unit not in _UNITS:
        raise InputError(
            f"unknown unit {unit!r} in {text!r}: use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
        )
    if not unit and isinstance(text, str):
        raise InputError(
            f"memory size {text!r} has no unit: write {text.strip()}GiB (2^30 bytes) or {text.strip()}GB "
            "(10^9 bytes), or B for bytes"
        )
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"memory size must be a positive finite number, got {text!r}")
    size = int(round(value * _UNITS[unit]))
    if size <= 0:
        raise InputError(f"memory size must be at least one byte, got {text!r}")
    if size > 1 << 60:
        raise InputError(f"memory size {text!r} is absurdly large (over 1 EiB)")
    return size


#: Units a table of results can be shown in (``--unit``).
DISPLAY_UNITS = ("GiB", "GB")


def display_unit(text: str) -> str:
    """``--unit``: GiB or GB (any case); anything else is refused rather than silently shown in GiB."""
    for unit in DISPLAY_UNITS:
        if str(text).strip().lower() == unit.lower():
            return unit
    raise InputError(
        f"unknown --unit {text!r}: use GiB (2^30 bytes, the default) or GB (10^9 bytes)"
    )


def gib(n_bytes: int | float) -> float:
    """Bytes to GiB (2**30) as a float."""
    return n_bytes / GiB


def format_bytes(n_bytes: int | float, unit: str = "GiB", digits: int = 2) -> str:
    """The one formatter: ``format_bytes(15_000_000_000) == '13.97 GiB'``."""
    divisor = {
        "B": 1,
        "KiB": KiB,
        "MiB": MiB,
        "GiB": GiB,
        "TiB": TiB,
        "KB": KB,
        "MB": MB,
        "GB": GB,
        "TB": TB,
    }
    if unit not in divisor:
        raise InputError(f"unknown display unit {unit!r}")
    if unit == "B":
        return f"{int(n_bytes):,} B"
    return f"{n_bytes / divisor[unit]:,.{digits}f} {unit}"


def parse_count(text: str | int | float, what: str = "count") -> int:
    """Parse '70e9', '70B', '8.03B', '1.5M' or an int into a positive integer."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower().replace("_", "").replace(",", "")
        mult = 1.0
        for suffix, m in (("t", 1e12), ("b", 1e9), ("m", 1e6), ("k", 1e3)):
            if s.endswith(suffix):
                s, mult = s[:-1], m
                break
        try:
            value = float(s) * mult
        except ValueError:
            raise InputError(f"cannot read {what} {text!r}: write e.g. 70e9 or 70B") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive finite number, got {text!r}")
    if value > 1e16:
        raise InputError(f"{what} {text!r} is absurdly large")
    return int(round(value))
