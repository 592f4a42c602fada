"""Shared machinery of the engine parsers: figure patterns, rank-0 selection and settings literals.

Linear time by construction: ``NUM`` cannot backtrack (atomic group) and cannot restart inside a
run of digits (look-behind); figure patterns start with a literal and skip at most
``MAX_GAP_CHARS``; values and commands are cut at the limits of ``logs.limits`` before they are
evaluated or split.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vramplan.logs.limits import (
    MAX_COMMAND_CHARS,
    MAX_COMMANDS,
    MAX_GAP_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_MESSAGES,
    MAX_NUMBER_CHARS,
    MAX_VALUE_CHARS,
)
from vramplan.logs.text import Line, Lines, message

Converter = Callable[[re.Match[str]], dict[str, Any]]

#: A printed number (``1,075,312``, ``0.90``, ``-1.05``, ``.5``): the one number pattern of every parser.
#: The look-behind keeps a search from restarting at every digit of a long run; the atomic group keeps
#: the engine from re-splitting the digits when what follows does not match (the old
#: ``-?[\d,]*\.?\d+`` tried every split: cubic on a run of digits).
NUM = r"(?<![\d.,])(-?(?>\d+(?:,\d+)*(?:\.\d+)?|\.\d+))"
#: The text a figure pattern may skip between two of its parts (bounded, so each try costs O(1)).
GAP = rf"[^\n]{{0,{MAX_GAP_CHARS}}}?"


@dataclass(frozen=True)
class Figure:
    """A figure line: a cheap substring test, a regex, and how to turn a match into named values."""

    keyword: str
    regex: re.Pattern[str]
    convert: Converter


def figure(keyword: str, pattern: str, *names: str, scale: float | None = None) -> Figure:
    """A figure whose groups map one-to-one onto ``names`` (numbers parsed, ``scale`` applied)."""
    regex = re.compile(pattern)

    def convert(match: re.Match[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, raw in zip(names, match.groups()):
            if raw is None or name == "":
                continue
            value = number(raw)
            if isinstance(value, str):  # too many digits to be a figure
                continue
            if scale is not None and isinstance(value, float | int):
                value = round(value * scale, 6)
            out[name] = value
        return out

    return Figure(keyword, regex, convert)


def number(raw: str) -> int | float | str:
    """Parse ``1,075,312`` / ``0.90`` / ``-1.05`` as numbers; leave anything else (or anything
    longer than ``MAX_NUMBER_CHARS``) as text."""
    s = raw.strip().replace(",", "")
    if len(s) > MAX_NUMBER_CHARS:
        return raw.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return raw.strip()


@dataclass
class Collected:
    """Values gathered for one field: the chosen one and the per-worker list when workers disagree."""

    values: list[tuple[str, bool | None, Any]] = field(default_factory=list)

    def chosen(self) -> Any:
        """Rank 0's value when a rank-0 line printed it, else the first value printed."""
        for _label, rank0, value in self.values:
            if rank0:
                return value
        return self.values[0][2]

    def per_worker(self) -> list[Any] | None:
        """Every worker's value, in order, when they are not all equal."""
        seen: list[tuple[str, Any]] = []
        for label, _rank0, value in self.values:
            if (label, value) not in seen:
                seen.append((label, value))
        values = [v for _l, v in seen]
        return values if len(set(map(repr, values))) > 1 else None


def collect(
    lines: Iterable[Line], figures: list[Figure]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Run every figure over the lines; earlier figures win a field, later ones only fill gaps.

    Only the lines holding a figure's keyword are matched (found with one ``str.find`` pass each).
    """
    index_of = lines if isinstance(lines, Lines) else Lines(lines)
    found: list[dict[str, Collected]] = [{} for _ in figures]
    for index, fig in enumerate(figures):
        for line in index_of.containing(fig.keyword):
            match = fig.regex.search(line.text)
            if not match:
                continue
            for name, value in fig.convert(match).items():
                found[index].setdefault(name, Collected()).values.append(
                    (line.label, line.rank0, value)
                )
    logged: dict[str, Any] = {}
    per_worker: dict[str, list[Any]] = {}
    for per_figure in found:
        for name, coll in per_figure.items():
            if name in logged:
                continue
            logged[name] = coll.chosen()
            workers = coll.per_worker()
            if workers is not None:
                per_worker[name] = workers
    return logged, per_worker


_SCALAR = re.compile(r"^(?:torch\.)?(\w+)$")


def literal(raw: str) -> Any:
    """Read one value of a Python repr (``'x'``, ``None``, ``0.9``, ``torch.bfloat16``, ``True``).

    Values longer than ``MAX_VALUE_CHARS`` stay text: no setting is that long.
    """
    s = raw.strip()
    if len(s) > MAX_VALUE_CHARS:
        return s
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    m = _SCALAR.match(s)
    if m:
        if s.startswith("torch."):
            return m.group(1)
        value = number(s)
        return value
    return s


def _scan(text: str) -> Iterator[tuple[int, str, int]]:
    """Yield (index, char, bracket depth after it) for characters outside quotes: one scanner for both users."""
    depth = 0
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
            continue
        if ch in "'\"":
            quote = ch
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        yield i, ch, depth


def split_top_level(body: str, sep: str = ",") -> list[str]:
    """Split ``a=1, b=Foo(x=1, y=2), c='p,q'`` at top-level separators only."""
    parts: list[str] = []
    start = 0
    for i, ch, depth in _scan(body):
        if depth < 0:
            parts.append(body[start:i])
            return parts
        if ch == sep and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return parts


def key_values(body: str, joiner: str = "=") -> dict[str, Any]:
    """Parse ``key=value, key2=value2`` (a config line or a Namespace/ServerArgs repr) into a dict."""
    out: dict[str, Any] = {}
    for part in split_top_level(body):
        key, sep, value = part.partition(joiner)
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
            continue
        parsed = literal(value)
        if _cut_string(parsed):
            continue  # a value cut by the paste (``model='~/.cache/huggin``) is no value
        out[key] = parsed
    return out


def _cut_string(value: Any) -> bool:
    """A string literal whose closing quote the paste cut off (``literal`` leaves it as raw text)."""
    if not isinstance(value, str) or not value or value[0] not in "'\"":
        return False
    return len(value) == 1 or value[-1] != value[0]


def dict_literal(body: str) -> dict[str, Any]:
    """Parse a printed Python dict (``non-default args: {...}``); fall back to pair-wise on truncation."""
    start = body.find("{")
    if start < 0:
        return {}
    text = body[start:]
    end = matching_brace(text)
    try:
        value = ast.literal_eval(text[: end + 1] if end >= 0 else text)
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    return _pairwise(text[1:end] if end >= 0 else text[1:])


def _pairwise(body: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in split_top_level(body):
        key, sep, value = part.partition(":")
        if sep:
            out[str(literal(key))] = literal(value)
    return out


def matching_brace(text: str) -> int:
    """Index of the brace closing ``text[0]``, or -1 when the text was cut before it."""
    for i, ch, depth in _scan(text):
        if ch in ")]}" and depth == 0:
            return i
    return -1


_HUMAN_INT = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgG])$")


def cli_value(raw: str) -> Any:
    """A command-line value: numbers, booleans and vLLM's human-readable ints (``32K`` = 32768, ``32k`` = 32000)."""
    if len(raw) > MAX_NUMBER_CHARS:
        return raw
    m = _HUMAN_INT.match(raw)
    if m:
        base = 1024 if m.group(2).isupper() else 1000
        power = "kmg".index(m.group(2).lower()) + 1
        return int(float(m.group(1)) * base**power)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return number(raw)


def command_flags(command: str, aliases: dict[str, str]) -> dict[str, Any]:
    """Flags of a pasted launch command (``--tp 4`` -> ``tp_size: 4``); positional model goes to ``model``."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, eq, inline = word[2:].partition("=")
            key = aliases.get(name, name.replace("-", "_"))
            if eq:
                out[key] = cli_value(inline)
            elif i + 1 < len(words) and not words[i + 1].startswith("--"):
                out[key] = cli_value(words[i + 1])
                i += 1
            else:
                out[key] = True
        i += 1
    return out


def joined_commands(lines: Lines, starts: re.Pattern[str]) -> list[str]:
    """Launch commands found in the log (at most ``MAX_COMMANDS``), with backslash continuations joined.

    Pieces are joined once and a command stops growing at ``MAX_COMMAND_CHARS`` (its remaining
    continuation lines are skipped), so a flood of continuation lines costs one pass.
    """
    commands: list[str] = []
    i = next(lines.indices_matching(starts), len(lines))
    while i < len(lines) and len(commands) < MAX_COMMANDS:
        text = lines[i].text
        m = starts.search(text)
        assert m is not None
        piece = text[m.start() :].rstrip()
        parts: list[str] = []
        size = 0
        while piece.endswith("\\") and i + 1 < len(lines):
            if size < MAX_COMMAND_CHARS:
                parts.append(piece[:-1])
                size += len(piece)
            i += 1
            piece = lines[i].text.strip()
        if size < MAX_COMMAND_CHARS:
            parts.append(piece)
        commands.append(" ".join(parts)[:MAX_COMMAND_CHARS])
        i = next(lines.indices_matching(starts, i + 1), len(lines))
    return commands


def messages_matching(
    lines: Lines, regex: re.Pattern[str], accept: Callable[[str], bool] | None = None
) -> list[str]:
    """Distinct messages of the lines ``regex`` finds (and ``accept`` keeps), at most ``MAX_MESSAGES``.

    ``regex`` runs over the joined text (``Lines.matching``): it must not span lines.
    """
    out: list[str] = []
    for line in lines.matching(regex):
        if accept is not None and not accept(line.text):
            continue
        msg = message(line.text)[:MAX_MESSAGE_CHARS]
        if msg and msg not in out:
            out.append(msg)
            if len(out) >= MAX_MESSAGES:
                break
    return out


@dataclass
class Partial:
    """What one engine parser recovered; ``parse_log`` freezes it into a ``ParsedLog``."""

    engine: str
    engine_version: str | None = None
    vllm_generation: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    logged: dict[str, Any] = field(default_factory=dict)
    per_worker: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def merge_settings(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge settings sources from lowest to highest priority, ignoring ``None`` values."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update({k: v for k, v in layer.items() if v is not None})
    return out
