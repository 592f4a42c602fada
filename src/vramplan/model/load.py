"""Resolve what the user typed into a ModelSpec: a path, a catalogue name, or a Hub id (config only)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vramplan.errors import FileFormatError, UnknownModelError, VramplanError
from vramplan.model import catalog
from vramplan.model.hf_config import load_config_file, spec_from_config
from vramplan.model.spec import ModelSpec
from vramplan.precision import Precision


@dataclass(frozen=True)
class LoadedModel:
    """A ModelSpec plus, when a checkpoint file was read, its true weight bytes."""

    spec: ModelSpec
    source: str
    checkpoint_bytes: int | None = None
    checkpoint_format: str | None = None
    gguf_embedding_bytes: int | None = None
    #: How the checkpoint itself stores its weights when that is not a config fact (a .gguf's own
    #: per-tensor types); estimate uses it unless a dtype or quantization is asked for.
    stored_precision: Precision | None = None


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_PATH_SUFFIXES = (".json", ".gguf", ".safetensors")

#: False inside ``names_only()``: references are names, never paths (no open, no stat).
_LOCAL_FILES: ContextVar[bool] = ContextVar("vramplan_local_files", default=True)


@contextmanager
def names_only() -> Iterator[None]:
    """Within this block every model reference is a name: no path is opened or even stat'ed.

    Why: text pasted into a shared service (a startup log) names paths of *its* machine; reading
    them on ours would reveal our files. The engines' resolvers all end in ``load_model``, so one
    switch here covers them (a context variable: per thread and per asyncio task).
    """
    token = _LOCAL_FILES.set(False)
    try:
        yield
    finally:
        _LOCAL_FILES.reset(token)


def local_files_allowed() -> bool:
    """False inside ``names_only()``."""
    return _LOCAL_FILES.get()


def looks_like_path(ref: str) -> bool:
    """A reference that only a path can be (decided from the text alone, no filesystem call)."""
    return ref.startswith((".", "/", "~", "\\")) or ref.endswith(_PATH_SUFFIXES)


def load_model(ref: str, *, allow_hub: bool = True) -> LoadedModel:
    """Path (config.json, folder, .safetensors, .gguf) > catalogue name > Hub id."""
    if not isinstance(ref, str) or not ref.strip():
        raise UnknownModelError(
            "no model given: pass a catalogue name (see `vramplan models`), a config.json path or a folder"
        )
    ref = ref.strip()
    if not ref.isprintable() or len(ref) > 512:
        raise UnknownModelError(
            "model name contains control characters or is too long: pass a catalogue name, path or Hub id"
        )
    if not local_files_allowed():
        if looks_like_path(ref):
            raise UnknownModelError(
                f"model {ref[:100]!r} is a file path, and paths are not read here: "
                "pass a catalogue name (see `vramplan models`)"
            )
    elif looks_like_path(ref) or os.path.exists(ref):
        return _from_path(Path(ref).expanduser())
    repo_id = catalog.find(ref)
    if repo_id is not None:
        return _from_catalogue(repo_id)
    if allow_hub and _HUB_ID.match(ref):
        from vramplan.model.hub import fetch_config

        try:
            cfg = fetch_config(ref)
        except VramplanError as exc:
            close = catalog.suggestions(ref)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise type(exc)(f"{exc}{hint}") from None
        return LoadedModel(spec_from_config(cfg, name=ref, source=f"hub:{ref}"), f"hub:{ref}")
    close = catalog.suggestions(ref)
    hint = f" Closest catalogue names: {', '.join(close)}." if close else ""
    raise UnknownModelError(
        f"unknown model {ref!r}: not a file or folder, not in the catalogue, not a Hub id (org/name).{hint} "
        "Run `vramplan models` for the catalogue, or pass a local folder holding config.json."
    )


@cache
def _from_catalogue(repo_id: str) -> LoadedModel:
    """Catalogue entries are immutable: build each spec once per process."""
    cfg = catalog.catalogue()[repo_id]
    return LoadedModel(
        spec_from_config(cfg, name=repo_id, source=f"catalogue:{repo_id}"), f"catalogue:{repo_id}"
    )


def _from_path(path: Path) -> LoadedModel:
    if not path.exists():
        raise UnknownModelError(
            f"{path} does not exist: pass a config.json, a model folder, a .safetensors or a .gguf file"
        )
    if path.suffix in _PATH_SUFFIXES and path.is_dir():
        raise FileFormatError(
            f"{path} is a folder named like a {path.suffix} file: pass the file itself, or the "
            "model folder that holds config.json"
        )
    if path.suffix == ".gguf":
        from vramplan.model.files import gguf_to_hf_config, read_gguf

        info = read_gguf(path)
        cfg: dict[str, Any] = gguf_to_hf_config(info)
        spec = spec_from_config(cfg, name=path.name, source=f"gguf:{path}")
        return LoadedModel(
            spec,
            f"gguf:{path}",
            info.total_bytes,
            f"gguf {info.file_type or ''}".strip(),
            info.token_embd_bytes,
            _gguf_precision(info, spec, str(path)),
        )
    if path.suffix == ".safetensors" or (path.is_dir() and any(path.glob("*.safetensors"))):
        from vramplan.model.files import read_safetensors

        folder = path if path.is_dir() else path.parent
        cfg = load_config_file(folder)
        checkpoint = read_safetensors(path)
        spec = spec_from_config(cfg, name=folder.name, source=f"path:{folder}")
        return LoadedModel(spec, f"path:{folder}", checkpoint.total_bytes, "safetensors")
    cfg = load_config_file(path)
    label = path.name if path.is_dir() else _file_label(path, cfg)
    return LoadedModel(spec_from_config(cfg, name=label, source=f"path:{path}"), f"path:{path}")


def _file_label(path: Path, cfg: dict[str, Any]) -> str:
    """A config file's model name: its Hub id (top-level ``_name_or_path``), the folder of a config.json,
    or the file's stem (``Qwen__Qwen3.5-27B.json`` -> ``Qwen__Qwen3.5-27B``)."""
    hub = cfg.get("_name_or_path")
    if isinstance(hub, str) and hub.count("/") == 1 and not hub.startswith((".", "/", "~")):
        return hub
    if path.name == "config.json":
        return path.parent.name or path.stem
    return path.stem


def _gguf_precision(info: Any, spec: ModelSpec, path: str) -> Precision:
    """The file's own per-tensor types as a Precision (KV cache f16, llama.cpp's default)."""
    from vramplan.ggml import file_layout

    ftype = (info.file_type or "").removeprefix("MOSTLY_")
    label = f"gguf:{ftype}" if ftype else "gguf"
    layout = file_layout(
        ((t.name, t.type_name) for t in info.tensors.values()),
        spec.num_layers,
        spec.model_type,
        label,
        path,
    )
    return Precision("float16", None, (f"{label}: tensor types read from the .gguf file",), layout)


def spec_of(model: str | ModelSpec | LoadedModel) -> ModelSpec:
    """The ModelSpec behind a name, a LoadedModel or a spec (the one resolver the library shares)."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, LoadedModel):
        return model.spec
    return load_model(model).spec
