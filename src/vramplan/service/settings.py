"""Service settings from the environment (prefix ``VRAMPLAN_``; ``DATABASE_URL`` is honoured too).

Settings reach the routes through the cached :func:`get_settings` dependency, never a module global,
so a test builds ``create_app(Settings(...))`` with its own values.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    trust_forwarded_for: bool = Field(
        default=False,
        description="Use X-Forwarded-For's first address as the client (only behind a trusted proxy).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS; empty (the default) sends no CORS headers.",
    )
    allow_hub: bool = Field(
        default=True,
        description="Resolve unknown model names as Hugging Face Hub ids (config.json only, never code).",
    )
    simulate_max_duration_s: float = Field(
        default=600.0, gt=0, description="Longest simulated time /api/simulate accepts."
    )
    simulate_max_requests: int = Field(
        default=20_000, gt=0, description="Most requests one /api/simulate replay may generate."
    )
    simulate_max_wall_s: float = Field(
        default=10.0,
        gt=0,
        description="Wall-clock budget of one /api/simulate call; longer replays are stopped.",
    )
    access_log: bool = Field(
        default=True, description="Write one JSON line per request to the vramplan.access logger."
    )
    estimate_cache_size: int = Field(
        default=4096,
        ge=0,
        description="Estimate results kept in memory, keyed by the normalised request.",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once (tests override this dependency)."""
    return Settings()
