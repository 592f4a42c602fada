"""Explain an engine startup log: logged vs predicted figure by figure, with the likely cause of each gap.

Why: a user with a surprising log ("why only 36k KV tokens?") needs to see which term ate the memory
and what setting would give it back. We parse the log, resolve the model from its settings, run the
same engine prediction the `vramplan vllm` command uses with the recovered settings, and compare.
"""

from __future__ import annotations

from typing import Any

from vramplan.errors import FileFormatError, VramplanError

#: Figures compared, in the order the engines log them.
TERMS = (
    "weights_gib",
    "non_torch_gib",
    "activation_peak_gib",
    "cuda_graph_gib",
    "available_kv_cache_gib",
    "gpu_blocks",
    "kv_cache_tokens",
    "max_concurrency",
)
_SETTING_KEYS = (
    "model",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "dtype",
    "quantization",
    "kv_cache_dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "block_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "enforce_eager",
    "enable_prefix_caching",
    "kv_cache_memory_bytes",
    "cpu_offload_gb",
    "gpu_total_gib",
    "served_model_name",
)


#: Settings that name the model, per engine, in the order they are tried (lists are tried item by item).
_MODEL_KEYS = {
    "vllm": ("model", "served_model_name"),
    "sglang": ("model_path", "served_model_name", "model"),
    "tgi": ("model_id", "model"),
    "llama.cpp": ("model",),
}
#: The setting each engine's predictor reads the model from.
_PREDICTOR_MODEL_KEY = {
    "vllm": "model",
    "sglang": "model_path",
    "tgi": "model_id",
    "llama.cpp": "model",
}


def explain_log(
    text: str, *, gpu: str | None = None, allow_paths: bool = True, model: str | None = None
) -> dict[str, Any]:
    """Parse ``text`` (a startup log) once and compare what it logged with our prediction for its settings.

    ``allow_paths=False`` is the mode for text from someone else (a shared service): every path-like
    setting of the log (vLLM ``model``/``served_model_name``, SGLang ``model_path``, TGI ``model_id``,
    llama.cpp ``-m FILE.gguf``, tokenizer paths) is read as a NAME only. Nothing is opened or stat'ed;
    a path resolves only when its last component is a catalogue name; otherwise the answer keeps the
    logged figures and says to pass ``model``. ``model`` (a catalogue name) overrides the log's model.
    The CLI keeps ``allow_paths=True``: local config folders and .gguf files named by the log are read.
    Catalogue names only: the Hub is never contacted.
    """
    from vramplan.logs import parse_log

    if not text or not text.strip():
        raise FileFormatError(
            "the log is empty: pass a vLLM, SGLang, TGI or llama.cpp startup log (or - for stdin)"
        )
    try:
        parsed = parse_log(text)
    except VramplanError:
        raise
    except Exception as exc:
        raise FileFormatError(
            f"could not read the log ({type(exc).__name__}): pass an engine startup log"
        ) from None
    if not parsed.engine or (not parsed.logged and not parsed.settings and not parsed.errors):
        raise FileFormatError(
            "this does not look like a serving-engine startup log (no vLLM, SGLang, TGI or llama.cpp lines found): "
            "pass the log from the engine's start up to its first 'ready' line"
        )
    if allow_paths:
        return _explain(parsed, parsed.settings, gpu, model, None)
    from vramplan.model.load import names_only

    with names_only():
        settings, unidentified = _names_only_settings(parsed, model)
        return _explain(parsed, settings, gpu, None, unidentified)


def _names_only_settings(parsed: Any, override: str | None) -> tuple[dict[str, Any], str | None]:
    """The log's settings with every path-like value dropped and the model reduced to a catalogue name.

    Returns (settings, note); the note says why no model could be identified (None when one was).
    """
    engine = parsed.engine
    raw = [override] if override else _model_values(parsed.settings, engine)
    names = [_as_name(v) for v in raw]
    settings = {k: v for k, v in parsed.settings.items() if not _path_valued(v)}
    chosen = next((n for n in names if n and _known(n, engine)), None)
    if chosen is not None:
        settings[_PREDICTOR_MODEL_KEY[engine]] = chosen
        return settings, None
    if not raw:
        return settings, (
            "the log does not name the model; pass model=NAME (a catalogue name, see `vramplan models`) "
            "to predict; reporting the logged figures only"
        )
    shown = ", ".join(repr(str(v)[:100]) for v in raw[:3])
    return settings, (
        f"model {shown} could not be identified: paths in a pasted log are not read here, and no "
        "catalogue name matches its last path component; pass model=NAME (a catalogue name, see "
        "`vramplan models`) to predict, or run `vramplan explain` on the machine that holds the "
        "model; reporting the logged figures only"
    )


def _path_valued(value: Any) -> bool:
    """A setting that names a file or folder (a string, or a list holding one)."""
    from vramplan.model.load import looks_like_path

    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(v, str) and looks_like_path(v.strip("'\" ")) for v in items)


def _model_values(settings: dict[str, Any], engine: str) -> list[str]:
    """Every value the log gives for the model, in order (``served_model_name`` may be a list)."""
    out: list[str] = []
    for key in _MODEL_KEYS.get(engine, ()):
        value = settings.get(key)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and item.strip() and item not in out:
                out.append(item)
    return out


def _as_name(value: str) -> str:
    """A model reference read as a name: annotations and quotes cut, a path reduced to its last part."""
    name = value.split(" (")[0].strip().strip("'\"")
    if name.startswith(("/", ".", "~", "\\")) or name.count("/") > 1 or name.endswith(".gguf"):
        name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix(".gguf")


def _known(name: str, engine: str) -> bool:
    """Whether the engine's own resolver finds ``name`` (called inside ``names_only``: no file access)."""
    try:
        if engine == "llama.cpp":
            from vramplan.engines.llamacpp import _load

            _load(name, None)
        else:
            from vramplan.engines.vllm import resolve_model_name

            resolve_model_name(name)
    except VramplanError:
        return False
    return True


def _explain(
    parsed: Any,
    all_settings: dict[str, Any],
    gpu: str | None,
    override: str | None,
    unidentified: str | None,
) -> dict[str, Any]:
    """Compare one parsed log with the prediction for ``all_settings`` (the log's, possibly reduced)."""
    all_settings = dict(all_settings)
    if override:
        all_settings[_PREDICTOR_MODEL_KEY.get(parsed.engine, "model")] = override
    elif parsed.engine == "vllm" and unidentified is None:
        all_settings = _vllm_model_choice(all_settings)
    settings = {k: v for k, v in all_settings.items() if k in _SETTING_KEYS}
    out: dict[str, Any] = {
        "engine": parsed.engine,
        "engine_version": parsed.engine_version,
        "settings": settings,
        "logged": dict(parsed.logged),
        "log_errors": list(parsed.errors),
        "predicted": None,
        "terms": {},
        "notes": [],
    }
    out["notes"].extend(_explain_errors(parsed.logged, parsed.errors, settings))
    pred: Any = None
    note: str | None = unidentified
    if unidentified is not None:
        pass
    elif parsed.engine == "vllm":
        pred, note = _predict_vllm(parsed, settings, gpu)
    else:
        # SGLang's F0 (free memory before loading) is an input of its own formula: pass the logged value on
        inputs = {
            **all_settings,
            **{k: v for k, v in parsed.logged.items() if k == "avail_mem_before_load_gb"},
        }
        pred, note = _predict_other(parsed.engine, inputs, gpu)
    if note:
        out["notes"].append(note)
    if pred is None:
        out["terms"] = {
            t: _term(t, parsed.logged.get(t), None, None)
            for t in TERMS
            if parsed.logged.get(t) is not None
        }
        return out
    p = pred.to_dict()
    out["predicted"] = p
    out["assumptions"] = p.get("assumptions", [])
    for t in TERMS:
        logged, predicted = parsed.logged.get(t), p.get(t)
        if logged is None and predicted is None:
            continue
        out["terms"][t] = _term(t, logged, predicted, p)
    if parsed.errors:
        out["notes"].append("the engine did not start: " + parsed.errors[0][:300])
        if p.get("fixes"):
            out["notes"].append("changes that make it start: " + "; ".join(p["fixes"]))
    return out


def _vllm_model_choice(settings: dict[str, Any]) -> dict[str, Any]:
    """vLLM: the first of ``model`` and the served names that resolves (the CLI reads local paths too)."""
    values = _model_values(settings, "vllm")
    if len(values) <= 1 and not isinstance(settings.get("served_model_name"), list | tuple):
        return settings
    chosen = next((v for v in values if _known(v, "vllm")), values[0] if values else None)
    out = dict(settings)
    if chosen is not None:
        out["model"] = chosen
    return out


def _explain_errors(
    logged: dict[str, Any], errors: list[str], settings: dict[str, Any]
) -> list[str]:
    """Read the startup error's own numbers into a cause and a fix (works without the model)."""
    out: list[str] = []
    need, have = logged.get("kv_cache_needed_gib"), logged.get("kv_cache_available_at_error_gib")
    fit = logged.get("estimated_max_model_len")
    if need is not None and have is not None:
        text = (
            f"vLLM refused to start: one request of max_model_len needs {need} GiB of KV cache but only {have} GiB "
            "is left after weights, activation peak and non-torch memory"
        )
        if fit:
            text += f"; lower --max-model-len to {fit} (or less), raise --gpu-memory-utilization, use --kv-cache-dtype fp8 or more GPUs"
        out.append(text)
    elif logged.get("kv_capacity_tokens_reported") and settings.get("max_model_len"):
        out.append(
            f"vLLM refused to start: max_model_len {settings['max_model_len']} exceeds the KV capacity of "
            f"{logged['kv_capacity_tokens_reported']} tokens; lower --max-model-len to "
            f"{logged['kv_capacity_tokens_reported']} or free memory for the cache"
        )
    elif any("No available memory for the cache blocks" in e for e in errors):
        out.append(
            "vLLM refused to start: weights + activation peak + non-torch memory exceed utilization x total; "
            "raise --gpu-memory-utilization, lower --max-num-batched-tokens/--max-num-seqs, quantize or add GPUs"
        )
    return out


def _predict_vllm(parsed: Any, settings: dict[str, Any], gpu: str | None) -> tuple[Any, str | None]:
    from vramplan.engines.vllm import predict_vllm, resolve_model_name

    model = settings.get("model") or settings.get("served_model_name")
    if not model:
        return None, "the log does not name the model; reporting the logged figures only"
    try:
        spec, quant, note = resolve_model_name(str(model))
    except VramplanError:
        return None, (
            f"model {model} is not in the catalogue; reporting the logged figures only "
            "(add its config.json folder with `vramplan vllm PATH ...` to predict)"
        )
    s = dict(settings)
    if parsed.vllm_generation:
        s["vllm_generation"] = parsed.vllm_generation
    if gpu is None and not s.get("gpu_total_gib"):
        return None, "the log does not show the GPU's total memory; pass --gpu to predict"
    try:
        pred = predict_vllm(s, gpu=gpu, engine_version=parsed.engine_version, spec=spec)
    except VramplanError as exc:
        return None, f"could not predict with the logged settings: {exc}"
    # keep the name-implied quantization the resolver found (e.g. RedHatAI -FP8-dynamic)
    if quant and not s.get("quantization"):
        s["quantization"] = quant
        pred = predict_vllm(s, gpu=gpu, engine_version=parsed.engine_version, spec=spec)
    return pred, note


def _predict_other(
    engine: str, settings: dict[str, Any], gpu: str | None
) -> tuple[Any, str | None]:
    import importlib

    name = engine.replace(".", "").replace("-", "")
    try:
        mod = importlib.import_module(f"vramplan.engines.{name}")
        fn = mod.predict_from_settings
    except (ImportError, AttributeError):
        return None, f"no {engine} predictor is available yet; reporting the logged figures only"
    try:
        return fn(settings, gpu), None
    except VramplanError as exc:
        return None, f"could not predict the {engine} figures: {exc}"
    except Exception as exc:
        return (
            None,
            f"the {engine} predictor failed ({type(exc).__name__}: {exc}); reporting the logged figures only",
        )


def _term(name: str, logged: Any, predicted: Any, p: dict[str, Any] | None) -> dict[str, Any]:
    diff = None
    rel = None
    if isinstance(logged, (int, float)) and isinstance(predicted, (int, float)):
        diff = round(predicted - logged, 4)
        rel = round((predicted - logged) / abs(logged), 4) if logged else None
    return {
        "logged": logged,
        "predicted": predicted,
        "difference": diff,
        "relative_difference": rel,
        "likely_cause": _cause(name, logged, predicted, rel, p) if p else None,
    }


def _cause(name: str, logged: Any, predicted: Any, rel: float | None, p: dict[str, Any]) -> str:
    s = p.get("settings", {})
    x = p.get("extra", {})
    close = rel is not None and abs(rel) <= 0.05
    if name == "weights_gib":
        base = f"weights of {s.get('model')} in {s.get('quantization') or s.get('dtype')} on one of TP {s.get('tensor_parallel_size')} x PP {s.get('pipeline_parallel_size')} GPUs"
        return (
            base
            if close or rel is None
            else base
            + "; a gap means a different checkpoint layout (vision tower, padding, quantized tensors)"
        )
    if name == "activation_peak_gib":
        seqs, toks = s.get("max_num_seqs"), s.get("max_num_batched_tokens")
        if x.get("activation_sampler_gib", 0) >= x.get("activation_forward_gib", 0):
            value = logged if isinstance(logged, (int, float)) else predicted
            gain = (
                max(0.0, x["activation_sampler_gib"] * (1 - 256 / seqs))
                if seqs and seqs > 256
                else 0.0
            )
            text = (
                f"activation peak {value:.2f} GiB: the dummy sampler's fp32 logits over min(max_num_seqs={seqs}, "
                f"max_num_batched_tokens={toks}) rows of the vocabulary"
            )
            if gain > 0.05:
                text += f"; set --max-num-seqs 256 to get ~{gain:.1f} GiB more KV"
            return text
        return (
            f"one forward pass over max_num_batched_tokens={toks} tokens (MLP/MoE temporaries); "
            "lower --max-num-batched-tokens to shrink it"
        )
    if name == "non_torch_gib":
        if s.get("tensor_parallel_size", 1) > 1:
            return "NCCL / custom all-reduce buffers of tensor parallelism plus cuBLAS workspaces"
        return "cuBLAS / attention workspaces outside torch's allocator"
    if name == "cuda_graph_gib":
        if s.get("enforce_eager"):
            return "--enforce-eager: no CUDA graphs"
        return (
            "CUDA graphs captured after the KV cache exists (outside the budget before v0.21; "
            "the v0.21+ estimate is subtracted from it); --enforce-eager removes them at a speed cost"
        )
    if name == "available_kv_cache_gib":
        text = (
            f"util {s.get('gpu_memory_utilization')} x {s.get('gpu_total_gib')} GiB minus weights, activation "
            "peak and non-torch memory"
        )
        if not close and rel is not None:
            text += "; the gap comes from the terms above"
        return text
    if name in ("gpu_blocks", "kv_cache_tokens", "max_concurrency"):
        text = f"available KV / page size (block {s.get('block_size')}, KV {s.get('kv_cache_dtype')}, max_model_len {s.get('max_model_len')})"
        if x.get("kv_groups", 1) > 1:
            text += (
                f"; {x['kv_groups']} KV cache groups (sliding-window layers hold only their window)"
            )
        return text
    return ""


def render_text(result: dict[str, Any]) -> str:
    """Plain-text table of the comparison for the terminal."""
    lines = [f"engine: {result['engine']} {result.get('engine_version') or '(version not shown)'}"]
    s = result.get("settings", {})
    if s.get("model"):
        lines.append(f"model: {s['model']}")
    lines.append(f"{'figure':<24}{'logged':>14}{'predicted':>14}{'diff':>10}  likely cause")
    for name, t in result["terms"].items():

        def f(v: Any) -> str:
            if v is None:
                return "-"
            return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}"

        rel = t.get("relative_difference")
        lines.append(
            f"{name:<24}{f(t['logged']):>14}{f(t['predicted']):>14}"
            f"{('-' if rel is None else f'{rel * 100:+.1f}%'):>10}  {t.get('likely_cause') or ''}"
        )
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)
