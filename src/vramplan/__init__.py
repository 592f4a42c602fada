"""vramplan: GPU memory, GPU counts, latency and cost for serving and fine-tuning LLMs.

The public surface is small; everything else lives in modules users need not import. Names are
loaded on first use so that `import vramplan` (and the CLI) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Breakdown": "vramplan.memory.breakdown",
    "DoesNotFitError": "vramplan.errors",
    "GPU": "vramplan.hardware",
    "InputError": "vramplan.errors",
    "ModelSpec": "vramplan.model.spec",
    "VramplanError": "vramplan.errors",
    "count_params": "vramplan.model.params",
    "estimate": "vramplan.estimator",
    "estimate_training": "vramplan.training",
    "explain_log": "vramplan.explain",
    "list_gpus": "vramplan.hardware",
    "load_model": "vramplan.model.load",
    "parse_log": "vramplan.logs",
    "plan": "vramplan.planner",
    "predict_vllm": "vramplan.engines.vllm",
    "resolve_gpu": "vramplan.hardware",
    "run_simulation": "vramplan.simulate",
    "spec_from_config": "vramplan.model.hf_config",
}

__all__ = sorted([*_EXPORTS, "__version__"])

# `estimate` is both a submodule and the main function. Importing it here binds the package attribute
# to the function for good (the import system sets the submodule attribute only on first load).
from vramplan.estimator import estimate  # noqa: E402, F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vramplan' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
