"""Service settings from the environment (prefix ``VRAMPLAN_``; ``DATABASE_URL`` is honoured too).

Settings reach the routes through the cached :func:`get_settings` dependency, never a module global,
so a test builds ``create_app(Settings(...))`` with its own values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Host names of this machine: the Host header a browser sends to a server bound to loopback.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class Settings(BaseSettings):
    """Everything an operator may tune; every limit is on by default and every field documented."""

    model_config = SettingsConfigDict(env_prefix="VRAMPLAN_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VRAMPLAN_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the plans store; None means a SQLite file in the user's data directory. "
        "postgresql://user:pass@host/db uses PostgreSQL (needs the postgres extra).",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest request body accepted (413 above it); bounds uploads of config.json.",
    )
    max_log_bytes: int = Field(
        default=4 << 20,
        ge=1024,
        description="Largest engine log /api/explain accepts (413 above it).",
    )
    rate_limit_per_s: float = Field(
        default=50.0,
        ge=0,
        description="Token-bucket refill rate per client address; 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        default=100,
        ge=1,
        description="Token-bucket size: requests a client may send at once before 429s.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed; empty (the "
        "default) ignores those headers, so a client cannot pick its own rate-limit key.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host header values accepted (400 otherwise; blocks DNS rebinding). `vramplan serve` "
        "uses localhost names on a loopback address and '*' on others unless this is set.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db shared by every replica for the rate limit and the result "
        "cache; None keeps both in this process.",
    )
    auth: Literal["none", "tokens"] = Field(
        default="none",
        description="'tokens': /api/* needs 'Authorization: Bearer <token>' from api_tokens; plans "
        "belong to the token's name.",
    )
    api_tokens: str = Field(
        default="",
        repr=False,
        description='"name:token,name2:token2" (VRAMPLAN_API_TOKENS) for --auth tokens.',
    )
    compute_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Worker processes for explain, simulate, plan, train, vllm and saved plans.",
    )
    compute_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=600,
        description="Hard wall-clock budget of one computation; the worker is killed past it (4xx).",
    )
    compute_memory_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description="Address-space limit of one worker process (0: none); past it the request gets 4xx.",
    )
    compute_queue_wait_s: float = Field(
        default=1.5,
        gt=0,
        description="Longest wait for a free worker before a 503 (with the budget: every answer "
        "within 5 s).",
    )
    cache_max_bytes: int = Field(
        default=64 << 20,
        ge=0,
        description="Memory for cached results (keys and values counted in bytes).",
    )
    cache_ttl_s: int = Field(
        default=3600, ge=1, description="Lifetime of a cached result in Redis."
    )
    max_plan_bytes: int = Field(
        default=256 << 10, ge=1024, description="Largest saved plan (scenario + result JSON)."
    )
    max_plans_per_owner: int = Field(
        default=10_000,
        ge=1,
        description="Saved plans one owner may keep (anonymous clients share one owner).",
    )
    min_free_disk_bytes: int = Field(
        default=64 << 20, ge=0, description="/healthz is degraded below this free space (SQLite)."
    )
    request_read_timeout_s: float = Field(
        default=15.0, gt=0, description="Longest time a client may take to send its request (408)."
    )
    hub_use_token: bool = Field(
        default=False,
        description="Send the operator's HF_TOKEN with Hub requests of authenticated clients (--auth "
        "tokens only; never for anonymous clients).",
    )
    hub_failure_ttl_s: float = Field(
        default=300.0, ge=0, description="How long a Hub id that failed is answered from memory."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS; empty (the default) sends no CORS headers.",
    )
    allow_hub: bool = Field(
        default=False,
        description="Resolve unknown model names as Hugging Face Hub ids (config.json only, never code); "
        "off unless the operator enables it.",
    )
    simulate_max_duration_s: float = Field(
        default=600.0, gt=0, description="Longest simulated time /api/simulate accepts."
    )
    simulate_max_requests: int = Field(
        default=20_000, gt=0, description="Most requests one /api/simulate replay may generate."
    )
    simulate_max_wall_s: float = Field(
        default=2.5,
        gt=0,
        description="Wall-clock budget of one /api/simulate call; longer replays are stopped.",
    )
    access_log: bool = Field(
        default=True, description="Write one JSON line per request to the vramplan.access logger."
    )

    def token_owners(self) -> dict[str, str]:
        """token -> owner name, from ``api_tokens`` ("name:token,..."); InputError when malformed."""
        from vramplan.errors import InputError

        owners: dict[str, str] = {}
        for item in filter(None, (p.strip() for p in self.api_tokens.split(","))):
            name, sep, token = item.partition(":")
            if not sep or not name.strip() or len(token.strip()) < 16:
                raise InputError(
                    "VRAMPLAN_API_TOKENS must be 'name:token,...' with tokens of 16+ characters "
                    f"(entry {name.strip()[:40]!r} is not)"
                )
            owners[token.strip()] = name.strip()
        if self.auth == "tokens" and not owners:
            raise InputError("--auth tokens needs VRAMPLAN_API_TOKENS='name:token,...'")
        return owners


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once (tests override this dependency)."""
    return Settings()
