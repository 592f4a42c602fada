"""Counted nouns in the right number, for every message the core and the CLI write.

Why a module of its own: the core (estimator, engines) writes assumption and fix lines too, and it
must not import the rendering layer (rich); both use this one rule.
"""

from __future__ import annotations


def plural(n: int | float, singular: str, plural_form: str | None = None) -> str:
    """``plural(1, "user") == "1 user"``, ``plural(16, "user") == "16 users"``, thousands separated.

    A compound noun takes the plural on its head: ``plural(2, "byte/element") == "2 bytes/element"``.
    """
    word = singular if n == 1 else (plural_form or plural_of(singular))
    count = f"{n:,}" if isinstance(n, int) else f"{n:,g}"
    return f"{count} {word}"


def plural_of(word: str) -> str:
    """English plural of a unit-like noun: token -> tokens, batch -> batches, entry -> entries."""
    head, sep, tail = word.partition("/")
    if head.endswith(("s", "x", "ch", "sh")):
        head += "es"
    elif head.endswith("y") and head[-2:-1] not in "aeiou":
        head = head[:-1] + "ies"
    else:
        head += "s"
    return head + sep + tail
