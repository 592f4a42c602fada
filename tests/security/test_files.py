"""Issue 13 item 3: a pasted log (or a vllm command) never makes the server open, stat or parse a
file of its own. Each attack names a directory holding a config.json with a marker model_type, a
.gguf and a safetensors file, or a symlink to it; the answer must not differ from the answer for a
path that does not exist (nothing revealed) and must never contain the marker or a tensor name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ._attack import attack

MARKER = "secretmarkermodeltype"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    model = root / "Llama-3.1-8B"
    model.mkdir()
    cfg = {"model_type": MARKER, "architectures": ["SecretForCausalLM"], "hidden_size": 64}
    (model / "config.json").write_text(json.dumps(cfg))
    header = json.dumps(
        {"secret_tensor_name": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}
    ).encode()
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    (model / "model.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + b"\0" * 64)
    (root / "link").symlink_to(model)
    return root


def _logs(path: str) -> dict[str, str]:
    return {
        "sglang model_path": (
            f"[2025-01-01 10:00:00] server_args=ServerArgs(model_path='{path}', tokenizer_path='{path}', tp_size=1)\n"
            "[2025-01-01 10:00:05] Load weight end. type=LlamaForCausalLM, dtype=torch.bfloat16, "
            "avail mem=60.00 GB, mem usage=14.99 GB.\n"
        ),
        "tgi model_id": (
            f'2025-01-01T10:00:00.000Z  INFO text_generation_launcher: Args {{ model_id: "{path}", '
            "num_shard: Some(1), max_total_tokens: Some(4096) }\n"
        ),
        "vllm model path": (
            f"INFO 01-01 10:00:00 [api_server.py:1] vLLM API server version 0.8.5\n"
            f"INFO 01-01 10:00:00 [api_server.py:2] args: Namespace(model='{path}', served_model_name=['{path}'], "
            "tensor_parallel_size=1, gpu_memory_utilization=0.9, max_model_len=4096)\n"
            "INFO 01-01 10:00:09 [gpu_model_runner.py:1] Model loading took 14.99 GiB and 5.1 seconds\n"
        ),
        "llama.cpp gguf": (
            f"llama_model_loader: loaded meta data with 30 key-value pairs and 291 tensors from {path}/model.gguf (version GGUF V3 (latest))\n"
            "llm_load_tensors:        CUDA0 buffer size =  4403.49 MiB\n"
        ),
    }


def _scrub(text: str, *paths: str) -> str:
    for p in paths:
        text = text.replace(p, "<path>")
    return text


@pytest.mark.parametrize("kind", list(_logs("x")))
@pytest.mark.parametrize("target", ["Llama-3.1-8B", "link"])
def test_log_paths_are_names_not_files(server, planted: Path, kind: str, target: str) -> None:
    real = str(planted / target)
    missing = str(planted / "does-not-exist" / target)
    a = attack(
        server,
        f"explain: {kind} -> server dir",
        "POST",
        "/api/explain",
        json={"log": _logs(real)[kind]},
    )
    b = attack(
        server,
        f"explain: {kind} -> missing",
        "POST",
        "/api/explain",
        json={"log": _logs(missing)[kind]},
    )
    for out in (a, b):
        assert out.status < 500
        assert MARKER not in out.text and "secret_tensor_name" not in out.text
        assert "SecretForCausalLM" not in out.text
    assert a.status == b.status
    assert _scrub(a.text, real, missing) == _scrub(b.text, real, missing), (
        "the answer differs between an existing and a missing path: it reveals the server's files"
    )


@pytest.mark.parametrize(
    "model",
    ["/etc/passwd", "../../etc", "./config.json", "x.gguf", "~/.cache", "C:\\\\models\\\\x"],
)
def test_vllm_command_paths_refused(server, model: str) -> None:
    out = attack(
        server,
        f"vllm serve {model}",
        "POST",
        "/api/vllm",
        json={"command": f"vllm serve {model}", "gpu": "H100-80GB"},
    )
    assert 400 <= out.status < 500 and "root:" not in out.text


@pytest.mark.parametrize("model", ["/etc/passwd", "../x", "x.json", "/proc/self/environ"])
@pytest.mark.parametrize("route", ["/api/estimate", "/api/train"])
def test_model_paths_never_read(server, route: str, model: str) -> None:
    out = attack(
        server, f"{route} model={model}", "POST", route, json={"model": model, "gpu": "H100-80GB"}
    )
    assert 400 <= out.status < 500 and "root:" not in out.text and "PATH=" not in out.text


def test_simulate_workload_file_refused(server) -> None:
    out = attack(
        server,
        "simulate workload=/etc/passwd",
        "POST",
        "/api/simulate",
        json={"model": "opt-125m", "gpu": "H100-80GB", "workload": "/etc/passwd"},
    )
    assert out.status == 422
