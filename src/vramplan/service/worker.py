"""CPU-heavy requests (explain, simulate, plan, train, vllm, saved plans) run in worker processes.

Why processes: a thread cannot be stopped, so one hostile log or replay used to hold the server (and
keep burning CPU after the client left). Here each call gets one worker from a small pool, a hard
wall-clock budget after which the worker is killed (SIGKILL) and replaced, and an address-space limit
(``RLIMIT_AS``) so an allocation that would take the machine down fails as MemoryError instead. The
event loop only waits on a pipe, so ``/healthz`` and other clients keep being answered meanwhile.

Workers are plain ``python -c`` subprocesses talking over a socket pair (not ``multiprocessing``
processes, which would re-import the server's ``__main__``); they preload the library, run in an
empty temporary directory and without the operator's Hugging Face token, so a request has no
relative path to reach and no credential to use. A killed worker is replaced in the background.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from vramplan.errors import InputError, VramplanError

logger = logging.getLogger("vramplan.service")

#: Environment variables a worker must not inherit: the operator's Hub credentials.
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN")
#: Imported by every worker at start so requests find the library warm.
PRELOAD = "vramplan.service.tasks"


class ComputeTimeoutError(InputError):
    """The request needed more than the server's time budget (a 4xx: the request asked too much)."""


class ComputeMemoryError(InputError):
    """The request needed more memory than one worker may use."""


class ServerBusyError(VramplanError):
    """Every worker stayed busy for the whole wait: retry later (503)."""


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection


def _limit_resources(memory_bytes: int) -> None:
    import resource

    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def worker_main(fd: int, memory_bytes: int, workdir: str) -> None:
    """The worker loop: receive (function, args), send back ("ok", value) or an error tuple."""
    import importlib

    conn = Connection(fd)
    for name in SECRET_ENV:
        os.environ.pop(name, None)
    os.chdir(workdir)
    importlib.import_module(PRELOAD)
    _limit_resources(memory_bytes)
    conn.send(("ready",))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[Any, ...] = ("ok", fn(*args))
        except VramplanError as exc:
            reply = ("error", type(exc).__module__, type(exc).__qualname__, str(exc), exc.__dict__)
        except MemoryError:
            reply = ("memory",)
        except (ArithmeticError, ValueError, RecursionError) as exc:
            # Absurd numbers reaching arithmetic the library did not guard: the request's fault.
            reply = ("input", f"{type(exc).__name__}: {str(exc)[:200]}")
        except (
            Exception
        ) as exc:  # a bug: reported as such (500) with the worker's traceback in the log
            logging.getLogger("vramplan.service").exception("worker error")
            reply = ("bug", f"{type(exc).__name__}: {str(exc)[:200]}")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("memory",))


def _rebuild_error(module: str, qualname: str, message: str, attrs: dict[str, Any]) -> Exception:
    import importlib

    try:
        cls = getattr(importlib.import_module(module), qualname)
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        exc.__dict__.update(attrs)
        return exc
    except Exception:
        return InputError(message)


class WorkerPool:
    """``size`` worker processes; :meth:`call` runs one function in one of them within ``timeout_s``."""

    def __init__(self, size: int, timeout_s: float, memory_bytes: int, queue_wait_s: float) -> None:
        self.size, self.timeout_s = size, timeout_s
        self.memory_bytes, self.queue_wait_s = memory_bytes, queue_wait_s
        self._workdir = tempfile.mkdtemp(prefix="vramplan-worker-")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self.killed = 0
        self._tasks: set[asyncio.Future[None]] = set()

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        # The parent's import path: the worker runs the same code (and can unpickle its functions).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        code = (
            "from vramplan.service.worker import worker_main; "
            f"worker_main({child.fileno()}, {self.memory_bytes}, {self._workdir!r})"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=(child.fileno(),),
            env=env,
            cwd=self._workdir,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        worker = _Worker(process, Connection(parent.detach()))
        if not worker.conn.poll(60) or worker.conn.recv() != ("ready",):
            process.kill()
            raise ServerBusyError("a compute worker did not start within 60 s; retry shortly")
        with self._lock:
            self._all.add(worker)
        return worker

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._idle.put_nowait(await loop.run_in_executor(None, self._spawn))

    def close(self) -> None:
        with self._lock:
            workers, self._all = list(self._all), set()
        for w in workers:
            w.process.kill()
        for w in workers:
            w.process.wait(5)
            w.conn.close()

    async def _replace(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._retire, worker)
        fresh = await loop.run_in_executor(None, self._spawn)
        assert self._idle is not None
        self._idle.put_nowait(fresh)

    def _retire(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.wait(5)
        worker.conn.close()
        with self._lock:
            self._all.discard(worker)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker: its value, or its VramplanError re-raised here."""
        if self._idle is None:
            await self.start()
        assert self._idle is not None
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.queue_wait_s)
        except asyncio.TimeoutError:
            raise ServerBusyError(
                f"every compute worker stayed busy for {self.queue_wait_s:g} s; retry shortly"
            ) from None
        loop = asyncio.get_running_loop()
        healthy = False
        try:
            if worker.process.poll() is not None:
                self._retire(worker)
                worker = await loop.run_in_executor(None, self._spawn)
            worker.conn.send((fn, args))
            reply = await loop.run_in_executor(None, self._wait, worker)
            healthy = reply is not None and reply[0] != "memory"
        finally:
            if healthy:
                self._idle.put_nowait(worker)
            else:  # timed out, out of memory, died, or cancelled: kill it and start a fresh one
                self.killed += 1
                task = asyncio.ensure_future(self._replace(worker))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if reply is None:
            raise ComputeTimeoutError(
                f"this request needed more than the server's {self.timeout_s:g} s compute budget "
                "and was stopped: ask for less (shorter log, fewer requests, smaller ranges) "
                "or run the same `vramplan` command locally"
            )
        return _unpack(reply, self.memory_bytes)

    def _wait(self, worker: _Worker) -> tuple[Any, ...] | None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if worker.conn.poll(min(left, 0.5)):
                try:
                    return worker.conn.recv()
                except (EOFError, OSError):
                    return ("memory",)
            if worker.process.poll() is not None:
                return ("memory",)  # killed by the kernel (or a limit) mid-request


def _unpack(reply: tuple[Any, ...], memory_bytes: int) -> Any:
    kind = reply[0]
    if kind == "ok":
        return reply[1]
    if kind == "error":
        error = _rebuild_error(*reply[1:])
        raise error
    if kind == "memory":
        raise ComputeMemoryError(
            f"this request needed more than the server's {memory_bytes / 2**30:g} GiB of memory "
            "per request and was stopped: ask for less, or run the same `vramplan` command locally"
        )
    if kind == "input":
        raise InputError(f"a number in the request is out of any usable range ({reply[1]})")
    raise RuntimeError(f"worker error: {reply[1]}")
