"""Soak test: `vramplan serve` on a free localhost port, driven at a fixed rate on /api/estimate.

    python benchmarks/soak.py                      # 500 req/s for 10 minutes
    python benchmarks/soak.py --rate 200 --duration 60 --out /tmp/soak.md

Open-loop load: requests are launched on a fixed schedule (not when the previous one returns), at
most --concurrency in flight (so a stalled server cannot make the client grow without bound), and
the run stops after --duration seconds plus a drain of at most --drain seconds. Rate limiting is
turned off for the soak server (VRAMPLAN_RATE_LIMIT_PER_S=0). Reports errors by kind, latency
percentiles and the server's RSS every --sample seconds (memory must stay flat), as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODIES = [
    {"model": "llama-3.1-8b", "context": 8192, "users": 4, "gpu": "H100-80GB"},
    {"model": "qwen2.5-7b", "context": 32768, "users": 1, "gpu": "A100-40GB", "kv_cache_dtype": "fp8"},
    {"model": "llama-3.1-70b", "context": 4096, "users": 16, "gpu": "H100-80GB", "quantization": "awq"},
    {"model": "Qwen/Qwen3-30B-A3B", "context": 16384, "users": 8, "gpu": "H100-80GB", "tensor_parallel_size": 2},
    {"model": "deepseek-v3", "context": 8192, "users": 2, "gpu": "H200-141GB"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def rss_bytes(pid: int) -> int | None:
    """RSS of the server and its worker processes together."""
    total, seen = 0, False
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    seen = True
        except OSError:
            continue
    return total if seen else None


def start_server(port: int, workdir: Path, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, VRAMPLAN_RATE_LIMIT_PER_S="0", HF_HUB_OFFLINE="1",
               DATABASE_URL=f"sqlite:///{workdir / 'soak.db'}")
    exe = Path(sys.executable).with_name("vramplan")
    cmd = [str(exe) if exe.exists() else "vramplan", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--workers", str(workers)]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready")
        try:
            if (await client.get("/api/gpus")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("server not ready after 60 s")


async def drive(args: argparse.Namespace, client: httpx.AsyncClient, pid: int) -> dict:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    rss: list[tuple[float, int]] = []
    sem = asyncio.Semaphore(args.concurrency)
    skipped = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        try:
            t0 = time.perf_counter()
            try:
                r = await client.post("/api/estimate", json=BODIES[i % len(BODIES)], timeout=args.timeout)
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] += 1
                else:
                    latencies.append(time.perf_counter() - t0)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
        finally:
            sem.release()

    async def sampler() -> None:
        while True:
            value = rss_bytes(pid)
            if value is not None:
                rss.append((time.monotonic() - start, value))
            await asyncio.sleep(args.sample)

    start = time.monotonic()
    sample_task = asyncio.create_task(sampler())
    interval = 1.0 / args.rate
    i = 0
    while True:
        due = start + i * interval
        now = time.monotonic()
        if now - start >= args.duration:
            break
        if due > now:
            await asyncio.sleep(due - now)
        if sem.locked():
            skipped += 1  # the server is behind: count, do not queue without bound
        else:
            await sem.acquire()
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        i += 1
    sent_for = time.monotonic() - start
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=args.drain)
        for task in pending:
            task.cancel()
        if pending:
            errors["unfinished at drain"] += len(pending)
    sample_task.cancel()
    final = rss_bytes(pid)
    if final is not None:
        rss.append((time.monotonic() - start, final))
    return {"scheduled": i, "skipped": skipped, "latencies": latencies, "errors": errors, "rss": rss,
            "sent_for": sent_for}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def report(args: argparse.Namespace, r: dict) -> str:
    lat = r["latencies"]
    ok, errs = len(lat), sum(r["errors"].values())
    rss = r["rss"]
    first = statistics.median(v for _, v in rss[: max(1, len(rss) // 10)]) if rss else 0
    last = statistics.median(v for _, v in rss[-max(1, len(rss) // 10):]) if rss else 0
    growth = (last - first) / first * 100 if first else float("nan")
    lines = [
        "# vramplan soak: POST /api/estimate",
        "",
        f"- server: `vramplan serve --workers {args.workers}`; target rate {args.rate} req/s for {args.duration:.0f} s (open loop, at most {args.concurrency} in flight)",
        f"- scheduled {r['scheduled']:,}, completed OK {ok:,}, errors {errs:,}, skipped (client at concurrency cap) {r['skipped']:,}",
        f"- achieved {ok / r['sent_for']:.1f} OK req/s",
        f"- date {time.strftime('%Y-%m-%d %H:%M:%S')}, host {os.uname().nodename}, Python {sys.version.split()[0]}",
        "",
        "## Latency (successful requests)",
        "",
        "| p50 | p90 | p99 | p99.9 | max |",
        "|---|---|---|---|---|",
        "| " + " | ".join(f"{pct(lat, q) * 1000:.1f} ms" for q in (50, 90, 99, 99.9, 100)) + " |",
        "",
        "## Errors",
        "",
        *([f"- {k}: {v:,}" for k, v in r["errors"].most_common()] or ["- none"]),
        "",
        "## Server RSS over time",
        "",
        f"first-10% median {first / 2**20:.1f} MiB, last-10% median {last / 2**20:.1f} MiB, growth {growth:+.1f} %"
        f" ({'flat' if abs(growth) < 10 else 'NOT flat'})",
        "",
        "| t (s) | RSS (MiB) |",
        "|---|---|",
    ]
    step = max(1, len(rss) // 30)
    lines += [f"| {t:.0f} | {v / 2**20:.1f} |" for t, v in rss[::step]]
    return "\n".join(lines) + "\n"


async def amain(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vramplan-soak-"))
    port = args.port or free_port()
    proc = start_server(port, workdir, args.workers)
    try:
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            await wait_ready(client, proc)
            result = await drive(args, client, proc.pid)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
    text = report(args, result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"written to {args.out}; server log in {workdir / 'server.log'}")
    return 1 if sum(result["errors"].values()) or result["skipped"] else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=500.0, help="requests per second (default 500)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600 = 10 minutes)")
    p.add_argument("--concurrency", type=int, default=256, help="most requests in flight (default 256)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    p.add_argument("--drain", type=float, default=30.0, help="seconds to wait for in-flight requests at the end")
    p.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval in seconds")
    p.add_argument("--workers", type=int, default=4, help="server worker processes (default 4)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.md")
    args = p.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.concurrency <= 0:
        p.error("--rate, --duration and --concurrency must be positive")
    sys.exit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()
