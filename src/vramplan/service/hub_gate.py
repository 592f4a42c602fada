"""The service's only door to the Hugging Face Hub: off unless enabled, anonymous, fast to fail.

A client must not be able to make the server wait on the network (the Hub offline cost 23 s per
request, 45 at once stalled every route) or spend the operator's credentials. So: failures are
remembered for ``ttl_s`` (per id, and for the whole Hub when it could not be reached), at most
``MAX_IN_FLIGHT`` fetches run at once (others fail at once with 503), and the token is sent only
when the operator allowed it for authenticated clients.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from vramplan.errors import HubError

#: Concurrent Hub fetches; more are refused at once rather than queued behind a slow network.
MAX_IN_FLIGHT = 2
#: Failures remembered (ids); older ones are dropped first.
MAX_REMEMBERED = 1024
#: A fetch slower than this that failed means the Hub is unreachable, not that the id is wrong.
SLOW_FAILURE_S = 2.0
#: Longest a request waits for the Hub; the fetch goes on in the background (holding its slot)
#: until huggingface_hub gives up, but the client has its answer (503) and the Hub is marked down.
HUB_WAIT_S = 2.0
_NETWORK_WORDS = ("offline", "connect", "network", "timed out", "timeout", "unreachable", "resolve")


class HubGate:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._failed: dict[str, tuple[float, str]] = {}
        self._down_until = 0.0
        self._down_message = ""
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    def fetch_config(self, repo_id: str, *, token: bool) -> dict[str, Any]:
        """``model.hub.fetch_config`` behind the failure memory and the concurrency cap."""
        from vramplan.model.hub import fetch_config

        now = time.monotonic()
        with self._lock:
            if now < self._down_until:
                raise HubError(self._down_message)
            seen = self._failed.get(repo_id)
            if seen is not None and now < seen[0]:
                raise HubError(seen[1])
        if not self._slots.acquire(blocking=False):
            raise HubError(
                "too many Hugging Face Hub fetches in flight on this server: retry in a few seconds, "
                "or upload the model's config.json"
            )
        start = time.monotonic()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                # token=False: never the operator's HF_TOKEN; None lets huggingface_hub use it.
                box["config"] = fetch_config(repo_id, token=None if token else False)
            except BaseException as exc:
                box["error"] = exc
            finally:
                self._slots.release()

        worker = threading.Thread(target=run, daemon=True, name="vramplan-hub-fetch")
        worker.start()
        worker.join(HUB_WAIT_S)
        if worker.is_alive():
            message = f"no answer within {HUB_WAIT_S:g} s"
            self._remember(repo_id, message, HUB_WAIT_S)
            raise HubError(self._down_message)
        error = box.get("error")
        if isinstance(error, HubError):
            self._remember(repo_id, str(error), time.monotonic() - start)
            raise error
        if error is not None:
            raise error
        return box["config"]

    def _remember(self, repo_id: str, message: str, took_s: float) -> None:
        until = time.monotonic() + self.ttl_s
        with self._lock:
            if took_s > SLOW_FAILURE_S or any(w in message.lower() for w in _NETWORK_WORDS):
                self._down_until = until
                self._down_message = (
                    f"the Hugging Face Hub was unreachable from this server ({message[:200]}); "
                    f"not retried for {self.ttl_s:g} s: use a catalogue name or upload config.json"
                )
            if len(self._failed) >= MAX_REMEMBERED:
                self._failed.pop(next(iter(self._failed)))
            self._failed[repo_id] = (until, message)


_gates: dict[float, HubGate] = {}


def gate(ttl_s: float) -> HubGate:
    """The process's gate for this TTL (one per process: workers and the server each keep theirs)."""
    if ttl_s not in _gates:
        _gates[ttl_s] = HubGate(ttl_s)
    return _gates[ttl_s]
