"""In-process checks of the edge: rate limit, CORS off by default, store outage, settings from env."""

from __future__ import annotations

import os
from pathlib import Path

from vramplan.service.middleware import TokenBucket


def test_token_bucket_refills() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.allow_now("a", now=0.0)[0] and bucket.allow_now("a", now=0.0)[0]
    ok, wait = bucket.allow_now("a", now=0.0)
    assert not ok and abs(wait - 0.5) < 1e-9
    assert bucket.allow_now("a", now=0.6)[0]
    assert bucket.allow_now("b", now=0.0)[0], "clients have separate buckets"


def test_rate_limit_is_429_with_retry_after(make_client) -> None:
    client = make_client(rate_limit_per_s=1, rate_limit_burst=3)
    codes = [client.get("/api/gpus").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    r = client.get("/api/gpus")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "RateLimited"
    assert client.get("/healthz").status_code == 200, "health checks are not rate limited"


def test_cors_off_by_default_and_on_when_configured(make_client) -> None:
    off = make_client()
    assert (
        "access-control-allow-origin"
        not in off.get("/api/gpus", headers={"Origin": "https://x.example"}).headers
    )
    on = make_client(cors_origins=["https://x.example"])
    assert (
        on.get("/api/gpus", headers={"Origin": "https://x.example"}).headers[
            "access-control-allow-origin"
        ]
        == "https://x.example"
    )


def test_store_outage_is_503_and_recovers(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from vramplan.service.app import create_app
    from vramplan.service.settings import Settings

    folder = tmp_path / "db"
    app = create_app(
        Settings(
            database_url=f"sqlite:///{folder / 'plans.db'}",
            allow_hub=False,
            rate_limit_per_s=0,
            allowed_hosts=["testserver"],
            compute_workers=1,
        )
    )
    body = {"kind": "estimate", "scenario": {"model": "opt-125m"}}
    with TestClient(app) as client:
        assert client.post("/api/plans", json=body).status_code == 201
        folder.rename(tmp_path / "away")  # the volume goes away
        r = client.post("/api/plans", json=body)
        assert r.status_code == 503
        assert "plans database is unavailable" in r.json()["error"]["message"]
        assert client.get("/healthz").status_code == 503
        assert client.post("/api/estimate", json={"model": "opt-125m"}).status_code == 200, (
            "estimates do not need the store"
        )
        (tmp_path / "away").rename(folder)  # and comes back
        assert client.post("/api/plans", json=body).status_code == 201
        assert client.get("/api/plans").json()["total"] == 2


def test_settings_from_env(monkeypatch) -> None:
    from vramplan.service.settings import Settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("VRAMPLAN_RATE_LIMIT_PER_S", "7")
    monkeypatch.setenv("VRAMPLAN_CORS_ORIGINS", '["https://a.example"]')
    s = Settings()
    assert (s.database_url, s.rate_limit_per_s, s.cors_origins) == (
        "postgresql://u@h/db",
        7.0,
        ["https://a.example"],
    )
    assert os.environ["DATABASE_URL"]


def test_access_log_is_json_without_query(make_client, caplog) -> None:
    import json
    import logging

    client = make_client()
    with caplog.at_level(logging.INFO, logger="vramplan.access"):
        client.get("/api/gpus?token=secret")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "vramplan.access"]
    assert lines and lines[-1]["path"] == "/api/gpus" and lines[-1]["status"] == 200
    assert "secret" not in caplog.text
