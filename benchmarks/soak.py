"""Soak test: `vramplan serve` on a free localhost port, driven at a fixed rate on /api/estimate.

    python benchmarks/soak.py                      # 500 req/s for 10 minutes, 2 server workers
    python benchmarks/soak.py --rate 200 --duration 60 --out /tmp/soak.md

Open-loop load, spread over --clients processes (each with its own event loop, its own keep-alive
connections and an even, phase-shifted share of the target rate): requests are launched on a fixed
schedule, not when the previous one returns. One Python httpx client tops out near 150 req/s, so each
process speaks minimal HTTP/1.1 over asyncio streams instead (request bytes built once, response
status, headers and Content-Length body read and checked). Everything is bounded: at most
--concurrency requests in flight over all clients (a launch that finds no idle connection is counted
as skipped, never queued), exactly rate x duration launches, a per-request --timeout, and a drain of
at most --drain seconds. Loopback only: the server binds 127.0.0.1 and the clients connect there.

Rate limiting is turned off for the soak server (VRAMPLAN_RATE_LIMIT_PER_S=0). Reports errors by
kind, latency percentiles (from the send, and from the scheduled launch time, which also counts any
delay the generator itself added), OK throughput per second, CPU seconds of server and generator, and
the server's RSS every --sample seconds (memory must stay flat), as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PATH = "/api/estimate"
BODIES = [
    {"model": "llama-3.1-8b", "context": 8192, "users": 4, "gpu": "H100-80GB"},
    {
        "model": "qwen2.5-7b",
        "context": 32768,
        "users": 1,
        "gpu": "A100-40GB",
        "kv_cache_dtype": "fp8",
    },
    {
        "model": "llama-3.1-70b",
        "context": 4096,
        "users": 16,
        "gpu": "H100-80GB",
        "quantization": "awq",
    },
    {
        "model": "Qwen/Qwen3-30B-A3B",
        "context": 16384,
        "users": 8,
        "gpu": "H100-80GB",
        "tensor_parallel_size": 2,
    },
    {"model": "deepseek-v3", "context": 8192, "users": 2, "gpu": "H200-141GB"},
]
CHECK_EVERY = 50  # parse one response body in this many as JSON (keeps the client cheap)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
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


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (not their children), in seconds."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def start_server(port: int, workdir: Path, workers: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        VRAMPLAN_RATE_LIMIT_PER_S="0",
        HF_HUB_OFFLINE="1",
        DATABASE_URL=f"sqlite:///{workdir / 'soak.db'}",
    )
    exe = Path(sys.executable).with_name("vramplan")
    cmd = [
        str(exe) if exe.exists() else "vramplan",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    # The log stays open as long as the server runs.
    log = open(workdir / "server.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(port: int, proc: subprocess.Popen[bytes], workers: int, timeout: float = 60) -> None:
    """Ready when /api/gpus answers; then a short settle so every worker process has imported."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/gpus", timeout=2) as r:
                if r.status == 200:
                    time.sleep(1.0 + 0.5 * workers)
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after {timeout:.0f} s")


# --------------------------------------------------------------------------- load-generator process


def _request_bytes(port: int) -> list[bytes]:
    out = []
    for body in BODIES:
        raw = json.dumps(body).encode()
        out.append(
            f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\nConnection: keep-alive\r\n\r\n".encode()
            + raw
        )
    return out


class HTTPFailure(Exception):
    """A malformed or closed response."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep_alive) of one HTTP/1.1 response; Content-Length or chunked bodies."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPFailure(f"bad status line {lines[0][:40]!r}")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(c[:-2] for c in chunks)
    else:
        raise HTTPFailure("response without Content-Length")
    return status, body, headers.get("connection", "").lower() != "close"


class _Conn:
    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _client_main(
    index: int,
    clients: int,
    port: int,
    rate: float,
    duration: float,
    start_wall: float,
    connections: int,
    timeout: float,
    drain: float,
) -> dict:
    requests = _request_bytes(port)
    idle: list[_Conn] = [_Conn() for _ in range(connections)]
    lat_send, lat_sched = array("d"), array("d")
    errors: Counter[str] = Counter()
    per_second: Counter[int] = Counter()
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0
    retries = [0]

    async def one(conn: _Conn, n: int, due: float) -> None:
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                if conn.reader is not None and conn.reader.at_eof():
                    conn.close()  # the server closed it while idle (uvicorn's keep-alive timeout)
                reused = conn.writer is not None
                if not reused:
                    conn.reader, conn.writer = await asyncio.open_connection(HOST, port)
                conn.writer.write(requests[n % len(requests)])
                try:
                    status, body, keep = await _read_response(conn.reader)
                except asyncio.IncompleteReadError as exc:
                    if not reused or exc.partial:
                        raise
                    # Closed by the server as we reused it, before any byte of an answer: the
                    # request was never read, so send it once more on a fresh connection (as
                    # HTTP clients do). Counted, not hidden.
                    retries[0] += 1
                    conn.close()
                    conn.reader, conn.writer = await asyncio.open_connection(HOST, port)
                    conn.writer.write(requests[n % len(requests)])
                    status, body, keep = await _read_response(conn.reader)
            t1 = time.monotonic()
            if status != 200:
                errors[f"HTTP {status}"] += 1
            elif n % CHECK_EVERY == 0 and not isinstance(json.loads(body), dict):
                errors["body is not a JSON object"] += 1
            else:
                lat_send.append(t1 - t0)
                lat_sched.append(t1 - due)
                per_second[int(t1 - t_start)] += 1
            if not keep:
                conn.close()
        except TimeoutError:
            errors["timeout"] += 1
            conn.close()
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            HTTPFailure,
            ValueError,
        ) as exc:
            errors[type(exc).__name__] += 1
            conn.close()
        finally:
            idle.append(conn)

    # Common start on the wall clock, then this process's own monotonic schedule, phase-shifted so
    # the processes' launches interleave evenly.
    t_start = time.monotonic() + max(0.0, start_wall - time.time())
    interval = clients / rate
    total = int(rate * duration)
    mine = range(index, total, clients)
    for k, n in enumerate(mine):
        due = t_start + index / rate + k * interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if not idle:
            skipped += 1  # every connection busy: the server is behind; count, never queue
            continue
        task = asyncio.create_task(one(idle.pop(), n, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_for = time.monotonic() - t_start
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=drain)
        for task in pending:
            task.cancel()
        if pending:
            errors["unfinished at drain"] += len(pending)
    for conn in idle:
        conn.close()
    return {
        "scheduled": len(mine),
        "skipped": skipped,
        "lat_send": lat_send,
        "lat_sched": lat_sched,
        "errors": errors,
        "per_second": per_second,
        "sent_for": sent_for,
        "retries": retries[0],
    }


def _client_process(conn, *args) -> None:  # conn: the child end of a multiprocessing Pipe
    # Any failure is reported to the parent rather than dying silently.
    try:
        result = asyncio.run(_client_main(*args))
        result["cpu_s"] = time.process_time()
    except BaseException as exc:
        result = {"crash": f"{type(exc).__name__}: {exc}"}
    conn.send(result)
    conn.close()


def drive(args: argparse.Namespace, port: int, server_pid: int) -> dict:
    ctx = mp.get_context("spawn")
    per_client = max(1, args.concurrency // args.clients)
    start_wall = time.time() + 3.0  # time for the spawned clients to import and connect
    pipes, procs = [], []
    for i in range(args.clients):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=_client_process,
            daemon=True,
            args=(
                child,
                i,
                args.clients,
                port,
                args.rate,
                args.duration,
                start_wall,
                per_client,
                args.timeout,
                args.drain,
            ),
        )
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    time.sleep(max(0.0, start_wall - time.time()))
    start = time.monotonic()
    server_cpu0 = cpu_seconds(_tree(server_pid))
    rss: list[tuple[float, int]] = []
    results: list[dict | None] = [None] * len(pipes)
    hard_stop = start + args.duration + args.drain + 30
    next_sample = start
    while any(r is None for r in results):
        now = time.monotonic()
        if now >= next_sample:
            value = rss_bytes(server_pid)
            if value is not None:
                rss.append((now - start, value))
            next_sample += args.sample
        for i, pipe in enumerate(pipes):
            if results[i] is None and pipe.poll(0):
                results[i] = pipe.recv()
        if now > hard_stop:
            for i, p in enumerate(procs):
                if results[i] is None:
                    p.kill()
                    results[i] = {"crash": "client process did not finish in time"}
            break
        time.sleep(min(0.5, max(0.01, next_sample - time.monotonic())))
    server_cpu = cpu_seconds(_tree(server_pid)) - server_cpu0
    final = rss_bytes(server_pid)
    if final is not None:
        rss.append((time.monotonic() - start, final))
    for p in procs:
        p.join(timeout=5)
    crashes = [r["crash"] for r in results if "crash" in r]
    if crashes:
        raise SystemExit("load generator failed: " + "; ".join(crashes))
    merged: dict = {
        "scheduled": 0,
        "skipped": 0,
        "lat_send": array("d"),
        "lat_sched": array("d"),
        "errors": Counter(),
        "per_second": Counter(),
        "sent_for": 0.0,
        "client_cpu_s": 0.0,
        "retries": 0,
    }
    for r in results:
        merged["scheduled"] += r["scheduled"]
        merged["skipped"] += r["skipped"]
        merged["retries"] += r["retries"]
        merged["lat_send"].extend(r["lat_send"])
        merged["lat_sched"].extend(r["lat_sched"])
        merged["errors"].update(r["errors"])
        merged["per_second"].update(r["per_second"])
        merged["sent_for"] = max(merged["sent_for"], r["sent_for"])
        merged["client_cpu_s"] += r["cpu_s"]
    merged["rss"] = rss
    merged["server_cpu_s"] = server_cpu
    merged["wall_s"] = time.monotonic() - start
    return merged


# --------------------------------------------------------------------------- report


def pct(values, q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def report(args: argparse.Namespace, r: dict) -> str:
    lat_send, lat_sched = sorted(r["lat_send"]), sorted(r["lat_sched"])
    ok, errs = len(lat_send), sum(r["errors"].values())
    rss = r["rss"]
    first = statistics.median(v for _, v in rss[: max(1, len(rss) // 10)]) if rss else 0
    last = statistics.median(v for _, v in rss[-max(1, len(rss) // 10) :]) if rss else 0
    growth = (last - first) / first * 100 if first else float("nan")
    # Full seconds of the load phase only (the last, partial second and the drain are left out).
    secs = [r["per_second"].get(s, 0) for s in range(int(args.duration))]
    wall = r["wall_s"]
    lines = [
        "# vramplan soak: POST /api/estimate",
        "",
        (
            f"- server: `vramplan serve --workers {args.workers}`; load: {args.clients} client processes "
            f"(asyncio, HTTP/1.1 keep-alive, loopback); target {args.rate:g} req/s for {args.duration:.0f} s "
            f"(open loop, at most {args.concurrency} in flight)"
        ),
        (
            f"- scheduled {r['scheduled']:,}, completed OK {ok:,}, errors {errs:,}, "
            f"skipped (all connections busy) {r['skipped']:,}; resent after the server closed an idle "
            f"keep-alive connection as it was reused: {r['retries']:,}"
        ),
        (
            f"- achieved {ok / r['sent_for']:.1f} OK req/s; per-second OK count over the {len(secs)} full "
            f"seconds: min {min(secs, default=0)}, median {statistics.median(secs) if secs else 0:g}, "
            f"max {max(secs, default=0)}"
        ),
        (
            f"- CPU over {wall:.0f} s wall: server {r['server_cpu_s']:.0f} s "
            f"({r['server_cpu_s'] / wall:.2f} cores), load generator {r['client_cpu_s']:.0f} s "
            f"({r['client_cpu_s'] / wall:.2f} cores); {os.cpu_count()} CPUs on the machine"
        ),
        f"- date {time.strftime('%Y-%m-%d %H:%M:%S')}, host {os.uname().nodename}, Python {sys.version.split()[0]}",
        "",
        "## Latency (successful requests)",
        "",
        "| measured from | p50 | p90 | p99 | p99.9 | max |",
        "|---|---|---|---|---|---|",
        "| send | "
        + " | ".join(f"{pct(lat_send, q) * 1000:.1f} ms" for q in (50, 90, 99, 99.9, 100))
        + " |",
        "| scheduled launch | "
        + " | ".join(f"{pct(lat_sched, q) * 1000:.1f} ms" for q in (50, 90, 99, 99.9, 100))
        + " |",
        "",
        "## Errors",
        "",
        *([f"- {k}: {v:,}" for k, v in r["errors"].most_common()] or ["- none"]),
        "",
        "## Server RSS over time",
        "",
        (
            f"first-10% median {first / 2**20:.1f} MiB, last-10% median {last / 2**20:.1f} MiB, "
            f"growth {growth:+.1f} % ({'flat' if abs(growth) < 10 else 'NOT flat'})"
        ),
        "",
        "| t (s) | RSS (MiB) |",
        "|---|---|",
    ]
    step = max(1, len(rss) // 30)
    picked = rss[::step]
    if rss and picked[-1] is not rss[-1]:
        picked.append(rss[-1])
    lines += [f"| {t:.0f} | {v / 2**20:.1f} |" for t, v in picked]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vramplan-soak-"))
    port = args.port or free_port()
    proc = start_server(port, workdir, args.workers)
    try:
        wait_ready(port, proc, args.workers)
        result = drive(args, port, proc.pid)
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
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="requests per second over all clients (default 500)",
    )
    p.add_argument(
        "--duration", type=float, default=600.0, help="seconds of load (default 600 = 10 minutes)"
    )
    p.add_argument("--clients", type=int, default=2, help="load-generator processes (default 2)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=256,
        help="most requests in flight over all clients = keep-alive connections (default 256)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    p.add_argument(
        "--drain",
        type=float,
        default=30.0,
        help="seconds to wait for in-flight requests at the end",
    )
    p.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval in seconds")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.md")
    args = p.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.concurrency <= 0 or args.clients <= 0:
        p.error("--rate, --duration, --concurrency and --clients must be positive")
    if args.concurrency < args.clients:
        p.error("--concurrency must be at least --clients (each client needs a connection)")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
