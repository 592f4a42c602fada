"""Security rules for the library and CLI: no remote code, config.json only from the Hub, no
eval/exec/pickle/torch.load in src/, repo ids validated before any network call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from vramplan.errors import UnknownModelError, VramplanError

SRC = Path(__file__).resolve().parents[2] / "src" / "vramplan"
PY_FILES = sorted(SRC.rglob("*.py"))


def test_src_is_found() -> None:
    assert len(PY_FILES) > 20


def test_no_trust_remote_code_set_anywhere() -> None:
    bad = []
    for path in PY_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "trust_remote_code"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                bad.append(f"{path}:{node.value.lineno}")
            if isinstance(node, ast.Dict):
                for k in node.keys:
                    if isinstance(k, ast.Constant) and k.value == "trust_remote_code":
                        bad.append(f"{path}:{k.lineno}")
    assert not bad, bad


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("torch", "load"),
    ("marshal", "loads"),
    ("dill", "load"),
    ("joblib", "load"),
    ("yaml", "load"),
    ("os", "system"),
    ("shelve", "open"),
}
#: __import__ of a fixed module name from a fixed list is harmless (hub.py probes HTTP client modules).
ALLOWED = {("model/hub.py", "__import__")}


def test_no_eval_exec_pickle_or_torch_load() -> None:
    bad = []
    for path in PY_FILES:
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                literal = bool(node.args) and isinstance(node.args[0], ast.Constant)
                if isinstance(f, ast.Name) and f.id == "__import__" and literal:
                    continue  # __import__("re"): a fixed module name
                if (
                    isinstance(f, ast.Name)
                    and f.id in FORBIDDEN_CALLS
                    and (rel, f.id) not in ALLOWED
                ):
                    bad.append(f"{rel}:{node.lineno} {f.id}()")
                if (
                    isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in FORBIDDEN_ATTRS
                ):
                    bad.append(f"{rel}:{node.lineno} {f.value.id}.{f.attr}()")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
                )
                if any(n.split(".")[0] in ("pickle", "marshal", "dill", "shelve") for n in names):
                    bad.append(f"{rel}:{node.lineno} imports {names}")
    assert not bad, bad


def test_text_grep_agrees() -> None:
    """A plain grep as a second net (catches getattr tricks the AST walk would miss)."""
    pattern = re.compile(
        r"\b(pickle\.loads?|torch\.load|trust_remote_code\s*=\s*True|(?<![\w.])eval\(|(?<![\w.])exec\()"
    )
    hits = [
        f"{p}:{i}"
        for p in PY_FILES
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert not hits, hits


def test_fetch_config_downloads_config_json_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub

    from vramplan.model import hub

    calls = []
    cfg = tmp_path / "config.json"
    cfg.write_text('{"model_type": "llama"}')

    def fake_download(repo_id, filename, *args, **kwargs):
        calls.append((repo_id, filename, kwargs))
        return str(cfg)

    def forbidden(*args, **kwargs):
        raise AssertionError("only hf_hub_download('config.json') may be used")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    for name in ("snapshot_download", "hf_hub_url"):
        monkeypatch.setattr(huggingface_hub, name, forbidden)
    assert hub.fetch_config("org/model") == {"model_type": "llama"}
    assert [(r, f) for r, f, _ in calls] == [("org/model", "config.json")]
    assert "trust_remote_code" not in calls[0][2]
    assert calls[0][2].get("local_files_only") is True  # HF_HUB_OFFLINE=1 from conftest


def test_load_model_hub_path_asks_only_for_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from vramplan.model import hub, load

    asked = []

    def fake_fetch(repo_id: str, *a, **k) -> dict:
        asked.append(repo_id)
        return {
            "model_type": "llama",
            "hidden_size": 64,
            "num_attention_heads": 1,
            "num_hidden_layers": 1,
            "vocab_size": 10,
        }

    monkeypatch.setattr(hub, "fetch_config", fake_fetch)
    loaded = load.load_model("some-org/some-model")
    assert asked == ["some-org/some-model"] and loaded.source == "hub:some-org/some-model"


@pytest.mark.parametrize(
    "ref", ["https://evil/x", "../../etc/passwd-not-here", "org/../x", "a\x00/b", "org/name/extra"]
)
def test_hostile_refs_never_reach_the_hub(ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    from vramplan.model.load import load_model

    def boom(*a, **k):
        raise AssertionError(f"network call for {ref!r}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    with pytest.raises(VramplanError):
        load_model(ref)


@pytest.mark.parametrize("repo_id", ["../x", "org/..", "https://evil/x", "a/b/c", "org/name\n"])
def test_fetch_config_validates_before_download(
    repo_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    from vramplan.model import hub

    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("download attempted")
    )
    with pytest.raises(UnknownModelError):
        hub.fetch_config(repo_id)
