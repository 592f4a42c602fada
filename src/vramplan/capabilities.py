"""What each GPU generation can run: weight formats and engine versions by CUDA compute capability.

One table, read by ``estimate`` (fits: false with the reason), by the engine models (starts: false with
the engine's own error text) and by the planner (it never proposes a format the GPU cannot run). The
key is the compute capability that ``data/gpus.json`` rows carry (``"8.9"``); GPUs without one (AMD,
user-sized GPUs) are not checked, since nothing here is known about them.

Sources (the engine code that refuses, so the thresholds are the engines' own):

* vLLM ``QuantizationConfig.get_min_capability()`` per method (vllm/model_executor/layers/quantization/
  fp8.py 80, awq.py 75, awq_marlin.py / gptq_marlin.py 80, gptq.py 60, bitsandbytes.py 70, gguf.py 60,
  mxfp4.py 80, modelopt.py NVFP4 80 with Marlin), checked by ``ModelConfig._verify_quantization`` with the
  message in :data:`VLLM_QUANT_ERROR`.
* FP8 below 8.9: vLLM fp8.py (and compressed-tensors ``CompressedTensorsW8A16Fp8``) loads FP8 weights
  for the weight-only FP8 Marlin kernel on 8.0-8.8 ("Your GPU does not have native support for FP8
  computation but FP8 quantization is being used. Weight-only FP8 compression will be used leveraging
  the Marlin kernel."); NVFP4 likewise below 10.0 (modelopt.py, Marlin FP4).
* bfloat16: vLLM ``CudaPlatform.check_if_supports_dtype`` (message :data:`VLLM_BF16_ERROR`); with
  ``--dtype auto`` vLLM, SGLang and TGI pick float16 instead, so only an explicit bf16 request fails.
* transformers ``FineGrainedFP8HfQuantizer.validate_environment``: FP8 needs 8.9 (no Marlin path).
* vLLM V1 needs 8.0: ``_is_v1_supported_oracle`` ("Compute Capability < 8.0 is not supported by the V1
  Engine") fell back to V0 until V0 was removed in 0.11; Volta and Turing need vLLM 0.10 or older.
* SGLang forks vLLM's quantization configs (sglang/srt/layers/quantization/*, same minimums, same
  ``_verify_quantization`` text); TGI runs FP8 through Marlin on Ampere (text-generation-inference
  server/text_generation_server/layers/fp8.py) and AWQ/GPTQ through Marlin/exllama kernels.
* llama.cpp dequantizes every ggml type in its CUDA kernels: nothing here limits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from vramplan.hardware import GPU
from vramplan.precision import Precision

#: A CUDA compute capability, (major, minor).
CC = tuple[int, int]

VLLM_QUANT_ERROR = (
    "The quantization method {method} is not supported for the current GPU. "
    "Minimum capability: {minimum}. Current capability: {current}."
)
VLLM_BF16_ERROR = (
    "Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {gpu} GPU has "
    "compute capability {current}. You can use float16 instead by explicitly setting the `dtype` flag "
    "in CLI, for example: --dtype=half."
)
HF_FP8_ERROR = (
    "FP8 quantized models is only supported on GPUs with compute capability >= 8.9 (e.g 4090/H100), "
    "actual = `{current}`"
)
VLLM_V1_ERROR = (
    "Compute Capability < 8.0 is not supported by the V1 Engine, and vLLM {version} has no V0 engine: "
    "use vLLM 0.10 or older on this GPU"
)


@dataclass(frozen=True)
class Requirement:
    """The lowest compute capability at which an engine runs a format, natively or through a fallback."""

    #: Compute capability of the native kernel (fp8 tensor cores on 8.9).
    native: CC
    #: Lower capability served by a weight-only kernel (Marlin), or None when there is none.
    fallback: CC | None = None
    fallback_kernel: str = ""

    @property
    def minimum(self) -> CC:
        return self.fallback or self.native


_MARLIN = "weight-only Marlin"

#: feature -> engine -> requirement. "*" is every engine not listed.
REQUIREMENTS: Mapping[str, Mapping[str, Requirement]] = {
    "bf16": {"*": Requirement((8, 0))},
    "fp8": {
        "vllm": Requirement((8, 9), (8, 0), _MARLIN),
        "sglang": Requirement((8, 9), (8, 0), _MARLIN),
        "tgi": Requirement((8, 9), (8, 0), _MARLIN),
        "hf": Requirement((8, 9)),
        "*": Requirement((8, 9), (8, 0), _MARLIN),
    },
    "nvfp4": {
        "vllm": Requirement((10, 0), (8, 0), "weight-only Marlin FP4"),
        "*": Requirement((10, 0)),
    },
    "mxfp4": {"*": Requirement((8, 0))},
    "awq": {"*": Requirement((7, 5))},
    "gptq": {"*": Requirement((6, 0))},
    "marlin_wna16": {"*": Requirement((8, 0))},
    "int8_w8a8": {"*": Requirement((7, 5))},
    "bitsandbytes": {"*": Requirement((7, 0))},
    "gguf": {"*": Requirement((6, 0))},
}

#: Engines whose kernels the table describes (llama.cpp dequantizes everything: never limited here).
CHECKED_ENGINES = ("vllm", "sglang", "tgi", "hf", "estimate")

#: vLLM releases from this one on have only the V1 engine, which needs compute capability 8.0.
VLLM_V1_ONLY_FROM = (0, 11)
VLLM_V1_MIN_CC: CC = (8, 0)


def compute_capability(gpu: GPU | None) -> CC | None:
    """``"8.9"`` -> (8, 9); None for GPUs without one (AMD, user-sized)."""
    text = gpu.compute_capability if gpu is not None else None
    if not text:
        return None
    major, _, minor = str(text).partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return None


def compute_capability_number(gpu: GPU | None) -> float | None:
    """``"12.1"`` -> 12.1, the form engine sources compare against (vLLM's ``cc == 9.0``)."""
    cc = compute_capability(gpu)
    return None if cc is None else float(f"{cc[0]}.{cc[1]}")


def features(precision: Precision, bf16_requested: bool = False) -> tuple[str, ...]:
    """The table's features a precision uses (bf16 only when asked for explicitly, see module doc)."""
    out: list[str] = []
    if bf16_requested and precision.compute_dtype == "bfloat16":
        out.append("bf16")
    if precision.layout is not None:  # per-tensor ggml types (a .gguf file or a llama.cpp recipe)
        return (*out, "gguf")
    scheme = precision.scheme.name.lower() if precision.scheme else ""
    if not scheme:
        return tuple(out)
    if scheme.startswith("gguf:"):
        out.append("gguf")
    elif scheme.startswith("nvfp4") or "modelopt_fp4" in scheme:
        out.append("nvfp4")
    elif scheme.startswith("mxfp4"):
        out.append("mxfp4")
    elif scheme.startswith(("fp8", "w8a8")):
        out.append("fp8")
    elif scheme.startswith("awq"):
        out.append("awq")
    elif scheme.startswith("gptq"):
        out.append("gptq")
    elif scheme.startswith(("w4a16", "w8a16")):
        out.append("marlin_wna16")
    elif scheme.startswith(("nf4", "bnb")):
        out.append("bitsandbytes")
    return tuple(out)


def requirement(feature: str, engine: str) -> Requirement:
    rows = REQUIREMENTS[feature]
    return rows.get(engine) or rows["*"]


@dataclass(frozen=True)
class Refusal:
    """Why a GPU cannot run something: vramplan's one-line reason and the engine's own error text."""

    feature: str
    reason: str
    engine_error: str


def _cc_text(cc: CC) -> str:
    return f"{cc[0]}.{cc[1]}"


@lru_cache(maxsize=1024)
def refusals(
    gpu: GPU | None, precision: Precision, engine: str = "estimate", *, bf16_requested: bool = False
) -> tuple[Refusal, ...]:
    """Every feature of ``precision`` this GPU cannot run under ``engine`` (empty when it can)."""
    cc = compute_capability(gpu)
    if cc is None or gpu is None or engine not in CHECKED_ENGINES:
        return ()
    out: list[Refusal] = []
    for feature in features(precision, bf16_requested):
        req = requirement(feature, engine)
        if cc >= req.minimum:
            continue
        need = _cc_text(req.native) + (
            f" ({_cc_text(req.fallback)} with {req.fallback_kernel})" if req.fallback else ""
        )
        reason = (
            f"{gpu.name} (compute capability {_cc_text(cc)}) cannot run {precision.label} "
            f"{'weights' if feature != 'bf16' else 'compute'}: {feature} needs compute capability {need}"
        )
        if feature == "bf16":
            error = VLLM_BF16_ERROR.format(gpu=gpu.name, current=_cc_text(cc))
        elif engine == "hf" and feature == "fp8":
            error = HF_FP8_ERROR.format(current=_cc_text(cc))
        else:
            error = VLLM_QUANT_ERROR.format(
                method=precision.label,
                minimum=req.minimum[0] * 10 + req.minimum[1],
                current=cc[0] * 10 + cc[1],
            )
        out.append(Refusal(feature, reason, error))
    return tuple(out)


@lru_cache(maxsize=1024)
def fallback_notes(
    gpu: GPU | None, precision: Precision, engine: str = "estimate"
) -> tuple[str, ...]:
    """Formats that run, but through a weight-only fallback kernel on this GPU (said as an assumption)."""
    cc = compute_capability(gpu)
    if cc is None or gpu is None or engine not in CHECKED_ENGINES:
        return ()
    notes = []
    for feature in features(precision):
        req = requirement(feature, engine)
        if req.fallback and req.fallback <= cc < req.native:
            notes.append(
                f"{gpu.name} (compute capability {_cc_text(cc)}) has no native {feature}: "
                f"{precision.label} weights run through the {req.fallback_kernel} kernel"
            )
    return tuple(notes)


def vllm_version_error(gpu: GPU | None, version: tuple[int, ...]) -> str | None:
    """The refusal of a V1-only vLLM release on a GPU below compute capability 8.0, else None."""
    cc = compute_capability(gpu)
    if cc is None or cc >= VLLM_V1_MIN_CC or version < VLLM_V1_ONLY_FROM:
        return None
    return VLLM_V1_ERROR.format(version=".".join(str(p) for p in version))
