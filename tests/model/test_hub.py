"""Hub look-ups, tested against a local huggingface_hub cache only: no test may open a socket."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import constants
from huggingface_hub import errors as hf
from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata, TensorInfo

from vramplan.errors import ConfigError, HubError, UnknownModelError
from vramplan.model import hub
from vramplan.model.hub import fetch_config, fetch_safetensors_header_bytes, validate_repo_id

SHA = "0123456789abcdef0123456789abcdef01234567"
CONFIG = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32}


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise OSError("network access is disabled in the vramplan test-suite")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode everywhere, and any socket use fails loudly."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)


def _populate_cache(
    cache: Path, repo_id: str, config: Any = CONFIG, raw: bytes | None = None
) -> Path:
    """The real huggingface_hub cache layout: models--org--name/{refs/main, snapshots/<sha>/}."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(SHA)
    snap = repo / "snapshots" / SHA
    snap.mkdir(parents=True)
    (snap / "config.json").write_bytes(raw if raw is not None else json.dumps(config).encode())
    return snap / "config.json"


def test_fetch_config_from_cache(tmp_path: Path) -> None:
    _populate_cache(tmp_path, "org/model-7b")
    assert fetch_config("org/model-7b", cache_dir=tmp_path) == CONFIG
    assert fetch_config("org/model-7b", revision=SHA, cache_dir=tmp_path) == CONFIG


def test_fetch_config_legacy_id(tmp_path: Path) -> None:
    _populate_cache(tmp_path, "gpt2")
    assert fetch_config("gpt2", cache_dir=tmp_path) == CONFIG


def test_offline_env_is_honoured_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_HUB_OFFLINE set after huggingface_hub was imported still keeps us offline."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _populate_cache(tmp_path, "org/m")
    assert fetch_config("org/m", cache_dir=tmp_path) == CONFIG
    with pytest.raises(HubError, match="offline"):
        fetch_config("org/other", cache_dir=tmp_path)


def test_missing_repo_offline(tmp_path: Path) -> None:
    with pytest.raises(HubError) as err:
        fetch_config("org/not-cached", cache_dir=tmp_path)
    assert str(err.value) == (
        "could not fetch config.json for org/not-cached from the Hugging Face Hub (offline?): "
        "pass a local folder or config.json path, or set HF_HUB_OFFLINE=0 with network access"
    )


def test_unreachable_hub_online_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode but no network (sockets fail): the same HubError.

    huggingface_hub retries a failed HEAD with exponential back-off (about 23 s in all); the
    sleeps are skipped here so the test stays fast.
    """
    import huggingface_hub.utils._http as hf_http

    monkeypatch.setattr(hf_http.time, "sleep", lambda seconds: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(HubError, match=r"could not fetch config.json for org/x .*offline\?"):
        fetch_config("org/x", cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not valid"),
    ],
)
def test_corrupt_cached_config(tmp_path: Path, raw: bytes, match: str) -> None:
    _populate_cache(tmp_path, "org/bad", raw=raw)
    with pytest.raises(ConfigError, match=match):
        fetch_config("org/bad", cache_dir=tmp_path)


@pytest.mark.parametrize(
    "repo_id",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "org/../x",
        "https://huggingface.co/meta-llama/Llama-3.1-8B",
        "hf.co/org/name",
        "org/name\n",
        "org/na\x00me",
        "org/name/extra",
        "org//name",
        "",
        "org name/x",
        "org/-name",
        "org/name.",
        "org--x/name",
        "org/name.git",
        "a" * 97,
        "org\\name",
        "~/models/x",
    ],
)
def test_invalid_repo_ids(repo_id: str, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError):
        validate_repo_id(repo_id)
    with pytest.raises(UnknownModelError):
        fetch_config(repo_id, cache_dir=tmp_path)


def test_url_message_is_helpful() -> None:
    with pytest.raises(UnknownModelError, match="URL"):
        validate_repo_id("https://huggingface.co/org/name")
    with pytest.raises(UnknownModelError, match="control characters"):
        validate_repo_id("org/x\x1b[31m")


@pytest.mark.parametrize(
    "repo_id",
    [
        "meta-llama/Llama-3.1-8B-Instruct",
        "gpt2",
        "Qwen/Qwen2.5-0.5B",
        "a/b",
        "org_x/m.v1_2",
        "a" * 96,
    ],
)
def test_valid_repo_ids(repo_id: str) -> None:
    assert validate_repo_id(repo_id) == repo_id


@pytest.mark.parametrize("revision", ["../x", "main\n", "a b", "x" * 300])
def test_invalid_revision(revision: str, tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="revision"):
        fetch_config("org/m", revision=revision, cache_dir=tmp_path)


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/x"))


@pytest.mark.parametrize(
    ("exc", "cls", "match"),
    [
        (hf.GatedRepoError("gated", response=_response(403)), HubError, "gated"),
        (
            hf.RepositoryNotFoundError("404", response=_response(404)),
            UnknownModelError,
            "not found",
        ),
        (hf.RevisionNotFoundError("rev", response=_response(404)), UnknownModelError, "revision"),
        (hf.RemoteEntryNotFoundError("e", response=_response(404)), HubError, "has no config.json"),
        (hf.HfHubHTTPError("401", response=_response(401)), HubError, "HF_TOKEN"),
        (hf.HfHubHTTPError("500", response=_response(500)), HubError, "offline"),
        (hf.LocalEntryNotFoundError("x"), HubError, "offline"),
        (httpx2.ConnectError("boom"), HubError, "offline"),
    ],
)
def test_error_translation(
    exc: Exception,
    cls: type[Exception],
    match: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def raiser(*args: Any, **kwargs: Any) -> str:
        raise exc

    monkeypatch.setattr("huggingface_hub.hf_hub_download", raiser)
    with pytest.raises(cls, match=match):
        fetch_config("org/m", cache_dir=tmp_path)


def test_safetensors_header_bytes_offline_fails_fast() -> None:
    with pytest.raises(HubError, match="could not fetch safetensors headers for org/m"):
        fetch_safetensors_header_bytes("org/m")


def _fake_metadata() -> SafetensorsRepoMetadata:
    files = {
        "model-00001-of-00002.safetensors": SafetensorsFileMetadata(
            metadata={"format": "pt"},
            tensors={
                "a": TensorInfo(dtype="BF16", shape=[4, 8], data_offsets=(0, 64)),
                "b": TensorInfo(dtype="F32", shape=[3], data_offsets=(64, 76)),
            },
        ),
        "model-00002-of-00002.safetensors": SafetensorsFileMetadata(
            metadata={},
            tensors={"c": TensorInfo(dtype="F8_E4M3", shape=[10], data_offsets=(0, 10))},
        ),
    }
    return SafetensorsRepoMetadata(
        metadata={"total_size": 86},
        sharded=True,
        weight_map={
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        },
        files_metadata=files,
    )


def test_safetensors_header_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(
        "huggingface_hub.get_safetensors_metadata", lambda *a, **k: _fake_metadata()
    )
    info = fetch_safetensors_header_bytes("org/m")
    assert info.bytes_by_dtype == {"BF16": 64, "F32": 12, "F8_E4M3": 10}
    assert info.total_bytes == 86
    assert info.index_total_size == 86
    assert info.format == "safetensors (hub)"
    assert info.tensors["c"].file == "model-00002-of-00002.safetensors"


def test_safetensors_header_bytes_inconsistent(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = _fake_metadata()
    meta.files_metadata["model-00002-of-00002.safetensors"].tensors["c"] = TensorInfo(
        dtype="F8_E4M3", shape=[1 << 40], data_offsets=(0, 10)
    )
    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr("huggingface_hub.get_safetensors_metadata", lambda *a, **k: meta)
    from vramplan.errors import FileFormatError

    with pytest.raises(FileFormatError, match="needs"):
        fetch_safetensors_header_bytes("org/m")


@pytest.mark.parametrize(
    ("exc", "cls", "match"),
    [
        (hf.NotASafetensorsRepoError("no"), HubError, "no safetensors weights"),
        (hf.GatedRepoError("gated", response=_response(403)), HubError, "gated"),
        (
            hf.RepositoryNotFoundError("404", response=_response(404)),
            UnknownModelError,
            "not found",
        ),
        (httpx2.ConnectError("boom"), HubError, "offline"),
    ],
)
def test_safetensors_header_errors(
    exc: Exception, cls: type[Exception], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr("huggingface_hub.get_safetensors_metadata", raiser)
    with pytest.raises(cls, match=match):
        fetch_safetensors_header_bytes("org/m")
