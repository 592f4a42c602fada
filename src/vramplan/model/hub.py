"""Configs and safetensors headers from the Hugging Face Hub, never weights or model code.

Why: a Hub id is the most common way people name a model. We fetch ``config.json`` only (cached
by huggingface_hub, honouring ``HF_HUB_OFFLINE``) and, for exact weight bytes, the safetensors
headers via ranged requests. We never pass ``trust_remote_code`` and never import model code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vramplan.errors import ConfigError, HubError, UnknownModelError
from vramplan.model.files import CheckpointInfo, checkpoint_from_header_dicts

#: Largest config.json we parse (real ones are a few KB; multimodal ones well under 1 MB).
MAX_CONFIG_BYTES = 16 * 1024 * 1024

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID_RE = re.compile(rf"^(?:{_NAME}/)?{_NAME}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9._/+-]{1,255}$")


def validate_repo_id(repo_id: str) -> str:
    """Check that ``repo_id`` looks like ``org/name`` (or a legacy ``name``); return it.

    Why: a string that is not a repo id (a path, a URL, control characters) must never reach an
    HTTP call or a cache path.
    """
    if not isinstance(repo_id, str) or not repo_id:
        raise UnknownModelError("the model id is empty: pass a Hub id like 'org/name' or a path")
    shown = repo_id[:120].encode("unicode_escape").decode("ascii")
    if "://" in repo_id or repo_id.startswith(("hf.co/", "huggingface.co/", "www.")):
        raise UnknownModelError(
            f"{shown!r} is a URL, not a Hub model id: pass just 'org/name' "
            "(e.g. 'meta-llama/Llama-3.1-8B')"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in repo_id):
        raise UnknownModelError(f"model id {shown!r} contains control characters")
    if (
        not _REPO_ID_RE.fullmatch(repo_id)
        or ".." in repo_id
        or "--" in repo_id
        or repo_id.endswith(".git")
    ):
        raise UnknownModelError(
            f"{shown!r} is neither an existing local path nor a valid Hub model id: Hub ids look "
            "like 'org/name' (letters, digits, '-', '_', '.'; at most 96 characters per part; "
            "no '..' or '--')"
        )
    return repo_id


def _validate_revision(revision: str | None) -> None:
    if revision is None:
        return
    if not isinstance(revision, str) or not _REVISION_RE.fullmatch(revision) or ".." in revision:
        shown = str(revision)[:120].encode("unicode_escape").decode("ascii")
        raise UnknownModelError(
            f"revision {shown!r} is not a valid branch, tag or commit: use letters, digits, "
            "'.', '_', '-', '/' only"
        )


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set now, or was at import."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _offline_message(repo_id: str, what: str = "config.json") -> str:
    return (
        f"could not fetch {what} for {repo_id} from the Hugging Face Hub (offline?): pass a local "
        "folder or config.json path, or set HF_HUB_OFFLINE=0 with network access"
    )


def _translate(exc: BaseException, repo_id: str, revision: str | None, what: str) -> Exception:
    """Turn a huggingface_hub / network exception into our error with a fix."""
    from huggingface_hub import errors as hf

    rev = f" at revision {revision!r}" if revision else ""
    if isinstance(exc, hf.GatedRepoError):
        return HubError(
            f"{repo_id} is gated on the Hugging Face Hub: accept its licence at "
            f"https://huggingface.co/{repo_id}, then log in (`hf auth login` or HF_TOKEN), or "
            "pass a local config.json"
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return UnknownModelError(
            f"{repo_id} has no revision {revision!r} on the Hugging Face Hub: check the branch, "
            "tag or commit"
        )
    if isinstance(exc, hf.RepositoryNotFoundError):
        return UnknownModelError(
            f"{repo_id} was not found on the Hugging Face Hub (404, or private and you are not "
            "logged in): check the id, log in with `hf auth login`, or pass a local path"
        )
    if isinstance(exc, hf.LocalEntryNotFoundError | hf.OfflineModeIsEnabled):
        return HubError(_offline_message(repo_id, what))
    if isinstance(exc, hf.EntryNotFoundError):
        return HubError(
            f"{repo_id}{rev} has no {what} on the Hugging Face Hub (a GGUF-only or non-"
            "transformers repo?): pass a local config.json or .gguf file"
        )
    if isinstance(exc, hf.NotASafetensorsRepoError):
        return HubError(
            f"{repo_id}{rev} has no safetensors weights on the Hub (only .bin / .gguf?): "
            "estimate from its config instead, or pass a local checkpoint"
        )
    if isinstance(exc, hf.SafetensorsParsingError):
        return HubError(
            f"the safetensors headers of {repo_id}{rev} on the Hub are unreadable: {exc}"
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"the Hugging Face Hub refused access to {repo_id} (HTTP {status}): log in with "
                "`hf auth login` or set HF_TOKEN to a token that can read it"
            )
        return HubError(f"{_offline_message(repo_id, what)} (HTTP {status})")
    return HubError(f"{_offline_message(repo_id, what)} ({type(exc).__name__})")


def _network_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean 'the Hub could not answer' for the installed client."""
    from huggingface_hub import errors as hf

    classes: list[type[BaseException]] = [
        hf.HfHubHTTPError,
        hf.OfflineModeIsEnabled,
        hf.EntryNotFoundError,
        hf.NotASafetensorsRepoError,
        hf.SafetensorsParsingError,
        OSError,
        TimeoutError,
        ConnectionError,
    ]
    for module in ("httpx2", "httpx", "requests"):
        try:
            mod = __import__(module)
        except ImportError:
            continue
        for name in ("HTTPError", "RequestException", "TransportError"):
            cls = getattr(mod, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                classes.append(cls)
    return tuple(classes)


def fetch_config(
    repo_id: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    token: str | bool | None = None,
) -> dict[str, Any]:
    """Download (or take from the cache) a repo's ``config.json`` and return it as a dict.

    Only ``config.json`` is fetched; no model code runs. With ``HF_HUB_OFFLINE=1`` only the local
    huggingface_hub cache is used.
    """
    from huggingface_hub import hf_hub_download

    validate_repo_id(repo_id)
    _validate_revision(revision)
    try:
        path = hf_hub_download(
            repo_id,
            "config.json",
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
            token=token,
            local_files_only=hub_offline(),
        )
    except _network_errors() as exc:
        raise _translate(exc, repo_id, revision, "config.json") from None
    return _load_config(Path(path), repo_id)


def _load_config(path: Path, repo_id: str) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config.json of {repo_id} is {size} bytes, far larger than any real config "
                f"({MAX_CONFIG_BYTES} max); the cached file is corrupt: delete it from the cache"
            )
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise HubError(f"cannot read the cached config.json of {repo_id} ({exc})") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"config.json of {repo_id} is not valid JSON ({str(exc)[:200]}); the cached file may "
            "be corrupt: delete it from the huggingface_hub cache and retry"
        ) from None
    if not isinstance(obj, dict):
        raise ConfigError(f"config.json of {repo_id} is not a JSON object")
    return obj


def fetch_safetensors_header_bytes(
    repo_id: str,
    revision: str | None = None,
    *,
    token: str | bool | None = None,
) -> CheckpointInfo:
    """Exact weight bytes per dtype of a Hub repo, from its safetensors headers only.

    Uses ``huggingface_hub.get_safetensors_metadata`` (ranged requests for the headers). Needs the
    network: with HF_HUB_OFFLINE set it raises HubError at once.
    """
    validate_repo_id(repo_id)
    _validate_revision(revision)
    what = "safetensors headers"
    if hub_offline():
        raise HubError(_offline_message(repo_id, what))
    from huggingface_hub import get_safetensors_metadata

    try:
        meta = get_safetensors_metadata(repo_id, revision=revision, token=token)
    except _network_errors() as exc:
        raise _translate(exc, repo_id, revision, what) from None
    headers: dict[str, dict[str, Any]] = {}
    for fname, fmeta in meta.files_metadata.items():
        header: dict[str, Any] = {"__metadata__": dict(fmeta.metadata or {})}
        for name, t in fmeta.tensors.items():
            header[name] = {
                "dtype": t.dtype,
                "shape": list(t.shape),
                "data_offsets": list(t.data_offsets),
            }
        headers[fname] = header
    info = checkpoint_from_header_dicts(headers, where=f"hf://{repo_id}")
    info.format = "safetensors (hub)"
    total = (meta.metadata or {}).get("total_size") if meta.metadata else None
    if isinstance(total, int):
        info.index_total_size = total
    return info
