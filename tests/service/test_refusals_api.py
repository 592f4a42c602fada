"""The API refuses what cannot be with a 4xx and the same one-line message as the CLI."""

from __future__ import annotations


def test_api_refuses_long_context_with_a_4xx(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    r = client.post("/api/estimate", json={"model": "llama-3.1-8b", "context": 200_000})
    assert 400 <= r.status_code < 500, r.text
    assert "maximum of 131,072" in r.text
