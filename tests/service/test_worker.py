"""The compute worker pool on its own: budgets enforced by killing the worker, errors carried back
as the library's classes, and the pool usable again afterwards."""

from __future__ import annotations

import asyncio
import os

import pytest

from vramplan.errors import DoesNotFitError, UnknownModelError
from vramplan.scenario import Fix
from vramplan.service.worker import ComputeMemoryError, ComputeTimeoutError, WorkerPool


def _sleep_forever() -> None:
    import time

    time.sleep(3600)


def _allocate(n_bytes: int) -> int:
    return len(bytearray(n_bytes))


def _raise_not_found() -> None:
    raise UnknownModelError("no such model 'x'")


def _raise_does_not_fit() -> None:
    raise DoesNotFitError("too big", fixes=[Fix("tensor_parallel_size", 2, "two GPUs")])


def _cwd_and_token() -> tuple[str, str | None]:
    return os.getcwd(), os.environ.get("HF_TOKEN")


def _overflow() -> int:
    return int(float("inf"))


@pytest.fixture
def run(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_TOKEN", "hf_operator_secret")
    loop = asyncio.new_event_loop()
    pool = WorkerPool(1, timeout_s=1.5, memory_bytes=1 << 30, queue_wait_s=30)
    loop.run_until_complete(pool.start())

    def call(fn, *args):  # type: ignore[no-untyped-def]
        return loop.run_until_complete(pool.call(fn, *args))

    call.pool = pool  # type: ignore[attr-defined]
    yield call
    pool.close()
    loop.close()


def test_timeout_kills_and_pool_recovers(run) -> None:
    pid_before = run(os.getpid)
    with pytest.raises(ComputeTimeoutError):
        run(_sleep_forever)
    assert run(os.getpid) != pid_before, "the overrunning worker was replaced"
    assert run.pool.killed == 1


def test_memory_limit_is_a_4xx_and_pool_recovers(run) -> None:
    with pytest.raises(ComputeMemoryError):
        run(_allocate, 4 << 30)
    assert run(_allocate, 10 << 20) == 10 << 20


def test_errors_come_back_as_the_library_classes(run) -> None:
    with pytest.raises(UnknownModelError, match="no such model"):
        run(_raise_not_found)
    with pytest.raises(DoesNotFitError) as info:
        run(_raise_does_not_fit)
    assert info.value.fixes == [Fix("tensor_parallel_size", 2, "two GPUs")]


def test_overflow_is_input_error(run) -> None:
    from vramplan.errors import InputError

    with pytest.raises(InputError, match="out of any usable range"):
        run(_overflow)


def test_worker_has_no_token_and_an_empty_directory(run) -> None:
    cwd, token = run(_cwd_and_token)
    assert token is None
    assert os.listdir(cwd) == []


def test_busy_pool_answers_503_after_the_queue_wait() -> None:
    from vramplan.service.worker import ServerBusyError

    async def scenario() -> None:
        pool = WorkerPool(1, timeout_s=3, memory_bytes=0, queue_wait_s=0.3)
        await pool.start()
        try:
            slow = asyncio.ensure_future(pool.call(_sleep_forever))
            await asyncio.sleep(0.1)
            with pytest.raises(ServerBusyError):
                await pool.call(os.getpid)
            with pytest.raises(ComputeTimeoutError):
                await slow
        finally:
            pool.close()

    asyncio.run(scenario())
