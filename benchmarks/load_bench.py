"""Load benchmark: start `vramplan serve`, drive POST /api/estimate for a fixed time, report req/s, p50, p99.

    python benchmarks/load_bench.py [--seconds 10] [--concurrency 32] [--workers 1] [--tool wrk|httpx]

Uses wrk (Debian: apt-get install -y wrk) when present, else an async httpx client in-process. Rate
limiting is turned off for the run (VRAMPLAN_RATE_LIMIT_PER_S=0); access logging stays on. The scenario
rotates over a few realistic requests so both the model-resolution cache and the result cache are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BODIES = [
    {"model": "llama-3.1-8b", "context": 8192, "users": 16, "gpu": "H100-80GB"},
    {"model": "qwen2.5-7b", "context": 32768, "users": 4, "gpu": "A100-80GB"},
    {
        "model": "llama-3.1-70b",
        "context": 8192,
        "users": 32,
        "gpu": "H100-80GB",
        "kv_cache_dtype": "fp8",
    },
    {"model": "opt-13b", "context": 2048, "users": 64, "gpu": "A100-40GB"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int, workers: int, db: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VRAMPLAN_RATE_LIMIT_PER_S": "0",
        "VRAMPLAN_DATABASE_URL": db,
        "VRAMPLAN_ALLOW_HUB": "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vramplan",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


async def httpx_load(url: str, seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    end = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

        async def worker(i: int) -> None:
            nonlocal errors
            n = i
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = await client.post("/api/estimate", json=BODIES[n % len(BODIES)])
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200
                n += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return len(latencies), latencies, errors


LUA = """
local bodies = %s
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/estimate", {["Content-Type"]="application/json"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%f %%f %%f\\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def wrk_load(url: str, seconds: int, concurrency: int) -> dict[str, float]:
    lua_bodies = "{" + ",".join(json.dumps(json.dumps(b)) for b in BODIES) + "}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA % lua_bodies)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            fh.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    _, n, errs, p50, p99, dur = line.split()
    return {
        "requests": int(n),
        "errors": int(errs),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "rps": int(n) / float(dur),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--tool", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    ap.add_argument("--write", type=Path, help="append a Markdown row to this file")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start(port, args.workers, f"sqlite:///{tmp}/bench.db")
        url = f"http://127.0.0.1:{port}"
        try:
            for body in BODIES:  # warm the caches: we measure serving, not the first computation
                httpx.post(f"{url}/api/estimate", json=body).raise_for_status()
            if args.tool == "wrk":
                res = wrk_load(url, args.seconds, args.concurrency)
            else:
                n, lat, errs = asyncio.run(httpx_load(url, args.seconds, args.concurrency))
                q = statistics.quantiles(lat, n=100)
                res = {
                    "requests": n,
                    "errors": errs,
                    "p50_ms": q[49] * 1e3,
                    "p99_ms": q[98] * 1e3,
                    "rps": n / args.seconds,
                }
        finally:
            proc.terminate()
            proc.wait(10)
    row = (
        f"| {args.tool} | {args.workers} | {args.concurrency} | {args.seconds} s | {res['rps']:,.0f} | "
        f"{res['p50_ms']:.2f} | {res['p99_ms']:.2f} | {res['errors']} | {os.cpu_count()} CPU, {platform.python_version()} |"
    )
    print(json.dumps(res))
    print(row)
    if args.write:
        with args.write.open("a") as fh:
            fh.write(row + "\n")


if __name__ == "__main__":
    main()
