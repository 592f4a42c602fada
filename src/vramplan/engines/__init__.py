"""Engine-specific startup predictions (vLLM, SGLang, TGI, llama.cpp, transformers).

Each engine module exposes a ``predict_*`` function returning :class:`EnginePrediction`, and
``predict_from_settings(settings, gpu)`` used by ``vramplan explain``. Submodules are imported
lazily by their callers so ``import vramplan.engines`` stays cheap.
"""

from vramplan.engines.base import (
    EnginePrediction,
    VersionMatch,
    VersionTable,
    nearest_version,
    parse_version,
)

__all__ = ["EnginePrediction", "VersionMatch", "VersionTable", "nearest_version", "parse_version"]
