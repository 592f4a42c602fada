"""Clean raw startup logs into logical lines, so one regex per figure works on every paste style.

Real logs carry ANSI colours, Ray ``[repeated Nx across cluster]`` suffixes, hard wraps at a fixed
column, ``\\r`` progress bars and per-worker prefixes; this module removes the noise and tags each line
with the rank that printed it (so callers can prefer rank 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PARSE_BYTES = 2_500_000
HEAD_BYTES = 1_500_000
TAIL_BYTES = 500_000

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|(?<![\w\[])\[[0-9]{1,3}(?:;[0-9]{1,3})*m")
_RAY_REPEAT = re.compile(r"\s*\[repeated \d+x across cluster\]")
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


@dataclass(frozen=True)
class Line:
    """One logical log line: text without colour codes, the worker label and whether it is rank 0."""

    text: str
    label: str
    rank0: bool | None


def limit_size(text: str) -> tuple[str, str | None]:
    """Keep the head and tail of a huge log: startup figures sit at the start, failures at the end."""
    if len(text) <= MAX_PARSE_BYTES:
        return text, None
    note = (
        f"log is {len(text):,} characters; only the first {HEAD_BYTES:,} and last {TAIL_BYTES:,} were "
        "read (startup figures are at the start, failures at the end)"
    )
    return text[:HEAD_BYTES] + "\n" + text[-TAIL_BYTES:], note


def _physical_lines(text: str) -> list[str]:
    """Split on newlines and carriage returns, dropping colour codes, Ray dedup suffixes and control bytes."""
    text = _ANSI.sub("", text)
    text = _RAY_REPEAT.sub("", text)
    text = _CONTROL.sub("", text)
    return re.split(r"\r\n|\n|\r", text)


def unwrap(lines: list[str]) -> list[str]:
    """Re-join hard-wrapped lines: a long line followed by one that cannot start a record is one line."""
    out: list[str] = []
    prev_len = 0
    for line in lines:
        if out and prev_len >= _WRAP_MIN_PREV and line and not _RECORD_START.match(line):
            out[-1] += line
        else:
            out.append(line)
        prev_len = len(line)
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


def logical_lines(text: str) -> list[Line]:
    """Turn raw log text into labelled logical lines."""
    return [Line(t, *_label_and_rank(t)) for t in unwrap(_physical_lines(text)) if t.strip()]


def message(line: str) -> str:
    """The message part of a line, without worker prefixes, level, timestamp and source tag."""
    return _MESSAGE_PREFIX.sub("", line, count=1).strip()
