"""The one place the service calls ``explain_log`` on a pasted log: no file of the server is touched.

A log names its model by whatever the engine was given: ``/models/Llama-3.1-8B``, SGLang's
``model_path=``, TGI's ``model_id:``, a llama.cpp ``.gguf`` file. The CLI reads those (they are the
user's own files); the server must not (issue 13: the answer revealed whether a path existed, its JSON
and tensor names). When the library's ``explain_log`` has a no-filesystem switch it is used; until
then every path-like setting is rewritten to its last component (so ``/models/Llama-3.1-8B`` is looked
up as the catalogue name ``Llama-3.1-8B``) before the library sees the text. Workers also run in an
empty directory, so a relative name has nothing to reach.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from vramplan.errors import InputError

#: Keyword names the library may give its no-filesystem switch (first found is used, with False).
NO_FILES_FLAGS = ("allow_paths", "allow_files", "allow_filesystem")
_FILE_SUFFIX = re.compile(r"\.(json|gguf|safetensors|bin|pt|pth|ggml)$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
#: What a path with no usable last component becomes: a name no catalogue or disk has.
NEUTRAL_NAME = "unnamed-model"


def explain_untrusted(text: str, gpu: str | None) -> dict[str, Any]:
    """``explain_log(text, gpu=gpu)`` with every path in the log treated as a name."""
    from vramplan.explain import explain_log

    params = inspect.signature(explain_log).parameters
    for flag in NO_FILES_FLAGS:
        if flag in params:
            return explain_log(text, gpu=gpu, **{flag: False})
    return explain_log(neutralise_paths(text), gpu=gpu)


def is_path_like(value: str) -> bool:
    """True for what a loader could open: absolute, home, relative, Windows or file-suffixed names."""
    v = value.strip().strip("\"'")
    return bool(
        v.startswith(("/", "~", ".", "\\"))
        or re.match(r"^[A-Za-z]:[\\/]", v)
        or "\\" in v
        or _FILE_SUFFIX.search(v)
        or (not _SAFE_NAME.match(v) and "/" in v)
    )


def as_name(value: str) -> str:
    """The last path component without a file suffix, when that is a plain name."""
    last = value.strip().strip("\"'").replace("\\", "/").rstrip("/").split("/")[-1]
    last = _FILE_SUFFIX.sub("", last)
    return last if _SAFE_NAME.match(last) and not last.startswith(".") else NEUTRAL_NAME


def _path_settings(text: str) -> list[str]:
    from vramplan.logs import parse_log

    try:
        settings = parse_log(text).settings or {}
    except Exception:  # unreadable logs are explain_log's to report
        return []
    found: list[str] = []
    for value in settings.values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and len(item.strip()) > 1 and is_path_like(item):
                found.append(item.strip())
    return found


def neutralise_paths(text: str) -> str:
    """``text`` with each path-like setting replaced by :func:`as_name` (refused if any remains)."""
    paths = _path_settings(text)
    if not paths:
        return text
    for path in sorted(set(paths), key=len, reverse=True):  # longest first: no partial overlaps
        text = text.replace(path, as_name(path))
    if _path_settings(text):
        raise InputError(
            "the log names its model by a path this server cannot treat as a name; replace the path "
            "by the model's catalogue name or Hub id, or run `vramplan explain` locally"
        )
    return text
