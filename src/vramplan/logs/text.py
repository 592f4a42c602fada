"""Clean raw startup logs into logical lines, so one regex per figure works on every paste style.

Real logs carry ANSI colours, Ray ``[repeated Nx across cluster]`` suffixes, hard wraps at a fixed
column, ``\\r`` progress bars and per-worker prefixes; this module removes the noise and tags each line
with the rank that printed it (so callers can prefer rank 0). Every step is one linear pass; lines are
cut at ``MAX_LINE_CHARS``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from functools import cached_property
from itertools import accumulate

from vramplan.logs.limits import (
    HEAD_CHARS,
    HEAD_LINES,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_PARSE_CHARS,
    TAIL_CHARS,
    TAIL_LINES,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|(?<![\w\[])\[[0-9]{1,3}(?:;[0-9]{1,3})*m")
# (?<!\s): a run of blanks is tried once, from its start (else every blank restarts a scan of the run).
_RAY_REPEAT = re.compile(r"(?<!\s)\s*\[repeated \d+x across cluster\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A physical line that starts like this is a new record, never the tail of a wrapped one.
_RECORD_START = re.compile(
    r"[A-Z(\[$#>`|{]|\.\.\.|[a-z]+_\w*:|\s*(File |Traceback|\d{4}-\d\d-\d\d)"
)
_WRAP_MIN_PREV = 100
_PREFIX = re.compile(r"^(?:\s*\((?:[^()]|\([^()]*\))*\))+")
_SGLANG_PREFIX = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:]+((?: [A-Z]+\d+)*)\]")
_RANK_NUM = re.compile(r"(?:TP|PP|DP|EP|rank)_?(\d+)", re.IGNORECASE)
_MESSAGE_PREFIX = re.compile(
    r"^(?:\s*\((?:[^()]|\([^()]*\))*\))*\s*"
    r"(?:\[[\d\- :]+(?: [A-Z]+\d+)*\]\s*)?"
    r"(?:(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL)\s+\d\d-\d\d\s+[\d:.]+\s*(?:\[[^\]]*\]\s*)?)?"
)


class Line:
    """One logical log line: text without colour codes; the worker label and rank are read on demand.

    A slotted class, not a dataclass: a 2.5 MB log can hold a million lines, and only the few
    that carry a figure ever need their worker prefix parsed.
    """

    __slots__ = ("_worker", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._worker: tuple[str, bool | None] | None = None

    def __repr__(self) -> str:
        return f"Line({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def _read_worker(self) -> tuple[str, bool | None]:
        if self._worker is None:
            self._worker = _label_and_rank(self.text)
        return self._worker

    @property
    def label(self) -> str:
        """The worker prefix that printed the line (``(EngineCore_DP0 pid=1)``, ``TP1``) or ''."""
        return self._read_worker()[0]

    @property
    def rank0(self) -> bool | None:
        """True for rank 0, False for another rank, None when the line names no rank."""
        return self._read_worker()[1]


class Lines(list[Line]):
    """The logical lines of a log, with their text joined once so lines are found at C speed.

    Why: a Python loop that tests every line (per figure, per error pattern) costs microseconds a
    line; ``containing`` and ``matching`` search the joined text instead and visit only the hits.
    """

    @cached_property
    def joined(self) -> str:
        """All lines joined by newlines (no line holds one)."""
        return "\n".join(line.text for line in self)

    @cached_property
    def _starts(self) -> list[int]:
        lengths = accumulate((len(line.text) for line in self), initial=0)
        return [total + i for i, total in enumerate(lengths)][: len(self)]

    def _index_at(self, pos: int) -> int:
        return bisect_right(self._starts, pos) - 1

    def indices_containing(self, needle: str) -> Iterator[int]:
        """Indices of the lines holding ``needle``, in order, each once."""
        joined, starts = self.joined, self._starts
        pos = joined.find(needle)
        while pos >= 0:
            i = self._index_at(pos)
            yield i
            if i + 1 >= len(starts):
                return
            pos = joined.find(needle, starts[i + 1])

    def containing(self, needle: str) -> Iterator[Line]:
        """The lines holding ``needle``, in order, each once."""
        return (self[i] for i in self.indices_containing(needle))

    def indices_matching(self, regex: re.Pattern[str], start: int = 0) -> Iterator[int]:
        """Indices (from line ``start`` on) of the lines in which ``regex`` finds a match, each once.

        The regex runs over the joined text, so it must not match across a newline (no ``\\s`` or
        ``.`` spanning lines); compile it with ``re.MULTILINE`` when it anchors with ``^``/``$``.
        """
        joined, starts = self.joined, self._starts
        if start >= len(starts):
            return
        m = regex.search(joined, starts[start])
        while m is not None:
            i = self._index_at(m.start())
            yield i
            if i + 1 >= len(starts):
                return
            m = regex.search(joined, starts[i + 1])

    def matching(self, regex: re.Pattern[str]) -> Iterator[Line]:
        """The lines in which ``regex`` finds a match, in order, each once (see ``indices_matching``)."""
        return (self[i] for i in self.indices_matching(regex))


def limit_size(text: str) -> tuple[str, str | None]:
    """Keep the head and tail of a huge log: startup figures sit at the start, failures at the end."""
    if len(text) <= MAX_PARSE_CHARS:
        return text, None
    note = (
        f"log is {len(text):,} characters; only the first {HEAD_CHARS:,} and last {TAIL_CHARS:,} were "
        "read (startup figures are at the start, failures at the end)"
    )
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:], note


def _physical_lines(text: str) -> list[str]:
    """Split on newlines and carriage returns, dropping colour codes, Ray dedup suffixes and control bytes."""
    text = _ANSI.sub("", text)
    text = _RAY_REPEAT.sub("", text)
    text = _CONTROL.sub("", text)
    return re.split(r"\r\n|\n|\r", text)


def unwrap(lines: list[str]) -> list[str]:
    """Re-join hard-wrapped lines: a long line followed by one that cannot start a record is one line.

    Pieces are collected and joined once (appending to a str in a list copies it every time), and a
    joined line stops growing at ``MAX_LINE_CHARS``.
    """
    out: list[str] = []
    parts: list[str] = []
    size = 0
    prev_len = 0
    for line in lines:
        line = line[:MAX_LINE_CHARS]
        if parts and prev_len >= _WRAP_MIN_PREV and line and not _RECORD_START.match(line):
            if size < MAX_LINE_CHARS:
                parts.append(line[: MAX_LINE_CHARS - size])
                size += len(parts[-1])
        else:
            if parts:
                out.append("".join(parts))
            parts, size = [line], len(line)
        prev_len = len(line)
    if parts:
        out.append("".join(parts))
    return out


def _label_and_rank(line: str) -> tuple[str, bool | None]:
    """Name the worker that printed a line (vLLM pid prefixes, SGLang ``TPn``) and say if it is rank 0."""
    match = _PREFIX.match(line) or _SGLANG_PREFIX.match(line)
    if not match:
        return "", None
    label = match.group(0).strip()
    ranks = _RANK_NUM.findall(label)
    if not ranks:
        return label, None
    return label, all(int(r) == 0 for r in ranks)


def logical_lines(text: str) -> tuple[Lines, str | None]:
    """Turn raw log text into logical lines; the note says when the middle of a huge log was skipped."""
    physical = _physical_lines(text)
    note = None
    if len(physical) > MAX_LINES:
        note = (
            f"log has {len(physical):,} lines; only the first {HEAD_LINES:,} and last {TAIL_LINES:,} "
            "were read (startup figures are at the start, failures at the end)"
        )
        physical = physical[:HEAD_LINES] + physical[-TAIL_LINES:]
    return Lines(Line(t) for t in unwrap(physical) if t.strip()), note


def message(line: str) -> str:
    """The message part of a line, without worker prefixes, level, timestamp and source tag."""
    return _MESSAGE_PREFIX.sub("", line, count=1).strip()
