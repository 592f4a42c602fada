"""Startup-log parsers for ``vramplan explain``: vLLM (V0/V1), SGLang, TGI and llama.cpp."""

from vramplan.logs.parse import ParsedLog, parse_log, parse_log_file

__all__ = ["ParsedLog", "parse_log", "parse_log_file"]
