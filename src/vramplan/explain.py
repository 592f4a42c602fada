"""Explain an engine startup log: logged vs predicted figure by figure, with the likely cause of each gap.

Why: a user with a surprising log ("why only 36k KV tokens?") needs to see which term ate the memory
and what setting would give it back. We parse the log, resolve the model from its settings, run the
same engine prediction the `vramplan vllm` command uses with the recovered settings, and compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from vramplan.errors import FileFormatError, VramplanError
from vramplan.units import MiB

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
    "usage_context",
)


#: Settings that name the model, per engine, in the order they are tried (lists are tried item by item).
_MODEL_KEYS = {
    "vllm": ("model", "served_model_name"),
    "sglang": ("model_path", "served_model_name", "model"),
    "tgi": ("model_id", "model"),
    "llama.cpp": ("model",),
}


def explain_log(
    text: str,
    *,
    gpu: str | None = None,
    gpu_memory: str | None = None,
    model: str | None = None,
    engine_version: str | None = None,
    flags: Sequence[str] = (),
    allow_paths: bool = True,
) -> dict[str, Any]:
    """Parse ``text`` (a startup log) once and compare what it logged with our prediction for its settings.

    ``model``, ``engine_version`` and ``flags`` (the engine's own launch flags, e.g.
    ``["--max-model-len", "8192"]``) fill in what the log does not say, and win over what it says.

    ``allow_paths=False`` is the mode for text from someone else (a shared service): every path-like
    setting of the log (vLLM ``model``/``served_model_name``, SGLang ``model_path``, TGI ``model_id``,
    llama.cpp ``-m FILE.gguf``, tokenizer paths) is read as a NAME only. Nothing is opened or stat'ed;
    a path resolves only when its last component is a catalogue name; otherwise the answer keeps the
    logged figures and says to pass ``model``. The CLI keeps ``allow_paths=True``: local config
    folders and .gguf files named by the log are read. The Hub is never contacted in either mode.
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
    # A log names figures or fails with an error; a page that only quotes a launch command does neither.
    if not parsed.engine or (not parsed.logged and not parsed.errors):
        raise FileFormatError(
            "this does not look like a serving-engine startup log (no vLLM, SGLang, TGI or llama.cpp "
            "memory lines found): pass the log from the engine's start up to its first 'ready' line"
        )
    given, ignored = _given_settings(parsed.engine, model, flags)
    engine_name = ENGINE_NAMES.get(parsed.engine, parsed.engine)
    notes: list[str] = []
    replaced = [
        f"{k} {parsed.settings[k]} -> {v}"
        for k, v in given.items()
        if parsed.settings.get(k) is not None and parsed.settings[k] != v
    ]
    if replaced:
        notes.append(
            "settings given on the command line replace the logged ones: " + "; ".join(replaced)
        )
    if ignored:
        notes.append(f"flags not read for {engine_name} (not modelled): " + " ".join(ignored))
    parsed = replace(
        parsed,
        settings={**parsed.settings, **given},
        engine_version=engine_version or parsed.engine_version,
    )
    if allow_paths:
        return _explain(parsed, parsed.settings, gpu, gpu_memory, model, None, notes)
    from vramplan.model.load import names_only

    with names_only():
        names, unidentified = _names_only_settings(parsed, model)
        return _explain(parsed, names, gpu, gpu_memory, None, unidentified, notes)


def _names_only_settings(parsed: Any, override: str | None) -> tuple[dict[str, Any], str | None]:
    """The log's settings with every path-like value dropped and the model reduced to a catalogue name.

    Returns (settings, note); the note says why no model could be identified (None when one was).
    """
    engine = parsed.engine
    raw = [override] if override else _model_values(parsed.settings, engine)
    names = [_as_name(v) for v in raw]
    settings = {k: v for k, v in parsed.settings.items() if not _path_valued(v)}
    chosen = next((n for n in names if n and _resolves(n, engine)), None)
    if chosen is not None:
        settings[_MODEL_KEY[engine]] = chosen
        return settings, None
    if not raw:
        return (
            settings,
            None,
        )  # nothing to read: the prediction says the model is missing, as the CLI does
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


def _resolves(name: str, engine: str) -> bool:
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
    gpu_memory: str | None,
    override: str | None,
    unidentified: str | None,
    notes: list[str],
) -> dict[str, Any]:
    """Compare one parsed log with the prediction for ``all_settings`` (the log's, possibly reduced)."""
    all_settings = dict(all_settings)
    if override:
        all_settings[_MODEL_KEY.get(parsed.engine, "model")] = override
    elif parsed.engine == "vllm" and unidentified is None:
        all_settings = _vllm_model_choice(all_settings)
    keys = _setting_keys(parsed.engine)
    settings = {k: v for k, v in all_settings.items() if k in keys and v is not None}
    out: dict[str, Any] = {
        "engine": parsed.engine,
        "engine_version": parsed.engine_version,
        "settings": settings,
        "logged": dict(parsed.logged),
        "log_errors": list(parsed.errors),
        "predicted": None,
        "terms": {},
        "notes": notes,
    }
    out["notes"].extend(_explain_errors(parsed.logged, parsed.errors, settings))
    pred: Any = None
    note: str | None = unidentified
    if unidentified is not None:
        pass
    elif parsed.engine == "vllm":
        pred, note = _predict_vllm(parsed, settings, gpu, gpu_memory)
    else:
        # SGLang's F0 (free memory before loading) is an input of its own formula: pass the logged value on
        inputs = {
            **all_settings,
            **{k: v for k, v in parsed.logged.items() if k == "avail_mem_before_load_gb"},
        }
        pred, note = _predict_other(parsed.engine, inputs, gpu, gpu_memory, parsed.engine_version)
    if note:
        out["notes"].append(note)
    if pred is None:
        out["terms"] = {
            t: _term(parsed.engine, t, v, None, None)
            for t, v in parsed.logged.items()
            if _comparable(t, v)
        }
        return out
    p = pred.to_dict()
    out["predicted"] = p
    out["assumptions"] = p.get("assumptions", [])
    for t in TERMS:
        logged, predicted = parsed.logged.get(t), p.get(t)
        if logged is None and predicted is None:
            continue
        out["terms"][t] = _term(parsed.engine, t, logged, predicted, p)
    # engine-specific figures the log printed and the prediction also has (llama.cpp buffers, SGLang K/V,
    # hybrid state figures)
    for t, logged in parsed.logged.items():
        if t in out["terms"] or not _comparable(t, logged):
            continue
        predicted = predicted_figure(t, p, settings)
        if _comparable(t, predicted):
            out["terms"][t] = _term(parsed.engine, t, logged, predicted, p)
    if parsed.errors:
        out["notes"].append(
            f"{ENGINE_NAMES.get(parsed.engine, parsed.engine)} did not start: "
            + parsed.errors[0][:300]
        )
        if p.get("fixes"):
            from vramplan.render import render_fix

            out["notes"].append(
                "changes that make it start: " + "; ".join(render_fix(f) for f in p["fixes"])
            )
    return out


#: Engine names as their users write them.
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "tgi": "TGI", "llama.cpp": "llama.cpp"}
#: How to name the model on the explain command line, per engine (for the notes).
_MODEL_HINT = {
    "vllm": "--model NAME (catalogue name, config.json folder or Hub id)",
    "sglang": "--model NAME (catalogue name, config.json folder or Hub id)",
    "tgi": "--model NAME (catalogue name, config.json folder or Hub id)",
    "llama.cpp": "--model FILE.gguf (or a catalogue name with a type, e.g. Llama-3-8B-Q4_K_M)",
}
#: The settings key each engine keeps the model under.
_MODEL_KEY = {"vllm": "model", "sglang": "model_path", "tgi": "model_id", "llama.cpp": "model"}


def _setting_keys(engine: str) -> set[str]:
    """The settings an engine's prediction reads (its own flag names), shown in the result."""
    if engine == "vllm":
        return set(_SETTING_KEYS)
    import importlib

    try:
        mod = importlib.import_module(f"vramplan.engines.{engine.replace('.', '')}")
    except ImportError:
        return set()
    keys = set(getattr(mod, "FLAGS", {}).values()) | set(getattr(mod, "BOOL_FLAGS", {}).values())
    return keys | {"served_model_name", "gpu_name"}


def predicted_figure(name: str, p: dict[str, Any], settings: dict[str, Any]) -> Any:
    """The predicted value of a logged figure (``p`` is ``EnginePrediction.to_dict()``).

    ``TERMS`` are fields of the prediction; most others are in its ``extra`` under the log's name; a
    few are another figure seen from the log's side: vLLM's "exceeds available Mamba cache blocks (N)"
    quotes the pool's block count, the hybrid block-size raise is the block size the prediction
    resolved, the "estimated maximum model length" of a failed start is the max-model-len fix, and
    llama.cpp's recurrent total is the per-sequence state times the sequences.
    """
    if name in TERMS:
        return p.get(name)
    extra = p.get("extra") or {}
    if name in extra:
        return extra[name]
    if name == "kv_capacity_tokens_reported":
        fixes = [f for f in p.get("fixes") or [] if isinstance(f, dict)]
        return next((f["value"] for f in fixes if f.get("field") == "max_model_len"), None)
    if name == "mamba_cache_blocks":
        return p.get("gpu_blocks")
    if name == "attention_block_size_tokens":
        return (p.get("settings") or {}).get("block_size")
    if name == "rs_total_mib" and p.get("state_bytes_per_sequence") is not None:
        seqs = (p.get("settings") or {}).get("n_parallel") or settings.get("n_seq_max")
        if isinstance(seqs, int):
            return round(p["state_bytes_per_sequence"] * seqs / MiB, 2)
    return None


def _comparable(key: str, value: Any) -> bool:
    """Figures with a unit in their name (or a count term) and a number as value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return key in TERMS or key.endswith(("_gib", "_gb", "_mib", "_tokens", "_blocks"))


def _given_settings(
    engine: str, model: str | None, flags: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """The engine's own launch flags given to explain -> (settings under the engine's names, ignored)."""
    settings: dict[str, Any] = {}
    ignored: list[str] = []
    argv = list(flags)
    if argv:
        if engine == "vllm":
            from vramplan.engines.vllm_args import parse_vllm_args

            parsed = parse_vllm_args(argv)
            settings, ignored = dict(parsed.settings), list(parsed.ignored)
        elif engine == "sglang":
            from vramplan.engines import sglang

            settings, ignored = sglang.parse_argv(
                argv, sglang.FLAGS, sglang.BOOL_FLAGS, sglang._INT_KEYS
            )
        elif engine == "tgi":
            from vramplan.engines import sglang, tgi

            settings, ignored = sglang.parse_argv(
                argv, tgi.FLAGS, {}, tgi._INT, {"cuda_memory_fraction"}
            )
        elif engine == "llama.cpp":
            from vramplan.engines.llamacpp import parse_llamacpp_argv

            settings, ignored = parse_llamacpp_argv(argv)
    if model:
        settings[_MODEL_KEY.get(engine, "model")] = model
    return settings, ignored


def _vllm_model_choice(settings: dict[str, Any]) -> dict[str, Any]:
    """vLLM: the first of ``model`` and the served names that resolves (the CLI reads local paths too)."""
    values = _model_values(settings, "vllm")
    if len(values) <= 1 and not isinstance(settings.get("served_model_name"), list | tuple):
        return settings
    chosen = next((v for v in values if _resolves(v, "vllm")), values[0] if values else None)
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
    elif logged.get("mamba_cache_blocks") is not None:
        blocks = logged["mamba_cache_blocks"]
        seqs = settings.get("max_num_seqs")
        asked = f"max_num_seqs {seqs}" if seqs is not None else "max_num_seqs"
        out.append(
            f"vLLM refused to start: {asked} exceeds the {blocks} KV-cache blocks, and every running "
            "sequence of a hybrid (Mamba / gated DeltaNet) model holds one block for its state while "
            f"full CUDA graphs are captured; set --max-num-seqs {blocks} (or less), lower "
            "--max-model-len or raise --gpu-memory-utilization"
        )
    elif any("No available memory for the cache blocks" in e for e in errors):
        out.append(
            "vLLM refused to start: weights + activation peak + non-torch memory exceed utilization x total; "
            "raise --gpu-memory-utilization, lower --max-num-batched-tokens/--max-num-seqs, quantize or add GPUs"
        )
    return out


def _predict_vllm(
    parsed: Any, settings: dict[str, Any], gpu: str | None, gpu_memory: str | None = None
) -> tuple[Any, str | None]:
    from vramplan.engines.vllm import predict_vllm, resolve_model_name

    model = settings.get("model") or settings.get("served_model_name")
    if not model:
        return None, (
            f"the log does not name the model; pass {_MODEL_HINT['vllm']} to predict "
            "(reporting the logged figures only)"
        )
    try:
        spec, quant, note = resolve_model_name(str(model))
    except VramplanError:
        return None, (
            f"model {model} is not in the catalogue; pass {_MODEL_HINT['vllm']} to predict "
            "(reporting the logged figures only)"
        )
    s = dict(settings)
    if parsed.vllm_generation:
        s["vllm_generation"] = parsed.vllm_generation
    if gpu is None and gpu_memory is None and not s.get("gpu_total_gib"):
        return None, (
            "the log does not show the GPU's total memory; pass --gpu NAME or --gpu-memory SIZE "
            "to predict"
        )
    # "offline" when the log pasted an LLM(...) call: the LLM class has its own batch defaults
    kw: dict[str, Any] = {
        "gpu": gpu,
        "gpu_memory": gpu_memory,
        "usage_context": s.pop("usage_context", None) or "api_server",
    }
    try:
        pred = predict_vllm(s, engine_version=parsed.engine_version, spec=spec, **kw)
    except VramplanError as exc:
        return None, f"could not predict with the logged settings: {exc}"
    # keep the name-implied quantization the resolver found (e.g. RedHatAI -FP8-dynamic)
    if quant and not s.get("quantization"):
        s["quantization"] = quant
        pred = predict_vllm(s, engine_version=parsed.engine_version, spec=spec, **kw)
    return pred, note


def _predict_other(
    engine: str,
    settings: dict[str, Any],
    gpu: str | None,
    gpu_memory: str | None = None,
    engine_version: str | None = None,
) -> tuple[Any, str | None]:
    import importlib

    shown = ENGINE_NAMES.get(engine, engine)
    name = engine.replace(".", "").replace("-", "")
    try:
        mod = importlib.import_module(f"vramplan.engines.{name}")
        fn = mod.predict_from_settings
    except (ImportError, AttributeError):
        return None, f"no {shown} predictor is available yet; reporting the logged figures only"
    model_keys = (_MODEL_KEY.get(engine, "model"), "model", "model_path", "model_id")
    if not any(settings.get(k) for k in model_keys):
        return None, (
            f"the log does not name the model; pass {_MODEL_HINT.get(engine, '--model NAME')} "
            "to predict (reporting the logged figures only)"
        )
    try:
        return fn(settings, gpu, gpu_memory=gpu_memory, engine_version=engine_version), None
    except VramplanError as exc:
        return None, f"could not predict the {shown} figures: {exc}"
    except Exception as exc:
        return (
            None,
            f"the {shown} predictor failed ({type(exc).__name__}: {exc}); reporting the logged figures only",
        )


def _term(
    engine: str, name: str, logged: Any, predicted: Any, p: dict[str, Any] | None
) -> dict[str, Any]:
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
        "likely_cause": _cause(engine, name, logged, predicted, rel, p) if p else None,
    }


def _known(*values: Any) -> bool:
    """True when every value is known (a cause never prints None)."""
    return all(v is not None and v != "" for v in values)


def _cause(
    engine: str, name: str, logged: Any, predicted: Any, rel: float | None, p: dict[str, Any]
) -> str:
    """The likely cause of a figure (and of a gap in it) in the engine's own terms and flags."""
    explain = {
        "vllm": _cause_vllm,
        "sglang": _cause_sglang,
        "tgi": _cause_tgi,
        "llama.cpp": _cause_llamacpp,
    }.get(engine)
    if explain is None:
        return ""
    close = rel is None or abs(rel) <= 0.05
    text = explain(name, logged, predicted, p)
    if name == "weights_gib" and not close and text:
        text += (
            "; a gap means a different checkpoint layout (vision tower, padding, quantized tensors)"
        )
    return text


def _weights_of(model: Any, precision: Any, gpus: str) -> str:
    text = "weights"
    if _known(model):
        text += f" of {model}"
    if _known(precision):
        text += f" in {precision}"
    return text + gpus


def _cause_vllm(name: str, logged: Any, predicted: Any, p: dict[str, Any]) -> str:
    s = p.get("settings", {})
    x = p.get("extra", {})
    tp, pp = s.get("tensor_parallel_size"), s.get("pipeline_parallel_size")
    if name == "weights_gib":
        layout = f" on one of TP {tp} x PP {pp} GPUs" if _known(tp, pp) else " per GPU"
        return _weights_of(s.get("model"), s.get("quantization") or s.get("dtype"), layout)
    if name == "activation_peak_gib":
        seqs, toks = s.get("max_num_seqs"), s.get("max_num_batched_tokens")
        if x.get("activation_sampler_gib", 0) >= x.get("activation_forward_gib", 0):
            value = logged if isinstance(logged, (int, float)) else predicted
            gain = (
                max(0.0, x["activation_sampler_gib"] * (1 - 256 / seqs))
                if seqs and seqs > 256
                else 0.0
            )
            rows = (
                f"min(max_num_seqs={seqs}, max_num_batched_tokens={toks}) rows"
                if _known(seqs, toks)
                else "max_num_seqs rows"
            )
            text = f"activation peak {value:.2f} GiB: the dummy sampler's fp32 logits over {rows} of the vocabulary"
            if gain > 0.05:
                text += f"; set --max-num-seqs 256 to get ~{gain:.1f} GiB more KV"
            return text
        tokens = f"max_num_batched_tokens={toks}" if _known(toks) else "max_num_batched_tokens"
        return (
            f"one forward pass over {tokens} tokens (MLP/MoE temporaries); "
            "lower --max-num-batched-tokens to shrink it"
        )
    if name == "non_torch_gib":
        if (tp or 1) > 1:
            return (
                "NCCL state of tensor parallelism (plus, from vLLM 0.19 on Hopper/B200, the FlashInfer "
                "all-reduce fusion workspace) and cuBLAS workspaces"
            )
        return "cuBLAS / attention workspaces outside torch's allocator"
    if name == "cuda_graph_gib":
        if s.get("enforce_eager"):
            return "--enforce-eager: no CUDA graphs"
        return (
            "CUDA graphs captured after the KV cache exists (outside the budget before v0.21; "
            "the v0.21+ estimate is subtracted from it); --enforce-eager removes them at a speed cost"
        )
    if name == "available_kv_cache_gib":
        util, total = s.get("gpu_memory_utilization"), s.get("gpu_total_gib")
        budget = (
            f"gpu_memory_utilization {util:g} x {total:,.2f} GiB"
            if _known(util, total)
            else "gpu_memory_utilization x total memory"
        )
        return f"{budget} minus weights, activation peak and non-torch memory"
    if name == "attention_block_size_tokens":
        return (
            "hybrid models: vLLM raises the attention block until one attention page holds one "
            "request's Mamba / DeltaNet state, then pads the state page to it"
        )
    if name == "mamba_cache_blocks":
        return (
            "the pool's blocks: every running sequence of a hybrid model holds one for its state, so "
            "--max-num-seqs must not exceed it"
        )
    if name in ("gpu_blocks", "kv_cache_tokens", "max_concurrency"):
        parts = [
            f"{label} {s[key]:,}" if isinstance(s.get(key), int) else f"{label} {s[key]}"
            for key, label in (
                ("block_size", "block"),
                ("kv_cache_dtype", "KV"),
                ("max_model_len", "max_model_len"),
            )
            if _known(s.get(key))
        ]
        text = "available KV memory / page size" + (f" ({', '.join(parts)})" if parts else "")
        if x.get("kv_groups", 1) > 1:
            text += (
                f"; {x['kv_groups']} KV cache groups (sliding-window layers hold only their window)"
            )
        return text
    return ""


def _cause_sglang(name: str, logged: Any, predicted: Any, p: dict[str, Any]) -> str:
    s = p.get("settings", {})
    tp = s.get("tp_size")
    if name == "weights_gib":
        layout = f" on one of --tp-size {tp} GPUs" if _known(tp) else " per GPU"
        return _weights_of(s.get("model_path"), s.get("quantization") or s.get("dtype"), layout)
    if name == "activation_peak_gib":
        chunk = s.get("chunked_prefill_size")
        size = f"--chunked-prefill-size {chunk}" if _known(chunk) else "--chunked-prefill-size"
        return (
            f"memory SGLang leaves outside its static pool for a prefill chunk ({size}) and "
            "the sampler; lower --chunked-prefill-size to shrink it"
        )
    if name == "cuda_graph_gib":
        if s.get("disable_cuda_graph"):
            return "--disable-cuda-graph: no CUDA graphs"
        bs = s.get("cuda_graph_max_bs")
        upto = f" up to --cuda-graph-max-bs {bs}" if _known(bs) else ""
        return (
            f"CUDA graphs for decode batch sizes{upto}; --disable-cuda-graph or a lower "
            "--cuda-graph-max-bs removes or shrinks them at a speed cost"
        )
    if name in ("available_kv_cache_gib", "k_size_gb", "v_size_gb", "kv_size_gb"):
        frac = s.get("mem_fraction_static")
        share = f"--mem-fraction-static {frac:g}" if _known(frac) else "--mem-fraction-static"
        return (
            f"the KV pool: {share} of the memory free before loading, minus the weights; "
            "raise --mem-fraction-static or use --kv-cache-dtype fp8_e5m2 for more tokens"
        )
    if name in ("gpu_blocks", "kv_cache_tokens", "max_concurrency", "profiled_max_total_tokens"):
        parts = [
            f"{flag} {s[key]}"
            for key, flag in (
                ("page_size", "--page-size"),
                ("kv_cache_dtype", "--kv-cache-dtype"),
                ("context_length", "--context-length"),
            )
            if _known(s.get(key))
        ]
        return "KV pool / bytes per token" + (f" ({', '.join(parts)})" if parts else "")
    if name.startswith("avail_mem"):
        return "free GPU memory SGLang measured (torch.cuda.mem_get_info) at this stage"
    if name == "max_mamba_cache_size" or name.startswith("mamba_"):
        ratio = s.get("mamba_full_memory_ratio")
        r = f" {ratio:g}" if _known(ratio) else " (0.9 by default)"
        return (
            "the Mamba state pool: --max-mamba-cache-size slots when set, else the memory left after "
            f"the weights x r/(1+r) with --mamba-full-memory-ratio{r}, over one request's conv + ssm "
            "state; every running request holds at least one slot"
        )
    return ""


def _cause_tgi(name: str, logged: Any, predicted: Any, p: dict[str, Any]) -> str:
    s = p.get("settings", {})
    shards = s.get("num_shard")
    if name == "weights_gib":
        layout = f" on one of --num-shard {shards} GPUs" if _known(shards) else " per GPU"
        return _weights_of(s.get("model_id"), s.get("quantize") or s.get("dtype"), layout)
    if name == "activation_peak_gib":
        tokens = s.get("max_batch_prefill_tokens")
        size = (
            f"--max-batch-prefill-tokens {tokens:,}"
            if isinstance(tokens, int)
            else "--max-batch-prefill-tokens"
        )
        return f"the warm-up prefill of {size} tokens; lower it to shrink the peak"
    if name == "available_kv_cache_gib":
        frac = s.get("cuda_memory_fraction")
        fraction = f" ({frac:g})" if _known(frac) else ""
        return (
            "memory free after the warm-up, less the share of the GPU TGI keeps free: "
            f"1 - --cuda-memory-fraction{fraction} x 0.9"
        )
    if name in (
        "gpu_blocks",
        "kv_cache_tokens",
        "max_concurrency",
        "max_batch_total_tokens_set_by_warmup",
    ):
        attention = s.get("attention")
        text = "free KV memory / bytes per token, rounded down to whole blocks"
        if _known(attention):
            text += f" (attention {attention})"
        return text + "; --max-batch-total-tokens caps it"
    return ""


def _cause_llamacpp(name: str, logged: Any, predicted: Any, p: dict[str, Any]) -> str:
    s = p.get("settings", {})
    ngl = s.get("n_gpu_layers")
    if name in ("weights_gib",) or name.startswith("model_buffer_cuda"):
        layers = f" (-ngl {ngl})" if _known(ngl) else ""
        return _weights_of(s.get("model"), s.get("file_type"), f" on the GPU layers{layers}")
    if name in ("activation_peak_gib",) or name.startswith("compute_buffer"):
        ub = s.get("n_ubatch")
        size = f"-ub {ub}" if _known(ub) else "-ub"
        return f"the compute buffer for one micro-batch ({size} tokens); lower -ub to shrink it"
    if name in ("available_kv_cache_gib", "kv_self_mib", "k_mib", "v_mib") or name.startswith(
        "kv_buffer"
    ):
        parts = [
            f"{flag} {s[key]}"
            for key, flag in (("n_ctx", "-c"), ("type_k", "-ctk"), ("type_v", "-ctv"))
            if _known(s.get(key))
        ]
        text = "KV cells preallocated for the whole context" + (
            f" ({' '.join(parts)})" if parts else ""
        )
        return text + "; lower -c or use -ctk q8_0 -ctv q8_0 to shrink it"
    if name in ("kv_cache_tokens", "max_concurrency", "gpu_blocks"):
        return "KV cells = the context size (-c), shared by the -np parallel slots"
    if name.startswith("rs_"):
        return (
            "recurrent state (conv R + SSM S, f32): one cell per parallel sequence (-np), whatever -c is; "
            "lower -np to shrink it"
        )
    return ""


def render_text(result: dict[str, Any]) -> str:
    """The comparison as the terminal shows it (a table, then the likely cause of each figure)."""
    from vramplan.render import explain_view, view_text

    return view_text(explain_view(result))
