"""Size limits of the log parsers, declared once.

Every pattern in ``vramplan.logs`` runs in time linear in its input (anchored, unambiguous, or a
literal search followed by a bounded match), and these limits bound the input: a pasted log costs
at most a fixed number of passes over ``MAX_PARSE_CHARS`` characters whatever it holds.
"""

from __future__ import annotations

#: Characters of a log that are parsed; longer logs keep their head and tail (see ``text.limit_size``).
MAX_PARSE_CHARS = 2_500_000
#: Startup figures sit at the start of a log ...
HEAD_CHARS = 1_500_000
#: ... and failures at its end.
TAIL_CHARS = 500_000
#: Physical lines parsed; a log of more keeps its first ``HEAD_LINES`` and last ``TAIL_LINES``
#: (real startup logs hold under 20,000 lines; a flood of tiny lines would cost a Python step each).
MAX_LINES = 100_000
HEAD_LINES = 75_000
TAIL_LINES = 25_000
#: A logical line is cut here: the longest real startup line (a vLLM config dump) is about 4 KB.
MAX_LINE_CHARS = 32_768
#: A launch command with its backslash continuations joined (real ones are under 2 KB).
MAX_COMMAND_CHARS = 16_384
#: Launch commands read from one log (real logs print one).
MAX_COMMANDS = 8
#: Text skipped between two parts of one figure (``Load weight end. ... avail mem=``).
MAX_GAP_CHARS = 400
#: Characters of one number; a longer run of digits is not a figure (and would cost a huge int).
MAX_NUMBER_CHARS = 40
#: A settings value longer than this is kept as text, never evaluated.
MAX_VALUE_CHARS = 4_096
#: Distinct error / warning messages kept, and the length of each.
MAX_MESSAGES = 50
MAX_MESSAGE_CHARS = 1_000
