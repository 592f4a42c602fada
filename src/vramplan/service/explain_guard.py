"""The one place the service calls ``explain_log`` on a pasted log: no file of the server is touched.

A log names its model by whatever the engine was given: ``/models/Llama-3.1-8B``, SGLang's
``model_path=``, TGI's ``model_id:``, a llama.cpp ``.gguf`` file. The CLI reads those (they are the
user's own files); the server must not (issue 13: the answer revealed whether a path existed, its JSON
and tensor names). ``explain_log(..., allow_paths=False)`` reads every such setting as a name only
(``vramplan.model.load.names_only``); workers also run in an empty directory.
"""

from __future__ import annotations

from typing import Any


def explain_untrusted(text: str, gpu: str | None) -> dict[str, Any]:
    """``explain_log(text, gpu=gpu)`` with every path in the log treated as a name (never opened)."""
    from vramplan.explain import explain_log

    return explain_log(text, gpu=gpu, allow_paths=False)
