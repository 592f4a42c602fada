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
# unambiguous (digits, then an optional fraction): no split of a digit run is ever retried
_SIZE = re.compile(r"^\s*((?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")

#: Most digits of an integer read from text (a command line, a config, a header): 10**30 is beyond
#: any count or size, and refusing longer ones up front keeps Python from converting (or refusing
#: with its own ``sys.set_int_max_str_digits`` text) a 5,000-digit number.
MAX_INT_DIGITS = 30
#: Longest number text accepted at all (digits, sign, point, exponent, unit and blanks).
MAX_NUMBER_TEXT = 64
#: Characters of a refused value echoed in an error message.
ECHO_CHARS = 24


def shorten(text: object) -> str:
    """``repr`` of a value cut to ``ECHO_CHARS`` characters, for one-line error messages."""
    s = str(text)
    return repr(s) if len(s) <= ECHO_CHARS else f"{s[:ECHO_CHARS]!r}... ({len(s):,} characters)"


def check_number_text(text: str, what: str) -> None:
    """Refuse number text too long to be a real value, before any conversion or pattern runs."""
    if len(text) > MAX_NUMBER_TEXT or sum(c.isdigit() for c in text) > MAX_INT_DIGITS:
        raise InputError(
            f"{what} {shorten(text)} is absurdly long: write a number of at most {MAX_INT_DIGITS} "
            "digits (e.g. 80GiB, 70e9)"
        )


def parse_int(text: str | int, what: str = "value") -> int:
    """Parse an integer from text (``_`` separators allowed); absurdly long ones are refused in one line."""
    if isinstance(text, bool):
        raise InputError(f"{what} must be an integer, got {text!r}")
    if isinstance(text, int):
        return text
    s = str(text).strip()
    check_number_text(s, what)
    try:
        return int(s.replace("_", ""))
    except ValueError:
        raise InputError(f"{what} must be an integer, got {shorten(s)}") from None


def parse_size(text: str | int | float) -> int:
    """Parse "80GB", "79.19 GiB", "24gib", "512MiB" or a plain byte count into integer bytes."""
    if isinstance(text, bool):
        raise InputError(f"memory size must be a number with a unit, got {text!r}")
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        check_number_text(text, "memory size")
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
        check_number_text(str(text).strip(), what)
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
