"""Issue 13 items 1, 2, 5 and 7 against a real server: every request bounded in time and memory,
absurd numbers answered 4xx (never 500), the server answering others while one request burns CPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from vramplan.model import catalog

from ._attack import attack, tree_rss_bytes

SIM = {"model": "opt-125m", "gpu": "H100-80GB", "duration": 10, "rate": 1}


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("simulate kv_memory 1000 TiB, block 1", {"kv_memory": "1000TiB", "block_size": 1}),
        ("simulate kv_memory 1 EiB, block 1", {"kv_memory": "1EiB", "block_size": 1}),
        ("simulate kv_memory 1e308GiB", {"kv_memory": "1e308GiB"}),
        ("simulate kv_memory -inf", {"kv_memory": "-infGiB"}),
        ("simulate kv_memory nan", {"kv_memory": "nanGiB"}),
        ("simulate max_num_seqs 65536, block 1", {"max_num_seqs": 65536, "block_size": 1}),
        ("simulate swap_space 1e308GiB", {"swap_space": "1e308GiB", "preemption": "swap"}),
        (
            "simulate 20k requests, all allocators",
            {"rate": 33, "duration": 600, "allocator": "all"},
        ),
    ],
)
def test_simulate_sizes_are_refused_before_allocating(server, name: str, extra: dict) -> None:
    out = attack(server, name, "POST", "/api/simulate", json={**SIM, **extra})
    assert 400 <= out.status < 500 or out.status == 200, out.text


def test_simulate_block_list_refused_with_message(server) -> None:
    out = attack(
        server,
        "simulate 23.8 GB block list",
        "POST",
        "/api/simulate",
        json={**SIM, "kv_memory": "500TiB", "block_size": 1},
    )
    assert out.status == 400 and "blocks" in out.json()["error"]["message"]


def test_simulate_plan_kind_goes_through_the_same_bounds(server) -> None:
    out = attack(
        server,
        "plans kind=simulate 500 TiB",
        "POST",
        "/api/plans",
        json={"kind": "simulate", "scenario": {**SIM, "kv_memory": "500TiB", "block_size": 1}},
    )
    assert out.status == 400


@pytest.mark.parametrize(
    ("name", "route", "body"),
    [
        (
            "estimate gpu_memory 1e308GiB",
            "/api/estimate",
            {"model": "llama-3.1-8b", "gpu_memory": "1e308GiB"},
        ),
        (
            "estimate gpu_memory -infGiB",
            "/api/estimate",
            {"model": "llama-3.1-8b", "gpu_memory": "-infGiB"},
        ),
        ("estimate context 10^18", "/api/estimate", {"model": "llama-3.1-8b", "context": 10**18}),
        ("estimate users 10^18", "/api/estimate", {"model": "llama-3.1-8b", "users": 10**18}),
        (
            "vllm cpu_offload_gb 1e308",
            "/api/vllm",
            {
                "command": "vllm serve meta-llama/Llama-3.1-8B --cpu-offload-gb 1e308",
                "gpu": "H100-80GB",
            },
        ),
        (
            "vllm cpu_offload_gb -inf",
            "/api/vllm",
            {
                "command": "vllm serve meta-llama/Llama-3.1-8B --cpu-offload-gb -inf",
                "gpu": "H100-80GB",
            },
        ),
        (
            "vllm cpu_offload_gb nan",
            "/api/vllm",
            {
                "command": "vllm serve meta-llama/Llama-3.1-8B --cpu-offload-gb nan",
                "gpu": "H100-80GB",
            },
        ),
        (
            "vllm max-model-len 5000 digits",
            "/api/vllm",
            {
                "command": "vllm serve meta-llama/Llama-3.1-8B --max-model-len " + "9" * 5000,
                "gpu": "H100-80GB",
            },
        ),
        (
            "train seq_len huge",
            "/api/train",
            {"model": "llama-3.1-8b", "gpu": "H100-80GB", "seq_len": 10**12},
        ),
        (
            "plan users 10^15",
            "/api/plan",
            {"model": "llama-3.1-8b", "context": 8192, "users": 10**15},
        ),
    ],
)
def test_absurd_numbers_are_4xx(server, name: str, route: str, body: dict) -> None:
    out = attack(server, name, "POST", route, json=body)
    assert out.status < 500, out.text


@pytest.mark.parametrize("value", [10**30, 2**63, 10**300])
def test_gemma3_vision_config_huge_integers(server, value: int) -> None:
    cfg = dict(catalog.catalogue()["google/gemma-3-4b-it"])
    cfg["vision_config"] = {
        **cfg["vision_config"],
        "hidden_size": value,
        "num_hidden_layers": value,
    }
    out = attack(
        server,
        f"gemma3 vision_config ints ~1e{len(str(value)) - 1}",
        "POST",
        "/api/estimate",
        json={"config": cfg, "context": 4096},
    )
    assert 400 <= out.status < 500, out.text


def test_uploaded_config_with_a_billion_layers(server) -> None:
    cfg = dict(catalog.catalogue()["meta-llama/Llama-3.1-8B"])
    cfg["num_hidden_layers"] = 10**9
    out = attack(server, "config with 1e9 layers", "POST", "/api/estimate", json={"config": cfg})
    assert out.status < 500


# ---- item 2: pasted logs cannot hold the server ------------------------------------------------

LOGS = {
    "log: 1.5 KB digits + figure phrase": "1" * 1500 + " GiB of memory for model weights\n",
    "log: 1 MB digits + figure phrase": "9," * 500_000 + ".5 GiB\n",
    "log: 2 MB TGI Args nesting": "Args { a: Some(" * 130_000,
    "log: 200 KB of 'ERROR '": "ERROR " * 34_000,
    "log: 2 MB vllm serve continuations": "vllm serve x \\\n" * 130_000,
    "log: 1 MB unbalanced quotes": "model='" * 140_000,
    "log: 1 MB brackets": "[" * 500_000 + "]" * 500_000,
}


@pytest.mark.parametrize("name", list(LOGS))
def test_hostile_logs_are_bounded(server, name: str) -> None:
    out = attack(server, name, "POST", "/api/explain", json={"log": LOGS[name]})
    assert out.status < 500


def test_healthz_answers_while_a_worker_burns(server) -> None:
    """A request that runs to the compute budget does not stop /healthz or estimates elsewhere."""
    slow: dict[str, int] = {}

    def burn() -> None:
        r = httpx.post(
            f"{server.url}/api/explain",
            json={"log": LOGS["log: 2 MB vllm serve continuations"]},
            timeout=30,
        )
        slow["status"] = r.status_code

    t = threading.Thread(target=burn)
    t.start()
    time.sleep(0.5)
    worst = 0.0
    while t.is_alive():
        start = time.perf_counter()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        r = httpx.post(f"{server.url}/api/estimate", json={"model": "llama-3.1-8b"}, timeout=5)
        assert r.status_code == 200
        worst = max(worst, time.perf_counter() - start)
        time.sleep(0.2)
    t.join()
    assert slow["status"] < 500
    assert worst < 2.0, f"/healthz + estimate took {worst:.2f} s while a worker was busy"


def test_overrun_worker_is_killed_not_left_burning(server) -> None:
    """The budget is enforced by killing the worker: the process tree's CPU stops afterwards."""
    attack(
        server,
        "log: 2 MB continuations (kill check)",
        "POST",
        "/api/explain",
        json={"log": LOGS["log: 2 MB vllm serve continuations"]},
    )
    time.sleep(4.0)  # the replacement worker's start-up (imports) is CPU too

    def cpu_ticks() -> int:
        total = 0
        pid = server.proc.pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total

    before = cpu_ticks()
    time.sleep(1.0)
    assert cpu_ticks() - before < 20, "a worker kept burning CPU after its request was answered"


# ---- item 5: caches bounded in bytes -----------------------------------------------------------


def test_estimate_cache_does_not_grow_with_distinct_uploads(server) -> None:
    base = dict(catalog.catalogue()["meta-llama/Llama-3.1-8B"])
    with httpx.Client(timeout=30) as client:

        def upload(i: int) -> None:
            cfg = {**base, "pad": f"{i:06d}" + "x" * 900_000}
            assert (
                client.post(f"{server.url}/api/estimate", json={"config": cfg}).status_code == 200
            )

        for i in range(20):  # warm-up: allocator arenas, worker buffers
            upload(i)
        before = tree_rss_bytes(server.proc.pid)
        for i in range(20, 80):
            upload(i)
        grown = tree_rss_bytes(server.proc.pid) - before
    # 60 distinct 0.9 MB configs: 54 MB more if cached by content; hashed keys cost nothing.
    assert grown < 24 << 20, f"server grew {grown / 2**20:.0f} MiB over 60 distinct uploads"
