"""The rate limit and the result cache: in this process, or in one Redis shared by every replica.

Without ``redis_url`` both live in the process (as a single server needs). With it, every replica
asks the same Redis, so two replicas allow one client what one would, and a result computed by one
is served by the others. Both are bounded in bytes, never in entries alone: a key is a SHA-256 of the
request (an uploaded config.json does not become a 1 MB key), and values above an eighth of the
budget are not cached at all. If Redis goes away, requests are still answered (limit and cache
skipped, logged); /healthz reports it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

logger = logging.getLogger("vramplan.service")

#: Bytes counted per cached entry on top of its key and value (dict slot, OrderedDict links, objects).
ENTRY_OVERHEAD_BYTES = 200


def cache_key(kind: str, request_json: str) -> str:
    """A fixed-size key for a request (its normalised JSON), namespaced by route."""
    return f"vramplan:result:{kind}:{hashlib.sha256(request_json.encode()).hexdigest()}"


class ResultCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(self, key: str, value: bytes) -> None: ...


class RateLimiter(Protocol):
    async def allow(self, client: str) -> tuple[bool, float]: ...


class ByteLRU:
    """A thread-safe LRU map of bytes whose keys and values together stay under ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD_BYTES

    def get_now(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put_now(self, key: str, value: bytes) -> None:
        cost = self._cost(key, value)
        if cost > self.max_bytes // 8:
            return  # one entry may not evict an eighth of everything else
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= self._cost(key, old)
            self._data[key] = value
            self.bytes += cost
            while self.bytes > self.max_bytes and self._data:
                k, v = self._data.popitem(last=False)
                self.bytes -= self._cost(k, v)

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    async def put(self, key: str, value: bytes) -> None:
        self.put_now(key, value)


class TokenBucket:
    """Per-client token buckets: ``rate`` tokens per second up to ``burst``; one token per request."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000) -> None:
        self.rate, self.burst, self.max_clients = rate, float(burst), max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow_now(self, client: str, now: float | None = None) -> tuple[bool, float]:
        """(allowed, seconds until a token is available)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory under address spraying; everyone starts full
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[client] = (tokens, now)
            return False, (1.0 - tokens) / self.rate

    async def allow(self, client: str) -> tuple[bool, float]:
        return self.allow_now(client)


# One atomic token-bucket step in Redis: KEYS[1] the bucket, ARGV rate, burst, now (s), ttl (s).
_BUCKET_LUA = """
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(b[1]) or burst
local last = tonumber(b[2]) or now
if now > last then tokens = math.min(burst, tokens + (now - last) * rate) end
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', math.max(now, last))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {ok, tostring(tokens)}
"""


class RedisShared:
    """The rate limit and the result cache in one Redis (``redis.asyncio``), shared by replicas."""

    def __init__(self, url: str, rate: float, burst: int, ttl_s: int, max_value_bytes: int) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.rate, self.burst, self.ttl_s = rate, burst, ttl_s
        self.max_value_bytes = max_value_bytes
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
        )
        self._bucket = self.client.register_script(_BUCKET_LUA)

    async def allow(self, client: str) -> tuple[bool, float]:
        now = time.time()
        ttl = max(1, int(self.burst / self.rate) + 1) if self.rate > 0 else 60
        try:
            ok, tokens = await self._bucket(
                keys=[f"vramplan:rl:{client}"], args=[self.rate, self.burst, now, ttl]
            )
        except Exception as exc:  # Redis away: answer anyway, /healthz says degraded
            logger.warning("rate limit skipped, Redis unavailable: %s", type(exc).__name__)
            return True, 0.0
        return bool(int(ok)), 0.0 if int(ok) else (1.0 - float(tokens)) / self.rate

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(key)
        except Exception as exc:
            logger.warning("result cache skipped, Redis unavailable: %s", type(exc).__name__)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_value_bytes:
            return
        try:
            await self.client.set(key, value, ex=self.ttl_s)
        except Exception as exc:
            logger.warning("result not cached, Redis unavailable: %s", type(exc).__name__)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def make_shared(settings: Any) -> tuple[ResultCache, RateLimiter | None, RedisShared | None]:
    """(cache, limiter or None when the limit is off, the Redis handle or None) for these settings."""
    if settings.redis_url:
        shared = RedisShared(
            settings.redis_url,
            settings.rate_limit_per_s,
            settings.rate_limit_burst,
            settings.cache_ttl_s,
            max(1, settings.cache_max_bytes // 8),
        )
        return shared, (shared if settings.rate_limit_per_s > 0 else None), shared
    bucket = (
        TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
        if settings.rate_limit_per_s > 0
        else None
    )
    return ByteLRU(settings.cache_max_bytes), bucket, None
