"""The team deployment (issue 13): bearer tokens, plans owned by their token, two replicas sharing
one SQLite store and one real Redis for the rate limit and the result cache."""

from __future__ import annotations

import httpx
import pytest

from ._attack import attack

ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef00"
TOKENS = f"alice:{ALICE},bob:{BOB}"
PLAN = {"kind": "estimate", "scenario": {"model": "opt-125m"}}


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(spawn, tmp_path):
    return spawn("--auth", "tokens", VRAMPLAN_API_TOKENS=TOKENS)


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("no token", {}),
        ("wrong token", {"Authorization": "Bearer nope-nope-nope-nope-nope"}),
        ("token prefix", {"Authorization": f"Bearer {ALICE[:-1]}"}),
        ("basic scheme", {"Authorization": f"Basic {ALICE}"}),
        ("empty bearer", {"Authorization": "Bearer"}),
    ],
)
def test_api_needs_a_valid_token(team, name: str, headers: dict) -> None:
    for method, path in (("GET", "/api/models"), ("POST", "/api/estimate"), ("GET", "/api/plans")):
        out = attack(
            team, f"auth: {name} {path}", method, path, headers=headers, json={"model": "opt-125m"}
        )
        assert out.status == 401 and out.json()["error"]["type"] == "Unauthorized"


def test_health_and_metrics_stay_open(team) -> None:
    assert httpx.get(f"{team.url}/healthz").status_code == 200
    assert httpx.get(f"{team.url}/metrics").status_code == 200
    assert httpx.get(f"{team.url}/api/models", headers=_h(ALICE)).status_code == 200


def test_plans_belong_to_their_owner(team) -> None:
    made = httpx.post(f"{team.url}/api/plans", json=PLAN, headers=_h(ALICE))
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert httpx.get(f"{team.url}/api/plans/{pid}", headers=_h(ALICE)).status_code == 200
    theirs = attack(team, "read another owner's plan", "GET", f"/api/plans/{pid}", headers=_h(BOB))
    assert theirs.status == 404
    gone = attack(
        team, "delete another owner's plan", "DELETE", f"/api/plans/{pid}", headers=_h(BOB)
    )
    assert gone.status == 404
    assert httpx.get(f"{team.url}/api/plans", headers=_h(BOB)).json()["total"] == 0
    mine = httpx.get(f"{team.url}/api/plans", headers=_h(ALICE)).json()
    assert [p["id"] for p in mine["items"]] == [pid]
    assert httpx.delete(f"{team.url}/api/plans/{pid}", headers=_h(ALICE)).status_code == 204


def test_client_result_is_never_stored(team) -> None:
    payload = "<img src=x onerror=alert(1)>"
    body = {**PLAN, "result": {"model": payload, "components": [{"name": payload}]}}
    made = httpx.post(f"{team.url}/api/plans", json=body, headers=_h(ALICE)).json()
    got = httpx.get(f"{team.url}/api/plans/{made['id']}", headers=_h(ALICE)).json()
    assert payload not in str(got["result"])
    assert got["result"]["total_bytes"] > 0


def test_quota_per_owner(spawn) -> None:
    srv = spawn("--auth", "tokens", VRAMPLAN_API_TOKENS=TOKENS, VRAMPLAN_MAX_PLANS_PER_OWNER="2")
    codes = [
        httpx.post(f"{srv.url}/api/plans", json=PLAN, headers=_h(ALICE)).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 400]
    assert httpx.post(f"{srv.url}/api/plans", json=PLAN, headers=_h(BOB)).status_code == 201
    big = {"kind": "estimate", "scenario": {"model": "opt-125m", "name": "x" * 300_000}}
    out = attack(srv, "plan scenario 300 KB", "POST", "/api/plans", json=big, headers=_h(BOB))
    assert out.status in (400, 422)


def test_malformed_tokens_refuse_to_start(tmp_path) -> None:
    import os
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "vramplan", "serve", "--auth", "tokens", "--port", "1"],
        env={**os.environ, "VRAMPLAN_API_TOKENS": "alice:short", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "VRAMPLAN_API_TOKENS" in (r.stderr + r.stdout)


# ---- two replicas, one Redis -------------------------------------------------------------------


def test_two_replicas_share_the_rate_limit(spawn, redis_server, tmp_path) -> None:
    env = {
        "VRAMPLAN_REDIS_URL": redis_server.url,
        "VRAMPLAN_RATE_LIMIT_PER_S": "0.1",
        "VRAMPLAN_RATE_LIMIT_BURST": "10",
    }
    a = spawn(folder=tmp_path, **env)
    b = spawn(folder=tmp_path, **env)
    assert httpx.get(f"{a.url}/healthz").json()["redis"] == "ok"
    codes = []
    for i in range(30):
        srv = a if i % 2 else b
        codes.append(attack(srv, "rate limit across 2 replicas", "GET", "/api/gpus").status)
    allowed = codes.count(200)
    # One replica allows the burst (10) plus what refills in the test's few seconds; two replicas
    # with their own buckets would allow 20.
    assert 10 <= allowed <= 12, codes


def test_two_replicas_share_the_result_cache(spawn, redis_server, tmp_path) -> None:
    env = {"VRAMPLAN_REDIS_URL": redis_server.url}
    a = spawn(folder=tmp_path, **env)
    b = spawn(folder=tmp_path, **env)
    body = {"model": "opt-125m", "gpu": "H100-80GB", "duration": 30, "rate": 2, "seed": 7}
    first = httpx.post(f"{a.url}/api/simulate", json=body, timeout=30)
    assert first.status_code == 200
    hits_before = _metric(b, "vramplan_estimates_computed_total")
    second = httpx.post(f"{b.url}/api/simulate", json=body, timeout=30)
    assert second.content == first.content
    import redis

    keys = redis.Redis.from_url(redis_server.url).keys("vramplan:result:simulate:*")
    assert keys, "the simulate result was not cached in Redis"
    assert hits_before is not None


def test_redis_down_degrades_health_but_answers(spawn, tmp_path) -> None:
    from ._attack import free_port

    srv = spawn(
        VRAMPLAN_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", VRAMPLAN_RATE_LIMIT_PER_S="5"
    )
    h = httpx.get(f"{srv.url}/healthz")
    assert h.status_code == 503 and h.json()["redis"] == "unavailable"
    out = attack(
        srv, "estimate with Redis down", "POST", "/api/estimate", json={"model": "opt-125m"}
    )
    assert out.status == 200


def _metric(srv, name: str) -> float | None:
    text = httpx.get(f"{srv.url}/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values) if values else 0.0
